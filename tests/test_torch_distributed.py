"""torchrun helpers that need real process groups (gloo, two processes on this machine)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow  # two processes that import torch and wait on each other (~8 s)

# Each rank logs when it enters and leaves the function; a 1 s sleep makes two ranks that
# run it at once overlap, which the order of the lines then shows.
WORKER = """
import sys, time
sys.path.insert(0, {root!r})
from imagenet_bench.predict import torch_distributed

group = torch_distributed.init("cpu")

def build():
    with open({log!r}, "a") as log:
        log.write(f"start {{group.rank}}\\n")
    time.sleep(1.0)
    with open({log!r}, "a") as log:
        log.write(f"end {{group.rank}}\\n")
    return group.rank

assert torch_distributed.local_leaders_first(group, build) == group.rank
torch_distributed.finish(group)
"""


def test_first_process_of_a_machine_builds_before_the_others(tmp_path):
    log = tmp_path / "log.txt"
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(root=str(ROOT), log=str(log)))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "--log-dir",
        str(tmp_path / "torchrun-logs"),
        str(script),
    ]  # not a torchelastic_* folder in /tmp
    result = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert log.read_text().split("\n")[:-1] == ["start 0", "end 0", "start 1", "end 1"]
