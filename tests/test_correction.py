"Label-noise correction and online batch selection on real data (scikit-learn's digits), and their bad input."
import numpy as np
import pytest
import torch

from mapd.correction import CorrectionConfig, make_clean_noisy_probes, with_true_labels, train_with_correction, correction_protocol
from mapd.data import inject_label_noise, load_digits
from mapd.prioritized import SelectionConfig, select_top, train_selected, irreducible_losses
from mapd.train import TrainConfig


@pytest.fixture(scope="module")
def digits():
    tr, te = load_digits("train"), load_digits("test")
    return inject_label_noise(tr, 0.4, seed=0), te


def test_mapd_correction_finds_and_fixes_flipped_labels(digits):
    noisy, test = digits
    tc = TrainConfig(epochs=10, batch_size=64, lr=0.05, weight_decay=1e-4, schedule="step", milestones=(7,), record="none")
    res = {m: train_with_correction(noisy, test, CorrectionConfig(method=m, pretrain=3, n_probe=100, k=10), tc, device="cpu", quiet=True)
           for m in ("ce", "mapd", "m_dyr_h")}
    h = res["mapd"].history
    assert h.noise_auroc.iloc[-1] > 0.85                                         # p(noisy) ranks the flipped labels
    given_right = 1 - noisy.is_noisy.float().mean().item()
    assert h.target_accuracy.iloc[-1] > given_right + 0.15                       # targets corrected towards the true class
    assert res["ce"].history.target_accuracy.iloc[-1] == pytest.approx(given_right)  # cross-entropy trains on the given labels
    assert res["m_dyr_h"].history.noise_auroc.iloc[-1] > 0.7
    assert h.correcting.sum() == 7 and not h.correcting.iloc[:3].any()


def test_probes_replace_their_sources_in_the_trained_on_set(digits):
    noisy, test = digits
    tc = TrainConfig(epochs=2, batch_size=64, lr=0.05, record="none", seed=3)
    r = train_with_correction(noisy, test, CorrectionConfig(method="mapd", pretrain=1, n_probe=100, k=10), tc, device="cpu", quiet=True)
    assert len(r.index) == len(noisy) and len(np.unique(r.index)) == len(r.index)   # no source index appears twice
    assert set(r.index) == set(noisy.index.tolist())
    assert (r.probe == 0).sum() == (r.probe == 1).sum() == 100
    probed, codes = make_clean_noisy_probes(noisy, 100, seed=3)                       # the rows the run used: its seed's
    assert np.array_equal(codes, r.probe)
    assert (probed.labels[codes == 1] != noisy.true_labels[codes == 1]).all() and (probed.labels[codes == 0] == noisy.true_labels[codes == 0]).all()
    assert torch.equal(probed.labels[codes < 0], noisy.labels[codes < 0])


def test_true_rows_control_gives_the_clean_probes_labels_and_nothing_else(digits):
    noisy, test = digits
    tc = TrainConfig(epochs=2, batch_size=64, lr=0.05, record="none", seed=5)
    ctrl = with_true_labels(noisy, 150, seed=5)
    _, codes = make_clean_noisy_probes(noisy, 150, seed=5)
    changed = (ctrl.labels != noisy.labels).numpy()
    assert changed.any() and not changed[codes != 0].any()                          # only the clean probe's rows, and some were wrong
    assert (ctrl.labels[codes == 0] == noisy.true_labels[codes == 0]).all()
    runs = {t: train_with_correction(noisy, test, CorrectionConfig(method="ce", pretrain=1, n_probe=150, true_rows=t), tc, device="cpu", quiet=True) for t in (False, True)}
    acc = {t: r.history.target_accuracy.iloc[-1] for t, r in runs.items()}          # cross-entropy's targets are the labels it trains on
    assert acc[False] == pytest.approx(1 - noisy.is_noisy.float().mean().item())
    assert acc[True] == pytest.approx(1 - ctrl.is_noisy.float().mean().item()) and acc[True] > acc[False]
    assert runs[True].probe is not None and (runs[True].probe == -1).all()


def test_correction_bad_input(digits):
    noisy, test = digits
    with pytest.raises(ValueError, match="needs at least one pretraining epoch"): CorrectionConfig(method="mapd", pretrain=0)
    with pytest.raises(ValueError, match="clean_probe must be"): CorrectionConfig(clean_probe="clean")
    with pytest.raises(ValueError, match="already carries true labels"): CorrectionConfig(method="mapd", true_rows=True)
    with pytest.raises(ValueError, match="needs ds.true_labels"): make_clean_noisy_probes(load_digits("train"), 50)
    with pytest.raises(ValueError, match="exceeds the run's 3 epochs"):
        train_with_correction(noisy, test, CorrectionConfig(pretrain=5), TrainConfig(epochs=3, record="none"), device="cpu", quiet=True)
    with pytest.raises(ValueError, match="unknown preset"): correction_protocol("imagenet")


def test_class_balanced_selection_keeps_two_per_class():
    g = torch.Generator().manual_seed(0)
    scores, labels = torch.rand(320, generator=g), torch.randint(0, 10, (320,), generator=g)
    scores[labels == 3] -= 10                                                    # class 3 never wins on score alone
    assert not (labels[select_top(scores, labels, 32)] == 3).any()
    pick = select_top(scores, labels, 32, min_per_class=2)
    assert len(pick) == 32 == len(set(pick.tolist()))
    assert all((labels[pick] == c).sum() >= 2 for c in range(10))


def test_online_selection_on_noisy_digits(digits):
    noisy, test = digits
    hold, pool = noisy.subset(np.arange(300)), noisy.subset(np.arange(300, len(noisy)))
    with pytest.raises(ValueError, match="rho_loss needs"): train_selected(pool, test, SelectionConfig(method="rho_loss"), device="cpu", quiet=True)
    with pytest.raises(ValueError, match="method must be one of"): SelectionConfig(method="random")
    IL = irreducible_losses(hold, pool, epochs=5, device="cpu")
    cfg = dict(steps=120, n_candidates=160, n_select=16, eval_every=40, n_probe=60, k=10)
    logs = {m: train_selected(pool, test, SelectionConfig(method=m, **cfg), irreducible=IL, device="cpu", quiet=True)
            for m in ("uniform", "loss", "mapd")}
    assert logs["uniform"].selected_noisy.mean() == pytest.approx(pool.is_noisy.float().mean().item(), abs=0.06)
    assert logs["loss"].selected_noisy.mean() > 0.6 > 0.4 > logs["mapd"].selected_noisy.mean()
    assert logs["mapd"].step.tolist() == [40, 80, 120]
