"""Search-space language: branches, validity of compiled configs, the paper's ranges, bad files."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml

from hpsearch.errors import ConfigError
from hpsearch.models import build_discriminator, build_generator
from hpsearch.search.space import load_space
from hpsearch.search.study_file import load_study_config

ROOT = Path(__file__).resolve().parents[2]
TINY, PAPER = ROOT / "search_spaces" / "tiny.yaml", ROOT / "search_spaces" / "dogan2020.yaml"


def _trials(space_path: Path, size: int, n: int, sampler: optuna.samplers.BaseSampler):  # type: ignore[no-untyped-def]
    space = load_space(space_path)
    base = {"data": {"name": "digits", "image_size": size}}
    blocks = {16: 2, 32: 3}[size]
    space.check(base, blocks)
    study = optuna.create_study(sampler=sampler)
    out = []
    for _ in range(n):
        trial = study.ask()
        cfg = space.suggest(trial, base, blocks)
        study.tell(trial, 0.0)
        out.append((trial.params, cfg))
    return out


@pytest.mark.parametrize("sampler", [optuna.samplers.RandomSampler(seed=0), optuna.samplers.TPESampler(seed=0)])
def test_branch_parameters_exist_only_under_their_branch(sampler: optuna.samplers.BaseSampler) -> None:
    for params, cfg in _trials(PAPER, 32, 40, sampler):
        assert ("g_hidden_layer" in params) == (params["g_cond"] == "hidden_concat")
        assert ("d_hidden_layer" in params) == (params["d_cond"] == "hidden_concat")
        uses_embedding = params["g_cond"] != "cbn_embedding" or params["d_cond"] != "projection"
        assert ("embed_dim" in params) == uses_embedding
        assert [params[f"g_kernels_{i}"] for i in range(3)] == cfg.model.g_kernels
        assert cfg.model.g_cond == params["g_cond"] and cfg.train.loss == "hinge"


def test_compiled_configs_are_valid_and_build() -> None:
    seen = set()
    for params, cfg in _trials(TINY, 16, 30, optuna.samplers.RandomSampler(seed=1)):
        build_generator(cfg.model, 16, 1, 10)
        build_discriminator(cfg.model, 16, 1, 10)
        seen.add((params["g_cond"], params["d_cond"]))
    assert len(seen) >= 8  # many branch combinations were actually exercised


def test_paper_space_matches_tables_one_and_two() -> None:
    nodes = {n.key: n for n in load_space(PAPER).nodes}
    assert (nodes["z_dim"].low, nodes["z_dim"].high) == (50, 300)
    assert (nodes["dense_channels"].low, nodes["dense_channels"].high) == (10, 512)
    for key in ("g_kernels", "d_kernels"):
        assert nodes[key].per_layer and (nodes[key].low, nodes[key].high) == (3, 5)
    for key in ("g_slopes", "d_slopes"):
        assert nodes[key].per_layer and (nodes[key].low, nodes[key].high) == (0.0, 0.3)
    assert nodes["d_cond"].choices == ["projection", "concat", "hidden_concat"]
    assert nodes["g_cond"].choices == ["concat", "hidden_concat", "cbn_embedding", "cbn_linear"]
    assert [n.key for n in nodes["d_cond"].when["hidden_concat"]] == ["embed_dim", "d_hidden_layer"]
    assert nodes["g_spectral_norm"].choices == [False, True] and nodes["loss"].value == "hinge"


def test_parameters_lists_each_name_once_with_its_condition() -> None:
    params = load_space(PAPER).parameters(n_blocks=3)  # 32x32
    names = [name for name, _, _ in params]
    assert len(names) == len(set(names)) == 2 + 4 * 3 + 2 + 3 + 2  # embed_dim appears under 5 branches
    conditional = {name for name, _, cond in params if cond}
    assert conditional == {"embed_dim", "g_hidden_layer", "d_hidden_layer"}
    assert names[:3] == ["z_dim", "dense_channels", "g_kernels_0"]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"model.colour": 3}, r"params.model.colour: 'model.colour' is not a config key"),
        ({"model.g_kernels": {"per_layer": {"int": [3, 7]}}}, r"params.model.g_kernels.int\[1\]: must be one of"),
        ({"model.z_dim": {"int": [50]}}, r"params.model.z_dim: int range is \{int: \[low, high\]"),
        ({"model.z_dim": {"int": [50, 60], "float": [1, 2]}}, r"params.model.z_dim: a node has exactly one of"),
        ({"model.z_dim": {"int": [90, 60]}}, r"`low <= high` must hold, but got \(low=90, high=60\)"),
        ({"model.z_dim": {"per_layer": {"int": [5, 9]}}}, r"per_layer is only for g_kernels"),
        ({"model.d_cond": {"choice": ["projection"], "when": {"concat": {}}}},
         r"params.model.d_cond.when.concat: not one of the choices \['projection'\]"),
        ({"model.g_cond": {"choice": ["film"]}}, r"params.model.g_cond.choice\[0\]: must be one of"),
        ({"train.g_lr": {"float": [0.0, 0.1], "log": True}}, r"train.g_lr.float\[0\]: must be > 0.0"),
    ],
)
def test_malformed_spaces_fail_with_file_and_path(tmp_path: Path, params: dict, match: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"params": params}))
    with pytest.raises(ConfigError, match=rf"bad.yaml: .*{match}"):
        load_space(path)


def test_ranges_invalid_for_the_study_image_size_fail_at_check(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"params": {"model.g_cond": {
        "choice": ["concat", "hidden_concat"], "when": {"hidden_concat": {"model.g_hidden_layer": {"int": [0, 4]}}}}}}))
    space = load_space(path)  # valid in general (64x64 has 4 blocks) ...
    with pytest.raises(ConfigError, match=r"bad.yaml: params.model.g_hidden_layer: value 4 .*g_cond.*hidden_concat"
                                          r".*must be in 0..2 at image_size 16"):
        space.check({"data": {"image_size": 16}}, 2)  # ... but not at 16x16


def test_missing_and_unknown_top_level(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.yaml: search space file not found"):
        load_space(tmp_path / "nope.yaml")
    (tmp_path / "x.yaml").write_text("parms: {}\n")
    with pytest.raises(ConfigError, match=r"x.yaml: top level must be a mapping with a `params` mapping"):
        load_space(tmp_path / "x.yaml")


def test_every_value_of_a_range_is_checked_where_the_field_has_holes(tmp_path: Path) -> None:
    """`g_attention: {int: [8, 16]}` has valid ends at 16x16 but 9..15 are no resolution; a step of 8 is fine."""
    path = tmp_path / "att.yaml"
    path.write_text(yaml.safe_dump({"params": {"model.g_attention": {"int": [8, 16]}}}))
    with pytest.raises(ConfigError, match=r"att.yaml: params.model.g_attention: value 9 .*must be one of"):
        load_space(path).check({"data": {"image_size": 16}}, 2)
    path.write_text(yaml.safe_dump({"params": {"model.g_attention": {"int": [8, 16], "step": 8}}}))
    load_space(path).check({"data": {"image_size": 16}}, 2)


@pytest.mark.parametrize("study", sorted((ROOT / "studies").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_shipped_study_file_loads_with_its_space_and_enqueued_trials(study: Path) -> None:
    """What `load_study_config` checks before any state exists: the space at every node, each enqueued trial."""
    loaded = load_study_config(study)
    assert loaded.space.parameters(loaded.n_blocks)
