"""The package's layout holds: no import cycle, and the model depends on nothing around it."""

from __future__ import annotations

from import_graph import closure, cycles, import_graph, project_modules


def test_no_import_cycle_anywhere() -> None:
    assert cycles(import_graph()) == []


def test_the_model_imports_neither_data_nor_config() -> None:
    graph = import_graph(packages=("qdtrack",))
    model = [m for m in project_modules(packages=("qdtrack",)) if m.startswith("qdtrack.model")]
    reached = closure(model, graph)
    assert not {m for m in reached if m.startswith(("qdtrack.data", "qdtrack.config"))}


def test_cycles_are_found() -> None:
    """The check above can fail: a two-module loop is reported."""
    assert cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]


def test_type_checking_imports_are_not_edges(tmp_path) -> None:
    package = tmp_path / "qdtrack"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from qdtrack import b\n"
    )
    (package / "b.py").write_text("from qdtrack import a\n")
    graph = import_graph(tmp_path, packages=("qdtrack",))
    assert graph["qdtrack.a"] == set() and graph["qdtrack.b"] == {"qdtrack.a"}
