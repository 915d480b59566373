"""The domain classifier trains once per dataset; the evaluator's metrics on real and fake images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from hpsearch.data import ImageDataset
from hpsearch.errors import ConfigError
from hpsearch.metrics import Evaluator, domain
from hpsearch.metrics.domain import LoadedClassifier, load_or_train
from hpsearch.models import build_generator
from tests.conftest import tiny_config
from tests.metrics.conftest import CLASSIFIER_STEPS

CPU = torch.device("cpu")
ROOT = Path(__file__).resolve().parents[2]


def test_digits_classifier_is_accurate(digits_classifier: LoadedClassifier) -> None:
    assert digits_classifier.test_accuracy > 0.95


@pytest.fixture
def trainings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each classifier training in this process appends to the list."""
    calls: list[int] = []
    train = domain._train

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return train(*args, **kwargs)

    monkeypatch.setattr(domain, "_train", counted)
    return calls


def test_classifier_trains_once_per_dataset_across_calls_and_processes(digits16: ImageDataset, tmp_path: Path,
                                                                        trainings: list[int]) -> None:
    small = ImageDataset(digits16.images[:300].clone(), digits16.labels[:300].clone(), digits16.class_names)
    first = load_or_train(small, tmp_path, CPU, 20)
    second = load_or_train(small, tmp_path, CPU, 20)  # a second evaluation or trial in this process
    assert (first.trained, second.trained, len(trainings)) == (True, False, 1)
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)

    script = (f"import torch; from hpsearch.data import ImageDataset; from hpsearch.metrics import domain\n"
              f"d = torch.load({str(tmp_path / 'small.pt')!r})\n"
              f"c = domain.load_or_train(ImageDataset(d['i'], d['l'], d['n']), __import__('pathlib').Path("
              f"{str(tmp_path)!r}), torch.device('cpu'), 20)\n"
              f"print('trained' if c.trained else 'cached')")
    torch.save({"i": small.images, "l": small.labels, "n": small.class_names}, tmp_path / "small.pt")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-1000:]
    assert out.stdout.split() == ["cached"]  # a second process reuses the cache

    changed = ImageDataset(small.images.clone(), small.labels, small.class_names)
    changed.images[0, 0, 0, 0] ^= 1  # one pixel differs: a different dataset
    assert load_or_train(changed, tmp_path, CPU, 20).trained and len(trainings) == 2


def _evaluator(digits16: ImageDataset, cache: Path, samples: int = 100) -> Evaluator:
    cfg = tiny_config(metrics={"samples": samples, "classifier_steps": CLASSIFIER_STEPS})
    return Evaluator(cfg, digits16, CPU, cache)


def test_evaluator_scores_real_images_well_and_noise_badly(digits16: ImageDataset, metrics_cache: Path,
                                                           digits_classifier: LoadedClassifier) -> None:
    evaluator = _evaluator(digits16, metrics_cache / "cache")
    pick = torch.cat([(digits16.labels == c).nonzero()[-30:, 0] for c in range(10)])
    real = evaluator.evaluate(digits16.images[pick], digits16.labels[pick])
    noise = torch.randint(0, 256, (300, 1, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    bad = evaluator.evaluate(noise, digits16.labels[pick])
    assert set(real) == {"fid", "class_fid", "kid", "class_kid", "precision", "recall", "density", "coverage",
                         "class_precision", "class_recall", "class_density", "class_coverage", "class_coverage_min",
                         "class_density_coverage_max",
                         "cond_acc", "msssim", "msssim_real", "collapse"}
    assert set(bad) == set(real) and bad["collapse"] is False  # noise is poor, not collapsed: alike nowhere
    assert real["cond_acc"] > 0.95 and bad["cond_acc"] < 0.5
    assert real["kid"] < 0.01 * bad["kid"] and real["class_kid"] < 0.01 * bad["class_kid"]
    for name in ("precision", "recall", "coverage", "class_precision", "class_recall", "class_coverage"):
        assert real[name] > 0.7 and bad[name] < 0.05, name  # real images are other images of the same data
    assert 0.7 < real["density"] < 1.3 and bad["density"] < 0.05
    assert real["collapse"] is False and abs(real["msssim"] - real["msssim_real"]) < 0.05
    assert real["class_fid"] < 0.2 * bad["class_fid"] and real["fid"] < 0.2 * bad["fid"]
    assert real["class_fid"] > real["fid"]  # 30 images per class against ~180: per-class FID is noisier


def test_a_collapsed_batch_is_flagged_against_the_cached_real_msssim(digits16: ImageDataset, metrics_cache: Path,
                                                                    digits_classifier: LoadedClassifier) -> None:
    """Every image of a class nearly alike: generated within-class MS-SSIM far above the real images'."""
    evaluator = _evaluator(digits16, metrics_cache / "cache")
    first = torch.stack([digits16.images[(digits16.labels == c).nonzero()[0, 0]] for c in range(10)])
    noise = torch.randint(-3, 4, (300, 1, 16, 16), generator=torch.Generator().manual_seed(0))
    collapsed = (first.repeat_interleave(30, dim=0).int() + noise).clamp(0, 255).to(torch.uint8)
    result = evaluator.evaluate(collapsed, torch.arange(10).repeat_interleave(30))
    assert result["collapse"] is True
    assert result["msssim"] > result["msssim_real"] + evaluator.cfg.metrics.collapse_margin
    cached = sorted((metrics_cache / "cache" / "reference").glob("*-msssim-*.json"))
    assert len(cached) == 1 and json.loads(cached[0].read_text())["msssim"] == result["msssim_real"]


def test_one_collapsed_class_is_flagged_by_density_over_coverage_where_ms_ssim_averages_it_away(
        digits16: ImageDataset, metrics_cache: Path, digits_classifier: LoadedClassifier) -> None:
    """Nine classes of real images and one drawn from a single image: the class-averaged MS-SSIM moves
    less than the margin; the collapsed class's samples all sit in the few real balls around that image:
    density stays high while coverage falls, and their ratio flags it."""
    evaluator = _evaluator(digits16, metrics_cache / "cache")
    pick = torch.cat([(digits16.labels == c).nonzero()[-100:, 0] for c in range(10)])
    images, labels = digits16.images[pick].clone(), digits16.labels[pick]
    noise = torch.randint(-3, 4, (100, 1, 16, 16), generator=torch.Generator().manual_seed(0))
    images[labels == 3] = (images[labels == 3][:1].int() + noise).clamp(0, 255).to(torch.uint8)
    result = evaluator.evaluate(images, labels)
    m = evaluator.cfg.metrics
    assert result["msssim"] < result["msssim_real"] + m.collapse_margin
    assert result["collapse"] is True and result["class_coverage_min"] < 0.1
    assert result["class_density_coverage_max"] > 2 * m.collapse_density_ratio
    assert result["collapse_reason"].startswith("class 3 piles up on a few of its real images (class 3: density ")
    assert result["class_precision"] > 0.7  # the collapsed class still draws a good digit


def test_evaluator_reuses_classifier_and_reference_across_trials(digits16: ImageDataset, tmp_path: Path,
                                                                 metrics_cache: Path,
                                                                 digits_classifier: LoadedClassifier,
                                                                 trainings: list[int]) -> None:
    cache = metrics_cache / "cache"
    cfg = tiny_config(metrics={"samples": 100, "classifier_steps": CLASSIFIER_STEPS})
    gen = build_generator(cfg.model, 16, 1, 10)
    first = Evaluator(cfg, digits16, CPU, cache)
    result = first(10, gen)
    refs = sorted((cache / "reference").iterdir())
    stamps = [p.stat().st_mtime_ns for p in refs]
    assert {"fid", "class_fid", "cond_acc", "msssim", "eval_s"} <= result.keys()
    assert all(v == v for v in result.values())  # no NaN
    again = first(20, gen)  # a second evaluation: same fixed-seed batch, same generator
    second_trial = Evaluator(cfg, digits16, CPU, cache)(30, gen)
    assert again["fid"] == result["fid"] == second_trial["fid"]
    assert trainings == []
    assert [p.stat().st_mtime_ns for p in sorted((cache / "reference").iterdir())] == stamps


def test_too_few_samples_per_class_is_a_config_error(digits16: ImageDataset, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"metrics.samples: needs at least 2 per class \(20 for 10 classes\)"):
        _evaluator(digits16, tmp_path, samples=10)


def _inception_weights() -> str | None:
    path = os.environ.get("HPSEARCH_INCEPTION_WEIGHTS")
    return path if path and Path(path).is_file() else None


@pytest.mark.skipif(_inception_weights() is None, reason="Inception weights absent: set "
                    "HPSEARCH_INCEPTION_WEIGHTS to a local pt_inception-2015-12-05-6726825d.pth")
def test_inception_features(digits16: ImageDataset, tmp_path: Path) -> None:
    pytest.importorskip("torch_fidelity", reason="torch-fidelity not installed (pip install -e '.[inception]')")
    cfg = tiny_config(metrics={"samples": 100, "features": "inception", "inception_weights": _inception_weights(),
                               "real_samples": 500, "classifier_steps": 50})
    pick = torch.cat([(digits16.labels == c).nonzero()[:10, 0] for c in range(10)])
    evaluator = Evaluator(cfg, digits16, CPU, tmp_path)
    real = evaluator.evaluate(digits16.images[pick], digits16.labels[pick])
    noise = torch.randint(0, 256, digits16.images[pick].shape, dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(0))
    fake = evaluator.evaluate(noise, digits16.labels[pick])
    # Inception's 2048-d features: real digits lie far closer to the real statistics than noise does.
    assert 0 <= real["fid"] < fake["fid"] and 0 <= real["class_fid"] < fake["class_fid"], (real, fake)


def test_inception_without_weights_file_is_a_clear_error(digits16: ImageDataset, tmp_path: Path) -> None:
    cfg = tiny_config(metrics={"samples": 100, "features": "inception", "classifier_steps": 20,
                               "inception_weights": str(tmp_path / "missing.pth")})
    with pytest.raises(ConfigError, match=r"(missing.pth not found|torch-fidelity is not installed).*"
                                          r"pt_inception-2015-12-05-6726825d.pth"):
        Evaluator(cfg, digits16, CPU, tmp_path).setup()
