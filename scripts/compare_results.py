"""Compare two results.json files (or two folders of per-run JSON files) of the report: every shared number must be equal.

    python scripts/compare_results.py OLD NEW

Keys that hold timings (`seconds`, `train_seconds`, `score_seconds`, `cover_seconds`) are skipped, NaN equals NaN, and keys present in only
one side are listed apart (a regeneration may add results). Exits 1 if a shared value differs.
"""
import json, math, sys
from pathlib import Path

SKIP = {"seconds", "train_seconds", "score_seconds", "cover_seconds"}

def walk(a, b, path, out):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in a.keys() | b.keys():
            if k in SKIP: continue
            if k not in b: out["only_old"].append(f"{path}/{k}")
            elif k not in a: out["only_new"].append(f"{path}/{k}")
            else: walk(a[k], b[k], f"{path}/{k}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)): walk(x, y, f"{path}[{i}]", out)
    else:
        same = a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
        out["equal" if same else "differ"].append(path)

def main(old, new) -> int:
    old, new = Path(old), Path(new)
    pairs = [(old, new)] if old.is_file() else [(old/f.name, f) for f in sorted(new.glob("*.json")) if (old/f.name).exists()]
    out = dict(equal=[], differ=[], only_old=[], only_new=[])
    for a, b in pairs: walk(json.loads(a.read_text()), json.loads(b.read_text()), b.name, out)
    for p in out["differ"]: print("differs:", p)
    print(f"{len(pairs)} file(s): {len(out['equal'])} values equal, {len(out['differ'])} differ; "
          f"{len(out['only_new'])} keys only in the new, {len(out['only_old'])} only in the old")
    if out["only_old"]: print("only in the old:", ", ".join(out["only_old"][:20]))
    return int(bool(out["differ"]))

if __name__ == "__main__":
    if len(sys.argv) != 3: sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
