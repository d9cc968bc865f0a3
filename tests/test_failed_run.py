"A failed run never blocks the corrected one, and its leftovers never mix into it; a finished audit of another configuration is still refused."
import json, os, signal, subprocess, sys, time

import numpy as np
import pandas as pd
import pytest

from conftest import mapd_cmd, wait_for_epochs

ARGS = ["audit", "--dataset", "digits", "--model", "mlp", "--epochs", "4", "--batch-size", "32", "--scores", "speed", "--score-epochs", "1",
        "--n-fit", "40", "--n-heldout", "40", "--k", "10", "--corrupt-std", "paper", "--device", "cpu", "--quiet"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _audit(out, *extra):
    return subprocess.run(mapd_cmd() + ARGS + list(extra) + ["--out", str(out)], env=ENV, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")/"audit"
    p = _audit(out)
    assert p.returncode == 0, p.stderr
    return out


def _same_as(out, ref):
    a, b = (pd.read_parquet(d/"metadata.parquet") for d in (out, ref))
    pd.testing.assert_frame_equal(a, b)
    ra, rb = (json.loads((d/"results.json").read_text()) for d in (out, ref))
    assert ra["parameters"] == rb["parameters"] and ra["probe_accuracy"] == rb["probe_accuracy"]
    assert np.array_equal(np.load(out/"scores.npy"), np.load(ref/"scores.npy"))


def test_diverged_run_then_corrected(tmp_path, reference):
    out = tmp_path/"audit"
    p = _audit(out, "--lr", "1e6")
    assert p.returncode == 2 and "diverged" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert (out/"config.json").exists() and not (out/"results.json").exists()
    p = _audit(out)
    assert p.returncode == 0, p.stderr
    _same_as(out, reference)


def test_bad_score_file_then_corrected(tmp_path, reference):
    out, bad = tmp_path/"audit", tmp_path/"scores.npz"
    np.savez(bad, scores=np.zeros(7, np.float32))   # the wrong length: refused once the data are known, after config.json
    p = _audit(out, "--scores", str(bad))
    assert p.returncode == 2 and "scores" in p.stderr and "Traceback" not in p.stderr, p.stderr
    p = _audit(out)
    assert p.returncode == 0, p.stderr
    _same_as(out, reference)


def test_killed_while_scoring_then_other_settings(tmp_path, reference):
    "A run killed before its first epoch leaves a config and perhaps scores of its own settings: the corrected run must not reuse them."
    out = tmp_path/"audit"
    p = subprocess.Popen(mapd_cmd() + ARGS + ["--score-epochs", "3", "--out", str(out)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out/"scores.npy").exists() and p.poll() is None and time.time() < deadline: time.sleep(0.01)
    p.send_signal(signal.SIGKILL); p.wait()
    assert (out/"config.json").exists() and not (out/"results.json").exists()
    p = _audit(out)   # --score-epochs 1: other scores than the killed run's
    assert p.returncode == 0, p.stderr
    _same_as(out, reference)


def test_finished_audit_of_other_settings_refused(tmp_path, reference):
    import shutil
    out = tmp_path/"audit"
    shutil.copytree(reference, out)
    before = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
    p = _audit(out, "--epochs", "5")
    assert p.returncode == 2 and "another configuration" in p.stderr, p.stderr
    assert {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()} == before


def test_recorded_epochs_of_other_settings_refused(tmp_path):
    "A run stopped after recording epochs is work worth keeping: another configuration is refused rather than erasing it."
    out = tmp_path/"audit"
    p = subprocess.Popen(mapd_cmd() + ARGS + ["--epochs", "60", "--out", str(out)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_epochs(p, out, 1)
    p.send_signal(signal.SIGKILL); p.wait()
    p = _audit(out)
    assert p.returncode == 2 and "another configuration" in p.stderr, p.stderr
    assert (out/"trajectories"/"meta.json").exists()
