"""A folder that is not an audit is never cleared, resumed or written into: `mapd audit --out DIR` on a user's own folder that
holds files with an audit's names (config.json, scores.npy, ...) exits 2 with one line that calls it what it is; only a folder
carrying the audit's mark (.mapd-audit, written first) is ever cleared."""
import json, os, subprocess

import numpy as np
import pytest

from conftest import mapd_cmd

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
SMALL = ["--model", "mlp", "--epochs", "1", "--batch-size", "32", "--scores", "speed", "--score-epochs", "1", "--n-fit", "20",
         "--n-heldout", "20", "--k", "5", "--corrupt-std", "paper", "--device", "cpu", "--quiet"]


def _snapshot(d):
    return {str(p.relative_to(d)): (p.read_bytes() if p.is_file() else None) for p in sorted(d.rglob("*"))}


def _data(tmp_path):
    rng = np.random.default_rng(0); fn = tmp_path/"data.npz"
    np.savez(fn, images=rng.integers(0, 255, (300, 8, 8), dtype=np.uint8), labels=np.arange(300) % 3)
    return ["audit", "--dataset", "npz", "--data-root", str(fn), *SMALL]


VARIANTS = {   # a user's folder, as files with an audit's names
    "config_and_scores": {"config.json": json.dumps({"lr": 0.1, "layers": [3, 4]}), "scores.npy": None},
    "config_list": {"config.json": "[1, 2, 3]"},
    "config_damaged": {"config.json": "{not json"},
    "scores_only": {"scores.npy": None},
    "results_only": {"results.json": json.dumps({"acc": 0.9})},
    "history_only": {"history.csv": "epoch,loss\n0,1.0\n"},
    "probes_csv": {"probes.csv": "a,b\n1,2\n", "notes.txt": "mine"},
    "trajectories_dir": {"trajectories/meta.json": json.dumps({"completed_epochs": 0}), "trajectories/x.npy": None},
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_user_folder_refused_untouched(tmp_path, name):
    args = _data(tmp_path)
    proj = tmp_path/"project"; proj.mkdir()
    for fn, text in VARIANTS[name].items():
        (proj/fn).parent.mkdir(parents=True, exist_ok=True)
        if text is None: np.save(proj/fn, np.arange(300, dtype=np.float32) / 300)
        else: (proj/fn).write_text(text)
    before = _snapshot(proj)
    p = subprocess.run(mapd_cmd() + args + ["--out", "."], env=ENV, capture_output=True, text=True, timeout=600, cwd=proj)
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert "not a mapd audit folder" in p.stderr and "another configuration" not in p.stderr, p.stderr
    assert _snapshot(proj) == before   # nothing written, nothing removed


def test_own_audit_still_resumes_and_marked(tmp_path):
    args = _data(tmp_path)
    out = tmp_path/"a"
    p = subprocess.run(mapd_cmd() + args + ["--out", str(out)], env=ENV, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert (out/".mapd-audit").exists()
    p = subprocess.run(mapd_cmd() + args + ["--out", str(out)], env=ENV, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]


def test_unmarked_old_audit_of_other_config_not_cleared(tmp_path):
    "An audit made before the mark (config.json of audit settings, no mark) with other settings is refused, not cleared."
    from mapd.audit import AuditConfig
    from mapd.audit_folder import _claim
    from dataclasses import asdict
    out = tmp_path/"old"; out.mkdir()
    cfg = json.loads(json.dumps(asdict(AuditConfig())))
    (out/"config.json").write_text(json.dumps({**cfg, "epochs": 99})); np.save(out/"scores.npy", np.zeros(3))
    before = _snapshot(out)
    with pytest.raises(FileExistsError, match="does not clear it"): _claim(out, cfg, {}, print)
    assert _snapshot(out) == before


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    d = tmp_path_factory.mktemp("explorer")
    p = subprocess.run(mapd_cmd() + _data(d) + ["--out", str(d/"a")], env=ENV, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    return d/"a"


@pytest.mark.parametrize("fn,text,words", [("config.json", "{oops", "is damaged"), ("config.json", "[1]", "holds a list"), ("results.json", "[1]", "holds a list")])
def test_explorer_names_damaged_file(finished, tmp_path, fn, text, words):
    "The explorer on an audit whose config.json or results.json is damaged or not an object names the file (main: a bare JSON error, or an AttributeError)."
    import shutil
    from mapd.explore import Explorer
    out = tmp_path/"a"; shutil.copytree(finished, out)
    (out/fn).write_text(text)
    with pytest.raises(ValueError, match=words) as e: Explorer(out, device="cpu")
    assert str(out/fn) in str(e.value)
