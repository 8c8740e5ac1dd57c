"""Publish an exported model as a new version of a Triton model repository.

``publish_version`` copies the newest version folder of an export (``qdtrack export``)
into ``<repository>/<model>/<N+1>/``. The copy is staged in a hidden folder beside the
versions and renamed into place, so Triton (or a poller) never sees a half-written
version, and two concurrent deploys cannot claim the same number. ``config.pbtxt`` is
replaced atomically and ``champion.json`` records the metrics the gate will compare the
next candidate with. Nothing is published without a passed gate decision.

``request_load`` then asks a Triton server running with ``--model-control-mode=explicit``
to (re)load the model through its HTTP model-control API; Triton's default version policy
serves the newest version.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from qdtrack.config import stage_config
from qdtrack.export.serving_contract import DEPLOY_RECORD
from qdtrack.export.triton_config import write_contract_parameters
from qdtrack.gate import CHAMPION_FILE, GateDecision, metrics_from_document
from qdtrack.io_utils import atomic_write, read_json, write_json

CONFIG_FILE = "config.pbtxt"


class DeployRefusedError(RuntimeError):
    """The gate decision did not pass; nothing was published."""


@dataclass(frozen=True)
class PublishedVersion:
    """Where a version went, and the champion record it replaced (for a rollback)."""

    version: int
    path: Path
    previous_champion: dict[str, Any] | None = None


def version_folders(model_dir: Path) -> dict[int, Path]:
    """Integer-named version folders of a Triton model directory."""
    if not model_dir.is_dir():
        return {}
    return {int(p.name): p for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()}


def _latest_export(export_repo: Path, model_name: str) -> tuple[Path, Path]:
    model_dir = export_repo / model_name
    config = model_dir / CONFIG_FILE
    if not config.is_file():
        raise FileNotFoundError(f"{config}: no such file (is {export_repo} a qdtrack export?)")
    versions = version_folders(model_dir)
    if not versions:
        raise FileNotFoundError(f"{model_dir}: no version folder (1/, 2/, ...) to publish")
    source = versions[max(versions)]
    if not any(source.iterdir()):
        raise ValueError(f"{source}: empty version folder")
    return config, source


def publish_version(
    export_repo: str | Path,
    model_repository: str | Path,
    *,
    model_name: str = "qdtrack",
    metrics: Mapping[str, float],
    decision: GateDecision,
) -> PublishedVersion:
    """Copy the export into the repository as the next version and record the champion.

    Raises:
        DeployRefusedError: ``decision`` did not pass (nothing is written).
        FileNotFoundError / ValueError: the export is missing or malformed.
    """
    if not decision.passed:
        reasons = "; ".join(decision.reasons) or "no reason recorded"
        raise DeployRefusedError(f"the gate did not pass ({reasons}); nothing deployed")
    config, source = _latest_export(Path(export_repo), model_name)
    model_dir = Path(model_repository) / model_name
    model_dir.mkdir(parents=True, exist_ok=True)

    staging = model_dir / f".staging-{os.getpid()}-{time.monotonic_ns()}"
    shutil.copytree(source, staging)
    try:
        while True:
            version = max(version_folders(model_dir), default=0) + 1
            target = model_dir / str(version)
            try:
                # rename() onto a missing name is atomic; a concurrent deploy that took the
                # number first makes it fail and we try the next one.
                os.rename(staging, target)
                break
            except OSError:
                if not target.exists():
                    raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    previous_config = model_dir / CONFIG_FILE
    previous_champion = (
        read_json(model_dir / CHAMPION_FILE) if (model_dir / CHAMPION_FILE).is_file() else None
    )
    if previous_config.is_file() and previous_champion is not None:
        previous_champion["config_pbtxt"] = previous_config.read_text(encoding="utf-8")
    export_info_path = target / "export.json"
    export_info = read_json(export_info_path) if export_info_path.is_file() else None
    record: dict[str, Any] = {
        "version": version,
        "metrics": dict(metrics),
        "published_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "export": export_info,
    }
    write_json(
        target / DEPLOY_RECORD, {k: record[k] for k in ("version", "metrics", "published_at")}
    )
    with atomic_write(model_dir / CONFIG_FILE) as handle:
        handle.write(config.read_text(encoding="utf-8"))
    # the served contracts and metrics: the new version's and those of the versions still present
    write_contract_parameters(model_dir)
    write_json(model_dir / CHAMPION_FILE, record)
    return PublishedVersion(version=version, path=target, previous_champion=previous_champion)


def rollback(published: PublishedVersion) -> None:
    """Undo ``publish_version``: remove the version, restore the previous champion."""
    model_dir = published.path.parent
    shutil.rmtree(published.path, ignore_errors=True)
    previous = published.previous_champion
    if previous is None:
        (model_dir / CHAMPION_FILE).unlink(missing_ok=True)
        return
    previous = dict(previous)
    config_text = previous.pop("config_pbtxt", None)
    if isinstance(config_text, str):
        with atomic_write(model_dir / CONFIG_FILE) as handle:
            handle.write(config_text)
    write_json(model_dir / CHAMPION_FILE, previous)


def request_load(
    triton_url: str, model_name: str, *, timeout: float = 60.0, retries: int = 3
) -> None:
    """``POST /v2/repository/models/<model>/load`` with bounded retries on connection errors.

    Raises:
        RuntimeError: Triton refused the load or stayed unreachable.
    """
    url = f"{triton_url.rstrip('/')}/v2/repository/models/{model_name}/load"
    last_error = ""
    for attempt in range(retries):
        try:
            response = httpx.post(url, timeout=timeout)
        except httpx.HTTPError as exc:
            last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(min(0.5 * 2.0**attempt, 5.0))
            continue
        if response.status_code == 200:
            return
        raise RuntimeError(
            f"Triton refused to load {model_name!r} ({response.status_code}): "
            f"{response.text.strip()[:500]}"
        )
    raise RuntimeError(f"Triton at {triton_url} unreachable after {retries} tries: {last_error}")


def main(args: argparse.Namespace) -> int:
    """``qdtrack deploy``: 0 = published (and loaded), 1 = refused by the gate or Triton."""
    deploy = stage_config(args.config, args.set).deploy
    model_name = deploy.model_name
    decision = GateDecision.from_dict(read_json(args.decision), args.decision)
    metrics = metrics_from_document(read_json(args.metrics), args.metrics)
    try:
        published = publish_version(
            args.export,
            deploy.model_repository,
            model_name=model_name,
            metrics=metrics,
            decision=decision,
        )
    except DeployRefusedError as exc:
        print(f"deploy: refused: {exc}", file=sys.stderr)
        return 1
    print(f"deploy: published {model_name} version {published.version} -> {published.path}")
    if args.triton_url:
        try:
            request_load(args.triton_url, model_name, timeout=args.timeout)
        except RuntimeError as exc:
            rollback(published)
            print(f"deploy: {exc}; version {published.version} rolled back", file=sys.stderr)
            return 1
        print(f"deploy: Triton at {args.triton_url} loaded {model_name}")
    return 0
