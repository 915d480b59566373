"""Validating a mapping into a typed dataclass, driven by its type hints and a little field metadata.

Run configs, study files and their sections are dataclasses whose fields declare a type and,
through `option`, a range or choices; `build_dataclass` checks a mapping (from YAML, `--set` or
a stored trial) against them strictly: an unknown key, a wrong type or a value out of range is
one ConfigError naming the file, the key path, the value and what is allowed. Adding a field
means declaring it once.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin

from hpsearch.errors import ConfigError


@dataclass(frozen=True)
class Where:
    """Where a value was given, for errors: the file (or flag) and the key path inside it.

    Printed as `file: key.path` (`file` alone at the top level), the form every config error starts with.
    """

    source: str
    path: str = ""

    def __str__(self) -> str:
        return f"{self.source}: {self.path}" if self.path else self.source

    def key(self, name: str) -> Where:
        return Where(self.source, f"{self.path}.{name}" if self.path else name)

    def item(self, index: int) -> Where:
        return Where(self.source, f"{self.path}[{index}]")


def option(default: Any, **meta: Any) -> Any:
    """A dataclass field with validation metadata (ge, gt, le, lt, choices, length)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def unit(default: float) -> Any:
    """A field that is a probability or a fraction: a number in [0, 1]."""
    return option(default, ge=0.0, le=1.0)


def check_keys(body: dict[str, Any], allowed: Any, at: Where) -> None:
    """Every key of `body` is one of `allowed`, else a ConfigError naming the first that is not."""
    for key in body:
        if key not in allowed:
            raise ConfigError(f"{at.key(str(key))}: unknown key; allowed: {', '.join(sorted(allowed))}")


def build_dataclass(cls: type, body: Any, source: str | Where, section: str = "") -> Any:
    """Validate a mapping into dataclass `cls` (nested dataclasses included), strictly.

    Args:
        cls: a dataclass whose fields are typed like the config sections.
        body: the mapping (e.g. from YAML).
        source: file name (or "--set") for messages, or where `body` is (then `section` is not used).
        section: the path of `body` inside the file ("" at top level).
    """
    at = source if isinstance(source, Where) else Where(source, section)
    if not isinstance(body, dict):
        raise ConfigError(f"{at.source}: {at.path or 'top level'}: must be a mapping; got {body!r}")
    return _build(cls, body, at)


def coerce_field(cls: type, name: str, value: Any, where: str | Where) -> Any:
    """Check one value against field `name` of dataclass `cls` (type, range, choices)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    at = where if isinstance(where, Where) else Where(where)
    return _coerce(value, typing.get_type_hints(cls)[name], dict(fields[name].metadata), at)


def _build(cls: type, body: dict[str, Any], at: Where) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    check_keys(body, fields, at)
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in body.items():
        values[name] = _coerce(value, hints[name], dict(fields[name].metadata), at.key(name))
    return cls(**values)


def _coerce(value: Any, tp: Any, meta: dict[str, Any], where: Where) -> Any:
    """Check `value` against type `tp` and the field metadata; return the typed value."""
    if dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value, where)  # type: ignore[arg-type]
    if tp is Any:
        return value
    origin = get_origin(tp)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: must be a mapping; got {value!r}")
        return value
    if origin in (Union, types.UnionType):
        return _coerce_union(value, tp, meta, where)
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{where}: must be one of {list(get_args(tp))}; got {value!r}")
        return value
    if origin is list:
        return _coerce_list(value, get_args(tp)[0], meta, where)
    if not isinstance(tp, type):
        raise TypeError(f"unsupported config type {tp!r} at {where}")
    return _check_range(_coerce_scalar(value, tp, where), meta, where)


def _coerce_union(value: Any, tp: Any, meta: dict[str, Any], where: Where) -> Any:
    options = [a for a in get_args(tp) if a is not type(None)]
    if value is None:
        if type(None) in get_args(tp):
            return None
        raise ConfigError(f"{where}: must not be empty")
    errors = []
    for option in options:
        try:
            return _coerce(value, option, meta, where)
        except ConfigError as exc:
            errors.append(exc)
    # Report the errors of the options that match the value's shape (list vs scalar).
    is_list = isinstance(value, list)
    matching = [err for option, err in zip(options, errors, strict=True) if (get_origin(option) is list) == is_list]
    if len(matching) > 1:  # e.g. an int or the word "none"
        reasons = [str(err).removeprefix(f"{where}: ").split("; got ")[0] for err in matching]
        raise ConfigError(f"{where}: " + "; or ".join(reasons) + f"; got {value!r}")
    raise (matching or errors)[0]


def _coerce_list(value: Any, item_tp: Any, meta: dict[str, Any], where: Where) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: must be a list of {getattr(item_tp, '__name__', item_tp)}; got {value!r}")
    if "length" in meta and len(value) != meta["length"]:
        raise ConfigError(f"{where}: must have {meta['length']} items; got {value!r}")
    return [_coerce(v, item_tp, meta, where.item(i)) for i, v in enumerate(value)]


def _coerce_scalar(value: Any, tp: Any, where: Where) -> Any:
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: must be true or false; got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: must be an integer; got {value!r}")
        return value
    if tp is float:
        return _to_float(value, where)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: must be a string; got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp!r} at {where}")  # a bug, not bad input


def _to_float(value: Any, where: Where) -> float:
    # YAML 1.1 reads `1e-4` (no dot) as a string; accept it as the number the user meant.
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: must be a number; got {value!r}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(f"{where}: must be a finite number; got {value!r}")
    return float(value)


def _check_range(value: Any, meta: dict[str, Any], where: Where) -> Any:
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{where}: must be one of {list(meta['choices'])}; got {value!r}")
    bounds = {"ge": (">=", lambda a, b: a >= b), "gt": (">", lambda a, b: a > b),
              "le": ("<=", lambda a, b: a <= b), "lt": ("<", lambda a, b: a < b)}
    for key, (sign, ok) in bounds.items():
        if key in meta and not ok(value, meta[key]):
            allowed = range_text(meta)
            raise ConfigError(f"{where}: must be {allowed}; got {value!r} (needs {sign} {meta[key]})")
    return value


def range_text(meta: dict[str, Any]) -> str:
    """A field's bounds in words (`>= 1 and <= 100`), from its metadata."""
    low = f"{'>=' if 'ge' in meta else '>'} {meta.get('ge', meta.get('gt'))}" if {"ge", "gt"} & meta.keys() else ""
    high = f"{'<=' if 'le' in meta else '<'} {meta.get('le', meta.get('lt'))}" if {"le", "lt"} & meta.keys() else ""
    return " and ".join(p for p in (low, high) if p)
