"""torchrun helpers that need real process groups (gloo, two processes on this machine)."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import ROOT, torchrun

pytestmark = pytest.mark.slow  # two processes that import torch and wait on each other (~8 s)

# Each rank logs when it enters and leaves the function. Rank 0 does not leave it before rank 1
# has either entered it too (which the order of the lines then shows) or is seen waiting in
# torch.distributed's barrier (a watcher thread of rank 1 looks at its main thread's stack, and
# logs "1 waits"). So the order is certain, where a sleep only made it likely; the deadline only
# bounds a broken run.
WORKER = """
import sys, threading, time
sys.path.insert(0, {root!r})
from imagenet_bench.predict import torch_distributed

group = torch_distributed.init("cpu")

def log(line):
    with open({log!r}, "a") as f:
        f.write(line + "\\n")

def lines():
    try:
        with open({log!r}) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []

def waiting_at_the_barrier(thread_id):
    frame = sys._current_frames().get(thread_id)
    while frame is not None:
        if frame.f_code.co_name == "barrier" and "distributed" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False

def watch():  # rank 1: log "1 waits" once its main thread waits at the barrier while rank 0 builds
    main = threading.main_thread().ident
    while "start 1" not in lines():
        if "start 0" in lines() and waiting_at_the_barrier(main):
            log("1 waits")
            return
        time.sleep(0.01)

def build():
    log(f"start {{group.rank}}")
    if group.rank == 0:
        deadline = time.monotonic() + 120
        while not {{"1 waits", "start 1"}} & set(lines()):
            assert time.monotonic() < deadline, "rank 1 neither waited at the barrier nor started"
            time.sleep(0.01)
    log(f"end {{group.rank}}")
    return group.rank

if group.rank == 1:
    threading.Thread(target=watch, daemon=True).start()
assert torch_distributed.local_leaders_first(group, build) == group.rank
torch_distributed.finish(group)
"""


def test_first_process_of_a_machine_builds_before_the_others(tmp_path):
    log = tmp_path / "log.txt"
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(root=str(ROOT), log=str(log)))
    cmd = torchrun(script, log_dir=tmp_path / "torchrun-logs")
    result = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert log.read_text().split("\n")[:-1] == ["start 0", "1 waits", "end 0", "start 1", "end 1"]
