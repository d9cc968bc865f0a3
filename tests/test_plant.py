"`mapd.plant` on real Fashion-MNIST; the notebook nbs/01c_plant.ipynb holds the synthetic checks and the errors."
import numpy as np
import pytest
import torch

from mapd.data import ASYMMETRIC_PAIRS, load_digits, load_fashion_mnist
from mapd.plant import PLANT_KINDS, plant_problems, planted_summary


@pytest.fixture(scope="module")
def fm():
    "The first 5,000 Fashion-MNIST training images."
    try: return load_fashion_mnist().subset(range(5000))
    except FileNotFoundError as e: pytest.skip(f"Fashion-MNIST not on this machine: {e}")


def _rows(images: torch.Tensor) -> set[bytes]:
    return {x.numpy().tobytes() for x in images}


def test_ood_images_come_from_the_digits_test_split(fm):
    pl, truth = plant_problems(fm, {"ood": 0.05}, seed=2)
    ood = torch.tensor((truth.planted == "ood").to_numpy())
    assert int(ood.sum()) == 250
    planted = [x.numpy().tobytes() for x in pl.images[ood]]
    assert len(set(planted)) == 250  # drawn without replacement
    assert set(planted) <= _rows(load_digits("test", size=28).images)
    assert not set(planted) & _rows(load_digits("train", size=28).images)  # disjoint from a probe made of the train split
    assert torch.equal(pl.labels, fm.labels) and torch.equal(pl.images[~ood], fm.images[~ood])


def test_corrupted_noise_has_the_asked_std(fm):
    # a small std on mid-grey pixels: clipping at 0 or 1 is 6 standard deviations away, so the differences are the noise itself
    pl, truth = plant_problems(fm, {"corrupted": 0.2}, corrupt_std=0.05, seed=1)
    c = torch.tensor((truth.planted == "corrupted").to_numpy())
    x0, x1 = fm.images[c].float() / 255, pl.images[c].float() / 255
    mid = (x0 > 0.3) & (x0 < 0.7)
    d = (x1 - x0)[mid]
    assert mid.sum() > 10_000 and abs(d.mean()) < 0.002 and abs(d.std() - 0.05) < 0.0025
    # the default std (0.5) on black pixels: half are clipped to 0, the rest are half-normal with median 0.674 std
    pl, truth = plant_problems(fm, {"corrupted": 0.2}, seed=1)
    c = torch.tensor((truth.planted == "corrupted").to_numpy())
    x0, x1 = fm.images[c], pl.images[c].float() / 255
    out = x1[x0 == 0]
    assert abs((out == 0).float().mean() - 0.5) < 0.02
    assert abs(out[out > 0].median() - 0.6745 * 0.5) < 0.02
    assert torch.equal(pl.labels, fm.labels) and (pl.images[c] != fm.images[c]).flatten(1).any(1).all()


def test_zoomed_images_keep_labels(fm):
    pl, truth = plant_problems(fm, {"atypical": 0.1}, seed=3)
    a = torch.tensor((truth.planted == "atypical").to_numpy())
    assert a.sum() == 500 and torch.equal(pl.labels, fm.labels) and torch.equal(pl.true_labels, fm.labels)
    assert (truth.label == truth.original_label).all() and set(truth.category[a.numpy()]) == {"atypical"}
    assert (pl.images[a] != fm.images[a]).flatten(1).any(1).all() and torch.equal(pl.images[~a], fm.images[~a])
    # zooming into a crop of the object leaves less black background than the full image has
    dark = lambda x: (x < 10).float().mean()
    assert dark(pl.images[a]) < dark(fm.images[a])


def test_every_kind_at_once(fm):
    pl, truth = plant_problems(fm, seed=0)  # PLANT_DEFAULTS; flip_instance trains 3 small cross-validation models
    s = planted_summary(truth)
    assert list(s.index) == list(PLANT_KINDS) and (s["count"] == 100).all()
    asym = (truth.planted == "flip_asymmetric").to_numpy()
    pairs = ASYMMETRIC_PAIRS["fashion_mnist"]
    assert [pairs[o] for o in truth.original_label[asym]] == truth.label[asym].tolist()
    flips = truth.planted.str.startswith("flip").to_numpy()
    assert (truth.label[flips] != truth.original_label[flips]).all() and (truth.label[~flips] == truth.original_label[~flips]).all()
    assert np.array_equal(pl.is_noisy.numpy(), flips)
