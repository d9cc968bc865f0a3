"""GPU training throughput with recording: ResNet-18 on Fashion-MNIST through mapd's own `fit`, each recording mode timed side by side.

    python benchmarks/bench_gpu_train.py [--batch-sizes 1024 2048] [--compile] [--epochs 2] [--repeats 3] [--json gpu_train.json]
    python benchmarks/bench_gpu_train.py --device cpu --small      # smoke test at a tiny size (a small CNN, 512 rows)

What is measured is `mapd.train.fit` itself (with its `Recorder`): bfloat16 autocast (`amp="auto"` on CUDA), the
images kept on the device as uint8 and augmented there (random crop after reflection padding, flips), per-example
losses, the fused optimiser on CUDA, and fit's own `channels_last` and `cudnn_benchmark` settings (both on here;
`--no-channels-last`, `--no-cudnn-benchmark` turn them off). torch.compile (`--compile`) is applied here around the
model rather than through fit's `compile=True`, so that one compiled graph per batch size serves every timed run
(dynamic batch size: every batch size, the last partial batch included, shares one graph per train/eval mode).

One model per batch size is built and compiled once; every run reloads its initial weights, so compilation stays
out of the timings, and an untimed run of each mode warms up first. Within each repeat the modes are interleaved
(none, online, eval[, none without compile]) so that drift of a noisy machine hits them alike. Each run's time is
the mean of its epochs' `seconds` from `fit`'s history (each epoch ends in a host-device sync inside `fit`); each
ratio is the median over repeats of time(mode) / time(no recording) of the same repeat. The evaluation pass is
judged against its floor: one bare forward pass over all rows (eval mode, same batch size and autocast, no
recording), timed in the same repeat with torch.cuda.synchronize() around it.

Fashion-MNIST is read where mapd finds it (Debian's package, $MAPD_FASHION_MNIST); elsewhere (`--data auto`) random
uint8 images of its shape stand in, which train at the same speed. Not yet run on a GPU: the defaults are expected
to take 3 to 4 minutes on an H100, and --compile to add a fourth mode and a few minutes of compilation (one call of
the device tool allows 10 minutes: pass --batch-sizes one at a time if it runs long).
"""
import argparse, json, os, platform, statistics, sys, time

import torch

import mapd
from mapd.data import load_fashion_mnist
from mapd.models import make_model
from mapd.train import TrainConfig, Normalize, fit

TARGETS = dict(online_images_per_s=20_000,  # training images/s with online recording, on an H100 (issue 12)
               online_ratio=1.02,           # online recording at most 2% slower than none
               eval_extra=0.03)             # evaluation pass at most one forward pass over all rows + 3% of an epoch


def sync(dev):
    if dev.type == "cuda": torch.cuda.synchronize(dev)


def load_data(kind: str, rows: int, seed: int = 0):
    "Images (N, 1, 28, 28) uint8, labels (N,), and a description of where they came from."
    if kind in ("auto", "fashion-mnist"):
        try:
            ds = load_fashion_mnist("train", quiet=True)
            n = min(rows, len(ds))
            return ds.images[:n], ds.labels[:n], f"{n} Fashion-MNIST training rows"
        except FileNotFoundError as e:
            if kind == "fashion-mnist": raise SystemExit(f"Fashion-MNIST not found: {e}")
            print(f"note: Fashion-MNIST not found here ({str(e).splitlines()[0][:120]}...); random images of its shape stand in", flush=True)
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 256, (rows, 1, 28, 28), generator=g, dtype=torch.uint8), torch.randint(0, 10, (rows,), generator=g),
            f"{rows} random 28x28 rows (Fashion-MNIST's shape)")


def forward_pass(model, X, normalize, batch_size, amp, dev) -> float:
    "Seconds of one bare forward pass over all rows in eval mode: the floor under the evaluation-pass recorder."
    was = model.training; model.eval()
    sync(dev); t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(X), batch_size):
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                model(normalize(X[i:i + batch_size]))
    sync(dev)  # host-device sync: the pass is done
    model.train(was)
    return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    ap.add_argument("--small", action="store_true", help="tiny sizes for a CPU smoke test: cnn, 512 rows, batch 128, 2 repeats")
    ap.add_argument("--model", default=None, help="a mapd.models name (default resnet18; cnn with --small)")
    ap.add_argument("--rows", type=int, default=None, help="training rows (default 60000, all of Fashion-MNIST's training split)")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=None, help="training batch sizes, each measured separately (default 1024 2048)")
    ap.add_argument("--eval-batch-size", type=int, default=None, help="rows per forward of the evaluation pass and of the bare forward pass (default 2048)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs per timed run (all counted: warm-up runs are separate)")
    ap.add_argument("--repeats", type=int, default=None, help="repeats of the interleaved modes (default 3)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (dynamic batch size); adds a 'no recording, eager' row to show whether it pays")
    ap.add_argument("--compile-mode", default="default", help="torch.compile mode: default, max-autotune-no-cudagraphs, ...")
    ap.add_argument("--compile-backend", default="inductor", help="torch.compile backend (eager: only traces, for smoke tests)")
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True, help="run the model in channels_last")
    ap.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True, help="random crop and flips on the device, as in fit")
    ap.add_argument("--cudnn-benchmark", action=argparse.BooleanOptionalAction, default=True, help="cuDNN's autotuner")
    ap.add_argument("--data", choices=("auto", "fashion-mnist", "random"), default="auto")
    ap.add_argument("--json", default=None, help="write the figures to this JSON file")
    a = ap.parse_args(argv)
    model_name = a.model or ("cnn" if a.small else "resnet18")
    rows = a.rows or (512 if a.small else 60_000)
    batch_sizes = a.batch_sizes or ([128] if a.small else [1024, 2048])
    eval_bs = a.eval_batch_size or (256 if a.small else 2048)
    repeats = a.repeats or (2 if a.small else 3)

    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print(f"skipped: --device {a.device} asked for, but torch {torch.__version__} sees no CUDA device. "
              "On a CPU-only machine run `--device cpu --small` for a smoke test.", file=sys.stderr)
        return 0
    torch.backends.cudnn.benchmark = a.cudnn_benchmark
    if a.compile:  # one graph per (train/eval, dynamic batch); raise the recompile cap so a many-batch-size sweep never falls back to eager
        import torch._dynamo as dynamo
        for name in ("recompile_limit", "cache_size_limit"):
            if hasattr(dynamo.config, name): setattr(dynamo.config, name, max(64, getattr(dynamo.config, name)))

    images, labels, data_desc = load_data(a.data, rows)
    X, Y = images.to(dev), labels.to(dev)  # on the device once, as uint8; fit leaves tensors already there in place
    norm = Normalize.fit(images, dev)
    amp = dev.type == "cuda"  # what fit's amp="auto" does
    modes = ["none", "online", "eval"] + (["none-eager"] if a.compile else [])
    dev_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu"
    setup = (f"{model_name} (mapd.models) on {data_desc}, device {dev} ({dev_name}), torch {torch.__version__}, mapd {mapd.__version__}; "
             f"bf16 autocast {'on' if amp else 'off'}, channels_last {'on' if a.channels_last else 'off'}, "
             f"compile {f'{a.compile_backend}/{a.compile_mode}' if a.compile else 'off'}, augmentation {'on the device' if a.augment else 'off'}, "
             f"cudnn.benchmark {a.cudnn_benchmark}; {a.epochs} epochs per run x {repeats} repeats, eval batch {eval_bs}")
    print(setup, flush=True)
    results = dict(setup=setup, device=str(dev), device_name=dev_name, torch=torch.__version__, mapd=mapd.__version__, model=model_name,
                   data=data_desc, rows=len(X), epochs=a.epochs, repeats=repeats, eval_batch_size=eval_bs, amp=amp,
                   channels_last=a.channels_last, compile=a.compile, compile_mode=a.compile_mode if a.compile else None,
                   augment=a.augment, targets=TARGETS, batch_sizes={})

    for bs in batch_sizes:
        torch.manual_seed(0)
        base = make_model(model_name, tuple(X.shape[1:]), 10).to(dev)
        models = {"eager": base}
        if a.compile: models["compiled"] = torch.compile(base, dynamic=True, mode=a.compile_mode, backend=a.compile_backend)
        state0 = {k: v.clone() for k, v in base.state_dict().items()}  # every run starts from these weights

        def run(mode, epochs):
            model = models["eager" if mode == "none-eager" or not a.compile else "compiled"]
            base.load_state_dict(state0)  # in place: the compiled graph stays valid
            cfg = TrainConfig(epochs=epochs, batch_size=bs, eval_batch_size=eval_bs, augment=a.augment, record=mode.split("-")[0],
                              channels_last=a.channels_last, cudnn_benchmark=a.cudnn_benchmark)
            res = fit(model, (X, Y), cfg, n_classes=10, normalize=norm, device=dev, quiet=True)
            return float(res.history.seconds.mean()), model

        if dev.type == "cuda": torch.cuda.reset_peak_memory_stats(dev)
        t0 = time.perf_counter()
        for mode in modes: run(mode, 1)  # warm-up, untimed: compilation, cuDNN autotuning, allocator
        forward_pass(run("eval", 1)[1], X, norm, eval_bs, amp, dev)
        print(f"batch {bs}: warm-up (compilation included) {time.perf_counter() - t0:.1f} s", flush=True)

        times = {m: [] for m in modes + ["forward"]}
        for rep in range(repeats):
            for mode in modes:
                t, model = run(mode, a.epochs)
                times[mode].append(t)
                if mode == "eval": times["forward"].append(forward_pass(model, X, norm, eval_bs, amp, dev))
            print(f"  repeat {rep + 1}/{repeats}: " + ", ".join(f"{m} {v[-1]:.3f}s" for m, v in times.items()), flush=True)
        peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else float("nan")
        ratio = {m: statistics.median(t / n for t, n in zip(times[m], times["none"])) for m in times}
        med = {m: statistics.median(v) for m, v in times.items()}
        ips = {m: len(X) / med[m] for m in modes}  # training images per second of wall time (the eval pass included for "eval")

        labels_ = dict(none="no recording", online="online recording", eval="evaluation-pass recorder",
                       **{"none-eager": "no recording, no compile"})
        print(f"\nbatch size {bs}" + (f", peak GPU memory {peak:.1f} GiB" if dev.type == "cuda" else ""))
        print(f"{'mode':<34}{'median s/epoch':>16}{'images/s':>12}{'ratio to none':>16}")
        for m in modes: print(f"{labels_[m]:<34}{med[m]:>16.3f}{ips[m]:>12,.0f}{ratio[m]:>16.3f}")
        print(f"{'one forward pass over all rows':<34}{med['forward']:>16.3f}{len(X) / med['forward']:>12,.0f}{ratio['forward']:>16.3f}")
        eval_limit = 1 + ratio["forward"] + TARGETS["eval_extra"]
        checks = dict(online_images_per_s=ips["online"] >= TARGETS["online_images_per_s"],
                      online_ratio=ratio["online"] <= TARGETS["online_ratio"],
                      eval_vs_forward=ratio["eval"] <= eval_limit)
        ok = lambda b: "PASS" if b else "MISS"
        print(f"online images/s: {ips['online']:,.0f} (target >= {TARGETS['online_images_per_s']:,} on an H100) {ok(checks['online_images_per_s'])}")
        print(f"online / none: {ratio['online']:.3f} (target <= {TARGETS['online_ratio']}) {ok(checks['online_ratio'])}")
        print(f"eval / none: {ratio['eval']:.3f} (target <= 1 + forward/none + {TARGETS['eval_extra']} = {eval_limit:.3f}; "
              f"forward/none {ratio['forward']:.3f}, so the pass adds {100 * (ratio['eval'] - 1 - ratio['forward']):+.1f}% beyond its floor) {ok(checks['eval_vs_forward'])}")
        if a.compile: print(f"compiled / eager (no recording): {ratio['none-eager'] ** -1:.3f} of the eager time: compile "
                            f"{'pays' if ratio['none-eager'] > 1 else 'does not pay'} at this batch size")
        print(flush=True)
        results["batch_sizes"][str(bs)] = dict(seconds_per_epoch=times, median_seconds=med, images_per_s=ips, ratio_to_none=ratio,
                                               eval_limit=eval_limit, checks=checks, peak_gpu_memory_gib=peak)

    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f: json.dump(results, f, indent=2); f.write("\n")
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__": sys.exit(main())
