"""The metadata step (`mapd.metadata.calibrated_table`) with one neighbour search per k-NN, against the searches it made before, timed side by side.

    .venv/bin/python benchmarks/bench_metadata.py               # the audit's size: 60,000 training rows, 6 categories x (250 + 250) probes, 20 epochs
    .venv/bin/python benchmarks/bench_metadata.py --size tiny   # smoke test
    .venv/bin/python benchmarks/bench_metadata.py --before 0    # the search pattern only (no git checkout of the old module)

Until commit cb7de79 the table and its probe check asked the k-NN one question at a time: `predict_proba` for the votes and
`kth_distance` for each set of categories a flag score or `score_unusual` reads, once for the held-out probes, once for the
table's rows, and again (a second k-NN of k + 1 neighbours) for the natural probes scored without themselves. Now
`MAPD.neighbourhoods` finds each row's k nearest probes of every category in one pass over the rows of both, and every vote and
radius follows from them. Two timings, each run in turn --repeats times (a load from another process falls on both alike):

- the searches alone: the old sequence of calls (every one still a public `MAPD` method) against one `neighbourhoods` call;
- the whole step, `calibrated_table(store)`: today's against the module as it was at --before (read with `git show` and
  imported beside today's package; skipped where git or the commit is missing).

Synthetic loss curves (a decay rate per category plus noise) stand in for an audit's trajectories: only their shape
matters for the time. The two sides' votes must agree up to ties and their radii to float32 rounding (exit code 1 if not).
"""
import argparse, importlib.util, json, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mapd.knn import MAPD
from mapd.metadata import calibrated_table, knn_input, _radius_sets, _table_rows, _fitted
from mapd.store import TrajectoryStore

SIZES = dict(audit=(60_000, 250, 20), tiny=(3_000, 60, 8))   # training rows, probes per category and split, epochs
CATEGORIES = {"typical": 1.0, "atypical": 0.3, "random_labels": 0.02, "random_inputs": 0.0, "corrupted": 0.1, "ood": 0.5}   # decay rate per epoch
REPO = Path(__file__).resolve().parents[1]


def synthetic_store(path, n, per, epochs, rng) -> TrajectoryStore:
    "A store shaped like an audit's: `n` training rows, `per` fit and `per` held-out probes of each category (natural ones real examples)."
    cats = list(CATEGORIES)
    probe_cat = np.repeat(cats, 2 * per)
    rows = pd.DataFrame(dict(role=["train"] * n + ["probe"] * len(probe_cat), category=[""] * n + list(probe_cat),
                             split=[""] * n + ["fit", "heldout"] * (len(probe_cat) // 2), label=0))
    natural = np.isin(probe_cat, ["typical", "atypical"])
    rows["index"] = np.r_[np.arange(n), np.where(natural, n + np.arange(len(probe_cat)), -1)]
    st = TrajectoryStore.create(path, rows, epochs)
    rate = np.r_[rng.choice(list(CATEGORIES.values()), n, p=[.8, .1, .04, .02, .02, .02]), [CATEGORIES[c] for c in probe_cat]].astype(np.float32)
    t = np.arange(epochs, dtype=np.float32)
    L = 2.3 * np.exp(-rate[:, None] * t) + 0.2 * rng.standard_normal((len(rows), epochs), dtype=np.float32)
    for e in range(epochs): st.write_epoch(e, loss=L[:, e], margin=-L[:, e], correct=(L[:, e] < 1).astype(np.float32))
    return st


def old_searches(knn: MAPD, X_held, X_rows, X_own, own_pos, sets) -> tuple[np.ndarray, dict]:
    "The calls the table and its probe check made before: votes and one k-th distance per set, per group of rows; a k + 1 k-NN for the left-out rows."
    P, R = [], {s: [] for s in sets}
    for X in (X_held, X_rows):
        P.append(knn.predict_proba(X))
        for s in sets: R[s].append(knn.kth_distance(X, list(s)))
    wider = MAPD(knn.k + 1, backend="torch", device=knn.device).fit(knn._X, knn.classes_[knn._y.numpy()])
    J = wider.kneighbors(X_own)[1]
    own = J == own_pos[:, None]
    drop = np.where(own.any(1), own.argmax(1), knn.k)
    keep = np.ones(J.shape, bool); keep[np.arange(len(J)), drop] = False
    codes = knn._y.numpy()[J[keep].reshape(len(J), knn.k)]
    P.append(np.stack([(codes == i).mean(1) for i in range(len(knn.classes_))], 1).astype(np.float32))
    own_cat = knn.classes_[knn._y.numpy()[own_pos]]
    for s in sets: R[s].append(np.where(np.isin(own_cat, s), wider.kth_distance(X_own, list(s)), knn.kth_distance(X_own, list(s))))
    return np.concatenate(P), {s: np.concatenate(v) for s, v in R.items()}


def module_at(commit: str):
    "mapd.metadata as it was at `commit`, imported as a module of today's package (its other modules today's); None where git cannot show it."
    try: src = subprocess.run(["git", "show", f"{commit}:mapd/metadata.py"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError): return None
    f = Path(tempfile.mkdtemp())/"metadata_before.py"; f.write_text(src)
    spec = importlib.util.spec_from_file_location("mapd.metadata_before", f, submodule_search_locations=None)
    mod = importlib.util.module_from_spec(spec); mod.__package__ = "mapd"; spec.loader.exec_module(mod)
    return mod


def interleaved(fs: dict, repeats: int):
    ts, out = {n: [] for n in fs}, {}
    for _ in range(repeats):
        for n, f in fs.items():
            t0 = time.perf_counter(); out[n] = f(); ts[n].append(time.perf_counter() - t0)
    return ts, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=list(SIZES), default="audit")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--before", default="cb7de79", help="the commit whose mapd/metadata.py is timed as 'before' ('0': none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    n, per, E = SIZES[a.size]
    rng = np.random.default_rng(a.seed)
    with tempfile.TemporaryDirectory() as tmp:
        st = synthetic_store(Path(tmp)/"store", n, per, E, rng)
        setup = (f"{n:,} training rows, {len(CATEGORIES)} categories x ({per} fit + {per} held-out) probes, {E} epochs, k={a.k}; "
                 f"{os.cpu_count()} CPU cores, torch {torch.__version__} with {torch.get_num_threads()} threads; best and median of {a.repeats}, interleaved")
        print(setup, flush=True)
        knn, held = _fitted(st, k=a.k, device="cpu")
        ids, lo = _table_rows(st, knn, "loss", E)
        sets = sorted(_radius_sets(list(knn.classes_)))
        X_held, X_rows = knn_input(st, "loss", held), knn_input(st, "loss", ids[lo < 0])
        X_own, own_pos = knn_input(st, "loss", ids[lo >= 0]), lo[lo >= 0]
        X_all, lo_all = np.concatenate([X_held, X_rows, X_own]), np.r_[np.full(len(X_held) + len(X_rows), -1), own_pos]
        calls = f"{2} predict_proba, 1 kneighbors (k + 1), {4 * len(sets)} kth_distance"
        print(f"searches of one k-NN: before {calls} ({len(sets)} sets of categories); now 1 neighbourhoods", flush=True)
        fs = {"before: one search per question": lambda: old_searches(knn, X_held, X_rows, X_own, own_pos, sets),
              "now: MAPD.neighbourhoods, once": lambda: knn.neighbourhoods(X_all, sets, leave_out=lo_all)}
        ts, out = interleaved(fs, a.repeats)
        (P0, R0), (P1, R1) = out.values()
        votes_differ = int((np.abs(P0 - P1) > 1e-6).any(1).sum())
        radius_err = max(float(np.max(np.abs(R0[s] - R1[s]) / np.maximum(R0[s], 1e-12))) for s in sets)
        res = dict(setup=setup, searches={k: v for k, v in ts.items()}, votes_differ=votes_differ, radius_max_rel_err=radius_err)
        ratio = statistics.median(ts[list(fs)[0]]) / statistics.median(ts[list(fs)[1]])
        print(f"{'searches':<48}{'best s':>9}{'median s':>10}")
        for k, t in ts.items(): print(f"{k:<48}{min(t):>9.3f}{statistics.median(t):>10.3f}")
        print(f"searches, before / now: {ratio:.2f}x (median); rows whose votes differ: {votes_differ} of {len(X_all):,}; "
              f"largest relative radius difference: {radius_err:.1e}", flush=True)
        res["search_ratio_median"] = ratio
        old = module_at(a.before) if a.before != "0" else None
        if old is None: print("the whole step: skipped (no --before module)")
        else:
            steps = {f"calibrated_table as at {a.before}": lambda: old.calibrated_table(st, k=a.k, device="cpu"),
                     "calibrated_table now": lambda: calibrated_table(st, k=a.k, device="cpu")}
            ts2, out2 = interleaved(steps, a.repeats)
            (t0, _, _), (t1, _, _) = out2.values()
            flags = [c for c in t1 if c.startswith("flag_")]
            flags_differ = int((t0[flags].to_numpy() != t1[flags].to_numpy()).any(1).sum())
            step_ratio = statistics.median(ts2[list(steps)[0]]) / statistics.median(ts2[list(steps)[1]])
            for k, t in ts2.items(): print(f"{k:<48}{min(t):>9.3f}{statistics.median(t):>10.3f}")
            print(f"the metadata step, before / now: {step_ratio:.2f}x (median); table rows whose flags differ: {flags_differ} of {len(t1):,}")
            res.update(step={k: v for k, v in ts2.items()}, step_ratio_median=step_ratio, flags_differ=flags_differ)
    ok = radius_err < 1e-4
    if not ok: print(f"FAIL: radii differ by {radius_err:.1e} relative", file=sys.stderr)
    if a.json: Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
