"""MAPD's k-NN against scikit-learn's KNeighborsClassifier on the same trajectories, timed side by side.

    .venv/bin/python benchmarks/bench_knn.py [--queries 60000] [--probes 1500] [--epochs 20] [--audit outputs/audit]

With --audit, the trajectories of that audit are used (its fit-split probes and training rows); otherwise
synthetic loss curves of the same shape. Each timing is fit + predict_proba, the best of --repeats.
"""
import argparse, time

import numpy as np
from sklearn.neighbors import KNeighborsClassifier

from mapd.knn import MAPD


def curves(n, epochs, rng):
    rate = rng.choice([1.0, 0.3, 0.1, 0.02, 0.0, 0.5], n)
    return (2.3 * np.exp(-rate[:, None] * np.arange(epochs)) + rng.normal(0, 0.2, (n, epochs))).astype(np.float32), rate.astype(str)


def best(f, repeats):
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter(); out = f(); ts.append(time.perf_counter() - t0)
    return min(ts), out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=60000)
    ap.add_argument("--probes", type=int, default=1500)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--audit", default=None)
    a = ap.parse_args()
    if a.audit:
        from mapd.store import TrajectoryStore
        st = TrajectoryStore(f"{a.audit}/trajectories")
        fr = st.select(role="probe", split="fit")
        G, m, X = st.trajectories("loss", fr), st.rows.category.to_numpy()[fr], st.trajectories("loss", st.select(role="train"))
    else:
        rng = np.random.default_rng(0)
        G, m = curves(a.probes, a.epochs, rng); X, _ = curves(a.queries, a.epochs, rng)
    print(f"{len(X)} queries x {len(G)} probes x {X.shape[1]} epochs, k={a.k}")
    rows = []
    t, p_ours = best(lambda: MAPD(a.k, backend="torch", device=a.device).fit(G, m).predict_proba(X), a.repeats)
    rows.append(("mapd MAPD (torch)", t))
    for algo in ("brute", "auto"):
        t, p_sk = best(lambda: KNeighborsClassifier(a.k, algorithm=algo).fit(G, m).predict_proba(X), a.repeats)
        rows.append((f"sklearn KNeighborsClassifier ({algo})", t))
    base = rows[0][1]
    print(f"{'method':<40}{'best s':>9}{'time / mapd':>14}")
    for name, t in rows: print(f"{name:<40}{t:>9.3f}{t / base:>14.2f}")
    print(f"rows whose probabilities differ from scikit-learn's (ties): {(np.abs(p_ours - p_sk).max(1) > 1e-6).mean():.2%}")


if __name__ == "__main__": main()
