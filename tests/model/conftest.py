"""Model-test settings: CPU numerics and a fixed seed."""

from __future__ import annotations

import pytest
import torch

# Without this, CPU backward passes through tiny randomly initialised nets hit denormal
# floats and run about 10x slower.
torch.set_flush_denormal(True)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
