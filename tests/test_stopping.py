"""GracefulStop: the first signal sets the flag and the work goes on to its checkpoint; the second exits at once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

# Work that never polls the flag, i.e. stuck in a long step: only the second signal can end it.
SCRIPT = """
import sys, time
from hpsearch.stopping import GracefulStop
stop = GracefulStop().install()
print("ready", flush=True)
while True:
    time.sleep(0.05)
    if stop():
        print("flag set", flush=True)
        while True:
            time.sleep(0.05)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_first_signal_sets_the_flag_second_exits_at_once(sig: signal.Signals) -> None:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(sig)
    assert proc.stdout.readline().strip() == "flag set"
    assert proc.poll() is None  # the first signal does not end the process
    start = time.monotonic()
    proc.send_signal(sig)
    assert proc.wait(timeout=5) == 128 + sig and time.monotonic() - start < 2
    assert f"{sig.name} again: exiting now" in proc.stderr.read()
