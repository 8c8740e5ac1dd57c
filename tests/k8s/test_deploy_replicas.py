"""The deploy path against real Triton servers started with the overlays' exact arguments.

Two ``tritonserver`` processes (PyTriton's bundled binary, the dev overlay's Triton args)
stand in for two replicas sharing one model repository, as the pods share the volume.
The model is a python-backend stand-in (``triton_helpers``; the wheel has no ONNX Runtime
backend). ``qdtrack deploy`` (the pipeline's deploy step) publishes version 1 into an
empty repository, then version 2, and each time both replicas answer with the new
version before it becomes the champion; a version one replica refuses is rolled back
and both replicas answer with the champion again; the model-control API refuses calls
without the key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from triton_helpers import (
    MODEL_CONTROL_KEY,
    require_tritonserver,
    standin_export,
    start_replica,
)

from qdtrack.cli import main as cli_main
from qdtrack.deploy import publish_version
from qdtrack.gate import decide, read_champion
from qdtrack.rollout import (
    MODEL_CONTROL_HEADER,
    MODEL_CONTROL_KEY_ENV,
    Replica,
    Timing,
    TritonReplica,
    roll_out,
    static_source,
)
from serving.launch import Service

pytestmark = pytest.mark.integration
METRICS = {"HOTA": 50.0, "MOTA": 60.0, "IDF1": 55.0}


@pytest.fixture(scope="module")
def cluster(
    rendered: dict[str, list[dict[str, Any]]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """Two replicas on one empty repository; the second refuses stand-in version 3."""
    require_tritonserver()
    root = tmp_path_factory.mktemp("replicas")
    repository = root / "models"
    repository.mkdir()
    replicas: list[Service] = []
    try:
        for index, refuse in enumerate(("", "3")):
            work = root / f"replica-{index}"
            replicas.append(
                start_replica(
                    rendered["dev"], repository, work, extra_env={"QDTRACK_STANDIN_REFUSE": refuse}
                )
            )
        urls = [f"http://127.0.0.1:{r.ports['http']}" for r in replicas]
        yield {"root": root, "repository": repository, "urls": urls}
    finally:
        for replica in replicas:
            replica.stop()


def _served(url: str) -> int:
    triton = TritonReplica(Replica(url, url), key=MODEL_CONTROL_KEY)
    try:
        return triton.served_version("qdtrack")
    finally:
        triton.close()


def _deploy(
    cluster: dict[str, Any],
    tag: str,
    monkeypatch: pytest.MonkeyPatch,
    key: str | None = MODEL_CONTROL_KEY,
    **flags: str,
) -> int:
    """``qdtrack deploy`` of a stand-in export to both replicas (key from the env)."""
    root: Path = cluster["root"]
    export = standin_export(root / f"export-{tag}", tag, **flags)
    summary = root / "summary.json"
    summary.write_text(json.dumps(METRICS))
    decision = root / "decision.json"
    decision.write_text(
        json.dumps(decide(METRICS, champion=None, gate=None, max_drop=None).to_dict())
    )
    if key is None:
        monkeypatch.delenv(MODEL_CONTROL_KEY_ENV, raising=False)
    else:
        monkeypatch.setenv(MODEL_CONTROL_KEY_ENV, key)
    argv = ["deploy", "--set", f"deploy.model_repository={cluster['repository']}",
            "--export", str(export), "--metrics", str(summary), "--decision", str(decision),
            "--timeout", "60"]  # fmt: skip
    for url in cluster["urls"]:
        argv += ["--triton-url", url]
    return cli_main(argv)


def test_first_deploys_reach_every_replica_and_a_refusal_rolls_back(
    cluster: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    repository: Path = cluster["repository"]
    urls: list[str] = cluster["urls"]
    # both replicas came up live on an empty repository, serving nothing yet
    for url in urls:
        assert httpx.get(f"{url}/v2/models/qdtrack/ready").status_code != 200

    # version 1: the first install's first deploy
    assert _deploy(cluster, "standin-one", monkeypatch) == 0
    assert [_served(url) for url in urls] == [1, 1]
    champion = read_champion(repository, "qdtrack")
    assert champion is not None and champion["version"] == 1

    # version 2 replaces it on both replicas before it is recorded
    assert _deploy(cluster, "standin-two", monkeypatch) == 0
    assert [_served(url) for url in urls] == [2, 2]
    champion = read_champion(repository, "qdtrack")
    assert champion is not None and champion["version"] == 2
    capsys.readouterr()

    # version 3: the first replica loads it, the second refuses it -> rolled back on both
    assert _deploy(cluster, "standin-three", monkeypatch) == 1
    err = capsys.readouterr().err
    assert "refuses to load" in err and "rolled back" in err
    assert [_served(url) for url in urls] == [2, 2]
    champion = read_champion(repository, "qdtrack")
    assert champion is not None and champion["version"] == 2
    assert not (repository / "qdtrack" / "3").exists()
    assert 'string_value: "standin-two"' in (repository / "qdtrack" / "config.pbtxt").read_text()


def test_a_load_still_running_is_waited_for_not_failed(cluster: dict[str, Any]) -> None:
    """A version that takes longer to load than the load request waits (an engine build):
    the request times out, the index says LOADING, then READY; no rollback."""
    repository: Path = cluster["repository"]
    export = standin_export(cluster["root"] / "export-slow", "standin-slow", DELAY="3")
    passed = decide(METRICS, champion=None, gate=None, max_drop=None)
    published = publish_version(export, repository, metrics=METRICS, decision=passed, record=False)
    timing = Timing(deadline=Timing.within(60).deadline, poll_s=0.2, load_request_s=0.5)
    outcomes = roll_out(
        static_source(cluster["urls"][:1]), "qdtrack", published.version,
        key=MODEL_CONTROL_KEY, timing=timing,
    )  # fmt: skip
    assert [o.ok for o in outcomes] == [True], [o.line() for o in outcomes]
    assert _served(cluster["urls"][0]) == published.version


def test_model_control_needs_the_key(cluster: dict[str, Any]) -> None:
    url = cluster["urls"][0]
    served = _served(url)
    refused = httpx.post(f"{url}/v2/repository/models/qdtrack/unload")
    assert refused.status_code == 403 and MODEL_CONTROL_HEADER in refused.text
    wrong = httpx.post(
        f"{url}/v2/repository/models/qdtrack/unload", headers={MODEL_CONTROL_HEADER: "nope"}
    )
    assert wrong.status_code == 403
    assert _served(url) == served  # still serving
    # inference and health stay open (the NetworkPolicy limits who reaches the port)
    assert httpx.get(f"{url}/v2/health/ready").status_code == 200


def test_deploy_without_the_key_publishes_nothing(
    cluster: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    repository: Path = cluster["repository"]
    before = sorted(p.name for p in (repository / "qdtrack").iterdir())
    capsys.readouterr()
    assert _deploy(cluster, "standin-nokey", monkeypatch, key=None) == 1
    err = capsys.readouterr().err
    assert "nothing published" in err and MODEL_CONTROL_HEADER in err
    assert sorted(p.name for p in (repository / "qdtrack").iterdir()) == before
