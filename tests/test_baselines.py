"Baseline scores: hand-made cases with known answers, bad input, and the scores of a real (digits) recording."
import matplotlib
matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import torch

from mapd.baselines import (REGIONS, aum_scores, bmm_scores, cartography_scores, compare_detectors, el2n_from_model,
                            el2n_scores, fit_beta_mixture, forgetting_scores, make_threshold_samples, mean_loss_scores,
                            plot_data_map)
from mapd.data import inject_label_noise, make_synthetic
from mapd.metadata import detection_scores
from mapd.models import MLP
from mapd.store import TrajectoryStore
from mapd.train import Normalize, TrainConfig, fit


# --- hand-made cases ---------------------------------------------------------------------------

def test_mean_loss_and_flags():
    L = np.array([[4.0, 2.0], [0.0, 0.0], [1.0, 3.0], [0.5, 0.5], [3.0, 3.0]])
    d = mean_loss_scores(L, flag_fraction=0.4)
    assert d.score.tolist() == [3.0, 0.0, 2.0, 0.5, 3.0]
    assert d.flag.tolist() == [True, False, False, False, True]
    assert mean_loss_scores(L, threshold=1.0).flag.tolist() == [True, False, True, False, True]
    assert not mean_loss_scores(L).flag.any()
    assert list(mean_loss_scores(L).columns) == ["mean_loss", "score", "flag"]


def test_forgetting_counts_known_events():
    C = np.array([[1, 0, 1, 0, 1, 0, 1, 0],    # 4 events
                  [0, 0, 0, 1, 1, 1, 1, 1],    # learned late, never forgotten
                  [1, 1, 1, 1, 1, 1, 1, 0],    # forgotten at the last epoch
                  [0, 0, 0, 0, 0, 0, 0, 0],    # never learned: score E = 8
                  [1, 1, 0, 1, 1, 0, 0, 1]])   # 2 events
    d = forgetting_scores(C)
    assert d.forgetting_events.tolist() == [4, 0, 1, 0, 2]
    assert d.never_learned.tolist() == [False, False, False, True, False]
    assert d.score.tolist() == [4, 0, 1, 8, 2]
    assert d.flag.tolist() == [False, False, False, True, False]
    assert forgetting_scores(C, flag_fraction=0.4).flag.tolist() == [True, False, False, True, False]
    assert forgetting_scores(C.astype(bool)).score.tolist() == [4, 0, 1, 8, 2]


def test_cartography_known_confidence_and_variability():
    # p(label) per epoch; population std: [0.6, 1.0] -> 0.2, [0.5]*2 -> 0
    P = np.array([[0.95, 0.95], [0.6, 1.0], [0.1, 0.3], [0.5, 0.5], [0.99, 0.97], [0.05, 0.05]])
    C = (P > 0.5).astype(np.uint8)
    d = cartography_scores(-np.log(P), C, fraction=1 / 3)
    np.testing.assert_allclose(d.confidence, P.mean(1), rtol=1e-6)
    np.testing.assert_allclose(d.variability, [0.0, 0.2, 0.1, 0.0, 0.01, 0.0], atol=1e-6)
    np.testing.assert_allclose(d.correctness, [1.0, 1.0, 0.0, 0.0, 1.0, 0.0])   # 0.6 > 0.5 is correct with 2 classes
    # the 2 most variable are ambiguous; then the 2 least confident hard-to-learn, the 2 most confident easy-to-learn
    assert d.region.tolist() == ["easy-to-learn", "ambiguous", "ambiguous", "other", "easy-to-learn", "hard-to-learn"]
    assert set(d.region.cat.categories) == set(REGIONS)
    assert d.flag.tolist() == [r == "hard-to-learn" for r in d.region]
    np.testing.assert_allclose(d.score, 1 - d.confidence)


def test_plot_data_map_draws_every_point():
    P = np.random.default_rng(0).uniform(0.05, 0.95, (50, 5))
    d = cartography_scores(-np.log(P), (P > 0.5).astype(np.uint8))
    ax = plot_data_map(d)
    assert ax.get_xlabel() == "variability" and ax.get_ylabel() == "confidence"
    assert sum(len(c.get_offsets()) for c in ax.collections) == 50
    ax = plot_data_map(d.drop(columns="correctness"), hue=None)
    assert sum(len(c.get_offsets()) for c in ax.collections) == 50


def test_aum_known_area_and_threshold_rule():
    M = np.array([[1.0, 2.0, 3.0, 6.0], [-2.0, -2.0, 0.0, 0.0], [0.0, 0.0, 0.0, -4.0]])
    d = aum_scores(M)
    assert d.aum.tolist() == [3.0, -1.0, -1.0]
    assert d.score.tolist() == [-3.0, 1.0, 1.0]
    assert not d.flag.any()
    T = np.array([[-3.0] * 4, [-1.0] * 4, [-2.0] * 4])          # threshold AUMs -3, -1, -2
    d = aum_scores(M, threshold_margins=T)                     # 99th percentile of (-3, -2, -1) = -1.02
    assert d.attrs["threshold"] == pytest.approx(np.percentile([-3, -1, -2], 99))
    assert d.flag.tolist() == [False, False, False]
    d = aum_scores(M, threshold_margins=T, percentile=100)     # threshold -1: AUM <= -1 flagged
    assert d.flag.tolist() == [False, True, True]


def test_make_threshold_samples():
    ds = make_synthetic(110, n_classes=10)
    idx, y = make_threshold_samples(ds, 10, seed=3)
    assert len(idx) == 10 and (np.diff(idx) > 0).all()        # N / (K + 1)
    assert (y[idx] == 10).all() and (np.delete(y, idx) == np.delete(ds.labels.numpy(), idx)).all()
    idx2, _ = make_threshold_samples(ds.labels, 10, fraction=0.2, seed=3)
    assert len(idx2) == 22
    assert (make_threshold_samples(ds, 10, seed=3)[0] == idx).all()


def test_el2n_known_values_and_model():
    P = np.array([[0.8, 0.2], [0.2, 0.8], [0.5, 0.5]])
    d = el2n_scores(P, [0, 0, 1])
    np.testing.assert_allclose(d.el2n, [0.2 * np.sqrt(2), 0.8 * np.sqrt(2), 0.5 * np.sqrt(2)])
    assert d.flag.sum() == 0 and el2n_scores(P, [0, 0, 1], threshold=1.0).flag.tolist() == [False, True, False]
    ds = make_synthetic(40, n_classes=3, shape=(1, 4, 4))
    norm = Normalize.fit(ds.images)
    m1, m2 = MLP((1, 4, 4), 3, hidden=(8,)), MLP((1, 4, 4), 3, hidden=(8,))
    avg = el2n_from_model([m1, m2], ds.images, ds.labels, normalize=norm, device="cpu").el2n
    one = [el2n_from_model(m, ds.images, ds.labels, normalize=norm, device="cpu").el2n for m in (m1, m2)]
    np.testing.assert_allclose(avg, (one[0] + one[1]) / 2, rtol=1e-5)


def test_bmm_recovers_known_components():
    rng = np.random.default_rng(1)
    noisy = rng.random(3000) < 0.25
    z = np.where(noisy, rng.beta(8, 2, 3000), rng.beta(1.5, 9, 3000))
    d = bmm_scores(2.3 * z + 0.01)
    assert detection_scores(noisy, d.score)["auroc"] > 0.97
    assert abs(d.flag.mean() - 0.25) < 0.05
    # the fit on the clean scale finds a low and a high component
    mix = fit_beta_mixture(z)
    means = np.asarray(mix["alphas"]) / (np.asarray(mix["alphas"]) + np.asarray(mix["betas"]))
    assert means.min() < 0.25 and means.max() > 0.7
    # 2-d input: the chosen epoch
    L2 = np.stack([np.zeros(3000) + rng.random(3000), 2.3 * z], 1)
    np.testing.assert_allclose(bmm_scores(L2).loss, 2.3 * z)


def test_compare_detectors_accepts_tables_and_arrays():
    truth = np.array([1, 0, 0, 1, 0], bool)
    L = np.array([[5.0], [0.1], [0.2], [3.0], [0.3]])
    c = compare_detectors(truth, {"loss": mean_loss_scores(L), "reversed": -L[:, 0]})
    assert c.method.tolist() == ["loss", "reversed"]
    assert c.auroc.tolist() == [1.0, 0.0] and c.prevalence.tolist() == [0.4, 0.4]


# --- bad input ---------------------------------------------------------------------------------

def test_bad_input_errors():
    L = np.ones((4, 3))
    with pytest.raises(ValueError, match="must be 2-d"): mean_loss_scores(np.ones(4))
    with pytest.raises(ValueError, match="non-finite"): mean_loss_scores(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="not both"): mean_loss_scores(L, flag_fraction=0.1, threshold=1.0)
    with pytest.raises(ValueError, match=r"flag_fraction must lie in \[0, 1\], got 1.5"): mean_loss_scores(L, flag_fraction=1.5)
    with pytest.raises(ValueError, match=r"epochs must lie in \[1, 3\]"): mean_loss_scores(L, epochs=5)
    with pytest.raises(ValueError, match=r"only 0 and 1, but correct\[0, 1\] = 2"): forgetting_scores([[1, 2], [0, 1]])
    with pytest.raises(ValueError, match="correct and losses|losses and correct"): cartography_scores(L, np.ones((3, 3)))
    with pytest.raises(ValueError, match="shape of losses"): cartography_scores(L, np.ones((4, 2)))
    with pytest.raises(ValueError, match="fraction must lie in"): cartography_scores(L, fraction=0)
    with pytest.raises(ValueError, match="lacks the column 'variability'"): plot_data_map(pd.DataFrame(dict(confidence=[0.5])))
    with pytest.raises(ValueError, match="must be 2-d"): aum_scores(L, threshold_margins=np.ones(3))
    with pytest.raises(ValueError, match="percentile must lie"): aum_scores(L, threshold_margins=L, percentile=101)
    with pytest.raises(ValueError, match=r"fraction must lie in \(0, 1\)"): make_threshold_samples(np.zeros(10, int), 2, fraction=1.0)
    with pytest.raises(ValueError, match=r"must be \(N, K\) or \(S, N, K\)"): el2n_scores(np.ones(3) / 3, [0])
    with pytest.raises(ValueError, match="apply softmax"): el2n_scores(np.array([[2.0, -1.0]]), [0])
    with pytest.raises(ValueError, match="probs and labels must be same length"): el2n_scores(np.full((2, 2), 0.5), [0, 1, 0])
    with pytest.raises(ValueError, match="at least 10 losses"): bmm_scores(np.arange(5.0))
    with pytest.raises(ValueError, match="all equal"): bmm_scores(np.zeros(50))
    with pytest.raises(ValueError, match=r"must be \(N,\) or \(N, E\)"): bmm_scores(np.zeros((5, 5, 5)))
    with pytest.raises(ValueError, match="epoch 3 outside"): bmm_scores(np.random.rand(20, 3), epoch=3)
    with pytest.raises(ValueError, match=r"score of 'x' has shape \(2,\)"): compare_detectors([True, False, True], {"x": [1, 2]})
    with pytest.raises(ValueError, match="both classes"): compare_detectors([True, True], {"x": [1, 2]})


# --- a real recording --------------------------------------------------------------------------

def test_scores_of_a_real_store_find_the_flipped_labels(digits_audit):
    out, cfg, _ = digits_audit
    st = TrajectoryStore(out/"trajectories")
    train = st.select(role="train")
    tables = dict(mean_loss=mean_loss_scores(st), aum=aum_scores(st), forgetting=forgetting_scores(st),
                  cartography=cartography_scores(st), bmm=bmm_scores(st))
    for name, t in tables.items():
        assert len(t) == len(train), name
        assert t["index"].tolist() == st.rows["index"].to_numpy()[train].tolist(), name
        assert {"index", "label", "true_label", "is_noisy", "score", "flag"} <= set(t.columns), name
    noisy = tables["mean_loss"].is_noisy.to_numpy()
    assert 0.1 < noisy.mean() < 0.3                              # 20% symmetric noise
    c = compare_detectors(noisy, tables).set_index("method")
    for name in ("mean_loss", "aum", "forgetting"):
        assert c.auroc[name] > 0.6, (name, c.auroc[name])
    # the same numbers from plain arrays
    np.testing.assert_allclose(mean_loss_scores(st.trajectories("loss", train)).score, tables["mean_loss"].score)
    np.testing.assert_allclose(aum_scores(st.trajectories("margin", train)).score, tables["aum"].score)
    # cut at fewer epochs
    assert len(mean_loss_scores(st, epochs=3)) == len(train)
    # EL2N reads the probabilities the audit kept after 10% of its 15 epochs
    assert st.probs_epochs == [2]
    el = el2n_scores(st)
    assert el["index"].tolist() == tables["mean_loss"]["index"].tolist() and el.el2n.between(0, np.sqrt(2) + 1e-6).all()
    assert detection_scores(noisy, el.score)["auroc"] > 0.6
    p2 = st.probs(2, train)
    np.testing.assert_allclose(el.el2n, np.linalg.norm(p2 / p2.sum(1, keepdims=True) - np.eye(p2.shape[1])[el.label], axis=1), atol=1e-6)
    ax = plot_data_map(tables["cartography"])
    assert sum(len(col.get_offsets()) for col in ax.collections) == len(train)


def test_threshold_samples_end_to_end():
    "Pleiss et al.'s recipe on synthetic data: K+1 outputs, threshold samples at class K, flags enriched in noise."
    ds = inject_label_noise(make_synthetic(600, n_classes=4, shape=(1, 6, 6), noise=0.25), 0.25, seed=1)
    idx, y = make_threshold_samples(ds, 4, seed=0)
    torch.manual_seed(0)
    res = fit(MLP((1, 6, 6), 5, hidden=(64,)), (ds.images, torch.as_tensor(y)), TrainConfig(epochs=12, batch_size=32, lr=0.05),
              n_classes=5, device="cpu", quiet=True)
    M = res.trajectories("margin")
    rest = np.setdiff1d(np.arange(len(ds)), idx)
    d = aum_scores(M[rest], threshold_margins=M[idx])
    noisy = ds.is_noisy.numpy()[rest]
    assert detection_scores(noisy, d.score)["auroc"] > 0.8
    assert d.flag.any()
    assert noisy[d.flag.to_numpy()].mean() > 2 * noisy.mean()     # flagged examples are enriched in flipped labels
