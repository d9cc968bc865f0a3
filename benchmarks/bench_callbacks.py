"""What the trainer callbacks cost: one training run with and without `MAPDCallback` (Lightning) and `MAPDTrainerCallback` (transformers), timed side by side.

    .venv/bin/python benchmarks/bench_callbacks.py [--rows 10000] [--epochs 2] [--repeats 3] [--model mlp] [--json out.json]

Runs are interleaved within each repeat (lightning: none, online, eval; hf: none, online, eval; then the next repeat) so that drift
of a noisy machine hits all of them alike; each ratio is the median over repeats of time(mode) / time(no callback) of the same
framework and repeat. "none" is the user's run before adding MAP-D: the same model, step and loader, without row ids in the
batches. Lightning's loader slices whole batches from tensors (cheap loading, so the callback's share is not diluted); the
Trainer's loader is its own (one dict per example and its collator), as users run it. Only `.fit()` / `.train()` is timed.
Needs the extras: pip install "mapd[lightning,hf]".
"""
import argparse, json, logging, statistics, tempfile, time, warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

import lightning.pytorch as pl
from transformers import PrinterCallback, Trainer, TrainingArguments
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import logging as hf_logging

from mapd.core import resolve_device
from mapd.data import load_fashion_mnist
from mapd.integrations.hf import MAPDTrainerCallback
from mapd.integrations.lightning import MAPDCallback
from mapd.models import make_model
from mapd.train import Normalize

MODES = ("none", "online", "eval")


class Batches(Dataset):
    "Whole batches by a list of positions: images (uint8), labels and, when `ids`, the row ids."
    def __init__(self, images, labels, ids=True): self.images, self.labels, self.ids = images, labels, ids
    def __len__(self): return len(self.labels)
    def __getitem__(self, idx):
        idx = torch.as_tensor(idx)
        return dict(x=self.images[idx], labels=self.labels[idx], **({"index": idx} if self.ids else {}))


def batch_loader(ds, batch_size, shuffle, ids=True):
    "A DataLoader that indexes tensors once per batch (no per-example collation)."
    sampler = BatchSampler((RandomSampler if shuffle else SequentialSampler)(range(len(ds))), batch_size, drop_last=False)
    return DataLoader(Batches(ds.images, ds.labels, ids), sampler=sampler, batch_size=None)


class Examples(Dataset):
    "One dict per example, as a `transformers.Trainer` loads them."
    def __init__(self, images, labels, ids=True): self.images, self.labels, self.ids = images, labels, ids
    def __len__(self): return len(self.labels)
    def __getitem__(self, i): return dict(x=self.images[i], labels=self.labels[i], **({"index": i} if self.ids else {}))


class LitClassifier(pl.LightningModule):
    "`net` on normalised uint8 images; training_step returns the logits beside the loss (what online recording reads)."
    def __init__(self, net, norm): super().__init__(); self.net, self.norm = net, norm
    def forward(self, x): return self.net(self.norm(x))
    def training_step(self, batch, i):
        logits = self(batch["x"])
        return {"loss": F.cross_entropy(logits, batch["labels"]), "logits": logits}
    def configure_optimizers(self): return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


class HFClassifier(nn.Module):
    "`net` on normalised uint8 images, returning transformers' outputs."
    def __init__(self, net, norm): super().__init__(); self.net, self.norm = net, norm
    def forward(self, x, labels=None):
        logits = self.net(self.norm(x))
        return SequenceClassifierOutput(loss=None if labels is None else F.cross_entropy(logits, labels), logits=logits)


def timed(cb, mode):
    "Accumulate the wall time spent in `cb`'s recording work (online: each batch's record and the epoch's end; eval: the pass and the end) in `cb.spent`."
    cb.spent = 0.0
    for obj, name in ((cb.recording, "record") if mode == "online" else (cb, "_evaluate"), (cb.recording, "end_epoch")):
        f = getattr(obj, name)
        def g(*args, _f=f, **kw):
            t0 = time.perf_counter()
            try: return _f(*args, **kw)
            finally: cb.spent += time.perf_counter() - t0
        setattr(obj, name, g)
    return cb


def run_lightning(mode, ds, norm, a, dev):
    torch.manual_seed(0)
    module = LitClassifier(make_model(a.model, ds.shape, ds.n_classes), norm)
    cbs = [] if mode == "none" else [timed(MAPDCallback(ds.labels, mode=mode, forward=lambda m, b: m(b["x"]),
                                                        eval_data=batch_loader(ds, a.eval_batch_size, False) if mode == "eval" else None), mode)]
    trainer = pl.Trainer(max_epochs=a.epochs, callbacks=cbs, accelerator=dev.type, devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    loader = batch_loader(ds, a.batch_size, True, ids=mode == "online")
    t0 = time.perf_counter()
    trainer.fit(module, loader)
    return time.perf_counter() - t0, cbs


def run_hf(mode, ds, norm, a, dev, out):
    torch.manual_seed(0)
    model = HFClassifier(make_model(a.model, ds.shape, ds.n_classes), norm)
    cbs = [] if mode == "none" else [timed(MAPDTrainerCallback(ds.labels, mode=mode, eval_data=batch_loader(ds, a.eval_batch_size, False) if mode == "eval" else None), mode)]
    args = TrainingArguments(out, num_train_epochs=a.epochs, per_device_train_batch_size=a.batch_size, learning_rate=0.05, optim="sgd",
                             lr_scheduler_type="constant", use_cpu=dev.type == "cpu", report_to="none", save_strategy="no", logging_strategy="no",
                             disable_tqdm=True, remove_unused_columns=False, dataloader_num_workers=0, seed=0)
    trainer = Trainer(model, args, train_dataset=Examples(ds.images, ds.labels, ids=mode == "online"), callbacks=cbs)
    trainer.remove_callback(PrinterCallback)
    t0 = time.perf_counter()
    trainer.train()
    return time.perf_counter() - t0, cbs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10000, help="Fashion-MNIST training rows")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--eval-batch-size", type=int, default=1024)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", default=None, help="also write the times and ratios here")
    a = ap.parse_args()
    warnings.filterwarnings("ignore", ".*does not have many workers.*")   # the loaders index tensors in the main process on purpose
    warnings.filterwarnings("ignore", ".*LeafSpec.*")                     # a deprecation inside Lightning, not ours
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    hf_logging.set_verbosity_error()
    dev = resolve_device(a.device)
    ds = load_fashion_mnist("train").subset(range(a.rows))
    norm = Normalize.fit(ds.images, device=dev)
    tmp = tempfile.mkdtemp(prefix="bench_callbacks_")
    run_lightning("none", ds, norm, a, dev); run_hf("none", ds, norm, a, dev, tmp)   # warm-up, untimed
    times = {f"{fw} {m}": [] for fw in ("lightning", "hf") for m in MODES}
    inside = {k: [] for k in times if not k.endswith("none")}   # share of each run spent in the callback's own work
    for rep in range(a.repeats):
        for m in MODES:
            t, cbs = run_lightning(m, ds, norm, a, dev); times[f"lightning {m}"].append(t)
            if cbs:
                assert cbs[0].trajectories("loss").shape == (a.rows, a.epochs)   # the run recorded what it should
                inside[f"lightning {m}"].append(cbs[0].spent / t)
        for m in MODES:
            t, cbs = run_hf(m, ds, norm, a, dev, tmp); times[f"hf {m}"].append(t)
            if cbs:
                assert cbs[0].trajectories("loss").shape == (a.rows, a.epochs)
                inside[f"hf {m}"].append(cbs[0].spent / t)
        print(f"repeat {rep + 1}/{a.repeats}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()), flush=True)
    ratio = {k: statistics.median(t / n for t, n in zip(times[k], times[k.split()[0] + " none"])) for k in times if not k.endswith("none")}
    print(f"\n{a.model} on {a.rows} Fashion-MNIST rows, {a.epochs} epochs x {a.repeats} repeats, batch {a.batch_size}, device={dev}, "
          f"torch threads={torch.get_num_threads()}")
    share = {k: statistics.median(v) for k, v in inside.items()}
    print(f"{'run':<18}{'median s':>10}{'ratio to none':>16}{'in callback':>14}")
    for k in times: print(f"{k:<18}{statistics.median(times[k]):>10.2f}{ratio.get(k, 1.0):>16.3f}" + (f"{100 * share[k]:>13.1f}%" if k in share else ""))
    print("\n" + "; ".join(f"{k} overhead {100 * (r - 1):+.1f}%" for k, r in ratio.items()))
    print("online: no extra forward (one indexed copy of the logits per batch, one host copy per epoch); eval: one forward pass over all rows per epoch")
    print("'in callback': the median share of the run's wall time spent in the callback's recording work, timed inside the run (not subject to run-to-run noise)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(rows=a.rows, epochs=a.epochs, repeats=a.repeats, model=a.model, batch_size=a.batch_size, device=str(dev),
                           threads=torch.get_num_threads(), times=times, ratio=ratio, share_in_callback=share), f, indent=1)


if __name__ == "__main__": main()
