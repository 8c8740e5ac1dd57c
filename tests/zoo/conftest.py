"""A private model zoo: the four published layouts, generated, served from 127.0.0.1."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from qdtrack import convert, zoo

from .published import (
    FileServer,
    Layout,
    r50_layout,
    r101_layout,
    random_state,
    save_published,
    serve,
    tao_class_names,
)

torch.set_flush_denormal(True)

#: name -> (layout, seed, favoured mmdet label and its bias, meta CLASSES); seeds differ
#: so that the two files of each layout differ like the published ones do.
_Spec = tuple[Callable[[], Layout], int, int, float, Callable[[], tuple[str, ...]]]
_SPECS: dict[str, _Spec] = {
    "qdtrack-r50-mot17-half": (r50_layout, 1, 0, 4.0, lambda: ("pedestrian",)),
    "qdtrack-r50-crowdhuman-mot17-half": (r50_layout, 2, 0, 4.0, lambda: ("pedestrian",)),
    "qdtrack-r101-lvis": (r101_layout, 3, 7, 10.0, tao_class_names),
    "qdtrack-r101-tao": (r101_layout, 4, 7, 10.0, tao_class_names),
}


@dataclass
class PublishedFiles:
    """Generated stand-ins for the published files, written on first use (session-wide)."""

    root: Path
    files: dict[str, Path] = field(default_factory=dict)

    def file(self, name: str) -> Path:
        """``root/<folder>/<published stem>-<own hash prefix>.pth`` for zoo ``name``."""
        if name not in self.files:
            layout, seed, favoured, bias, classes = _SPECS[name]
            model = zoo.MODELS[name]
            stem = re.sub(r"-[0-9a-f]{8}\.pth$", "", model.file_name)
            state = random_state(layout(), seed=seed, favoured_class=favoured, favoured_bias=bias)
            self.files[name] = save_published(state, self.root / model.folder, stem, classes())
        return self.files[name]


@pytest.fixture(scope="session")
def published(tmp_path_factory: pytest.TempPathFactory) -> PublishedFiles:
    return PublishedFiles(tmp_path_factory.mktemp("published"))


@dataclass
class LocalZoo:
    """The zoo pointed at a local server, with an empty torch hub cache of its own."""

    published: PublishedFiles
    served: Path
    server: FileServer
    monkeypatch: pytest.MonkeyPatch

    def use(self, name: str) -> Path:
        """Serve the generated file for ``name`` and make ``MODELS[name]`` expect it."""
        source = self.published.file(name)
        model = zoo.MODELS[name]
        target = self.served / model.folder / source.name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, target)
        self.monkeypatch.setitem(
            zoo.MODELS, name, dataclasses.replace(model, file_name=source.name)
        )
        return target

    def requests_for(self, name: str) -> int:
        return sum(path.endswith(zoo.MODELS[name].file_name) for path in self.server.requests)


@pytest.fixture
def local_zoo(
    published: PublishedFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalZoo]:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    served = tmp_path / "served"
    served.mkdir()
    with serve(served) as server:
        monkeypatch.setenv(zoo.BASE_URL_ENV, server.url)
        yield LocalZoo(published, served, server, monkeypatch)


@pytest.fixture
def small_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both layouts convert with a 128-pixel input instead of 1088 / 1333x800 (CPU time)."""
    for key, layout in convert.LAYOUTS.items():
        config = {**layout.config, "model": {**layout.config["model"], "img_scale": [128, 128]}}
        monkeypatch.setitem(convert.LAYOUTS, key, dataclasses.replace(layout, config=config))
