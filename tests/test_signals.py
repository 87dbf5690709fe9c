"""Stop signals: one that lands inside a finaliser is not lost (Python drops exceptions raised
there), and a Ctrl-C that interrupted code run by exec() still exits 130."""

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


def test_an_interrupt_inside_exec_of_a_string_still_exits_130(tmp_path) -> None:
    """CPython marks a KeyboardInterrupt that escaped exec() of a string (dataclasses define their
    methods that way, so an import interrupted at that moment does) as unhandled, and a program
    run with `python -m` then dies by SIGINT (-2) whatever it returns, even after ptft caught the
    interrupt and printed its line (1 test run in 10 hit this in test_bad_inputs)."""
    (tmp_path / "interrupted_cli.py").write_text(textwrap.dedent("""
        import ptft.cli.tasks
        from ptft.cli import main

        ptft.cli.tasks.run = lambda args: exec("raise KeyboardInterrupt")
        raise SystemExit(main(["tasks"]))
    """))
    proc = subprocess.run([sys.executable, "-m", "interrupted_cli"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert (proc.returncode, proc.stderr.strip()) == (130, "ptft tasks: interrupted; nothing to resume: run the "
                                                            "command again")
