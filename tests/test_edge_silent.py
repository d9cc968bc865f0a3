"""Nothing silently wrong (issue 32, class 6): a constant score file is refused; `Audit.load` refuses another audit's results.json;
re-running a finished audit leaves it untouched (a user's edit of results.json survives)."""
import json

import numpy as np
import pytest

from edge_helpers import data_args, fails, run, snapshot, copy
from mapd.audit import Audit


@pytest.fixture(scope="module")
def audits(tmp_path_factory):
    d = tmp_path_factory.mktemp("edge_silent")
    for seed in (0, 1):
        p = run(data_args(d, seed) + ["--out", str(d/f"a{seed}")])
        assert p.returncode == 0, p.stderr[-2000:]
    return d


@pytest.mark.parametrize("value", [0.5, 0.0, 1.0])
def test_constant_score_file_refused(tmp_path, value):
    args = data_args(tmp_path)
    fn = tmp_path/"const.npz"; np.savez(fn, scores=np.full(300, value, np.float32), labels=np.arange(300) % 3)
    args[args.index("--scores") + 1] = str(fn)
    fails(args + ["--out", str(tmp_path/"o")], str(fn), "rank no example")
    assert not (tmp_path/"o").exists()   # the score file is checked before the folder is made


def test_other_audits_results_refused(audits, tmp_path):
    a = copy(audits/"a0", tmp_path/"a")
    (a/"results.json").write_bytes((audits/"a1"/"results.json").read_bytes())
    with pytest.raises(ValueError, match="belongs to another audit.*seed"): Audit.load(a)
    Audit.load(audits/"a0")   # its own still opens


def test_finished_audit_left_untouched(audits, tmp_path):
    a = copy(audits/"a0", tmp_path/"a")
    r = json.loads((a/"results.json").read_text()); r["my_note"] = "checked by hand"
    (a/"results.json").write_text(json.dumps(r))
    before = snapshot(a)
    p = run(data_args(audits, 0) + ["--out", str(a)])
    assert p.returncode == 0, p.stderr[-2000:]
    after = snapshot(a)
    assert after["results.json"] == before["results.json"]
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert set(changed) <= {"config.json", "fingerprints.json", ".mapd.lock"}, changed   # rewritten with the same settings at most


@pytest.mark.parametrize("y", [np.repeat("a", 30), np.zeros(30, int)])
def test_knn_of_one_category_refused(y):
    "A k-NN fitted on probes of one category gives every row p = 1 for it: refused (main returned it)."
    from mapd.knn import MAPD
    with pytest.raises(ValueError, match="at least two categories"): MAPD(k=3).fit(np.random.default_rng(0).random((30, 4)), y)
