"""An audit killed with SIGKILL at every phase (scores, corruption choice, each epoch and between its writes, after the last epoch,
while writing the table and the results) resumes, with the same command, to what an uninterrupted run gives."""
import json, os, subprocess, sys

import numpy as np
import pandas as pd
import pytest

from conftest import mapd_cmd
from mapd.store import TrajectoryStore

ARGS = ["audit", "--dataset", "digits", "--model", "mlp", "--epochs", "5", "--batch-size", "32", "--scores", "speed", "--score-epochs", "1",
        "--n-fit", "40", "--n-heldout", "40", "--k", "10", "--device", "cpu", "--quiet"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}   # one thread count everywhere: bitwise-equal CPU results
TIMES = ("seconds", "train_seconds", "score_seconds", "cover_seconds")

# A real process killed by a real SIGKILL at a chosen point: the driver wraps one library function so that the process kills
# itself there, then runs the `mapd` command as a user would. Nothing of the library is changed for the test.
DRIVER = r'''
import os, signal, sys
import mapd.audit as A, mapd.core as C, mapd.scores as S, mapd.store as ST
phase, n = sys.argv[1], int(sys.argv[2])
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
def after(mod, name, when=lambda *a, **k: True):
    f = getattr(mod, name)
    def g(*a, **k):
        r = f(*a, **k)
        if when(*a, **k): die()
        return r
    setattr(mod, name, g)
if phase == "scores": after(S, "fit")                       # the score model trained, its scores not yet written
elif phase == "corrupt": after(A, "choose_corrupt_std")     # the proxy run done, corrupt_std.json not yet written
elif phase == "epoch_marked": after(ST.TrajectoryStore, "mark_complete", lambda self, k: k == n)   # epoch n complete
elif phase == "epoch_written": after(ST.TrajectoryStore, "write_epoch", lambda self, e, **k: e == n - 1)   # columns flushed, no checkpoint
elif phase == "checkpointed":                               # checkpoint of epoch n saved, the store not yet told
    f = ST.TrajectoryStore.mark_complete
    def g(self, k):
        if k == n: die()
        return f(self, k)
    ST.TrajectoryStore.mark_complete = g
if phase in ("history", "table", "results", "checkpoint_file"):   # inside an atomic write: the temporary file is complete, the rename not done
    target = {"history": "history.csv", "table": "metadata.parquet", "results": "results.json", "checkpoint_file": "checkpoint.pt"}[phase]
    rep, seen = os.replace, [0]
    def replace(src, dst, *a, **k):
        if str(dst).endswith(target):
            seen[0] += 1
            if seen[0] == max(n, 1): die()
        return rep(src, dst, *a, **k)
    C.os.replace = replace
from mapd.cli import main
sys.exit(main(sys.argv[3:]))
'''

PHASES = [("scores", 0), ("corrupt", 0), ("epoch_written", 1), ("epoch_marked", 1), ("checkpointed", 3), ("epoch_marked", 4),
          ("checkpoint_file", 2), ("epoch_marked", 5), ("history", 1), ("table", 1), ("results", 1)]


def _run(out, *extra, phase=None, n=0):
    cmd = [sys.executable, "-c", DRIVER, phase, str(n)] + ARGS + list(extra) + ["--out", str(out)] if phase else mapd_cmd() + ARGS + list(extra) + ["--out", str(out)]
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)


def _same(a, b):
    "Assert two finished audits hold the same recording, table and results."
    sa, sb = TrajectoryStore(a/"trajectories"), TrajectoryStore(b/"trajectories")
    assert sa.completed == sb.completed == 5
    for q in sa.quantities: np.testing.assert_array_equal(sa.trajectories(q), sb.trajectories(q), err_msg=q)
    pd.testing.assert_frame_equal(pd.read_parquet(a/"metadata.parquet"), pd.read_parquet(b/"metadata.parquet"))
    ha, hb = (pd.read_csv(d/"history.csv").drop(columns="seconds") for d in (a, b))
    pd.testing.assert_frame_equal(ha, hb)
    ra, rb = ({k: v for k, v in json.loads((d/"results.json").read_text()).items() if k not in TIMES} for d in (a, b))
    assert ra == rb
    assert np.array_equal(np.load(a/"scores.npy"), np.load(b/"scores.npy"))


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")/"audit"
    p = _run(out, "--corrupt-std", "auto")
    assert p.returncode == 0, p.stderr
    return out


@pytest.mark.parametrize("phase,n", PHASES, ids=[f"{p}-{n}" for p, n in PHASES])
def test_kill_then_resume_equals_uninterrupted(tmp_path, clean, phase, n):
    out = tmp_path/"audit"
    p = _run(out, "--corrupt-std", "auto", phase=phase, n=n)
    assert p.returncode == -9, f"the kill at {phase} {n} did not happen: exit {p.returncode}\n{p.stderr[-2000:]}"
    assert not (out/"results.json").exists()
    p = _run(out, "--corrupt-std", "auto")
    assert p.returncode == 0, p.stderr[-3000:]
    _same(out, clean)
    left = [f.name for d in (out, out/"trajectories") for f in d.glob(".*.tmp")]
    assert not left, f"temporary files left by the kill survived the resume: {left}"
