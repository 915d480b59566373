"""The `hpsearch` command's entry point: Ctrl-C is handled from the first instant.

Importing the CLI takes seconds (torch, Optuna); a Ctrl-C during that time, or while the
arguments are parsed, must end like any other: one line and exit 130, not a traceback.
"""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from hpsearch.cli import main as run

        return run()
    except KeyboardInterrupt:
        print("hpsearch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
