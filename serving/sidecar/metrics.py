"""Prometheus metrics of the sidecar: low cardinality, no per-stream labels.

Each app gets its own ``CollectorRegistry`` so tests can build many apps in one process.
Names start with ``qdtrack_sidecar_``; Triton's own metrics (``nv_inference_*``) come from
its port 8002.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from serving.sidecar.errors import REJECT_REASONS

PREFIX = "qdtrack_sidecar"
STAGES = ("receive", "decode", "inference", "association", "persistence", "total")
TRITON_ERRORS = ("unavailable", "internal", "timeout", "bad_response", "other")
#: Why a stream's tracker started afresh: a model change, or a stored field it cannot read.
RESET_REASONS = (
    "model_version",
    "corrupt_generation",
    "corrupt_last_index",
    "corrupt_state",
    "corrupt_meta",
    "corrupt_results",
)
#: HTTP limits that cut a connection before the request reached the app.
CUT_REASONS = ("header_too_large", "header_timeout", "body_timeout")
#: Evaluation metrics of the served model published as ``qdtrack_model_quality{metric}``.
QUALITY_METRICS = ("HOTA", "DetA", "AssA", "MOTA", "IDF1")
# 0.25 ms … 5 s: the stages span sub-millisecond association to multi-second CPU inference
LATENCY_BUCKETS = (
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


class SidecarMetrics:
    """The sidecar's metric objects, registered in ``self.registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.frame_latency = Histogram(
            f"{PREFIX}_frame_stage_seconds",
            "Time per frame in each stage (receive = reading the body; total = whole request)",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.triton_latency = Histogram(
            f"{PREFIX}_triton_request_seconds",
            "Round trip of one Triton infer call as the sidecar sees it (retries included)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.triton_errors = Counter(
            f"{PREFIX}_triton_errors",
            "Failed Triton calls by kind (each attempt counts)",
            ["kind"],
            registry=r,
        )
        self.frames = Counter(
            f"{PREFIX}_frames", "Frames tracked (replays not included)", registry=r
        )
        self.replays = Counter(
            f"{PREFIX}_frames_replayed",
            "Retried frame indices answered from the stored result",
            registry=r,
        )
        self.rejected = Counter(
            f"{PREFIX}_frames_rejected", "Frames refused, by reason", ["reason"], registry=r
        )
        self.active_streams = Gauge(
            f"{PREFIX}_active_streams", "Streams held in this process", registry=r
        )
        self.active_tracks = Gauge(
            f"{PREFIX}_active_tracks", "Tracklets remembered over all held streams", registry=r
        )
        self.new_tracks = Counter(f"{PREFIX}_new_tracks", "Track ids started", registry=r)
        self.streams_opened = Counter(f"{PREFIX}_streams_opened", "Streams opened", registry=r)
        self.streams_closed = Counter(f"{PREFIX}_streams_closed", "Streams closed", registry=r)
        self.streams_expired = Counter(
            f"{PREFIX}_streams_expired",
            "Streams dropped from memory after the idle TTL",
            registry=r,
        )
        self.state_restores = Counter(
            f"{PREFIX}_state_restores",
            "Streams rebuilt from the state store (restart, another replica, eviction)",
            registry=r,
        )
        self.state_resets = Counter(
            f"{PREFIX}_state_resets", "Tracker state reset, by reason", ["reason"], registry=r
        )
        self.store_errors = Counter(
            f"{PREFIX}_store_errors", "Failed state-store operations", registry=r
        )
        self.store_available = Gauge(
            f"{PREFIX}_store_available",
            "1 while the state store answers, 0 while this sidecar serves from memory",
            registry=r,
        )
        self.unpersisted_streams = Gauge(
            f"{PREFIX}_unpersisted_streams",
            "Streams whose last committed frames are only in this process's memory",
            registry=r,
        )
        self.records_recreated = Counter(
            f"{PREFIX}_records_recreated",
            "Stream records written anew from memory after the store lost them",
            registry=r,
        )
        self.connections_cut = Counter(
            f"{PREFIX}_connections_cut",
            "Connections closed by an HTTP limit (header size, header or body read timeout)",
            ["reason"],
            registry=r,
        )
        # model identity, for dashboards comparing versions (one series per served version)
        self.model_version_info = Gauge(
            "qdtrack_model_version_info",
            "The model version Triton answers with (value 1)",
            ["version"],
            registry=r,
        )
        self.model_quality = Gauge(
            "qdtrack_model_quality",
            "Evaluation metrics of the served model (from its deploy record)",
            ["metric"],
            registry=r,
        )
        self._model_version: str | None = None
        # create every labelled series up front so dashboards see zeros, not gaps
        for stage in STAGES:
            self.frame_latency.labels(stage=stage)
        for kind in TRITON_ERRORS:
            self.triton_errors.labels(kind=kind)
        for reason in REJECT_REASONS:
            self.rejected.labels(reason=reason)
        for reason in RESET_REASONS:
            self.state_resets.labels(reason=reason)
        for reason in CUT_REASONS:
            self.connections_cut.labels(reason=reason)
        self.store_available.set(1)

    def observe_model_version(self, version: str, quality: Mapping[str, float]) -> None:
        """Point ``qdtrack_model_version_info`` at ``version`` (cheap when unchanged).

        ``quality``: the metrics that version was deployed with; when given, the quality
        gauge follows the served version (a rollout or a stale replica shows its own).
        """
        if version != self._model_version:
            self.model_version_info.clear()
            self.model_version_info.labels(version=version).set(1)
            self._model_version = version
            if quality:
                self.model_quality.clear()
                self.load_model_quality({"metrics": dict(quality)})

    def load_model_quality(self, record: dict[str, Any]) -> None:
        """Publish HOTA, MOTA, IDF1… of a deploy record (``champion.json``) or metrics JSON."""
        values = record.get("metrics", record)
        for name in QUALITY_METRICS:
            if isinstance(values.get(name), int | float):
                self.model_quality.labels(metric=name).set(float(values[name]))
