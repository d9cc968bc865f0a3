"""One process of a data-parallel `fit` under torchrun, for tests/test_distributed.py (and an example of the pattern):

    torchrun --standalone --nproc_per_node 2 tests/ddp_worker.py OUT [--record eval] [--die-after E] [--batch-size B]

Rank 0 creates the trajectory store (or reopens it to resume), the others open it once it exists; `fit` does the rest.
With --die-after E, rank 1 exits hard after epoch E the first time (a marker file in OUT remembers); launching the same
command again (or torchrun's --max-restarts) resumes the run from the store."""
import argparse, json, os
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch
import torch.distributed as dist

from mapd.data import load_digits
from mapd.models import make_model
from mapd.store import TrajectoryStore
from mapd.train import Hook, TrainConfig, fit, world


class RecordPadding(Hook):
    "A broken shard (for the test of the duplicate check): the padding repeats are recorded too."
    def before_step(self, loop, batch): batch.recorded = None


class DieOnce(Hook):
    "Rank 1 exits without cleaning up after epoch `after`, once."
    def __init__(self, after: int, marker: Path): self.after, self.marker = after, marker
    def after_epoch(self, loop, row):
        if world()[0] == 1 and loop.epoch + 1 == self.after and not self.marker.exists():
            self.marker.touch()
            os._exit(17)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--record", default="online")
    ap.add_argument("--die-after", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--record-padding", action="store_true", help="break the shard: record the padding repeats (the run must fail)")
    ap.add_argument("--rows", type=int, default=0, help="train on the first ROWS examples (0: all)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if "WORLD_SIZE" in os.environ: dist.init_process_group("gloo")
    rank, n = world()
    out = Path(a.out)
    ds = load_digits("train")
    if a.rows: ds = ds.subset(range(a.rows))
    cfg = TrainConfig(epochs=a.epochs, batch_size=a.batch_size, lr=0.05, weight_decay=5e-4, record=a.record, seed=0)
    path = out/"store"
    if rank == 0 and not (path/"meta.json").exists():
        rows = pd.DataFrame(dict(role="train", category="", split="", index=range(len(ds)), label=ds.labels.numpy()))
        TrajectoryStore.create(path, rows, cfg.epochs, config={"train": asdict(cfg)})
    if n > 1: dist.barrier()   # the store exists before any rank opens it
    store = TrajectoryStore(path, "r+")
    torch.manual_seed(0)
    hooks = ([DieOnce(a.die_after, out/"died")] if a.die_after else []) + ([RecordPadding()] if a.record_padding else [])
    res = fit(make_model("mlp", ds.shape, ds.n_classes), ds, cfg, store=store, hooks=hooks, device="cpu", quiet=True)
    if rank == 0: (out/"history.json").write_text(json.dumps(res.history.drop(columns="seconds").to_dict("list")))
    if n > 1: dist.destroy_process_group()


if __name__ == "__main__":
    main()
