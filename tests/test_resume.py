"A run killed with SIGKILL resumes from its last complete epoch and ends with the trajectories of a run never stopped."
import json, os, signal, subprocess

import numpy as np

from conftest import completed_epochs, mapd_cmd, wait_for_epochs
from mapd.store import TrajectoryStore

ARGS = ["audit", "--dataset", "digits", "--model", "cnn", "--epochs", "25", "--batch-size", "32", "--scores", "speed",
        "--score-epochs", "1", "--n-fit", "40", "--n-heldout", "40", "--k", "10", "--device", "cpu", "--quiet"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same thread count in every run: bitwise-equal CPU results


def test_killed_run_resumes_to_identical_trajectories(tmp_path):
    killed, clean = tmp_path/"killed", tmp_path/"clean"
    p = subprocess.Popen(mapd_cmd() + ARGS + ["--out", str(killed)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_epochs(p, killed, 3)
    p.send_signal(signal.SIGKILL); p.wait()
    done_at_kill = completed_epochs(killed)
    assert 3 <= done_at_kill < 25, f"the kill should land mid-run, but {done_at_kill} epochs were complete"
    assert not (killed/"results.json").exists()
    subprocess.run(mapd_cmd() + ARGS + ["--out", str(killed)], env=ENV, check=True, capture_output=True)
    subprocess.run(mapd_cmd() + ARGS + ["--out", str(clean)], env=ENV, check=True, capture_output=True)
    a, b = TrajectoryStore(killed/"trajectories"), TrajectoryStore(clean/"trajectories")
    assert a.completed == b.completed == 25
    for q in ("loss", "margin", "correct"):
        np.testing.assert_array_equal(a.trajectories(q), b.trajectories(q))
    ra, rb = (json.loads((d/"results.json").read_text()) for d in (killed, clean))
    assert ra["probe_accuracy"] == rb["probe_accuracy"]
