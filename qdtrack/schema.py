"""Frozen dataclasses from plain mappings (YAML, JSON, ``--set``), with errors that name the key.

Every settings object of the project (the blocks of ``params.yaml``, each tracker's
settings) is a frozen dataclass whose annotations are the schema: ``from_mapping`` checks
a mapping against them and builds the object, so a typo or a wrong type is reported as
``params.yaml: train.epochs: expected an integer, got 'abc'`` before any work starts.

Supported annotations: ``bool``, ``int``, ``float``, ``str``, ``Literal[...]``,
``X | None``, ``tuple[X, ...]``, ``tuple[X, Y]``, nested dataclasses and ``Any``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar, get_args, get_origin

T = TypeVar("T")


class SchemaError(ValueError):
    """A mapping does not fit a settings dataclass; the message names the key."""


def from_mapping(cls: type[T], data: Any, where: str) -> T:
    """Build dataclass ``cls`` from ``data`` (a mapping), checking keys and value types.

    Args:
        cls: a dataclass type (frozen, annotated fields).
        data: the mapping; ``None`` counts as empty (a YAML block with no keys).
        where: the dotted location of ``data`` used in messages, e.g.
            ``"params.yaml: train"``.

    Raises:
        SchemaError: unknown keys, missing required keys, or a value of the wrong type;
            also any ``ValueError`` raised by the dataclass's own ``__post_init__``,
            prefixed with ``where``.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise SchemaError(f"{where}: expected a mapping of settings, got {_show(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(str(k) for k in data if k not in fields)
    if unknown:
        names = ", ".join(f"{where}.{k}" for k in unknown)
        plural = "s" if len(unknown) > 1 else ""
        raise SchemaError(
            f"{names}: unknown key{plural}; valid keys here: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {name: convert(value, hints[name], f"{where}.{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field without a default is missing
        raise SchemaError(f"{where}: {exc}") from exc
    except SchemaError:
        raise
    except ValueError as exc:
        raise SchemaError(f"{where}: {exc}") from exc


def check_choices(obj: Any, where: str) -> None:
    """Raise :class:`SchemaError` when a ``Literal`` field of dataclass ``obj`` holds another value.

    For objects built directly in code (``from_mapping`` already checks its input); call it
    from ``__post_init__``.
    """
    for name, annotation in typing.get_type_hints(type(obj)).items():
        if get_origin(annotation) is Literal:
            convert(getattr(obj, name), annotation, f"{where}.{name}")


def to_plain(value: Any) -> Any:
    """A dataclass (or nested value) as plain JSON/YAML-able data; tuples become lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    return value


def convert(value: Any, annotation: Any, where: str) -> Any:
    """``value`` checked against ``annotation`` (and converted: lists become tuples)."""
    if annotation is Any:
        return value
    origin = get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return _convert_union(value, get_args(annotation), where)
    if origin is Literal:
        choices = get_args(annotation)
        if value not in choices or isinstance(value, bool) != isinstance(choices[0], bool):
            raise SchemaError(
                f"{where}: expected one of {', '.join(map(repr, choices))}, got {_show(value)}"
            )
        return value
    if origin is tuple:
        return _convert_tuple(value, get_args(annotation), where)
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise SchemaError(f"{where}: expected a mapping, got {_show(value)}")
        return dict(value)
    if dataclasses.is_dataclass(annotation):
        return from_mapping(annotation, value, where)  # type: ignore[arg-type]
    if annotation in _SCALARS:
        return _SCALARS[annotation](value, where)
    raise TypeError(f"{where}: unsupported settings annotation {annotation!r}")


def _convert_union(value: Any, options: tuple[Any, ...], where: str) -> Any:
    if value is None and type(None) in options:
        return None
    candidates = [o for o in options if o is not type(None)]
    errors = []
    for option in candidates:
        try:
            return convert(value, option, where)
        except SchemaError as exc:
            errors.append(str(exc).removeprefix(f"{where}: "))
    nullable = " or null" if type(None) in options else ""
    raise SchemaError(f"{where}: {' / '.join(errors)}{nullable}")


def _convert_tuple(value: Any, items: tuple[Any, ...], where: str) -> tuple[Any, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise SchemaError(f"{where}: expected a list, got {_show(value)}")
    if len(items) == 2 and items[1] is Ellipsis:
        return tuple(convert(v, items[0], f"{where}[{i}]") for i, v in enumerate(value))
    if len(value) != len(items):
        raise SchemaError(f"{where}: expected a list of {len(items)} values, got {_show(value)}")
    pairs = enumerate(zip(value, items, strict=True))
    return tuple(convert(v, t, f"{where}[{i}]") for i, (v, t) in pairs)


def _to_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise SchemaError(f"{where}: expected true or false, got {_show(value)}")
    return value


def _number(value: Any, where: str, kind: str) -> float:
    # YAML reads 1e-3 (no dot) as a string; accept numbers written as strings.
    if isinstance(value, bool):
        raise SchemaError(f"{where}: expected {kind}, got {_show(value)}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SchemaError(f"{where}: expected {kind}, got {_show(value)}") from None


def _to_int(value: Any, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _number(value, where, "an integer")
    if not number.is_integer():
        raise SchemaError(f"{where}: expected an integer, got {_show(value)}")
    return int(number)


def _to_float(value: Any, where: str) -> float:
    return _number(value, where, "a number")


def _to_str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise SchemaError(f"{where}: expected a string, got {_show(value)}")
    return value


_SCALARS = {bool: _to_bool, int: _to_int, float: _to_float, str: _to_str}


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
