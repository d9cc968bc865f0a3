"Audits of data where users keep it: a Hugging Face data set on disk (through the CLI) and any PyTorch Dataset (through run_audit)."
import json, subprocess

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from conftest import mapd_cmd
from mapd.audit import AuditConfig, run_audit

TINY = ["--epochs", "2", "--score-runs", "1", "--score-epochs", "1", "--corrupt-std", "0.5", "--n-fit", "10", "--n-heldout", "10", "--k", "3"]


def _images(n, seed=0):
    "n grey 10x10 PIL images of three classes (a bright square whose place is the class) and their labels."
    rng = np.random.default_rng(seed)
    ys = rng.permutation(np.arange(n) % 3)   # in no pattern: a table in another order than the data's would not match it
    ims = []
    for y in ys:
        a = rng.integers(0, 60, (10, 10), dtype=np.uint8)
        a[:, 3 * y:3 * y + 3] = 220
        ims.append(Image.fromarray(a))
    return ims, ys


def test_cli_audits_a_saved_hugging_face_dataset_in_its_row_order(tmp_path):
    datasets = pytest.importorskip("datasets")
    ims, ys = _images(240)
    feats = datasets.Features(photo=datasets.Image(), kind=datasets.ClassLabel(names=["left", "middle", "right"]), note=datasets.Value("string"))
    train = datasets.Dataset.from_dict(dict(photo=ims, kind=ys.tolist(), note=[f"row {i}" for i in range(240)]), features=feats)
    t_ims, t_ys = _images(30, seed=1)
    test = datasets.Dataset.from_dict(dict(photo=t_ims, kind=t_ys.tolist(), note=["t"] * 30), features=feats)
    datasets.DatasetDict(train=train, test=test).save_to_disk(str(tmp_path/"hf"))
    out = tmp_path/"a"
    r = subprocess.run(mapd_cmd() + ["audit", "--dataset", "hf", "--data-root", str(tmp_path/"hf"), *TINY, "--out", str(out), "--quiet"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    table = pd.read_parquet(out/"metadata.parquet")
    res = json.loads((out/"results.json").read_text())
    assert res["classes"] == ["left", "middle", "right"] and res["test_accuracy"] is not None   # the ClassLabel's names; the test split used
    assert len(table) == 240 and sorted(table["index"]) == list(range(240))                   # every row of the data set a row of the table
    back = table.set_index("index").sort_index()
    assert (back.label.to_numpy() == np.array(train["kind"])).all()                           # row i of the table is row i of the data set


@pytest.mark.parametrize("saved", ["save_to_disk", "parquet"])
def test_a_hugging_face_dataset_of_image_files_keeps_their_paths_and_quiet_means_quiet(tmp_path, saved):
    "Rows made from image files keep the file each came from (saved data sets record the name, Parquet the whole path), so a"
    " FiftyOne dataset of the same files matches every training row; --quiet silences datasets' own bars too."
    datasets = pytest.importorskip("datasets")
    from mapd.integrations.fiftyone import match_rows
    ims, ys = _images(240)
    files = []
    for i, im in enumerate(ims):
        f = tmp_path/"files"/f"img_{i:03d}.png"; f.parent.mkdir(exist_ok=True); im.save(f); files.append(str(f))
    ds = datasets.Dataset.from_dict(dict(image=files, label=ys.tolist())).cast_column("image", datasets.Image())
    root = tmp_path/"hf"
    if saved == "save_to_disk": ds.save_to_disk(str(root))
    else: root.mkdir(); ds.to_parquet(str(root/"train.parquet"))
    out = tmp_path/"a"
    r = subprocess.run(mapd_cmd() + ["audit", "--dataset", "hf", "--data-root", str(root), *TINY, "--out", str(out), "--quiet"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "examples/s" not in r.stderr and "Generating" not in r.stderr, r.stderr   # no bar of datasets' own under --quiet
    table = pd.read_parquet(out/"metadata.parquet")
    train = table[table.path.notna() & (table.path != "")]
    assert len(train) >= 200 and train.path.is_unique
    rows = match_rows(table.path, files)   # the samples a FiftyOne dataset of these files would hold
    matched = table.iloc[rows[rows >= 0]]
    assert (rows >= 0).sum() == len(train)
    assert (matched["index"].to_numpy() == np.flatnonzero(rows >= 0)).all()   # sample i is the table's row of data set row i


def test_cli_names_a_missing_hugging_face_column(tmp_path):
    datasets = pytest.importorskip("datasets")
    ims, ys = _images(30)
    (tmp_path/"pq").mkdir()
    datasets.Dataset.from_dict(dict(image=ims, y=ys.tolist())).to_parquet(str(tmp_path/"pq"/"train.parquet"))
    r = subprocess.run(mapd_cmd() + ["audit", "--dataset", "hf", "--data-root", str(tmp_path/"pq"), "--label-column", "label", "--out", str(tmp_path/"a")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "no column 'label'" in r.stderr and "image, y" in r.stderr, r.stderr
    assert not (tmp_path/"a").exists()   # bad input writes nothing


class Pictures(torch.utils.data.Dataset):
    "A plain PyTorch Dataset of (PIL image, label), as a user's own would be."
    classes = ["left", "middle", "right"]
    def __init__(self, n, seed=0, bad=None): self.ims, self.ys, self.bad = *_images(n, seed), bad
    def __len__(self): return len(self.ys)
    def __getitem__(self, i):
        im = self.ims[i].resize((12, 12)) if i == self.bad else self.ims[i]
        return im, int(self.ys[i])


def test_run_audit_takes_a_pytorch_dataset_of_pil_images(tmp_path):
    cfg = AuditConfig(epochs=2, score_runs=1, score_epochs=1, corrupt_std=0.5, n_fit=10, n_heldout=10, k=3, device="cpu")
    audit = run_audit(cfg, tmp_path/"a", data=(Pictures(240), Pictures(30, seed=1)), quiet=True)
    table = audit.table
    assert audit.results["classes"] == Pictures.classes and audit.results["test_accuracy"] is not None
    assert len(table) == 240
    back = table.set_index("index").sort_index()
    assert (back.label.to_numpy() == Pictures(240).ys).all()


def test_a_misfit_item_is_named_and_nothing_written(tmp_path):
    with pytest.raises(ValueError, match="item 7 has shape"):
        run_audit(AuditConfig(epochs=1), tmp_path/"a", data=Pictures(60, bad=7), quiet=True)
    assert not (tmp_path/"a").exists()
