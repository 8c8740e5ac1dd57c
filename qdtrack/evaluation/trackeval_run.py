"""Running TrackEval quietly in one process, in a temporary staging folder."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def quiet_eval_config(staging: Path) -> dict[str, Any]:
    """TrackEval's evaluator config: one process, no printing, no files but an error log."""
    import trackeval  # imported here: slow import, only needed when evaluating

    config: dict[str, Any] = trackeval.Evaluator.get_default_eval_config()
    config.update(
        {
            "USE_PARALLEL": False,
            "BREAK_ON_ERROR": True,
            "LOG_ON_ERROR": str(staging / "trackeval_error.log"),
            "PRINT_RESULTS": False,
            "PRINT_CONFIG": False,
            "TIME_PROGRESS": False,
            "OUTPUT_SUMMARY": False,
            "OUTPUT_DETAILED": False,
            "PLOT_CURVES": False,
        }
    )
    return config


@contextlib.contextmanager
def staging_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="qdtrack-eval-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
