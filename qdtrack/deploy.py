"""Publish an exported model as a new version of a Triton model repository, then serve it.

``publish_version`` copies the newest version folder of an export (``qdtrack export``)
into ``<repository>/<model>/<N+1>/``. The copy is staged in a hidden folder beside the
versions and renamed into place, so Triton never sees a half-written version, and two
concurrent deploys cannot claim the same number. ``config.pbtxt`` is replaced atomically.
Nothing is published without a passed gate decision.

``qdtrack deploy`` then makes every Triton replica load the version and checks that each
one answers with it (:mod:`qdtrack.rollout`); only then is the version recorded as the
champion (``champion.json``, what the gate compares the next candidate with). When a
replica refuses the version, the version is removed again and every replica is brought
back to the previous one: a failed deploy leaves the previous champion serving.
Without replicas (a local repository, ``make deploy``) the version is recorded at once.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qdtrack.config import stage_config
from qdtrack.export.serving_contract import DEPLOY_RECORD
from qdtrack.export.triton_config import write_contract_parameters
from qdtrack.gate import CHAMPION_FILE, GateDecision, metrics_from_document
from qdtrack.io_utils import atomic_write, read_json, write_json
from qdtrack.rollout import (
    MODEL_CONTROL_KEY_ENV,
    ModelControlError,
    Replica,
    ReplicaOutcome,
    Timing,
    endpoint_slice_source,
    parse_service,
    preflight,
    roll_out,
    static_source,
)

CONFIG_FILE = "config.pbtxt"


class DeployRefusedError(RuntimeError):
    """The gate decision did not pass; nothing was published."""


@dataclass(frozen=True)
class PublishedVersion:
    """Where a version went, its champion record, and what a rollback restores.

    Attributes:
        version: the Triton version number.
        path: its folder in the repository.
        previous_champion: the champion record it replaces (``None`` on a first deploy).
        previous_config: the ``config.pbtxt`` text it replaced (``None``: there was none).
        record: the champion record of this version (written by :func:`record_champion`).
    """

    version: int
    path: Path
    previous_champion: dict[str, Any] | None = None
    previous_config: str | None = None
    record: dict[str, Any] = field(default_factory=dict)


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


def _claim_next_version(staging: Path, model_dir: Path) -> tuple[int, Path]:
    """Rename ``staging`` to the next free version number (atomic; retried on a race)."""
    while True:
        version = max(version_folders(model_dir), default=0) + 1
        target = model_dir / str(version)
        try:
            # rename() onto a missing name is atomic; a concurrent deploy that took the
            # number first makes it fail and we try the next one.
            os.rename(staging, target)
            return version, target
        except OSError:
            if not target.exists():
                raise


def publish_version(
    export_repo: str | Path,
    model_repository: str | Path,
    *,
    model_name: str = "qdtrack",
    metrics: Mapping[str, float],
    decision: GateDecision,
    record: bool = True,
) -> PublishedVersion:
    """Copy the export into the repository as the next version.

    Args:
        record: also record it as the champion now (``False``: the caller records it with
            :func:`record_champion` once the replicas serve it).

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
        version, target = _claim_next_version(staging, model_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    config_path = model_dir / CONFIG_FILE
    previous_config = config_path.read_text(encoding="utf-8") if config_path.is_file() else None
    champion_path = model_dir / CHAMPION_FILE
    previous_champion = read_json(champion_path) if champion_path.is_file() else None
    published_at = _now()
    # the gate's metrics travel with the version (the sidecar's quality gauge reads them)
    write_json(
        target / DEPLOY_RECORD,
        {"version": version, "metrics": dict(metrics), "published_at": published_at},
    )
    with atomic_write(model_dir / CONFIG_FILE) as handle:
        handle.write(config.read_text(encoding="utf-8"))
    # the served contracts and metrics: the new version's and those of the versions still present
    write_contract_parameters(model_dir)
    export_info_path = target / "export.json"
    published = PublishedVersion(
        version=version,
        path=target,
        previous_champion=previous_champion,
        previous_config=previous_config,
        record={
            "version": version,
            "metrics": dict(metrics),
            "published_at": published_at,
            "export": read_json(export_info_path) if export_info_path.is_file() else None,
        },
    )
    if record:
        record_champion(published)
    return published


def record_champion(published: PublishedVersion) -> None:
    """Write ``champion.json``: this version is what the next candidate is gated against."""
    record = {**published.record, "recorded_at": _now()}
    write_json(published.path.parent / CHAMPION_FILE, record)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def rollback(published: PublishedVersion) -> int | None:
    """Undo ``publish_version``: remove the version, restore the previous champion.

    Returns:
        The version Triton serves from the repository now (the newest left), or ``None``
        when no version is left.
    """
    model_dir = published.path.parent
    shutil.rmtree(published.path, ignore_errors=True)
    if published.previous_config is None:
        (model_dir / CONFIG_FILE).unlink(missing_ok=True)
    else:
        with atomic_write(model_dir / CONFIG_FILE) as handle:
            handle.write(published.previous_config)
    if published.previous_champion is None:
        (model_dir / CHAMPION_FILE).unlink(missing_ok=True)
    else:
        write_json(model_dir / CHAMPION_FILE, published.previous_champion)
    remaining = version_folders(model_dir)
    return max(remaining) if remaining else None


# ----------------------------------------------------------------------- the command


def replica_source(args: argparse.Namespace) -> Callable[[], list[Replica]] | None:
    """Where the replicas come from: ``--triton-service``, ``--triton-url``, or none."""
    if args.triton_service:
        namespace, service = parse_service(args.triton_service)
        return endpoint_slice_source(namespace, service)
    if args.triton_url:
        return static_source(args.triton_url)
    return None


def _roll(
    source: Callable[[], list[Replica]],
    model_name: str,
    version: int | None,
    key: str | None,
    timeout_s: float,
    prefix: str,
) -> list[ReplicaOutcome]:
    """:func:`roll_out`, reported line by line; ``[]`` when the replicas cannot be listed."""
    try:
        outcomes = roll_out(source, model_name, version, key=key, timing=Timing.within(timeout_s))
    except ModelControlError as exc:
        sys.stderr.write(f"deploy: {prefix} {exc}\n")
        return []
    for outcome in outcomes:
        stream = sys.stdout if outcome.ok else sys.stderr
        stream.write(f"deploy: {prefix} {outcome.line()}\n")
    return outcomes


def _serve_everywhere(
    published: PublishedVersion,
    source: Callable[[], list[Replica]],
    model_name: str,
    key: str | None,
    timeout_s: float,
) -> bool:
    """Roll the version out; on any failure roll back and restore the previous version."""
    outcomes = _roll(source, model_name, published.version, key, timeout_s, "rollout:")
    if outcomes and all(o.ok for o in outcomes):
        return True
    previous = rollback(published)
    restored = _roll(source, model_name, previous, key, timeout_s, "rollback:")
    what = f"version {previous}" if previous is not None else "no version"
    sys.stderr.write(
        f"deploy: version {published.version} rolled back; the replicas serve {what} "
        f"({sum(o.ok for o in restored)}/{len(restored)} confirmed)\n"
    )
    return False


def main(args: argparse.Namespace) -> int:
    """``qdtrack deploy``: 0 = published and served, 1 = refused (gate, Triton, replicas)."""
    deploy = stage_config(args.config, args.set).deploy
    model_name = deploy.model_name
    decision = GateDecision.from_dict(read_json(args.decision), args.decision)
    metrics = metrics_from_document(read_json(args.metrics), args.metrics)
    source = replica_source(args)
    key = os.environ.get(MODEL_CONTROL_KEY_ENV) or None
    try:
        if source is not None and decision.passed:
            replicas = preflight(source, model_name, key)
            print(f"deploy: {len(replicas)} Triton replica(s): {[r.name for r in replicas]}")
        published = publish_version(
            args.export,
            deploy.model_repository,
            model_name=model_name,
            metrics=metrics,
            decision=decision,
            record=source is None,
        )
    except (DeployRefusedError, ModelControlError) as exc:
        print(f"deploy: refused: {exc}; nothing published", file=sys.stderr)
        return 1
    print(f"deploy: published {model_name} version {published.version} -> {published.path}")
    if source is None:
        return 0
    if not _serve_everywhere(published, source, model_name, key, args.timeout):
        return 1
    record_champion(published)
    print(f"deploy: every replica serves version {published.version}; recorded as champion")
    return 0
