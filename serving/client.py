"""Client of the tracking sidecar, and ``qdtrack stream``: push a video, get tracks back.

:class:`SidecarClient` sends one frame per request and retries the **same** frame index
on connection errors and on 408/429/503/504 (honouring ``Retry-After``) until a deadline, so
a sidecar or Triton restart in the middle of a stream costs the client a pause, not its ids:
no error answer commits a frame, so the retried index is either processed now or, when an
earlier attempt was committed but its answer lost, answered from the stored result.
"""

from __future__ import annotations

import argparse
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from qdtrack.data.frames import open_frames
from qdtrack.data.mot import write_mot_results
from qdtrack.render import VideoWriter, draw_tracks
from qdtrack.structures import Tracks

log = logging.getLogger(__name__)

#: request timeout (the body was too slow), stream busy, overloaded or a dependency
#: restarting (Triton, Redis), Triton timeout: none of them committed the frame
RETRY_STATUSES = (408, 429, 503, 504)
FORMATS = {"jpeg": ("image/jpeg", ".jpg"), "png": ("image/png", ".png")}


class SidecarError(RuntimeError):
    """The sidecar refused a request for good (a 4xx other than 429, or retries ran out)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"sidecar answered {status}: {body}")
        self.status = status
        self.body = body


def encode_frame(
    frame_bgr: npt.NDArray[np.uint8], fmt: str = "jpeg", quality: int = 90
) -> tuple[bytes, dict[str, str]]:
    """A request body and its headers for one BGR frame (``jpeg``, ``png`` or ``raw``)."""
    if fmt == "raw":
        height, width = frame_bgr.shape[:2]
        headers = {
            "Content-Type": "application/octet-stream",
            "X-Frame-Width": str(width),
            "X-Frame-Height": str(height),
        }
        return np.ascontiguousarray(frame_bgr).tobytes(), headers
    if fmt not in FORMATS:
        raise ValueError(f"unknown frame format {fmt!r}; choose jpeg, png or raw")
    content_type, suffix = FORMATS[fmt]
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == "jpeg" else []
    ok, buf = cv2.imencode(suffix, frame_bgr, params)
    if not ok:
        raise ValueError(f"OpenCV cannot encode the frame as {fmt}")
    return buf.tobytes(), {"Content-Type": content_type}


def tracks_from_result(result: dict[str, Any]) -> Tracks:
    """The ``tracks`` of a frame result as :class:`~qdtrack.structures.Tracks`."""
    rows = result["tracks"]
    if not rows:
        return Tracks.empty()
    return Tracks(
        np.asarray([r["box_xyxy"] for r in rows], np.float32),
        np.asarray([r["score"] for r in rows], np.float32),
        np.asarray([r["label"] for r in rows], np.int64),
        np.asarray([r["track_id"] for r in rows], np.int64),
        np.arange(len(rows), dtype=np.int64),
    )


class SidecarClient:
    """Synchronous client of the sidecar's ``/v1`` API.

    Args:
        url: the sidecar's base URL, e.g. ``http://127.0.0.1:8080``.
        token: bearer token, when the sidecar requires one.
        timeout_s: per-request timeout.
        retry_deadline_s: how long one call keeps retrying a retryable failure.
        backoff_s: first pause between retries (doubles up to 1 s) when the sidecar sends
            no ``Retry-After``.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout_s: float = 30.0,
        retry_deadline_s: float = 60.0,
        backoff_s: float = 0.05,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s)
        self.retry_deadline_s = retry_deadline_s
        self.backoff_s = backoff_s
        self.retries = 0  # retried attempts so far (connection errors and RETRY_STATUSES)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        deadline = time.monotonic() + self.retry_deadline_s
        pause = self.backoff_s
        while True:
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:  # refused, reset, timed out
                if time.monotonic() + pause > deadline:
                    raise SidecarError(0, f"sidecar unreachable: {exc}") from exc
                wait = pause
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                retry_after = response.headers.get("retry-after", "")
                wait = float(retry_after) if retry_after.isdigit() else pause
                if time.monotonic() + wait > deadline:
                    return response
            self.retries += 1
            time.sleep(wait)
            pause = min(pause * 2, 1.0)

    @staticmethod
    def _check(response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            raise SidecarError(response.status_code, response.text)
        return response

    def open(self, stream_id: str) -> dict[str, Any]:
        """Open (or re-open) a stream; its state."""
        info: dict[str, Any] = self._check(self._request("PUT", f"/v1/streams/{stream_id}")).json()
        return info

    def info(self, stream_id: str) -> dict[str, Any]:
        """A stream's state."""
        info: dict[str, Any] = self._check(self._request("GET", f"/v1/streams/{stream_id}")).json()
        return info

    def close(self, stream_id: str) -> None:
        """Close a stream."""
        self._check(self._request("DELETE", f"/v1/streams/{stream_id}"))

    def push(
        self, stream_id: str, index: int, body: bytes, headers: dict[str, str]
    ) -> dict[str, Any]:
        """Track frame ``index`` (an encoded body, see :func:`encode_frame`); its result."""
        response = self._request(
            "POST", f"/v1/streams/{stream_id}/frames/{index}", content=body, headers=headers
        )
        result: dict[str, Any] = self._check(response).json()
        return result

    def push_frame(
        self, stream_id: str, index: int, frame_bgr: npt.NDArray[np.uint8], fmt: str = "jpeg"
    ) -> dict[str, Any]:
        """Encode and track one BGR frame."""
        body, headers = encode_frame(frame_bgr, fmt)
        return self.push(stream_id, index, body, headers)

    def ready(self) -> bool:
        """The sidecar's ``/readyz``."""
        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def close_client(self) -> None:
        """Close the HTTP connections."""
        self._http.close()


def stream_video(
    source: str | Path,
    client: SidecarClient,
    *,
    stream_id: str,
    fmt: str = "jpeg",
    render: str | Path | None = None,
    mot_output: str | Path | None = None,
    start: int = 1,
    stop: int | None = None,
    keep_open: bool = False,
) -> list[dict[str, Any]]:
    """Push every frame of a video (or image folder / sequence) through the sidecar.

    Frame indices sent are the 1-based frame numbers. Returns the per-frame results;
    optionally draws them into ``render`` and writes MOTChallenge rows to ``mot_output``.
    """
    results: list[dict[str, Any]] = []
    client.open(stream_id)
    with open_frames(source, start=start, stop=stop) as frames:
        writer = VideoWriter(render, frames.fps) if render is not None else None
        try:
            for number, image in tqdm(frames, total=len(frames), unit="frame", desc="stream"):
                result = client.push_frame(stream_id, number, image, fmt)
                results.append(result)
                if writer is not None:
                    writer.write(draw_tracks(image, tracks_from_result(result)))
        finally:
            if writer is not None:
                writer.close()
    if not keep_open:
        client.close(stream_id)
    if mot_output is not None:
        write_mot_results(mot_output, [(r["frame_index"], tracks_from_result(r)) for r in results])
    return results


def main(args: argparse.Namespace) -> int:
    """``qdtrack stream VIDEO --url URL``: push a video through the serving stack."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    client = SidecarClient(args.url, token=args.token, retry_deadline_s=args.retry_deadline)
    stream_id = args.stream_id or f"cli-{uuid.uuid4().hex[:12]}"
    started = time.perf_counter()
    try:
        results = stream_video(
            args.video,
            client,
            stream_id=stream_id,
            fmt=args.format,
            render=args.render,
            mot_output=args.out,
            start=args.start,
            stop=args.stop,
            keep_open=args.keep_open,
        )
    except SidecarError as exc:
        raise ValueError(str(exc)) from exc
    finally:
        client.close_client()
    seconds = time.perf_counter() - started
    ids = {t["track_id"] for r in results for t in r["tracks"]}
    version = results[-1]["model_version"] if results else "-"
    log.info(
        "stream %s: %d frames in %.1f s (%.1f fps), %d track ids, model %s, %d retries%s%s",
        stream_id,
        len(results),
        seconds,
        len(results) / max(seconds, 1e-9),
        len(ids),
        version,
        client.retries,
        f"; rendered {args.render}" if args.render else "",
        f"; results {args.out}" if args.out else "",
    )
    return 0
