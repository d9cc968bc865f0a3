"Data-parallel `fit` under torchrun: two processes with the gloo backend on the CPU, on scikit-learn's digits."
import json, os, subprocess, sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mapd.store import TrajectoryStore

WORKER = Path(__file__).parent/"ddp_worker.py"
REPO = Path(__file__).parents[1]


def _run(out, *args, nproc=2):
    "The worker under torchrun with `nproc` processes (or plainly, for 1); the finished process."
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] if nproc > 1 else [sys.executable]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([*launch, str(WORKER), str(out), *args], capture_output=True, text=True, timeout=900, env=env)


def _ok(p):
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p


def _store(out) -> TrajectoryStore: return TrajectoryStore(Path(out)/"store")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    "One process and two, on 1,280 rows (global batches of 64 split evenly): the same SGD in exact arithmetic."
    d = tmp_path_factory.mktemp("ddp")
    _ok(_run(d/"one", "--rows", "1280", nproc=1))
    _ok(_run(d/"two", "--rows", "1280"))
    return d


def test_two_processes_record_every_row_once_as_one_process_does(two_runs):
    one, two = _store(two_runs/"one"), _store(two_runs/"two")
    assert two.completed == two.n_epochs == 4 and two.n_rows == 1280
    for q in ("loss", "margin"):
        a, b = one.trajectories(q), two.trajectories(q)
        assert not np.isnan(b).any()                                   # no gap: every row of every epoch, whichever rank saw it
        np.testing.assert_allclose(b, a, rtol=1e-2, atol=2e-3)         # float16 storage of sums taken in another order
    assert (one.trajectories("correct") != two.trajectories("correct")).mean() < 0.002
    h1, h2 = (json.loads((two_runs/n/"history.json").read_text()) for n in ("one", "two"))
    assert h2["train_acc"] == pytest.approx(h1["train_acc"], abs=0.002) and h2["train_loss"] == pytest.approx(h1["train_loss"], rel=1e-3)


def test_kill_of_a_rank_resumes_to_the_same_store(two_runs, tmp_path):
    "Rank 1 dies hard after epoch 2, torchrun stops the job; the same command again resumes it from the store."
    # A fresh launch, not torchrun's --max-restarts: its in-place restart of a gloo group raced in CI ("Gloo connectFullMesh
    # failed ... Connection refused", as in pytorch/pytorch#167288); both go through the same resume in `fit`.
    died = _run(tmp_path, "--rows", "1280", "--die-after", "2")
    assert died.returncode != 0 and (tmp_path/"died").exists(), died.stderr[-2000:]
    assert 0 < _store(tmp_path).completed < 4                   # the kill landed mid-run, after at least one epoch was written
    _ok(_run(tmp_path, "--rows", "1280"))
    resumed, straight = _store(tmp_path), _store(two_runs/"two")
    assert resumed.completed == 4
    for q in ("loss", "margin", "correct"): np.testing.assert_array_equal(resumed.trajectories(q), straight.trajectories(q))
    assert len(json.loads((tmp_path/"history.json").read_text())["epoch"]) == 4


def test_uneven_rows_pad_without_recording_twice(tmp_path):
    "1,347 rows over two processes: the shuffle is padded with one repeat that is neither recorded nor weighed, so the SGD is one process's."
    _ok(_run(tmp_path/"eval", "--record", "eval", "--epochs", "2"))
    _ok(_run(tmp_path/"online", "--epochs", "2"))
    _ok(_run(tmp_path/"one", "--epochs", "2", nproc=1))
    np.testing.assert_allclose(_store(tmp_path/"online").trajectories("loss"), _store(tmp_path/"one").trajectories("loss"), rtol=1e-2, atol=2e-3)
    for name in ("eval", "online"):
        s = _store(tmp_path/name)
        assert s.n_rows == 1347 and s.completed == 2 and not np.isnan(s.trajectories("loss")).any()
        h = json.loads((tmp_path/name/"history.json").read_text())
        assert h["train_acc"] == pytest.approx(s.trajectories("correct").mean(0).tolist())   # the history's accuracy is over all rows, once each
    bad = _run(tmp_path/"bad", "--epochs", "1", "--record-padding")
    assert bad.returncode != 0 and "recorded by more than one process" in bad.stdout + bad.stderr
    assert _store(tmp_path/"bad").completed == 0


# `mapd audit` itself under torchrun: every process trains its share, rank 0 alone writes and prints.
AUDIT = ["--dataset", "digits", "--batch-size", "64", "--n-fit", "30", "--n-heldout", "30", "--k", "5", "--corrupt-std", "0.5", "--device", "cpu", "--quiet"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}   # one thread per process in every run: bitwise-equal CPU results where the arithmetic is the same


def _audit(out, *args, nproc=2, wait=True):
    "`mapd audit` under torchrun with `nproc` processes (plainly for 1): the finished process, or the running one (`wait=False`)."
    from conftest import mapd_cmd
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "--no-python"] if nproc > 1 else []
    cmd = [*launch, *mapd_cmd(), "audit", *AUDIT, *args, "--out", str(out)]
    if not wait: return subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, )
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=ENV)


def _kill_tree(pid: int):
    "SIGKILL `pid` and every process below it, as a scheduler ends a job (torchrun's workers do not share its process group)."
    below = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try: below.setdefault(int(stat.read_text().rsplit(")", 1)[1].split()[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError): pass   # a process that ended meanwhile
    todo, tree = [pid], []
    while todo: tree.append(todo.pop()); todo += below.get(tree[-1], [])
    for q in tree:
        try: os.kill(q, 9)
        except ProcessLookupError: pass


@pytest.fixture(scope="module")
def score_file(tmp_path_factory):
    "Consistency scores from a file: both runs build the same probes, so their trajectories can be compared row by row."
    from mapd.data import load_digits
    fn, labels = tmp_path_factory.mktemp("scores")/"scores.npz", load_digits("train").labels.numpy()
    np.savez(fn, scores=np.random.default_rng(0).random(len(labels)).astype(np.float32), labels=labels)
    return fn


def test_audit_under_torchrun_records_what_one_process_records(score_file, tmp_path):
    args = ("--epochs", "6", "--scores", str(score_file))
    _ok(_audit(tmp_path/"one", *args, nproc=1))
    two = _ok(_audit(tmp_path/"two", *args))
    assert two.stdout.count('"probe_accuracy"') == 1                                # rank 0 prints the results, once
    r = json.loads((tmp_path/"two"/"results.json").read_text())
    assert r["processes"] == 2 and r["n_probes"] > 0
    assert (tmp_path/"two"/"report.html").read_text(encoding="utf-8").count('class="mapd-category"') == len(r["parameters"]["categories"])   # rank 0 writes the page
    assert (tmp_path/"one"/"probes.csv").read_text() == (tmp_path/"two"/"probes.csv").read_text()
    a, b = (TrajectoryStore(tmp_path/n/"trajectories") for n in ("one", "two"))
    assert b.completed == 6 and not np.isnan(b.trajectories("loss")).any()
    np.testing.assert_allclose(b.trajectories("loss"), a.trajectories("loss"), rtol=1e-2, atol=2e-3)
    ta, tb = (pd.read_parquet(tmp_path/n/"metadata.parquet") for n in ("one", "two"))
    assert (ta.category == tb.category).mean() > 0.97
    # rank 0's error reaches every process, and is said once
    bad = _audit(tmp_path/"two", "--epochs", "7", "--scores", str(score_file))
    assert bad.returncode != 0 and bad.stderr.count("mapd audit: error:") == 1 and "another configuration" in bad.stderr
    odd = _audit(tmp_path/"odd", "--epochs", "1", "--batch-size", "63")
    assert odd.returncode != 0 and odd.stderr.count("must divide by the 2 processes") == 1 and not (tmp_path/"odd").exists()


def test_audit_under_torchrun_scores_on_every_process(tmp_path):
    "Held-out consistency scores and the corrupted probe's noise chosen by proxy runs, trained data-parallel; rank 0's numbers everywhere."
    args = ("--epochs", "2", "--scores", "heldout", "--score-runs", "1", "--score-epochs", "1", "--corrupt-std", "auto")
    _ok(_audit(tmp_path/"one", *args, nproc=1))
    _ok(_audit(tmp_path/"two", *args))
    s1, s2 = (np.load(tmp_path/n/"scores.npy") for n in ("one", "two"))
    np.testing.assert_allclose(s2, s1, atol=0.02)   # the same held-out models, their SGD summed in another order
    r = json.loads((tmp_path/"two"/"results.json").read_text())
    assert r["corrupt_std"] == json.loads((tmp_path/"two"/"corrupt_std.json").read_text())["chosen"]


def test_killed_audit_under_torchrun_resumes_to_the_same_store(score_file, tmp_path):
    args = ("--epochs", "25", "--batch-size", "16", "--model", "cnn", "--scores", str(score_file))
    p = _audit(tmp_path/"killed", *args, wait=False)
    from conftest import completed_epochs, wait_for_epochs
    wait_for_epochs(p, tmp_path/"killed", 3)
    _kill_tree(p.pid); p.wait()                                                  # torchrun and both processes, at once
    done = completed_epochs(tmp_path/"killed")
    assert 3 <= done < 25, f"the kill should land mid-run, but {done} epochs were complete"
    _ok(_audit(tmp_path/"killed", *args))
    _ok(_audit(tmp_path/"straight", *args))
    a, b = (TrajectoryStore(tmp_path/n/"trajectories") for n in ("killed", "straight"))
    assert a.completed == 25
    for q in ("loss", "margin", "correct"): np.testing.assert_array_equal(a.trajectories(q), b.trajectories(q))
    assert json.loads((tmp_path/"killed"/"results.json").read_text())["probe_accuracy"] == json.loads((tmp_path/"straight"/"results.json").read_text())["probe_accuracy"]
