"""The test harness's sweep of a started system: a process that escaped its tree (reparented
to init, as a service restarted by a supervisor in the middle of a kill would be) is found by
the mark in its environment and killed, so it cannot consume a later test's queues."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.support import MARK, _alive, kill_marked, new_mark, poll


def test_an_orphan_carrying_the_mark_is_killed_and_others_are_left_alone():
    mark, other = new_mark(), new_mark()
    spawn = ("import subprocess, sys; print(subprocess.Popen("
             "[sys.executable, '-c', 'import time; time.sleep(60)'],"
             " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid)")  # not run()'s pipes

    def orphan(value: str) -> int:  # its parent exits at once: the sleeper is reparented
        done = subprocess.run([sys.executable, "-c", spawn], env=dict(os.environ, **{MARK: value}),
                              capture_output=True, text=True, check=True)
        return int(done.stdout)

    escaped, bystander = orphan(mark), orphan(other)
    try:
        assert _alive(escaped) and _alive(bystander)
        assert kill_marked(mark) == [escaped]
        assert poll(lambda: _alive(escaped), lambda alive: not alive, 5) is False
        assert _alive(bystander)
    finally:
        kill_marked(other)
