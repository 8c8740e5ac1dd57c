"""``benchmarks/gpu_check.py`` without a GPU: a clear message, exit code 3, nothing written.

The check itself runs only where a CUDA GPU is (it is a script for such a machine); here
the GPUs are hidden from the child process, so this test means the same everywhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_without_a_gpu_the_check_says_so_and_exits_3(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 3
    assert done.stderr.startswith("gpu_check: skipped, nothing was checked: no CUDA GPU")
    assert "exit code 3 = no GPU" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""
    assert not out.exists()
