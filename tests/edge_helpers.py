"Shared by the edge tests: a small finished audit made once, copied per case."
import json, os, shutil, subprocess

import numpy as np

from conftest import mapd_cmd

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
SMALL = ["--model", "mlp", "--epochs", "2", "--batch-size", "32", "--scores", "speed", "--score-epochs", "1", "--n-fit", "20",
         "--n-heldout", "20", "--k", "5", "--corrupt-std", "paper", "--device", "cpu", "--quiet"]


def data_args(d, seed=0):
    fn = d/"data.npz"
    if not fn.exists():
        rng = np.random.default_rng(0)
        np.savez(fn, images=rng.integers(0, 255, (300, 8, 8), dtype=np.uint8), labels=np.arange(300) % 3)
    return ["audit", "--dataset", "npz", "--data-root", str(fn), *SMALL, "--seed", str(seed)]


def run(args, **kw):
    return subprocess.run(mapd_cmd() + args, env=ENV, capture_output=True, text=True, timeout=600, **kw)


def snapshot(d):
    "Every file's bytes; config.json without paths_from_audit (rewritten on each run, as the folder may have moved)."
    snap = {str(p.relative_to(d)): (p.read_bytes() if p.is_file() else None) for p in sorted(d.rglob("*"))}
    try:
        c = json.loads(snap["config.json"]); c.pop("paths_from_audit", None); snap["config.json"] = json.dumps(c, sort_keys=True).encode()
    except (KeyError, ValueError, TypeError, AttributeError): pass
    return snap


def fails(args, *needles, **kw):
    p = run(args, **kw)
    assert p.returncode == 2, (p.returncode, p.stderr[-3000:])
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    for n in needles: assert n in p.stderr, (n, p.stderr)
    return p.stderr


def copy(src, dst):
    shutil.copytree(src, dst); return dst
