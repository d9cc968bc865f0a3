"""The flags and counts of finished audits against their injected noise: for each audit folder given, the table recomputed from its
trajectories with the flags and prevalence of this version of mapd (as `mapd audit` computes them), then flag_random_labels'
precision, recall, F1 and achieved FDR against the flipped labels, the best F1 any threshold on score_random_labels reaches
(and the precision there), the AUROC of the score beside the area under the margin (AUM) of the same recording, and the
estimated share of wrong labels with its interval beside the injected share. A clean audit (no noise) gives the share of rows
with any problem flag. Prints one line per audit; --json FILE writes them.

    .venv/bin/python scripts/flag_table.py outputs/audit outputs/audit_noise20 outputs/audit_asym20
"""
import argparse, json, sys
import numpy as np
from sklearn.metrics import roc_auc_score
from mapd.audit import Audit
from mapd.audit_results import _label_issue_share
from mapd.metadata import calibrated_table
from mapd.flags import prevalence

def best_f1(score, truth):
    o = np.argsort(-score, kind="stable"); t = truth[o]; tp = np.cumsum(t); n = np.arange(1, len(t) + 1)
    P, R = tp / n, tp / t.sum(); f = 2 * P * R / np.maximum(P + R, 1e-12); i = int(f.argmax())
    return float(f[i]), float(P[i]), int(i + 1)

def _precision_curve(score, truth):
    o = np.argsort(-score, kind="stable"); return np.cumsum(truth[o]) / np.arange(1, len(truth) + 1)

def best_f1_prefix(score, truth, n):
    "the best F1 among the top-k sets, k <= n (the sets whose precision still meets 1 - q)"
    if n == 0: return 0.0
    o = np.argsort(-score, kind="stable"); tp = np.cumsum(truth[o])[:n]; k = np.arange(1, n + 1)
    return float(np.max(2 * tp / (k + truth.sum())))

def one(path):
    a = Audit.load(path); c = a.config; st = a.store
    mis = None
    if c.exclude_mislabeled is not None and (a.path/"heldout_probs.npy").exists():
        from mapd.scores import likely_mislabeled
        import pandas as pd
        probs = np.load(a.path/"heldout_probs.npy")
        mis = pd.Series(likely_mislabeled(probs, a.train.labels, threshold=c.exclude_mislabeled), index=a.train.index.numpy())
    t, check, th = calibrated_table(st, c.categories, k=c.k, flags="fdr", q=c.q, likely_mislabeled=mis, quantity=c.knn_input)
    probs = np.load(a.path/"heldout_probs.npy") if (a.path/"heldout_probs.npy").exists() else None
    lw = _label_issue_share(probs, a.train.labels, seed=c.seed)
    pv = prevalence(check["predictions"], t, null_shares=c.null_shares(), seed=c.seed, fixed={"random_labels": lw} if lw else None)
    out = dict(audit=str(path), noise=c.noise, noise_kind=c.noise_kind, q=c.q, rows=len(t),
               any_problem_flag_share=float(t.flag_any.mean()), wrong_labels_estimated=float(pv.loc["random_labels", "share"]),
               wrong_labels_interval=[float(pv.loc["random_labels", "low"]), float(pv.loc["random_labels", "high"])],
               best_q_random_labels=float(th.loc["random_labels", "best_q"]))
    if "is_noisy" in t and t.is_noisy.any():
        t = t[t.true_label >= 0]   # stores written before natural probes kept their true label say -1 for them: unknown, left out
        truth, f = t.is_noisy.to_numpy(bool), t.flag_random_labels.to_numpy(bool)
        tp = int((truth & f).sum()); P = tp / max(f.sum(), 1); R = tp / truth.sum()
        bf, bp, bn = best_f1(t.score_random_labels.to_numpy(np.float64), truth)
        aum = -st.trajectories("margin", t.row.to_numpy()).mean(1)
        ok = np.flatnonzero(_precision_curve(t.score_random_labels.to_numpy(np.float64), truth) >= 1 - c.q)
        out.update(best_f1_at_q=best_f1_prefix(t.score_random_labels.to_numpy(np.float64), truth, ok.max() + 1 if len(ok) else 0))
        out.update(noisy_share=float(truth.mean()), flagged=int(f.sum()), precision=P, recall=R, f1=2 * P * R / max(P + R, 1e-12), fdr=1 - P if f.any() else 0.0,
                   best_f1=bf, best_f1_precision=bp, best_f1_rows=bn, auroc=float(roc_auc_score(truth, t.score_random_labels)),
                   auroc_aum=float(roc_auc_score(truth, aum)))
    return out

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0]); ap.add_argument("audits", nargs="+"); ap.add_argument("--json")
    args = ap.parse_args()
    res = [one(p) for p in args.audits]
    for r in res: print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}))
    if args.json: json.dump(res, open(args.json, "w"), indent=1)
