"""Tree-structured search spaces: a small YAML language compiled to define-by-run suggestions.

A space file maps config keys (`section.field`) to nodes:

    params:
      model.z_dim: {int: [50, 300]}                     # int range (optional step, log)
      train.g_lr: {float: [1.0e-4, 1.0e-3], log: true}  # float range
      model.g_kernels: {per_layer: {int: [3, 5]}}       # one suggestion per block
      model.d_cond:                                     # categorical ...
        choice: [projection, concat, hidden_concat]
        when:                                           # ... with branch-only parameters
          hidden_concat:
            model.d_hidden_layer: {int: [1, 2]}
      train.loss: hinge                                 # a fixed value

Parameter names are the field names (`z_dim`, `d_hidden_layer`), per-layer ones get the
block index (`g_kernels_0`), so they read well in the dashboard and in reports. Every node
is checked against the config field it sets when the file is loaded.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from hpsearch.config import PER_LAYER_FIELDS, SECTIONS, RunConfig, from_dict, section_class
from hpsearch.errors import ConfigError
from hpsearch.io import read_yaml
from hpsearch.validation import Where, coerce_field

MAX_CHECKED_VALUES = 1024
_RANGE_KEYS = {"int": {"int", "step", "log"}, "float": {"float", "step", "log"}}


@dataclass
class Node:
    """One parameter of the space.

    Attributes:
        section, key: the config field it sets.
        kind: "int", "float", "choice" or "fixed".
        low, high, step, log: for ranges.
        choices: for "choice"; `value` for "fixed".
        per_layer: suggest one value per block (the field becomes a list).
        when: for "choice": child nodes that exist only under one choice.
    """

    section: str
    key: str
    kind: str
    low: float = 0
    high: float = 0
    step: float | None = None
    log: bool = False
    choices: list[Any] = field(default_factory=list)
    value: Any = None
    per_layer: bool = False
    when: dict[Any, list[Node]] = field(default_factory=dict)

    def names(self, n_blocks: int) -> list[str]:
        """The Optuna parameter names of this node."""
        return [f"{self.key}_{i}" for i in range(n_blocks)] if self.per_layer else [self.key]

    def suggest_one(self, trial: optuna.Trial, name: str) -> Any:
        if self.kind == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        if self.kind == "float":
            return trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log)
        return trial.suggest_categorical(name, self.choices)


@dataclass
class SearchSpace:
    """A loaded space: nodes in file order; `suggest` turns a trial into a validated RunConfig."""

    path: Path
    nodes: list[Node]

    @property
    def fingerprint(self) -> str:
        """Hash of the space definition: a study may only be resumed with the same space."""
        return hashlib.sha256(json.dumps(_outline(self.nodes), sort_keys=True, default=str).encode()).hexdigest()[:16]

    def suggest(self, trial: optuna.Trial, base: dict[str, Any], n_blocks: int, source: str | None = None) -> RunConfig:
        """Ask `trial` for every active parameter and return the validated config.

        Args:
            source: how errors name the config (default: the space file, the trial and its parameters).

        Raises:
            ConfigError: the combination is invalid for the model (names the parameters).
        """
        raw = copy.deepcopy(base)
        for node in self.nodes:
            _apply(node, trial, raw, n_blocks)
        if source is None:
            source = f"{self.path} (trial {getattr(trial, 'number', '?')}: {trial.params})"
        return from_dict(raw, source)

    def parameters(self, n_blocks: int) -> list[tuple[str, Node, bool]]:
        """Every Optuna parameter the space can suggest, once, in file order: (name, node, conditional).

        A name under several branches (e.g. `embed_dim` under each conditioning that embeds)
        is listed at its first place.
        """
        found: dict[str, tuple[str, Node, bool]] = {}
        for node, conditions in _walk(self.nodes, []):
            for name in node.names(n_blocks) if node.kind != "fixed" else []:
                found.setdefault(name, (name, node, bool(conditions)))
        return list(found.values())

    def touches(self, section: str) -> bool:
        """Some node of the space sets a field of `section` (e.g. "metrics")."""
        return any(node.section == section for node, _ in _walk(self.nodes, []))

    def check(self, base: dict[str, Any], n_blocks: int, each: Callable[[RunConfig], None] | None = None) -> None:
        """Validate every value each node can produce, under its branch, against `base`, alone and in pairs.

        Bad ranges then fail at load time, not as failed trials hours later. Every choice is
        tried, and every value of an int range on a field that allows only some values inside
        its span (attention resolutions, kernel sizes: fields with `choices`; up to
        `MAX_CHECKED_VALUES`, and a longer range on such a field fails at its ends anyway).
        Other ranges are tried at their ends, which is a proof for them: their fields accept
        an interval, also where it depends on other fields (hidden-concat layers: 0..blocks).

        Then every pair of nodes that can be active together is tried with every pair of those
        values: the config's rules that tie fields together each tie two (generator `sagan` and
        its attention resolution, `train.compile` and loss `wgan_gp`), so a combination the
        space can draw and the config refuses is found here, whatever the other nodes' defaults.

        `each`, when given, is a further check of every config tried (one that needs the data, which
        a worker runs once it has loaded them); its ConfigError is reported like the config's own.
        """
        defaults: dict[str, Any] = {}
        walked = _walk(self.nodes, [])
        for node, _ in walked:
            for name in node.names(n_blocks):
                defaults.setdefault(name, node.low if node.kind in ("int", "float") else
                                    (node.choices[0] if node.kind == "choice" else None))
        for node, conditions in walked:
            for value in _values_to_check(node):
                self._try(base, n_blocks, defaults, conditions, [(node, value)], each)
        for i, (a, cond_a) in enumerate(walked):
            for b, cond_b in walked[i + 1:]:
                both = _merge_conditions(cond_a, cond_b)
                if both is None:  # under branches that exclude each other
                    continue
                for va in _values_to_check(a):
                    for vb in _values_to_check(b):
                        if _agrees(both, [(a, va), (b, vb)]):
                            self._try(base, n_blocks, defaults, both, [(a, va), (b, vb)], each)

    def _try(self, base: dict[str, Any], n_blocks: int, defaults: dict[str, Any],
             conditions: list[tuple[str, Any]], values: list[tuple[Node, Any]],
             each: Callable[[RunConfig], None] | None = None) -> None:
        params = {**defaults, **dict(conditions)}
        for node, value in values:
            params.update({n: value for n in node.names(n_blocks)})
        try:
            cfg = self.suggest(optuna.trial.FixedTrial(params), base, n_blocks, source="")  # type: ignore[arg-type]
            if each is not None:
                each(cfg)
        except ConfigError as exc:
            what = " with ".join(f"params.{node.section}.{node.key}: value {value!r}" for node, value in values)
            raise ConfigError(f"{self.path}: {what} (with {dict(conditions) or 'defaults'}) gives an invalid "
                              f"config: {str(exc).removeprefix(': ')}") from exc


def _merge_conditions(a: list[tuple[str, Any]], b: list[tuple[str, Any]]) -> list[tuple[str, Any]] | None:
    """The conditions of both branches, or None when they ask one choice for two values."""
    merged = dict(a)
    for key, value in b:
        if merged.setdefault(key, value) != value:
            return None
    return list(merged.items())


def _agrees(conditions: list[tuple[str, Any]], values: list[tuple[Node, Any]]) -> bool:
    """The tried values do not contradict the branch conditions (a choice tried at a value its child excludes)."""
    required = dict(conditions)
    return all(node.key not in required or node.kind != "choice" or required[node.key] == value
               for node, value in values)


def _values_to_check(node: Node) -> list[Any]:
    """The values `check` tries for a node: all of a discrete range when it is short, else its ends."""
    if node.kind == "fixed":
        return [None]
    if node.kind == "choice":
        return list(node.choices)
    if node.kind == "int":
        values = range(int(node.low), int(node.high) + 1, int(node.step or 1))
        holes = "choices" in _field_meta(node)  # only some values inside the range are allowed
        return list(values) if holes and len(values) <= MAX_CHECKED_VALUES else [values[0], values[-1]]
    high = node.high if node.step is None else node.low + math.floor((node.high - node.low) / node.step) * node.step
    return [node.low, high]


def _field_meta(node: Node) -> dict[str, Any]:
    cls = section_class(node.section)
    assert cls is not None  # checked when the node was parsed
    return dict(next(f.metadata for f in dataclasses.fields(cls) if f.name == node.key))


def load_space(path: str | Path) -> SearchSpace:
    """Read and check a search-space YAML.

    Raises:
        ConfigError: missing file, bad YAML, unknown config key, malformed node, or a value
            the config field does not accept; the message names the file and the path in it.
    """
    path = Path(path)
    raw = read_yaml(path, "search space")
    if not isinstance(raw, dict) or not isinstance(raw.get("params"), dict):
        raise ConfigError(f"{path}: top level must be a mapping with a `params` mapping (and optional `description`)")
    unknown = set(raw) - {"params", "description"}
    if unknown:
        raise ConfigError(f"{path}: {sorted(unknown)[0]}: unknown key; allowed: description, params")
    nodes = _parse_params(raw["params"], path, "params")
    _check_unique(nodes, path)
    return SearchSpace(path, nodes)


# --------------------------------------------------------------------------- parsing


def _parse_params(body: Any, path: Path, where: str) -> list[Node]:
    if not isinstance(body, dict):
        raise ConfigError(f"{path}: {where}: must be a mapping of section.field to a node; got {body!r}")
    return [_parse_node(str(k), v, path, f"{where}.{k}") for k, v in body.items()]


# Fields a worker reads once, from the base config, for all its trials (the dataset it loads).
PER_WORKER_FIELDS = ("data.name", "data.root", "data.image_size", "data.channels", "data.download")


def _parse_node(target: str, spec: Any, path: Path, where: str) -> Node:
    section, _, key = target.rpartition(".")
    cls = section_class(section) if section else None
    fields = {f.name: f for f in dataclasses.fields(cls)} if cls is not None else {}
    if key not in fields or dataclasses.is_dataclass(typing.get_type_hints(cls).get(key)):
        raise ConfigError(f"{path}: {where}: {target!r} is not a config key (section.field with a section in "
                          f"{sorted(SECTIONS)} and one of its fields, or section.group.field such as "
                          "data.augment.rotate)")
    if target in PER_WORKER_FIELDS:
        raise ConfigError(f"{path}: {where}: {target!r} cannot be searched: each worker loads the dataset of the "
                          "base config once, so every trial would train on it whatever the space drew; search "
                          "datasets with one study each")
    per_layer = isinstance(spec, dict) and "per_layer" in spec
    if per_layer:
        if key not in PER_LAYER_FIELDS or set(spec) != {"per_layer"}:
            raise ConfigError(f"{path}: {where}: per_layer is only for {', '.join(PER_LAYER_FIELDS)} "
                              "and takes one node")
        spec = spec["per_layer"]
    node = _parse_kind(section, key, spec, path, where)
    node.per_layer = per_layer
    if per_layer and (node.kind == "fixed" or node.when):
        raise ConfigError(f"{path}: {where}: per_layer needs a range or a choice without `when`")
    return node


def _parse_kind(section: str, key: str, spec: Any, path: Path, where: str) -> Node:
    cls = _cls(section)
    if not isinstance(spec, dict):
        return Node(section, key, "fixed", value=coerce_field(cls, key, spec, Where(str(path), where)))
    kinds = {"int", "float", "choice"} & set(spec)
    if len(kinds) != 1:
        raise ConfigError(f"{path}: {where}: a node has exactly one of int, float, choice (or is a plain value); "
                          f"got keys {sorted(spec)}")
    kind = kinds.pop()
    if kind == "choice":
        return _parse_choice(section, key, spec, path, where)
    extra = set(spec) - _RANGE_KEYS[kind]
    bounds = spec[kind]
    if extra or not isinstance(bounds, list) or len(bounds) != 2:
        raise ConfigError(f"{path}: {where}: {kind} range is {{{kind}: [low, high], step: s, log: bool}}; got {spec!r}")
    low, high = (coerce_field(cls, key, b, Where(str(path), f"{where}.{kind}").item(i)) for i, b in enumerate(bounds))
    if kind == "int" and not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds):
        raise ConfigError(f"{path}: {where}: int range bounds must be integers; got {bounds!r}")
    if not low <= high:
        raise ConfigError(f"{path}: {where}: `low <= high` must hold, but got (low={low}, high={high})")
    log, step = spec.get("log", False), spec.get("step")
    if not isinstance(log, bool) or (log and (low <= 0 or step is not None)):
        raise ConfigError(f"{path}: {where}: log must be true/false, needs low > 0 and no step; got {spec!r}")
    if step is not None and not _valid_step(kind, step):
        what = "a positive integer" if kind == "int" else "a positive finite number"
        raise ConfigError(f"{path}: {where}.step: must be {what} for an {kind} range; got {step!r}")
    return Node(section, key, kind, low=low, high=high, step=step, log=log)


def _valid_step(kind: str, step: Any) -> bool:
    if isinstance(step, bool) or not isinstance(step, int | float):
        return False
    if kind == "int":
        return isinstance(step, int) and step >= 1
    return math.isfinite(step) and step > 0


def _parse_choice(section: str, key: str, spec: dict[str, Any], path: Path, where: str) -> Node:
    choices = spec["choice"]
    if set(spec) - {"choice", "when"} or not isinstance(choices, list) or not choices:
        raise ConfigError(f"{path}: {where}: choice is {{choice: [a, b, ...], when: {{a: {{...}}}}}}; got {spec!r}")
    cls = _cls(section)
    for i, c in enumerate(choices):
        if c is not None and not isinstance(c, bool | int | float | str):
            raise ConfigError(f"{path}: {where}.choice[{i}]: a choice is a plain value (number, string, true/false); "
                              f"got {c!r} (a per-layer field takes `per_layer: {{choice: [...]}}`)")
    if len(set(map(repr, choices))) != len(choices):
        raise ConfigError(f"{path}: {where}.choice: the choices repeat a value; got {choices!r}")
    choices = [coerce_field(cls, key, c, Where(str(path), f"{where}.choice").item(i)) for i, c in enumerate(choices)]
    when_spec = spec.get("when")
    when_spec = {} if when_spec is None else when_spec
    if not isinstance(when_spec, dict):
        raise ConfigError(f"{path}: {where}.when: must be a mapping of a choice to its parameters, e.g. "
                          f"{{{choices[0]}: {{section.field: node}}}}; got {when_spec!r}")
    when: dict[Any, list[Node]] = {}
    for value, body in when_spec.items():
        if value not in choices:
            raise ConfigError(f"{path}: {where}.when.{value}: not one of the choices {choices}")
        when[value] = _parse_params(body, path, f"{where}.when.{value}")
    return Node(section, key, "choice", choices=choices, when=when)


def _check_unique(nodes: list[Node], path: Path) -> None:
    """A name may repeat only in different branches with the same definition (Optuna's rule)."""
    seen: dict[str, Node] = {}
    for node, _ in _walk(nodes, []):
        other = seen.setdefault(node.key, node)
        if other is not node and _outline([other]) != _outline([node]):
            raise ConfigError(f"{path}: params: {node.section}.{node.key} is defined twice with different ranges")


# --------------------------------------------------------------------------- applying


def _cls(section: str) -> type:
    cls = section_class(section)
    assert cls is not None  # checked by _parse_node
    return cls


def _apply(node: Node, trial: optuna.Trial, raw: dict[str, Any], n_blocks: int) -> None:
    section = raw
    for part in node.section.split("."):  # e.g. data, then augment
        if section.get(part) is None:  # absent, or `model:` left empty in the study's base
            section[part] = {}
        section = section[part]
    if node.kind == "fixed":
        section[node.key] = copy.deepcopy(node.value)
        return
    values = [node.suggest_one(trial, name) for name in node.names(n_blocks)]
    section[node.key] = values if node.per_layer else values[0]
    for child in node.when.get(values[0], []) if node.kind == "choice" else []:
        _apply(child, trial, raw, n_blocks)


def _walk(nodes: list[Node], conditions: list[tuple[str, Any]]) -> list[tuple[Node, list[tuple[str, Any]]]]:
    """Every node with the (choice name, value) conditions under which it exists."""
    out = []
    for node in nodes:
        out.append((node, conditions))
        for value, children in node.when.items():
            out.extend(_walk(children, [*conditions, (node.key, value)]))
    return out


def _outline(nodes: list[Node]) -> list[Any]:
    return [{**{k: v for k, v in dataclasses.asdict(n).items() if k != "when"},
             "when": {str(k): _outline(v) for k, v in n.when.items()}} for n in nodes]
