"""Every stage of ``dvc.yaml`` lists the project code its command runs.

For each stage, the ``qdtrack`` subcommands of its ``cmd`` are mapped to the modules that
implement them (the CLI's handler table), and the project modules those import,
transitively (``tests/import_graph.py``), must each be covered by one of the stage's
``deps`` (the file itself or a folder above it). Otherwise a code change could leave
``dvc repro`` saying "up to date" on results the new code would not produce.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from import_graph import REPO, closure, import_graph, module_file

from qdtrack.cli import _HANDLERS

FIXTURES = Path(__file__).parent / "fixtures"


def stage_commands(stage: dict[str, Any]) -> list[list[str]]:
    """The ``qdtrack`` invocations of a stage: the words after ``qdtrack``."""
    cmds = stage["cmd"] if isinstance(stage["cmd"], list) else [stage["cmd"]]
    calls = []
    for cmd in cmds:
        for part in re.split(r"&&|;|\|", cmd):
            words = shlex.split(part)
            if words and words[0] == "qdtrack":
                calls.append(words[1:])
    return calls


def handler_module(words: list[str]) -> str:
    """The module whose ``main`` runs ``qdtrack WORDS...``."""
    for key in (" ".join(words[:2]), words[0]):
        if key in _HANDLERS:
            return _HANDLERS[key].split(":")[0]
    raise AssertionError(f"qdtrack {' '.join(words[:2])}: not a qdtrack subcommand")


def uncovered(stage: dict[str, Any], graph: dict[str, set[str]]) -> list[str]:
    """Source files the stage's commands import that none of its deps covers."""
    starts = ["qdtrack.cli", *(handler_module(words) for words in stage_commands(stage))]
    files = sorted(
        str(path.relative_to(REPO))
        for module in closure(starts, graph)
        if (path := module_file(module)) is not None
    )
    deps = [str(dep).rstrip("/") for dep in stage.get("deps", [])]
    return [f for f in files if not any(f == d or f.startswith(f"{d}/") for d in deps)]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def _stages(path: Path) -> dict[str, dict[str, Any]]:
    stages: dict[str, dict[str, Any]] = yaml.safe_load(path.read_text())["stages"]
    return stages


@pytest.mark.parametrize("name", sorted(_stages(REPO / "dvc.yaml")))
def test_stage_deps_cover_the_code_it_runs(name: str, graph: dict[str, set[str]]) -> None:
    stage = _stages(REPO / "dvc.yaml")[name]
    assert stage_commands(stage), f"stage {name} runs no qdtrack command"
    missing = uncovered(stage, graph)
    assert not missing, f"dvc.yaml stage {name!r} does not list these deps: {missing}"


def test_the_check_finds_hand_picked_gaps(graph: dict[str, set[str]]) -> None:
    """The dvc.yaml before this check: the gaps a code change fell through."""
    stages = _stages(FIXTURES / "dvc_hand_picked_deps.yaml")
    gaps = {name: set(uncovered(stage, graph)) for name, stage in stages.items()}
    assert {"qdtrack/evaluation/mot.py", "qdtrack/evaluation/tao.py"} <= gaps["gate"]
    assert {"qdtrack/config.py", "qdtrack/resize.py", "qdtrack/data/coco.py"} <= gaps["train"]
    assert {"qdtrack/data/frames.py", "qdtrack/render.py", "qdtrack/resize.py"} <= gaps["track"]
    assert all(gaps.values()), gaps  # every stage missed something


def test_subcommands_resolve() -> None:
    stage = {"cmd": ["rm -rf x && qdtrack data convert --out y", "qdtrack gate --out z"]}
    assert [handler_module(w) for w in stage_commands(stage)] == [
        "qdtrack.data.prepare",
        "qdtrack.gate",
    ]
    with pytest.raises(AssertionError, match="not a qdtrack subcommand"):
        handler_module(["frobnicate"])


def test_every_config_has_the_blocks_the_stages_read() -> None:
    """DVC refuses a stage whose params are missing: any pipeline config (one with a
    ``data`` block; ``cpu_pets09.yaml`` is the PETS09 benchmark's) may become params.yaml."""
    stages = _stages(REPO / "dvc.yaml")
    blocks = {str(p).split(".")[0] for stage in stages.values() for p in stage.get("params", [])}
    for config in [REPO / "params.yaml", *sorted((REPO / "configs").glob("*.yaml"))]:
        present = set(yaml.safe_load(config.read_text()))
        if "data" not in present:
            continue
        assert blocks <= present, f"{config.name} lacks {sorted(blocks - present)}"
