"""`hpsearch dashboard`: optuna-dashboard on a study's storage, with the artifact store its workers write to."""

from __future__ import annotations

import logging
from pathlib import Path

from optuna.artifacts import FileSystemArtifactStore

from hpsearch.errors import ConfigError
from hpsearch.search import Backend, StorageURL, open_backend
from hpsearch.serving import address, check_bind, warn_exposure

_logger = logging.getLogger(__name__)


def serve_dashboard(url: StorageURL, artifacts: Path | None, host: str = "127.0.0.1", port: int = 8080,
                    backend: Backend | None = None) -> None:
    """Serve until interrupted; bound to localhost unless `host` says otherwise (with a warning).

    The dashboard shows each trial's sample grids and checkpoint because it reads the same
    artifact folder the workers upload to.

    Raises:
        ConfigError: the storage cannot be opened, the artifact folder does not exist, or the port is invalid.

    Args:
        backend: the storage at `url`, when the caller opened it already (to read the study's artifact folder).
    """
    import optuna_dashboard  # the web stack is only needed here

    check_bind("dashboard", host, port)
    storage = (backend or open_backend(url, must_exist=True)).storage
    store = None
    if artifacts is not None:
        if not artifacts.is_dir():
            raise ConfigError(f"artifacts {artifacts}: no such folder (the study's artifact store)")
        store = FileSystemArtifactStore(str(artifacts))
    warn_exposure("dashboard", host, "can read and edit the study")
    if artifacts is None:
        _logger.warning("no artifact folder: sample grids and checkpoints will not be shown")
    _logger.info("optuna-dashboard on http://%s/dashboard/ for %s (artifacts: %s); Ctrl-C stops it",
                 address(host, port), url.masked, artifacts or "none")
    try:
        optuna_dashboard.run_server(storage, host=host, port=port, artifact_store=store)
    except OSError as exc:  # the port is taken, or the host is not an address of this machine
        raise ConfigError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from exc
