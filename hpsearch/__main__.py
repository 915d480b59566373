"""The `hpsearch` command's entry point: Ctrl-C is handled from the first instant.

Importing the CLI takes seconds (torch, Optuna); a Ctrl-C during that time, or while the
arguments are parsed, must end like any other: one line and exit 130, not a traceback.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    try:
        from hpsearch.cli import main as run

        return run()
    except KeyboardInterrupt:  # while importing or parsing: nothing has been created yet
        print("hpsearch: interrupted", file=sys.stderr, flush=True)
        # At once: an import cut short (torch's) can leave the interpreter to die of SIGINT at exit (-2, not 130).
        os._exit(130)


if __name__ == "__main__":
    sys.exit(main())
