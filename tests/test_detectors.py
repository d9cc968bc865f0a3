"The H-CAT detectors of mapd.detectors on a tiny real training (Fashion-MNIST, 20% flipped labels): ranking, shapes, NaN, contracts, costs."
import numpy as np
import pandas as pd
import pytest
import torch

from mapd.data import find_fashion_mnist, inject_label_noise, load_fashion_mnist
from mapd.detectors import (RECORDING_DETECTORS, allsh_scores, conf_agree_scores, dataiq_scores, detector_scores, embeddings, grand_scores,
                            model_detectors, prototypicality_scores, recording_detectors, snapshot_fit, store_detector_scores, vog_scores)
from mapd.metadata import detection_scores
from mapd.models import make_model
from mapd.train import TrainConfig

N = 500


@pytest.fixture(scope="module")
def run():
    "500 Fashion-MNIST training images, 20% of the labels flipped, an MLP trained 8 epochs with its checkpoints (about 2 s on 2 cores)."
    try: find_fashion_mnist()
    except FileNotFoundError as e: pytest.skip(f"Fashion-MNIST not on this machine: {e}")
    ds = inject_label_noise(load_fashion_mnist("train").subset(np.arange(N)), 0.2, seed=0)
    torch.manual_seed(0)
    cfg = TrainConfig(epochs=8, batch_size=64, lr=0.05, record="eval", keep_probs=(2,))
    res, snaps = snapshot_fit(make_model("mlp", ds.shape, 10), ds, cfg, keep=(1, 2, 4, 6), device="cpu", quiet=True)
    return dict(ds=ds, noisy=(ds.labels != ds.true_labels).numpy(), res=res, snaps=snaps, kw=dict(normalize=res.normalize, device="cpu"))


def auroc(truth, s): return detection_scores(truth, np.asarray(s, np.float64))["auroc"]


def check_table(t, cols):
    assert len(t) == N and {"score", "flag", *cols} <= set(t.columns)
    assert np.isfinite(t.score.to_numpy(np.float64)).all() and t.flag.dtype == bool


# --- ranking: flipped above clean, where the method is meant to find them ----------------------

def test_model_based_detectors_rank_flips_above_clean(run):
    ds, snaps, kw, y = run["ds"], run["snaps"], run["kw"], run["noisy"]
    tables = {"grand": grand_scores(snaps[1], ds.images, ds.labels, **kw), "conf_agree": conf_agree_scores(snaps[8], ds.images, ds.labels, **kw),
              "prototypicality": prototypicality_scores(snaps[8], ds.images, ds.labels, **kw)}
    bars = {"grand": 0.65, "conf_agree": 0.6, "prototypicality": 0.85}   # measured 0.76, 0.70, 0.97 with this fixture
    for name, t in tables.items():
        check_table(t, [])
        assert auroc(y, t.score) > bars[name], (name, auroc(y, t.score))
        assert auroc(y, -t.score) < 0.5   # the sign: higher = more suspect


def test_recording_detectors_rank_flips_above_clean(run):
    L, y = run["res"].trajectories("loss"), run["noisy"]
    d = dataiq_scores(L)
    check_table(d, ["confidence", "aleatoric", "group"])
    assert auroc(y, d.score) > 0.9                          # measured 0.97
    assert y[d.flag].mean() > 2 * y.mean()                  # the hard group is mostly flips
    P, fit_on = np.exp(-L), np.arange(N) < 250               # the detector learns from known flips, scores the other half
    t = detector_scores(P[~fit_on], P[fit_on], y[fit_on], steps=200)
    assert len(t) == N - 250 and t.score.between(0, 1).all()
    assert auroc(y[~fit_on], t.score) > 0.85                 # measured 0.96
    told_wrong = detector_scores(P[~fit_on], P[fit_on], ~y[fit_on], steps=200)    # told the clean ones are the flips, it learns that
    assert auroc(y[~fit_on], told_wrong.score) < 0.2


def test_vog_and_allsh_contracts(run):
    "VoG and ALLSH are not label-noise detectors (VoG ranks these flips below clean, 0.27; ALLSH reads no label): shapes, signs, invariants."
    ds, snaps, kw = run["ds"], run["snaps"], run["kw"]
    v = vog_scores(snaps, ds.images, ds.labels, **kw)
    check_table(v, ["vog"])
    lab = ds.labels.numpy()
    assert all(abs(v.score[lab == k].mean()) < 1e-9 for k in range(10))            # standardised within each given label
    raw = vog_scores(snaps, ds.images, ds.labels, class_normalize=False, **kw)
    np.testing.assert_allclose(raw.score, raw.vog) and np.testing.assert_allclose(raw.vog, v.vog)
    assert (vog_scores([snaps[8]] * 3, ds.images, ds.labels, class_normalize=False, **kw).vog == 0).all()   # no change, no variance
    assert not np.allclose(vog_scores(snaps, ds.images, ds.labels, of="prob", **kw).vog, v.vog)
    a = allsh_scores(snaps[8], ds.images, **kw)
    check_table(a, ["kl"])
    assert (a.kl >= -1e-9).all() and a.kl.std() > 0
    np.testing.assert_allclose(allsh_scores(snaps[8], ds.images, seed=0, **kw).kl, a.kl)
    assert not np.allclose(allsh_scores(snaps[8], ds.images, seed=1, **kw).kl, a.kl)


# --- exactness and side effects -------------------------------------------------------------

def test_grand_is_the_per_example_gradient_norm(run):
    ds, kw = run["ds"], run["kw"]
    for name in ("mlp", "cnn"):   # the MLP by the outer-product identity, the CNN by torch.func.vmap
        torch.manual_seed(1)
        m = make_model(name, ds.shape, 10).eval()
        g = grand_scores(m, ds.images[:6], ds.labels[:6], **kw).grand.to_numpy()
        x = run["res"].normalize(ds.images[:6])
        for i in range(6):
            m.zero_grad()
            torch.nn.functional.cross_entropy(m(x[i:i + 1]), ds.labels[i:i + 1]).backward()
            ref = torch.cat([p.grad.flatten() for p in m.parameters()]).norm().item()
            assert g[i] == pytest.approx(ref, rel=1e-4), (name, i)


def test_mc_dropout_leaves_the_model_as_it_was(run):
    ds, m, kw = run["ds"], run["snaps"][8], run["kw"]
    before = {k: v.clone() for k, v in m.state_dict().items()}
    x = run["res"].normalize(ds.images[:50])
    with torch.no_grad(): out = m(x)
    c = conf_agree_scores(m, ds.images, ds.labels, passes=4, **kw)
    assert c.agreement.between(0, 1).all() and (c.agreement < 1).any()             # dropout is on during the passes
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert not any(mod._forward_pre_hooks for mod in m.modules())
    with torch.no_grad(): assert torch.equal(m(x), out)                            # and off after them
    assert not any(mod._forward_hooks for mod in m.modules())
    embeddings(m, ds.images[:5], **kw)
    assert not any(mod._forward_pre_hooks for mod in m.modules())


def test_snapshots_are_the_model_at_those_epochs(run):
    snaps = run["snaps"]
    assert list(snaps) == [1, 2, 4, 6, 8]
    w = [snaps[e].net[1].weight for e in snaps]
    assert all(not torch.equal(a, b) for a, b in zip(w, w[1:]))
    assert torch.equal(snaps[8].net[1].weight.cpu(), run["res"].model.net[1].weight.detach().cpu())   # the last one is the trained model


# --- bad input --------------------------------------------------------------------------------

def test_bad_input(run):
    ds, snaps, kw = run["ds"], run["snaps"], run["kw"]
    L = run["res"].trajectories("loss")
    with pytest.raises(ValueError, match="low < high"): dataiq_scores(L, confidence=(0.9, 0.1))
    with pytest.raises(ValueError, match="aleatoric_percentile"): dataiq_scores(L, aleatoric_percentile=101)
    with pytest.raises(ValueError, match="both kinds"): detector_scores(L, L[:20], np.zeros(20, bool))
    with pytest.raises(ValueError, match="same E"): detector_scores(L, L[:20, :3], np.arange(20) < 5)
    with pytest.raises(ValueError, match="at least 2 checkpoints"): vog_scores([snaps[8]], ds.images, ds.labels, **kw)
    with pytest.raises(ValueError, match="of must be"): vog_scores(snaps, ds.images, ds.labels, of="loss", **kw)
    with pytest.raises(ValueError, match="same length"): grand_scores(snaps[1], ds.images, ds.labels[:10], **kw)
    with pytest.raises(ValueError, match="passes"): conf_agree_scores(snaps[8], ds.images, ds.labels, passes=1, **kw)
    with pytest.raises(ValueError, match="keep must name epochs"): snapshot_fit(make_model("mlp", ds.shape, 10), ds, TrainConfig(epochs=2), keep=(3,))


# --- the harness: every detector over a store's rows, with its cost ---------------------------

def test_recording_detectors_on_an_audit_store(digits_audit):
    from mapd.audit import Audit
    out, _, _ = digits_audit
    st = Audit.load(out).store
    scores, cost = recording_detectors(st)
    assert set(scores) == set(RECORDING_DETECTORS) and list(cost.method) == list(scores)
    train = (st.rows.role == "train").to_numpy()
    for name, s in scores.items():   # every row, probes too, as baselines.recording_scores
        assert s.shape == (len(st.rows),) and np.isfinite(s).all(), name
    noisy = (st.rows.label != st.rows.true_label).to_numpy()[train]
    assert auroc(noisy, scores["Detector (LSTM on random-label probes)"][train]) > 0.7
    assert (cost.seconds >= 0).all() and (cost.extra_passes.str.startswith("none")).all()
    d = store_detector_scores(st)
    assert len(d) == len(st.rows)
    q = dataiq_scores(st)   # a store: its training rows, with their index and labels as the baselines' tables
    assert len(q) == train.sum() and {"index", "label", "is_noisy"} <= set(q.columns) and auroc(q.is_noisy, q.score) > 0.7


def test_model_detectors_cost_table(run):
    s, cost = model_detectors("mlp", run["ds"], TrainConfig(epochs=4, batch_size=64, lr=0.05), vog_checkpoints=3, mc_passes=3, device="cpu", quiet=True)
    assert list(cost.method) == ["(extra training for the model-based detectors)", "VoG", "GraNd (epoch 1)", "Conf-Agree (MC dropout)", "prototypicality", "ALLSH (augmentation KL)"]
    assert all(v.shape == (N,) and np.isfinite(v).all() for v in s.values())
    assert (cost.seconds > 0).all() and cost.extra_passes.str.contains("backward|forward|epochs").all()
    assert "3 backward" in cost.set_index("method").extra_passes["VoG"] and "3 forward" in cost.set_index("method").extra_passes["Conf-Agree (MC dropout)"]
