"""How much of MAP-D's flags' false discovery rate on Fashion-MNIST with injected noise is the data's own label errors: for each
noisy audit of a report, flag_random_labels' precision against the flipped labels, and against the flipped labels together with the
examples that confident learning on the CLEAN audit's held-out models calls mislabeled (`mapd.scores.label_issues`: those models
never read a trajectory), and the share of the flags on unflipped rows that lie in the clean audit's top rows by score_random_labels
(as many top rows as the clean audit counts wrong labels). Reads the report's folders (their metadata tables stay on the machine that
ran the report).

    .venv/bin/python scripts/flags_and_own_errors.py outputs
"""
import json, sys
from pathlib import Path
import numpy as np, pandas as pd
from mapd.data import load_fashion_mnist
from mapd.scores import label_issues

out = Path(sys.argv[1] if len(sys.argv) > 1 else "outputs")
y0 = load_fashion_mnist("train").labels.numpy()
own = label_issues(np.load(out/"audit"/"heldout_probs.npy"), y0)   # Fashion-MNIST's index is its position
clean = pd.read_parquet(out/"audit"/"metadata.parquet")[["index", "score_random_labels"]].rename(columns={"score_random_labels": "clean_score"})
print(f"clean audit: confident learning calls {own.mean():.1%} of Fashion-MNIST's labels wrong")
for run in ("audit_noise20", "audit_asym20", "audit_inst20"):
    t = pd.read_parquet(out/run/"metadata.parquet").merge(clean, on="index", how="left")
    f, noisy, o = t.flag_random_labels.to_numpy(bool), t.is_noisy.to_numpy(bool), own[t["index"].to_numpy()]
    top = (t.clean_score.rank(ascending=False, method="first") <= own.mean() * len(t)).to_numpy()
    false = f & ~noisy
    print(json.dumps(dict(run=run, flagged=int(f.sum()), precision_flipped=round(float(noisy[f].mean()), 4), precision_flipped_or_own_errors=round(float((noisy | o)[f].mean()), 4),
                          false_flags=int(false.sum()), false_flags_in_clean_top=round(float(top[false].mean()), 4))))
