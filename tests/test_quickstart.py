"""The README quickstart, run as a user runs it, with an independent check of its samples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.svm import SVC

from hpsearch.config import DataConfig
from hpsearch.data import load_dataset

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quickstart_trains_class_correct_diverse_digits_on_cpu(tmp_path: Path) -> None:
    env = {**os.environ, "HPSEARCH_DATA": str(tmp_path / "data")}
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "hpsearch.cli", "train", "configs/digits.yaml", "--out",
                          str(tmp_path / "run"), "--device", "cpu"], cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    assert run.returncode == 0, run.stderr[-2000:]
    print(f"quickstart training took {elapsed:.0f} s")  # the README promises < 5 min on 2 cores

    # Every evaluation reports the section III-A metrics; the end is class-correct.
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evaluated = [r for r in records if "fid" in r]
    assert [r["step"] for r in evaluated] == [500, 1000, 1500, 2000]
    assert all({"fid", "class_fid", "cond_acc", "msssim", "grad_norm_g_max", "grad_norm_d_max"} <= r.keys()
               for r in evaluated)
    assert evaluated[-1]["cond_acc"] > 0.9 and evaluated[-1]["class_fid"] < evaluated[0]["class_fid"]
    (classifier,) = (tmp_path / "data" / "cache" / "domain").glob("*.pt")
    assert torch.load(classifier, weights_only=True)["test_accuracy"] > 0.95
    sample = subprocess.run([sys.executable, "-m", "hpsearch.cli", "sample", str(tmp_path / "run" / "checkpoint.pt"),
                             "--per-class", "50", "--out", str(tmp_path / "s.npz"), "--seed", "1"],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    assert sample.returncode == 0, sample.stderr[-2000:]

    # An independent judge: an SVM trained on the real digits (not the GAN's discriminator).
    real = load_dataset(DataConfig(name="digits", image_size=16), tmp_path / "data")
    x_real, y_real = real.images.flatten(1).numpy() / 255.0, real.labels.numpy()
    judge = SVC(gamma="scale").fit(x_real[::2], y_real[::2])
    assert judge.score(x_real[1::2], y_real[1::2]) > 0.95
    npz = np.load(tmp_path / "s.npz")
    x_fake, y_fake = npz["images"].reshape(len(npz["images"]), -1) / 255.0, npz["labels"]
    per_class = [(judge.predict(x_fake[y_fake == k]) == k).mean() for k in range(10)]
    assert min(per_class) >= 0.7 and np.mean(per_class) >= 0.9, per_class
    # Not one image per class: within-class spread is a good part of the real data's.
    spread_fake = np.mean([x_fake[y_fake == k].std(axis=0).mean() for k in range(10)])
    spread_real = np.mean([x_real[y_real == k].std(axis=0).mean() for k in range(10)])
    assert spread_fake > 0.3 * spread_real, (spread_fake, spread_real)
