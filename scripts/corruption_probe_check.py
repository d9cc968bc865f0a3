"""How far the corrupted probe reaches past its own kind: Fashion-MNIST (a random subset) with corruptions planted that a
multi-corruption probe does not use, audited twice with everything else the same: once with the default corrupted probe
(Gaussian noise at the std the proxy run picks) and once with a probe drawn from several corruptions of mapd.corruptions
(AuditConfig(corrupt_with=...)). For each planted kind: the AUROC of score_corrupted and of score_unusual at ranking that
kind's rows above the untouched ones (rows of other planted kinds left out). A control kind, corrupted_gaussian_noise, is
planted too: it is in the multi-corruption probe's family and close to the default probe's noise.

    .venv/bin/python scripts/corruption_probe_check.py            # a few minutes on 2 CPU cores
    .venv/bin/python scripts/corruption_probe_check.py --out DIR --json results.json
"""
import argparse, json, tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from mapd.audit import AuditConfig, run_audit
from mapd.data import load_fashion_mnist
from mapd.metadata import detection_scores
from mapd.plant import plant_problems

PROBE = ("gaussian_noise", "contrast", "pixelate")   # what the multi-corruption probe is made of
HELD_OUT = ("corrupted_defocus_blur", "corrupted_jpeg", "corrupted_shifted_noise")   # planted: families the probe does not use
CONTROL = ("corrupted_gaussian_noise",)   # planted: in the probe


def aurocs(table: pd.DataFrame, truth: pd.DataFrame, kinds) -> list[dict]:
    "Per planted kind: AUROC of score_corrupted and score_unusual, that kind's rows against the untouched rows."
    t = table.merge(truth[["index", "planted"]], on="index", how="inner")   # rows of examples the truth covers (training rows and natural probes)
    out = []
    for kd in kinds:
        sel = t.planted.isin([kd, ""]).to_numpy(); pos = (t.planted == kd).to_numpy()[sel]
        out.append(dict(kind=kd, rows=int(pos.sum()), **{f"auroc_{c}": detection_scores(pos, t[f"score_{c}"].to_numpy(np.float64)[sel])["auroc"]
                                                         for c in ("corrupted", "unusual")}))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="folder for the two audits (a temporary one when not given)")
    ap.add_argument("--subset", type=int, default=10_000, help="training images drawn at random from Fashion-MNIST's 60,000")
    ap.add_argument("--fraction", type=float, default=0.02, help="share of the subset given each planted kind")
    ap.add_argument("--severity", type=int, default=3, help="severity (1..5) of the planted corruptions")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the numbers to this file")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="corruption_probe_check_"))
    full, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    ds = full.subset(np.sort(np.random.default_rng(a.seed).permutation(len(full))[:a.subset]))
    kinds = HELD_OUT + CONTROL
    planted, truth = plant_problems(ds, {k: a.fraction for k in kinds}, corrupt_severity=a.severity, seed=a.seed)
    recs, probe_recall = [], {}
    for probe, corrupt_with in (("gaussian (default)", None), ("+".join(PROBE), PROBE)):
        cfg = AuditConfig(model="mlp", corrupt_with=corrupt_with, seed=a.seed, device="cpu")
        audit = run_audit(cfg, out/("multi" if corrupt_with else "default"), data=(planted, test), quiet=a.quiet)
        recs += [dict(probe=probe, **r) for r in aurocs(audit.table, truth, kinds)]
        conf = audit.results["confusion"]
        i = conf["classes"].index("corrupted"); row = np.asarray(conf["matrix"][i], float)
        probe_recall[probe] = float(row[i] / row.sum())   # held-out corrupted probes the k-NN calls corrupted
    res = pd.DataFrame(recs)
    res["held_out"] = res.kind.isin(HELD_OUT).map({True: "not in multi probe", False: "control: in multi probe"})
    pd.set_option("display.width", 160)
    print(f"Fashion-MNIST, {a.subset} training images (seed {a.seed}), {a.fraction:.0%} of each kind planted at severity {a.severity}; "
          f"default audit (MLP, {AuditConfig().epochs} epochs); audits in {out}")
    print(res.pivot(index=["kind", "held_out"], columns="probe", values=["auroc_corrupted", "auroc_unusual"]).round(3).to_string())
    print("held-out corrupted probes recognised as corrupted (k-NN on held-out probes):", {k: round(v, 3) for k, v in probe_recall.items()})
    if a.json: Path(a.json).write_text(json.dumps(dict(rows=recs, probe_recall=probe_recall, args=vars(a)), indent=1))


if __name__ == "__main__":
    main()
