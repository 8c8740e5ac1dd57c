"""``qdtrack gate`` as the tests call it: a candidate, ``gate.*`` settings, no repository."""

from __future__ import annotations

from pathlib import Path

from qdtrack.cli import main as cli_main


def run_gate(folder: Path, candidate: Path, *settings: str, champion: Path | None = None) -> int:
    """Exit code of ``qdtrack gate`` on ``candidate`` with ``--set gate.<setting>`` each."""
    params = folder / "gate-params.yaml"
    params.write_text(f"deploy:\n  model_repository: {folder / 'no-repository'}\n")
    argv = ["gate", "--candidate", str(candidate), "--config", str(params)]
    argv += [arg for item in settings for arg in ("--set", f"gate.{item}")]
    if champion is not None:
        argv += ["--champion", str(champion)]
    return cli_main(argv)
