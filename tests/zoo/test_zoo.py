"""The model zoo against a local server: download, hash check, caching, offline, specs."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
import torch

from qdtrack import zoo
from qdtrack.checkpoint import load_checkpoint
from qdtrack.cli import main as cli

from .conftest import LocalZoo

R50 = "qdtrack-r50-mot17-half"


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more


def test_weights_list_shows_every_name_and_its_published_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli(["weights", "list"]) == 0
    out = capsys.readouterr().out
    for name in zoo.MODELS:
        assert name in out
    for figure in ("57.1", "68.2", "68.5", "59.1", "71.7", "71.6", "17.2", "11.0", "15.8", "6.1"):
        assert figure in out
    assert "LVIS v0.5 + COCO" in out and "CrowdHuman + MOT17 half-train" in out
    assert "R-101-FPN, 482 classes" in out


def test_published_names_and_urls() -> None:
    prefixes = {name: model.sha256_prefix for name, model in zoo.MODELS.items()}
    assert prefixes == {
        "qdtrack-r50-mot17-half": "76f295ef",
        "qdtrack-r50-crowdhuman-mot17-half": "68899b0a",
        "qdtrack-r101-lvis": "88911daf",
        "qdtrack-r101-tao": "7cbf4062",
    }
    base = "https://download.openmmlab.com/mmtracking/mot/qdtrack"
    assert zoo.MODELS["qdtrack-r101-tao"].url(base) == (
        f"{base}/tao_dataset/qdtrack_faster-rcnn_r101_fpn_12e_tao_20220613_211934-7cbf4062.pth"
    )
    assert zoo.MODELS[R50].url(base).startswith(f"{base}/mot_dataset/")


def test_download_with_progress_converts_once_and_caches(
    local_zoo: LocalZoo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served = local_zoo.use(R50)
    assert cli(["weights", "fetch", R50]) == 0
    captured = capsys.readouterr()
    converted = Path(captured.out.strip())
    # progress bar: the file name, the byte count and 100 %
    assert served.name in captured.err and "100%" in captured.err
    assert local_zoo.requests_for(R50) == 1
    # torch hub cache under $TORCH_HOME: the download as published, the conversion beside
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    assert (hub / served.name).read_bytes() == served.read_bytes()
    assert converted.parent == hub / "qdtrack"
    assert not list(hub.glob("*.partial"))
    checkpoint = load_checkpoint(converted)
    assert checkpoint["source"]["file"] == served.name
    assert checkpoint["source"]["layout"] == "QDTrack R-50-FPN, 1 class"
    assert checkpoint["config"]["model"]["classes"] == ["pedestrian"]  # from the file's meta
    # second call: the converted file, no request, no progress bar
    assert cli(["weights", "fetch", R50]) == 0
    again = capsys.readouterr()
    assert Path(again.out.strip()) == converted and "100%" not in again.err
    assert local_zoo.requests_for(R50) == 1
    listing = zoo.models_table()
    assert next(line for line in listing.splitlines() if line.startswith(R50)).endswith("converted")


def test_corrupted_download_is_refused_and_deleted(
    local_zoo: LocalZoo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served = local_zoo.use(R50)
    data = bytearray(served.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle
    served.unlink()
    served.write_bytes(bytes(data))
    assert cli(["weights", "fetch", R50]) == 2
    err = capsys.readouterr().err
    assert "refused and deleted" in err and served.name in err
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    assert list(hub.rglob("*")) == []  # neither the file, nor a .partial, nor a conversion
    # the same corrupt bytes put there by hand are refused and deleted as well
    (hub / served.name).write_bytes(bytes(data))
    assert cli(["weights", "fetch", R50]) == 2
    assert "refused and deleted" in capsys.readouterr().err
    assert not (hub / served.name).exists()


def test_offline_error_names_url_and_path_and_a_manual_copy_works(
    local_zoo: LocalZoo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    served = local_zoo.use(R50)
    offline = _closed_port_url()
    monkeypatch.setenv(zoo.BASE_URL_ENV, offline)
    assert cli(["weights", "fetch", R50]) == 2
    err = capsys.readouterr().err
    url = f"{offline}/mot_dataset/{served.name}"
    dest = tmp_path / "torch_home" / "hub" / "checkpoints" / served.name
    assert url in err and str(dest) in err
    assert "Traceback" not in err
    shutil.copyfile(served, dest)  # "downloaded on another machine"
    assert cli(["weights", "fetch", R50]) == 0
    assert Path(capsys.readouterr().out.strip()).is_file()
    assert local_zoo.requests_for(R50) == 0  # the local server was never asked


def test_url_and_local_file_specs(
    local_zoo: LocalZoo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served = local_zoo.use("qdtrack-r50-crowdhuman-mot17-half")
    url = f"{local_zoo.server.url}/mot_dataset/{served.name}"
    from_url = zoo.resolve_weights(url, progress=False)
    assert load_checkpoint(from_url)["source"]["file"] == served.name
    assert zoo.resolve_weights(url, progress=False) == from_url
    assert len(local_zoo.server.requests) == 1
    # a local mmtracking file converts into the cache; a project checkpoint is used as is
    local = tmp_path / "mine" / served.name
    local.parent.mkdir()
    shutil.copyfile(served, local)
    converted = zoo.resolve_weights(str(local))
    assert converted.parent == tmp_path / "torch_home" / "hub" / "checkpoints" / "qdtrack"
    assert zoo.resolve_weights(str(converted)) == converted
    assert len(local_zoo.server.requests) == 1
    # a local file whose name's hash prefix does not match is refused but kept
    renamed = local.with_name(local.name.replace(local.name[-12:-4], "00000000"))
    local.rename(renamed)
    with pytest.raises(zoo.WeightsError, match=r"SHA-256 .*\(refused\)"):
        zoo.resolve_weights(str(renamed))
    assert renamed.is_file()


def test_unknown_names_and_missing_files_exit_2(
    local_zoo: LocalZoo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "t.txt")
    assert cli(["track", "v.mp4", "--weights", "qdtrack-r50-mot17", "--out", out]) == 2
    err = capsys.readouterr().err
    assert "did you mean qdtrack-r50-mot17-half" in err and "qdtrack weights list" in err
    assert cli(["export", "--weights", str(tmp_path / "no.pth"), "--out", out]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # --checkpoint and --weights exclude each other
        cli(["track", "v.mp4", "--weights", R50, "--checkpoint", "c.pt", "--out", out])


def test_train_init_accepts_a_zoo_name(
    local_zoo: LocalZoo, tiny_workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``qdtrack train --init NAME``: one real iteration of the reference R-50 from the zoo."""
    from qdtrack.config import ModelConfig
    from qdtrack.model.qdtrack import build_qdtrack

    local_zoo.use(R50)
    data = tiny_workspace / "data"
    params = tmp_path / "params.yaml"
    params.write_text(
        "model: {img_scale: [128, 128], roi_sampling_ratio: 2}\n"
        "train: {epochs: 1, batch_size: 1, amp: false, num_workers: 0, "
        "max_iters_per_epoch: 1, warmup_iters: 0, seed: 0,\n"
        f"  sources: [{{kind: mot, path: {data / 'train'}, subset: full}}]}}\n"
    )
    out = tmp_path / "run"
    argv = ["train", "--config", str(params), "--init", R50, "--out", str(out), "--device", "cpu"]
    assert cli(argv) == 0
    assert local_zoo.requests_for(R50) == 1
    # the run started from the zoo weights: the frozen stem is still exactly theirs
    converted = zoo.resolve_weights(R50)
    initial = load_checkpoint(converted)["model"]
    trained = load_checkpoint(out / "last.pt")["model"]
    key = "detector.backbone.body.conv1.weight"
    assert torch.equal(trained[key], initial[key])
    with torch.device("meta"):
        model = build_qdtrack(ModelConfig())
    model.load_state_dict(initial, strict=True, assign=True)


def test_serving_launcher_exports_weights_once(
    local_zoo: LocalZoo, tiny_workspace: Path, tmp_path: Path
) -> None:
    """``python -m serving.launch --weights SPEC``: the weights become the served version.

    The export checks the ONNX graph against PyTorch on a noise frame; generated R-50
    weights score hundreds of boxes alike, so float rounding decides which make the cap
    of 100 and that check (rightly) refuses them. The weights here are a small project
    checkpoint whose scores spread, fetched by URL from the local server; a zoo name
    reaches the same code through :func:`qdtrack.zoo.resolve_weights`.
    """
    from export.conftest import detecting_model, save_checkpoint  # tests/export (rootdir)

    from qdtrack.config import load_config
    from qdtrack.export.runtime import read_metadata
    from serving.launch import repository_for_weights

    config = load_config(tiny_workspace / "params.yaml")
    served = save_checkpoint(detecting_model(config), config, local_zoo.served / "tiny.pt")
    url = f"{local_zoo.server.url}/tiny.pt"
    repository = tmp_path / "repository"
    version = repository_for_weights(url, repository)
    assert version == repository / "qdtrack" / "1"
    record = read_metadata(version)
    downloaded = tmp_path / "torch_home" / "hub" / "checkpoints" / "tiny.pt"
    assert downloaded.read_bytes() == served.read_bytes()
    assert record["checkpoint_sha256"] == zoo.sha256_file(downloaded)
    assert (version / "model.onnx").is_file()
    # a second launch serves the same version: no export, no download
    assert repository_for_weights(url, repository) == version
    assert sorted(p.name for p in (repository / "qdtrack").iterdir() if p.name.isdigit()) == ["1"]
    assert len(local_zoo.server.requests) == 1


def test_serving_launcher_refuses_bad_weights_before_starting_anything(
    local_zoo: LocalZoo, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from serving.launch import main as launch

    assert launch(["--weights", "qdtrack-r51", "--repository", str(tmp_path / "r")]) == 2
    assert "not a model name" in caplog.text and "did you mean qdtrack-r101" in caplog.text
    assert not (tmp_path / "r").exists()
    with pytest.raises(SystemExit):  # neither --repository nor --weights
        launch([])
