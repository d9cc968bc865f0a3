"""The random-label probe and what the k-NN reads, on the planted audits: for each of three seeds, Fashion-MNIST (20,000 rows) with 2% of
each planted kind (as nbs/experiments/planted.ipynb plants them), one audit with `flip_to` (argument 1: uniform, confused or mixed), then the
k-NN read on the loss, the margin, and both side by side (each scaled on the fit probes, as `mapd.metadata.knn_input` does), scored by AUROC per planted kind beside the mean loss
and AUM of the same recording. Prints medians and ranges over the seeds and writes /tmp/flipexp_<flip_to>.csv; about 3 minutes per
flip_to on 2 CPU cores.

    .venv/bin/python scripts/flip_readings.py uniform
"""
import sys, json, numpy as np, pandas as pd, torch
from dataclasses import replace
from pathlib import Path
from mapd.audit import AuditConfig, run_audit
from mapd.data import load_dataset
from mapd.baselines import cross_val_probs, mean_loss_scores, aum_scores
from mapd.plant import plant_problems, PLANTED_CATEGORY
from mapd.probes import choose_corrupt_std
from mapd.scores import DEFAULT_SCORE_CONFIG
from mapd.metadata import detection_scores
from mapd.knn import MAPD
flip_to = sys.argv[1] if len(sys.argv) > 1 else "uniform"
full, test = load_dataset("fashion_mnist", "train"), load_dataset("fashion_mnist", "test")
cv = replace(DEFAULT_SCORE_CONFIG, epochs=4)
recs = []
for s in [0, 1, 2]:
    ds = full.subset(np.sort(np.random.default_rng(s).permutation(len(full))[:20000]))
    probs = cross_val_probs(ds, folds=3, config=cv, seed=s, device="cpu", quiet=True)
    std, _ = choose_corrupt_std(ds, device="cpu", seed=s, quiet=True)
    planted, truth = plant_problems(ds, {kd: 0.02 for kd in PLANTED_CATEGORY}, corrupt_std=std, probs=probs, seed=s)
    cfg = AuditConfig(dataset="fashion_mnist", model="mlp", epochs=20, score_runs=4, score_epochs=4, n_fit=250, n_heldout=250, k=20,
                      corrupt_std=str(std), seed=s, device="cpu", flip_to=flip_to)
    a = run_audit(cfg, f"/tmp/flipexp_{flip_to}/seed{s}", data=(planted, test), quiet=True)
    st, rows = a.store, a.store.rows
    fit = np.flatnonzero(((rows.role == "probe") & (rows.split == "fit")).to_numpy()); tr = np.flatnonzero((rows.role == "train").to_numpy())
    t = a.table.merge(truth[["index", "planted"]], on="index", how="left")
    assert (t["index"].to_numpy() == rows["index"].to_numpy()[tr]).all()
    cats = rows.category.to_numpy()[fit]
    feats = {q: st.trajectories(q) for q in ("loss", "margin")}
    def z(X): return (X - X[fit].mean()) / X[fit].std()
    variants = {"loss": feats["loss"], "margin": feats["margin"], "loss+margin": np.concatenate([z(feats["loss"]), z(feats["margin"])], 1)}
    P = {}
    for name, X in variants.items():
        knn = MAPD(20, device="cpu").fit(X[fit], cats)
        pr = knn.predict_proba(X[tr]); P[name] = pd.DataFrame(np.asarray(pr), columns=list(knn.classes_))
    ml, aum = mean_loss_scores(st).score.to_numpy(np.float64), aum_scores(st).score.to_numpy(np.float64)
    for kd, c in PLANTED_CATEGORY.items():
        sel = t.planted.isin([kd, ""]).to_numpy(); pos = (t.planted == kd).to_numpy()[sel]
        for name, p in P.items(): recs.append(dict(seed=s, kind=kd, method=f"knn {name}: p_{c}", auroc=detection_scores(pos, p[c].to_numpy(np.float64)[sel])["auroc"]))
        recs.append(dict(seed=s, kind=kd, method="table p (audit)", auroc=detection_scores(pos, t[f"p_{c}"].to_numpy(np.float64)[sel])["auroc"]))
        recs.append(dict(seed=s, kind=kd, method="mean loss", auroc=detection_scores(pos, ml[sel])["auroc"]))
        recs.append(dict(seed=s, kind=kd, method="AUM", auroc=detection_scores(pos, aum[sel])["auroc"]))
    print("seed", s, "done", flush=True)
r = pd.DataFrame(recs); r.to_csv(f"/tmp/flipexp_{flip_to}.csv", index=False)
print(r.groupby(["kind", "method"]).auroc.agg(["median", "min", "max"]).round(3).to_string())
