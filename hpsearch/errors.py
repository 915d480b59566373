"""The errors hpsearch raises on purpose, each with the exit status the CLI gives it.

`HPSearchError` is their root: the CLI turns each into one line on stderr, never a traceback.
Bad input (`ConfigError`, `DataError`, `CheckpointError`) exits 2; a run that diverged
(`TrainingDiverged`) exits 1; a run stopped on request (`TrainingInterrupted`) exits 128 + the
signal (130 for Ctrl-C), as a shell reports a process ended by that signal.
"""

from __future__ import annotations


def reason(exc: BaseException, limit: int = 200) -> str:
    """An exception's message as one line of at most `limit` characters, for a one-line error.

    Falls back to the exception's type: some carry no message (`str(EOFError())` is empty).
    """
    return " ".join(str(exc).split())[:limit] or type(exc).__name__


class HPSearchError(Exception):
    """Root of every error that hpsearch raises on purpose."""


class ConfigError(HPSearchError):
    """A config file, a `--set` override or a CLI value is invalid (bad input, exit 2)."""


class DataError(HPSearchError):
    """A dataset is missing, corrupt or in the wrong format (bad input, exit 2)."""


class CheckpointError(HPSearchError):
    """A checkpoint is missing, unreadable or does not match the configuration (exit 2)."""


class TrainingDiverged(HPSearchError):
    """A loss became NaN or infinite; not bad input, so the CLI exits 1.

    Attributes:
        step: the training step at which the loss was first non-finite.
        loss_name: which loss diverged ("loss_d" or "loss_g").
        value: the offending value.
    """

    def __init__(self, step: int, loss_name: str, value: float) -> None:
        super().__init__(f"training diverged at step {step}: {loss_name} = {value}")
        self.step = step
        self.loss_name = loss_name
        self.value = value


class TrainingInterrupted(HPSearchError):
    """Training stopped on request (SIGTERM/SIGINT) after writing a checkpoint at `step`."""

    def __init__(self, step: int, checkpoint: str) -> None:
        super().__init__(f"stopped on request at step {step}; checkpoint {checkpoint}")
        self.step, self.checkpoint = step, checkpoint
