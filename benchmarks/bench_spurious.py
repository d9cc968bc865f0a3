"""How much ERM leans on the painted colour of the Fashion-MNIST stand-in (mapd.groups), for a few choices of classes.

    .venv/bin/python benchmarks/bench_spurious.py [--model cnn] [--epochs 5] [--limit 20000] [--p-agree 0.95] [--splits B D E]

Trains one model per class split on the training split of `load_spurious_fashion_mnist` (the first --limit
Fashion-MNIST images, before the other classes are dropped) and prints the average and per-group accuracy on
that split and on the balanced test split. --p-agree 0.5 trains with the colour uninformative: what the shape
alone gives. The numbers quoted in nbs/01b_groups.ipynb came from this script on a 2-core CPU (about 30 s a split).
"""
import argparse, time

import torch

from mapd.groups import load_spurious_fashion_mnist
from mapd.group_metrics import worst_group_accuracy
from mapd.models import make_model
from mapd.train import TrainConfig, fit, predict_logits

SPLITS = {"B": ((0, 3), (2, 4, 6)),  # T-shirt/top, Dress | Pullover, Coat, Shirt (the default)
          "D": ((5, 7), (9,)),       # Sandal, Sneaker | Ankle boot
          "E": ((0, 6), (2, 4))}     # T-shirt/top, Shirt | Pullover, Coat


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="cnn"); ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--limit", type=int, default=20000); ap.add_argument("--p-agree", type=float, default=0.95)
    ap.add_argument("--splits", nargs="+", default=list(SPLITS), choices=list(SPLITS)); ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    for k in a.splits:
        t0 = time.time()
        tr = load_spurious_fashion_mnist("train", limit=a.limit, classes=SPLITS[k], p_agree=a.p_agree, seed=a.seed)
        te = load_spurious_fashion_mnist("test", classes=SPLITS[k], seed=a.seed)
        torch.manual_seed(a.seed)
        cfg = TrainConfig(epochs=a.epochs, batch_size=128, lr=0.05, record="none", seed=a.seed)
        res = fit(make_model(a.model, tr.ds.shape, 2), tr.ds, cfg, device="cpu", quiet=True)
        for name, d in (("train", tr), ("test", te)):
            logits = predict_logits(res.model, d.ds.images, normalize=res.normalize, device="cpu")
            worst, df = worst_group_accuracy(logits, d.ds.labels, d.groups, group_names=d.group_names)
            avg = (logits.argmax(1) == d.ds.labels).float().mean().item()
            print(f"{k} {tr.ds.classes} {name:5s} n={len(d)} average {avg:.3f} worst group {worst:.3f} per group {df.accuracy.round(3).tolist()}")
        print(f"{k}: {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__": main()
