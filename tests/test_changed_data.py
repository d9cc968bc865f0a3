"A resume continues only on the data it began with: data replaced in place (same folder, same size) is refused, naming what changed."
import os, shutil, signal, subprocess

import numpy as np
import pytest

from conftest import completed_epochs, mapd_cmd, wait_for_epochs
from mapd.data import load_digits

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
COMMON = ["--model", "mlp", "--batch-size", "32", "--scores", "speed", "--score-epochs", "1", "--n-fit", "30", "--n-heldout", "30",
          "--k", "10", "--corrupt-std", "paper", "--device", "cpu", "--quiet"]


def _npz(fn, *, labels_shift=0, flip_pixel=False, test=True):
    tr, te = load_digits("train"), load_digits("test")
    x, y = tr.images.numpy().copy(), tr.labels.numpy().copy()
    if labels_shift: y[:labels_shift] = (y[:labels_shift] + 1) % 10
    if flip_pixel: x[5, 0, 3, 3] ^= 0xFF
    arrays = dict(images=x, labels=y)
    if test: arrays.update(test_images=te.images.numpy(), test_labels=te.labels.numpy())
    np.savez(fn, **arrays)


def _kill_after_first_epoch(cmd, out):
    p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_epochs(p, out, 1)
    p.send_signal(signal.SIGKILL); p.wait()
    assert 1 <= completed_epochs(out) < 40


@pytest.mark.parametrize("change,what", [(dict(labels_shift=3), "train labels"), (dict(flip_pixel=True), "train images"),
                                         (dict(test=False), "test images, test labels")])
def test_npz_replaced_in_place(tmp_path, change, what):
    fn, out = tmp_path/"data.npz", tmp_path/"audit"
    _npz(fn)
    cmd = mapd_cmd() + ["audit", "--dataset", "npz", "--data-root", str(fn), "--epochs", "40", *COMMON, "--out", str(out)]
    _kill_after_first_epoch(cmd, out)
    _npz(fn, **change)   # the same file name, other content
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert p.returncode == 2, p.stderr
    assert f"{what} differ" in p.stderr and "another output folder" in p.stderr, p.stderr
    assert not (out/"results.json").exists()
    _npz(fn)             # the original data back: the resume goes on
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr


def test_image_folder_replaced_in_place(tmp_path):
    from PIL import Image
    root, out = tmp_path/"imgs", tmp_path/"audit"
    tr = load_digits("train")
    for i in range(len(tr)):
        d = root/"train"/str(int(tr.labels[i])); d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(tr.images[i, 0].numpy()).save(d/f"{i:04d}.png")
    cmd = mapd_cmd() + ["audit", "--dataset", "imagefolder", "--data-root", str(root), "--epochs", "40", *COMMON, "--out", str(out)]
    _kill_after_first_epoch(cmd, out)
    victim = next((root/"train"/"3").iterdir())
    Image.fromarray(255 - tr.images[0, 0].numpy()).save(victim)   # one image redrawn, the file name kept
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert p.returncode == 2 and "train images differ" in p.stderr, p.stderr
    shutil.move(str(victim), str(root/"train"/"5"/victim.name))     # ... or moved to another class
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert p.returncode == 2 and "differ" in p.stderr, p.stderr


def test_score_file_replaced_in_place(tmp_path):
    n = len(load_digits("train"))
    fn, out = tmp_path/"cscores.npz", tmp_path/"audit"
    np.savez(fn, scores=np.linspace(0, 1, n, dtype=np.float32))
    cmd = mapd_cmd() + ["audit", "--dataset", "digits", "--epochs", "40", *COMMON, "--scores", str(fn), "--out", str(out)]
    _kill_after_first_epoch(cmd, out)
    np.savez(fn, scores=np.linspace(1, 0, n, dtype=np.float32))
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert p.returncode == 2 and "score file differ" in p.stderr, p.stderr


def test_python_data_replaced(tmp_path):
    "Data passed in Python are fingerprinted too."
    from dataclasses import replace
    from mapd.audit import AuditConfig, run_audit
    from mapd.data import make_synthetic
    cfg = AuditConfig(epochs=2, batch_size=64, scores="speed", score_epochs=1, n_fit=20, n_heldout=20, k=5, corrupt_std="0.5", device="cpu")
    a = make_synthetic(500, n_classes=4, shape=(1, 8, 8), seed=1)
    run_audit(cfg, tmp_path/"a", data=(a, None), quiet=True)
    b = replace(a, labels=a.labels.roll(1))
    with pytest.raises(ValueError, match="train labels differ"):
        run_audit(cfg, tmp_path/"a", data=(b, None), quiet=True)
