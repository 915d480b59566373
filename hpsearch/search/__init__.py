"""Everything Optuna: study files, spaces, storage backends, the objective, workers, status and export.

The public API is what this module exports; `cli`, `reports` and `dashboard` import only
from here. Behind it, one concern per module (import graph, no cycles):

    space, study_file ← space             search spaces; study files (`LoadedStudy`, with its parsed StorageURL)
    samplers, pruners ← study_file        registries by name
    connection                            URL masking, connect deadlines, lost vs bad connections
    storage_url ← connection              StorageURL: a storage URL parsed once (scheme, masked form, parts)
    storage ← connection                  RDB storage retrying lost connections; trials created once
    claim ← connection, storage           the study's claim lock (file or advisory lock)
    proxy_client ← storage_url, storage   gRPC client: heartbeats, claims, idempotent trial creation
    backend ← claim, proxy_client         KINDS: one class per scheme (probe, open, claim lock, engine options)
    study ← backend, samplers, pruners    opening or creating a study, with the changed-study guard
    record                                TrialRecord: the typed, versioned record of a trial
    artifacts ← record                    the artifact store: atomic uploads, finding and copying artifacts back
    objective ← record, artifacts, runner trial → config → training → reported value
    confirm/ ← objective, record, study   confirmation runs: companion study, plan, race rounds, run, result
    worker ← objective, confirm, study    processes, GPUs, heartbeats, claims, hand-back
    noise ← record                        single-run ranking beside the objective's measured noise; collapse
    status ← record, study, confirm, noise `hpsearch status` (with the confirmed ranking)
    export ← artifacts, study             `hpsearch export`: a finished trial's config and generator
    packing ← study_file                  --per-gpu K: one trial's measured peak memory × K against free memory
    proxy_server ← backend, study, claim  `hpsearch storage-proxy`
    optuna_private                        the private Optuna symbols used, checked by a test
"""

from hpsearch.search.artifacts import artifacts_dir, fetch_artifact, fetch_checkpoint, fetch_generator, is_artifact_id
from hpsearch.search.backend import KINDS, Backend, StorageKind, open_backend, storage_kind
from hpsearch.search.confirm import (
    RACE_FLAGS,
    Confirmation,
    check_confirmation,
    check_per,
    choose_sources,
    companion_name,
    confirmation,
    open_companion,
    plan_confirmation,
    stored_race,
)
from hpsearch.search.connection import mask_url
from hpsearch.search.export import export_trial
from hpsearch.search.noise import SingleRuns, collapse_note, single_runs
from hpsearch.search.packing import GpuMemory, check_packing, gpu_memory, measure_trial_peak
from hpsearch.search.proxy_server import DEFAULT_PORT, serve_storage_proxy
from hpsearch.search.pruners import ExtrapolatingPruner, make_pruner
from hpsearch.search.record import TrialRecord, finite, read_trial, read_trials
from hpsearch.search.samplers import make_sampler
from hpsearch.search.space import SearchSpace, load_space
from hpsearch.search.status import study_summary
from hpsearch.search.storage_url import StorageURL
from hpsearch.search.study import make_storage, open_study, snapshot, study_backend
from hpsearch.search.study_file import (
    LoadedStudy,
    PrunerConfig,
    SamplerConfig,
    StopConfig,
    StudyConfig,
    load_study_config,
)
from hpsearch.search.worker import (
    Prepared,
    launch_workers,
    parse_gpus,
    prepare_worker,
    run_worker,
    set_threads_from_env,
)

__all__ = [
    "Backend", "ExtrapolatingPruner", "LoadedStudy", "PrunerConfig", "SamplerConfig", "SearchSpace", "StopConfig",
    "StudyConfig", "TrialRecord", "artifacts_dir", "export_trial", "fetch_artifact", "fetch_checkpoint",
    "fetch_generator", "finite", "is_artifact_id", "launch_workers", "load_space", "load_study_config", "make_pruner",
    "make_sampler", "make_storage", "mask_url", "open_backend", "open_study", "parse_gpus", "prepare_worker",
    "read_trial", "read_trials", "run_worker", "storage_kind", "serve_storage_proxy", "set_threads_from_env",
    "study_summary", "Confirmation", "check_per", "choose_sources", "companion_name", "confirmation", "open_companion",
    "plan_confirmation", "check_confirmation", "stored_race", "RACE_FLAGS",
    "SingleRuns", "collapse_note", "single_runs", "GpuMemory", "check_packing",
    "gpu_memory", "measure_trial_peak", "snapshot", "KINDS", "StorageKind", "StorageURL", "study_backend",
    "Prepared", "DEFAULT_PORT",
]
