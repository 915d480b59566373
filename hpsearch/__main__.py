"""The `hpsearch` command's entry point: Ctrl-C is handled from the first instant.

Importing the CLI takes seconds (torch, Optuna); a Ctrl-C during that time, or while the
arguments are parsed, must end like any other: one line and exit 130, not a traceback.
"""

from __future__ import annotations

import os
import signal
import sys


def interrupted(exc: BaseException | None) -> bool:
    """Whether `exc` is a Ctrl-C or was caused by one.

    A compiled extension module (pybind11's) that is interrupted while it initialises turns
    the KeyboardInterrupt into `ImportError: initialization failed` raised from it, so the
    Ctrl-C is found by following the chain of causes, not only by the exception's type.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def main() -> int:
    try:
        from hpsearch.cli import main as run

        code = run()
        # The work is done and its output written: a Ctrl-C now changes nothing. Ignored, so that the
        # interpreter's teardown (which restores the default handler) is not killed by it (exit -2).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        return code
    except BaseException as exc:  # while importing or parsing: nothing has been created yet
        if not interrupted(exc):
            raise
        print("hpsearch: interrupted", file=sys.stderr, flush=True)
        # At once: an import cut short (torch's) can leave the interpreter to die of SIGINT at exit (-2, not 130).
        os._exit(130)


if __name__ == "__main__":
    sys.exit(main())
