"""`make test`'s pytest: the suite as two pytest processes at once, then both reports.

The end-to-end half (process trees, the broker, the fault runs, the 100,000-application history)
spends most of its time waiting; the other half (3,000 small tests) spends it on this machine's
CPU. Side by side on the 2-core machine the whole run took 11.3 minutes, against 18.9 minutes as
one process (docs/benchmarks.md, "The test suite"). Each process has its own RabbitMQ vhost and
databases (conftest.py), so neither sees the other's events or data. Arguments are passed to both
(`make test PYTEST_ARGS=-x`); a non-zero exit from either fails the run.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The waiting half; everything else (new folders included) runs in the other.
WAITING = ["tests/e2e", "tests/reporting", "tests/hostile", "tests/flows", "tests/tracking"]


def main(args: list[str]) -> int:
    pytest = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    halves = {
        "end-to-end half": [*pytest, *WAITING],
        "the rest": [*pytest, "tests", *(f"--ignore={path}" for path in WAITING)],
    }
    started = time.monotonic()
    running = {}
    for name, command in halves.items():
        log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed below
        running[name] = (subprocess.Popen(command, cwd=ROOT, stdout=log,  # noqa: S603
                                          stderr=subprocess.STDOUT), log)
    failed = []
    for name, (process, log) in running.items():
        code = process.wait()
        log.seek(0)
        print(f"\n===== {name}: {' '.join(halves[name][len(pytest):])} =====", flush=True)
        sys.stdout.write(log.read())
        log.close()
        if code != 0:
            failed.append(f"{name} (exit {code})")
    print(f"\n===== both halves done in {time.monotonic() - started:.0f} s; "
          f"{'failed: ' + ', '.join(failed) if failed else 'all passed'} =====")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
