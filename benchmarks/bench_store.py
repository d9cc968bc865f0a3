"""The trajectory store at ImageNet size, simulated: float16 (today's QUANTITIES) and float32 stores side by side.

    .venv/bin/python benchmarks/bench_store.py [--rows 1281167] [--probes-per-category 500] [--epochs 100] [--write-epochs 100]
                                               [--slice 50000] [--chunk 8192] [--repeats 3] [--dir /tmp] [--json FILE] [--knn-check DATASET]

Each store holds `rows` training rows (ImageNet's 1,281,167 by default) and 6 categories x `probes-per-category` probes after them, as an
audit lays them out, with `epochs` epochs reserved. Epochs are written the way the recorder writes them: `write_epoch` with a full float32
column per quantity (the store casts and clips to its dtype, flushes, and moves `completed_epochs` in meta.json); the two stores take
turns epoch by epoch, so drift of a noisy machine hits both alike. The reads are the k-NN's: the probe rows (all epochs), a random slice
of training rows, a pass over all training rows in the k-NN's query chunks, and all training rows at once as `metadata_table` reads them.
Each read is timed cold (the files evicted from the page cache with posix_fadvise first; the VM's host may still cache them) and warm
(right after, from the page cache), per repeat with the stores alternating; medians are printed with float16/float32 ratios.

Memory per read: `heap` is the peak of what Python and NumPy allocated during it (tracemalloc): the arrays the read returns and any
temporaries; `RSS` is the process's peak resident memory during it (VmHWM, reset before each read through /proc/self/clear_refs), which
also counts the store's file pages the read touched through the memory map: page cache, shared and dropped by the kernel under pressure;
it is printed as the growth over the RSS before the read (the interpreter, NumPy and torch, which `import mapd` loads, take about 300 MB).

--knn-check DATASET trains a real audit of DATASET (fashion_mnist: minutes on 2 cores) recorded in float32 and compares the k-NN's
assignments of every training row and held-out probe on those trajectories and on the same numbers rounded to float16.
"""
import argparse, gc, json, os, resource, shutil, statistics, sys, tempfile, time, tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

import mapd.store
from mapd.store import TrajectoryStore

CATEGORIES = ("typical", "atypical", "random_labels", "random_inputs", "corrupted", "ood")
DTYPES = {"float16": {"loss": "float16", "margin": "float16", "correct": "uint8"},   # today's QUANTITIES
          "float32": {"loss": "float32", "margin": "float32", "correct": "uint8"}}   # before
MB = 1e6


def _rows(n_train: int, per_cat: int) -> pd.DataFrame:
    "Training rows, then the probes (per category: half fit, half held out), as `with_probes` lays out an audit."
    n_fit = per_cat // 2
    cat = np.repeat(CATEGORIES, per_cat)
    split = np.tile(np.r_[np.full(n_fit, "fit"), np.full(per_cat - n_fit, "heldout")], len(CATEGORIES))
    n = n_train + len(cat)
    return pd.DataFrame(dict(role=np.r_[np.full(n_train, "train"), np.full(len(cat), "probe")], category=np.r_[np.full(n_train, ""), cat],
                             split=np.r_[np.full(n_train, ""), split], index=np.arange(n), label=np.arange(n) % 1000))


def _columns(n: int, epochs: int, rng) -> list[dict]:
    "A few epochs' worth of recorder columns (float32 loss and margin, uint8 correct) that fall as training goes; cycled when writing."
    out = []
    for e in np.linspace(0, epochs - 1, 4):
        p = rng.beta(1 + e / 4, 2, n).astype(np.float32)            # the label's probability rises over the epochs
        margin = rng.normal(4 * p - 2, 1.5).astype(np.float32)
        out.append(dict(loss=-np.log(np.maximum(p, 1e-12)), margin=margin, correct=(margin > 0).astype(np.uint8)))
    return out


def _evict(path: Path):
    "Drop the store's files from the page cache (they are clean after write_epoch's flush), so that the next read goes to the disk."
    for f in path.glob("*.bin"):
        fd = os.open(f, os.O_RDONLY)
        try: os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally: os.close(fd)


def _rss_kb(field: str) -> int | None:
    try:
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"): return int(line.split()[1])
    except OSError: pass
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f: f.write("5")
        return True
    except OSError: return False


def _measure(fn) -> dict:
    "Seconds, heap peak (tracemalloc) and peak RSS above the RSS before (VmHWM - VmRSS) of `fn()`; its result is dropped after."
    gc.collect()
    rss_reset = _reset_peak_rss()
    before = _rss_kb("VmRSS")
    tracemalloc.start(); tracemalloc.reset_peak()
    t0 = time.perf_counter()
    res = fn()
    s = time.perf_counter() - t0
    heap = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    hwm = _rss_kb("VmHWM") if rss_reset else None
    del res
    return dict(s=s, heap_mb=heap / MB, rss_mb=None if hwm is None else (hwm - before) * 1024 / MB)


def _chunked_pass(st: TrajectoryStore, train: np.ndarray, chunk: int) -> float:
    "Every training row's trajectory, in the k-NN's query chunks: read, use (a sum stands in for the distances), drop."
    total = 0.0
    for i in range(0, len(train), chunk):
        total += float(st.trajectories("loss", train[i:i + chunk]).sum(dtype=np.float64))
    return total


def store_bench(a) -> dict:
    per_cat, R = a.probes_per_category, a.rows
    n_rows = R + per_cat * len(CATEGORIES)
    need = sum(n_rows * a.epochs * np.dtype(dt).itemsize for q in DTYPES.values() for dt in q.values())
    base = Path(a.dir or tempfile.gettempdir())
    free = shutil.disk_usage(base).free
    if need * 1.1 + 200 * MB > free:
        sys.exit(f"the two stores need {need / MB:,.0f} MB but {base} has {free / MB:,.0f} MB free: lower --rows or --epochs, or name another --dir")
    write_epochs = min(a.write_epochs or a.epochs, a.epochs)
    rng = np.random.default_rng(0)
    cols = _columns(n_rows, a.epochs, rng)
    rows = _rows(R, per_cat)
    work = Path(tempfile.mkdtemp(prefix="bench_store_", dir=base))
    res = dict(rows=R, probes=per_cat * len(CATEGORIES), epochs=a.epochs, write_epochs=write_epochs, slice=min(a.slice, R), chunk=a.chunk,
               repeats=a.repeats, dir=str(base), stores={})
    try:
        stores, create_s = {}, {}
        for name, q in DTYPES.items():
            t0 = time.perf_counter()
            stores[name] = TrajectoryStore.create(work/name, rows, a.epochs, quantities=q)
            create_s[name] = time.perf_counter() - t0
        writes = {name: [] for name in DTYPES}
        for e in range(write_epochs):
            order = list(DTYPES) if e % 2 == 0 else list(DTYPES)[::-1]
            for name in order:
                t0 = time.perf_counter()
                stores[name].write_epoch(e, **cols[e % len(cols)])
                writes[name].append(time.perf_counter() - t0)
        for st in stores.values(): st.mark_complete(a.epochs)   # epochs not written read as zeros (holes in the file)
        train = stores["float16"].select(role="train")
        probes = stores["float16"].select(role="probe")
        pick = np.sort(rng.choice(train, size=min(a.slice, len(train)), replace=False))
        del stores
        reads = {"probes": lambda st: st.trajectories("loss", probes),
                 "slice": lambda st: st.trajectories("loss", pick),
                 "chunked": lambda st: _chunked_pass(st, train, a.chunk),
                 "whole": lambda st: st.trajectories("loss", train)}
        meas = {name: {r: {"cold": [], "warm": []} for r in reads} for name in DTYPES}
        for rep in range(a.repeats):
            for r, fn in reads.items():
                for name in (list(DTYPES) if rep % 2 == 0 else list(DTYPES)[::-1]):
                    _evict(work/name)
                    st = TrajectoryStore(work/name)
                    meas[name][r]["cold"].append(_measure(lambda: fn(st)))
                    meas[name][r]["warm"].append(_measure(lambda: fn(st)))
                    st = None
            print(f"repeat {rep + 1}/{a.repeats}: " + ", ".join(f"{r} {meas['float16'][r]['cold'][-1]['s']:.2f}/{meas['float32'][r]['cold'][-1]['s']:.2f}s"
                                                              for r in reads) + " (cold, float16/float32)", flush=True)
        for name, q in DTYPES.items():
            sizes = {f.stem: f.stat().st_size for f in (work/name).glob("*.bin")}
            med = lambda xs, k: statistics.median(x[k] for x in xs)
            res["stores"][name] = dict(
                quantities=q, file_bytes=sizes, bytes_per_example_epoch=sum(sizes.values()) / (n_rows * a.epochs),
                create_s=create_s[name], write_s_per_epoch=statistics.median(writes[name]), write_s_per_epoch_mean=statistics.mean(writes[name]),
                reads={r: {w: dict(s=med(v, "s"), heap_mb=max(x["heap_mb"] for x in v),
                                   rss_mb=None if v[0]["rss_mb"] is None else max(x["rss_mb"] for x in v)) for w, v in d.items()}
                       for r, d in meas[name].items()})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB
    return res


def print_store(res: dict):
    f16, f32 = res["stores"]["float16"], res["stores"]["float32"]
    n_rows = res["rows"] + res["probes"]
    print(f"\nstore of {res['rows']:,} training rows + {res['probes']:,} probes x {res['epochs']} epochs reserved (loss, margin, correct), in {res['dir']}")
    if res["write_epochs"] < res["epochs"]:
        print(f"  {res['write_epochs']} of the {res['epochs']} epochs written and timed; the others were marked complete unwritten (zeros, holes in"
              f" the files: their reads may be cheaper than real data). The file sizes are those of all {res['epochs']} epochs.")
    print(f"{'':56}{'float16':>10}{'float32':>10}{'ratio':>8}")
    def line(label, x, y, fmt="{:.3f}", ratio=True):
        r = f"{x / y:8.3f}" if ratio and y else ""
        print(f"{label:<56}{fmt.format(x):>10}{fmt.format(y):>10}{r}")
    line("bytes per example-epoch (all quantities)", f16["bytes_per_example_epoch"], f32["bytes_per_example_epoch"], "{:.2f}")
    line("loss file, MB", f16["file_bytes"]["loss"] / MB, f32["file_bytes"]["loss"] / MB, "{:,.1f}")
    line("all files, MB", sum(f16["file_bytes"].values()) / MB, sum(f32["file_bytes"].values()) / MB, "{:,.1f}")
    line("create (reserve the files, rows.csv), s", f16["create_s"], f32["create_s"], "{:.2f}")
    line(f"write one epoch, s (median of {res['write_epochs']})", f16["write_s_per_epoch"], f32["write_s_per_epoch"])
    labels = {"probes": f"read the {res['probes']:,} probe rows",
              "slice": f"read {res['slice']:,} random training rows",
              "chunked": f"pass over training rows, {res['chunk']:,} a chunk",
              "whole": "all training rows at once (metadata_table)"}
    for r, label in labels.items():
        for w in ("cold", "warm"):
            line(f"{label}, {w}, s", f16["reads"][r][w]["s"], f32["reads"][r][w]["s"])
    print("\npeak memory of each cold read (max over repeats): heap = arrays allocated (tracemalloc); RSS = growth of the resident memory"
          " over the read, counting the mapped file pages it touched")
    for r, label in labels.items():
        c16, c32 = f16["reads"][r]["cold"], f32["reads"][r]["cold"]
        line(f"{label}, heap MB", c16["heap_mb"], c32["heap_mb"], "{:,.1f}")
        if c16["rss_mb"] is not None: line(f"{label}, RSS growth MB", c16["rss_mb"], c32["rss_mb"], "{:,.1f}")
    print(f"\nprocess peak RSS (ru_maxrss, the whole benchmark, both stores and the generated columns): {res['ru_maxrss_mb']:,.0f} MB")
    e = res["epochs"]
    print(f"losses of {n_rows:,} rows x {e} epochs: {f16['file_bytes']['loss'] / MB:,.0f} MB in float16 (was {f32['file_bytes']['loss'] / MB:,.0f} MB in float32); "
          f"one epoch written in {1000 * f16['write_s_per_epoch']:.0f} ms, all {e} in about {e * f16['write_s_per_epoch']:.1f} s")


def knn_check(dataset: str, epochs: int, k: int, quiet: bool = True) -> dict:
    "A real audit recorded in float32; the k-NN's assignments on its trajectories and on the same numbers rounded to float16."
    from mapd.audit import AuditConfig, run_audit
    from mapd.knn import MAPD
    cfg = AuditConfig(dataset=dataset, epochs=epochs, scores="speed", score_epochs=2, k=k, device="cpu", corrupt_std="paper",
                      **(dict(n_fit=60, n_heldout=60, batch_size=64) if dataset == "digits" else {}))
    out = Path(tempfile.mkdtemp(prefix="bench_store_knn_"))
    try:
        saved = dict(mapd.store.QUANTITIES)
        mapd.store.QUANTITIES.update(DTYPES["float32"])
        try:
            t0 = time.perf_counter(); run_audit(cfg, out/"audit", quiet=quiet); audit_s = time.perf_counter() - t0
        finally: mapd.store.QUANTITIES.update(saved)
        st = TrajectoryStore(out/"audit"/"trajectories")
        fit = st.select(role="probe", split="fit")
        query = np.flatnonzero((st.rows.split != "fit").to_numpy())
        cats = st.rows.category.to_numpy()[fit]
        res = dict(dataset=dataset, epochs=epochs, k=k, n_fit=len(fit), n_query=len(query), audit_s=audit_s, quantities={})
        for q in ("loss", "margin"):
            G32, X32 = st.trajectories(q, fit), st.trajectories(q, query)
            G16, X16 = (mapd.store.as_stored(x, "float16").astype(np.float32) for x in (G32, X32))
            p32 = MAPD(k, device="cpu").fit(G32, cats).predict_proba(X32)
            p16 = MAPD(k, device="cpu").fit(G16, cats).predict_proba(X16)
            differ = p32.argmax(1) != p16.argmax(1)
            moved = np.flatnonzero(np.abs(p16 - p32).max(1) > 0)   # a neighbour changed
            # exact (float64) distances of those rows to every fit probe: a neighbour can change only where the k-th and (k+1)-th probes are
            # closer to equidistant than float16 rounding moved the distances (twice: both may move); float32 arithmetic of the k-NN as slack
            def dist(X, G): return np.concatenate([np.sqrt(((X[i:i + 256].astype(np.float64)[:, None] - G.astype(np.float64)[None]) ** 2).sum(-1))
                                                   for i in range(0, len(X), 256)] or [np.zeros((0, len(G)))])
            d32, d16 = dist(X32[moved], G32), dist(X16[moved], G16)
            srt = np.sort(d32, 1)
            near_tie = srt[:, k] - srt[:, k - 1] <= 2 * np.abs(d16 - d32).max(1) + 1e-4 * srt[:, k - 1]
            res["quantities"][q] = dict(differ=int(differ.sum()), agree=float(1 - differ.mean()), neighbour_changed=len(moved),
                                        neighbour_changed_near_tie=int(near_tie.sum()), max_abs_proba_diff=float(np.abs(p16 - p32).max()),
                                        max_rel_rounding=float(np.max(np.abs(X16 - X32) / np.maximum(np.abs(X32), 2.0 ** -14))))
        return res
    finally: shutil.rmtree(out, ignore_errors=True)


def print_knn(res: dict):
    print(f"\nk-NN on real trajectories, float16 against float32: {res['dataset']}, {res['epochs']} epochs, k={res['k']}, {res['n_fit']} fit probes, "
          f"{res['n_query']:,} rows assigned (training rows and held-out probes); the float32 audit took {res['audit_s']:.0f} s")
    for q, r in res["quantities"].items():
        print(f"  {q}: {r['differ']} rows assigned another category ({100 * r['agree']:.3f}% agree); {r['neighbour_changed']} rows with a changed neighbour, "
              f"{r['neighbour_changed_near_tie']} of them near-ties (k-th and (k+1)-th probe closer to equidistant than float16 moved the distances); "
              f"largest change of a probability {r['max_abs_proba_diff']:.3f}; largest relative rounding {r['max_rel_rounding']:.2e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_281_167, help="training rows (ImageNet-1k's training set by default)")
    ap.add_argument("--probes-per-category", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=100, help="epochs reserved")
    ap.add_argument("--write-epochs", type=int, default=None, help="epochs written and timed (all reserved ones by default)")
    ap.add_argument("--slice", type=int, default=50_000, help="random training rows read")
    ap.add_argument("--chunk", type=int, default=8192, help="rows a chunk in the pass over all rows (MAPD's query chunk is at most 8192)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where the stores go (a temporary folder in it, removed after); the system's temp folder by default")
    ap.add_argument("--knn-check", default=None, metavar="DATASET", help="also compare the k-NN on float16 and float32 trajectories of a real audit of DATASET")
    ap.add_argument("--knn-epochs", type=int, default=20)
    ap.add_argument("--knn-k", type=int, default=20)
    ap.add_argument("--no-store", action="store_true", help="skip the store benchmark (with --knn-check)")
    ap.add_argument("--json", default=None, help="write the numbers to this file too")
    a = ap.parse_args()
    res = {}
    if not a.no_store:
        res["store"] = store_bench(a)
        print_store(res["store"])
    if a.knn_check:
        res["knn"] = knn_check(a.knn_check, a.knn_epochs, a.knn_k)
        print_knn(res["knn"])
    if a.json: Path(a.json).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__": main()
