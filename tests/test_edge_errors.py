"""Errors that name the file and the fix (issue 32, class 7): damaged or wrongly shaped files in an audit folder, a truncated
checkpoint, an audit folder without its trajectories; and a resumed audit does not pass the cache's load time off as scoring."""
import json

import numpy as np
import pytest

from edge_helpers import data_args, fails, run, snapshot, copy
from mapd.audit import Audit


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    d = tmp_path_factory.mktemp("edge_errors")
    p = run(data_args(d) + ["--out", str(d/"a")])
    assert p.returncode == 0, p.stderr[-2000:]
    return d


def _unfinished(base, dst):
    a = copy(base/"a", dst)
    for fn in ("results.json", "metadata.parquet", "history.csv"): (a/fn).unlink()
    return a


DAMAGE = {   # file -> (bytes written, words the one line must hold)
    "config.json": (b"{\"dataset\": \"npz\", ", "is damaged"),
    "config.json ": (b"[1, 2, 3]", "holds a list"),
    "fingerprints.json": (b"\x00\x01garbage", "is damaged"),
    "trajectories/meta.json": (b"{\"n_rows\": 3", "is damaged"),
    "trajectories/meta.json ": (b"42", "holds a int"),
    "scores.npy": (b"\x93NUMPY garbage", "is damaged"),
    "trajectories/checkpoint.pt": (None, "is damaged and cannot be resumed from"),
}


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_damaged_file_named(base, tmp_path, name):
    a = _unfinished(base, tmp_path/"a")
    fn, (text, words) = a/name.strip(), DAMAGE[name]
    if text is None: fn.write_bytes(fn.read_bytes()[:len(fn.read_bytes()) // 2])   # truncated, as by a full disk
    else: fn.write_bytes(text)
    before = snapshot(a)
    fails(data_args(base) + ["--out", str(a)], str(fn), words)
    assert snapshot(a) == before


def test_scores_of_wrong_shape(base, tmp_path):
    a = _unfinished(base, tmp_path/"a")
    np.save(a/"scores.npy", np.zeros(7, np.float32))
    before = snapshot(a)
    fails(data_args(base) + ["--out", str(a)], str(a/"scores.npy"), "shape (7,)", "delete it")
    assert snapshot(a) == before


@pytest.mark.parametrize("fn,text,words", [("config.json", "[]", "holds a list"), ("results.json", "{oops", "is damaged"),
                                           ("results.json", "\"text\"", "holds a str")])
def test_load_names_damaged_file(base, tmp_path, fn, text, words):
    a = copy(base/"a", tmp_path/"a"); (a/fn).write_text(text)
    with pytest.raises(ValueError, match=words) as e: Audit.load(a)
    assert str(a/fn) in str(e.value)


def test_committed_audit_without_trajectories_says_how_to_remake(base, tmp_path):
    a = copy(base/"a", tmp_path/"a")
    import shutil; shutil.rmtree(a/"trajectories")
    with pytest.raises(FileNotFoundError, match="mapd report --only audit"): Audit.load(a)


def test_resumed_score_seconds_not_the_cache_load(base, tmp_path):
    a = _unfinished(base, tmp_path/"a")
    p = run(data_args(base) + ["--out", str(a)])
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.loads((a/"results.json").read_text())["score_seconds"] is None
    assert json.loads((base/"a"/"results.json").read_text())["score_seconds"] > 0


@pytest.mark.parametrize("text,words", [("{}", "lacks n_train"), ("{\"parameters\": [1]}", "lacks n_train"), ("{\"n_train\": 1}", "lacks n_probes")])
def test_results_json_without_an_audits_keys(base, tmp_path, text, words):
    "A results.json that is an object but not an audit's (emptied, edited) is refused by Audit.load, and through the CLI's resume of a finished audit, naming the file and the fix (main: a KeyError traceback in the summary)."
    a = copy(base/"a", tmp_path/"a"); (a/"results.json").write_text(text)
    with pytest.raises(ValueError, match=words) as e: Audit.load(a)
    assert str(a/"results.json") in str(e.value) and "delete it" in str(e.value)
    before = snapshot(a)
    fails(data_args(base) + ["--out", str(a)], str(a/"results.json"), words, "delete it")
    assert snapshot(a) == before


def test_results_parameters_not_an_object(base, tmp_path):
    a = copy(base/"a", tmp_path/"a")
    r = json.loads((a/"results.json").read_text()); r["parameters"] = [1, 2]; (a/"results.json").write_text(json.dumps(r))
    with pytest.raises(ValueError, match="lacks parameters"): Audit.load(a)


@pytest.mark.parametrize("bad,words", [(np.array(["a"] * 300), "dtype <U1"), (np.full(300, np.nan, np.float32), "300 non-finite values")])
def test_scores_npy_not_numbers_named(base, tmp_path, bad, words):
    "scores.npy of strings or NaN: one line naming the file (main: a bare 'could not convert string to float' or 'scores hold 300 non-finite values')."
    a = _unfinished(base, tmp_path/"a")
    np.save(a/"scores.npy", bad)
    before = snapshot(a)
    fails(data_args(base) + ["--out", str(a)], str(a/"scores.npy"), words, "delete it")
    assert snapshot(a) == before


@pytest.mark.parametrize("x,words", [(np.array([["a", "b"]] * 30), "dtype <U1"), (np.zeros((30, 2), object), "dtype object")])
def test_trajectories_not_numbers_named(x, words):
    from mapd.knn import MAPD
    with pytest.raises(TypeError, match=f"probe trajectories must be numbers, but have {words}"): MAPD(k=3).fit(x, np.arange(30) % 3)


def test_hf_on_a_file_that_is_not_parquet(base, tmp_path):
    "--dataset hf on a file that is not Parquet: one line naming it (main: the datasets library's own error line too, and no file named)."
    pytest.importorskip("datasets")
    args = data_args(base)
    fn = args[args.index("--data-root") + 1]
    args[args.index("npz")] = "hf"
    fails(args + ["--out", str(tmp_path/"o")], f"{fn} cannot be read as Parquet files")
    assert not (tmp_path/"o").exists()


def test_second_run_suite_refused_before_training(base, tmp_path, monkeypatch):
    """The second run's probe suite (cover) is made before the first run trains: where its edit pool is too small, the audit stops
    before any epoch (main trained the whole first run, then failed, and failed the same way on every resume). The failure is
    forced by wrapping _make_suite (the data that makes it happen naturally depends on the scores' order)."""
    import mapd.audit as A
    from mapd.audit import AuditConfig, run_audit
    real = A._make_suite
    def make(*a, avoid=None, **kw):
        if avoid is not None: raise ValueError("a probe made by editing examples needs 40 of them, but only 10 are left")
        return real(*a, avoid=avoid, **kw)
    monkeypatch.setattr(A, "_make_suite", make)
    args = data_args(base)
    cfg = AuditConfig(dataset="npz", data_root=args[args.index("--data-root") + 1], epochs=2, batch_size=32, scores="speed", score_epochs=1,
                      n_fit=20, n_heldout=20, k=5, corrupt_std="paper", device="cpu")
    with pytest.raises(ValueError, match="only 10 are left"): run_audit(cfg, tmp_path/"o", quiet=True)
    assert not (tmp_path/"o"/"trajectories").exists() and not (tmp_path/"o"/"history.csv").exists()
