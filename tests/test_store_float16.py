"""Float16 trajectories: the k-NN assigns real rows as it does on float32, the store clips instead of keeping inf,
and stores written with float32 (before float16 was the default) still open, read and resume."""
import numpy as np
import pandas as pd
import pytest

import mapd.store
from mapd.audit import AuditConfig, run_audit
from mapd.knn import MAPD
from mapd.metadata import metadata_table
from mapd.store import TrajectoryStore, QUANTITIES, as_stored

U16 = 2.0 ** -11   # float16's unit roundoff: rounding moves a normal number by at most this share of it


@pytest.fixture(scope="module")
def float32_audit(tmp_path_factory):
    "A real audit of scikit-learn's digits (20% label noise, the paper's six probe categories) recorded in float32."
    out = tmp_path_factory.mktemp("digits32")/"audit"
    cfg = AuditConfig(dataset="digits", noise=0.2, epochs=12, batch_size=64, scores="speed", score_epochs=1,
                      n_fit=60, n_heldout=60, k=10, device="cpu", typical_pool=None, corrupt_std="paper")
    with pytest.MonkeyPatch.context() as mp:   # the recording as it was before float16: the reference
        mp.setitem(mapd.store.QUANTITIES, "loss", "float32"); mp.setitem(mapd.store.QUANTITIES, "margin", "float32")
        run_audit(cfg, out, quiet=True)
    st = TrajectoryStore(out/"trajectories")
    assert st.meta["quantities"] == {"loss": "float32", "margin": "float32", "correct": "uint8"}
    return out, cfg, st


def _through_float16(st: TrajectoryStore, path) -> TrajectoryStore:
    "The same recording written epoch by epoch into a store of today's dtypes (float16), as the recorder writes."
    s16 = TrajectoryStore.create(path, st.rows, st.n_epochs, config=st.config)
    for e in range(st.completed):
        s16.write_epoch(e, **{q: st[q][:, e] for q in st.quantities})
    return TrajectoryStore(path)


def _near_ties(G32, G16, X32, X16, k):
    "Per query row: the gap between its k-th and (k+1)-th nearest probe (exact float64 distances on float32 data), and how far float16 moved any of its distances."
    def dist(X, G): return np.sqrt(((X.astype(np.float64)[:, None] - G.astype(np.float64)[None]) ** 2).sum(-1))
    D32, D16 = dist(X32, G32), dist(X16, G16)
    s = np.sort(D32, 1)
    return s[:, k] - s[:, k - 1], np.abs(D16 - D32).max(1), s[:, k - 1]


def test_float16_is_the_default_and_returns_float32(tmp_path):
    assert QUANTITIES == {"loss": "float16", "margin": "float16", "correct": "uint8"}
    rows = pd.DataFrame(dict(role="train", category="", split="", index=range(4), label=0))
    st = TrajectoryStore.create(tmp_path/"s", rows, 2)
    st.write_epoch(0, loss=np.array([0.1234567, 1e-6, 7e4, np.nan]), margin=np.array([-1e9, 0, np.inf, -np.inf]), correct=[1, 0, 1, 0])
    assert (tmp_path/"s"/"loss.bin").stat().st_size == 4 * 2 * 2   # 2 bytes per row and epoch
    L, M = st.trajectories("loss"), st.trajectories("margin")
    assert L.dtype == M.dtype == np.float32 and L.flags.c_contiguous
    assert abs(L[0, 0] - 0.1234567) <= U16 * 0.1234567 and L[1, 0] > 0   # 1e-6 is a subnormal float16, not zero
    assert L[2, 0] == M[2, 0] == 65504 and M[0, 0] == M[3, 0] == -65504  # clipped to float16's range: no inf is stored
    assert np.isnan(L[3, 0])                                              # a row never seen stays NaN
    assert st.trajectories("correct").dtype == np.uint8
    np.testing.assert_array_equal(as_stored([1e5, -np.inf, np.nan], "float16"), np.array([65504, -65504, np.nan], np.float16))


def test_recorder_without_store_holds_what_a_store_would():
    import torch
    from mapd.train import Recorder
    rec = Recorder(n_rows=3, n_classes=2)
    rec.record(torch.arange(3), torch.tensor([[0.1234567, 0.0], [5e4, -5e4], [0.0, 0.0]]))
    rec.end_epoch(torch.tensor([0, 1, 0]))
    L, M = rec.trajectories("loss"), rec.trajectories("margin")
    assert L.dtype == M.dtype == np.float32
    np.testing.assert_array_equal(L, L.astype(np.float16).astype(np.float32))   # float16 numbers, float32 out
    assert M[1, 0] == -65504 and L[1, 0] == 65504                               # a margin of -1e5 and a loss of 1e5, clipped


def test_trajectory_reads_of_runs_and_scattered_rows_agree(tmp_path):
    rows = pd.DataFrame(dict(role="train", category="", split="", index=range(50), label=0))
    st = TrajectoryStore.create(tmp_path/"s", rows, 3)
    rng = np.random.default_rng(0)
    for e in range(3): st.write_epoch(e, loss=rng.random(50) * 3, margin=rng.normal(size=50), correct=rng.integers(0, 2, 50))
    whole = st.trajectories("loss")
    for r in (np.arange(10, 20), np.array([3]), np.array([5, 2, 9]), np.arange(40, 50)[::-1], np.array([], int), np.arange(50) % 2 == 0):
        np.testing.assert_array_equal(st.trajectories("loss", r), whole[r])
    with pytest.raises(IndexError): st.trajectories("loss", np.arange(45, 55))   # past the last row: refused, not cut short
    with pytest.raises(IndexError): st.trajectories("loss", np.ones(7, bool))    # a mask of the wrong length


def test_knn_assigns_real_rows_alike_on_float16(float32_audit, tmp_path):
    "The k-NN fitted on the probes' float16 trajectories assigns (nearly) every row as on float32; the rows that differ are near-ties."
    _, cfg, st = float32_audit
    s16 = _through_float16(st, tmp_path/"s16")
    fit = st.select(role="probe", split="fit")
    query = np.flatnonzero((st.rows.split != "fit").to_numpy())   # every training row and every held-out probe
    cats = st.rows.category.to_numpy()[fit]
    report = []
    for q in ("loss", "margin"):
        G32, X32, G16, X16 = st.trajectories(q, fit), st.trajectories(q, query), s16.trajectories(q, fit), s16.trajectories(q, query)
        assert G16.dtype == np.float32
        np.testing.assert_allclose(X16, X32, rtol=U16, atol=2.0 ** -25)   # float16 rounding and nothing else
        p32 = MAPD(cfg.k, device="cpu").fit(G32, cats).predict_proba(X32)
        p16 = MAPD(cfg.k, device="cpu").fit(G16, cats).predict_proba(X16)
        c32, c16 = p32.argmax(1), p16.argmax(1)
        moved = np.abs(p16 - p32).max(1) > 0           # a neighbour changed
        gap, shift, dk = _near_ties(G32, G16, X32, X16, cfg.k)
        # a neighbour can change only where the k-th and (k+1)-th probes are closer to equidistant than float16 moved the distances
        # (2x: both can move), with float32 arithmetic of the k-NN itself as slack
        assert (gap[moved] <= 2 * shift[moved] + 1e-4 * dk[moved]).all(), f"{q}: a neighbour changed on a row that is no near-tie"
        agree = (c32 == c16).mean()
        report.append(f"{q}: {int((c32 != c16).sum())} of {len(query)} rows assigned otherwise, {int(moved.sum())} with a changed neighbour")
        assert agree >= 0.995, "; ".join(report)
    print("; ".join(report))


def test_metadata_table_alike_on_float16(float32_audit, tmp_path):
    "The table an audit writes: the same categories from a float16 store as from the float32 one, up to near-ties."
    _, cfg, st = float32_audit
    s16 = _through_float16(st, tmp_path/"s16")
    t32, t16 = metadata_table(st, k=cfg.k, device="cpu"), metadata_table(s16, k=cfg.k, device="cpu")
    natural = int(((st.rows.role == "probe") & st.rows.category.isin(["typical", "atypical"]) & (st.rows["index"] >= 0)).sum())
    assert len(t32) == len(t16) == int((st.rows.role == "train").sum()) + natural   # trained rows and natural probes
    assert (t32.category == t16.category).mean() >= 0.995
    np.testing.assert_allclose(t16.filter(like="p_").to_numpy(), t32.filter(like="p_").to_numpy(), atol=2 / cfg.k + 1e-6)  # at most a neighbour or two


def test_float32_store_opens_reads_and_resumes(tmp_path):
    """A store from before float16 (float32 in its meta.json) keeps its dtype: it opens, reads, and a run stopped in it resumes
    in float32 to exactly the trajectories of a float32 run that never stopped."""
    import torch, torch.nn.functional as F
    from dataclasses import asdict
    from mapd.data import load_digits
    from mapd.models import make_model
    from mapd.train import TrainConfig, fit
    ds = load_digits("train").subset(range(400))
    cfg = TrainConfig(epochs=4, batch_size=64, lr=0.05)
    rows = pd.DataFrame(dict(role="train", category="", split="", index=range(len(ds)), label=ds.labels.numpy()))
    old = {"loss": "float32", "margin": "float32", "correct": "uint8"}
    def run(path, **kw):
        torch.manual_seed(0)
        st = TrajectoryStore(path, "r+") if (path/"meta.json").exists() else TrajectoryStore.create(path, rows, 4, quantities=old, config={"train": asdict(cfg)})
        return fit(make_model("mlp", ds.shape, ds.n_classes), ds, cfg, store=st, quiet=True, device="cpu", **kw)
    run(tmp_path/"full")
    def dies_in_epoch_3(logits, y, rows, epoch):
        if epoch == 2: raise KeyboardInterrupt
        return F.cross_entropy(logits, y, reduction="none")
    with pytest.raises(KeyboardInterrupt): run(tmp_path/"part", loss_fn=dies_in_epoch_3)
    assert TrajectoryStore(tmp_path/"part").completed == 2
    run(tmp_path/"part")   # resumed with today's QUANTITIES (float16): the store's own dtype wins
    a, b = TrajectoryStore(tmp_path/"part"), TrajectoryStore(tmp_path/"full")
    assert a.meta["quantities"] == old and a.completed == 4
    assert (tmp_path/"part"/"loss.bin").stat().st_size == len(ds) * 4 * 4
    for q in old:
        assert a[q].dtype == np.dtype(old[q])
        np.testing.assert_array_equal(a.trajectories(q), b.trajectories(q))
    L = a.trajectories("loss")
    assert L.dtype == np.float32 and (L.astype(np.float16).astype(np.float32) != L).any()   # full float32 precision, not float16 in disguise
