"""The `hpsearch` command: one subcommand per user verb, bad input → one line and exit 2."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import numpy as np
import optuna
import torch
from optuna.trial import TrialState

from hpsearch import environment
from hpsearch.checkpoint import CHECKPOINT_NAME
from hpsearch.config import MAX_SEED, MetricsConfig, from_dict, load_config, replace_sections
from hpsearch.dashboard import serve_dashboard
from hpsearch.data import load_dataset, peek_class_names
from hpsearch.devices import resolve_device
from hpsearch.environment import check_environment
from hpsearch.errors import ConfigError, HPSearchError, TrainingDiverged, TrainingInterrupted, reason
from hpsearch.generation import check_same_classes, class_labels, generate, load_generator
from hpsearch.images import save_grid
from hpsearch.io import atomic_write, check_text, check_writable
from hpsearch.metrics import Evaluator, check_features, check_metrics
from hpsearch.models import build_discriminator, build_generator, trainable_parameters
from hpsearch.racing import RaceSettings
from hpsearch.redaction import ScrubSecrets, remember_secrets, scrub
from hpsearch.reports import build_report
from hpsearch.runner import (
    LATEST_GRID,
    check_before_data,
    check_resumable,
    check_run_folder,
    mark_run_folder,
    run_training,
)
from hpsearch.search import (
    DEFAULT_PORT,
    RACE_FLAGS,
    Backend,
    LoadedStudy,
    Prepared,
    StorageURL,
    artifacts_dir,
    check_confirmation,
    check_packing,
    check_per,
    choose_sources,
    companion_name,
    export_trial,
    gpu_memory,
    launch_workers,
    load_study_config,
    mask_url,
    measure_trial_peak,
    open_backend,
    open_study,
    parse_gpus,
    plan_confirmation,
    prepare_worker,
    read_trials,
    run_worker,
    serve_storage_proxy,
    set_threads_from_env,
    stored_race,
    study_backend,
    study_summary,
)
from hpsearch.stopping import GracefulStop
from hpsearch.visualize import FIGURES, FigureOptions, draw_figure

_logger = logging.getLogger("hpsearch")


def _add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=_path, help="run config YAML (sections data, model, train)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value, e.g. --set model.d_cond=projection (repeatable)")
    p.add_argument("--steps", type=int, help="number of generator steps (overrides train.steps)")
    p.add_argument("--out", type=_path, help="run folder (default runs/<config name>)")
    _add_device(p)
    _add_data_dir(p)
    p.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")


def _run_train(args: argparse.Namespace) -> int:
    overrides = list(args.overrides) + ([f"train.steps={args.steps}"] if args.steps is not None else [])
    cfg = load_config(args.config, overrides, label="--set")
    device = _device(args.device)
    out = args.out or Path("runs") / args.config.stem
    check_writable(out, "--out", is_dir=True)
    check_run_folder(out, args.resume)
    check_before_data(cfg, device)
    data_dir = _data_dir(args)
    dataset = load_dataset(cfg.data, data_dir)
    if cfg.metrics.enabled:
        check_metrics(cfg, dataset)  # before the first line of progress: an error stays the only line
    if args.resume:
        check_resumable(cfg, dataset, out)
    mark_run_folder(out)
    _logger.info("training %s on %s (%d images, %d classes) on %s → %s", cfg.model.generator, cfg.data.name,
                 len(dataset), dataset.num_classes, device, out)
    stop = GracefulStop().install()
    try:
        run_training(cfg, dataset, out, device, data_dir / "cache", resume=args.resume, stop=stop)
    except TrainingDiverged as exc:
        print(f"hpsearch: {exc}", file=sys.stderr)
        return 1
    except TrainingInterrupted as exc:
        print(f"hpsearch: {exc}; continue with: hpsearch train {args.config} --out {out} --resume", file=sys.stderr)
        return 128 + (stop.signum or 0)
    _logger.info("done: %s, %s, %s", out / CHECKPOINT_NAME, out / "metrics.jsonl", out / LATEST_GRID)
    return 0


def _add_sample(p: argparse.ArgumentParser) -> None:
    _add_checkpoint(p)
    p.add_argument("--per-class", type=_count(1, 10_000), default=8, help="samples per class (default 8)")
    p.add_argument("--out", type=_path, required=True, help="output .png (grid, one row per class) or .npz")
    p.add_argument("--seed", type=_SEED, default=0, help="noise seed (default 0)")
    _add_device(p)
    p.add_argument("--no-ema", action="store_true", help="use the raw generator, not its EMA")
    p.add_argument("--truncation", type=_unit_fraction, default=1.0,
                   help="truncation ψ in (0, 1] for stylegan2: pull w toward its class mean (default 1: none)")


def _run_sample(args: argparse.Namespace) -> int:
    if args.out.suffix not in (".png", ".npz"):
        raise ConfigError(f"--out {args.out}: must end in .png (grid) or .npz (arrays)")
    check_writable(args.out, "--out", is_dir=False)
    device = _device(args.device)
    loaded = load_generator(args.checkpoint, device, use_ema=not args.no_ema)
    labels = class_labels(len(loaded.class_names), args.per_class, device)
    images = generate(loaded.generator, labels, loaded.config.model.z_dim, seed=args.seed, truncation=args.truncation)
    if args.out.suffix == ".png":
        save_grid(images, args.per_class, args.out)
    else:
        atomic_write(args.out, lambda fh: np.savez(fh, images=images.cpu().numpy(), labels=labels.cpu().numpy(),
                                                  class_names=np.array(loaded.class_names, dtype=str)))
    _logger.info("wrote %d samples (%d classes, step %d) to %s", len(images), len(loaded.class_names),
                 loaded.step, args.out)
    return 0


def _add_eval(p: argparse.ArgumentParser) -> None:
    _add_checkpoint(p)
    p.add_argument("--samples", type=int, help="generated images (default: the run's metrics.samples)")
    p.add_argument("--features", choices=["domain", "inception"], help="FID features (default: the run's)")
    _add_data_dir(p)
    _add_device(p)
    p.add_argument("--no-ema", action="store_true", help="use the raw generator, not its EMA")


def _run_eval(args: argparse.Namespace) -> int:
    device = _device(args.device)
    loaded = load_generator(args.checkpoint, device, use_ema=not args.no_ema)
    overrides = {"samples": args.samples, "features": args.features}
    metrics = {**loaded.config.to_dict()["metrics"], **{k: v for k, v in overrides.items() if v is not None}}
    cfg = from_dict({**loaded.config.to_dict(), "metrics": metrics}, "command line")
    data_dir = _data_dir(args)
    check_features(cfg)
    names = peek_class_names(cfg.data)
    if names is not None:  # before the dataset is cached: a refusal writes and logs nothing
        check_same_classes(loaded.class_names, names, args.checkpoint)
    dataset = load_dataset(cfg.data, data_dir)
    if names is None:  # a built-in dataset: its classes are known once it is loaded
        check_same_classes(loaded.class_names, dataset.class_names, args.checkpoint)
    try:
        check_metrics(cfg, dataset)
    except ConfigError as exc:  # say which of the keys this command can change
        raise ConfigError(f"{exc} (eval: --samples and --features set metrics.samples and metrics.features; the "
                          f"other metrics settings are the checkpoint's)") from exc
    evaluator = Evaluator(cfg, dataset, device, data_dir / "cache")
    result = {"checkpoint": str(args.checkpoint), "step": loaded.step, "features": cfg.metrics.features,
              **evaluator(loaded.step, loaded.generator)}
    print(json.dumps(result))
    return 0


def _add_study_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", type=_path, help="study YAML (see studies/)")
    p.add_argument("--storage", type=_url,
                   help="database URL (default: $HPSEARCH_STORAGE, else the study's, else "
                        "sqlite:///runs/<study>/study.db); the environment keeps a password out of process lists")


def _add_run(p: argparse.ArgumentParser) -> None:
    _add_study_args(p)
    _add_n_trials(p)
    p.add_argument("--gpus", help="comma-separated GPU ids; one worker per GPU (times --per-gpu)")
    p.add_argument("--per-gpu", type=_count(1, MAX_WORKERS), default=1, help="workers per GPU (default 1)")
    _add_local_workers(p)


def _add_local_workers(p: argparse.ArgumentParser) -> None:
    """Worker processes on this machine (`run`, `confirm`): how many, on which device, reading which data."""
    p.add_argument("--workers", type=_count(1, MAX_WORKERS), default=1,
                   help="worker processes on this machine (default 1)")
    _add_device(p, " for a single in-process worker")
    _add_data_dir(p)


def _add_n_trials(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n-trials", type=_count(1, MAX_TRIALS),
                   help="finished trials to reach (default: the study's stop.n_trials)")


def _run_run(args: argparse.Namespace) -> int:
    # Everything that can fail is checked before the study exists: a fixed typo re-runs cleanly.
    loaded = _load_study(args)
    with _flag("--gpus", "GPU ids"):
        gpus = parse_gpus(args.gpus)
    _device(args.device)
    if len(gpus) * args.per_gpu > MAX_WORKERS:
        raise ConfigError(f"--gpus × --per-gpu: at most {MAX_WORKERS} workers; got {len(gpus) * args.per_gpu}")
    data_dir = _data_dir(args)
    in_process = args.workers == 1 and not gpus
    prepared = prepare_worker(loaded, data_dir, args.device if in_process else "cuda" if gpus else "cpu")
    if gpus:  # K workers per GPU must fit in its memory: measured before any starts
        check_packing(args.per_gpu, measure_trial_peak(loaded, data_dir, gpus[0]), gpu_memory(gpus))
    _warn_password_in_argv(args)
    if not in_process:
        open_study(loaded, create=True, backend=prepared.backend)  # once (and enqueued) before the workers start
    return _work_here_or_launch(args, loaded, prepared, data_dir, in_process, gpus, confirm=False)


def _work_here_or_launch(args: argparse.Namespace, loaded: LoadedStudy, prepared: Prepared, data_dir: Path,
                         in_process: bool, gpus: list[str], confirm: bool) -> int:
    """`run` and `confirm`: one worker in this process, or `--workers` processes (pinned to `gpus`); then the
    study's summary. Exit 128 + the signal when a Ctrl-C or SIGTERM stopped the work (as `train` does)."""
    if in_process:
        stop = GracefulStop().install()
        run_worker(loaded, data_dir, args.device, args.n_trials if not confirm else None, stop=stop,
                   prepared=prepared, confirm=confirm)
        code = 128 + stop.signum if stop.signum else 0
    else:
        code = launch_workers(args.study, loaded.storage.given, args.workers, gpus, args.per_gpu if gpus else 1,
                              None if confirm else args.n_trials, args.data_dir, confirm=confirm)
    print(study_summary(loaded, prepared.backend))
    return code


def _add_worker(p: argparse.ArgumentParser) -> None:
    _add_study_args(p)
    _add_n_trials(p)
    _add_device(p)
    _add_data_dir(p)
    p.add_argument("--confirm", action="store_true",
                   help="run the study's confirmation runs (planned by `hpsearch confirm`) instead of search trials")


def _run_worker(args: argparse.Namespace) -> int:
    set_threads_from_env()
    loaded = _load_study(args)
    _device(args.device)
    # A worker stopped by a signal has handed its trial back: its job is done, so it exits 0
    # (a scheduler's restart policy must not count that as a failure).
    run_worker(loaded, _data_dir(args), args.device, args.n_trials, stop=GracefulStop().install(),
               confirm=args.confirm, ready=lambda: _warn_password_in_argv(args))
    return 0


def _add_confirm(p: argparse.ArgumentParser) -> None:
    _add_study_args(p)
    p.add_argument("--top", type=_count(1, 1000), default=3, help="confirm the K best completed trials (default 3)")
    p.add_argument("--per", action="append", default=[], metavar="PARAM",
                   help="also the best completed trial for each value of this searched choice, e.g. g_cond "
                        "(repeatable)")
    p.add_argument("--seeds", type=_count(1, 1000),
                   help=f"runs per configuration, each with a fresh training seed (default {FIXED_SEEDS}; a race: its "
                        f"first round, default {RACE_DEFAULTS.first})")
    p.add_argument("--samples", type=_SAMPLES,
                   help="generated images of each run's independent measurement (default: the study's metrics.samples)")
    race = p.add_argument_group("racing", "--race: every candidate runs --seeds seeds, then one more seed per "
                                          "round while it is not found worse than the leader")
    race.add_argument("--race", action="store_true", help="race the candidates instead of --seeds runs of each")
    race.add_argument("--confidence", type=float, help="chance of never dropping the true best over the whole "
                                                       f"race (default {RACE_DEFAULTS.confidence})")
    race.add_argument("--margin", type=float, help="relative practical margin: stop when every survivor is within "
                                                   "it of the leader, e.g. 0.02 (default 0: never)")
    race.add_argument("--max-seeds", type=int, help=f"seeds per candidate at most (default {RACE_DEFAULTS.max_seeds})")
    race.add_argument("--budget", type=int, help="runs in all at most (default: no limit but --max-seeds)")
    race.add_argument("--test", choices=("paired", "welch"), help="paired t on the per-seed differences, or Welch "
                                                                 f"(default {RACE_TEST})")
    _add_local_workers(p)


RACE_DEFAULTS = RaceSettings()
RACE_TEST = "paired" if RACE_DEFAULTS.paired else "welch"
FIXED_SEEDS = 3


def _race_settings(args: argparse.Namespace, loaded: LoadedStudy, sources: int,
                   backend: Backend | None = None) -> RaceSettings | None:
    """The race the flags ask for (None without --race): a race that exists goes on with its settings, and a
    flag given again must match them (`--max-seeds`, `--budget` may grow).

    Raises:
        ConfigError: a racing flag without --race, or a value out of its range (named by flag).
    """
    given = {"first": args.seeds, "confidence": args.confidence, "margin": args.margin,
             "max_seeds": args.max_seeds, "budget": args.budget,
             "paired": None if args.test is None else args.test == "paired"}
    given = {k: v for k, v in given.items() if v is not None}
    if not args.race:
        extra = [RACE_FLAGS[k] for k in given if k != "first"]
        if extra:
            raise ConfigError(f"{extra[0]}: only with --race")
        return None
    found = stored_race(loaded, backend)
    merged = {**(found[0] if found else RACE_DEFAULTS).to_dict(), **given}
    candidates = len(found[1]) if found else sources
    if candidates < 2:
        raise ConfigError(f"--race: races two or more candidates; --top {args.top} and --per chose {candidates} "
                          "(confirm one configuration without --race)")
    if not 0.5 <= merged["confidence"] < 1:
        raise ConfigError(f"--confidence: must be in [0.5, 1), e.g. 0.95; got {merged['confidence']}")
    if not 0 <= merged["margin"] < 1:
        raise ConfigError(f"--margin: relative, in [0, 1), e.g. 0.02 for 2%; got {merged['margin']}")
    merged["margin"] += 0.0  # -0.0 is stored as 0.0
    _check_count("--max-seeds", merged["max_seeds"], 1000)
    if not 2 <= merged["first"] <= merged["max_seeds"]:
        raise ConfigError(f"--seeds: a race's first round needs at least 2 seeds (a t test needs a spread) and at "
                          f"most --max-seeds ({merged['max_seeds']}); got {merged['first']}")
    first_round = candidates * merged["first"]
    if merged["budget"] is not None and not first_round <= merged["budget"] <= 10_000_000:
        raise ConfigError(f"--budget: must be in {first_round}..10000000 (the first round alone is {candidates} "
                          f"candidates × {merged['first']} seeds = {first_round} runs); got {merged['budget']}")
    return RaceSettings(**merged)


def _run_confirm(args: argparse.Namespace) -> int:
    loaded = _load_study(args)
    _device(args.device)
    samples = args.samples if args.samples is not None else loaded.base_config.metrics.samples
    data_dir = _data_dir(args)
    backend = study_backend(loaded, must_exist=True)  # opened once for the plan and the worker here
    search = open_study(loaded, backend=backend)  # creates nothing: the study must exist
    trials = read_trials(search)
    complete = {t.number for t in trials if t.state == TrialState.COMPLETE}
    if not complete:
        raise ConfigError(f"study {loaded.cfg.study!r} has no completed trial to confirm yet; run the search first")
    with _flag("--per", "per"):
        check_per(search, args.per)
        sources = choose_sources(trials, args.top, args.per)
    race = _race_settings(args, loaded, len(sources), backend)
    seeds = race.first if race else args.seeds or FIXED_SEEDS
    with _flag("--samples", "samples"):
        check_confirmation(loaded, sources, samples, race, complete, backend)  # before any data is cached
    prepared = prepare_worker(loaded, data_dir, args.device if args.workers == 1 else "cpu", backend)
    with _flag("--samples"):  # each source's own metrics (a space may set them) at the confirmation's count
        for source in sources:
            cfg = from_dict(source.config or loaded.cfg.base, f"trial {source.number}: config")
            check_metrics(replace_sections(cfg, metrics={"samples": samples}), prepared.dataset)
    _warn_password_in_argv(args)
    with _flag("--samples", "samples"):
        planned = plan_confirmation(loaded, sources, seeds, samples, backend, race=race, complete=complete)
    _logger.info("%s %s (%d runs planned in %s)", "racing" if race else "confirming",
                 f"from {seeds} seeds each" if race else f"{len(sources)} configurations × {seeds} seeds", planned,
                 companion_name(loaded.cfg.study))
    return _work_here_or_launch(args, loaded, prepared, data_dir, args.workers == 1, [], confirm=True)


def _run_status(args: argparse.Namespace) -> int:
    print(study_summary(_load_study(args)))
    return 0


def _add_export(p: argparse.ArgumentParser) -> None:
    _add_study_args(p)
    p.add_argument("--trial", default="best", help="trial number or 'best' (default best)")
    p.add_argument("--out", type=_path, required=True, help="folder for config.yaml and checkpoint.pt")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a config.yaml, checkpoint.pt and best_generator.pt already in --out "
                        "(refused without it)")
    p.add_argument("--last", action="store_true",
                   help="export the last training checkpoint (to resume or fine-tune) instead of the generator of "
                        "the trial's best evaluation, the one its value describes")


def _run_export(args: argparse.Namespace) -> int:
    check_writable(args.out, "--out", is_dir=True)
    with _flag("--trial", "trial"):
        check_text(args.trial, "trial", "a trial number or 'best'")
    loaded = _load_study(args)
    with _flag(f"--trial {args.trial}", f"trial {args.trial}"):
        path = export_trial(loaded, args.trial, args.out, last=args.last, overwrite=args.overwrite)
    _logger.info("exported to %s (hpsearch sample %s --out samples.png)", args.out, path)
    return 0


def _add_describe(p: argparse.ArgumentParser) -> None:
    p.add_argument("configs", type=_path, nargs="+", help="run config YAML(s)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value in every config (repeatable)")
    p.add_argument("--classes", type=_count(1, 100_000), default=10, help="number of classes to build for (default 10)")


def _run_describe(args: argparse.Namespace) -> int:
    configs = [(path, load_config(path, args.overrides, label="--set")) for path in args.configs]  # all checked first
    print(f"{'config':<40} {'generator':<10} {'image':>7} {'G params':>12} {'D params':>12}")
    for path, cfg in configs:
        size, channels = cfg.data.image_size, cfg.data.channels
        counts = [trainable_parameters(build(cfg.model, size, channels, args.classes))
                  for build in (build_generator, build_discriminator)]
        print(f"{str(path):<40} {cfg.model.generator:<10} {f'{size}x{size}x{channels}':>7} "
              f"{counts[0]:>12,} {counts[1]:>12,}")
    return 0


def _add_visualize(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=sorted(FIGURES),
                   help="attention: maps of query positions (sagan, or g_attention set); "
                        "style-mixing: coarse styles by row, fine by column (stylegan2)")
    _add_checkpoint(p)
    p.add_argument("--out", type=_path, required=True, help="output .png")
    p.add_argument("--classes", help="attention: comma-separated classes, one image each (default 0,1)")
    p.add_argument("--class", dest="label", type=int, default=0, help="style-mixing: the class (default 0)")
    p.add_argument("--rows", type=int, default=4, help="style-mixing: row sources (default 4)")
    p.add_argument("--cols", type=int, default=4, help="style-mixing: column sources (default 4)")
    p.add_argument("--cutoff", type=int, help="style-mixing: styles taken from the row (default half)")
    p.add_argument("--seed", type=_SEED, default=0, help="noise seed (default 0)")
    _add_device(p)
    p.add_argument("--no-ema", action="store_true", help="use the raw generator, not its EMA")


def _run_visualize(args: argparse.Namespace) -> int:
    if args.out.suffix.lower() != ".png":
        raise ConfigError(f"--out {args.out}: must end in .png")
    if not (1 <= args.rows <= 16 and 1 <= args.cols <= 16):
        raise ConfigError(f"--rows and --cols: must be in 1..16; got {args.rows}, {args.cols}")
    check_writable(args.out, "--out", is_dir=False)
    device = _device(args.device)
    loaded = load_generator(args.checkpoint, device, use_ema=not args.no_ema)
    k = len(loaded.class_names)
    if not 0 <= args.label < k:
        raise ConfigError(f"--class: must be in 0..{k - 1}; got {args.label}")
    options = FigureOptions(_class_list(args.classes or "0,1", k), args.label, args.rows, args.cols, args.cutoff,
                            args.seed)
    draw_figure(args.kind, loaded.generator, loaded.config.model.z_dim, options, args.out)
    _logger.info("wrote %s", args.out)
    return 0


def _class_list(text: str, num_classes: int) -> list[int]:
    try:
        classes = [int(c) for c in text.split(",") if c.strip()]
    except ValueError as exc:
        raise ConfigError(f"--classes: comma-separated integers, e.g. 0,3; got {text!r}") from exc
    if not classes or not all(0 <= c < num_classes for c in classes) or len(classes) > 16:
        raise ConfigError(f"--classes: 1-16 classes in 0..{num_classes - 1}; got {text!r}")
    return classes


def _add_report(p: argparse.ArgumentParser) -> None:
    _add_study_args(p)
    p.add_argument("--out", type=_path, help="report folder (default reports/<study>)")
    p.add_argument("--top", type=_count(1, 1000), default=5,
                   help="trials in the top table, with their sample grids (default 5)")
    p.add_argument("--no-png", action="store_true", help="skip the static PNG of the parallel coordinates")


def _run_report(args: argparse.Namespace) -> int:
    loaded = _load_study(args)
    out = args.out or Path("reports") / loaded.cfg.study
    report = build_report(loaded, out, args.top, png=not args.no_png)
    for note in report.notes:
        _logger.warning("%s", note)
    print(report.out / "index.html")
    return 0


def _add_dashboard(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", type=_path, nargs="?", help="study YAML: its storage and artifact folder")
    p.add_argument("--storage", type=_url, help="database URL (default: $HPSEARCH_STORAGE, else the study's)")
    p.add_argument("--artifacts", type=_path, help="artifact folder (default: the study's)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_PORT, default=8080, help="port (default 8080)")


def _run_dashboard(args: argparse.Namespace) -> int:
    storage, artifacts = _storage(args), args.artifacts
    if args.study is None and storage is None:
        raise ConfigError("dashboard: give a study YAML or --storage URL")
    if args.artifacts is not None and not args.artifacts.is_dir():
        raise ConfigError(f"--artifacts {args.artifacts}: no such folder (the study's artifact store)")
    backend = None
    if args.study is not None:
        loaded = _load_study(args)
        backend = open_backend(loaded.storage, must_exist=True)  # a reader: no heartbeats
        artifacts = artifacts or artifacts_dir(loaded, open_study(loaded, backend=backend))
    assert storage is not None or backend is not None  # one of the two was given
    serve_dashboard(backend.url if backend else StorageURL.parse(storage or ""), artifacts, args.host, args.port,
                    backend)
    return 0


def _add_storage_proxy(p: argparse.ArgumentParser) -> None:
    _add_study_args(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; the workers' network interface on a cluster)")
    p.add_argument("--port", type=_PORT, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--threads", type=_count(1, 4096), default=64, help="requests served at once (default 64)")


def _run_storage_proxy(args: argparse.Namespace) -> int:
    serve_storage_proxy(_load_study(args), args.host, args.port, args.threads)
    return 0


MAX_WORKERS = 256  # worker processes on one machine: beyond this a typo, not a plan
MAX_TRIALS = 10_000_000


def _int_in(low: int, high: int) -> Callable[[str], int]:
    """The type of an integer flag with a range: argparse refuses a value outside it, naming the flag."""

    def parse(text: str) -> int:
        value = int(text)  # a ValueError: argparse says "invalid int value: 'x'", as for type=int
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in {low}..{high}; got {value}")
        return value

    parse.__name__ = "int"
    return parse


def _unit_fraction(text: str) -> float:
    """The type of --truncation: a number in (0, 1]."""
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1]; got {value}")
    return value


_unit_fraction.__name__ = "float"
_SAMPLES_META = next(f.metadata for f in dataclasses.fields(MetricsConfig) if f.name == "samples")
_SAMPLES = _int_in(_SAMPLES_META["ge"], _SAMPLES_META["le"])  # what metrics.samples allows
_count = _int_in  # a count of something: _count(1, most)
_PORT, _SEED = _int_in(1, 65535), _int_in(0, MAX_SEED)


def _check_count(flag: str, value: int, most: int) -> None:
    """For a count that is not a flag's own value (a stored race's setting merged with the flags)."""
    if not 1 <= value <= most:
        raise ConfigError(f"{flag}: must be in 1..{most}; got {value}")


def _add_device(p: argparse.ArgumentParser | argparse._ArgumentGroup, what: str = "") -> None:
    p.add_argument("--device", default="auto", help=f"auto, cpu or cuda{what} (default auto)")


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=_path, help="dataset folder (default $HPSEARCH_DATA or ~/.cache/hpsearch/data)")


def _add_checkpoint(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", type=_path,
                   help="a checkpoint file, or a run or export folder (its best generator, else its checkpoint.pt)")


@contextlib.contextmanager
def _flag(flag: str, key: str | None = None) -> Iterator[None]:
    """Library errors name config keys and values; here they are worded for the flag that gave the value.

    With `key`, a message that starts with it has it replaced by the flag and any other (about
    something else, e.g. a study that is not there) is left as it is; without, every message is
    prefixed with the flag.
    """
    try:
        yield
    except ConfigError as exc:
        text = str(exc)
        if key is None:
            raise ConfigError(f"{flag}: {text}") from exc
        if text.startswith(key):
            raise ConfigError(flag + text[len(key):]) from exc
        raise


def _device(name: str) -> torch.device:
    with _flag("--device", "device"):
        return resolve_device(name)


def _data_dir(args: argparse.Namespace) -> Path:
    """--data-dir (or its default), which must be a folder this user can write (the dataset cache lives there)."""
    data_dir = args.data_dir or environment.data_dir()
    check_writable(data_dir, "--data-dir" if args.data_dir else "data directory ($HPSEARCH_DATA)", is_dir=True)
    return Path(data_dir)


def _storage(args: argparse.Namespace) -> str | None:
    """--storage, else $HPSEARCH_STORAGE, else None (the study file's)."""
    return args.storage if args.storage is not None else environment.storage_url()


def _load_study(args: argparse.Namespace) -> LoadedStudy:
    """The study file with the storage the command line or the environment gives."""
    return load_study_config(args.study, _storage(args))


def _warn_password_in_argv(args: argparse.Namespace) -> None:
    """Said once every check has passed, so that a refused command still prints one line only."""
    if args.storage is not None and mask_url(args.storage) != args.storage:
        _logger.warning("--storage holds a password, which every user of this machine can read in its process "
                        "list; put the URL in $HPSEARCH_STORAGE instead")


def _path(text: str) -> Path:
    """The type of every path argument: an empty string (an unset shell variable) is never a path.

    A storage URL typed here by mistake (`status postgresql://u:pw@h/db`) is not echoed with its password.
    """
    remember_secrets(text)
    try:
        return Path(check_text(text, "path", "a file or folder name"))
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("path: ")) from exc


def _url(text: str) -> str:
    """The type of --storage (its value is never repeated: it may hold a password)."""
    remember_secrets(text)
    try:
        return check_text(text, "url", "a database URL", secret=True)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("url: ")) from exc


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "train": ("train one configuration", _add_train, _run_train),
    "sample": ("write class-conditional samples from a checkpoint", _add_sample, _run_sample),
    "eval": ("evaluate a checkpoint's generator: FID, KID, precision/recall/density/coverage (overall and per "
             "class), accuracy, MS-SSIM", _add_eval, _run_eval),
    "run": ("create or resume a study and run its workers", _add_run, _run_run),
    "worker": ("run one worker of a study (for launch scripts on other machines)", _add_worker, _run_worker),
    "confirm": ("train the study's leading configurations again with fresh seeds and measure them independently",
                _add_confirm, _run_confirm),
    "status": ("trials by state, the best trial and the running ones", _add_study_args, _run_status),
    "export": ("copy a trial's config and checkpoint out, ready for `hpsearch sample`", _add_export, _run_export),
    "describe": ("print the parameter counts of configs' generator and discriminator", _add_describe,
                 _run_describe),
    "visualize": ("draw a generator's attention maps or style mixing from a checkpoint", _add_visualize,
                  _run_visualize),
    "report": ("write a study's report: parallel coordinates, importances, curves, samples", _add_report, _run_report),
    "dashboard": ("serve optuna-dashboard on a study, with its sample grids and checkpoints", _add_dashboard,
                  _run_dashboard),
    "storage-proxy": ("serve the study's database to many workers through Optuna's gRPC storage proxy "
                      "(workers: --storage grpc://HOST:PORT)", _add_storage_proxy, _run_storage_proxy),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's usage dump → one line, exit 2
        # It may repeat an argument: a URL given without --storage, a value with control characters.
        shown = " ".join(mask_url(word) if "@" in word else word for word in message.split(" "))
        self.exit(2, f"hpsearch: error: {scrub(_one_line(shown))} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hpsearch", description="Hyperparameter search for class-conditional GANs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (help_text, add, _) in COMMANDS.items():
        add(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit status (2 for bad input, also when argparse refuses a flag)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0), or a flag refused by its type (2, one line already printed)
        return exc.code if isinstance(exc.code, int) else 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # "[I …] Using an existing study" would precede an error
    for handler in [*logging.getLogger().handlers, *logging.getLogger("optuna").handlers]:
        if not any(isinstance(f, ScrubSecrets) for f in handler.filters):
            handler.addFilter(ScrubSecrets())  # no log line carries a password, whoever wrote it
    try:
        check_environment()
        return COMMANDS[args.command][2](args)
    except HPSearchError as exc:
        return _error(str(exc))
    except OSError as exc:  # the file system refused something we could not check beforehand (disk full, ...)
        where = f"{exc.filename}: " if exc.filename else ""
        return _error(f"{where}{exc.strerror or reason(exc)}")
    except KeyboardInterrupt:  # Ctrl-C before a command installed its own handling
        print("hpsearch: interrupted", file=sys.stderr)
        return 130


MAX_ERROR_CHARS = 2000  # a message that repeats a value the user gave (7 MB of a name) is cut here


def _error(text: str) -> int:
    """The one line of a refused command (scrubbed of passwords, cut to a readable length), and its exit status."""
    line = scrub(_one_line(text))
    if len(line) > MAX_ERROR_CHARS:
        line = f"{line[:MAX_ERROR_CHARS]}… ({len(line) - MAX_ERROR_CHARS} more characters)"
    print(f"hpsearch: error: {line}", file=sys.stderr)
    return 2


def _one_line(text: str) -> str:
    """One line of printable text: whitespace runs become one space, other control characters are escaped."""
    line = " ".join(text.split()) or "unknown error"
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)


if __name__ == "__main__":
    sys.exit(main())
