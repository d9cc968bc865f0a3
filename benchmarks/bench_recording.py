"""What recording costs: the default model trained for a few epochs four ways in one run, timed side by side.

    .venv/bin/python benchmarks/bench_recording.py [--epochs 2] [--repeats 3] [--model mlp] [--rows 60000]

Modes are interleaved within each repeat (none, online, online + full probabilities kept after every epoch, eval, none, ...) so that drift of a noisy machine
hits all of them alike; each ratio is the median over repeats of time(mode) / time(no recording) of the
same repeat. The evaluation pass is compared with its floor too: one bare forward pass over all rows.
"""
import argparse, statistics, time

import torch

from mapd.data import load_fashion_mnist
from mapd.models import make_model
from mapd.train import TrainConfig, Normalize, fit, predict_logits


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--rows", type=int, default=60000)
    ap.add_argument("--device", default="auto")
    a = ap.parse_args()
    ds = load_fashion_mnist("train").subset(range(a.rows))
    norm = Normalize.fit(ds.images)
    times = {m: [] for m in ("none", "online", "online+probs", "eval", "forward")}
    fit(make_model(a.model, ds.shape, ds.n_classes), ds, TrainConfig(epochs=1, record="none"), normalize=norm, device=a.device, quiet=True)  # warm-up, untimed
    for rep in range(a.repeats):
        for mode in ("none", "online", "online+probs", "eval"):
            torch.manual_seed(0)
            model = make_model(a.model, ds.shape, ds.n_classes)
            # keep_probs at every epoch: the worst case of what EL2N needs (an audit keeps them after one epoch)
            cfg = TrainConfig(epochs=a.epochs, record=mode.split("+")[0], keep_probs=tuple(range(1, a.epochs + 1)) if "probs" in mode else ())
            t0 = time.perf_counter()
            res = fit(model, ds, cfg, normalize=norm, device=a.device, quiet=True)
            times[mode].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _ in range(a.epochs): predict_logits(res.model, ds.images, normalize=norm, device=a.device)
        times["forward"].append(time.perf_counter() - t0)
        print(f"repeat {rep + 1}/{a.repeats}: " + ", ".join(f"{m} {v[-1]:.2f}s" for m, v in times.items()), flush=True)
    ratio = {m: statistics.median(t / n for t, n in zip(times[m], times["none"])) for m in times}
    print(f"\n{a.model} on {a.rows} Fashion-MNIST rows, {a.epochs} epochs x {a.repeats} repeats, device={a.device}, torch threads={torch.get_num_threads()}")
    print(f"{'mode':<28}{'median s':>10}{'ratio to none':>16}")
    for m, label in (("none", "no recording"), ("online", "online (training pass)"), ("online+probs", "online + probs every epoch"), ("eval", "evaluation pass"),
                     ("forward", "a bare forward pass alone")):
        print(f"{label:<28}{statistics.median(times[m]):>10.2f}{ratio[m]:>16.3f}")
    print(f"\nonline overhead: {100 * (ratio['online'] - 1):+.1f}% (target: at most +3%); "
          f"with the full probabilities kept after every epoch: {100 * (ratio['online+probs'] - 1):+.1f}%")
    print(f"evaluation-pass overhead: {100 * (ratio['eval'] - 1):+.1f}%; one extra forward pass over all rows costs "
          f"{100 * ratio['forward']:.1f}%, so the pass itself adds {100 * (ratio['eval'] - 1 - ratio['forward']):+.1f}% beyond that floor")


if __name__ == "__main__": main()
