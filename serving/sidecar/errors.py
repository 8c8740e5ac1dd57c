"""Errors the sidecar answers with: each has an HTTP status and a low-cardinality reason.

``reason`` is both the ``error`` field of the JSON body and the ``reason`` label of the
rejected-frames counter, so the set of values is fixed here.
"""

from __future__ import annotations


class SidecarError(Exception):
    """Base class: ``status`` is the HTTP status, ``reason`` a fixed machine-readable word."""

    status = 500
    reason = "internal"
    retry_after = False  # answer with a Retry-After header

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadFrame(SidecarError):
    """The body is not a decodable image of the declared type (or raw pixels of the wrong size)."""

    status, reason = 400, "bad_image"


class EmptyBody(SidecarError):
    """No bytes in the body."""

    status, reason = 400, "empty_body"


class ClientDisconnected(SidecarError):
    """The client closed the connection before its request was read (nobody gets the answer)."""

    status, reason = 499, "client_disconnect"


class Unauthorized(SidecarError):
    """Missing or wrong bearer token."""

    status, reason = 401, "unauthorized"


class UnknownStream(SidecarError):
    """The stream was never opened, was closed, or expired."""

    status, reason = 404, "unknown_stream"


class FrameOutOfOrder(SidecarError):
    """The frame index is not after the stream's last one and no stored result is kept for it."""

    status, reason = 409, "out_of_order"


class PayloadTooLarge(SidecarError):
    """Body over ``max_body_bytes`` or image over ``max_image_pixels``."""

    status, reason = 413, "too_large"


class UnsupportedMediaType(SidecarError):
    """Content-Type is none of image/jpeg, image/png, application/octet-stream."""

    status, reason = 415, "unsupported_media_type"


class StreamBusy(SidecarError):
    """Too many frames of this stream in flight (the client sends faster than it is served)."""

    status, reason, retry_after = 429, "stream_busy", True


class TritonBadResponse(SidecarError):
    """Triton answered with tensors that break the contract."""

    status, reason = 502, "triton_bad_response"


class ContractMissing(SidecarError):
    """The served model version carries no usable serving contract in its config."""

    status, reason = 502, "model_contract_missing"


class Overloaded(SidecarError):
    """Too many frames in flight in this process, or no room for another stream."""

    status, reason, retry_after = 503, "overloaded", True


class TritonUnavailable(SidecarError):
    """Triton could not be reached (after the bounded retries) or refused the request."""

    status, reason, retry_after = 503, "triton_unavailable", True


class StoreUnavailable(SidecarError):
    """Redis could not be reached (after the bounded retries) for a stream this process does
    not hold in memory, or to open or close one; state was left unchanged."""

    status, reason, retry_after = 503, "redis_unavailable", True


class TritonTimeout(SidecarError):
    """Triton did not answer within ``triton_timeout_s``."""

    status, reason, retry_after = 504, "triton_timeout", True


#: Every reason a frame can be rejected with (pre-created label values of the counter).
REJECT_REASONS = (
    "bad_image",
    "empty_body",
    "unauthorized",
    "unknown_stream",
    "out_of_order",
    "too_large",
    "unsupported_media_type",
    "stream_busy",
    "triton_bad_response",
    "model_contract_missing",
    "overloaded",
    "triton_unavailable",
    "redis_unavailable",
    "triton_timeout",
    "invalid_request",
    "request_timeout",
    "client_disconnect",
    "internal",
)
