"""A small multi-class synthetic dataset (people, cars, dogs; TAO + LVIS files)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def synth_tao(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``qdtrack data synth --classes 3`` with one 12-frame sequence per split, 3 stills."""
    from qdtrack.cli import main as cli

    out = tmp_path_factory.mktemp("synth_tao") / "data"
    args = ["data", "synth", "--out", str(out), "--seed", "0", "--frames", "12", "--classes", "3"]
    args += ["--train-seqs", "1", "--val-seqs", "1", "--crowdhuman-images", "3"]
    assert cli(args) == 0
    return out
