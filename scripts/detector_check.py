"""Every detector beside MAP-D on one short real audit: AUROC per problem kind and cost (seconds, extra passes), measured in the same run.

    python scripts/detector_check.py [--n 5000] [--epochs 8] [--noise 0.2] [--kind symmetric] [--seed 0] [--device cpu]

One audit of an `--n`-image Fashion-MNIST subset with `--noise` of its labels flipped (`--kind`), then what compare.ipynb computes on it:
`trajectory_scores` (MAP-D and the recording's single-axis scores), `mapd.detectors.recording_detectors` (Data-IQ, Jia et al.'s detector),
cleanlab and Datalab (cross-validation), AUM with threshold samples (two runs, as Pleiss et al.) and `mapd.detectors.model_detectors` (VoG, GraNd, Conf-Agree,
prototypicality, ALLSH from one extra training). The problems are those of the comparison (`mapd.baselines.truth_sets`): the flipped
training rows against the clean ones, and each held-out probe category against the clean training rows. About 5 minutes on 2 CPU cores.
"""
import argparse, tempfile, time
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from mapd.audit import AuditConfig, run_audit
from mapd.baselines import (MAPD_VOTE, PROBLEM_PROBES, aum_threshold_scores, cleanlab_scores, cross_val_probs, datalab_outlier_scores,
                            trajectory_scores, truth_sets)
from mapd.data import load_fashion_mnist
from mapd.detectors import RECORDING_DETECTORS, model_detectors, recording_detectors
from mapd.metadata import detection_scores
from mapd.scores import DEFAULT_SCORE_CONFIG


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter(); out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000); ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--noise", type=float, default=0.2); ap.add_argument("--kind", default="symmetric")
    ap.add_argument("--seed", type=int, default=0); ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None, help="the audit's folder; a new temporary one when not given (a finished audit there is loaded, not rerun)")
    a = ap.parse_args(argv)
    t_start = time.perf_counter()
    torch.set_num_threads(2)
    fm = load_fashion_mnist("train")
    train = fm.subset(torch.randperm(len(fm), generator=torch.Generator().manual_seed(a.seed))[:a.n])
    test = load_fashion_mnist("test").subset(torch.arange(1000))
    cfg = AuditConfig(noise=a.noise, noise_kind=a.kind, epochs=a.epochs, n_fit=100, n_heldout=100, k=10, score_runs=2, score_epochs=2,
                      cover="trained", seed=a.seed, device=a.device)
    audit, audit_s = timed(run_audit, cfg, a.out or tempfile.mkdtemp(prefix="detector_check_"), data=(train, test), quiet=True)
    st, tc = audit.store, cfg.training()
    (p, single, _), knn_s = timed(trajectory_scores, st, cfg.categories, audit.config.k, q=cfg.q)
    cost = [dict(method="MAP-D", seconds=knn_s, extra_passes=f"none beyond the audit's probe scores (its k-NN timed; the whole audit took {audit_s:.0f} s)")]
    rec, rec_cost = recording_detectors(st, seed=a.seed)
    el2n = next(m for m in single if m.startswith("EL2N"))
    cost += rec_cost.drop(columns="hcat").replace({"EL2N": el2n}).to_dict("records")
    single.update({m: s for m, s in rec.items() if m in ("Data-IQ", "Detector (LSTM on random-label probes)")})
    labels = st.rows.label.to_numpy()
    pp, cv_s = timed(cross_val_probs, audit.combined, folds=3, config=replace(DEFAULT_SCORE_CONFIG, epochs=3), seed=a.seed, device=a.device, quiet=True)
    (cl, cl_s), (dl, dl_s) = timed(cleanlab_scores, labels, pp), timed(datalab_outlier_scores, labels, pp)
    single["cleanlab"], single["Datalab outlier"] = cl.score.to_numpy(np.float64), dl.score.to_numpy(np.float64)
    cost += [dict(method="cleanlab", seconds=cv_s + cl_s, extra_passes="3-fold cross-validation, 3 epochs a fold (6 epochs of training)"),
             dict(method="Datalab outlier", seconds=dl_s, extra_passes="none beyond cleanlab's cross-validation")]
    th, th_s = timed(aum_threshold_scores, audit.combined, model=cfg.model, config=tc, runs=2, seed=a.seed, device=a.device, quiet=True)
    single["AUM, threshold-sample runs"] = th.score.to_numpy(np.float64)
    cost.append(dict(method="AUM, threshold-sample runs", seconds=th_s, extra_passes=f"2 trainings with K+1 classes, {tc.epochs} epochs each"))
    md, md_cost = model_detectors(cfg.model, audit.combined, tc, mc_passes=10, device=a.device, seed=a.seed, quiet=True)
    single.update(md); cost += md_cost.drop(columns="hcat").to_dict("records")

    records = []
    for prob, (sel, pos) in truth_sets(st.rows).items():
        methods = {"MAP-D": p[f"score_{PROBLEM_PROBES[prob]}"].to_numpy(), MAPD_VOTE: p[f"p_{PROBLEM_PROBES[prob]}"].to_numpy(), **single}
        for name, s in methods.items():
            records.append(dict(method=name, problem=prob, auroc=detection_scores(pos[sel], s[sel])["auroc"]))
    table = pd.DataFrame(records).pivot(index="method", columns="problem", values="auroc").reindex(list(methods))[list(PROBLEM_PROBES)]
    cost = pd.DataFrame(cost).set_index("method")
    hcat = {k: v[1] for k, v in RECORDING_DETECTORS.items()} | {el2n: "EL2N", "cleanlab": "Cleanlab (CL)", "AUM, threshold-sample runs": "AUM",
            "VoG": "VoG", "Conf-Agree (MC dropout)": "Conf-Agree", "prototypicality": "Prototypicality", "ALLSH (augmentation KL)": "ALLSH"}
    hcat |= {m: "GraNd" for m in md if m.startswith("GraNd")}
    out = table.join(cost, how="outer").reindex(list(table.index) + [m for m in cost.index if m not in table.index])
    out.insert(0, "H-CAT", [hcat.get(m, "") for m in out.index])
    pd.set_option("display.width", 250); pd.set_option("display.max_colwidth", 70); pd.set_option("display.max_columns", 20)
    print(f"Fashion-MNIST, {a.n} training images, {a.noise:.0%} {a.kind} noise, {a.epochs} epochs, seed {a.seed}, {a.device}; "
          f"{len(st.rows)} rows recorded, {int((st.rows.label != st.rows.true_label)[st.rows.role == 'train'].sum())} flipped")
    print(f"{sum(1 for m in out.index if not m.startswith(('MAP-D', '(')))} detectors beside MAP-D")
    print(out.round(3).to_string())
    print(f"total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
