"""Bitwise snapshot of mapd's training paths, to show that a refactor leaves their numbers unchanged.

    python scripts/snapshot_training.py snap before.pkl      # at the old commit
    python scripts/snapshot_training.py snap after.pkl       # at the new one
    python scripts/snapshot_training.py compare before.pkl after.pkl

It trains on scikit-learn's digits (40% flipped labels), single-threaded on the CPU so that runs are bitwise
deterministic: `fit` (evaluation-pass and online recording, augmentation, step schedule, a store), every label-correction
method and every batch-selection method, each on an MLP and a CNN; it keeps histories (without timings), trajectories and
final weights. `compare` reports each snapshot that differs (column order aside) and exits 1 if any does.
"""
import dataclasses, pickle, sys, tempfile

import numpy as np
import pandas as pd
import torch


def snap(path):
    from mapd.correction import CorrectionConfig, train_with_correction, METHODS
    from mapd.data import inject_label_noise, load_digits
    from mapd.models import make_model
    from mapd.prioritized import SelectionConfig, train_selected, irreducible_losses, SELECTION_METHODS
    from mapd.store import TrajectoryStore
    from mapd.train import TrainConfig, fit
    torch.set_num_threads(1)
    out, tr, te = {}, load_digits("train"), load_digits("test")
    noisy = inject_label_noise(tr, 0.4, seed=0)
    params = lambda m: torch.cat([p.detach().flatten() for p in m.state_dict().values() if p.dtype.is_floating_point]).numpy()
    for name, tc in {"eval_aug": TrainConfig(epochs=3, batch_size=64, augment=True, pad=2, keep_probs=(2,)),
                     "online_step": TrainConfig(epochs=3, batch_size=64, record="online", schedule="step", milestones=(2,))}.items():
        for model in ("mlp", "cnn"):
            torch.manual_seed(0)
            r = fit(make_model(model, tr.shape, 10), noisy, tc, test=te, device="cpu", quiet=True)
            out[f"fit/{name}/{model}"] = (r.history.drop(columns="seconds"), r.trajectories("loss"), r.trajectories("margin"), params(r.model))
    with tempfile.TemporaryDirectory() as d:
        tc = TrainConfig(epochs=4, batch_size=64)
        rows = pd.DataFrame(dict(role="train", category="", split="train", index=np.arange(len(noisy)), label=noisy.labels.numpy()))
        st = TrajectoryStore.create(d + "/s", rows, 4, config={"train": dataclasses.asdict(tc)})
        torch.manual_seed(0)
        r = fit(make_model("mlp", tr.shape, 10), noisy, tc, store=st, device="cpu", quiet=True)
        out["fit/store"] = (r.history.drop(columns="seconds"), st.trajectories("loss"), params(r.model))
    tc = TrainConfig(epochs=6, batch_size=64, lr=0.05, weight_decay=1e-4, schedule="step", milestones=(4,), record="none", augment=True, pad=2)
    for m in METHODS:
        for model in ("mlp", "cnn"):
            r = train_with_correction(noisy, te, CorrectionConfig(method=m, pretrain=2, n_probe=60, k=10), tc, model=model, device="cpu", quiet=True)
            out[f"corr/{m}/{model}"] = (r.history.drop(columns="seconds"), params(r.model))
    hold, pool = noisy.subset(np.arange(300)), noisy.subset(np.arange(300, len(noisy)))
    IL = irreducible_losses(hold, pool, epochs=3, device="cpu")
    for m in SELECTION_METHODS:
        for model in ("mlp", "cnn"):
            log = train_selected(pool, te, SelectionConfig(method=m, steps=70, n_candidates=160, n_select=16, eval_every=20, n_probe=60, k=10),
                                 irreducible=IL, model=model, device="cpu", quiet=True)
            out[f"sel/{m}/{model}"] = (log.drop(columns="seconds"),)
    with open(path, "wb") as f: pickle.dump(out, f)
    print(f"{len(out)} snapshots written to {path}")


def compare(path_a, path_b) -> int:
    with open(path_a, "rb") as f: a = pickle.load(f)
    with open(path_b, "rb") as f: b = pickle.load(f)
    bad = 0
    for k in a:
        if k not in b: print("missing", k); bad += 1; continue
        for x, y in zip(a[k], b[k]):
            if isinstance(x, pd.DataFrame):
                same = sorted(x.columns) == sorted(y.columns) and x.shape == y.shape and \
                       all(np.array_equal(x[c].to_numpy(), y[c].to_numpy(), equal_nan=True) for c in x)
            else: same = np.array_equal(x, y, equal_nan=True)
            if not same: print("differs:", k); bad += 1; break
    print(f"{len(a)} snapshots compared, {len(a) - bad} bitwise equal, {bad} differ")
    return int(bad > 0)


if __name__ == "__main__":
    if sys.argv[1:2] == ["snap"] and len(sys.argv) == 3: snap(sys.argv[2])
    elif sys.argv[1:2] == ["compare"] and len(sys.argv) == 4: sys.exit(compare(sys.argv[2], sys.argv[3]))
    else: sys.exit(__doc__)
