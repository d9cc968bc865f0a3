"""The command line turns every expected failure into one line that names the file or setting and the fix, with exit code 2;
written files get the usual permissions."""
import os, stat, subprocess

import numpy as np
import pytest

from conftest import mapd_cmd

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
SMALL = ["--model", "mlp", "--epochs", "2", "--batch-size", "32", "--scores", "speed", "--score-epochs", "1", "--n-fit", "20",
         "--n-heldout", "20", "--k", "5", "--corrupt-std", "paper", "--device", "cpu", "--quiet"]


def _fails(args, *needles, cwd=None):
    p = subprocess.run(mapd_cmd() + args, env=ENV, capture_output=True, text=True, timeout=600, cwd=cwd)
    assert p.returncode == 2, (p.returncode, p.stderr[-3000:])
    assert "Traceback" not in p.stderr, p.stderr
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 or lines[0].startswith("usage:"), f"more than one line:\n{p.stderr}"
    for n in needles: assert n in p.stderr, (n, p.stderr)
    return p.stderr


def _npz(fn, n=300, **extra):
    rng = np.random.default_rng(0)
    np.savez(fn, images=rng.integers(0, 255, (n, 8, 8), dtype=np.uint8), labels=np.arange(n) % 3, **extra)


def test_output_folder_problems(tmp_path):
    fn = tmp_path/"data.npz"; _npz(fn)
    data = ["audit", "--dataset", "npz", "--data-root", str(fn), *SMALL]
    (tmp_path/"afile").write_text("x")
    _fails(data + ["--out", str(tmp_path/"afile")], str(tmp_path/"afile"), "is a file, not a folder")
    _fails(data + ["--out", ""], "output folder is empty")
    if os.path.isdir("/sys/kernel"):   # writes refused even to root
        _fails(data + ["--out", "/sys/kernel/mapd-audit"], "/sys/kernel/mapd-audit", "choose another folder")
    if os.geteuid() != 0:             # permissions bind only other users
        ro = tmp_path/"ro"; ro.mkdir(); ro.chmod(0o555)
        _fails(data + ["--out", str(ro/"audit")], str(ro/"audit"), "permission denied")


def test_data_problems(tmp_path):
    _fails(["audit", "--dataset", "imagefolder", "--data-root", str(tmp_path/"nowhere"), *SMALL, "--out", str(tmp_path/"o1")], str(tmp_path/"nowhere"))
    empty = tmp_path/"empty"; (empty/"train"/"cat").mkdir(parents=True); (empty/"train"/"dog").mkdir()
    _fails(["audit", "--dataset", "imagefolder", "--data-root", str(empty), *SMALL, "--out", str(tmp_path/"o2")], str(empty))
    obj = tmp_path/"obj.npz"
    np.savez(obj, images=np.array([None, 1], dtype=object), labels=np.arange(2))
    _fails(["audit", "--dataset", "npz", "--data-root", str(obj), *SMALL, "--out", str(tmp_path/"o3")], str(obj))
    one = tmp_path/"one.npz"
    np.savez(one, images=np.zeros((300, 8, 8), np.uint8), labels=np.zeros(300, np.int64))
    _fails(["audit", "--dataset", "npz", "--data-root", str(one), *SMALL, "--out", str(tmp_path/"o4")], "at least two")
    none = tmp_path/"none.npz"
    np.savez(none, images=np.zeros((0, 8, 8), np.uint8), labels=np.zeros(0, np.int64))
    _fails(["audit", "--dataset", "npz", "--data-root", str(none), *SMALL, "--out", str(tmp_path/"o5")], "empty")
    for o in ("o1", "o2", "o3", "o4", "o5"): assert not (tmp_path/o).exists()


def test_score_file_problems(tmp_path):
    fn = tmp_path/"data.npz"; _npz(fn)
    data = ["audit", "--dataset", "npz", "--data-root", str(fn), *SMALL, "--out", str(tmp_path/"out")]
    bad = tmp_path/"obj_scores.npz"
    np.savez(bad, scores=np.array([0.5, None], dtype=object))
    _fails(data + ["--scores", str(bad)], str(bad), "without unpickling")
    short = tmp_path/"short.npz"; np.savez(short, scores=np.zeros(3, np.float32))
    _fails(data + ["--scores", str(short)], str(short))
    txt = tmp_path/"scores.txt"; txt.write_text("0.1 0.2")
    _fails(data + ["--scores", str(txt)], str(txt))


def test_diverged_run(tmp_path):
    fn = tmp_path/"data.npz"; _npz(fn)
    _fails(["audit", "--dataset", "npz", "--data-root", str(fn), *SMALL, "--lr", "1e8", "--out", str(tmp_path/"out")], "diverged", "lower the learning rate")


def test_report_problems(tmp_path):
    plan = tmp_path/"plan.yaml"
    plan.write_text("runs:\n  - name: a\n    notebook: !!python/object/apply:os.system ['echo hi']\n")
    _fails(["report", "--plan", str(plan), "--out", str(tmp_path/"rep")], str(plan))
    plan.write_text("runs: [unclosed\n")
    _fails(["report", "--plan", str(plan), "--out", str(tmp_path/"rep")], str(plan))
    _fails(["report", "--plan", str(tmp_path/"missing.yaml"), "--out", str(tmp_path/"rep")], "missing.yaml")


def test_written_files_have_usual_permissions(tmp_path):
    fn = tmp_path/"data.npz"; _npz(fn)
    out = tmp_path/"out"
    old = os.umask(0o022)
    try: p = subprocess.run(mapd_cmd() + ["audit", "--dataset", "npz", "--data-root", str(fn), *SMALL, "--out", str(out)], env=ENV, capture_output=True, text=True, timeout=600)
    finally: os.umask(old)
    assert p.returncode == 0, p.stderr
    for f in ["config.json", "results.json", "metadata.parquet", "scores.npy", "history.csv", "trajectories/meta.json", "trajectories/checkpoint.pt"]:
        mode = stat.S_IMODE((out/f).stat().st_mode)
        assert mode == 0o644, f"{f} has mode {oct(mode)}"
