"The trainer callbacks with the real Lightning and transformers: they record the logits the steps computed (no extra forward), the evaluation pass equals `Recorder.evaluate`, the store is complete, resumes, and feeds MAP-D and the baselines."
import json, os, subprocess, sys, warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip("lightning.pytorch")
transformers = pytest.importorskip("transformers")
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments
from transformers.modeling_outputs import SequenceClassifierOutput

from conftest import REPO
from mapd.baselines import forgetting_scores, mean_loss_scores
from mapd.integrations.hf import MAPDTrainerCallback
from mapd.integrations.lightning import MAPDCallback
from mapd.knn import MAPD
from mapd.metadata import metadata_table
from mapd.store import ROW_COLUMNS, TrajectoryStore
from mapd.train import Recorder, per_example_stats

torch.set_num_threads(1)
N, P, K, D = 160, 30, 4, 16   # training examples, probes per category, classes, features


@pytest.fixture(scope="module")
def data():
    "Blobs: N training examples (the first 16 with flipped labels), then P typical and P mislabeled probes; the rows mark them."
    g = torch.Generator().manual_seed(0)
    centres = 3 * torch.randn(K, D, generator=g)
    def draw(n):
        y = torch.randint(0, K, (n,), generator=g)
        return centres[y] + torch.randn(n, D, generator=g), y
    x, y = draw(N + 2 * P)
    given = y.clone()
    flip = np.r_[0:16, N + P:N + 2 * P]              # noisy training rows and the mislabeled probes
    given[flip] = (y[flip] + 1 + torch.randint(0, K - 1, (len(flip),), generator=g)) % K
    cat = [""] * N + ["typical"] * P + ["mislabeled"] * P
    split = [""] * N + (["fit"] * 20 + ["heldout"] * 10) * 2
    rows = pd.DataFrame(dict(role=["train"] * N + ["probe"] * 2 * P, category=cat, split=split, index=np.arange(N + 2 * P),
                             label=given.numpy(), true_label=y.numpy()))
    return x, given, rows


def _close(a, b, tol=2e-3): np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=tol, atol=tol)


def _check_epoch(traj, e, logits, labels):
    "Column `e` of the recording holds the loss, margin and correctness of `logits` (R, K) against `labels` (float16 kept)."
    st = per_example_stats(logits, labels)
    _close(traj["loss"][:, e], st["loss"]); _close(traj["margin"][:, e], st["margin"], 5e-3)
    np.testing.assert_array_equal(traj["correct"][:, e], st["correct"].numpy())


# --- Lightning ---------------------------------------------------------------------------------

class DictRows(torch.utils.data.Dataset):
    def __init__(self, x, y): self.x, self.y = x, y
    def __len__(self): return len(self.y)
    def __getitem__(self, i): return dict(x=self.x[i], y=self.y[i], index=i)


class LitNet(pl.LightningModule):
    "An MLP whose training_step returns its logits; it keeps each epoch's logits by row and logs its forwards (training mode, grad)."
    def __init__(self, tuple_batches=False):
        super().__init__(); torch.manual_seed(0)
        self.net, self.tuple_batches, self.calls, self.seen = nn.Sequential(nn.Linear(D, 32), nn.ReLU(), nn.Linear(32, K)), tuple_batches, [], {}
    def forward(self, x):
        self.calls.append((self.training, torch.is_grad_enabled())); return self.net(x)
    def training_step(self, batch, i):
        x, y, idx = batch if self.tuple_batches else (batch["x"], batch["y"], batch["index"])
        logits = self(x)
        self.seen.setdefault(self.current_epoch, {}).update(zip(idx.tolist(), logits.detach().clone()))
        return {"loss": F.cross_entropy(logits, y), "logits": logits}
    def predict_step(self, batch, i): return self(batch["x"])
    def configure_optimizers(self): return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)
    def epoch_logits(self, e, n): return torch.stack([self.seen[e][i] for i in range(n)])


def _lit_trainer(cb, epochs=3, **kw):
    kw = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu") | kw
    return pl.Trainer(max_epochs=epochs, callbacks=[cb] + kw.pop("more", []), **kw)


def test_lightning_online_records_the_logits_of_the_step(data, tmp_path):
    x, y, rows = data
    cb, net = MAPDCallback(y, store=tmp_path/"s"), LitNet()
    _lit_trainer(cb).fit(net, DataLoader(DictRows(x, y), batch_size=32, shuffle=True))
    st = TrajectoryStore(tmp_path/"s")
    assert (st.n_rows, st.n_epochs, st.completed) == (len(y), 3, 3) and list(st.rows.columns[:5]) == list(ROW_COLUMNS)
    traj = {q: st.trajectories(q) for q in ("loss", "margin", "correct")}
    for e in range(3): _check_epoch(traj, e, net.epoch_logits(e, len(y)), y)
    assert len(net.calls) == 3 * 7 and all(c == (True, True) for c in net.calls)   # 7 steps per epoch and no other forward
    assert not np.allclose(traj["loss"][:, 0], traj["loss"][:, 2])                 # the model learned between epochs
    np.testing.assert_array_equal(cb.trajectories("loss"), traj["loss"])


def test_lightning_eval_mode_equals_recorder_evaluate(data):
    x, y, _ = data
    ids = torch.arange(len(y))
    cb = MAPDCallback(y, mode="eval", index_key=2, eval_data=DataLoader(TensorDataset(x, y, ids), batch_size=50), forward=lambda m, b: m(b[0]))
    net = LitNet(tuple_batches=True)
    _lit_trainer(cb).fit(net, DataLoader(TensorDataset(x, y, ids), batch_size=32, shuffle=True))
    assert cb.trajectories("loss").shape == (len(y), 3) and cb.store is None
    ref = Recorder(len(y), K); ref.evaluate(net.net, x, y, normalize=lambda v: v); ref.end_epoch(y)
    for q in ("loss", "margin", "correct"): _close(cb.trajectories(q)[:, -1], ref.trajectories(q)[:, 0])
    assert net.calls.count((True, True)) == 3 * 7 and net.calls.count((False, False)) == 3 * 5  # 5 eval batches per epoch, eval mode, no grad
    assert net.training


def test_lightning_store_feeds_mapd_and_the_baselines(data, tmp_path):
    x, y, rows = data
    cb = MAPDCallback(rows=rows, store=tmp_path/"s")
    _lit_trainer(cb, epochs=8).fit(LitNet(), DataLoader(DictRows(x, y), batch_size=32, shuffle=True))
    st = TrajectoryStore(tmp_path/"s")
    assert st.completed == 8 and (st.rows.role == "probe").sum() == 2 * P
    t = metadata_table(st, k=5, device="cpu")
    assert len(t) == N + P and {"p_typical", "p_mislabeled"} <= set(t.columns) and t.is_noisy.sum() == 16   # the trained rows and the typical probes (examples too)
    _close(t.p_typical + t.p_mislabeled, np.ones(N + P))
    assert t.p_mislabeled[t.is_noisy].mean() > t.p_mislabeled[~t.is_noisy].mean() + 0.5
    m = mean_loss_scores(st)
    assert len(m) == N and m.score[m.is_noisy].mean() > m.score[~m.is_noisy].mean()
    assert len(forgetting_scores(st)) == N
    fit_rows, held = st.select(role="probe", split="fit"), st.select(role="probe", split="heldout")
    knn = MAPD(5, device="cpu").fit(st.trajectories("loss", fit_rows), st.rows.category[fit_rows])
    assert knn.score(st.trajectories("loss", held), st.rows.category[held]) >= 0.9


def test_lightning_resume_continues_the_store(data, tmp_path):
    x, y, _ = data
    loader = DataLoader(DictRows(x, y), batch_size=32, shuffle=True)
    ck = pl.callbacks.ModelCheckpoint(dirpath=tmp_path/"ck", save_top_k=-1, every_n_epochs=1, save_on_train_epoch_end=True)
    _lit_trainer(MAPDCallback(y, store=tmp_path/"s"), more=[ck], enable_checkpointing=True).fit(LitNet(), loader)
    first = TrajectoryStore(tmp_path/"s").trajectories("loss")
    after2 = next((tmp_path/"ck").glob("epoch=1-*.ckpt"))               # saved after the second epoch
    cb = MAPDCallback(y, store=tmp_path/"s")
    with pytest.warns(UserWarning, match="epochs 3..3 are recorded again"):
        _lit_trainer(cb).fit(LitNet(), loader, ckpt_path=after2)
    st = TrajectoryStore(tmp_path/"s")
    assert st.completed == 3 and np.isfinite(st.trajectories("loss")).all()
    np.testing.assert_array_equal(st.trajectories("loss")[:, :2], first[:, :2])   # the epochs before the checkpoint are kept
    with pytest.raises(ValueError, match="recording is in memory"):
        _lit_trainer(MAPDCallback(y)).fit(LitNet(), loader, ckpt_path=after2)
    with pytest.raises(FileExistsError, match="holds 3 complete epochs of an earlier run"):
        _lit_trainer(MAPDCallback(y, store=tmp_path/"s")).fit(LitNet(), loader)
    _lit_trainer(MAPDCallback(y, store=tmp_path/"s", overwrite=True), epochs=1).fit(LitNet(), loader)
    assert TrajectoryStore(tmp_path/"s").n_epochs == 1


def test_lightning_errors_and_warnings(data):
    x, y, _ = data
    loader = DataLoader(DictRows(x, y), batch_size=32)

    class LossOnly(LitNet):
        def training_step(self, batch, i): return F.cross_entropy(self(batch["x"]), batch["y"])
    with pytest.raises(ValueError, match=r"return \{'loss': loss, 'logits': logits\}"):
        _lit_trainer(MAPDCallback(y)).fit(LossOnly(), loader)
    with pytest.raises(ValueError, match="no row ids under index_key='row'"):
        _lit_trainer(MAPDCallback(y, index_key="row")).fit(LitNet(), loader)
    with pytest.raises(ValueError, match=r"the rows' labels must lie in \[0, 4\)"):
        _lit_trainer(MAPDCallback(y + 4)).fit(LitNet(), loader)
    with pytest.raises(ValueError, match="number of epochs"):
        _lit_trainer(MAPDCallback(y), epochs=-1, max_steps=2).fit(LitNet(), loader)
    with pytest.raises(ValueError, match="needs eval_data"): MAPDCallback(y, mode="eval")
    with pytest.raises(ValueError, match="exactly one of them"): MAPDCallback()
    cb = MAPDCallback(y)
    with pytest.warns(UserWarning, match="156 of 220 rows were in no recorded batch of epoch 1"):
        _lit_trainer(cb, epochs=1, limit_train_batches=2).fit(LitNet(), loader)
    assert np.isnan(cb.trajectories("loss")[64:]).all() and np.isfinite(cb.trajectories("loss")[:64]).all()


# --- transformers ------------------------------------------------------------------------------

class HFRows(torch.utils.data.Dataset):
    def __init__(self, x, y, key="index"): self.x, self.y, self.key = x, y, key
    def __len__(self): return len(self.y)
    def __getitem__(self, i): return {"x": self.x[i], "labels": self.y[i], **({self.key: i} if self.key else {})}


class HFNet(nn.Module):
    "An MLP returning transformers' outputs; it keeps its training forwards' inputs and logits, and logs its forwards."
    def __init__(self, tuple_out=False):
        super().__init__(); torch.manual_seed(0)
        self.net, self.tuple_out, self.calls, self.seen = nn.Sequential(nn.Linear(D, 32), nn.ReLU(), nn.Linear(32, K)), tuple_out, [], []
    def forward(self, x, labels=None):
        self.calls.append((self.training, torch.is_grad_enabled()))
        logits = self.net(x)
        if self.training: self.seen.append((x, logits.detach().clone()))
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return (loss, logits) if self.tuple_out else SequenceClassifierOutput(loss=loss, logits=logits)
    def epoch_logits(self, x_all, steps, e):
        "Logits (R, K) of epoch `e` by row: the rows of each step found by their features."
        out = torch.empty(len(x_all), K)
        for xb, lg in self.seen[e * steps:(e + 1) * steps]: out[(xb[:, None] == x_all[None]).all(-1).float().argmax(1)] = lg
        return out


def _hf_args(out, **kw):
    return TrainingArguments(str(out), **dict(num_train_epochs=3, per_device_train_batch_size=32, learning_rate=0.05, use_cpu=True, report_to="none",
                                              save_strategy="no", disable_tqdm=True, remove_unused_columns=False, seed=0) | kw)


def test_hf_online_records_the_logits_of_the_step(data, tmp_path):
    x, y, _ = data
    cb, net = MAPDTrainerCallback(y, store=tmp_path/"s"), HFNet()
    Trainer(net, _hf_args(tmp_path/"o", gradient_accumulation_steps=2), train_dataset=HFRows(x, y), callbacks=[cb]).train()
    st = TrajectoryStore(tmp_path/"s")
    assert (st.n_rows, st.n_epochs, st.completed) == (len(y), 3, 3)
    traj = {q: st.trajectories(q) for q in ("loss", "margin", "correct")}
    for e in range(3): _check_epoch(traj, e, net.epoch_logits(x, 7, e), y)
    assert len(net.calls) == 3 * 7 and all(c == (True, True) for c in net.calls)   # 7 micro-batches per epoch, no other forward
    assert not np.allclose(traj["loss"][:, 0], traj["loss"][:, 2])
    assert len(net._forward_pre_hooks) == 1 and not net._forward_hooks             # recording stopped; the row-id hook stays


def test_hf_eval_mode_equals_recorder_evaluate(data, tmp_path):
    x, y, _ = data

    class Logits(nn.Module):
        def __init__(self, m): super().__init__(); self.m = m
        def forward(self, v): return self.m(v).logits
    cb, net = MAPDTrainerCallback(y, mode="eval", eval_data=HFRows(x, y), eval_batch_size=50), HFNet()
    Trainer(net, _hf_args(tmp_path/"o"), train_dataset=HFRows(x, y, key=None), callbacks=[cb]).train()  # eval mode: no row ids needed in training
    assert cb.trajectories("loss").shape == (len(y), 3)
    ref = Recorder(len(y), K); ref.evaluate(Logits(net), x, y, normalize=lambda v: v); ref.end_epoch(y)
    for q in ("loss", "margin", "correct"): _close(cb.trajectories(q)[:, -1], ref.trajectories(q)[:, 0])
    assert net.calls.count((True, True)) == 3 * 7 and net.calls.count((False, False)) == 1 + 3 * 5  # + Recorder.evaluate's one batch
    assert net.training


def test_hf_bert_store_feeds_mapd_and_evaluate_still_works(data, tmp_path):
    "A tiny BERT built from a config (nothing downloaded) on token sequences made from the blobs' classes."
    _, y, rows = data
    g = torch.Generator().manual_seed(1)
    true = torch.as_tensor(rows.true_label.to_numpy(copy=True))
    ids = torch.randint(4 + K, 40, (len(y), 8), generator=g)
    ids[:, 0], ids[:, 3] = 1, 4 + true                                   # [CLS]-like token, then the class token among noise

    class Tokens(torch.utils.data.Dataset):
        def __len__(self): return len(y)
        def __getitem__(self, i): return dict(input_ids=ids[i], attention_mask=torch.ones(8, dtype=torch.long), labels=y[i], index=i)
    cfg = BertConfig(vocab_size=40, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, max_position_embeddings=16, num_labels=K)
    torch.manual_seed(0)
    model, cb = BertForSequenceClassification(cfg), MAPDTrainerCallback(rows=rows, store=tmp_path/"s")
    tr = Trainer(model, _hf_args(tmp_path/"o", num_train_epochs=6, learning_rate=3e-3), train_dataset=Tokens(), callbacks=[cb])
    tr.train()
    st = TrajectoryStore(tmp_path/"s")
    assert st.completed == 6 and np.isfinite(st.trajectories("loss")).all()
    t = metadata_table(st, k=5, device="cpu")
    assert len(t) == N + P and t.p_mislabeled[t.is_noisy].mean() > t.p_mislabeled[~t.is_noisy].mean() + 0.3
    m = mean_loss_scores(st)
    assert m.score[m.is_noisy].mean() > m.score[~m.is_noisy].mean()
    assert "eval_loss" in tr.evaluate(Tokens())                          # the row ids are still taken out of the inputs after training


def test_hf_resume_continues_the_store(data, tmp_path):
    x, y, _ = data
    def trainer(cb, **kw): return Trainer(HFNet(), _hf_args(tmp_path/"o", **kw), train_dataset=HFRows(x, y), callbacks=[cb])
    trainer(MAPDTrainerCallback(y, store=tmp_path/"s"), save_strategy="epoch").train()
    first = TrajectoryStore(tmp_path/"s").trajectories("loss")
    after2 = tmp_path/"o"/"checkpoint-14"                                  # 7 steps per epoch
    assert after2.exists()
    with pytest.warns(UserWarning, match="epochs 3..3 are recorded again"):
        trainer(MAPDTrainerCallback(y, store=tmp_path/"s")).train(resume_from_checkpoint=str(after2))
    st = TrajectoryStore(tmp_path/"s")
    assert st.completed == 3 and np.isfinite(st.trajectories("loss")).all()
    np.testing.assert_array_equal(st.trajectories("loss")[:, :2], first[:, :2])
    with pytest.raises(ValueError, match="recording is in memory"):
        trainer(MAPDTrainerCallback(y)).train(resume_from_checkpoint=str(after2))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        trainer(MAPDTrainerCallback(y, store=tmp_path/"s")).train()


def test_hf_errors(data, tmp_path):
    x, y, _ = data
    with pytest.raises(ValueError, match=r"TrainingArguments\(remove_unused_columns=False\)"):
        Trainer(HFNet(), _hf_args(tmp_path/"o", remove_unused_columns=True), train_dataset=HFRows(x, y), callbacks=[MAPDTrainerCallback(y)]).train()
    net = HFNet(tuple_out=True)
    with pytest.raises(ValueError, match="holds no logits under 'logits'"):
        Trainer(net, _hf_args(tmp_path/"o"), train_dataset=HFRows(x, y), callbacks=[MAPDTrainerCallback(y)]).train()
    with pytest.raises(ValueError, match="needs eval_data"): MAPDTrainerCallback(y, mode="eval")


def test_hf_a_failed_run_leaves_no_hook_behind(data, tmp_path):
    x, y, _ = data
    net = HFNet()
    with pytest.raises(ValueError, match="remove_unused_columns"):
        Trainer(net, _hf_args(tmp_path/"o", remove_unused_columns=True), train_dataset=HFRows(x, y), callbacks=[MAPDTrainerCallback(y)]).train()
    cb = MAPDTrainerCallback(y)
    Trainer(net, _hf_args(tmp_path/"o", num_train_epochs=1), train_dataset=HFRows(x, y), callbacks=[cb]).train()
    assert np.isfinite(cb.trajectories("loss")).all() and len(net._forward_pre_hooks) == 1


# --- packaging ---------------------------------------------------------------------------------

def test_core_imports_without_the_frameworks_and_the_modules_name_the_extra():
    code = ("import sys; sys.modules['lightning'] = sys.modules['transformers'] = None\n"
            "import mapd, mapd.store, mapd.train, mapd.knn, mapd.metadata\n"
            "for m, extra in (('lightning', 'lightning'), ('hf', 'hf')):\n"
            "    try: __import__('mapd.integrations.' + m)\n"
            "    except ImportError as e: assert f'pip install \"mapd[{extra}]\"' in str(e), e; print('ok', m)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0 and r.stdout.split() == ["ok", "lightning", "ok", "hf"], r.stderr[-2000:]


def test_callback_bench_smoke(tmp_path):
    "benchmarks/bench_callbacks.py at a tiny size (behaviour, not time): every ratio is printed and written."
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep), OMP_NUM_THREADS="1")
    out = tmp_path/"bench.json"
    r = subprocess.run([sys.executable, str(REPO/"benchmarks"/"bench_callbacks.py"), "--rows", "256", "--epochs", "1", "--repeats", "1",
                        "--json", str(out)], capture_output=True, text=True, timeout=180, cwd=REPO, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert set(res["ratio"]) == {"lightning online", "lightning eval", "hf online", "hf eval"}
    assert all(np.isfinite(v) and v > 0 for v in res["ratio"].values())
    assert res["share_in_callback"].keys() == res["ratio"].keys() and all(0 < v < 1 for v in res["share_in_callback"].values())
    for k in res["ratio"]: assert k in r.stdout
