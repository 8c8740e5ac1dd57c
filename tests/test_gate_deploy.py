"""Champion/challenger gate and publishing versions into a Triton model repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qdtrack.cli import main as cli_main
from qdtrack.deploy import DeployRefusedError, publish_version, record_champion, rollback
from qdtrack.gate import GateDecision, decide, read_champion
from qdtrack.rollout import (
    FALLBACK_FRAME_HW,
    Replica,
    load_state,
    parse_service,
    replicas_from_endpoint_slices,
    warmup_frame_hw,
)

GOOD = {"HOTA": 50.0, "MOTA": 60.0, "IDF1": 55.0, "IDSW": 10}
WORSE = {"HOTA": 48.0, "MOTA": 61.0, "IDF1": 55.0, "IDSW": 30}


def _export(root: Path, tag: str, version: int = 1) -> Path:
    """A minimal export tree: config.pbtxt + one version folder with a model file."""
    model = root / "qdtrack"
    (model / str(version)).mkdir(parents=True)
    (model / "config.pbtxt").write_text(f'# {tag}\nname: "qdtrack"\n')
    (model / str(version) / "model.onnx").write_bytes(tag.encode())
    (model / str(version) / "export.json").write_text(json.dumps({"model_version": tag}))
    return root


def _write(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj))
    return path


def test_no_champion_only_absolute_criteria() -> None:
    d = decide(GOOD, champion=None, gate="HOTA>=40", max_drop="HOTA=0.5")
    assert d.passed and d.reasons == [] and d.champion is None
    d = decide(GOOD, champion=None, gate="HOTA>=51", max_drop="HOTA=0.5")
    assert not d.passed and "HOTA" in d.reasons[0]


def test_challenger_must_not_fall_behind_the_champion() -> None:
    d = decide(WORSE, champion=GOOD, gate="HOTA>=40", max_drop="HOTA=0.5,IDSW=5")
    assert not d.passed
    assert any("HOTA = 48 below champion 50 - 0.5" in r for r in d.reasons)
    assert any(r.startswith("IDSW = 30 exceeds champion 10 + 5") for r in d.reasons)
    # Within the allowed drop it passes.
    assert decide(WORSE, champion=GOOD, gate=None, max_drop="HOTA=2.5,IDSW=20").passed


def test_bad_criteria_are_errors_even_without_a_champion() -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        decide(GOOD, champion=None, gate=None, max_drop="BOGUS=1")
    with pytest.raises(ValueError, match="bad gate criterion"):
        decide(GOOD, champion=GOOD, gate="HOTA=>1", max_drop=None)


def test_decision_round_trip() -> None:
    d = decide(WORSE, champion=GOOD, gate=None, max_drop="HOTA=0")
    again = GateDecision.from_dict(json.loads(json.dumps(d.to_dict())))
    assert again == d
    with pytest.raises(ValueError, match="not a gate decision"):
        GateDecision.from_dict({"reasons": []})


def test_publish_versions_and_champion(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    passed = decide(GOOD, champion=None, gate=None, max_drop=None)
    first = publish_version(_export(tmp_path / "e1", "one"), repo, metrics=GOOD, decision=passed)
    second = publish_version(_export(tmp_path / "e2", "two"), repo, metrics=WORSE, decision=passed)
    assert (first.version, second.version) == (1, 2)
    assert (repo / "qdtrack" / "2" / "model.onnx").read_bytes() == b"two"
    assert "two" in (repo / "qdtrack" / "config.pbtxt").read_text()
    champion = read_champion(repo, "qdtrack")
    assert champion is not None and champion["version"] == 2
    assert champion["metrics"]["HOTA"] == WORSE["HOTA"]
    assert champion["export"] == {"model_version": "two"}
    assert not [p for p in (repo / "qdtrack").iterdir() if p.name.startswith(".")]

    rollback(second)
    assert sorted(p.name for p in (repo / "qdtrack").iterdir()) == [
        "1",
        "champion.json",
        "config.pbtxt",
    ]
    champion = read_champion(repo, "qdtrack")
    assert champion is not None and champion["version"] == 1
    assert "one" in (repo / "qdtrack" / "config.pbtxt").read_text()


def test_failed_decision_publishes_nothing(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    failed = decide(WORSE, champion=GOOD, gate=None, max_drop="HOTA=0")
    with pytest.raises(DeployRefusedError, match="HOTA"):
        publish_version(_export(tmp_path / "e", "x"), repo, metrics=WORSE, decision=failed)
    assert not repo.exists()


def test_publish_rejects_a_folder_that_is_not_an_export(tmp_path: Path) -> None:
    passed = decide(GOOD, champion=None, gate=None, max_drop=None)
    (tmp_path / "empty" / "qdtrack").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"config\.pbtxt"):
        publish_version(tmp_path / "empty", tmp_path / "repo", metrics=GOOD, decision=passed)


def test_cli_gate_then_deploy_champion_challenger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    good, worse = _write(tmp_path / "good.json", GOOD), _write(tmp_path / "worse.json", WORSE)
    params = tmp_path / "params.yaml"
    params.write_text(
        f"gate:\n  criteria: HOTA>=40\n  max_drop: HOTA=1\ndeploy:\n  model_repository: {repo}\n"
    )
    gate_args = ["--config", str(params)]

    # 1. nothing deployed: the good candidate passes and becomes version 1.
    decision = tmp_path / "d1.json"
    assert cli_main(["gate", "--candidate", str(good), *gate_args, "--out", str(decision)]) == 0
    deploy = ["deploy", "--config", str(params), "--metrics"]
    export1 = str(_export(tmp_path / "e1", "one"))
    assert cli_main([*deploy, str(good), "--export", export1, "--decision", str(decision)]) == 0

    # 2. the worse challenger is blocked against that champion, and deploy refuses it.
    decision = tmp_path / "d2.json"
    assert cli_main(["gate", "--candidate", str(worse), *gate_args, "--out", str(decision)]) == 1
    assert "HOTA = 48 below champion 50 - 1" in capsys.readouterr().err
    assert json.loads(decision.read_text())["passed"] is False
    export2 = str(_export(tmp_path / "e2", "two"))
    assert cli_main([*deploy, str(worse), "--export", export2, "--decision", str(decision)]) == 1
    assert "refused" in capsys.readouterr().err
    assert sorted(p.name for p in (repo / "qdtrack").iterdir() if p.name.isdigit()) == ["1"]

    # bad input: a decision file that is not one
    assert cli_main([*deploy, str(worse), "--export", export2, "--decision", str(good)]) == 2


def test_a_published_version_is_recorded_only_when_asked(tmp_path: Path) -> None:
    """With replicas to verify, deploy records the champion after they serve it."""
    repo = tmp_path / "repo"
    passed = decide(GOOD, champion=None, gate=None, max_drop=None)
    first = publish_version(_export(tmp_path / "e1", "one"), repo, metrics=GOOD, decision=passed)
    second = publish_version(
        _export(tmp_path / "e2", "two"), repo, metrics=WORSE, decision=passed, record=False
    )
    champion = read_champion(repo, "qdtrack")
    assert champion is not None and champion["version"] == first.version == 1
    record_champion(second)
    champion = read_champion(repo, "qdtrack")
    assert champion is not None and champion["version"] == 2 and champion["recorded_at"]
    assert rollback(second) == 1  # the version Triton serves from the repository again


def test_rollback_of_a_first_deploy_leaves_no_model(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    passed = decide(GOOD, champion=None, gate=None, max_drop=None)
    first = publish_version(
        _export(tmp_path / "e1", "one"), repo, metrics=GOOD, decision=passed, record=False
    )
    assert rollback(first) is None
    assert list((repo / "qdtrack").iterdir()) == []


def test_replicas_come_from_the_endpoint_slices_of_the_service() -> None:
    """Every pod that is not terminating, ready or not (a first install has none ready)."""
    slices = [
        {
            "ports": [{"name": "metrics", "port": 8002}, {"name": "http", "port": 8000}],
            "endpoints": [
                {"addresses": ["10.0.0.7"], "conditions": {"ready": True},
                 "targetRef": {"kind": "Pod", "name": "qdtrack-serving-b"}},
                {"addresses": ["10.0.0.5"], "conditions": {"ready": False},
                 "targetRef": {"kind": "Pod", "name": "qdtrack-serving-a"}},
                {"addresses": ["10.0.0.9"], "conditions": {"terminating": True},
                 "targetRef": {"kind": "Pod", "name": "qdtrack-serving-old"}},
            ],
        },
        {"ports": [{"name": "http", "port": 8000}],
         "endpoints": [{"addresses": ["10.0.0.7"], "targetRef": {"name": "qdtrack-serving-b"}},
                       {"addresses": ["fd00::3"]}]},
        {"ports": [{"name": "metrics", "port": 8002}],
         "endpoints": [{"addresses": ["10.0.0.8"]}]},
    ]  # fmt: skip
    assert replicas_from_endpoint_slices(slices) == [
        Replica("fd00::3", "http://[fd00::3]:8000"),
        Replica("qdtrack-serving-a", "http://10.0.0.5:8000"),
        Replica("qdtrack-serving-b", "http://10.0.0.7:8000"),
    ]
    assert replicas_from_endpoint_slices([]) == []


@pytest.mark.parametrize(
    ("entry", "before", "seen_loading", "expected"),
    [
        (None, None, False, "LOADING"),  # the load has not registered yet
        (("LOADING", ""), None, True, "LOADING"),
        (("READY", ""), ("UNAVAILABLE", "old"), False, "READY"),
        (("UNAVAILABLE", "bad model"), None, False, "REFUSED"),
        (("UNAVAILABLE", "bad model"), ("UNAVAILABLE", "bad model"), True, "REFUSED"),
        # the entry of an earlier attempt at this version number, not this load's
        (("UNAVAILABLE", "bad model"), ("UNAVAILABLE", "bad model"), False, "LOADING"),
    ],
)
def test_a_pending_load_is_read_from_the_repository_index(
    entry: tuple[str, str] | None,
    before: tuple[str, str] | None,
    seen_loading: bool,
    expected: str,
) -> None:
    assert load_state(entry, before, seen_loading)[0] == expected


def test_verification_frame_and_service_names() -> None:
    config = {"model_warmup": [{"inputs": {"image": {"dims": ["608", "1088", "3"]}}}]}
    assert warmup_frame_hw(config) == (608, 1088)
    assert warmup_frame_hw({}) == FALLBACK_FRAME_HW
    assert parse_service("qdtrack/triton") == ("qdtrack", "triton")
    for bad in ("triton", "/triton", "a/b/c"):
        with pytest.raises(ValueError, match="NAMESPACE/SERVICE"):
            parse_service(bad)


def test_deploy_to_an_unreachable_replica_publishes_nothing(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    good = _write(tmp_path / "good.json", GOOD)
    decision = _write(
        tmp_path / "d.json", decide(GOOD, champion=None, gate=None, max_drop=None).to_dict()
    )
    args = ["deploy", "--set", f"deploy.model_repository={repo}", "--metrics", str(good),
            "--export", str(_export(tmp_path / "e", "x")), "--decision", str(decision),
            "--triton-url", "http://127.0.0.1:9", "--timeout", "1"]  # fmt: skip
    # nothing answers: the preflight passes (a pod may be starting), the rollout times
    # out waiting for it to become live, and the version is rolled back
    assert cli_main(args) == 1
    assert read_champion(repo, "qdtrack") is None
    assert not (repo / "qdtrack" / "1").exists()
