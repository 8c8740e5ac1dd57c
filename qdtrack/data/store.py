"""Prepared data on a shared volume, named by what it was made from.

In the Kubeflow pipeline the data steps write into the workspace volume instead of KFP
artifacts, and pass the folder's path on: later steps mount the same volume and read the
data where it lies (nothing is uploaded to the object store and downloaded again by each
step). A folder is named by a fingerprint of everything it was made from (settings, the
code that writes it, and the files of a dataset on disk), so

* a second run with the same inputs finds the folder and reuses it, and passes the same
  path on, which is what lets KFP's cache skip ``train`` when nothing changed;
* a changed input gets a new folder: a stale one is never reused.

A folder is built under a hidden name and renamed into place when complete, so a reader
never sees half a dataset and two runs building the same one at once do not collide.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

#: The project's files whose code decides what a data step writes.
_DATA_CODE = Path(__file__).resolve().parent
_CONFIG_CODE = _DATA_CODE.parent / "config.py"


def fingerprint(*parts: Any) -> str:
    """A short, stable hex digest of JSON-able ``parts``."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def code_fingerprint(paths: Iterable[Path] = (_DATA_CODE, _CONFIG_CODE)) -> str:
    """Digest of the Python sources under ``paths`` (the data steps' code by default)."""
    digest = hashlib.sha256()
    for path in paths:
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            digest.update(file.name.encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:20]


def tree_listing(root: Path) -> list[tuple[str, int]]:
    """``(relative path, size)`` of every file under ``root``, sorted (links followed).

    A cheap identity of a dataset on disk: a pulled DVC dataset of another version differs
    in names or sizes in practice; the ``.dvc`` files of the pull are added by the caller.
    """
    listing = []
    for folder, _, files in os.walk(root, followlinks=True):
        for name in files:
            path = Path(folder) / name
            listing.append((str(path.relative_to(root)), path.stat().st_size))
    return sorted(listing)


def stored(store: Path, key: str, build: Callable[[Path], object]) -> tuple[Path, bool]:
    """``<store>/<key>``, built by ``build(folder)`` unless it is already there.

    ``build`` receives a folder path that does not exist yet and must create it.

    Returns:
        The folder and whether it was reused.
    """
    final = store / key
    if final.is_dir():
        return final, True
    store.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=store))
    try:
        build(scratch / key)
        try:
            os.rename(scratch / key, final)
        except OSError:
            if not final.is_dir():
                raise
            return final, True  # another run built the same folder meanwhile
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return final, False
