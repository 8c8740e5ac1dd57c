"""Serialising tracker state to bytes (no pickle: state may come from Redis or a file)."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np

STATE_FORMAT_VERSION = 1


def check_frame_order(last_frame_id: int | None, frame_id: int) -> int:
    """Return ``frame_id`` as int, or raise ``ValueError`` if it does not follow ``last_frame_id``.

    Frame ids must increase strictly within a sequence: a repeated id would divide by zero
    in the reference's velocity bookkeeping and a smaller one breaks expiry.
    """
    frame_id = int(frame_id)
    if last_frame_id is not None and frame_id <= last_frame_id:
        raise ValueError(
            f"frame_id {frame_id} does not follow {last_frame_id}: frame ids must "
            "increase within a sequence (call reset() to start a new one)"
        )
    return frame_id


def pack_state(kind: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    """Pack JSON-able ``meta`` and named numpy ``arrays`` into one ``.npz`` byte string."""
    header = {"kind": kind, "version": STATE_FORMAT_VERSION, **meta}
    buf = io.BytesIO()
    payload = {f"a_{k}": np.ascontiguousarray(v) for k, v in arrays.items()}
    payload["meta"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    np.savez(buf, **payload)  # type: ignore[arg-type]
    return buf.getvalue()


def unpack_state(data: bytes, kind: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Inverse of :func:`pack_state`; ``ValueError`` for bytes that are not a ``kind`` state."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            files = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"not a tracker state: {exc}") from exc
    if "meta" not in files:
        raise ValueError("not a tracker state: no metadata")
    try:
        meta = json.loads(files.pop("meta").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"corrupt tracker state metadata: {exc}") from exc
    if meta.get("kind") != kind:
        raise ValueError(f"state is for tracker {meta.get('kind')!r}, not {kind!r}")
    if meta.get("version") != STATE_FORMAT_VERSION:
        raise ValueError(f"unsupported tracker state version {meta.get('version')!r}")
    return meta, {name[2:]: arr for name, arr in files.items()}
