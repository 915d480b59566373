"""The bad-input contract over every command and every file a user hands in.

Each case gives `hpsearch` one mistaken or hostile input and asserts what a user is promised:
exit code 2, exactly one line on stderr that starts `hpsearch: error:` and names the thing and
what is allowed (the case's pattern), no traceback, and nothing created or changed: the
workspace (the current folder, where default outputs such as `runs/` would go) and the shared
data folder are compared file by file before and after. The commands run in-process through
`main(argv)`; `test_contract_holds_in_a_real_process` repeats a sample as subprocesses, where
every line on stderr counts (logging included).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
import yaml
from PIL import Image

from hpsearch.cli import main
from tests.search.helpers import GOOD, ROOT, SPACE, write_study

UNWRITABLE = Path("/proc/hpsearch-no-such-dir")  # procfs refuses new files even to root
TINY = {"data": {"name": "digits", "image_size": 16, "channels": 1},
        "model": {"z_dim": 8, "dense_channels": 8, "g_width": 0.03125, "d_width": 0.0625, "embed_dim": 4},
        "train": {"batch_size": 8, "steps": 2, "log_every": 1, "eval_every": 2, "checkpoint_every": 2},
        "metrics": {"enabled": False}}


@dataclass
class Case:
    """One bad input: the argv (given the workspace), what the error line must say, and any files it needs."""

    id: str
    argv: Callable[[Workspace], list[Any]]
    match: str
    needs: Callable[[], bool] = field(default=lambda: True)
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Workspace:
    """A folder of good inputs (config, study, space, checkpoint) that each case spoils one way."""

    root: Path
    data: Path
    checkpoint: Path

    def file(self, name: str, content: bytes | str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    def folder(self, name: str) -> str:
        (self.root / name).mkdir()
        return str(self.root / name)

    def tensor_file(self, name: str) -> str:
        torch.save(torch.zeros(3), self.root / name)
        return str(self.root / name)

    def config(self, **sections: dict[str, Any]) -> str:
        body = {k: dict(v) for k, v in TINY.items()}
        for name, values in sections.items():
            body.setdefault(name, {}).update(values)
        return self.file("run.yaml", yaml.safe_dump(body))

    def study(self, params: dict[str, Any] | None = None, base: dict[str, Any] | None = None,
              space_bytes: bytes | None = None, **overrides: Any) -> str:
        folder = self.root / "s"
        folder.mkdir(exist_ok=True)
        path = write_study(folder, **overrides)
        if params is not None:
            (folder / "space.yaml").write_text(yaml.safe_dump(params))
        if space_bytes is not None:
            (folder / "space.yaml").write_bytes(space_bytes)
        if base is not None:
            study = yaml.safe_load(path.read_text())
            for section, values in base.items():
                study["base"].setdefault(section, {}).update(values)
            path.write_text(yaml.safe_dump(study))
        return str(path)

    def space_param(self, key: str, node: Any) -> str:
        return self.study(params={"params": {**SPACE["params"], key: node}})

    def spoiled_checkpoint(self, edit: Callable[[dict[str, Any]], None]) -> str:
        payload = torch.load(self.checkpoint, weights_only=True)
        edit(payload)
        path = self.root / "edited.pt"
        torch.save(payload, path)
        return str(path)

    def image_folder(self, classes: int, corrupt: bool = False) -> str:
        root = self.root / "images"
        for c in range(classes):
            (root / f"class{c}").mkdir(parents=True, exist_ok=True)
            for i in range(3):
                Image.new("L", (16, 16), color=40 * i + c).save(root / f"class{c}" / f"{i}.png")
        if corrupt:
            (root / "class1" / "0.png").write_bytes(b"\x89PNG\r\n\x1a\n" + JUNK[:100])
        return str(root)


def _d(ws: Workspace) -> list[str]:
    return ["--data-dir", str(ws.data)]


def _no_cuda() -> bool:
    return not torch.cuda.is_available()


def _no_fidelity() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch_fidelity") is None


def _set_model(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda payload: payload["config"]["model"].__setitem__(key, value)


JUNK = bytes(range(256)) * 64  # random-looking binary, NUL bytes included
NOT_UTF8 = b"data:\n  name: \xff\xfe digits\n"
CYCLE = "a: &x [1, *x]\n"
BOMB = "a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n" \
       "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
PG_DOWN = "postgresql+psycopg2://postgres:s3cretPW@127.0.0.1:1/db"

CASES: list[Case] = [
    # ------------------------------------------------------------------ argv itself
    Case("argv-unknown-command", lambda ws: ["fly"], r"argument command: invalid choice: 'fly'"),
    Case("argv-int-flag-not-int", lambda ws: ["run", ws.study(), "--workers", "two"],
         r"argument --workers: invalid int value: 'two'"),
    Case("argv-missing-positional", lambda ws: ["sample"], r"the following arguments are required"),
    # ------------------------------------------------------------------ train: the config file
    Case("train-config-missing", lambda ws: ["train", str(ws.root / "nope.yaml")], r"nope.yaml: config file not found"),
    Case("train-config-is-folder", lambda ws: ["train", str(ws.root)], r"config file is not a regular file"),
    Case("train-config-binary", lambda ws: ["train", ws.file("bin.yaml", JUNK)], r"bin.yaml: config file is binary"),
    Case("train-config-not-utf8", lambda ws: ["train", ws.file("latin.yaml", NOT_UTF8)],
         r"latin.yaml: config file is not UTF-8 text"),
    Case("train-config-huge", lambda ws: ["train", ws.file("big.yaml", b"#" * (9 << 20))],
         r"big.yaml: config file is larger than 8 MiB"),
    Case("train-config-bad-yaml", lambda ws: ["train", ws.file("bad.yaml", "data: [unclosed\n")],
         r"bad.yaml:2:1: not valid YAML: expected .*; while parsing a flow sequence"),
    Case("train-config-alias-cycle", lambda ws: ["train", ws.file("cyc.yaml", CYCLE)], r"cyc.yaml: YAML alias refers"),
    Case("train-config-alias-bomb", lambda ws: ["train", ws.file("bomb.yaml", BOMB)], r"bomb.yaml: YAML too large"),
    Case("train-config-top-level-list", lambda ws: ["train", ws.file("list.yaml", "- 1\n- 2\n")],
         r"list.yaml: top level must be a mapping"),
    Case("train-config-unknown-key", lambda ws: ["train", ws.config(model={"colour": 1})],
         r"run.yaml: model.colour: unknown key; allowed:"),
    Case("train-config-nan", lambda ws: ["train", ws.config(train={"g_lr": float("nan")})],
         r"train.g_lr: must be a finite number"),
    Case("train-config-seed-overflow", lambda ws: ["train", ws.config(train={"seed": 2**70})],
         r"train.seed: must be >= 0 and <= 2147483647"),
    Case("train-config-steps-huge", lambda ws: ["train", ws.config(train={"steps": 10**12})],
         r"train.steps: must be >= 1 and <= 1000000000"),
    Case("train-config-compile-wgan-gp", lambda ws: ["train", ws.config(train={"compile": True, "loss": "wgan_gp"})],
         r"train.compile: cannot be used with train.loss wgan_gp"),
    Case("train-config-compile-not-bool", lambda ws: ["train", ws.config(train={"compile": "max-autotune"})],
         r"train.compile: must be true or false; got 'max-autotune'"),
    Case("train-set-malformed", lambda ws: ["train", ws.config(), "--set", "z_dim"], r"--set 'z_dim': expected"),
    Case("train-set-unknown-section", lambda ws: ["train", ws.config(), "--set", "optim.lr=1"],
         r"--set optim.lr: unknown section 'optim'"),
    Case("train-steps-negative", lambda ws: ["train", ws.config(), "--steps", "-1"], r"train.steps: must be >= 1"),
    # ------------------------------------------------------------------ train: outputs, data, device, metrics
    Case("train-out-is-file", lambda ws: ["train", ws.config(), "--out", ws.file("f", "x"), *_d(ws)],
         r"--out .*/f: exists and is not a folder"),
    Case("train-out-under-file", lambda ws: ["train", ws.config(), "--out", f"{ws.file('f', 'x')}/run", *_d(ws)],
         r"--out .*/f/run: cannot be created: .*/f is a file"),
    Case("train-out-unwritable", lambda ws: ["train", ws.config(), "--out", str(UNWRITABLE / "run"), *_d(ws)],
         r"--out /proc/hpsearch-no-such-dir/run: cannot be written"),
    Case("train-data-dir-is-file", lambda ws: ["train", ws.config(), "--data-dir", ws.file("d", "x")],
         r"--data-dir .*/d: exists and is not a folder"),
    Case("train-device-unknown", lambda ws: ["train", ws.config(), "--device", "tpu"],
         r"--device: must be auto, cpu or cuda; got 'tpu'"),
    Case("train-device-cuda-absent", lambda ws: ["train", ws.config(), "--device", "cuda"],
         r"--device cuda: no CUDA device is available", needs=_no_cuda),
    Case("train-image-folder-missing", lambda ws: ["train", ws.config(data={"name": "image_folder", "root": "/no/x"}),
                                                   *_d(ws)], r"image_folder: /no/x is not a folder"),
    Case("train-image-folder-one-class",
         lambda ws: ["train", ws.config(data={"name": "image_folder", "root": ws.image_folder(1)}), *_d(ws)],
         r"has 1 class \['class0'\]; a class-conditional GAN needs at least 2 classes"),
    Case("train-image-folder-corrupt-png",
         lambda ws: ["train", ws.config(data={"name": "image_folder", "root": ws.image_folder(2, corrupt=True)}),
                     *_d(ws)], r"image_folder: .*class1/0.png is not a readable PNG/JPEG image"),
    Case("train-metrics-samples-too-few",
         lambda ws: ["train", ws.config(metrics={"enabled": True, "samples": 10}), *_d(ws)],
         r"metrics.samples: needs at least 2 per class \(20 for 10 classes\); got 10"),
    Case("train-metrics-real-samples-too-few",
         lambda ws: ["train", ws.config(metrics={"enabled": True, "real_samples": 2}), *_d(ws)],
         r"metrics.real_samples: classes \[.*\] have fewer than 2 real images"),
    Case("train-metrics-inception-absent",
         lambda ws: ["train", ws.config(metrics={"enabled": True, "features": "inception"}), *_d(ws)],
         r"metrics.features inception: torch-fidelity is not installed", needs=_no_fidelity),
    Case("train-resume-zero-byte-checkpoint",
         lambda ws: ["train", ws.config(), "--out", str(ws.file("r/checkpoint.pt", b"").parent), "--resume", *_d(ws)],
         r"r/checkpoint.pt: not a readable checkpoint \(.+\)"),
    # ------------------------------------------------------------------ sample / eval / visualize: checkpoints
    Case("sample-checkpoint-missing", lambda ws: ["sample", str(ws.root / "no.pt"), "--out", str(ws.root / "x.png")],
         r"no.pt: checkpoint not found"),
    Case("sample-checkpoint-folder", lambda ws: ["sample", str(ws.root), "--out", str(ws.root / "x.png")],
         r"a folder without best_generator.pt or checkpoint.pt"),
    Case("sample-checkpoint-zero-bytes", lambda ws: ["sample", ws.file("z.pt", b""), "--out", str(ws.root / "x.png")],
         r"z.pt: not a readable checkpoint \(.+\)"),
    Case("sample-checkpoint-truncated",
         lambda ws: ["sample", ws.file("t.pt", ws.checkpoint.read_bytes()[:5000]), "--out", str(ws.root / "x.png")],
         r"t.pt: not a readable checkpoint"),
    Case("sample-checkpoint-junk", lambda ws: ["sample", ws.file("j.pt", JUNK), "--out", str(ws.root / "x.png")],
         r"j.pt: not a readable checkpoint"),
    Case("sample-checkpoint-plain-tensor",
         lambda ws: ["sample", ws.tensor_file("t.pt"), "--out", str(ws.root / "x.png")],
         r"t.pt: not an hpsearch checkpoint"),
    Case("sample-checkpoint-weights-mismatch",
         lambda ws: ["sample", ws.spoiled_checkpoint(_set_model("z_dim", 9)), "--out", str(ws.root / "x.png")],
         r"edited.pt: its weights do not match its own config"),
    Case("sample-checkpoint-config-invalid",
         lambda ws: ["sample", ws.spoiled_checkpoint(_set_model("g_cond", "telepathy")), "--out", ws.root / "x.png"],
         r"edited.pt: cannot rebuild the generator"),
    Case("sample-out-suffix", lambda ws: ["sample", str(ws.checkpoint), "--out", str(ws.root / "x.jpg")],
         r"must end in .png \(grid\) or .npz"),
    Case("sample-out-under-file", lambda ws: ["sample", str(ws.checkpoint), "--out", f"{ws.file('f', 'x')}/x.png"],
         r"--out .*/f/x.png: cannot be created: .*/f is a file"),
    Case("sample-out-unwritable", lambda ws: ["sample", str(ws.checkpoint), "--out", str(UNWRITABLE / "x.png")],
         r"--out /proc/hpsearch-no-such-dir/x.png: cannot be written"),
    Case("sample-out-is-folder", lambda ws: ["sample", str(ws.checkpoint), "--out", ws.folder("d.png")],
         r"--out .*/d.png: exists and is not a regular file"),
    Case("sample-per-class-zero", lambda ws: ["sample", str(ws.checkpoint), "--out", "x.png", "--per-class", "0"],
         r"--per-class: must be in 1..10000; got 0"),
    Case("sample-truncation-nan", lambda ws: ["sample", str(ws.checkpoint), "--out", "x.png", "--truncation", "nan"],
         r"--truncation: must be in \(0, 1\]; got nan"),
    Case("sample-seed-overflow", lambda ws: ["sample", str(ws.checkpoint), "--out", "x.png", "--seed", str(2**70)],
         r"--seed: must be in 0..2147483647"),
    Case("sample-seed-negative", lambda ws: ["sample", str(ws.checkpoint), "--out", "x.png", "--seed", "-3"],
         r"--seed: must be in 0..2147483647; got -3"),
    Case("eval-checkpoint-zero-bytes", lambda ws: ["eval", ws.file("z.pt", b""), *_d(ws)], r"z.pt: not a readable"),
    Case("eval-samples-too-few", lambda ws: ["eval", str(ws.checkpoint), "--samples", "1", *_d(ws)],
         r"metrics.samples: must be >= 2"),
    Case("eval-features-unknown", lambda ws: ["eval", str(ws.checkpoint), "--features", "clip"],
         r"argument --features: invalid choice: 'clip'"),
    Case("eval-data-dir-is-file", lambda ws: ["eval", str(ws.checkpoint), "--data-dir", ws.file("d", "x")],
         r"--data-dir .*/d: exists and is not a folder"),
    Case("visualize-out-suffix", lambda ws: ["visualize", "attention", str(ws.checkpoint), "--out", "a.gif"],
         r"--out a.gif: must end in .png"),
    Case("visualize-rows-zero", lambda ws: ["visualize", "style-mixing", str(ws.checkpoint), "--out", "a.png",
                                            "--rows", "0"], r"--rows and --cols: must be in 1..16"),
    Case("visualize-classes-not-int", lambda ws: ["visualize", "attention", str(ws.checkpoint), "--out",
                                                  str(ws.root / "a.png"), "--classes", "a,b"],
         r"--classes: comma-separated integers"),
    Case("visualize-checkpoint-junk", lambda ws: ["visualize", "attention", ws.file("j.pt", JUNK), "--out",
                                                  str(ws.root / "a.png")], r"j.pt: not a readable checkpoint"),
    Case("describe-classes-zero", lambda ws: ["describe", ws.config(), "--classes", "0"],
         r"--classes: must be in 1..100000; got 0"),
    Case("describe-config-binary", lambda ws: ["describe", ws.file("bin.yaml", JUNK)], r"config file is binary"),
    # ------------------------------------------------------------------ run: the study file
    Case("run-study-missing", lambda ws: ["run", str(ws.root / "none.yaml")], r"none.yaml: study file not found"),
    Case("run-study-binary", lambda ws: ["run", ws.file("bin.yaml", JUNK)], r"bin.yaml: study file is binary"),
    Case("run-study-not-utf8", lambda ws: ["run", ws.file("latin.yaml", NOT_UTF8)], r"study file is not UTF-8"),
    Case("run-study-bad-name", lambda ws: ["run", ws.study(name="../evil")], r"study: must be 1-100 letters"),
    Case("run-study-unknown-sampler", lambda ws: ["run", ws.study(sampler={"name": "cmaes"})],
         r"sampler.name: must be one of \['tpe', 'random', 'gp'\]; got 'cmaes'"),
    Case("run-study-sampler-seed-overflow", lambda ws: ["run", ws.study(sampler={"seed": 2**40})],
         r"sampler.seed: must be >= 0 and <= 2147483647"),
    Case("run-study-heartbeat-zero", lambda ws: ["run", ws.study(heartbeat_s=0)], r"heartbeat_s: must be >= 1"),
    Case("run-study-n-trials-zero", lambda ws: ["run", ws.study(stop={"n_trials": 0})], r"stop.n_trials: must be >= 1"),
    Case("run-study-min-steps-past-training", lambda ws: ["run", ws.study(pruner={"name": "hyperband",
                                                                                   "min_steps": 60})],
         r"pruner.min_steps: must be below base train.steps \(60\)"),
    Case("run-study-enqueue-not-mapping", lambda ws: ["run", ws.study(enqueue=[5])],
         r"enqueue\[0\]: must be a mapping; got 5"),
    Case("run-study-enqueue-bad-value", lambda ws: ["run", ws.study(enqueue=[{"z_dim": 12}])], r"enqueue\[0\]"),
    Case("run-study-base-unknown-key", lambda ws: ["run", ws.study(base={"train": {"epochs": 3}})],
         r"base: train.epochs: unknown key"),
    # ------------------------------------------------------------------ run: the space file
    Case("run-space-missing", lambda ws: ["run", ws.study(space="nope.yaml")],
         r"nope.yaml: search space file not found"),
    Case("run-space-binary", lambda ws: ["run", ws.study(space_bytes=JUNK)],
         r"space.yaml: search space file is binary"),
    Case("run-space-unknown-field", lambda ws: ["run", ws.space_param("model.colour", {"int": [1, 2]})],
         r"params.model.colour: 'model.colour' is not a config key"),
    Case("run-space-int-step-fraction",
         lambda ws: ["run", ws.space_param("model.z_dim", {"int": [8, 16], "step": 0.5})],
         r"params.model.z_dim.step: must be a positive integer for an int range; got 0.5"),
    Case("run-space-step-negative",
         lambda ws: ["run", ws.space_param("train.g_lr", {"float": [0.1, 0.5], "step": -1})],
         r"params.train.g_lr.step: must be a positive finite number for an float range; got -1"),
    Case("run-space-step-string", lambda ws: ["run", ws.space_param("model.z_dim", {"int": [8, 16], "step": "two"})],
         r"params.model.z_dim.step: must be a positive integer"),
    Case("run-space-low-above-high", lambda ws: ["run", ws.space_param("model.z_dim", {"int": [16, 8]})],
         r"`low <= high` must hold, but got \(low=16, high=8\)"),
    Case("run-space-when-list", lambda ws: ["run", ws.space_param("model.d_cond", {"choice": ["projection", "concat"],
                                                                                  "when": ["projection"]})],
         r"params.model.d_cond.when: must be a mapping of a choice to its parameters"),
    Case("run-space-choice-of-lists",
         lambda ws: ["run", ws.space_param("model.g_kernels", {"choice": [[3, 3], [4, 4]]})],
         r"params.model.g_kernels.choice\[0\]: a choice is a plain value"),
    Case("run-space-value-inside-range-invalid",
         lambda ws: ["run", ws.space_param("model.g_attention", {"int": [8, 16]})],
         r"params.model.g_attention: value 9 .* model.g_attention: must be one of \[4, 8, 16, 32, 64\]"),
    Case("run-space-kernel-range-inside", lambda ws: ["run", ws.space_param("model.d_kernels", {"int": [3, 6]})],
         r"params.model.d_kernels.int\[1\]: must be one of \[3, 4, 5\]; got 6"),
    # ------------------------------------------------------------------ run: flags, data, device, outputs
    Case("run-workers-zero", lambda ws: ["run", ws.study(), "--workers", "0"], r"--workers: must be in 1..256; got 0"),
    Case("run-workers-huge", lambda ws: ["run", ws.study(), "--workers", "100000"], r"--workers: must be in 1..256"),
    Case("run-per-gpu-zero", lambda ws: ["run", ws.study(), "--per-gpu", "0"], r"--per-gpu: must be in 1..256"),
    Case("run-n-trials-zero", lambda ws: ["run", ws.study(), "--n-trials", "0"], r"--n-trials: must be in 1.."),
    Case("run-gpus-not-ids", lambda ws: ["run", ws.study(), "--gpus", "abc"], r"--gpus: comma-separated GPU numbers"),
    Case("run-gpus-empty", lambda ws: ["run", ws.study(), "--gpus", ""], r"--gpus: comma-separated GPU numbers"),
    Case("run-gpus-repeated", lambda ws: ["run", ws.study(), "--gpus", "0,0"], r"--gpus: each GPU once"),
    Case("run-gpus-without-cuda", lambda ws: ["run", ws.study(), "--gpus", "0", *_d(ws)],
         r"--gpus 0: no CUDA device is available", needs=_no_cuda),
    Case("run-device-cuda-absent", lambda ws: ["run", ws.study(), "--device", "cuda", *_d(ws)],
         r"--device cuda: no CUDA device is available", needs=_no_cuda),
    Case("run-data-root-typo", lambda ws: ["run", ws.study(base={"data": {"name": "image_folder", "root": "/no/pics",
                                                                         "channels": 1}}), *_d(ws)],
         r"image_folder: /no/pics is not a folder"),
    Case("run-data-dir-is-file", lambda ws: ["run", ws.study(), "--data-dir", ws.file("d", "x")],
         r"--data-dir .*/d: exists and is not a folder"),
    Case("run-artifacts-under-file", lambda ws: ["run", ws.study(artifacts=f"{ws.file('f', 'x')}/a"), *_d(ws)],
         r"artifacts .*/f/a: cannot be created: .*/f is a file"),
    Case("run-runs-dir-unwritable", lambda ws: ["run", ws.study(runs_dir=str(UNWRITABLE)), *_d(ws)],
         r"runs_dir /proc/hpsearch-no-such-dir: cannot be written"),
    Case("run-base-real-samples-too-few", lambda ws: ["run", ws.study(base={"metrics": {"real_samples": 2}}), *_d(ws)],
         r"metrics.real_samples: classes"),
    Case("run-base-compile-wgan-gp", lambda ws: ["run", ws.study(base={"train": {"compile": True, "loss": "wgan_gp"}}),
                                                 *_d(ws)], r"train.compile: cannot be used with train.loss wgan_gp"),
    # Each node alone is valid with the other at its default (compile false, loss hinge): only the pair is not.
    Case("run-space-pair-invalid",
         lambda ws: ["run", ws.study(params={"params": {**SPACE["params"], "train.compile": {"choice": [False, True]},
                                                        "train.loss": {"choice": ["hinge", "wgan_gp"]}}}), *_d(ws)],
         r"params.train.compile: value True with params.train.loss: value 'wgan_gp' .* train.compile: cannot be used"),
    # ------------------------------------------------------------------ storage URLs (run, worker, status, report, ...)
    Case("storage-garbage", lambda ws: ["run", ws.study(), "--storage", "not a url", *_d(ws)],
         r"storage not a url: not a database URL; use sqlite:///PATH, postgresql"),
    Case("storage-mysql", lambda ws: ["run", ws.study(), "--storage", "mysql://u:pw@h/db", *_d(ws)],
         r"storage mysql://u:\*\*\*@h/db: database 'mysql' is not supported"),
    Case("storage-sqlite-memory", lambda ws: ["run", ws.study(), "--storage", "sqlite://", *_d(ws)],
         r"storage sqlite://: needs a file"),
    Case("storage-sqlite-under-file", lambda ws: ["run", ws.study(), "--storage", f"sqlite:///{ws.file('f', 'x')}/s.db",
                                                  *_d(ws)], r"storage .*/f/s.db: cannot be created: .*/f is a file"),
    Case("storage-sqlite-is-folder", lambda ws: ["run", ws.study(), "--storage", f"sqlite:///{ws.root}", *_d(ws)],
         r"exists and is not a regular file"),
    Case("storage-sqlite-junk-file",
         lambda ws: ["status", ws.study(), "--storage", f"sqlite:///{ws.file('j.db', JUNK)}"],
         r"storage sqlite:///.*/j.db: cannot be opened \(DatabaseError: .*file is not a database"),
    Case("storage-postgres-refused", lambda ws: ["status", ws.study(), "--storage", PG_DOWN],
         r"storage postgresql\+psycopg2://postgres:\*\*\*@127.0.0.1:1/db: cannot be opened \(OperationalError: "
         r".*Connection refused"),
    Case("storage-postgres-refused-run", lambda ws: ["run", ws.study(), "--storage", PG_DOWN, *_d(ws)],
         r"postgres:\*\*\*@127.0.0.1:1/db: cannot be opened"),
    Case("storage-grpc-malformed", lambda ws: ["status", ws.study(), "--storage", "grpc://host-without-port"],
         r"a storage proxy's URL is grpc://HOST:PORT"),
    Case("worker-device-cuda-absent", lambda ws: ["worker", ws.study(), "--device", "cuda", *_d(ws)],
         r"--device cuda: no CUDA device is available", needs=_no_cuda),
    Case("worker-data-root-typo", lambda ws: ["worker", ws.study(base={"data": {"name": "image_folder",
                                                                               "root": "/no/pics", "channels": 1}}),
                                              *_d(ws)], r"image_folder: /no/pics is not a folder"),
    Case("status-no-database", lambda ws: ["status", ws.study()], r"storage sqlite:///.*study.db: no such SQLite file"),
    Case("export-no-database", lambda ws: ["export", ws.study(), "--out", str(ws.root / "e")],
         r"no such SQLite file"),
    Case("export-out-is-file", lambda ws: ["export", ws.study(), "--out", ws.file("f", "x")],
         r"--out .*/f: exists and is not a folder"),
    Case("report-top-zero", lambda ws: ["report", ws.study(), "--top", "0"], r"--top: must be in 1..1000; got 0"),
    Case("report-out-is-file", lambda ws: ["report", ws.study(), "--out", ws.file("f", "x")],
         r"--out .*/f: exists and is not a folder"),
    Case("dashboard-nothing-given", lambda ws: ["dashboard"], r"dashboard: give a study YAML or --storage URL"),
    Case("dashboard-port-zero", lambda ws: ["dashboard", "--storage", "sqlite:///x.db", "--port", "0"],
         r"--port: must be in 1..65535; got 0"),
    Case("dashboard-no-database", lambda ws: ["dashboard", ws.study()], r"no such SQLite file"),
    Case("storage-proxy-threads-zero", lambda ws: ["storage-proxy", ws.study(), "--threads", "0"],
         r"--threads: must be in 1..4096; got 0"),
    Case("storage-proxy-port-huge", lambda ws: ["storage-proxy", ws.study(), "--port", "70000"],
         r"--port: must be in 1..65535; got 70000"),
    # ------------------------------------------------------------------ empty paths (an unset shell variable)
    *[Case(f"empty-path-{name}", argv, r"argument [\w-]+: empty \(an unset shell variable\?\)") for name, argv in [
        ("train-config", lambda ws: ["train", ""]),
        ("train-out", lambda ws: ["train", ws.config(), "--out", ""]),
        ("train-data-dir", lambda ws: ["train", ws.config(), "--data-dir", ""]),
        ("sample-checkpoint", lambda ws: ["sample", "", "--out", "s.png"]),
        ("sample-out", lambda ws: ["sample", str(ws.checkpoint), "--out", ""]),
        ("eval-checkpoint", lambda ws: ["eval", ""]),
        ("run-study", lambda ws: ["run", ""]),
        ("run-data-dir", lambda ws: ["run", ws.study(), "--data-dir", ""]),
        ("worker-data-dir", lambda ws: ["worker", ws.study(), "--data-dir", " "]),
        ("confirm-data-dir", lambda ws: ["confirm", ws.study(), "--data-dir", ""]),
        ("status-storage", lambda ws: ["status", ws.study(), "--storage", ""]),
        ("export-out", lambda ws: ["export", ws.study(), "--out", ""]),
        ("report-out", lambda ws: ["report", ws.study(), "--out", ""]),
        ("visualize-out", lambda ws: ["visualize", "attention", str(ws.checkpoint), "--out", ""]),
        ("describe-config", lambda ws: ["describe", ""]),
        ("dashboard-artifacts", lambda ws: ["dashboard", ws.study(), "--artifacts", ""]),
    ]],
    # ------------------------------------------------------------------ control characters in paths and names
    Case("control-char-out", lambda ws: ["train", ws.config(), "--out", "runs/a\nb"],
         r"argument --out: contains the control character '\\n'"),
    Case("control-char-storage", lambda ws: ["status", ws.study(), "--storage", "sqlite:///x\x1b.db"],
         r"argument --storage: contains the control character '\\x1b'"),
    Case("control-char-study-name", lambda ws: ["run", ws.study(name="tiny\n"), *_d(ws)],
         r"study.yaml: study: must be 1-100 letters"),
    Case("control-char-storage-in-study", lambda ws: ["status", ws.study(storage="sqlite:///a\tb.db")],
         r"study.yaml: storage: contains the control character '\\t'"),
    # ------------------------------------------------------------------ YAML strictness, every file kind
    Case("yaml-duplicate-key-config", lambda ws: ["train", ws.file("dup.yaml", "train:\n  steps: 2\n  steps: 3\n")],
         r"dup.yaml:3:3: not valid YAML: key 'steps' given twice in one mapping \(first on line 2\)"),
    Case("yaml-duplicate-key-study", lambda ws: ["run", _dup_stop(ws), *_d(ws)],
         r"study.yaml:\d+:\d+: not valid YAML: key 'stop' given twice"),
    Case("yaml-duplicate-key-space", lambda ws: ["run", ws.study(space_bytes=b"params:\n  model.z_dim: {int: [8, 16]}\n"
                                                               b"  model.z_dim: {int: [4, 8]}\n"), *_d(ws)],
         r"space.yaml:3:3: not valid YAML: key 'model.z_dim' given twice"),
    Case("yaml-duplicate-key-enqueue", lambda ws: ["run", _dup_enqueue(ws), *_d(ws)],
         r"study.yaml:\d+:\d+: not valid YAML: key 'z_dim' given twice"),
    Case("yaml-syntax-line-and-column",
         lambda ws: ["train", ws.file("bad.yaml", "train:\n  steps: [1, 2\nmodel: {}\n")],
         r"bad.yaml:3:\d+: not valid YAML: .*while parsing a flow sequence"),
    *[Case(f"yaml-section-{kind}", lambda ws, v=value: ["train", ws.file("s.yaml", f"model: {v}\n")],
           r"s.yaml: model: must be a mapping; got") for kind, value in
      [("false", "false"), ("zero", "0"), ("list", "[]"), ("string", "dcgan")]],
    Case("yaml-study-section-false", lambda ws: ["run", ws.study(sampler=False), *_d(ws)],
         r"study.yaml: sampler: must be a mapping; got False"),
    Case("yaml-space-when-false", lambda ws: ["run", ws.space_param("model.g_cond", {"choice": ["concat"],
                                                                                       "when": False}), *_d(ws)],
         r"when: must be a mapping of a choice"),
    # ------------------------------------------------------------------ enqueued entries against the space
    Case("enqueue-out-of-range", lambda ws: ["run", ws.study(enqueue=[{**GOOD, "z_dim": 99}]), *_d(ws)],
         r"enqueue\[0\]: z_dim: must be an integer in 8..16; got 99"),
    Case("enqueue-float-for-int", lambda ws: ["run", ws.study(enqueue=[{**GOOD, "z_dim": 12.5}]), *_d(ws)],
         r"enqueue\[0\]: z_dim: must be an integer in 8..16; got 12.5"),
    Case("enqueue-unknown-name", lambda ws: ["run", ws.study(enqueue=[{**GOOD, "g_kernel_0": 3}]), *_d(ws)],
         r"enqueue\[0\]: 'g_kernel_0' not drawn by the space"),
    Case("enqueue-missing-branch-param", lambda ws: ["run", ws.study(enqueue=[{**GOOD, "g_cond": "hidden_concat"}]),
                                                     *_d(ws)], r"enqueue\[0\]: g_hidden_layer: missing"),
    Case("enqueue-choice-not-listed", lambda ws: ["run", ws.study(enqueue=[{**GOOD, "d_cond": "hinge"}]), *_d(ws)],
         r"enqueue\[0\]: d_cond: must be one of \['projection', 'concat', 'acgan'\]; got 'hinge'"),
    # ------------------------------------------------------------------ environment variables, like flags
    *[Case(f"env-threads-{kind}", lambda ws: ["worker", ws.study(), *_d(ws)],
           rf"\$HPSEARCH_THREADS: must be an integer \(CPU threads\) in 1..1024; got '{re.escape(value)}'",
           env={"HPSEARCH_THREADS": value}) for kind, value in [("word", "abc"), ("zero", "0"), ("negative", "-1")]],
    Case("env-connect-timeout", lambda ws: ["status", ws.study()], r"\$HPSEARCH_CONNECT_TIMEOUT: must be an integer",
         env={"HPSEARCH_CONNECT_TIMEOUT": "soon"}),
    Case("env-data-control-char", lambda ws: ["train", ws.config()], r"\$HPSEARCH_DATA: contains the control",
         env={"HPSEARCH_DATA": "/tmp/a\nb"}),
    Case("env-storage-mysql", lambda ws: ["status", ws.study()], r"database 'mysql' is not supported",
         env={"HPSEARCH_STORAGE": "mysql://u:s3cretPW@h/db"}),
    # ------------------------------------------------------------------ what a command would replace or keep
    Case("export-out-holds-an-export", lambda ws: ["export", ws.study(), "--out", _export_folder(ws)],
         r"--out .*/exported: already holds config.yaml and checkpoint.pt; pass --overwrite"),
    Case("report-out-users-folder", lambda ws: ["report", ws.study(), "--out", _users_folder(ws)],
         r"--out .*/mine: holds files hpsearch did not write"),
    Case("report-out-working-folder", lambda ws: ["report", ws.study(), "--out", "."],
         r"--out \.: is the working folder or contains it"),
    Case("train-resume-foreign-best", lambda ws: ["train", ws.config(metrics={"enabled": True}), "--resume", "--out",
                                                  _run_with_foreign_best(ws), *_d(ws)],
         r"best_generator.pt: the config differs in .* a best generator of another run"),
    Case("eval-classes-changed", lambda ws: ["eval", _checkpoint_on_image_folder(ws), *_d(ws)],
         r"trained on 10 classes .* but the dataset now has 3 classes"),
    Case("worker-confirm-without-runs", lambda ws: ["worker", _created_study(ws), "--confirm", *_d(ws)],
         r"study 'tiny' has no confirmation runs yet"),
    Case("confirm-no-completed-trial", lambda ws: ["confirm", _created_study(ws), *_d(ws)],
         r"study 'tiny' has no completed trial to confirm yet"),
    Case("export-trial-study-missing", lambda ws: ["export", _created_study(ws), "--trial", "0",
                                                   "--out", str(ws.root / "e"), "--storage", _other_study_db(ws)],
         r"^hpsearch: error: study 'tiny' not found"),
    # ------------------------------------------------------------------ a second round of unnamed classes
    Case("train-out-holds-a-users-config", lambda ws: ["train", ws.config(), "--out", _folder_with(ws, "config.yaml"),
                                                       *_d(ws)],
         r"--out .*/theirs: already holds config.yaml, which a run would replace; pass --resume"),
    Case("train-out-holds-run-files", lambda ws: ["train", ws.config(), "--out", _folder_with(ws, "metrics.jsonl",
                                                                                              "samples.png"), *_d(ws)],
         r"already holds metrics.jsonl, samples.png, which a run would replace"),
    Case("train-resume-nothing-to-resume", lambda ws: ["train", ws.config(), "--out", _folder_with(ws, "a.txt"),
                                                       "--resume", *_d(ws)], r"holds no checkpoint.pt to resume"),
    Case("train-out-dangling-symlink", lambda ws: ["train", ws.config(), "--out", _symlink(ws, "/no/such/x"), *_d(ws)],
         r"--out .*/link: .*/link is a symbolic link to nothing"),
    Case("train-out-symlink-loop", lambda ws: ["train", ws.config(), "--out", f"{_symlink(ws, 'link')}/run", *_d(ws)],
         r"is a symbolic link to nothing \(dangling, or a loop\)"),
    Case("train-out-name-too-long", lambda ws: ["train", ws.config(), "--out", str(ws.root / "new" / ("a" * 300)),
                                                *_d(ws)], r"is longer than 255 bytes"),
    Case("sample-out-name-too-long", lambda ws: ["sample", str(ws.checkpoint), "--out", "a" * 300 + ".png"],
         r"--out a+\.png: the name .* is longer than 255 bytes"),
    Case("run-runs-dir-of-another-study", lambda ws: ["run", ws.study(runs_dir=_owned(ws, "trials", "study 'x' in y")),
                                                      *_d(ws)], r"runs_dir .*: holds the trial folders of study 'x'"),
    Case("report-out-earlier-report-with-users-file",
         lambda ws: ["report", ws.study(), "--out", _owned(ws, "report", "tiny", "index.html", "notes.txt")],
         r"holds files hpsearch did not write \(notes.txt\)"),
    Case("report-out-users-file-in-grids",
         lambda ws: ["report", ws.study(), "--out", _owned(ws, "report", "tiny", "index.html", "grids/mine.txt")],
         r"grids/ holds files a report did not write \(mine.txt\)"),
    Case("export-out-holds-best-generator", lambda ws: ["export", ws.study(), "--out",
                                                        _folder_with(ws, "best_generator.pt")],
         r"already holds best_generator.pt; pass --overwrite"),
    Case("storage-no-scheme-separator", lambda ws: ["status", ws.study()], r"storage \*\*\*@127.0.0.1:1/db: not a",
         env={"HPSEARCH_STORAGE": "postgresql//postgres:s3cretPW@127.0.0.1:1/db"}),
    Case("image-folder-fifo", lambda ws: ["train", ws.config(data={"name": "image_folder", "root": _fifo_image(ws)}),
                                          *_d(ws)], r"class0/x.png is not a regular file"),
    Case("yaml-int-too-long", lambda ws: ["describe", ws.file("big.yaml", f"train: {{steps: {'9' * 5000}}}\n")],
         r"big.yaml: not valid YAML: a number too long to read"),
    Case("set-int-too-long", lambda ws: ["describe", ws.config(), "--set", f"train.steps={'9' * 5000}"],
         r"--set train.steps: value '9+' is not valid YAML"),
    Case("set-alias-bomb", lambda ws: ["describe", ws.config(), "--set", "model.z_dim=" + BOMB_FLOW],
         r"--set model.z_dim: YAML too large"),
    Case("enqueue-int-beyond-float", lambda ws: ["run", ws.study(enqueue=[{**GOOD, "z_dim": 10**400}]), *_d(ws)],
         r"enqueue\[0\]: z_dim: must be an integer in 8..16"),
    Case("study-base-section-empty", lambda ws: ["status", _empty_model_section(ws)], r"no such SQLite file"),
    Case("space-searches-the-dataset", lambda ws: ["run", ws.space_param("data.root", {"choice": ["/a", "/b"]}),
                                                   *_d(ws)], r"'data.root' cannot be searched"),
    Case("env-threads-double-minus", lambda ws: ["describe", ws.config()], r"\$HPSEARCH_THREADS: must be an integer",
         env={"HPSEARCH_THREADS": "--5"}),
    Case("argv-url-without-storage-flag", lambda ws: ["status", ws.study(), "postgresql://u:s3cretPW@db/x"],
         r"unrecognized arguments: postgresql://u:\*\*\*@db/x"),
    Case("export-trial-control-char", lambda ws: ["export", ws.study(), "--trial", "\x1b[31m", "--out", "e"],
         r"--trial: contains the control character '\\x1b'"),
    Case("config-root-nul", lambda ws: ["train", ws.config(data={"name": "image_folder", "root": "/tmp\x00x"})],
         r"data.root: contains the control character '\\x00'"),
    Case("config-value-huge-in-message", lambda ws: ["train", ws.config(data={"name": "x" * 100_000})],
         r"data.name: must be one of .*… \(\d+ more characters\)$"),
    Case("storage-proxy-port-taken", lambda ws: ["storage-proxy", ws.study(), "--port", str(_taken_port())],
         r"storage proxy: cannot listen on 127.0.0.1:\d+ \(Address already in use\)"),
    Case("storage-proxy-host-unknown", lambda ws: ["storage-proxy", ws.study(), "--host", "no-such-host.invalid"],
         r"storage proxy: host 'no-such-host.invalid' is not a name or address this machine can resolve"),
    Case("study-noise-seeds-one", lambda ws: ["run", ws.study(noise_seeds=1), *_d(ws)],
         r"noise_seeds: 0 \(not measured\) or at least 2"),
    # ------------------------------------------------------------------ storage URLs: malformed, with passwords
    Case("storage-grpc-unbalanced-bracket", lambda ws: ["status", ws.study(), "--storage", "grpc://[::1"],
         r"storage grpc://\[::1: not a valid URL"),
    Case("storage-grpc-with-password", lambda ws: ["status", ws.study(), "--storage", "grpc://u:s3cretPW@127.0.0.1:1"],
         r"storage grpc://u:\*\*\*@127.0.0.1:1: a storage proxy takes no user or password"),
    Case("storage-proxy-of-a-proxy", lambda ws: ["storage-proxy", ws.study(storage="grpc://127.0.0.1:13931")],
         r"storage-proxy: the storage must be the database"),
    Case("storage-mysql-password-in-argv", lambda ws: ["run", ws.study(), "--storage", "mysql://u:s3cretPW@h/db",
                                                       *_d(ws)], r"database 'mysql' is not supported"),
    # ------------------------------------------------------------------ found by attacking the parsed StorageURL
    Case("storage-sqlite-with-user", lambda ws: ["status", ws.study(), "--storage", "sqlite://u:s3cretPW@/x.db"],
         r"a SQLite URL names a file and nothing else"),
    Case("storage-sqlite-with-host-run", lambda ws: ["run", ws.study(), "--storage", "sqlite://localhost/nd1/x.db",
                                                     *_d(ws)], r"a SQLite URL names a file and nothing else"),
    Case("storage-sqlite-query-options", lambda ws: ["status", ws.study(), "--storage",
                                                     f"sqlite:///{ws.root}/s.db?mode=ro&uri=true"],
         r"no host, user, password or \?options"),
    Case("storage-password-unencoded-at", lambda ws: ["status", ws.study(), "--storage",
                                                      "postgresql://u:s3cretPW@x@127.0.0.1:1/db"],
         r"the user or password holds an '@'; write it as %40"),
    Case("storage-in-study-is-a-list", lambda ws: ["status", ws.study(storage=["postgresql://u:s3cretPW@h/db"])],
         r"storage: must be a database URL \(a string\); got a list"),
    Case("url-given-as-the-study-path", lambda ws: ["status", "postgresql://u:s3cretPW@h/db"],
         r"postgresql:/u:\*\*\*@h/db"),
    Case("storage-sqlite-without-optuna-tables", lambda ws: ["status", ws.study(), "--storage",
                                                             f"sqlite:///{ws.file('empty.db', b'')}"],
         r"holds no hpsearch study \(the file has no Optuna tables\)"),
    Case("storage-sqlite-name-too-long",
         lambda ws: ["status", ws.study(), "--storage", f"sqlite:///{ws.root}/{'a' * 300}.db"], r"storage .*: .*255"),
    Case("worker-password-in-argv-refused", lambda ws: ["worker", ws.study(), "--storage",
                                                        "postgresql+psycopg2://u:s3cretPW@127.0.0.1:1/db", *_d(ws)],
         r"cannot be opened"),
    Case("run-top-not-an-integer", lambda ws: ["report", ws.study(), "--top", "1e3"],
         r"argument --top: invalid int value: '1e3'"),
    # issue 27: KID subsets and the k of precision/recall/density/coverage, checked before training
    Case("train-metrics-kid-subset-larger-than-a-class",
         lambda ws: ["train", ws.config(metrics={"enabled": True, "samples": 100, "kid_subset_size": 50}), *_d(ws)],
         r"metrics.kid_subset_size: 50 is more than the 10 generated images per class \(metrics.samples 100 over 10 "
         r"classes\); at most 10, or leave it unset"),
    Case("train-metrics-kid-subset-size-1",
         lambda ws: ["train", ws.config(metrics={"enabled": True, "kid_subset_size": 1}), *_d(ws)],
         r"metrics.kid_subset_size: must be >= 2"),
    Case("train-metrics-kid-subsets-0",
         lambda ws: ["train", ws.config(metrics={"enabled": True, "kid_subsets": 0}), *_d(ws)],
         r"metrics.kid_subsets: must be >= 1"),
    Case("train-metrics-kid-subset-size-text",
         lambda ws: ["train", ws.config(metrics={"enabled": True, "kid_subset_size": "all"}), *_d(ws)],
         r"metrics.kid_subset_size: "),
    Case("train-metrics-prdc-k-too-big-for-the-samples",
         lambda ws: ["train", ws.config(metrics={"enabled": True, "samples": 90, "prdc_k": 9}), *_d(ws)],
         r"metrics.samples: precision/recall/density/coverage with metrics.prdc_k=9 need at least 10 per class "
         r"\(100 for 10 classes\); got 90; raise it or lower metrics.prdc_k"),
    Case("train-metrics-prdc-k-too-big-for-the-real-images",
         lambda ws: ["train", ws.config(metrics={"enabled": True, "samples": 1000, "prdc_k": 40, "real_samples": 300}),
                     *_d(ws)], r"metrics.real_samples: class \d has \d+ real images among the 300 used; "
                               r"metrics.prdc_k=40 needs at least 41; raise metrics.real_samples \(got 300\) or "
                               r"lower metrics.prdc_k"),
    Case("train-metrics-prdc-k-0", lambda ws: ["train", ws.config(metrics={"enabled": True, "prdc_k": 0}), *_d(ws)],
         r"metrics.prdc_k: must be >= 1"),
    Case("train-metrics-collapse-density-ratio-below-1",
         lambda ws: ["train", ws.config(metrics={"enabled": True, "collapse_density_ratio": 0.5}), *_d(ws)],
         r"metrics.collapse_density_ratio: must be > 1.0"),
    Case("run-objective-unknown", lambda ws: ["run", ws.study(objective="is"), *_d(ws)],
         r"objective: must be one of \['class_fid', 'fid', 'class_kid', 'kid'\]; got 'is'"),
    Case("run-base-kid-subset-larger-than-a-class",
         lambda ws: ["run", ws.study(base={"metrics": {"kid_subset_size": 500}}), *_d(ws)],
         r"metrics.kid_subset_size: 500 is more than the 10 generated images per class"),
    Case("eval-samples-too-few-for-prdc-k", lambda ws: ["eval", str(ws.checkpoint), "--samples", "30", *_d(ws)],
         r"metrics.samples: .*metrics.prdc_k=3 need at least 4 per class \(40 for 10 classes\); got 30; raise it or "
         r"lower metrics.prdc_k \(eval: --samples and --features set metrics.samples and metrics.features; the "
         r"other metrics settings are the checkpoint's\)"),
    Case("run-base-metrics-disabled-still-checked",  # a study evaluates every trial whatever metrics.enabled says
         lambda ws: ["run", ws.study(base={"metrics": {"enabled": False, "kid_subset_size": 500}}), *_d(ws)],
         r"metrics.kid_subset_size: 500 is more than the 10 generated images per class"),
    Case("run-space-prdc-k-range-beyond-the-samples",
         lambda ws: ["run", ws.study(params={"params": {**SPACE["params"], "metrics.prdc_k": {"int": [1, 20]}}},
                                     enqueue=[]), *_d(ws)],
         r"params.metrics.prdc_k: value 20 .*gives an invalid config: metrics.samples: "
         r"precision/recall/density/coverage with metrics.prdc_k=20 need at least 21 per class"),
    Case("run-space-kid-subset-choice-beyond-a-class",
         lambda ws: ["run", ws.study(params={"params": {**SPACE["params"],
                                                        "metrics.kid_subset_size": {"choice": [None, 5, 12]}}},
                                     enqueue=[]), *_d(ws)],
         r"params.metrics.kid_subset_size: value 12 .*metrics.kid_subset_size: 12 is more than"),
]


BOMB_FLOW = ("[&a [1,1,1,1,1,1,1,1,1,1], &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a], &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b], "
             "&d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c], &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d], [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]]")


_HELD: list[socket.socket] = []  # listening sockets kept open until the module's tests are done


@pytest.fixture(scope="module", autouse=True)
def _close_held_sockets() -> Iterator[None]:
    yield
    while _HELD:
        _HELD.pop().close()


def _taken_port() -> int:
    """A port this process listens on (a subprocess inherits nothing: the port stays taken for it too)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    _HELD.append(sock)
    return int(sock.getsockname()[1])


def _empty_model_section(ws: Workspace) -> str:
    """A study whose base has `model:` with nothing under it (valid: the defaults), and a space with model nodes."""
    path = Path(ws.study())
    study = yaml.safe_load(path.read_text())
    study["base"]["model"] = None
    path.write_text(yaml.safe_dump(study))
    return str(path)


def _folder_with(ws: Workspace, *names: str) -> str:
    for name in names:
        ws.file(f"theirs/{name}", "the user's")
    return str(ws.root / "theirs")


def _symlink(ws: Workspace, target: str) -> str:
    (ws.root / "link").symlink_to(target)
    return str(ws.root / "link")


def _owned(ws: Workspace, kind: str, owner: str, *names: str) -> str:
    """A folder marked as hpsearch's `kind` of `owner`, holding `names`."""
    folder = ws.root / "owned"
    folder.mkdir()
    (folder / ".hpsearch-owner.json").write_text(f'{{"kind": "{kind}", "owner": "{owner}"}}\n')
    for name in names:
        ws.file(f"owned/{name}", "x")
    return str(folder)


def _fifo_image(ws: Workspace) -> str:
    root = ws.image_folder(2)
    os.mkfifo(Path(root) / "class0" / "x.png")
    return root


def _checkpoint_on_image_folder(ws: Workspace) -> str:
    """The tiny digits checkpoint, its config pointing at an image folder of 3 classes."""
    root = ws.image_folder(3)

    def edit(payload: dict[str, Any]) -> None:
        payload["config"]["data"].update({"name": "image_folder", "root": root})

    return ws.spoiled_checkpoint(edit)


def _created_study(ws: Workspace) -> str:
    """A study that exists in its database, with no trial run."""
    from hpsearch.search import load_study_config, open_study

    path = ws.study()
    open_study(load_study_config(path), create=True)
    return path


def _other_study_db(ws: Workspace) -> str:
    """A SQLite database that holds only another study."""
    from hpsearch.search import load_study_config, open_study

    (ws.root / "o").mkdir()
    path = write_study(ws.root / "o", name="other")
    open_study(load_study_config(path), create=True)
    return f"sqlite:///{ws.root / 'o' / 'study.db'}"


def _dup_stop(ws: Workspace) -> str:
    path = Path(ws.study())
    path.write_text(path.read_text() + "stop:\n  n_trials: 17\n")
    return str(path)


def _dup_enqueue(ws: Workspace) -> str:
    path = Path(ws.study(enqueue=[]))
    text = path.read_text().replace("enqueue: []", "enqueue:\n- {z_dim: 8, z_dim: 9}")
    path.write_text(text)
    return str(path)


def _export_folder(ws: Workspace) -> str:
    folder = ws.root / "exported"
    folder.mkdir()
    (folder / "config.yaml").write_text("another run's\n")
    (folder / "checkpoint.pt").write_bytes(b"another run's")
    return str(folder)


def _users_folder(ws: Workspace) -> str:
    ws.file("mine/a.txt", "x")
    ws.file("mine/sub/b.txt", "y")
    return str(ws.root / "mine")


def _run_with_foreign_best(ws: Workspace) -> str:
    """A run folder whose checkpoint is this config's (the shared tiny run) but whose best generator is not."""
    run = ws.root / "run"
    run.mkdir()
    payload = torch.load(ws.checkpoint, weights_only=True)
    payload["config"]["metrics"]["enabled"] = True
    torch.save(payload, run / "checkpoint.pt")
    other = {**payload["config"], "data": {**payload["config"]["data"], "name": "image_folder"}}
    best = {"format": 1, "kind": "generator", "config": other,
            "class_names": ["a", "b", "c"], "step": 2, "value": 139.9, "objective": "class_fid"}
    torch.save(best, run / "best_generator.pt")
    return str(run)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A data folder with digits cached and a real checkpoint of a tiny run (2 steps)."""
    root = tmp_path_factory.mktemp("shared")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    assert main(["train", str(config), "--out", str(root / "run"), "--data-dir", str(root / "data"),
                 "--device", "cpu"]) == 0
    return root / "data", root / "run" / "checkpoint.pt"


def _snapshot(*folders: Path) -> dict[str, tuple[int, int] | None]:
    """Every path with its size and mtime (folders: present; a write probe changes their mtime, not their content)."""
    return {str(p): None if p.is_dir() and not p.is_symlink() else (p.lstat().st_size, p.lstat().st_mtime_ns)
            for folder in folders for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_is_left(case: Case, tmp_path: Path, shared: tuple[Path, Path],
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str],
                                                          caplog: pytest.LogCaptureFixture) -> None:
    if not case.needs():
        pytest.skip("the input is not bad on this machine (e.g. it has CUDA)")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPSEARCH_STORAGE", raising=False)
    monkeypatch.setenv("HPSEARCH_DATA", str(shared[0]))
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    ws = Workspace(tmp_path, *shared)
    argv = [str(a) for a in case.argv(ws)]
    before = _snapshot(tmp_path, shared[0])
    capsys.readouterr()
    code, err, extra = _run_counting_every_line(argv, caplog, capsys)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("hpsearch: error: ") and "Traceback" not in err, err
    assert not extra, f"printed before the error line: {extra}"
    assert re.search(case.match, lines[0]), lines[0]
    assert "s3cretPW" not in err
    assert _snapshot(tmp_path, shared[0]) == before, "the failed command left files behind or changed some"


def _run_counting_every_line(argv: list[str], caplog: pytest.LogCaptureFixture,
                             capsys: pytest.CaptureFixture[str]) -> tuple[int, str, list[str]]:
    """`main(argv)`: its exit code, its stderr, and every other line a real process would print on stderr: log
    records (hpsearch's and Optuna's, at INFO and above, as the CLI configures logging) and Python warnings."""
    caplog.set_level(logging.INFO)
    caplog.clear()  # what setting up the case's files logged is not the command's
    optuna.logging.enable_propagation()  # Optuna's records reach caplog (its own handler writes to the real stderr)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse exits itself
                code = int(exc.code or 0)
    finally:
        optuna.logging.disable_propagation()
    err = capsys.readouterr().err
    extra = [f"{r.levelname} {r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.INFO]
    extra += [f"{w.category.__name__}: {w.message}" for w in caught]
    return code, err, extra


SUBPROCESS_SAMPLE = ["train-config-binary", "sample-checkpoint-zero-bytes", "run-data-root-typo",
                     "run-space-value-inside-range-invalid", "storage-postgres-refused", "argv-int-flag-not-int",
                     "storage-proxy-port-taken", "storage-proxy-host-unknown", "eval-classes-changed",
                     "study-noise-seeds-one"]


def test_contract_holds_in_a_real_process(tmp_path: Path, shared: tuple[Path, Path]) -> None:
    """Only a real process shows every line on stderr (logging too) and the exit status itself."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HPSEARCH_DATA": str(shared[0])}
    env.pop("HPSEARCH_STORAGE", None)
    for case in (c for c in CASES if c.id in SUBPROCESS_SAMPLE):
        ws_root = tmp_path / case.id
        ws_root.mkdir()
        argv = [str(a) for a in case.argv(Workspace(ws_root, *shared))]
        proc = subprocess.run([sys.executable, "-m", "hpsearch", *argv], capture_output=True, text=True,
                              env=env, cwd=ws_root, timeout=120)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, (case.id, proc.stderr)
        assert re.search(case.match, lines[0]), (case.id, lines[0])
