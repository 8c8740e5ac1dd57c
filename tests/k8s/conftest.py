"""Fixtures of the manifest tests: each overlay rendered once by kustomize."""

from __future__ import annotations

from typing import Any

import pytest
from k8s_helpers import K8S, OVERLAYS, render


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """overlay name -> its rendered objects."""
    return {name: render(K8S / "overlays" / name) for name in OVERLAYS}
