"""Config loading: strict keys, types, ranges, per-layer expansion, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hpsearch.config import load_config
from hpsearch.errors import ConfigError
from hpsearch.io import read_yaml


def write(tmp_path: Path, body: dict) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_defaults_resolve_per_layer_lists() -> None:
    cfg = load_config(None)
    assert cfg.model.g_kernels == [4, 4, 4]  # image_size 32 → 3 blocks
    assert cfg.model.d_slopes == [0.2, 0.2, 0.2]


def test_shipped_quickstart_config_loads() -> None:
    cfg = load_config(Path(__file__).parents[1] / "configs" / "digits.yaml")
    assert (cfg.model.g_cond, cfg.model.d_cond, cfg.train.loss) == ("cbn_linear", "projection", "hinge")


def test_override_sets_value_and_parses_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, {"model": {"d_cond": "concat"}})
    cfg = load_config(path, ["model.d_cond=projection", "model.g_kernels=[3, 4, 5]", "train.g_lr=1e-4"])
    assert cfg.model.d_cond == "projection"
    assert cfg.model.g_kernels == [3, 4, 5]
    assert cfg.train.g_lr == pytest.approx(1e-4)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"model": {"g_kernel": 3}}, r"run.yaml: model.g_kernel: unknown key; allowed: .*g_kernels"),
        ({"modle": {}}, r"modle: unknown key; allowed: data, metrics, model, train"),
        ({"model": {"g_kernels": 7}}, r"model.g_kernels: must be one of \[3, 4, 5\]; got 7"),
        ({"model": {"g_kernels": [3, 6, 4]}}, r"model.g_kernels\[1\]: must be one of \[3, 4, 5\]; got 6"),
        ({"model": {"g_kernels": [3, 4]}}, r"model.g_kernels: needs one value per block \(3 at image_size 32\)"),
        ({"model": {"g_slopes": 0.5}}, r"model.g_slopes: must be >= 0.0 and <= 0.3; got 0.5"),
        ({"model": {"z_dim": "big"}}, r"model.z_dim: must be an integer; got 'big'"),
        ({"model": {"z_dim": True}}, r"model.z_dim: must be an integer; got True"),
        ({"model": {"d_cond": "film"}}, r"model.d_cond: must be one of \['projection', 'concat'"),
        ({"data": {"name": "imagenet"}}, r"data.name: must be one of \['digits', 'mnist'"),
        ({"data": {"image_size": 28}}, r"data.image_size: must be one of \[16, 32, 64\]; got 28"),
        ({"train": {"g_betas": [0.5]}}, r"train.g_betas: must have 2 items"),
        ({"train": {"ema": "yes"}}, r"train.ema: must be true or false"),
        ({"model": {"d_cond": "hidden_concat", "d_hidden_layer": 3}}, r"model.d_hidden_layer: must be in 1..2"),
        ({"data": {"name": "image_folder"}}, r"data.root: required for data.name image_folder"),
    ],
)
def test_bad_values_name_file_key_value_and_allowed(tmp_path: Path, body: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(write(tmp_path, body))


def test_bad_override_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"override 'model': expected section.key=value"):
        load_config(None, ["model"])
    with pytest.raises(ConfigError, match=r"unknown section 'modle'"):
        load_config(None, ["modle.z_dim=3"])
    with pytest.raises(ConfigError, match=r"nope.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("model: [unclosed")
    with pytest.raises(ConfigError, match=r"bad.yaml:1:\d+: not valid YAML: expected .* while parsing a flow sequence"):
        load_config(tmp_path / "bad.yaml")


def test_yaml_merge_keys_load_and_a_local_key_overrides_a_merged_one(tmp_path: Path) -> None:
    """The strict loader refuses a key given twice in one mapping, not YAML's merge (`<<: *anchor`)."""
    path = tmp_path / "merge.yaml"
    path.write_text("base: &b {steps: 4, batch_size: 4, log_every: 2, eval_every: 2, checkpoint_every: 2}\n"
                    "train:\n  <<: *b\n  steps: 6\n")
    raw = read_yaml(path)
    assert raw["train"] == {"steps": 6, "batch_size": 4, "log_every": 2, "eval_every": 2, "checkpoint_every": 2}
