"Labels that make sense: gaps are remapped with a warning, negatives and test-only labels refused, alike class names refused."
import os, subprocess, unicodedata

import numpy as np
import pytest
from PIL import Image

from conftest import mapd_cmd
from mapd.audit import AuditConfig, _check_data
from mapd.data import ImageDataset
from mapd.npz import load_npz
from mapd.image_folder import load_image_folder


def _npz(fn, labels, **extra):
    np.savez(fn, images=np.zeros((len(labels), 4, 4), np.uint8), labels=np.asarray(labels), **extra)
    return fn


def test_gaps_remapped_with_warning(tmp_path):
    fn = _npz(tmp_path/"g.npz", [0, 7, 5000, 7])
    with pytest.warns(UserWarning, match="remapped"): ds = load_npz(fn)
    assert ds.classes == ["0", "7", "5000"] and ds.labels.tolist() == [0, 1, 2, 1]


def test_one_based_remapped(tmp_path):
    with pytest.warns(UserWarning, match="remapped"): ds = load_npz(_npz(tmp_path/"o.npz", [1, 2, 3]))
    assert ds.n_classes == 3


def test_negative_and_test_only_refused(tmp_path):
    with pytest.raises(ValueError, match="negative labels"): load_npz(_npz(tmp_path/"n.npz", [0, 1, -1]))
    fn = _npz(tmp_path/"t.npz", [0, 1, 2], test_images=np.zeros((2, 4, 4), np.uint8), test_labels=np.array([1, 9]))
    assert load_npz(fn).n_classes == 3
    with pytest.raises(ValueError, match="label 9, which no training example has"): load_npz(fn, "test")


@pytest.mark.parametrize("names", [["cat", "Cat"], ["cat", "cat "], ["t shirt", "t  shirt"], [unicodedata.normalize("NFC", "été"), unicodedata.normalize("NFD", "été")], ["a", " "]])
def test_alike_names_refused(names):
    with pytest.raises(ValueError, match="class name"): ImageDataset(np.zeros((2, 1, 2, 2), np.uint8), [0, 1], names)


def test_alike_folders_refused(tmp_path):
    for k in ("Cat", "cat"):
        (tmp_path/"train"/k).mkdir(parents=True); Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path/"train"/k/"0.png")
    with pytest.raises(ValueError, match="differ only in case"): load_image_folder(tmp_path, quiet=True)


def test_class_without_training_example_refused():
    ds = ImageDataset(np.zeros((6, 1, 2, 2), np.uint8), [0, 1, 0, 1, 0, 1], ["a", "b", "c"])
    with pytest.raises(ValueError, match="no training example"): _check_data(AuditConfig(n_fit=1, n_heldout=1), ds, None)


def test_cli_test_only_label(tmp_path):
    fn = tmp_path/"d.npz"
    rng = np.random.default_rng(0)
    np.savez(fn, images=rng.integers(0, 255, (300, 8, 8), dtype=np.uint8), labels=np.arange(300) % 3,
             test_images=np.zeros((4, 8, 8), np.uint8), test_labels=np.array([0, 1, 2, 3]))
    p = subprocess.run(mapd_cmd() + ["audit", "--dataset", "npz", "--data-root", str(fn), "--out", str(tmp_path/"out"), "--device", "cpu", "--quiet"],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "no training example" in p.stderr, p.stderr
    assert not (tmp_path/"out").exists()


@pytest.mark.parametrize("c", [2, 4])
def test_npz_of_other_channel_counts_refused(tmp_path, c):
    "(N, 2, H, W) images: refused naming the channels (main: a tensor size error in training, after the folder was made)."
    fn = tmp_path/"c.npz"; np.savez(fn, images=np.zeros((6, c, 4, 4), np.uint8), labels=np.arange(6) % 2)
    with pytest.raises(ValueError, match=f"{c} channels, but images have 1"): load_npz(fn)


def test_class_names_too_few_said(tmp_path):
    fn = _npz(tmp_path/"n.npz", [0, 1, 2], class_names=np.array(["a", "b"]))
    with pytest.raises(ValueError, match="2 class_names given"): load_npz(fn)
