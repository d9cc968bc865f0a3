"""Bad inputs through `mapd audit` and `mapd report`, classified: a clear error (exit 2, one line, no traceback, nothing of an
earlier run changed), silent (exit 0 on bad input), lost (an earlier good run changed) or unclear (a traceback, another exit code).

    .venv/bin/python scripts/fault_campaign.py [--out DIR]

Prints one line per case and the counts; exits 1 when any case is silent, lost or unclear."""
import argparse, hashlib, json, os, shutil, subprocess, sys, tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MAPD = [str(ROOT/".venv"/"bin"/"mapd")] if (ROOT/".venv"/"bin"/"mapd").exists() else ["mapd"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
SMALL = ["--model", "mlp", "--epochs", "2", "--batch-size", "32", "--scores", "speed", "--score-epochs", "1", "--n-fit", "20",
         "--n-heldout", "20", "--k", "5", "--corrupt-std", "paper", "--device", "cpu", "--quiet"]


def digest(d: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in d.rglob("*") if p.is_file() and p.name != ".mapd.lock"):
        h.update(str(f.relative_to(d)).encode()); h.update(f.read_bytes())
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(); ap.add_argument("--out", default=None); args = ap.parse_args()
    w = Path(args.out or tempfile.mkdtemp(prefix="mapd-faults-")); w.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 255, (300, 8, 8), dtype=np.uint8), np.arange(300) % 3
    np.savez(w/"good.npz", images=x, labels=y)
    npz = ["audit", "--dataset", "npz", "--data-root", str(w/"good.npz"), *SMALL]
    good = w/"good_audit"
    subprocess.run(MAPD + npz + ["--out", str(good)], env=ENV, check=True, capture_output=True)
    before = digest(good)

    def npzfile(name, **arrays):
        np.savez(w/name, **arrays); return str(w/name)
    (w/"afile").write_text("x")
    img = w/"imgs"; (img/"train"/"a").mkdir(parents=True, exist_ok=True); (img/"train"/"b").mkdir(exist_ok=True)
    (img/"train"/"a"/"broken.png").write_bytes(b"not a png")
    from PIL import Image
    for i in range(5): Image.fromarray(x[i]).save(img/"train"/"b"/f"{i}.png")
    one = w/"one"; (one/"train"/"a").mkdir(parents=True, exist_ok=True)
    for i in range(5): Image.fromarray(x[i]).save(one/"train"/"a"/f"{i}.png")
    plans = {"tag": "runs:\n  - name: a\n    notebook: !!python/object/apply:os.system ['echo hi']\n", "unclosed": "runs: [a\n",
             "norun": "runs: []\n", "list": "- a\n- b\n", "dots": "runs:\n  - name: ../victim\n    notebook: audit.ipynb\n",
             "slash": "runs:\n  - name: a/b\n    notebook: audit.ipynb\n", "nonb": "runs:\n  - name: a\n    notebook: missing.ipynb\n",
             "dup": "runs:\n  - name: a\n    notebook: audit.ipynb\n  - name: a\n    notebook: audit.ipynb\n",
             "badref": "runs:\n  - name: a\n    notebook: audit.ipynb\n    parameters: {x: '{b}'}\n"}
    (w/"plans").mkdir(exist_ok=True); (w/"plans"/"audit.ipynb").write_text("{}")
    for k, v in plans.items(): (w/"plans"/f"{k}.yaml").write_text(v)

    flags = [["--k", "0"], ["--k", "-1"], ["--k", "1.5"], ["--k", "x"], ["--n-fit", "0"], ["--n-heldout", "0"], ["--epochs", "0"], ["--batch-size", "0"],
             ["--lr", "0"], ["--lr", "-0.1"], ["--lr", "nan"], ["--lr", "inf"], ["--weight-decay", "-1"], ["--augment", "ture"], ["--augment", "2"],
             ["--model", "vgg"], ["--score-model", "x"], ["--ood", "mnist"], ["--categories", "typical", "bogus"], ["--categories", "typical"],
             ["--dataset", "mnist"], ["--scores", str(w/"missing.npz")], ["--score-kind", "loss"], ["--score-ratios", "0"], ["--score-ratios", "1.5"],
             ["--score-runs", "0"], ["--score-epochs", "0"], ["--noise", "1"], ["--noise", "-0.1"], ["--noise-kind", "pair"], ["--record", "none"],
             ["--el2n-at", "0"], ["--el2n-at", "1.5"], ["--typical-pool", "0"], ["--corrupt-std", "-1"], ["--corrupt-std", "big"], ["--alpha", "0"],
             ["--alpha", "1"], ["--seed", "-1"], ["--device", "tpu"], ["--device", "cuda:0"], ["--image-size", "0"], ["--channels", "2"],
             ["--n-fit", "100", "--n-heldout", "100"], ["--lr", "1e9"]]
    cases = [(" ".join(f), npz + f + ["--out", str(good)]) for f in flags]   # every one aimed at the finished audit: it must survive
    cases += [
        ("out is a file", npz + ["--out", str(w/"afile")]), ("out empty", npz + ["--out", ""]),
        ("out not permitted", npz + ["--out", "/sys/kernel/mapd-x"]), ("other config on finished audit", npz + ["--epochs", "3", "--out", str(good)]),
        ("npz missing", ["audit", "--dataset", "npz", "--data-root", str(w/"nope.npz"), *SMALL, "--out", str(w/"o")]),
        ("npz is text", ["audit", "--dataset", "npz", "--data-root", str(w/"afile"), *SMALL, "--out", str(w/"o")]),
        ("npz object images", ["audit", "--dataset", "npz", "--data-root", npzfile("obj.npz", images=np.array([None, 1], dtype=object), labels=np.arange(2)), *SMALL, "--out", str(w/"o")]),
        ("npz float images", ["audit", "--dataset", "npz", "--data-root", npzfile("float.npz", images=x.astype(float), labels=y), *SMALL, "--out", str(w/"o")]),
        ("npz NHWC", ["audit", "--dataset", "npz", "--data-root", npzfile("nhwc.npz", images=np.zeros((300, 8, 8, 3), np.uint8), labels=y), *SMALL, "--out", str(w/"o")]),
        ("npz labels short", ["audit", "--dataset", "npz", "--data-root", npzfile("short.npz", images=x, labels=y[:10]), *SMALL, "--out", str(w/"o")]),
        ("npz negative labels", ["audit", "--dataset", "npz", "--data-root", npzfile("neg.npz", images=x, labels=y - 1), *SMALL, "--out", str(w/"o")]),
        ("npz one class", ["audit", "--dataset", "npz", "--data-root", npzfile("oneclass.npz", images=x, labels=0 * y), *SMALL, "--out", str(w/"o")]),
        ("npz empty", ["audit", "--dataset", "npz", "--data-root", npzfile("empty.npz", images=x[:0], labels=y[:0]), *SMALL, "--out", str(w/"o")]),
        ("npz test other shape", ["audit", "--dataset", "npz", "--data-root", npzfile("mixed.npz", images=x, labels=y, test_images=np.zeros((9, 9, 9), np.uint8), test_labels=np.zeros(9, int)), *SMALL, "--out", str(w/"o")]),
        ("imagefolder missing", ["audit", "--dataset", "imagefolder", "--data-root", str(w/"nope"), *SMALL, "--out", str(w/"o")]),
        ("imagefolder broken image", ["audit", "--dataset", "imagefolder", "--data-root", str(img), *SMALL, "--out", str(w/"o")]),
        ("imagefolder one class", ["audit", "--dataset", "imagefolder", "--data-root", str(one), *SMALL, "--out", str(w/"o")]),
        ("imagefolder is a file", ["audit", "--dataset", "imagefolder", "--data-root", str(w/"afile"), *SMALL, "--out", str(w/"o")]),
        ("score file objects", npz + ["--scores", npzfile("sobj.npz", scores=np.array([0.1, None], dtype=object)), "--out", str(w/"o")]),
        ("score file short", npz + ["--scores", npzfile("sshort.npz", scores=np.zeros(3, np.float32)), "--out", str(w/"o")]),
        ("score file nan", npz + ["--scores", npzfile("snan.npz", scores=np.full(300, np.nan, np.float32)), "--out", str(w/"o")]),
        ("score file text", npz + ["--scores", str(w/"afile"), "--out", str(w/"o")]),
        ("cifar10 no root", ["audit", "--dataset", "cifar10", *SMALL, "--out", str(w/"o")]),
    ]
    cases += [(f"plan {k}", ["report", "--plan", str(w/"plans"/f"{k}.yaml"), "--out", str(w/"rep"), "--no-html", "--quiet"]) for k in plans]
    cases += [("report out empty", ["report", "--out", "", "--render-only"]), ("report out .", ["report", "--out", ".", "--render-only"]),
              ("report plan missing", ["report", "--plan", str(w/"none.yaml"), "--out", str(w/"rep")])]

    counts = dict(clear=0, silent=0, lost=0, unclear=0)
    for name, argv in cases:
        shutil.rmtree(w/"o", ignore_errors=True)
        p = subprocess.run(MAPD + argv, env=ENV, capture_output=True, text=True, timeout=600, cwd=ROOT)
        errs = [l for l in p.stderr.splitlines() if "error" in l]
        if digest(good) != before: kind = "lost"; shutil.rmtree(good); subprocess.run(MAPD + npz + ["--out", str(good)], env=ENV, check=True, capture_output=True)
        elif p.returncode == 0: kind = "silent"
        elif p.returncode == 2 and "Traceback" not in p.stderr and len(errs) == 1: kind = "clear"
        else: kind = "unclear"
        counts[kind] += 1
        print(f"{kind:8s} {name:40s} {(errs[-1] if errs else p.stderr.strip().splitlines()[-1] if p.stderr.strip() else '')[:150]}")
    print(f"\n{len(cases)} bad inputs: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0 if counts["clear"] == len(cases) else 1


if __name__ == "__main__":
    sys.exit(main())
