"Bad input, the published layouts (written here by hand, file by file) and hand-computed metrics for `mapd.groups`."
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from mapd.data import ImageDataset, find_fashion_mnist
from mapd.groups import (CLOTHING1M_CLASSES, CLOTHING1M_GROUPS, SPURIOUS_COLORS, WATERBIRDS_GROUPS, GroupedDataset,
                         load_celeba, load_clothing1m, load_images, load_spurious_fashion_mnist,
                         load_waterbirds, make_spurious, paint_background, read_celeba_attributes)
from mapd.group_metrics import detection_prf, jtt_error_set, upsample_indices, worst_group_accuracy


def save_image(path: Path, rgb=(10, 20, 30), size=(20, 16)) -> Path:
    "A small single-colour image; the format follows the suffix."
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, rgb).save(path)
    return path


def has_fashion_mnist() -> bool:
    try: find_fashion_mnist(); return True
    except FileNotFoundError: return False


# ---------------------------------------------------------------- GroupedDataset

def toy(n=6) -> GroupedDataset:
    ds = ImageDataset(np.arange(n * 3 * 2 * 2, dtype=np.uint8).reshape(n, 3, 2, 2), np.arange(n) % 2, ["a", "b"], "toy")
    return GroupedDataset(ds, np.arange(n) % 4, ["a/x", "a/y", "b/x", "b/y"], pd.DataFrame(dict(f=[f"f{i}" for i in range(n)])))


def test_grouped_dataset_bad_input():
    ds = toy().ds
    with pytest.raises(TypeError, match="ds must be an ImageDataset, but is a tuple"):
        GroupedDataset((ds.images, ds.labels), [0] * 6, ["g"])
    with pytest.raises(ValueError, match="group_names is empty"):
        GroupedDataset(ds, [0] * 6, [])
    with pytest.raises(ValueError, match=r"groups must lie in \[0, 2\), but 1 do not: groups\[3\] = 5"):
        GroupedDataset(ds, [0, 1, 0, 5, 0, 1], ["g", "h"])
    with pytest.raises(ValueError, match="examples is length 6 and groups is length 5"):
        GroupedDataset(ds, [0] * 5, ["g"])
    with pytest.raises(TypeError, match="attributes must be a pandas DataFrame"):
        GroupedDataset(ds, [0] * 6, ["g"], {"f": list(range(6))})
    with pytest.raises(ValueError, match="examples is length 6 and attributes is length 2"):
        GroupedDataset(ds, [0] * 6, ["g"], pd.DataFrame(dict(f=[1, 2])))


def test_grouped_dataset_subset_keeps_everything_aligned():
    gd = toy()
    for idx in ([4, 1], np.array([False, True, False, False, True, False])):
        sub = gd.subset(idx)
        order = [4, 1] if isinstance(idx, list) else [1, 4]
        assert sub.ds.index.tolist() == order and sub.groups.tolist() == [i % 4 for i in order]
        assert sub.attributes.f.tolist() == [f"f{i}" for i in order] and sub.attributes.index.tolist() == [0, 1]
        assert torch.equal(sub.ds.images, gd.ds.images[order])
    assert len(gd.subset([])) == 0
    with pytest.raises(ValueError, match="has 2 for 6 examples"):
        gd.subset(np.array([True, False]))


def test_grouped_dataset_counts_and_repr():
    gd = toy(6)  # groups 0 1 2 3 0 1
    c = gd.group_counts()
    assert c.n.tolist() == [2, 2, 1, 1] and c.name.tolist() == gd.group_names and np.isclose(c.share.sum(), 1)
    assert gd.subset([2, 3]).group_counts().n.tolist() == [0, 0, 1, 1]  # empty groups stay in the table
    assert repr(gd) == "GroupedDataset('toy', 6 x (3, 2, 2) uint8, 2 classes; groups a/x: 2, a/y: 2, b/x: 1, b/y: 1)"
    assert GroupedDataset(gd.ds, [0] * 6, ["all"]).attributes.shape == (6, 0)


# ---------------------------------------------------------------- reading images

def test_load_images_centre_crop_and_modes(tmp_path):
    wide = np.zeros((10, 30, 3), np.uint8)
    wide[:, :10] = (0, 255, 0); wide[:, 10:20] = (255, 0, 0); wide[:, 20:] = (0, 0, 255)
    Image.fromarray(wide).save(tmp_path / "wide.png")
    Image.fromarray(np.full((12, 12), 77, np.uint8)).save(tmp_path / "grey.png")
    Image.new("RGBA", (9, 9), (1, 2, 3, 0)).save(tmp_path / "rgba.png")
    Image.new("P", (9, 9), 0).save(tmp_path / "palette.gif")
    x = load_images([tmp_path / f for f in ("wide.png", "grey.png", "rgba.png", "palette.gif")], 6)
    assert x.shape == (4, 3, 6, 6) and x.dtype == torch.uint8
    assert (x[0, 0] == 255).all() and (x[0, 1:] == 0).all()  # only the red middle third is left
    assert (x[1] == 77).all() and (x[2, :, 3, 3] == torch.tensor([1, 2, 3])).all()


def test_load_images_large_jpeg_threads_and_errors(tmp_path):
    big = save_image(tmp_path / "big.jpg", (200, 100, 50), (640, 480))
    small = save_image(tmp_path / "small.png", (5, 6, 7), (3, 5))  # upscaled
    one, two = load_images([big, small, big], 16), load_images([big, small, big], 16, workers=2)
    assert torch.equal(one, two)
    assert (one[0].float().mean((1, 2)) - torch.tensor([200., 100., 50.])).abs().max() < 4  # JPEG is lossy
    assert (one[1] == torch.tensor([5, 6, 7])[:, None, None]).all()
    with pytest.raises(ValueError, match="size must be a positive int"):
        load_images([big], 0)
    with pytest.raises(ValueError, match="size must be a positive int"):
        load_images([big], 16.0)
    with pytest.raises(ValueError, match="workers must be 0"):
        load_images([big], 8, workers=-1)
    with pytest.raises(FileNotFoundError, match=r"image .*missing\.jpg not found"):
        load_images([big, tmp_path / "missing.jpg"], 8, workers=2)
    (tmp_path / "trunc.jpg").write_bytes(big.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"image .*trunc\.jpg cannot be read"):
        load_images([tmp_path / "trunc.jpg"], 8)
    assert load_images([], 8).shape == (0, 3, 8, 8)


# ---------------------------------------------------------------- Clothing1M

NOISY = {"images/0/00/a.jpg": 3, "images/0/00/b.jpg": 5, "images/1/20/c.jpg": 0, "images/1/20/d.jpg": 13, "images/2/31/e.jpg": 7}
CLEAN = {"images/0/00/b.jpg": 5, "images/1/20/c.jpg": 7, "images/9/99/f.jpg": 1, "images/9/99/g.jpg": 12, "images/9/99/h.jpg": 2}
KEYS = {"noisy_train": list(NOISY), "clean_train": ["images/9/99/f.jpg", "images/1/20/c.jpg"],
        "clean_val": ["images/9/99/g.jpg"], "clean_test": ["images/9/99/h.jpg"]}


def write_clothing1m(root: Path, *, annotations: str = "annotations", names=None) -> Path:
    "Clothing1M's published layout: images/<a>/<bc>/*.jpg, the kv label files and key lists (in `annotations`)."
    for k in set(NOISY) | set(CLEAN): save_image(root / k, (10 * len(k), 0, 0), (40, 30))
    ann = root / annotations
    ann.mkdir(parents=True, exist_ok=True)
    (ann / "noisy_label_kv.txt").write_text("".join(f"{k} {v}\n" for k, v in NOISY.items()))
    (ann / "clean_label_kv.txt").write_text("".join(f"{k} {v}\n" for k, v in CLEAN.items()))
    for split, keys in KEYS.items(): (ann / f"{split}_key_list.txt").write_text("".join(f"{k}\n" for k in keys))
    if names is not None: (ann / "category_names_eng.txt").write_text("\n".join(names) + "\n")
    return root


@pytest.mark.parametrize("annotations", ["annotations", "."])
def test_clothing1m_noisy_train(tmp_path, annotations):
    gd = load_clothing1m(write_clothing1m(tmp_path, annotations=annotations), size=12)
    assert gd.ds.name == "clothing1m" and gd.ds.shape == (3, 12, 12) and gd.ds.classes == CLOTHING1M_CLASSES
    assert gd.ds.labels.tolist() == [3, 5, 0, 13, 7]
    assert gd.ds.true_labels.tolist() == [3, 5, 7, 13, 7]  # the checked label of c; the noisy one where none was checked
    assert gd.groups.tolist() == [2, 0, 1, 2, 2] and gd.group_names == CLOTHING1M_GROUPS
    assert gd.ds.is_noisy.tolist() == [False, False, True, False, False]
    assert gd.attributes.verified.tolist() == [False, True, True, False, False]
    assert gd.attributes.clean_label.tolist() == [-1, 5, 7, -1, -1] and gd.attributes.path.tolist() == KEYS["noisy_train"]
    assert gd.ds.index.tolist() == [0, 1, 2, 3, 4]
    assert ((gd.ds.images[0, 0].float() - 170).abs() < 5).all()  # images/0/00/a.jpg: 17 characters, red 170 (JPEG is lossy)


def test_clothing1m_clean_splits_limit_and_verified_only(tmp_path):
    root = write_clothing1m(tmp_path)
    tr = load_clothing1m(root, "clean_train", size=8)
    assert tr.ds.labels.tolist() == [1, 7] and tr.ds.true_labels is None and tr.groups.tolist() == [0, 0]
    assert tr.attributes.noisy_label.tolist() == [-1, 0]  # c's noisy label was 0
    assert load_clothing1m(root, "clean_val", size=8).ds.labels.tolist() == [12]
    assert load_clothing1m(root, "clean_test", size=8).ds.labels.tolist() == [2]
    assert load_clothing1m(root, limit=2, size=8).ds.labels.tolist() == [3, 5]
    assert len(load_clothing1m(root, limit=0, size=8)) == 0
    v = load_clothing1m(root, verified_only=True, size=8)
    assert v.ds.index.tolist() == [1, 2] and v.groups.tolist() == [0, 1]
    assert load_clothing1m(root, verified_only=True, limit=1, size=8).ds.index.tolist() == [1]
    with pytest.raises(ValueError, match="verified_only applies to split 'noisy_train'"):
        load_clothing1m(root, "clean_val", verified_only=True)
    with pytest.raises(ValueError, match=r"split must be one of 'noisy_train', 'clean_train', 'clean_val', 'clean_test', but is 'train'"):
        load_clothing1m(root, "train")
    with pytest.raises(ValueError, match="limit must be None .* but is -1"):
        load_clothing1m(root, limit=-1)


def test_clothing1m_category_names(tmp_path):
    names = [f"c{i}" for i in range(14)]
    assert load_clothing1m(write_clothing1m(tmp_path / "a", names=names), size=8).ds.classes == names
    with pytest.raises(ValueError, match="category_names_eng.txt should name 14 classes, one a line, but names 3"):
        load_clothing1m(write_clothing1m(tmp_path / "b", names=["x", "y", "z"]))


def test_clothing1m_missing_and_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="Clothing1M root .*nowhere is not a folder"):
        load_clothing1m(tmp_path / "nowhere")
    root = write_clothing1m(tmp_path)
    (root / "annotations" / "clean_label_kv.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"clean_label_kv.txt not found: looked for .* Expected layout: root/images/"):
        load_clothing1m(root)
    root = write_clothing1m(tmp_path / "b")
    (root / "images/1/20/d.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"image .*images/1/20/d.jpg not found. Expected layout"):
        load_clothing1m(root)
    root = write_clothing1m(tmp_path / "c")
    (root / "annotations" / "noisy_label_kv.txt").write_text("images/0/00/a.jpg 3\nimages/0/00/b.jpg\n")
    with pytest.raises(ValueError, match=r"noisy_label_kv.txt line 2 should be 'image_path label'.*but is 'images/0/00/b.jpg'"):
        load_clothing1m(root)
    (root / "annotations" / "noisy_label_kv.txt").write_text("images/0/00/a.jpg 3\n\nimages/0/00/b.jpg 14\n")
    with pytest.raises(ValueError, match=r"line 3: label 14 is outside \[0, 14\)"):
        load_clothing1m(root)
    (root / "annotations" / "noisy_label_kv.txt").write_text("images/0/00/a.jpg 3\n")
    with pytest.raises(ValueError, match=r"4 images of noisy_train_key_list.txt have no label in noisy_label_kv.txt, e.g. 'images/0/00/b.jpg'"):
        load_clothing1m(root)


# ---------------------------------------------------------------- Waterbirds

WB_ROWS = [  # img_id, img_filename, y, split, place
    (1, "001.Black_footed_Albatross/a1.jpg", 1, 0, 1), (2, "001.Black_footed_Albatross/a2.jpg", 1, 0, 0),
    (3, "002.Laysan_Albatross/b1.jpg", 1, 1, 1), (4, "010.Red_winged_Blackbird/c1.jpg", 0, 0, 0),
    (5, "010.Red_winged_Blackbird/c2.jpg", 0, 2, 1), (6, "010.Red_winged_Blackbird/c3.jpg", 0, 0, 1),
    (7, "002.Laysan_Albatross/b2.jpg", 1, 2, 0)]


def write_waterbirds(root: Path, rows=WB_ROWS) -> Path:
    "Waterbirds' published layout: metadata.csv (img_id,img_filename,y,split,place,place_filename) and the images."
    lines = ["img_id,img_filename,y,split,place,place_filename"]
    for i, f, y, s, p in rows:
        save_image(root / f, (0, 100 * y, 100 * p), (30, 24))
        lines.append(f"{i},{f},{y},{s},{p},/o/ocean/00001.jpg")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


def test_waterbirds_splits_groups_and_index(tmp_path):
    root = write_waterbirds(tmp_path)
    tr = load_waterbirds(root, size=10)
    assert tr.ds.name == "waterbirds" and tr.ds.classes == ["landbird", "waterbird"] and tr.ds.shape == (3, 10, 10)
    assert tr.ds.labels.tolist() == [1, 1, 0, 0] and tr.groups.tolist() == [3, 2, 0, 1]
    assert [tr.group_names[g] for g in tr.groups] == ["waterbird/water", "waterbird/land", "landbird/land", "landbird/water"]
    assert tr.group_names == WATERBIRDS_GROUPS and tr.ds.index.tolist() == [0, 1, 3, 5]  # rows of metadata.csv
    assert tr.attributes.img_id.tolist() == [1, 2, 4, 6] and set(tr.attributes.split) == {"train"}
    assert "place_filename" in tr.attributes
    assert (tr.ds.images[0, 1:].float().mean((1, 2)) - torch.tensor([100., 100.])).abs().max() < 3  # waterbird on water
    va, te = load_waterbirds(root, "val", size=10), load_waterbirds(root, "test", size=10)
    assert va.ds.index.tolist() == [2] and va.groups.tolist() == [3]
    assert te.ds.index.tolist() == [4, 6] and te.groups.tolist() == [1, 2]
    assert load_waterbirds(root, limit=2, size=10).ds.index.tolist() == [0, 1]


@pytest.mark.parametrize("sub", ["waterbirds_v1.0", "waterbird_complete95_forest2water2"])
def test_waterbirds_found_in_published_folder(tmp_path, sub):
    write_waterbirds(tmp_path / sub)
    assert len(load_waterbirds(tmp_path, "test", size=8)) == 2


def test_waterbirds_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"metadata.csv not found: looked for .*Expected layout: root/metadata.csv with columns img_id"):
        load_waterbirds(tmp_path)
    root = write_waterbirds(tmp_path / "a")
    with pytest.raises(ValueError, match="split must be one of 'train', 'val', 'test', but is 'valid'"):
        load_waterbirds(root, "valid")
    (root / WB_ROWS[1][1]).unlink()
    with pytest.raises(FileNotFoundError, match=r"image .*a2.jpg not found. Expected layout"):
        load_waterbirds(root)
    assert len(load_waterbirds(root, "test", size=8)) == 2  # another split does not need that image
    root = write_waterbirds(tmp_path / "b", WB_ROWS[:3] + [(9, "x/y.jpg", 2, 0, 0)])
    with pytest.raises(ValueError, match=r"metadata.csv: column 'y' must hold \[0, 1\], but row 3 holds 2 \(1 bad rows\)"):
        load_waterbirds(root)
    pd.read_csv(root / "metadata.csv").drop(columns="place").to_csv(root / "metadata.csv", index=False)
    with pytest.raises(ValueError, match=r"metadata.csv lacks columns \['place'\]"):
        load_waterbirds(root)


# ---------------------------------------------------------------- CelebA

ATTRS = ["5_o_Clock_Shadow", "Blond_Hair", "Male", "Smiling"]
CELEB = [  # image, attributes (-1/1), partition
    ("000001.jpg", [-1, 1, -1, 1], 0), ("000002.jpg", [1, 1, 1, -1], 0), ("000003.jpg", [1, -1, 1, 1], 1),
    ("000004.jpg", [-1, -1, -1, -1], 0), ("000005.jpg", [-1, -1, 1, 1], 2), ("000006.jpg", [-1, 1, 1, 1], 0)]


def write_celeba(root: Path, *, txt: bool = False, img_dir: str = "img_align_celeba") -> Path:
    "CelebA in Kaggle's layout (csv files) or the original release's (Anno/ and Eval/ txt files)."
    for name, a, _ in CELEB: save_image(root / img_dir / name, (40 * (a[1] + 2), 0, 40 * (a[2] + 2)), (178, 218))
    if txt:
        (root / "Anno").mkdir(parents=True, exist_ok=True); (root / "Eval").mkdir(exist_ok=True)
        rows = "".join(f"{n}" + "".join(f" {v:>2d}" for v in a) + "\n" for n, a, _ in CELEB)
        (root / "Anno" / "list_attr_celeba.txt").write_text(f"{len(CELEB)}\n" + " ".join(ATTRS) + " \n" + rows)
        (root / "Eval" / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, _, p in CELEB))
    else:
        (root / "list_attr_celeba.csv").write_text("image_id," + ",".join(ATTRS) + "\n" + "".join(f"{n}," + ",".join(map(str, a)) + "\n" for n, a, _ in CELEB))
        (root / "list_eval_partition.csv").write_text("image_id,partition\n" + "".join(f"{n},{p}\n" for n, _, p in CELEB))
    return root


@pytest.mark.parametrize("txt,img_dir", [(False, "img_align_celeba"), (False, "img_align_celeba/img_align_celeba"),
                                         (True, "Img/img_align_celeba")])
def test_celeba_layouts_labels_and_groups(tmp_path, txt, img_dir):
    gd = load_celeba(write_celeba(tmp_path, txt=txt, img_dir=img_dir), size=8)
    assert gd.ds.name == "celeba" and gd.ds.classes == ["not Blond_Hair", "Blond_Hair"] and gd.ds.shape == (3, 8, 8)
    assert gd.ds.labels.tolist() == [1, 1, 0, 1] and gd.groups.tolist() == [2, 3, 0, 3]
    assert gd.group_names == ["not Blond_Hair/not Male", "not Blond_Hair/Male", "Blond_Hair/not Male", "Blond_Hair/Male"]
    assert gd.ds.index.tolist() == [0, 1, 3, 5]
    assert gd.attributes.image_id.tolist() == ["000001.jpg", "000002.jpg", "000004.jpg", "000006.jpg"]
    assert gd.attributes.Smiling.tolist() == [1, 0, 0, 1] and gd.attributes.Smiling.dtype == np.int8
    assert gd.ds.images[1, 0, 4, 4] > 100 and gd.ds.images[2, 0, 4, 4] < 60  # blond is painted red 120, not blond red 40


def test_celeba_other_splits_and_attributes(tmp_path):
    root = write_celeba(tmp_path)
    va = load_celeba(root, "val", size=8)
    assert va.ds.index.tolist() == [2] and va.groups.tolist() == [1]
    te = load_celeba(root, "test", target="Smiling", spurious="5_o_Clock_Shadow", size=8)
    assert te.ds.labels.tolist() == [1] and te.groups.tolist() == [2] and te.group_names[3] == "Smiling/5_o_Clock_Shadow"
    assert load_celeba(root, limit=1, size=8).ds.index.tolist() == [0]


def test_read_celeba_attributes_txt_and_csv_agree(tmp_path):
    a, b = read_celeba_attributes(write_celeba(tmp_path / "a", txt=True) / "Anno/list_attr_celeba.txt"), \
        read_celeba_attributes(write_celeba(tmp_path / "b") / "list_attr_celeba.csv")
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["image_id", *ATTRS] and a.Male.tolist() == [0, 1, 1, 0, 1, 1]


def test_celeba_bad_input(tmp_path):
    root = write_celeba(tmp_path)
    with pytest.raises(ValueError, match=r"target='Blond_hair' is not an attribute of .*list_attr_celeba.csv; did you mean 'Blond_Hair'\?"):
        load_celeba(root, target="Blond_hair")
    with pytest.raises(ValueError, match="spurious='Eyeglasses' is not an attribute .*; its attributes are 5_o_Clock_Shadow, Blond_Hair, Male, Smiling"):
        load_celeba(root, spurious="Eyeglasses")
    with pytest.raises(ValueError, match="target and spurious must be different attributes, but both are 'Male'"):
        load_celeba(root, target="Male")
    with pytest.raises(ValueError, match="split must be one of 'train', 'val', 'test'"):
        load_celeba(root, "validation")
    (root / "list_eval_partition.csv").write_text("image_id,partition\n000001.jpg,0\n000009.jpg,0\n")
    with pytest.raises(ValueError, match=r"1 images of list_eval_partition.csv have no row in list_attr_celeba.csv, e.g. '000009.jpg'"):
        load_celeba(root)
    (root / "list_eval_partition.csv").write_text("image_id,partition\n000001.jpg,3\n")
    with pytest.raises(ValueError, match=r"column 'partition' must hold \[0, 1, 2\], but row 0 holds 3"):
        load_celeba(root)
    (root / "list_eval_partition.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"list_eval_partition.csv \(or .txt\) not found .*Expected layout: root/img_align_celeba"):
        load_celeba(root)


def test_celeba_bad_files(tmp_path):
    root = write_celeba(tmp_path / "a", txt=True, img_dir="elsewhere")
    with pytest.raises(FileNotFoundError, match="img_align_celeba not found: looked for"):
        load_celeba(root)
    p = root / "Anno/list_attr_celeba.txt"
    lines = p.read_text().splitlines()
    p.write_text("\n".join(lines[:-2]) + "\n")  # truncated: 6 announced, 4 rows
    with pytest.raises(ValueError, match="starts with '6', which should be its number of images \\(4 rows follow\\): truncated"):
        read_celeba_attributes(p)
    p.write_text("\n".join(["1", lines[1], lines[2].replace(" 1 ", " 2 ", 1)]) + "\n")
    with pytest.raises(ValueError, match=r"attributes must be -1/1 \(or 0/1\), but row 0 \(000001.jpg\) has .* = 2"):
        read_celeba_attributes(p)


# ---------------------------------------------------------------- the Fashion-MNIST stand-in

def grey(labels, hw=4, value=0) -> ImageDataset:
    labels = np.asarray(labels)
    x = np.full((len(labels), 1, hw, hw), value, np.uint8)
    return ImageDataset(x, labels, [f"c{k}" for k in range(10)], "grey", np.arange(len(labels)) + 100)


def test_paint_background_formula():
    x = torch.tensor([0, 255, 128, 51, 200], dtype=torch.uint8).reshape(5, 1, 1, 1)
    out = paint_background(x, [0, 1, 0, 1, 0])
    red, green = SPURIOUS_COLORS["red"], SPURIOUS_COLORS["green"]
    assert out[:, :, 0, 0].tolist() == [list(red), [255, 255, 255], [round(128 + 127 / 255 * c) for c in red],
                                         [round(51 + 0.8 * c) for c in green], [243, 209, 209]]  # 200 + 55 / 255 * (200, 40, 40)
    with pytest.raises(ValueError, match=r"images must be \(N, 1, H, W\) uint8 grey images, but have shape \(4, 3, 1, 1\)"):
        paint_background(x.expand(5, 3, 1, 1)[:4], [0] * 4)
    with pytest.raises(ValueError, match=r"attribute must lie in \[0, 2\)"):
        paint_background(x, [0, 1, 2, 0, 0])
    with pytest.raises(ValueError, match="images is length 5 and attribute is length 3"):
        paint_background(x, [0, 1, 0])


def test_make_spurious_group_sizes_are_exact():
    y = np.array([0] * 25 + [3] * 15 + [2] * 20 + [4] * 20 + [6] * 20 + [5] * 7)  # 40 of label 0, 60 of label 1, 7 dropped
    sp = make_spurious(grey(y))
    assert len(sp) == 100 and sp.ds.classes == ["c0+c3", "c2+c4+c6"] and sp.ds.name == "grey_spurious"
    assert sp.group_counts().n.tolist() == [38, 2, 3, 57]  # round(0.95 * 40), 40 - 38, 60 - 57, round(0.95 * 60)
    assert sp.group_names == ["c0+c3/red", "c0+c3/green", "c2+c4+c6/red", "c2+c4+c6/green"]
    assert sp.ds.labels.tolist() == [0] * 40 + [1] * 60 and sp.attributes.cls.tolist() == y[:100].tolist()
    assert sp.ds.index.tolist() == list(range(100, 200))  # the original examples' index
    assert (sp.attributes.agrees == (sp.groups % 3 == 0)).all()  # groups 0 and 3 are the majority
    assert (sp.ds.images[sp.groups == 1][:, :, 0, 0] == torch.tensor(SPURIOUS_COLORS["green"])).all()
    assert make_spurious(grey(y), p_agree=0.5).group_counts().n.tolist() == [20, 20, 30, 30]
    assert make_spurious(grey(y), p_agree=1).group_counts().n.tolist() == [40, 0, 0, 60]
    assert make_spurious(grey(y), p_agree=0).group_counts().n.tolist() == [0, 40, 60, 0]


def test_make_spurious_is_seeded():
    y = np.arange(400) % 10
    a, b, c = make_spurious(grey(y), seed=3), make_spurious(grey(y), seed=3), make_spurious(grey(y), seed=4)
    assert np.array_equal(a.groups, b.groups) and torch.equal(a.ds.images, b.ds.images)
    assert not np.array_equal(a.groups, c.groups) and a.group_counts().n.tolist() == c.group_counts().n.tolist()


def test_make_spurious_bad_input():
    ds = grey(np.arange(20) % 10)
    rgb = ImageDataset(np.zeros((2, 3, 4, 4), np.uint8), [0, 1], ["a", "b"], "rgb")
    with pytest.raises(ValueError, match="make_spurious paints grey images, but rgb has 3 channels"):
        make_spurious(rgb)
    with pytest.raises(ValueError, match=r"p_agree must lie in \[0, 1\], but is 1.5"):
        make_spurious(ds, p_agree=1.5)
    with pytest.raises(ValueError, match=r"disjoint collections of class ids in \[0, 10\), but are \[0, 3\] and \[3\]"):
        make_spurious(ds, classes=((0, 3), (3,)))
    with pytest.raises(ValueError, match=r"but are \[0\] and \[12\]"):
        make_spurious(ds, classes=((0,), (12,)))
    with pytest.raises(ValueError, match=r"but are \[\] and \[1\]"):
        make_spurious(ds, classes=((), (1,)))
    with pytest.raises(ValueError, match="classes must be two collections"):
        make_spurious(ds, classes=((0,), (1,), (2,)))
    with pytest.raises(ValueError, match="colors must name 2 colours"):
        make_spurious(ds, colors={"red": (255, 0, 0)})


@pytest.mark.skipif(not has_fashion_mnist(), reason="Fashion-MNIST's files are not installed")
def test_spurious_fashion_mnist_splits():
    tr = load_spurious_fashion_mnist("train", limit=3000)
    va = load_spurious_fashion_mnist("val", limit=3000)
    te = load_spurious_fashion_mnist("test", limit=3000)
    assert tr.ds.shape == (3, 28, 28) and set(tr.attributes.cls) == {0, 2, 3, 4, 6}
    assert not set(tr.ds.index.tolist()) & set(va.ds.index.tolist())
    n = lambda g, k: int((g.ds.labels == k).sum())
    assert tr.group_counts().n[0] == round(0.95 * n(tr, 0)) and tr.group_counts().n[3] == round(0.95 * n(tr, 1))
    for g in (va, te): assert g.group_counts().n[0] == round(0.5 * n(g, 0))
    full_val = load_spurious_fashion_mnist("val", val_size=1000)
    assert 400 < len(full_val) < 600  # about half of Fashion-MNIST's classes are kept
    with pytest.raises(ValueError, match=r"val_size must lie in \(0, 60000\), but is 0"):
        load_spurious_fashion_mnist("val", val_size=0)
    with pytest.raises(ValueError, match="split must be one of 'train', 'val', 'test'"):
        load_spurious_fashion_mnist("validation")


# ---------------------------------------------------------------- metrics

def test_worst_group_accuracy_by_hand():
    pred = [0, 1, 1, 1, 0, 0, 1, 1]
    labels = [0, 1, 0, 1, 1, 0, 1, 0]
    groups = [0, 0, 1, 1, 2, 2, 3, 3]  # accuracies 2/2, 1/2, 1/2, 1/2
    worst, df = worst_group_accuracy(pred, labels, groups)
    assert df.correct.tolist() == [2, 1, 1, 1] and df.n.tolist() == [2, 2, 2, 2] and worst == 0.5
    assert df.name.tolist() == ["0", "1", "2", "3"] and list(df.columns) == ["group", "name", "n", "correct", "accuracy"]
    logits = np.eye(2)[pred] * 3 - 1  # the same predictions as scores
    assert worst_group_accuracy(torch.tensor(logits), torch.tensor(labels), np.array(groups))[0] == 0.5
    w, df = worst_group_accuracy([1, 1, 0], [1, 1, 1], [0, 0, 2], group_names=["a", "b", "c"])
    assert w == 0.0 and df.n.tolist() == [2, 0, 1] and np.isnan(df.accuracy[1]) and df.accuracy[0] == 1.0


def test_worst_group_accuracy_bad_input():
    with pytest.raises(ValueError, match="pred and labels must be same length, but pred is length 3 and labels is length 2"):
        worst_group_accuracy([0, 1, 0], [0, 1], [0, 0, 0])
    with pytest.raises(ValueError, match=r"groups must lie in \[0, 2\)"):
        worst_group_accuracy([0, 1], [0, 1], [0, 2], group_names=["a", "b"])
    with pytest.raises(ValueError, match="needs at least one example"):
        worst_group_accuracy([], [], [])
    with pytest.raises(ValueError, match=r"pred must be \(N,\) predicted classes or \(N, K\) scores, but has shape \(2, 2, 2\)"):
        worst_group_accuracy(np.zeros((2, 2, 2)), [0, 1], [0, 0])
    with pytest.raises(TypeError, match="pred must hold integers"):
        worst_group_accuracy([0.5, 1], [0, 1], [0, 0])


def test_detection_prf_by_hand():
    flagged = [1, 1, 1, 0, 0, 0, 1, 0]
    truth = [1, 0, 1, 1, 0, 0, 0, 0]  # tp 2, fp 2, fn 1
    r = detection_prf(np.array(flagged, bool), torch.tensor(truth))
    assert r == pytest.approx(dict(precision=0.5, recall=2 / 3, f1=4 / 7))
    assert r["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert detection_prf([1, 1], [1, 1]) == dict(precision=1.0, recall=1.0, f1=1.0)


def test_detection_prf_zero_divisions():
    assert detection_prf([0, 0, 0], [0, 1, 0]) == dict(precision=0.0, recall=0.0, f1=0.0)  # nothing flagged
    assert detection_prf([0, 1, 0], [0, 0, 0]) == dict(precision=0.0, recall=0.0, f1=0.0)  # nothing to find
    both = detection_prf([0, 0], [0, 0], zero_division=1.0)
    assert both == dict(precision=1.0, recall=1.0, f1=1.0)
    r = detection_prf([0, 0, 0], [0, 1, 0], zero_division=np.nan)
    assert np.isnan(r["precision"]) and r["recall"] == 0.0 and r["f1"] == 0.0  # f1 is defined: a true example was missed
    assert detection_prf([], [], zero_division=0.5) == dict(precision=0.5, recall=0.5, f1=0.5)


def test_detection_prf_bad_input():
    with pytest.raises(ValueError, match=r"truth must hold booleans \(or 0/1\), but truth\[2\] = 3"):
        detection_prf([0, 1, 1], [0, 1, 3])
    with pytest.raises(ValueError, match="flagged and truth must be same length, but flagged is length 3 and truth is length 2"):
        detection_prf([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match=r"flagged must be 1-d, but has shape \(2, 1\)"):
        detection_prf([[0], [1]], [0, 1])


def test_jtt_error_set_by_hand():
    correct = np.array([[0, 0, 1, 1], [1, 1, 1, 0], [0, 1, 0, 1]])  # 3 examples, 4 epochs
    assert jtt_error_set(correct, 1).tolist() == [True, False, True]
    assert jtt_error_set(correct, 2).tolist() == [True, False, False]
    assert jtt_error_set(torch.tensor(correct, dtype=torch.uint8), 3).tolist() == [False, False, True]
    assert jtt_error_set(correct.astype(bool), np.int64(4)).tolist() == [False, True, False]
    assert jtt_error_set(correct.astype(np.float32), 4).dtype == bool


def test_jtt_error_set_bad_input():
    correct = np.ones((3, 4), np.uint8)
    for e in (0, 5, -1):
        with pytest.raises(ValueError, match=rf"epoch must be an int in \[1, 4\] \(1-based: epoch 1 is the end of the first pass\), but is {e}"):
            jtt_error_set(correct, e)
    with pytest.raises(ValueError, match="but is 2.0"):
        jtt_error_set(correct, 2.0)
    with pytest.raises(ValueError, match=r"correct must hold 0/1 \(or booleans\), but correct\[1, 2\] = 0.7; pass the correctness"):
        jtt_error_set([[1, 1, 1, 1], [1, 1, 0.7, 1]], 1)
    with pytest.raises(ValueError, match=r"correct must be 2-d \(examples, epochs\).*shape \(3,\)"):
        jtt_error_set([1, 0, 1], 1)
    with pytest.raises(ValueError, match=r"shape \(3, 0\)"):
        jtt_error_set(np.ones((3, 0)), 1)


def test_upsample_indices_by_hand():
    assert upsample_indices(5, np.array([False, True, False, False, True]), 3).tolist() == [0, 1, 1, 1, 2, 3, 4, 4, 4]
    assert upsample_indices(5, [1, 4], 3).tolist() == [0, 1, 1, 1, 2, 3, 4, 4, 4]  # positions
    assert upsample_indices(5, torch.tensor([4, 1]), 2).tolist() == [0, 1, 1, 2, 3, 4, 4]
    assert upsample_indices(3, [True, True, True], 1).tolist() == [0, 1, 2]
    assert upsample_indices(3, [], 50).tolist() == [0, 1, 2]
    flagged = np.random.default_rng(0).random(1000) < 0.1
    idx = upsample_indices(1000, flagged, 6)
    assert len(idx) == 1000 + 5 * flagged.sum() and np.array_equal(np.bincount(idx, minlength=1000), np.where(flagged, 6, 1))


def test_upsample_indices_bad_input():
    with pytest.raises(ValueError, match="factor must be an int of at least 1, but is 0"):
        upsample_indices(3, [0], 0)
    with pytest.raises(ValueError, match="factor must be an int of at least 1, but is 1.5"):
        upsample_indices(3, [0], 1.5)
    with pytest.raises(ValueError, match="a boolean flagged must have one entry per example, but has 2 for n = 3"):
        upsample_indices(3, [True, False], 2)
    with pytest.raises(ValueError, match=r"flagged positions must lie in \[0, 3\), but 1 do not: flagged positions\[1\] = 3"):
        upsample_indices(3, [0, 3], 2)
    with pytest.raises(ValueError, match="n must be a non-negative int, but is -1"):
        upsample_indices(-1, [], 2)
