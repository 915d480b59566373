"""A study over the three generator families on CPU: each family trains, and the report and the
`visualize` command draw the best SAGAN's attention maps and the best StyleGAN2's style mixing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from optuna.trial import TrialState
from PIL import Image

from hpsearch.cli import main
from hpsearch.reports import build_report
from hpsearch.search import load_study_config, open_study
from tests.search.helpers import write_study

FAMILIES_SPACE = {
    "params": {
        "model.generator": {"choice": ["dcgan", "sagan", "stylegan2"], "when": {
            "sagan": {"model.g_attention": {"choice": [8, 16]}},
            "stylegan2": {"model.w_dim": {"int": [8, 16]}, "model.style_mixing": {"float": [0.0, 0.9]}},
        }},
        "model.d_attention": {"choice": ["none", 4]},
        "train.loss": "bce",
    }
}
ENQUEUE = [{"generator": "dcgan", "d_attention": "none"},
           {"generator": "sagan", "g_attention": 16, "d_attention": 4},
           {"generator": "stylegan2", "w_dim": 16, "style_mixing": 0.9, "d_attention": "none"}]


@pytest.fixture(scope="module")
def families_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("families")
    (folder / "families.yaml").write_text(yaml.safe_dump(FAMILIES_SPACE))
    path = write_study(folder, name="families", space="families.yaml", enqueue=ENQUEUE,
                       pruner={"name": "none"}, stop={"n_trials": 3})
    data_dir = tmp_path_factory.getbasetemp() / "search-data"
    assert main(["run", str(path), "--data-dir", str(data_dir), "--device", "cpu"]) == 0
    return path


def test_each_family_trains_in_the_study(families_study: Path) -> None:
    trials = open_study(load_study_config(families_study)).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert [t.user_attrs["config"]["model"]["generator"] for t in trials] == ["dcgan", "sagan", "stylegan2"]
    assert "w_dim" not in trials[0].params and "g_attention" not in trials[2].params  # branch-only


def test_report_shows_attention_maps_and_style_mixing(families_study: Path, tmp_path: Path) -> None:
    report = build_report(load_study_config(families_study), tmp_path / "r", png=False)
    captions = [caption for caption, _ in report.internals]
    assert len(captions) == 2, report.notes
    assert captions[0].startswith("sagan, best trial #1: self-attention maps")
    assert captions[1].startswith("stylegan2, best trial #2: style mixing")
    page = (tmp_path / "r" / "index.html").read_text()
    for _, src in report.internals:
        with Image.open(tmp_path / "r" / src) as image:
            assert image.size[0] >= 5 * 96 and image.size[1] >= 2 * 96  # several tiles
        assert f'src="{src}"' in page
    # The parallel coordinates have the family axis and the branch-only axes with n/a positions.
    dims = {d.label: d for d in report.figures["parallel"].data[0].dimensions}
    assert {"generator", "g_attention", "w_dim", "style_mixing", "d_attention"} <= dims.keys()
    assert "n/a" in dims["g_attention"].ticktext and "none" in dims["d_attention"].ticktext


def test_visualize_commands_on_exported_checkpoints(families_study: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    for number in (1, 2, 0):
        assert main(["export", str(families_study), "--trial", str(number), "--out", str(tmp_path / f"t{number}")]) == 0
    out = tmp_path / "attention.png"
    assert main(["visualize", "attention", str(tmp_path / "t1" / "checkpoint.pt"), "--out", str(out),
                 "--classes", "0,3,7"]) == 0
    with Image.open(out) as image:
        assert image.size == (5 * 96, 3 * 96)  # a row per class: the image and 4 query maps
    out = tmp_path / "mixing.png"
    assert main(["visualize", "style-mixing", str(tmp_path / "t2" / "checkpoint.pt"), "--out", str(out),
                 "--rows", "3", "--cols", "5", "--cutoff", "2"]) == 0
    with Image.open(out) as image:
        assert image.size == (6 * 96 + 6, 4 * 96 + 6)
    assert main(["sample", str(tmp_path / "t2" / "checkpoint.pt"), "--truncation", "0.7", "--per-class", "2",
                 "--out", str(tmp_path / "trunc.png")]) == 0

    # Wrong family or bad options: one line, exit 2, nothing written.
    capsys.readouterr()
    cases = [
        (["visualize", "attention", str(tmp_path / "t0" / "checkpoint.pt")], "has no self-attention"),
        (["visualize", "style-mixing", str(tmp_path / "t1" / "checkpoint.pt")], "needs a stylegan2 generator"),
        (["visualize", "style-mixing", str(tmp_path / "t2" / "checkpoint.pt"), "--cutoff", "99"], "cutoff: must"),
        (["visualize", "attention", str(tmp_path / "t1" / "checkpoint.pt"), "--classes", "0,42"], "--classes: 1-16"),
        (["sample", str(tmp_path / "t0" / "checkpoint.pt"), "--truncation", "0.5"], "only stylegan2"),
    ]
    for args, message in cases:
        bad = tmp_path / "bad.png"
        assert main([*args, "--out", str(bad)]) == 2
        assert message in capsys.readouterr().err and not bad.exists()
