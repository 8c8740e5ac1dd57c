"""The base of every tracker's settings: one frozen dataclass written beside its tracker.

Each tracker module defines its settings as a subclass of :class:`TrackerSettings`; that
dataclass is the only place the tracker's defaults are written. The ``tracker`` block of a
params file names the tracker with ``type`` and sets any of its fields; the same field
names are the keys of ``--set tracker.<name>=…``, of the exported model's serving contract
and of the tracker state stored by the sidecar.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from qdtrack.schema import from_mapping, to_plain

S = TypeVar("S", bound="TrackerSettings")


@dataclass(frozen=True)
class TrackerSettings:
    """Settings of one tracker; subclasses add the fields and check them in ``__post_init__``.

    Attributes:
        tracker_type: the name under which the tracker is chosen (``tracker.type``).
    """

    tracker_type: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain mapping (without ``type``)."""
        plain: dict[str, Any] = to_plain(self)
        return plain

    @classmethod
    def from_mapping(cls: type[S], data: Mapping[str, Any] | None, where: str = "tracker") -> S:
        """Settings from a mapping; unknown keys and wrong types raise ``ValueError``."""
        return from_mapping(cls, data, where)


def check_range(name: str, value: float, low: float, high: float | None = None) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``low <= value`` (``<= high``)."""
    if value < low or (high is not None and value > high):
        bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bounds}, got {value}")
