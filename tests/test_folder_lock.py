"One writer per output folder: a second audit on the same folder is refused while the first runs; a dead holder never blocks."
import os, signal, subprocess, threading

import pytest

from conftest import completed_epochs, mapd_cmd, wait_for_epochs
from mapd.core import FolderLockedError, folder_lock

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
ARGS = ["audit", "--dataset", "digits", "--model", "mlp", "--batch-size", "32", "--scores", "speed", "--score-epochs", "1",
        "--n-fit", "30", "--n-heldout", "30", "--k", "10", "--corrupt-std", "paper", "--device", "cpu", "--quiet"]


def _start(out, epochs):
    p = subprocess.Popen(mapd_cmd() + ARGS + ["--epochs", str(epochs), "--out", str(out)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_epochs(p, out, 1)
    assert p.poll() is None, p.stderr.read()
    return p


def test_second_writer_refused_then_dead_holder_taken_over(tmp_path):
    out = tmp_path/"audit"
    first = _start(out, 150)
    try:
        for extra in ([], ["--seed", "1"]):   # the same run twice, or another one: both would interleave epochs
            p = subprocess.run(mapd_cmd() + ARGS + ["--epochs", "150", "--out", str(out), *extra], env=ENV, capture_output=True, text=True, timeout=300)
            assert p.returncode == 2, p.stderr
            assert f"another mapd audit is writing into {out} (pid {first.pid}" in p.stderr, p.stderr
        assert first.poll() is None   # the first goes on undisturbed
    finally:
        first.send_signal(signal.SIGKILL); first.wait()
    done = completed_epochs(out)
    assert (out/".mapd.lock").exists()   # the dead holder's file is still there ...
    p = subprocess.run(mapd_cmd() + ARGS + ["--epochs", "150", "--out", str(out)], env=ENV, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr      # ... and blocks nobody: the same command resumes and finishes
    assert completed_epochs(out) == 150 and done >= 1


def test_lock_in_python_threads(tmp_path):
    "Two writers in one process (threads, notebooks) are refused the same way."
    got, started, release = [], threading.Event(), threading.Event()
    def hold():
        with folder_lock(tmp_path, "report"):
            started.set(); release.wait(10)
    t = threading.Thread(target=hold); t.start(); started.wait(10)
    with pytest.raises(FolderLockedError, match=f"another report is writing into {tmp_path}"):
        with folder_lock(tmp_path, "report"): got.append(1)
    release.set(); t.join()
    assert got == []
    with folder_lock(tmp_path, "report"): got.append(2)   # free again
    assert got == [2]


def test_different_folders_run_side_by_side(tmp_path):
    a, b = tmp_path/"a", tmp_path/"b"
    with folder_lock(a, "audit"), folder_lock(b, "audit"): pass
