"""Wire schemas of the sidecar API (what the OpenAPI document shows)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TrackOut(BaseModel):
    """One tracked object in one frame."""

    track_id: int = Field(ge=0, description="stable id within the stream")
    box_xyxy: list[float] = Field(
        min_length=4, max_length=4, description="x1, y1, x2, y2 in pixels of the frame sent"
    )
    score: float
    label: int = Field(ge=0, description="class index (0 = pedestrian for MOT models)")


class FrameResult(BaseModel):
    """The tracks of one frame of one stream.

    Per-stage timings of a frame that was processed (not replayed) are in the
    ``Server-Timing`` response header (receive, decode, inference, association,
    persistence and total, in ms).
    """

    stream_id: str
    frame_index: int
    model_version: str = Field(
        description="identity of the weights that saw the frame (their serving contract's "
        "model_version)"
    )
    replayed: bool = Field(
        description="true when this index was already processed: the stored result, state untouched"
    )
    stream_reset: bool = Field(
        description="true when the model version changed and the tracker started afresh "
        "(ids continue above the old ones)"
    )
    tracks: list[TrackOut]


class StreamInfo(BaseModel):
    """State of one stream."""

    stream_id: str
    last_frame_index: int | None = Field(description="last committed index; null before any")
    model_version: str | None
    active_tracks: int = Field(ge=0, description="tracklets the tracker remembers")
    next_track_id: int = Field(ge=0, description="the id the next new track will get")
    tracker: str | None = Field(
        default=None,
        description="the tracker of the served model's contract (e.g. qdtrack, tao); "
        "null before the first frame",
    )
    generation: str = Field(
        description="changes when the stream is reopened or reset; every commit checks it"
    )
    persisted: bool = Field(
        description="false while frames committed here are not yet in the state store"
    )


class ErrorOut(BaseModel):
    """Body of every 4xx/5xx answer of the ``/v1`` API."""

    error: str = Field(description="fixed machine-readable reason, e.g. out_of_order")
    detail: str = Field(description="what went wrong, for people")
    request_id: str = Field(description="also in the X-Request-Id header and the sidecar log")


class Health(BaseModel):
    """Liveness."""

    status: str


class Readiness(BaseModel):
    """Readiness: true when Triton reports the model ready (the store is reported apart)."""

    ready: bool
    triton_model_ready: bool
    store_ok: bool
