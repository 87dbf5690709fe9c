"""A stop signal that lands inside a finaliser is not lost (Python drops exceptions raised there)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

PROGRAM = textwrap.dedent("""
    import os, signal, time
    from ptft.errors import Terminated, raise_stop

    signal.signal(signal.SIGTERM, raise_stop)

    class Finalised:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)  # the handler runs here, inside __del__

    Finalised()
    try:
        for _ in range(200):
            time.sleep(0.01)
    except Terminated as stop:
        print("stopped", stop.code)
    else:
        print("signal lost")
""")


def test_sigterm_inside_a_finaliser_is_delivered_after_it():
    proc = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "stopped 143", proc.stderr
    assert "Exception ignored" not in proc.stderr
