"""A served TAO export keeps its tracker: the sidecar reads ``tracker`` and
``tracker_config`` from the export record (``export.json``) and ``make serve`` passes them on."""

from __future__ import annotations

import json
from pathlib import Path

from qdtrack.trackers import (
    QuasiDenseTAOTracker,
    TAOTrackerSettings,
    build_tracker,
    tracker_settings,
)
from serving.launch import sidecar_env_for
from serving.sidecar.__main__ import build_parser, settings_from_args


def _export_record(folder: Path) -> Path:
    settings = TAOTrackerSettings(memo_tracklet_frames=7)
    record = {"img_scale": [384, 224], "tracker": "tao", "tracker_config": settings.to_dict()}
    version = folder / "qdtrack" / "1"
    version.mkdir(parents=True)
    path = version / "export.json"
    path.write_text(json.dumps(record))
    return path


def test_sidecar_takes_the_tao_tracker_from_the_export(tmp_path: Path) -> None:
    path = _export_record(tmp_path)
    settings = settings_from_args(build_parser().parse_args(["--model-info", str(path)]))
    assert settings.tracker == "tao" and settings.tracker_settings["memo_tracklet_frames"] == 7
    block = {"type": settings.tracker, **settings.tracker_settings}
    tracker = build_tracker(tracker_settings(block))
    assert isinstance(tracker, QuasiDenseTAOTracker)
    assert tracker.settings.memo_tracklet_frames == 7


def test_serve_environment_names_the_tracker(tmp_path: Path) -> None:
    _export_record(tmp_path)
    env = sidecar_env_for(tmp_path)
    assert env["SIDECAR_TRACKER"] == "tao"
    assert json.loads(env["SIDECAR_TRACKER_SETTINGS"])["memo_tracklet_frames"] == 7
