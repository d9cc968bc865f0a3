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
