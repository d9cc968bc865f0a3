"""Bad inputs at the edges users touch (issue 32), tried as a user would, each classified automatically.

    python scripts/edge_campaign.py [--work DIR] [--only SUBSTRING] [--out FILE]

Through `mapd audit` (run in this process by `mapd.cli.main`, as the console script runs it, with tiny settings; a few in a
subprocess too) and through the library (Audit.load, MAPD, load_npz/load_image_folder, from_torch, the Datalab issue
manager, the callbacks' recording, Explorer). Every case is one of:

- CLEAR: exit code 2 (a raised error of an expected type for the library) with a one-line message naming the thing, no
  traceback, nothing written or removed (the files of every folder the case touches are compared before and after);
- OK: a valid input handled correctly (e.g. labels with gaps remapped with a stated warning; a moot setting recorded as not applied);
- SILENT: exit 0 (or a return) with a wrong or unrecorded result, or an error that left files behind;
- LOST: a user's files removed or changed;
- CRASH: a traceback, an unexpected exception type, a hang, or an error that does not name what is wrong.

Prints one line per case and the counts; exits 1 when any case is SILENT, LOST or CRASH."""
import argparse, contextlib, io, json, os, shutil, signal, socket, subprocess, sys, tempfile, time, traceback, warnings, zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from PIL import Image  # noqa: E402

torch.set_num_threads(1)
from mapd import cli  # noqa: E402

SMALL = ["--model", "mlp", "--epochs", "2", "--batch-size", "32", "--scores", "speed", "--score-epochs", "1", "--n-fit", "20",
         "--n-heldout", "20", "--k", "5", "--corrupt-std", "paper", "--device", "cpu", "--quiet"]
BAD = ("SILENT", "LOST", "CRASH")


class Hang(Exception): pass


def _alarm(*_): raise Hang()


def snapshot(*dirs):
    "Every entry under `dirs`: bytes of files, link targets, kinds of other entries; config.json without paths_from_audit, no lock file."
    snap = {}
    for d in dirs:
        d = Path(d)
        if not d.exists() and not d.is_symlink(): snap[str(d)] = "absent"; continue
        if d.is_file(): snap[str(d)] = d.read_bytes(); continue
        for root, dnames, fnames in os.walk(d):
            for n in dnames + fnames:
                p = Path(root)/n
                if n == ".mapd.lock": continue
                if p.is_symlink(): snap[str(p)] = "link:" + os.readlink(p)
                elif p.is_dir(): snap[str(p)] = "dir"
                elif p.is_file():
                    try: b = p.read_bytes()
                    except OSError: b = "unreadable"
                    if n == "config.json":
                        try: c = json.loads(b); c.pop("paths_from_audit", None); b = json.dumps(c, sort_keys=True).encode()
                        except (ValueError, TypeError, AttributeError): pass
                    snap[str(p)] = b
                else: snap[str(p)] = "special"
            dnames[:] = [n for n in dnames if not (Path(root)/n).is_symlink()]
    return snap


def _changes(before, after):
    removed_or_changed = [k for k in before if before[k] != "absent" and after.get(k) != before[k]]
    added = [k for k in after if k not in before or before[k] == "absent" and after[k] != "absent"]
    return removed_or_changed, added


def _one_line(err: str):
    lines = [l for l in err.splitlines() if l.strip() and not l.startswith("  warnings.warn") and "Warning:" not in l]
    if lines and lines[0].startswith("usage:"): lines = [l for l in lines if "error:" in l]   # argparse: usage, then the error
    return lines


class Campaign:
    def __init__(self, w: Path, only=None):
        self.w, self.rows, self.only, self.n = w, [], only, 0

    def record(self, group, name, kind, note):
        self.rows.append((group, name, kind, note))
        print(f"{kind:7s} {group:9s} {name:58s} {note[:170]}", flush=True)

    def wanted(self, name): return self.only is None or self.only in name

    # -- through the command line -------------------------------------------------------------------------------------
    def cli(self, group, name, argv, *, watch=(), names=(), ok=None, timeout=90, subprocess_=False, cwd=None, may_change=()):
        """Run `mapd` with argv. Refusals must be CLEAR; where `ok` (a function of nothing returning '' when right, else why) is
        given, exit 0 may be OK. `watch`: folders/files whose entries must not be removed or changed (nor, on an error, added to)."""
        if not self.wanted(name): return
        self.n += 1
        out = argv[argv.index("--out") + 1] if "--out" in argv else None
        watched = [*watch] + ([out] if out else [])
        before = snapshot(*watched)
        err, rc, crash = "", None, None
        t0 = time.time()
        if subprocess_:
            env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
            try:
                p = subprocess.run([sys.executable, "-c", "import sys; from mapd.cli import main; sys.exit(main())", *argv],
                                   capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
                rc, err = p.returncode, p.stderr
                if "Traceback" in err: crash = err.strip().splitlines()[-1]
            except subprocess.TimeoutExpired: crash = f"hung for {timeout} s"
        else:
            buf, old = io.StringIO(), os.getcwd()
            signal.signal(signal.SIGALRM, _alarm); signal.alarm(timeout)
            try:
                if cwd: os.chdir(cwd)
                with contextlib.redirect_stderr(buf), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                    warnings.simplefilter("always")
                    warnings.showwarning = lambda m, c, f, l, file=None, line=None: print(f"{c.__name__}: {m}", file=sys.stderr)
                    rc = cli.main(argv)
            except SystemExit as e: rc = e.code
            except Hang: crash = f"hung for {timeout} s"
            except BaseException as e: crash = f"{type(e).__name__}: {' '.join(str(e).split())[:150]} at {traceback.extract_tb(e.__traceback__)[-1].name}"
            finally:
                signal.alarm(0); os.chdir(old)
            err = buf.getvalue()
        after = snapshot(*watched)
        lost, added = _changes(before, after)
        msg = _one_line(err)
        first = msg[-1] if msg else ""
        secs = f"[{time.time() - t0:.0f}s] "
        user_lost = [k for k in lost if not (out and k.startswith(str(out)) and before.get(str(out)) == "absent") and Path(k).name not in may_change]
        if user_lost: return self.record(group, name, "LOST", secs + f"changed or removed: {', '.join(Path(k).name for k in user_lost[:4])}; {first}")
        if crash: return self.record(group, name, "CRASH", secs + crash)
        if rc == 0:
            if ok is not None:
                why = ok()
                return self.record(group, name, "OK" if not why else "SILENT", secs + (why or "handled: " + (_warnings(err) or "exit 0")))
            return self.record(group, name, "SILENT", secs + "exit 0 on bad input; " + (_warnings(err) or "no warning"))
        if rc != 2: return self.record(group, name, "CRASH", secs + f"exit code {rc}: {first}")
        if len(msg) != 1: return self.record(group, name, "CRASH", secs + f"{len(msg)} lines on stderr: {' | '.join(msg)[:150]}")
        missing = [n for n in names if n not in first]
        if missing: return self.record(group, name, "CRASH", secs + f"message lacks {missing}: {first}")
        if added: return self.record(group, name, "SILENT", secs + f"refused but wrote {', '.join(Path(k).name for k in added[:4])}: {first}")
        return self.record(group, name, "CLEAR", secs + first.replace("mapd audit: error: ", ""))

    # -- through the library ------------------------------------------------------------------------------------------
    def lib(self, group, name, fn, *, raises=(ValueError, TypeError, FileNotFoundError, FileExistsError, RuntimeError, NotADirectoryError),
            names=(), ok=None, watch=(), timeout=90):
        """Call fn(). Raising one of `raises` with a message holding `names` is CLEAR; returning is OK where ok(result) gives ''
        (else why), SILENT without `ok`."""
        if not self.wanted(name): return
        self.n += 1
        before = snapshot(*watch)
        signal.signal(signal.SIGALRM, _alarm); signal.alarm(timeout)
        res, exc, t0 = None, None, time.time()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try: res = fn()
            except Hang: exc = Hang(f"hung for {timeout} s")
            except BaseException as e: exc = e
            finally: signal.alarm(0)
        lost, added = _changes(before, snapshot(*watch))
        secs = f"[{time.time() - t0:.0f}s] "
        warned = "; ".join(str(c.message)[:120] for c in caught)
        if lost: return self.record(group, name, "LOST", secs + f"changed or removed: {', '.join(Path(k).name for k in lost[:4])}")
        if exc is not None:
            first = " ".join(str(exc).split("\n")[0].split())
            if isinstance(exc, Hang) or not isinstance(exc, raises):
                return self.record(group, name, "CRASH", secs + f"{type(exc).__name__}: {first[:150]} at {traceback.extract_tb(exc.__traceback__)[-1].name if exc.__traceback__ else '?'}")
            missing = [n for n in names if n not in str(exc)]
            if missing: return self.record(group, name, "CRASH", secs + f"message lacks {missing}: {type(exc).__name__}: {first}")
            if added: return self.record(group, name, "SILENT", secs + f"refused but wrote {', '.join(Path(k).name for k in added[:4])}")
            return self.record(group, name, "CLEAR", secs + f"{type(exc).__name__}: {first}")
        if isinstance(ok, str) and ok.startswith("warn:"):   # a valid input handled with a stated warning
            said = ok[5:] in warned
            return self.record(group, name, "OK" if said else "SILENT", secs + (f"warned: {warned}" if said else f"no warning saying {ok[5:]!r}"))
        if ok is not None:
            why = ok(res)
            return self.record(group, name, "OK" if not why else "SILENT", secs + (why or "handled" + (f"; warned: {warned}" if warned else "")))
        return self.record(group, name, "SILENT", secs + "returned on bad input" + (f"; warned: {warned}" if warned else ", no warning"))


def _warnings(err): return " ".join(l.strip() for l in err.splitlines() if "Warning" in l or "warning:" in l)[:150]


# ---------------------------------------------------------------------------------------------------------------------
def npz(path, n=300, labels=None, images=None, **extra):
    rng = np.random.default_rng(0)
    np.savez(path, images=rng.integers(0, 255, (n, 8, 8), dtype=np.uint8) if images is None else images,
             labels=np.arange(n) % 3 if labels is None else labels, **extra)
    return str(path)


def png(path, v=0, size=(8, 8), mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(str(path.name).encode() + str(path.parent.name).encode()))
    a = rng.integers(0, 255, (*size, 3) if mode == "RGB" else size, dtype=np.uint8)
    Image.fromarray(a).save(path)


def folder(root, classes=("a", "b", "c"), n=150, split="train"):
    "An image folder audit-sized (3 x 150 images: room for the tiny settings' probes, their edit pool and the second run's)."
    for k in classes:
        for i in range(n): png(root/split/k/f"{i}.png")
    return root


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default=None); ap.add_argument("--only", default=None); ap.add_argument("--out", default=None)
    args = ap.parse_args()
    w = Path(args.work or tempfile.mkdtemp(prefix="mapd-edges-")).resolve(); w.mkdir(parents=True, exist_ok=True)
    c = Campaign(w, args.only)
    t_start = time.time()

    data = npz(w/"data.npz")
    A = ["audit", "--dataset", "npz", "--data-root", data, *SMALL]
    good = w/"good"
    assert cli.main(A + ["--out", str(good)]) == 0
    def fresh(name):
        d = w/name
        if d.exists(): shutil.rmtree(d)
        return d
    def copy(name): d = fresh(name); shutil.copytree(good, d); return d
    def unfinished(name):
        d = copy(name)
        for f in ("results.json", "metadata.parquet", "history.csv", "report.html"): (d/f).unlink(missing_ok=True)
        return d
    def results(d, **want):
        "'' when d/results.json records every key: value of want (value None: the key is present)."
        try: r = json.loads((Path(d)/"results.json").read_text())
        except (OSError, ValueError) as e: return f"no results.json ({e})"
        bad = [k for k, v in want.items() if (k not in r) if v is None] + [k for k, v in want.items() if v is not None and not v(r)]
        return f"results.json does not record {bad}" if bad else ""
    def not_applied(*fields):
        def check(d):
            try: r = json.loads((Path(d)/"results.json").read_text())
            except (OSError, ValueError) as e: return f"no results.json ({e})"
            na = r.get("not_applied") or {}
            miss = [f for f in fields if f not in na]
            return f"exit 0, results.json records {miss} as applied" if miss else ""
        return check
    O = lambda name: str(fresh(name))   # a new output folder

    # ============ 1. output folders that are not audits =============================================================
    G = "foreign"
    user_files = {
        "heldout_probs.npy only": {"heldout_probs.npy": np.zeros((3, 3))}, "corrupt_std.json only": {"corrupt_std.json": "{\"x\": 1}"},
        "metadata.parquet only": {"metadata.parquet": b"PAR1"}, "probe_predictions.csv only": {"probe_predictions.csv": "a\n1\n"},
        "probe_separability.csv only": {"probe_separability.csv": "a\n1\n"}, "report.html only": {"report.html": "<html>mine</html>"},
        "fingerprints.json only": {"fingerprints.json": "{}"}, "cover/ folder": {"cover/notes.txt": "mine"},
        "config.json audit-like minus one key": {"config.json": json.dumps({"dataset": "npz", "model": "mlp", "epochs": 2, "categories": [], "scores": "speed", "n_fit": 20})},
        "config.json + results.json (a finished project)": {"config.json": "{\"lr\": 1}", "results.json": "{\"acc\": 1}", "metadata.parquet": b"x"},
        "config.json null": {"config.json": "null"}, "config.json string": {"config.json": "\"audit\""},
        "trajectories as a file": {"trajectories": "my notes"}, "scores.npy as a folder": {"scores.npy/x.txt": "x"},
    }
    for name, files in user_files.items():
        d = fresh("user_" + name.split()[0].replace("/", "").replace(".", "_"))
        d.mkdir()
        for fn, v in files.items():
            (d/fn).parent.mkdir(parents=True, exist_ok=True)
            if isinstance(v, np.ndarray): np.save(d/fn, v)
            elif isinstance(v, bytes): (d/fn).write_bytes(v)
            else: (d/fn).write_text(v)
        c.cli(G, f"--out user folder: {name}", A + ["--out", str(d)], names=["not a mapd audit folder"])
    d = fresh("user_link"); d.mkdir(); (d/"config.json").write_text("{\"lr\": 1}"); np.save(d/"scores.npy", np.zeros(3))
    os.symlink(d, w/"user_link_to"); c.cli(G, "--out a symlink to a user folder", A + ["--out", str(w/"user_link_to")], watch=[d], names=["not a mapd audit folder"])
    (w/"user_link_to").unlink()
    d = fresh("user_cwd"); d.mkdir(); (d/"config.json").write_text("{\"lr\": 1}"); (d/"results.json").write_text("{}")
    c.cli(G, "--out . in a project with config.json + results.json", A + ["--out", "."], cwd=d, watch=[d], names=["not a mapd audit folder"])
    d = fresh("user_parent_file"); d.mkdir(); (d/"f").write_text("x")
    c.cli(G, "--out below a file", A + ["--out", str(d/"f"/"audit")], watch=[d], names=[str(d/"f")])
    c.cli(G, "--out is the data file", A + ["--out", data], watch=[data], names=[data])
    for name, files in {"user folder": {"config.json": "{\"lr\": 1}", "results.json": "{}", "metadata.parquet": b"x"},
                        "empty folder": {}, "a file": None}.items():
        d = fresh("load_" + name.replace(" ", "_"))
        if files is None: d.write_text("x")
        else:
            d.mkdir()
            for fn, v in files.items(): (d/fn).write_bytes(v) if isinstance(v, bytes) else (d/fn).write_text(v)
        from mapd.audit import Audit
        c.lib(G, f"Audit.load on {name}", lambda d=d: Audit.load(d), watch=[d], names=[str(d)])
        from mapd.explore import Explorer
        c.lib(G, f"Explorer on {name}", lambda d=d: Explorer(d, device="cpu"), watch=[d], names=[str(d)])
    d = copy("explore_no_traj"); shutil.rmtree(d/"trajectories")
    c.lib(G, "Explorer on an audit without trajectories", lambda: Explorer(d, device="cpu"), watch=[d], names=["trajectories"])
    d = copy("explore_damaged_cfg"); (d/"config.json").write_text("{oops")
    c.lib(G, "Explorer on an audit with a damaged config.json", lambda: Explorer(d, device="cpu"), watch=[d], names=[str(d/"config.json")])
    d = copy("explore_damaged_results"); (d/"results.json").write_text("[1]")
    c.lib(G, "Explorer on an audit whose results.json holds a list", lambda: Explorer(d, device="cpu"), watch=[d], names=[str(d/"results.json")])

    # ============ 2. image folders ==================================================================================
    G = "folders"
    from mapd.image_folder import load_image_folder
    base = folder(w/"imgbase")
    def img(name, build):
        r = fresh("img_" + name); shutil.copytree(base, r, symlinks=True); (w/"outside").mkdir(exist_ok=True)
        png(w/"outside"/"o.png"); folder(w/"outside"/"other", n=2)
        build(r); return r
    IA = lambda r: ["audit", "--dataset", "imagefolder", "--data-root", str(r), *SMALL]
    refused = {   # name: (build, words the message must hold)
        "train/ a symlink out of the data root": (lambda r: (shutil.move(r/"train", w/"outside"/"train_moved"), os.symlink(w/"outside"/"train_moved", r/"train")), "outside the data root"),
        "test/ a symlink out of the data root": (lambda r: (folder(w/"outside"/"t", n=3), os.symlink(w/"outside"/"t"/"train", r/"test")), "outside the data root"),
        "class folder a symlink out of the root": (lambda r: os.symlink(w/"outside"/"other"/"train"/"a", r/"train"/"d"), "outside the data root"),
        "class folder link to a sibling class": (lambda r: os.symlink(r/"train"/"a", r/"train"/"z"), "read already"),
        "file symlink out of the root": (lambda r: os.symlink(w/"outside"/"o.png", r/"train"/"a"/"x.png"), "outside the data root"),
        "relative ../ symlink out of the root": (lambda r: os.symlink("../../../outside/o.png", r/"train"/"a"/"y.png"), "outside the data root"),
        "symlink loop to train/": (lambda r: os.symlink(r/"train", r/"train"/"b"/"loop"), "read already"),
        "symlink to itself": (lambda r: os.symlink("self.png", r/"train"/"b"/"self.png"), "self.png"),
        "hard link twice": (lambda r: os.link(r/"train"/"a"/"0.png", r/"train"/"b"/"h.png"), "same file"),
        "fifo named .png": (lambda r: os.mkfifo(r/"train"/"a"/"p.png"), "named pipe"),
        "fifo with no extension": (lambda r: os.mkfifo(r/"train"/"a"/"pipe"), "named pipe"),
        "socket": (lambda r: socket.socket(socket.AF_UNIX).bind(str(r/"train"/"a"/"s.png")), "socket"),
        "/dev/zero linked as an image": (lambda r: os.symlink("/dev/zero", r/"train"/"a"/"z.png"), "z.png"),
        "empty (0-byte) .png": (lambda r: (r/"train"/"a"/"e.png").write_bytes(b""), "e.png"),
        "truncated png": (lambda r: (r/"train"/"a"/"t.png").write_bytes((r/"train"/"a"/"0.png").read_bytes()[:40]), "t.png"),
        "text file named .jpg": (lambda r: (r/"train"/"a"/"n.jpg").write_text("hello"), "n.jpg"),
        "a folder named x.png": (lambda r: png(r/"train"/"a"/"x.png"/"inner_ok.png") or (r/"train"/"a"/"x.png"/"bad.png").write_text("x"), "bad.png"),
        "one class only": (lambda r: [shutil.rmtree(r/"train"/k) for k in ("b", "c")], "at least two"),
        "one image per class": (lambda r: [p.unlink() for p in r.rglob("*.png") if p.name != "0.png"], "training set has 3"),
        "an empty class folder": (lambda r: (r/"train"/"d").mkdir(), "without image files"),
        "a class folder of only .txt": (lambda r: (r/"train"/"d").mkdir() or (r/"train"/"d"/"x.txt").write_text("x"), "without image files"),
        "no train/ folder": (lambda r: shutil.move(r/"train", r/"training"), "no 'train' split"),
        "images straight in train/": (lambda r: [shutil.rmtree(r/"train"/k) for k in ("a", "b", "c")] and png(r/"train"/"x.png"), "no class folders"),
        "classes Cat and cat": (lambda r: shutil.move(r/"train"/"a", r/"train"/"B"), "differ only in case"),
        "test-only class": (lambda r: folder(r, classes=("a", "zz"), n=2, split="test"), "zz"),
        "test images unreadable": (lambda r: (folder(r, n=2, split="test"), (r/"test"/"a"/"0.png").write_bytes(b"xx")), "test/a/0.png"),
    }
    if os.geteuid() != 0: refused["unreadable file (chmod 000)"] = (lambda r: (r/"train"/"a"/"0.png").chmod(0), "0.png")
    for name, (build, words) in refused.items():
        r = img(name.split()[0].replace("/", "") + str(len(name)), build)
        c.cli(G, f"imagefolder: {name}", IA(r) + ["--out", O("o")], watch=[r, w/"outside"], names=[words], timeout=60)
    handled = {   # valid folders: the audit reads what it should
        "data root itself a symlink": (lambda r: None, 450),
        "upper-case and odd image extensions": (lambda r: [shutil.move(p, p.with_suffix(s)) for p, s in zip(sorted((r/"train"/"a").glob("*.png"))[:4], (".PNG", ".Png", ".bmp", ".tif"))], 450),
        "hidden files (.DS_Store) and Thumbs.db": (lambda r: ((r/"train"/"a"/".DS_Store").write_bytes(b"\0"), (r/"train"/".hidden").mkdir()), 450),
        "nested sub-folders in a class": (lambda r: png(r/"train"/"a"/"sub"/"deep"/"n.png"), 451),
        "link inside the root to a pool": (lambda r: (png(r/"pool"/"p.png"), os.symlink(r/"pool", r/"train"/"b"/"pool")), 451),
        "images of mixed sizes and modes": (lambda r: (png(r/"train"/"a"/"big.png", size=(16, 12)), png(r/"train"/"b"/"rgb.png", mode="RGB")), 452),
    }
    for name, (build, n) in handled.items():
        r = img(name.split()[0] + "_ok", build)
        root = r
        if name.startswith("data root"): os.symlink(r, w/"img_rootlink", target_is_directory=True) if not (w/"img_rootlink").exists() else None; root = w/"img_rootlink"
        o = O("ok_" + name.split()[0])
        c.cli(G, f"imagefolder (valid): {name}", IA(root) + ["--out", o], watch=[r],
              ok=lambda o=o, n=n: results(o, n_rows=lambda r: r["n_rows"] == n))
    c.lib(G, "load_image_folder: root is a file", lambda: load_image_folder(data, quiet=True), names=[data])
    c.lib(G, "load_image_folder: size=0", lambda: load_image_folder(base, size=0, quiet=True), names=["size"])
    c.lib(G, "load_image_folder: channels=2", lambda: load_image_folder(base, channels=2, quiet=True), names=["channels"])
    c.lib(G, "load_image_folder: classes= missing a folder", lambda: load_image_folder(base, classes=["a", "b"], quiet=True), names=["'c'"])

    # ============ 3. labels =========================================================================================
    G = "labels"
    rng = np.random.default_rng(1)
    X = rng.integers(0, 255, (300, 8, 8), dtype=np.uint8)
    y = np.arange(300) % 3
    bad_labels = {
        "float labels 0.5": (y + 0.5, "integers"), "float labels integral": (y.astype(float), "integers"), "NaN among labels": (np.where(y == 0, np.nan, y), "integers"),
        "string labels": (np.array(["a", "b", "c"] * 100), "integers"), "bool labels": (y == 0, "integers"), "labels (N, 1)": (y[:, None], "1-d"),
        "one-hot labels (N, 3)": (np.eye(3, dtype=np.int64)[y], "1-d"), "negative labels": (y - 1, "negative"), "label -1 marks unlabelled": (np.where(y == 0, -1, y), "negative"),
        "complex labels": (y.astype(complex), "integers"), "labels one short": (y[:-1], "labels"), "labels 0-d": (np.int64(3), "1-d"),
    }
    for name, (lab, words) in bad_labels.items():
        fn = w/f"lab_{len(c.rows)}.npz"; np.savez(fn, images=X, labels=lab)
        c.cli(G, f"npz: {name}", ["audit", "--dataset", "npz", "--data-root", str(fn), *SMALL, "--out", O("o")], names=[words])
    fn = w/"lab_gap.npz"; np.savez(fn, images=X, labels=np.choose(y, [0, 7, 5000]))
    o = O("ok_gap")
    c.cli(G, "npz (valid): labels 0/7/5000 remapped with a warning", ["audit", "--dataset", "npz", "--data-root", str(fn), *SMALL, "--out", o],
          ok=lambda: results(o, classes=lambda r: r["classes"] == ["0", "7", "5000"]))
    fn = w/"lab_u8.npz"; np.savez(fn, images=X, labels=y.astype(np.uint8))
    o2 = O("ok_u8")
    c.cli(G, "npz (valid): uint8 labels", ["audit", "--dataset", "npz", "--data-root", str(fn), *SMALL, "--out", o2], ok=lambda: results(o2, classes=lambda r: len(r["classes"]) == 3))
    extra = {
        "test labels float": dict(test_images=X[:9], test_labels=np.arange(9) % 3 + 0.0), "test-only label": dict(test_images=X[:9], test_labels=np.arange(9) % 4),
        "test labels without test images": dict(test_labels=np.arange(9) % 3), "test images without test labels": dict(test_images=X[:9]),
        "test images of another size": dict(test_images=np.zeros((9, 9, 9), np.uint8), test_labels=np.arange(9) % 3),
        "class_names too few": dict(class_names=np.array(["a", "b"])), "class_names alike": dict(class_names=np.array(["cat", "Cat", "dog"])),
        "class_names blank": dict(class_names=np.array(["a", " ", "c"])), "class_names numbers": dict(class_names=np.arange(3)),
        "class_names 2-d": dict(class_names=np.array([["a", "b", "c"]])),
        "test labels negative": dict(test_images=X[:9], test_labels=np.arange(9) % 3 - 1),
    }
    words = {"test labels float": "integers", "test-only label": "no training example", "test labels without test images": "test_images",
             "test images without test labels": "test_labels", "test images of another size": "shape", "class_names too few": "class",
             "class_names alike": "class name", "class_names blank": "class name", "class_names numbers": "class_names", "class_names 2-d": "class_names",
             "test labels negative": "negative"}
    for name, kw in extra.items():
        fn = w/f"lab_x{len(c.rows)}.npz"; np.savez(fn, images=X, labels=y, **kw)
        c.cli(G, f"npz: {name}", ["audit", "--dataset", "npz", "--data-root", str(fn), *SMALL, "--out", O("o")], names=[words[name]])
    images_bad = {"images int16 above 255": (X.astype(np.int16) * 2, "uint8"), "images float [0,1]": (X / 255, "uint8"), "images bool": (X > 100, "uint8"),
                  "images 1-d": (X.reshape(300, -1)[:, 0].copy(), "shape"), "images (N, H, W, 3)": (np.repeat(X[..., None], 3, -1), "(N, H, W, C)"),
                  "images 2 channels": (np.stack([X, X], 1), "channels"), "images 5-d": (X[:, None, None], "shape"), "images 0x0": (np.zeros((300, 0, 0), np.uint8), "0")}
    for name, (xx, words_) in images_bad.items():
        fn = w/f"img_x{len(c.rows)}.npz"; np.savez(fn, images=xx, labels=y)
        c.cli(G, f"npz: {name}", ["audit", "--dataset", "npz", "--data-root", str(fn), *SMALL, "--out", O("o")], names=[words_])
    fn = w/"npy_only.npy"; np.save(fn, X)
    c.cli(G, "npz: an .npy file given", ["audit", "--dataset", "npz", "--data-root", str(fn), *SMALL, "--out", O("o")], names=[str(fn)])
    fn = w/"empty.npz"; fn.write_bytes(b"")
    c.cli(G, "npz: a 0-byte file", ["audit", "--dataset", "npz", "--data-root", str(fn), *SMALL, "--out", O("o")], names=[str(fn)])
    fn = w/"trunc.npz"; fn.write_bytes(Path(data).read_bytes()[:1000])
    c.cli(G, "npz: a truncated file", ["audit", "--dataset", "npz", "--data-root", str(fn), *SMALL, "--out", O("o")], names=[str(fn)])
    c.cli(G, "npz: data root is a folder", ["audit", "--dataset", "npz", "--data-root", str(w), *SMALL, "--out", O("o")], names=[str(w)])
    from mapd.data import ImageDataset
    c.lib(G, "ImageDataset: labels beyond the classes", lambda: ImageDataset(np.zeros((4, 1, 2, 2), np.uint8), [0, 1, 2, 5], ["a", "b", "c"]), names=["5"])
    c.lib(G, "ImageDataset: float labels", lambda: ImageDataset(np.zeros((4, 1, 2, 2), np.uint8), np.array([0, 1, 0.5, 1]), ["a", "b"]), names=["label"])

    # ============ 4. settings =======================================================================================
    G = "settings"
    moot = {   # flags that do nothing with the rest of the settings: refused, or recorded in results.json as not applied
        "--exclude-mislabeled 0.3 with --scores speed": (["--exclude-mislabeled", "0.3"], ["exclude_mislabeled"]),
        "--exclude-unrecognised 3 with --scores speed": (["--exclude-unrecognised", "3"], ["exclude_unrecognised"]),
        "--exclude-doubted 0.5 with --scores speed": (["--exclude-doubted", "0.5"], ["exclude_doubted"]),
        "--score-runs 8 with --scores speed": (["--score-runs", "8"], ["score_runs"]),
        "--score-ratios 0.5 with --scores speed": (["--score-ratios", "0.5"], ["score_ratios"]),
        "--score-kind accuracy with --scores speed": (["--score-kind", "accuracy"], ["score_kind"]),
        "--noise-kind asymmetric with --noise 0": (["--noise-kind", "asymmetric"], ["noise_kind"]),
        "--alpha 0.2 with --flags fdr": (["--alpha", "0.2"], ["alpha"]),
        "--q 0.3 with --flags rate": (["--flags", "rate", "--q", "0.3"], ["q"]),
        "--ood sketch without the ood category": (["--categories", "typical", "atypical", "random_labels", "--ood", "sketch"], ["ood"]),
        "--flip-to confused without random_labels": (["--categories", "typical", "atypical", "ood", "--flip-to", "confused"], ["flip_to"]),
        "--corrupt-with blur without corrupted": (["--categories", "typical", "atypical", "ood", "--corrupt-with", "gaussian_blur"], ["corrupt_with"]),
        "--corrupt-std 0.5 with --corrupt-with": (["--corrupt-with", "gaussian_blur", "--corrupt-std", "0.5"], ["corrupt_std"]),
        "--typical-pool 0.5 without typical": (["--categories", "random_labels", "atypical", "ood", "--typical-pool", "0.5"], ["typical_pool"]),
        "--edit-pool 0.5 without edited probes": (["--categories", "typical", "atypical", "--edit-pool", "0.5"], ["edit_pool"]),
        "--augment-probes true with --augment false": (["--augment-probes", "true"], ["augment_probes"]),
        "--cover all without edited probes": (["--categories", "typical", "atypical", "--cover", "all"], ["cover"]),
        "--el2n-at 0.5 then --el2n-at none": (["--el2n-at", "none"], []),   # valid: nothing kept
    }
    for name, (flags, fields) in moot.items():
        o = O("moot_" + str(len(c.rows)))
        argv = A[:A.index("--corrupt-std")] + A[A.index("--corrupt-std") + 2:] + (["--corrupt-std", "paper"] if "--corrupt-std" not in flags and "--corrupt-with" not in flags else [])
        c.cli(G, name, argv + flags + ["--out", o], ok=(lambda o=o, f=fields: not_applied(*f)(o)), names=fields)
    c.cli(G, "--flip-to confused with --scores speed", A + ["--flip-to", "confused", "--out", O("o")], names=["flip_to"])
    c.cli(G, "--flip-to mixed with a score file", A + ["--scores", _scorefile(w, 300), "--flip-to", "mixed", "--out", O("o")], names=["flip_to"])
    c.cli(G, "--score-model cnn with a score file", A + ["--scores", _scorefile(w, 300), "--score-model", "cnn", "--out", (o := O("moot_sm"))],
          ok=lambda o=o: not_applied("score_model")(o), names=["score_model"])
    c.cli(G, "--noise-kind asymmetric on npz (no class pairs)", A + ["--noise", "0.2", "--noise-kind", "asymmetric", "--out", (o := O("asym"))],
          ok=lambda o=o: results(o, mislabel_auroc=None), names=["asymmetric"])
    c.cli(G, "--image-size 8 on npz", A + ["--image-size", "8", "--out", O("o")], names=["image_size"])
    c.cli(G, "--channels 1 on npz", A + ["--channels", "1", "--out", O("o")], names=["channels"])
    c.cli(G, "--data-root on digits", ["audit", "--dataset", "digits", "--data-root", data, *SMALL, "--out", O("o")], names=["data_root"])
    c.cli(G, "--image-column without --dataset hf", A + ["--image-column", "img", "--out", O("o")], names=["--image-column"])
    c.cli(G, "--dataset hf without --data-root", ["audit", "--dataset", "hf", *SMALL, "--out", O("o")], names=["--data-root"])
    c.cli(G, "--dataset hf on an npz file", ["audit", "--dataset", "hf", "--data-root", data, *SMALL, "--out", O("o")], names=[data])
    c.cli(G, "--dataset hf on an empty folder", ["audit", "--dataset", "hf", "--data-root", str(fresh("hf_empty")), *SMALL, "--out", O("o")], names=["hf_empty"]) if (w/"hf_empty").mkdir() is None else None
    out_of_range = {"--q 0": ["--q", "0"], "--q 1": ["--q", "1"], "--alpha 1.5": ["--alpha", "1.5"], "--typical-pool 0": ["--typical-pool", "0"],
                    "--atypical-pool 1.5": ["--atypical-pool", "1.5"], "--edit-pool -0.1": ["--edit-pool", "-0.1"], "--exclude-mislabeled 0": ["--exclude-mislabeled", "0"],
                    "--exclude-unrecognised 0.5": ["--exclude-unrecognised", "0.5"], "--exclude-doubted 0": ["--exclude-doubted", "0"],
                    "--score-ratios 1": ["--score-ratios", "1"], "--score-ratios (none)": ["--score-ratios"], "--el2n-at 2": ["--el2n-at", "2"],
                    "--k 25 > --n-fit 20": ["--k", "25"], "--n-fit 200 (data too small)": ["--n-fit", "200"], "--corrupt-std 0": ["--corrupt-std", "0"],
                    "--corrupt-std nan": ["--corrupt-std", "nan"], "--corrupt-std inf": ["--corrupt-std", "inf"], "--corrupt-with bogus": ["--corrupt-with", "bogus"],
                    "--flags both": ["--flags", "both"], "--knn-input logits": ["--knn-input", "logits"], "--cover some": ["--cover", "some"],
                    "--categories typical typical": ["--categories", "typical", "typical"], "--categories ood only": ["--categories", "ood"],
                    "--epochs 1e3": ["--epochs", "1e3"], "--lr 1e400": ["--lr", "1e400"], "--weight-decay nan": ["--weight-decay", "nan"],
                    "--weight-decay inf": ["--weight-decay", "inf"], "--noise nan": ["--noise", "nan"], "--seed 2**70": ["--seed", str(2**70)],
                    "--device cuda:99": ["--device", "cuda:99"], "--device meta": ["--device", "meta"],
                    "--preset nope": ["--preset", "nope"], "--score-epochs none with speed": ["--score-epochs", "-3"]}
    for name, flags in out_of_range.items():
        c.cli(G, name, A + flags + ["--out", O("o")], names=[])
    # a finished audit, aimed at with another setting: refused, the audit untouched
    c.cli(G, "--batch-size 10**9 (one batch an epoch)", A + ["--batch-size", str(10**9), "--out", (o := O("bigbatch"))], ok=lambda o=o: results(o, n_rows=None))
    c.cli(G, "--n-heldout 1 (valid, flags told weak)", A + ["--n-heldout", "1", "--out", (o := O("heldout1"))], ok=lambda o=o: results(o, warnings=lambda r: len(r["warnings"]) > 0))
    for flags in (["--epochs", "3"], ["--seed", "1"], ["--k", "4"]):
        d = copy("finished_other")
        c.cli(G, f"finished audit, then {' '.join(flags)}", A + flags + ["--out", str(d)], names=["another configuration"])

    # ============ 5. ids and rows handed to the integrations ========================================================
    G = "ids"
    from mapd.integrations.callbacks import _Recording, _as_rows
    Rn, K = 40, 3
    Y = torch.arange(Rn) % K
    L = torch.randn(Rn, K)
    def epoch(batches, given=Y, label_key="auto"):
        rec = _Recording(_as_rows(given.numpy() if isinstance(given, torch.Tensor) else given, None), None, config=dict(mode="online"),
                         overwrite=False, max_logit_bytes=2**29, keep_probs=(), label_key=label_key)
        rec.start(1, 0, "cpu")
        for ids, logits, labels in batches: rec.record(ids, logits, labels)
        rec.end_epoch(); return rec.trajectories("loss")
    ids = torch.arange(Rn)
    ok_loss = lambda t: "" if np.isfinite(t).all() else "NaN losses"
    calls = {
        "ids as a numpy array, right": ([(ids.numpy(), L, Y)], ok_loss, None), "ids 2-d (B, 1)": ([(ids[:, None], L, Y)], None, "row id"),
        "ids fewer than logits": ([(ids[:-1], L, Y)], None, "row id"), "ids as strings": ([(np.array([str(i) for i in range(Rn)]), L, Y)], None, "row ids"),
        "logits 1-d": ([(ids, L[:, 0], Y)], None, "logit"), "logits with NaN (a diverged model)": ([(ids, torch.where(ids[:, None] == 3, float("nan"), L), Y)], "warn:NaN loss", None),
        "logits of 2 classes for labels 0..2": ([(ids, L[:, :2], Y)], None, "label"), "batch labels one-hot": ([(ids, L, torch.eye(K)[Y])], ok_loss, None),
        "batch labels (B, 1)": ([(ids, L, Y[:, None])], "warn:no (B,) labels", None),
        "labels given too few": ([(ids, L, Y)], None, "must lie in [0, 30)"), "labels given float 0.5": ([(ids, L, Y)], None, "label"),
        "labels given negative": ([(ids, L, Y)], None, "label"), "every id twice in one batch": ([(torch.cat([ids[:20], ids[:20]]), L, torch.cat([Y[:20], Y[:20]]))], None, "more than once"),
        "half the rows in no batch": ([(ids[:20], L[:20], Y[:20])], lambda t: "" if np.isnan(t[20:]).all() and np.isfinite(t[:20]).all() else "rows not NaN", None),
        "uint8 ids": ([(torch.arange(Rn, dtype=torch.uint8), L, Y)], ok_loss, None),
    }
    givens = {"labels given too few": Y[:30], "labels given float 0.5": Y.float() + 0.5, "labels given negative": Y - 1}
    for name, (batches, ok, words_) in calls.items():
        c.lib(G, f"callback recording: {name}", lambda b=batches, g=givens.get(name, Y): epoch(b, g), ok=ok, names=[words_] if words_ else [],
              raises=(ValueError, TypeError))
    c.lib(G, "callback recording: label_key names a missing key", lambda: _batch_labels_check(), names=["label_key"], raises=(ValueError,))
    # the Lightning callback in a real (tiny) Trainer: 160 rows of blobs, 1 epoch
    try:
        import logging
        import lightning.pytorch as pl
        from torch import nn
        from mapd.integrations.lightning import MAPDCallback
        for n in ("lightning", "lightning.pytorch"): logging.getLogger(n).setLevel(logging.ERROR)
        g = torch.Generator().manual_seed(0)
        lx, ly = torch.randn(160, 8, generator=g), torch.arange(160) % 4
        class Rows(torch.utils.data.Dataset):
            def __init__(self, shift=0, key="index"): self.shift, self.key = shift, key
            def __len__(self): return 160
            def __getitem__(self, i): return {"x": lx[i], "y": ly[i], self.key: i + self.shift}
        class Lit(pl.LightningModule):
            def __init__(self): super().__init__(); torch.manual_seed(0); self.net = nn.Linear(8, 4)
            def training_step(self, b, i): z = self.net(b["x"]); return {"loss": nn.functional.cross_entropy(z, b["y"]), "logits": z}
            def configure_optimizers(self): return torch.optim.SGD(self.parameters(), lr=0.1)
        def lit(labels, ds, **kw):
            cb = MAPDCallback(labels, **kw)
            pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                       accelerator="cpu", callbacks=[cb]).fit(Lit(), torch.utils.data.DataLoader(ds, batch_size=32, shuffle=True))
            return cb.trajectories("loss")
        permuted = ly[torch.randperm(160, generator=g)]
        lits = {
            "row ids shifted by one": (lambda: lit(ly, Rows(1)), None, "must lie in [0, 160)"),
            "labels given in another order": (lambda: lit(permuted, Rows()), None, "labels differ"),
            "batches without the index key": (lambda: lit(ly, Rows(key="idx")), None, "index_key"),
            "labels given for fewer rows": (lambda: lit(ly[:100], Rows()), None, "must lie in [0, 100)"),
            "right ids and labels (valid)": (lambda: lit(ly, Rows()), lambda t: "" if t.shape == (160, 1) and np.isfinite(t).all() else f"trajectories {t.shape}, NaN {np.isnan(t).sum()}", None),
        }
        for name, (fn, ok, words_) in lits.items():
            c.lib(G, f"Lightning MAPDCallback: {name}", fn, ok=ok, names=[words_] if words_ else [], raises=(ValueError, TypeError))
    except ImportError: print("lightning not installed: its cases left out")
    # Datalab
    try:
        from cleanlab import Datalab
        from mapd.integrations.datalab import find_mapd_issues, register_mapd_issue_types
        register_mapd_issue_types()
        from mapd.audit import Audit
        au = Audit.load(good)
        t = au.table
        lab = lambda order, **kw: Datalab(data={"label": t.label.to_numpy()[order], "id": t["index"].to_numpy()[order]}, label_name="label", verbosity=0)
        n = len(t)
        perm = np.random.default_rng(0).permutation(n)
        dl = {
            "rows= of wrong length": (lambda: lab(np.arange(n)).find_issues(issue_types={"mapd": {"source": au, "rows": t["index"].to_numpy()[:-1]}}), "rows"),
            "rows= repeated ids": (lambda: lab(np.arange(n)).find_issues(issue_types={"mapd": {"source": au, "rows": np.zeros(n, int)}}), "repeat"),
            "rows= negative ids": (lambda: lab(np.arange(n)).find_issues(issue_types={"mapd": {"source": au, "rows": -1 - t["index"].to_numpy()}}), "ids"),
            "rows= floats": (lambda: lab(np.arange(n)).find_issues(issue_types={"mapd": {"source": au, "rows": t["index"].to_numpy() + 0.0}}), "integer"),
            "rows= 2-d": (lambda: lab(np.arange(n)).find_issues(issue_types={"mapd": {"source": au, "rows": t["index"].to_numpy()[:, None]}}), "1-d"),
            "rows= right ids, Datalab in another order": (lambda: lab(perm).find_issues(issue_types={"mapd": {"source": au, "rows": t["index"].to_numpy()[::-1]}}), "labels differ"),
            "rows= names a missing column": (lambda: lab(np.arange(n)).find_issues(issue_types={"mapd": {"source": au, "rows": "nope"}}), "nope"),
            "source= a folder that is no audit": (lambda: lab(np.arange(n)).find_issues(issue_types={"mapd": {"source": str(w/"load_empty_folder")}}), "neither"),
            "categories= unknown": (lambda: lab(np.arange(n)).find_issues(issue_types={"mapd": {"source": au, "categories": ["bogus"]}}), "bogus"),
            "Datalab rows reversed, no rows=": (lambda: lab(np.arange(n)[::-1]).find_issues(issue_types={"mapd": {"source": au}}), "labels differ"),
        }
        for name, (fn, words_) in dl.items(): c.lib(G, f"Datalab: {name}", fn, names=[words_], raises=(ValueError, TypeError, FileNotFoundError))
        def ok_rows(res):
            f = find_mapd_issues(au, rows=t["index"].to_numpy()[perm])
            return "" if (f["index"].to_numpy() == t["index"].to_numpy()[perm]).all() and (f.label.to_numpy() == t.label.to_numpy()[perm]).all() else "rows= not followed"
        c.lib(G, "find_mapd_issues (valid): rows= in another order", lambda: None, ok=ok_rows)
    except ImportError: print("cleanlab not installed: Datalab cases left out")
    # from_torch
    from mapd.sources import from_torch
    class DS(torch.utils.data.Dataset):
        def __init__(self, items): self.items = items
        def __len__(self): return len(self.items)
        def __getitem__(self, i): return self.items[i]
    im = lambda: torch.randint(0, 255, (1, 8, 8), dtype=torch.uint8)
    items = {
        "item without a label": ([(im(),)] * 4, "pair"), "label a float": ([(im(), 0.5)] * 4, "label"), "label a string": ([(im(), "cat")] * 4, "label"),
        "label None": ([(im(), None)] * 4, "label"), "label a bool": ([(im(), True)] * 4, "label"), "label a 2-element tensor": ([(im(), torch.tensor([0, 1]))] * 4, "label"),
        "label negative": ([(im(), -1), (im(), 1)], "labels"), "images of two sizes": ([(im(), 0), (torch.zeros(1, 9, 9, dtype=torch.uint8), 1)], "shape"),
        "image None": ([(None, 0)] * 2, "image"), "image floats above 1": ([(torch.full((1, 8, 8), 3.0), 0)] * 2, "floats"), "image int 300": ([(torch.full((1, 8, 8), 300), 0)] * 2, "0..255"),
        "image NaN": ([(torch.full((1, 8, 8), float("nan")), 0)] * 2, "floats"), "image 4 channels": ([(torch.zeros(4, 8, 8, dtype=torch.uint8), 0)] * 2, "shape"),
        "image a string path": ([("x.png", 0)] * 2, "image"), "empty data set": ([], "empty"), "item a dict": ([{"image": im(), "label": 0}] * 2, "pair"),
        "label beyond classes=": ([(im(), 0), (im(), 5)], "classes"),
    }
    for name, (its, words_) in items.items():
        c.lib(G, f"from_torch: {name}", lambda its=its, name=name: from_torch(DS(its), classes=["a", "b"] if "classes=" in name else None, quiet=True), names=[words_])
    class Broken(DS):
        def __getitem__(self, i):
            if i == 2: raise IndexError("gone")
            return (im(), i % 2)
    c.lib(G, "from_torch: __getitem__ raising IndexError at 2", lambda: from_torch(Broken([0] * 4), quiet=True), names=["2"],
          ok=lambda ds: "" if len(ds) == 4 else f"returned {len(ds)} items of 4")
    c.lib(G, "from_torch: a list, not a Dataset", lambda: from_torch(iter([(im(), 0)]), quiet=True), names=["Dataset"])
    # MAPD / knn
    from mapd.knn import MAPD
    Xp, yp = np.random.default_rng(0).random((30, 4), np.float32), np.repeat(["a", "b", "c"], 10)
    knn = {
        "k=0": (lambda: MAPD(k=0), "k"), "k=True": (lambda: MAPD(k=True), "k"), "k=2.5": (lambda: MAPD(k=2.5), "k"),
        "fit with NaN": (lambda: MAPD(k=3, device="cpu").fit(np.where(Xp > 0.9, np.nan, Xp), yp), "NaN"),
        "fit with inf": (lambda: MAPD(k=3, device="cpu").fit(np.where(Xp > 0.9, np.inf, Xp), yp), "finite"),
        "fit 1-d": (lambda: MAPD(k=3, device="cpu").fit(Xp[:, 0], yp), "2-d"), "fit 3-d": (lambda: MAPD(k=3, device="cpu").fit(Xp[:, :, None], yp), "2-d"),
        "fit empty": (lambda: MAPD(k=3, device="cpu").fit(Xp[:0], yp[:0]), "0"), "fit 0 epochs": (lambda: MAPD(k=3, device="cpu").fit(Xp[:, :0], yp), "epoch"),
        "fit labels too few": (lambda: MAPD(k=3, device="cpu").fit(Xp, yp[:-1]), "length"), "fit one category": (lambda: MAPD(k=3, device="cpu").fit(Xp, np.repeat("a", 30)), "categor"),
        "k larger than a category": (lambda: MAPD(k=11, device="cpu").fit(Xp, yp), "fewer"), "fit object array": (lambda: MAPD(k=3, device="cpu").fit(Xp.astype(object), yp), "dtype"),
        "fit string array": (lambda: MAPD(k=3, device="cpu").fit(Xp.astype(str), yp), "dtype"), "fit categories with NaN": (lambda: MAPD(k=3, device="cpu").fit(Xp, np.where(np.arange(30) == 0, np.nan, np.arange(30) % 3)), "categor"),
        "predict other epoch count": (lambda: MAPD(k=3, device="cpu").fit(Xp, yp).predict(Xp[:, :3]), "epochs"),
        "predict with NaN": (lambda: MAPD(k=3, device="cpu").fit(Xp, yp).predict(np.full((2, 4), np.nan, np.float32)), "NaN"),
        "predict before fit": (lambda: MAPD(k=3, device="cpu").predict(Xp), "fit"), "backend bogus": (lambda: MAPD(k=3, backend="x", device="cpu").fit(Xp, yp), "backend"),
        "kth_distance among unknown": (lambda: MAPD(k=3, device="cpu").fit(Xp, yp).kth_distance(Xp, among="zz"), "zz"),
    }
    for name, (fn, words_) in knn.items(): c.lib(G, f"MAPD: {name}", fn, names=[words_])
    big = (np.random.default_rng(0).random((30, 4)) * 1e-2 + 1e3).astype(np.float32).astype(np.float64)   # representable in float32
    def f64_agree():
        m = MAPD(k=3, device="cpu").fit(big, yp); d, j = m.kneighbors(big[:5])
        D = ((big[:5, None] - big[None]) ** 2).sum(-1); j64 = np.argsort(D, 1, kind="stable")[:, :3]
        return m, j, j64
    c.lib(G, "MAPD (valid): nearly equal large trajectories", f64_agree, ok=lambda r: "" if all(set(a) == set(b) for a, b in zip(r[1], r[2])) else "neighbours differ from float64")

    # ============ 6. damaged audit files: via the CLI (resume) and Audit.load =======================================
    G = "damaged"
    from mapd.audit import Audit
    dmg = {   # file -> (what is written (None: truncated to half), words)
        "results.json damaged (finished)": ("results.json", "{oops", "results.json"), "results.json a list (finished)": ("results.json", "[1, 2]", "results.json"),
        "results.json {} (finished)": ("results.json", "{}", "results.json"), "results.json empty (finished)": ("results.json", "", "results.json"),
        "results.json parameters a list (finished)": ("results.json", "{\"parameters\": [1]}", "results.json"),
        "results.json truncated (finished)": ("results.json", None, "results.json"), "metadata.parquet truncated (finished)": ("metadata.parquet", None, "metadata.parquet"),
        "metadata.parquet empty (finished)": ("metadata.parquet", "", "metadata.parquet"),
        "config.json epochs a string (finished)": ("config.json", "EPOCHS", "epochs"),
        "trajectories/meta.json a list (finished)": ("trajectories/meta.json", "[]", "meta.json"),
        "trajectories/rows.csv damaged (finished)": ("trajectories/rows.csv", "x\n1\n", "rows.csv"),
    }
    for name, (fn, text, words_) in dmg.items():
        for via in ("CLI resume", "Audit.load"):
            d = copy("dmg")
            p = d/fn
            if text is None: p.write_bytes(p.read_bytes()[:len(p.read_bytes()) // 2])
            elif text == "EPOCHS": cfg = json.loads(p.read_text()); cfg["epochs"] = "two"; p.write_text(json.dumps(cfg))
            else: p.write_text(text)
            if via == "CLI resume": c.cli(G, f"{via}: {name}", A + ["--out", str(d)], names=[words_])
            else: c.lib(G, f"{via}: {name}", lambda d=d: Audit.load(d), watch=[d], names=[words_])
    unf = {   # an unfinished audit, resumed
        "scores.npy of strings": ("scores.npy", lambda p: np.save(p, np.array(["a"] * 300)), "scores.npy"),
        "scores.npy with NaN": ("scores.npy", lambda p: np.save(p, np.full(300, np.nan, np.float32)), "scores.npy"),
        "scores.npy 2-d": ("scores.npy", lambda p: np.save(p, np.zeros((300, 2), np.float32)), "scores.npy"),
        "scores.npy empty file": ("scores.npy", lambda p: p.write_bytes(b""), "scores.npy"),
        "fingerprints.json a list": ("fingerprints.json", lambda p: p.write_text("[]"), "fingerprints.json"),
        "trajectories/meta.json empty": ("trajectories/meta.json", lambda p: p.write_text(""), "meta.json"),
        "checkpoint.pt empty": ("trajectories/checkpoint.pt", lambda p: p.write_bytes(b""), "checkpoint.pt"),
        "checkpoint.pt of another file": ("trajectories/checkpoint.pt", lambda p: p.write_bytes(Path(data).read_bytes()), "checkpoint.pt"),
        "probes.csv damaged": ("probes.csv", lambda p: p.write_text("garbage"), None),
        "loss.bin truncated": ("trajectories/loss.bin", lambda p: p.write_bytes(p.read_bytes()[:64]), "loss.bin"),
        "mark .mapd-audit removed, config kept": (".mapd-audit", lambda p: p.unlink(), None),
    }
    for name, (fn, damage, words_) in unf.items():
        d = unfinished("unf")
        meta = json.loads((d/"trajectories"/"meta.json").read_text())
        if fn == "trajectories/checkpoint.pt" and not (d/fn).exists(): print("no checkpoint.pt in an unfinished audit:", sorted(os.listdir(d/"trajectories")))
        damage(d/fn)
        if words_ is None:   # resumes (the file is remade or not needed): OK when it finishes with a table
            c.cli(G, f"CLI resume: {name}", A + ["--out", str(d)], ok=lambda d=d: results(d, n_rows=None), may_change=(fn,))
        else: c.cli(G, f"CLI resume: {name}", A + ["--out", str(d)], names=[words_])
    d = copy("load_ds"); c.lib(G, "Audit.load: data_root= a missing folder, then .train", lambda: Audit.load(d, data_root=w/"nowhere").train, watch=[d], names=["nowhere"])
    d = copy("load_other"); np.savez(w/"other.npz", images=X, labels=y)
    c.lib(G, "Audit.load: data_root= other data, then .train", lambda: Audit.load(d, data_root=w/"other.npz").train, watch=[d], names=["changed"])

    # ============ 7. a few through a real subprocess (what a shell sees) ============================================
    G = "process"
    d = copy("proc_results"); (d/"results.json").write_text("{oops")
    c.cli(G, "mapd audit, damaged results.json of a finished audit", A + ["--out", str(d)], names=["results.json"], subprocess_=True)
    d = copy("proc_results2"); (d/"results.json").write_text("{}")
    c.cli(G, "mapd audit, results.json {} of a finished audit", A + ["--out", str(d)], names=["results.json"], subprocess_=True)
    r = img("proc_fifo", lambda r: os.mkfifo(r/"train"/"b"/"q.png"))
    c.cli(G, "mapd audit, a fifo in the image folder", IA(r) + ["--out", O("o")], names=["named pipe"], subprocess_=True, watch=[r])
    r = img("proc_trainlink", refused["train/ a symlink out of the data root"][0])
    c.cli(G, "mapd audit, train/ a symlink out of the root", IA(r) + ["--out", O("o")], names=["outside the data root"], subprocess_=True, watch=[r])

    counts = {k: sum(row[2] == k for row in c.rows) for k in ("CLEAR", "OK", "SILENT", "LOST", "CRASH")}
    lines = [f"{len(c.rows)} cases in {time.time() - t_start:.0f} s: " + ", ".join(f"{k} {v}" for k, v in counts.items())]
    for k in BAD:
        for g, name, kind, note in c.rows:
            if kind == k: lines.append(f"  {kind:7s} {g:9s} {name}: {note[:200]}")
    print("\n" + "\n".join(lines))
    if args.out:
        Path(args.out).write_text("\n".join(f"{k:7s} {g:9s} {n:58s} {note}" for g, n, k, note in c.rows) + "\n\n" + "\n".join(lines) + "\n")
    return 1 if any(counts[k] for k in BAD) else 0


def _scorefile(w, n):
    fn = w/"scores_file.npz"
    if not fn.exists(): np.savez(fn, scores=np.linspace(0, 1, n, dtype=np.float32), labels=np.arange(n) % 3)
    return str(fn)


def _batch_labels_check():
    from mapd.integrations.callbacks import _batch_labels
    return _batch_labels({"x": 1, "labels": 2}, "target", "index")


if __name__ == "__main__":
    sys.exit(main())
