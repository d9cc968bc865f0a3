"""A user's own folder, as the README's command audits it: N Fashion-MNIST images written as PNGs into DIR/train/<class>/,
a share of them (10% by default) into a wrong class folder, and a 300-image DIR/test/; then
`mapd audit --dataset imagefolder --data-root DIR --image-size 32 --out OUT` with no other flag. Prints the rows the table
holds, how many of the wrong-folder images it ranks in its top 10% by score_random_labels, and flag_random_labels' precision
and recall on them; --json FILE writes them.

    .venv/bin/python scripts/folder_check.py 1500 500 5000
"""
import argparse, json, subprocess, sys, tempfile
from pathlib import Path
import numpy as np
from PIL import Image

def write_folder(root: Path, n: int, wrong: float = 0.1, n_test: int = 300, seed: int = 0) -> set:
    "Write the folder; return the training files (relative to root) put in a wrong class folder."
    from mapd.data import load_fashion_mnist
    tr, te = load_fashion_mnist("train"), load_fashion_mnist("test")
    rng = np.random.default_rng(seed)
    pick, names = rng.choice(len(tr), n, replace=False), [c.replace("/", "-") for c in tr.classes]
    moved = set(rng.choice(n, round(wrong * n), replace=False).tolist())
    bad = set()
    for j, i in enumerate(pick):
        y = int(tr.labels[i])
        if j in moved: y = int((y + rng.integers(1, 10)) % 10)
        rel = Path("train")/names[y]/f"{j:05d}.png"
        (root/rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(tr.images[i, 0].numpy(), "L").save(root/rel)
        if j in moved: bad.add(rel.as_posix())
    for j, i in enumerate(rng.choice(len(te), n_test, replace=False)):
        d = root/"test"/names[int(te.labels[i])]; d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(te.images[i, 0].numpy(), "L").save(d/f"{j:05d}.png")
    return bad

def check(n: int, mapd_cmd="mapd", seed: int = 0) -> dict:
    import pandas as pd
    work = Path(tempfile.mkdtemp())
    bad = write_folder(work/"data", n, seed=seed)
    r = subprocess.run([mapd_cmd, "audit", "--dataset", "imagefolder", "--data-root", str(work/"data"), "--image-size", "32", "--out", str(work/"audit")],
                       capture_output=True, text=True)
    if r.returncode: return dict(n=n, error=r.stderr[-2000:])
    t = pd.read_parquet(work/"audit"/"metadata.parquet")
    wrong = t.path.isin(bad).to_numpy()
    top = t.score_random_labels.rank(ascending=False, method="first").to_numpy() <= 0.1 * len(t)
    f = t.flag_random_labels.to_numpy(bool)
    res = json.loads((work/"audit"/"results.json").read_text())
    return dict(n=n, rows=len(t), wrong=int(wrong.sum()), wrong_in_top10=float(wrong[top].sum() / wrong.sum()), flagged=int(f.sum()),
                precision=float(wrong[f].mean()) if f.any() else None, recall=float(f[wrong].mean()),
                wrong_estimated=res["prevalence"]["random_labels"]["share"], sizes=res.get("sizes_chosen"), seconds=res["seconds"],
                out=str(work/"audit"), summary=r.stdout[-3000:])

if __name__ == "__main__":
    ap = argparse.ArgumentParser(); ap.add_argument("sizes", nargs="+", type=int); ap.add_argument("--json"); ap.add_argument("--mapd", default=str(Path(sys.executable).parent/"mapd"))
    args = ap.parse_args()
    out = [check(n, args.mapd) for n in args.sizes]
    for o in out: print(json.dumps({k: v for k, v in o.items() if k != "summary"}))
    if args.json: json.dump(out, open(args.json, "w"), indent=1)
