"""MAPD's k-NN against scikit-learn's brute-force KNeighborsClassifier on the CPU, timed side by side.

    .venv/bin/python benchmarks/bench_knn.py                        # the audit's size: 60,000 queries x 1,500 probes x 20 epochs
    .venv/bin/python benchmarks/bench_knn.py --size imagenet        # 1,281,167 x 3,000 x 100: both timed on the same 128,000-query slice
    .venv/bin/python benchmarks/bench_knn.py --size imagenet --full # ... and once each over all 1,281,167 queries, with mapd's peak memory
    .venv/bin/python benchmarks/bench_knn.py --size tiny            # smoke test
    .venv/bin/python benchmarks/bench_knn.py --audit outputs/audit  # the trajectories of that audit (fit-split probes, training rows)

Each timing is fit + predict_proba: `MAPD(k, backend="auto", device="cpu")` and scikit-learn's
`KNeighborsClassifier(k, algorithm="brute")` (its default threads), run in turn --repeats times so that a load from
another process falls on both alike; the best and the median are reported, and the ratio scikit-learn / mapd
(above 1: mapd is faster). Where only a slice of the queries is timed (--slice, ImageNet's default), the seconds
for the whole set are scaled per query. Synthetic loss curves (a decay rate per category plus noise) stand in for
an audit's trajectories: only their shape matters for the time. Rows whose probabilities differ from scikit-learn's
in float64 are counted, and those not explained by a tie at the k-th neighbour (exit code 1 if any).
"""
import argparse, json, os, resource, statistics, sys, threading, time

import numpy as np
import torch
from sklearn.neighbors import KNeighborsClassifier

from mapd.knn import MAPD

SIZES = dict(audit=(60_000, 1_500, 20, None), imagenet=(1_281_167, 3_000, 100, 128_000), tiny=(2_000, 300, 20, None))  # queries, probes, epochs, slice
RATES = np.array([1.0, 0.3, 0.1, 0.02, 0.0, 0.5], np.float32)  # decay rate of each category's loss per epoch


def curves(n, epochs, rng, chunk=16_384):
    "(n, epochs) float32 loss curves 2.3 exp(-rate t) + noise(0.2) and their categories, made in chunks (no float64 copy of the whole)."
    cat = rng.integers(0, len(RATES), n)
    out, t = np.empty((n, epochs), np.float32), np.arange(epochs, dtype=np.float32)
    for i in range(0, n, chunk):
        r = RATES[cat[i:i + chunk], None]
        out[i:i + chunk] = 2.3 * np.exp(-r * t) + 0.2 * rng.standard_normal((len(r), epochs), dtype=np.float32)
    return out, RATES[cat].astype(str)


def interleaved(fs: dict, repeats: int):
    "Seconds of each function in `fs` over `repeats` rounds, the functions run in turn in each round; and the last output of each."
    ts, out = {n: [] for n in fs}, {}
    for _ in range(repeats):
        for n, f in fs.items():
            t0 = time.perf_counter(); out[n] = f(); ts[n].append(time.perf_counter() - t0)
    return ts, out


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def rss_mib() -> float:
    "Resident memory now (Linux; the peak where /proc is missing)."
    try:
        with open("/proc/self/statm") as f: return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError: return peak_rss_mib()


def peak_during(f):
    "f()'s seconds and the highest resident memory seen while it ran (sampled every 5 ms, and the process's peak where that rose)."
    seen, done = [rss_mib()], threading.Event()
    def watch():
        while not done.wait(0.005): seen.append(rss_mib())
    w = threading.Thread(target=watch, daemon=True); w.start()
    peak_before = peak_rss_mib()
    t0 = time.perf_counter(); f(); t = time.perf_counter() - t0
    done.set(); w.join()
    return t, max(max(seen), peak_rss_mib() if peak_rss_mib() > peak_before else 0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=list(SIZES), default="audit", help="preset of queries x probes x epochs (and slice)")
    ap.add_argument("--queries", type=int, default=None)
    ap.add_argument("--probes", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--slice", type=int, default=None, help="queries timed with both (default: all, or 128,000 at ImageNet size)")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--full", action="store_true", help="where a slice is timed, also run each once over all the queries")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's, the cores)")
    ap.add_argument("--audit", default=None, help="use the trajectories of this audit folder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write the figures to this JSON file")
    a = ap.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    N, M, E, S = SIZES[a.size]
    N, M, E, S = a.queries or N, a.probes or M, a.epochs or E, a.slice or S
    rng = np.random.default_rng(a.seed)
    if a.audit:
        from mapd.store import TrajectoryStore
        st = TrajectoryStore(f"{a.audit}/trajectories")
        fr = st.select(role="probe", split="fit")
        G, m, X = st.trajectories("loss", fr), st.rows.category.to_numpy()[fr], st.trajectories("loss", st.select(role="train"))
        N, (M, E) = len(X), G.shape
    else:
        G, m = curves(M, E, rng)
        X = curves(N if a.full else min(N, S or N), E, rng)[0]  # only the slice unless the whole set is run too
    S = min(N, S or N)
    Xs = X[:S]
    setup = (f"{N:,} queries x {M:,} probes x {E} epochs, k={a.k}; timed on {S:,} queries" + (" (scaled per query to the whole set)" if S < N else "")
             + f"; {os.cpu_count()} CPU cores, torch {torch.__version__} with {torch.get_num_threads()} threads; best and median of {a.repeats}, interleaved")
    print(setup, flush=True)

    ours = lambda Q: MAPD(a.k, backend="auto", device="cpu").fit(G, m).predict_proba(Q)
    brute = lambda Q: KNeighborsClassifier(a.k, algorithm="brute").fit(G, m).predict_proba(Q)
    backend = MAPD(a.k, backend="auto", device="cpu").fit(G, m).backend_
    ours(Xs[:1000]); brute(Xs[:1000])  # warm-up: threads, allocator
    full = a.full and S < N
    if full:
        before = rss_mib()
        t_full, peak = peak_during(lambda: ours(X))
        t0 = time.perf_counter(); brute(X); t_full_sk = time.perf_counter() - t0
        print(f"whole set, once each: mapd {t_full:.2f} s, scikit-learn {t_full_sk:.2f} s, scikit-learn / mapd {t_full_sk / t_full:.2f}x; "
              f"memory resident: {before:,.0f} MiB before mapd's run ({X.nbytes / 2**20:,.0f} MiB of them the queries), at most {peak:,.0f} MiB during it "
              f"(+{peak - before:,.0f} MiB)", flush=True)
    ts, out = interleaved({f"mapd MAPD (backend='auto' -> {backend})": lambda: ours(Xs), "scikit-learn KNeighborsClassifier (brute)": lambda: brute(Xs)}, a.repeats)
    (n_ours, t_ours), (n_sk, t_sk) = ts.items()
    ratio_best, ratio_median = min(t_sk) / min(t_ours), statistics.median(t_sk) / statistics.median(t_ours)
    print(f"{'method':<48}{'best s':>9}{'median s':>10}{'whole set s':>13}")
    for n, t in ts.items(): print(f"{n:<48}{min(t):>9.3f}{statistics.median(t):>10.3f}{min(t) * N / S:>13.2f}")
    print(f"scikit-learn / mapd (above 1: mapd faster): {ratio_best:.2f}x best, {ratio_median:.2f}x median")

    # equality on the timed queries, against scikit-learn in float64: rows may differ only where the k-th and (k+1)-th neighbours are equally far
    ref = KNeighborsClassifier(a.k, algorithm="brute").fit(G.astype(np.float64), m)
    d, _ = KNeighborsClassifier(a.k + 1, algorithm="brute").fit(G.astype(np.float64), m).kneighbors(Xs.astype(np.float64))
    tie = np.isclose(d[:, a.k - 1], d[:, a.k], rtol=1e-4, atol=1e-6)
    differ = np.abs(out[n_ours] - ref.predict_proba(Xs.astype(np.float64))).max(1) > 1e-6
    not_tie = int((differ & ~tie).sum())
    print(f"rows whose probabilities differ from scikit-learn's (float64): {int(differ.sum())} of {S:,}, {not_tie} of them not at a tie "
          f"({int(tie.sum())} rows have their k-th and (k+1)-th neighbours equally far)")
    res = dict(setup=setup, queries=N, probes=M, epochs=E, k=a.k, slice=S, threads=torch.get_num_threads(), backend=backend,
               seconds={n: t for n, t in ts.items()}, ratio_sklearn_over_mapd=dict(best=ratio_best, median=ratio_median),
               whole_set_seconds={n: min(t) * N / S for n, t in ts.items()}, differ=int(differ.sum()), differ_not_tie=not_tie, ties=int(tie.sum()))

    if full:
        res.update(full=dict(mapd_seconds=t_full, sklearn_seconds=t_full_sk, ratio=t_full_sk / t_full, rss_mib_before=before, rss_mib_peak=peak, queries_mib=X.nbytes / 2**20))
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f: json.dump(res, f, indent=2); f.write("\n")
        print(f"wrote {a.json}")
    return 1 if not_tie else 0


if __name__ == "__main__": sys.exit(main())
