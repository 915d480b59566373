"""Graceful stop: the first SIGTERM/SIGINT asks the running work to checkpoint and stop; a second exits at once.

Schedulers (Kubernetes, SLURM, docker stop) send SIGTERM and kill some seconds later; a
worker that checkpoints its trial and hands it back loses at most one training step instead
of everything since the last checkpoint.
"""

from __future__ import annotations

import logging
import os
import signal
from types import FrameType

_logger = logging.getLogger(__name__)
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class GracefulStop:
    """Callable flag set by the first signal; pass it as `stop=` to training and workers."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def install(self) -> GracefulStop:
        """Handle SIGTERM and SIGINT in this (main) thread from now on."""
        for sig in SIGNALS:
            signal.signal(sig, self._handle)
        return self

    def __call__(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signum is not None:  # the second signal: no more waiting
            _logger.warning("%s again: exiting now", signal.Signals(signum).name)
            os._exit(128 + signum)
        self.signum = signum
        _logger.warning("%s: checkpointing the running work and stopping (send it again to exit at once)",
                        signal.Signals(signum).name)
