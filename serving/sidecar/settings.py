"""Sidecar settings, read from ``SIDECAR_*`` environment variables (one object, no globals)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from qdtrack.export.contract import MODEL_NAME

#: Serving-contract fields an experiment may replace (the rest describe the network).
OVERRIDABLE = frozenset({"img_scale", "tracker", "class_names"})


class Settings(BaseSettings):
    """Everything the sidecar can be told; defaults suit one pod beside one Triton.

    Each field is also an environment variable, e.g. ``SIDECAR_TRITON_URL``,
    ``SIDECAR_REDIS_URL``. How to use the model (resize rule, tracker and its settings)
    is not a setting: it is read from the served model's config, per version.
    """

    model_config = SettingsConfigDict(env_prefix="SIDECAR_", frozen=True)

    # Triton
    triton_url: str = "127.0.0.1:8001"  # gRPC host:port
    model_name: str = MODEL_NAME
    triton_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    triton_retries: Annotated[int, Field(ge=0, le=10)] = 2  # extra attempts on transient errors
    readiness_cache_s: Annotated[float, Field(ge=0)] = 1.0

    # Experiments only: fields of the served models' serving contracts to replace, e.g.
    # SIDECAR_CONTRACT_OVERRIDES='{"tracker": {"init_score_thr": 0.8}}' or
    # '{"img_scale": [640, 640]}'. Logged as a warning for every model version it changes.
    contract_overrides: dict[str, Any] = Field(default_factory=dict)
    # deploy record of the served model (champion.json) or a metrics JSON: its HOTA, MOTA,
    # IDF1... become the qdtrack_model_quality gauge
    model_quality_file: str | None = None

    # state store; None keeps state in process memory only (lost on restart)
    redis_url: str | None = None
    redis_prefix: str = "qdtrack:stream:"
    redis_timeout_s: Annotated[float, Field(gt=0)] = 1.0
    redis_retries: Annotated[int, Field(ge=0, le=10)] = 2

    # streams and admission
    stream_ttl_s: Annotated[float, Field(gt=0)] = 300.0
    sweep_interval_s: Annotated[float, Field(gt=0)] = 1.0
    max_streams: Annotated[int, Field(ge=1)] = 10_000
    max_inflight_frames: Annotated[int, Field(ge=1)] = 64  # whole process; above it: 503
    max_pending_per_stream: Annotated[int, Field(ge=1)] = 4  # one stream; above it: 429
    result_window: Annotated[int, Field(ge=1, le=256)] = (
        8  # recent results kept for retried indices
    )
    retry_after_s: Annotated[int, Field(ge=1)] = 1

    # requests; the HTTP limits apply below the app (serving/sidecar/http_limits.py)
    max_header_bytes: Annotated[int, Field(ge=1024, le=1024 * 1024)] = 16 * 1024  # else 431
    header_timeout_s: Annotated[float, Field(gt=0)] = 10.0  # headers complete within; else 408
    body_timeout_s: Annotated[float, Field(gt=0)] = 30.0  # body complete after headers; else 408
    keep_alive_timeout_s: Annotated[int, Field(ge=1)] = 5  # idle connection closed after
    max_body_bytes: Annotated[int, Field(ge=1024)] = 16 * 1024 * 1024
    max_image_pixels: Annotated[int, Field(ge=1)] = 4096 * 4096
    # Frames this large are decoded in a worker thread (cv2 releases the GIL, so several
    # decode in parallel); smaller ones inline, cheaper than a thread hop (~1 ms at 640x360).
    decode_thread_min_pixels: Annotated[int, Field(ge=0)] = 1280 * 720
    auth_token: SecretStr | None = None  # set: /v1 needs "Authorization: Bearer <token>"
    require_auth: bool = False  # true: refuse to start without auth_token (the k8s overlays)

    @field_validator("contract_overrides")
    @classmethod
    def _known_contract_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - OVERRIDABLE)
        if unknown:
            raise ValueError(
                f"unknown contract field(s) {unknown}; overridable: {sorted(OVERRIDABLE)}"
            )
        return value

    @field_validator("auth_token")
    @classmethod
    def _non_empty_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 8:
            raise ValueError("auth_token must be at least 8 characters (or unset)")
        return value
