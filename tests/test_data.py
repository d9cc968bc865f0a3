"Bad input, downloads and the real data for `mapd.data`; the notebook nbs/01_data.ipynb holds the happy paths."
import functools, gzip, hashlib, http.server, pickle, struct, threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import mapd.data as data
from mapd.data import (ASYMMETRIC_PAIRS, FASHION_MNIST_CLASSES, FASHION_MNIST_FILES, FASHION_MNIST_RAW_MD5,
                       ImageDataset, SplitNotFoundError, download_file, find_fashion_mnist, inject_label_noise,
                       load_dataset, load_digits, load_fashion_mnist, make_synthetic, md5sum, read_idx)
from mapd.npz import load_npz
from mapd.cifar import CIFAR10_MD5, load_cifar, write_cifar_batch, write_cifar_meta
from mapd.image_folder import load_image_folder
from PIL import Image


def idx_bytes(a: np.ndarray, code: int = 0x08) -> bytes:
    "An IDX file holding `a`, written field by field as the format describes."
    dt = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    return bytes([0, 0, code, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.astype(dt).tobytes()


def write_fashion_like(d: Path, split: str = "test", n: int = 6, *, n_labels=None, labels=None) -> list[Path]:
    "Gzipped IDX files under Fashion-MNIST's names for `split`: n random images and their labels."
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    y = np.asarray(labels if labels is not None else np.arange(n_labels or n) % 10, dtype=np.uint8)
    (fi, _), (fl, _) = FASHION_MNIST_FILES[split]
    (d / fi).write_bytes(gzip.compress(idx_bytes(x)))
    (d / fl).write_bytes(gzip.compress(idx_bytes(y)))
    return [d / fi, d / fl]


# ---------------------------------------------------------------- IDX files

@pytest.mark.parametrize("code,dtype", [(0x08, np.uint8), (0x09, np.int8), (0x0B, np.int16), (0x0C, np.int32),
                                        (0x0D, np.float32), (0x0E, np.float64)])
def test_read_idx_types(tmp_path, code, dtype):
    a = (np.arange(-6, 6).reshape(3, 4) * (1 if code != 0x08 else -1) % 100).astype(dtype)
    (tmp_path / "a").write_bytes(idx_bytes(a, code))
    out = read_idx(tmp_path / "a")
    assert out.dtype == dtype and out.dtype.isnative and out.flags.writeable
    np.testing.assert_array_equal(out, a)


def test_read_idx_truncated(tmp_path):
    a = np.zeros((60000, 28, 28), np.uint8)
    p = tmp_path / "train-images-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(idx_bytes(a)[:16 + 1000]))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz is truncated: its header announces 60000x28x28 uint8 "
                                         r"\(47040000 bytes\) but it holds 1000 bytes of data"):
        read_idx(p)


def test_read_idx_truncated_header_and_trailing_bytes(tmp_path):
    p = tmp_path / "a"
    p.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">I", 5))
    with pytest.raises(ValueError, match="announces 3 dimensions"):
        read_idx(p)
    p.write_bytes(idx_bytes(np.zeros(4, np.uint8)) + b"xx")
    with pytest.raises(ValueError, match="has 2 bytes of data beyond the 4 uint8"):
        read_idx(p)


@pytest.mark.parametrize("head", [b"\x00\x00\x07\x01", b"PK\x03\x04", b"\x08\x03\x00\x00", b"\x00\x00\x08\x00", b"\x00"])
def test_read_idx_wrong_magic(tmp_path, head):
    p = tmp_path / "x.idx"
    p.write_bytes(head + bytes(16))
    with pytest.raises(ValueError, match=r"x.idx is not an IDX file: it starts with bytes .* but an IDX file starts with 00 00"):
        read_idx(p)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_read_idx_corrupt_gzip(tmp_path, damage):
    z = bytearray(gzip.compress(idx_bytes(np.arange(5000, dtype=np.uint8) % 7)))
    if damage == "truncate": z = z[: len(z) // 2]
    else: z[len(z) // 2] ^= 0xFF; z[-8] ^= 0xFF  # damage the stream and the CRC
    p = tmp_path / "y.gz"
    p.write_bytes(bytes(z))
    with pytest.raises(ValueError, match=r"y.gz starts like a gzip file but does not decompress"):
        read_idx(p)


# ---------------------------------------------------------------- ImageDataset

def test_image_dataset_bad_input():
    x = np.zeros((3, 1, 4, 4), np.uint8)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\), but 2 do not: labels\[1\] = 2, labels\[2\] = -1"):
        ImageDataset(x, [0, 2, -1], ["a", "b"])
    with pytest.raises(TypeError, match=r"labels must hold integers, but has dtype float64"):
        ImageDataset(x, [0, 0.5, 1], ["a", "b"])
    with pytest.raises(TypeError, match=r"images must be uint8 .* dtype torch.float32 and shape \(3, 1, 4, 4\)"):
        ImageDataset(torch.zeros(3, 1, 4, 4), [0, 1, 0], ["a", "b"])
    with pytest.raises(ValueError, match=r"images must be 4-d \(N, C, H, W\), but have shape \(3, 16\)"):
        ImageDataset(np.zeros((3, 16), np.uint8), [0, 1, 0], ["a", "b"])
    with pytest.raises(ValueError, match="images is length 3 and labels is length 2"):
        ImageDataset(x, [0, 1], ["a", "b"])
    with pytest.raises(ValueError, match="true_labels must lie in"):
        ImageDataset(x, [0, 1, 0], ["a", "b"], true_labels=[0, 1, 9])
    with pytest.raises(ValueError, match="labels is length 3 and true_labels is length 1"):
        ImageDataset(x, [0, 1, 0], ["a", "b"], true_labels=[0])
    with pytest.raises(ValueError, match="images is length 3 and index is length 2"):
        ImageDataset(x, [0, 1, 0], ["a", "b"], index=[0, 1])
    with pytest.raises(ValueError, match="classes is empty"):
        ImageDataset(x, [0, 0, 0], [])
    ds = ImageDataset(x, [0, 1, 0], ["a", "b"])
    with pytest.raises(ValueError, match="has 2 for 3 examples"):
        ds.subset(torch.tensor([True, False]))


def test_image_dataset_subset_keeps_metadata():
    ds = inject_label_noise(make_synthetic(40), 0.5)
    sub = ds.subset(np.array([5, 2, 9]))
    assert sub.name == "synthetic" and sub.classes == ds.classes
    assert sub.index.tolist() == [5, 2, 9]
    assert torch.equal(sub.true_labels, ds.true_labels[[5, 2, 9]]) and torch.equal(sub.is_noisy, ds.is_noisy[[5, 2, 9]])
    assert sub.subset([0]).index.tolist() == [5]  # the index is the original position, not the position in the subset


def test_image_dataset_paths():
    x = np.zeros((3, 1, 2, 2), np.uint8)
    ds = ImageDataset(x, [0, 1, 0], ["a", "b"], paths=np.array(["train/a/1.png", "train/b/é 2.png", "train/a/3.png"]))
    assert ds.paths.dtype == object and ds.paths.tolist()[1] == "train/b/é 2.png"
    assert ds.subset(torch.tensor([False, True, True])).paths.tolist() == ["train/b/é 2.png", "train/a/3.png"]
    assert repr(ds) == "ImageDataset('', 3 x (1, 2, 2) uint8, 2 classes)"
    with pytest.raises(ValueError, match="images is length 3 and paths is length 2"):
        ImageDataset(x, [0, 1, 0], ["a", "b"], paths=["p", "q"])
    with pytest.raises(ValueError, match=r"paths must be 1-d, one file per example, but has shape \(3, 1\)"):
        ImageDataset(x, [0, 1, 0], ["a", "b"], paths=[["p"], ["q"], ["r"]])
    # the rows stay the same examples: the paths follow them
    noisy = inject_label_noise(replace(make_synthetic(40), paths=[f"f{i}.png" for i in range(40)]), 0.5, seed=1)
    assert noisy.paths.tolist() == [f"f{i}.png" for i in range(40)] and noisy.is_noisy.sum() == 20


# ---------------------------------------------------------------- Fashion-MNIST

def _found_or_skip():
    try: return find_fashion_mnist()
    except FileNotFoundError as e: pytest.skip(f"Fashion-MNIST not on this machine: {e}")


def test_fashion_mnist_real():
    _found_or_skip()
    tr, te = load_fashion_mnist("train"), load_fashion_mnist("test")
    assert (len(tr), len(te)) == (60000, 10000)
    assert tr.images.shape == (60000, 1, 28, 28) and tr.images.dtype == torch.uint8 and te.shape == (1, 28, 28)
    assert tr.n_classes == te.n_classes == 10 and tr.classes == FASHION_MNIST_CLASSES and tr.name == "fashion_mnist"
    assert torch.bincount(tr.labels).tolist() == [6000] * 10
    assert torch.bincount(te.labels).tolist() == [1000] * 10
    assert torch.equal(tr.index, torch.arange(60000)) and tr.true_labels is None
    mean, std = tr.channel_stats()
    assert abs(mean[0] - 0.2860) < 1e-3 and abs(std[0] - 0.3530) < 1e-3  # the widely quoted normalisation constants


def test_fashion_mnist_debian_content_matches_official():
    "Debian recompresses the .gz files (so their MD5s differ) but their content is the authors'."
    d = _found_or_skip()
    for raw, md5 in FASHION_MNIST_RAW_MD5.items():
        p = next(p for p in (d / raw, d / f"{raw}.gz") if p.is_file())
        content = p.read_bytes()
        if content[:2] == b"\x1f\x8b": content = gzip.decompress(content)
        assert hashlib.md5(content).hexdigest() == md5, p


def test_find_fashion_mnist_order(tmp_path, monkeypatch):
    env, deb, home = tmp_path / "env", tmp_path / "deb", tmp_path / "home"
    monkeypatch.setattr(data, "FASHION_MNIST_DEBIAN_DIR", deb)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("MAPD_FASHION_MNIST", raising=False)
    with pytest.raises(FileNotFoundError, match=r"Searched: \$MAPD_FASHION_MNIST \(not set\); .*deb\).*home/.cache/mapd/fashion-mnist"
                                                r".*apt-get install dataset-fashion-mnist.*download=True"):
        find_fashion_mnist()
    write_fashion_like(home / ".cache/mapd/fashion-mnist", "train"); write_fashion_like(home / ".cache/mapd/fashion-mnist", "test")
    assert find_fashion_mnist() == home / ".cache/mapd/fashion-mnist"
    for s in ("train", "test"): write_fashion_like(deb, s)
    assert find_fashion_mnist() == deb
    write_fashion_like(env, "test")  # only the test split: good enough when only the test split is asked for
    monkeypatch.setenv("MAPD_FASHION_MNIST", str(env))
    assert find_fashion_mnist() == deb and find_fashion_mnist(split="test") == env
    with pytest.raises(FileNotFoundError, match=r"not in .*: train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz missing"):
        find_fashion_mnist(env)  # a root given is the only place searched


def test_fashion_mnist_plain_files(tmp_path):
    for p in write_fashion_like(tmp_path, "test"):
        p.with_suffix("").write_bytes(gzip.decompress(p.read_bytes())); p.unlink()
    ds = load_fashion_mnist("test", tmp_path)
    assert len(ds) == 6 and ds.shape == (1, 28, 28)


def test_fashion_mnist_bad_files(tmp_path):
    write_fashion_like(tmp_path / "a", n=6, n_labels=5)
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.gz holds 6 images but .*t10k-labels-idx1-ubyte.gz holds 5 labels"):
        load_fashion_mnist("test", tmp_path / "a")
    write_fashion_like(tmp_path / "b", n=4, labels=[0, 3, 12, 10])
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz holds 2 labels outside 0..9, the first 12 at position 2"):
        load_fashion_mnist("test", tmp_path / "b")
    with pytest.raises(ValueError, match="split must be one of 'train', 'test', but is 'valid'"):
        load_fashion_mnist("valid")


# ---------------------------------------------------------------- downloads, from a local server

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass


@pytest.fixture
def server(tmp_path):
    "An HTTP server on 127.0.0.1 serving tmp_path/'srv'; shut down after the test."
    root = tmp_path / "srv"; root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    httpd.timeout = 5
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try: yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown(); httpd.server_close(); t.join(timeout=5)


def test_download_from_local_server(server, tmp_path):
    root, url = server
    files = write_fashion_like(root, "test", n=7)
    sums = {p.name: md5sum(p) for p in files}
    dest = tmp_path / "cache"
    ds = load_fashion_mnist("test", download=True, root=dest, url=url, checksums=sums, quiet=True)
    assert len(ds) == 7 and sorted(p.name for p in dest.iterdir()) == sorted(sums)
    assert all(md5sum(dest / n) == m for n, m in sums.items())
    # a second call finds the files and downloads nothing (the server is emptied to prove it)
    for p in files: p.unlink()
    assert len(load_fashion_mnist("test", dest, download=True, url=url, quiet=True)) == 7


def test_download_md5_mismatch_leaves_nothing(server, tmp_path, monkeypatch):
    root, url = server
    write_fashion_like(root, "test")  # not the official files: the official MD5s reject them
    dest = tmp_path / "cache"
    monkeypatch.setattr(data, "FASHION_MNIST_DEBIAN_DIR", tmp_path / "none")  # so that the search fails and the download starts
    monkeypatch.setenv("HOME", str(tmp_path / "home")); monkeypatch.delenv("MAPD_FASHION_MNIST", raising=False)
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.gz downloaded with MD5 [0-9a-f]{32}, but t10k-images-idx3-ubyte.gz "
                                         r"should have MD5 bef4ecab320f06d8554ea6380940ec79; the download was discarded"):
        load_fashion_mnist("test", cache_dir=dest, download=True, url=url, quiet=True)
    assert list(dest.iterdir()) == []  # not even a temporary file


def test_download_missing_file_and_no_overwrite(server, tmp_path):
    root, url = server
    with pytest.raises(OSError, match=r"could not download http://127.0.0.1:\d+/nope.gz"):
        download_file(url + "nope.gz", tmp_path / "nope.gz", quiet=True, timeout=5)
    assert not (tmp_path / "nope.gz").exists()
    (root / "f").write_bytes(b"new")
    (tmp_path / "f").write_bytes(b"old")
    with pytest.raises(ValueError, match="should have MD5"):
        download_file(url + "f", tmp_path / "f", md5="0" * 32, quiet=True, timeout=5)
    assert (tmp_path / "f").read_bytes() == b"old"  # a failed download leaves what was there
    download_file(url + "f", tmp_path / "f", md5=md5sum(root / "f"), quiet=True, timeout=5)
    assert (tmp_path / "f").read_bytes() == b"new"


# ---------------------------------------------------------------- CIFAR

def _cifar10_tree(root: Path, n=4, k=10):
    d = root / "cifar-10-batches-py"; d.mkdir(parents=True)
    rng = np.random.default_rng(1)
    batches = {}
    for f in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        x, y = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, k, n)
        write_cifar_batch(d / f, x, y); batches[f] = (x, y)
    write_cifar_meta(d / "batches.meta", [f"c{i}" for i in range(k)])
    return d, batches, {f.name: md5sum(f) for f in d.iterdir()}


def test_cifar10_tree(tmp_path):
    d, batches, sums = _cifar10_tree(tmp_path)
    tr = load_cifar(tmp_path, "cifar10", "train", checksums=sums)
    assert tr.images.shape == (20, 3, 32, 32) and tr.images.dtype == torch.uint8 and tr.name == "cifar10"
    np.testing.assert_array_equal(tr.images[:4].numpy(), batches["data_batch_1"][0])
    np.testing.assert_array_equal(tr.labels.numpy(), np.concatenate([batches[f"data_batch_{i}"][1] for i in range(1, 6)]))
    te = load_dataset("cifar10", "test", root=d, checksums=sums)  # root may be the batches folder itself
    np.testing.assert_array_equal(te.images.numpy(), batches["test_batch"][0])
    assert te.classes == [f"c{i}" for i in range(10)]


def test_cifar100_tree(tmp_path):
    d = tmp_path / "cifar-100-python"; d.mkdir()
    x = np.random.default_rng(2).integers(0, 256, (5, 3072), dtype=np.uint8)
    write_cifar_batch(d / "train", x, [0, 99, 5, 5, 1], fine=True)
    write_cifar_batch(d / "test", x[:2], [3, 4], fine=True)
    write_cifar_meta(d / "meta", [f"f{i}" for i in range(100)], fine=True)
    sums = {f.name: md5sum(f) for f in d.iterdir()}
    tr = load_dataset("cifar100", root=tmp_path, checksums=sums)
    assert tr.n_classes == 100 and tr.labels.tolist() == [0, 99, 5, 5, 1]
    np.testing.assert_array_equal(tr.images.reshape(5, -1).numpy(), x)  # rows are channel-major, as in CIFAR
    assert load_cifar(tmp_path, "cifar-100", "test", checksums=sums).labels.tolist() == [3, 4]


def test_cifar_tampered_batch_refused(tmp_path):
    d, _, sums = _cifar10_tree(tmp_path)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self): return (Path.touch, (marker,))

    (d / "data_batch_3").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(ValueError, match=r"data_batch_3 has MD5 [0-9a-f]{32}, but " + sums["data_batch_3"]
                                         + r" was expected; refusing to unpickle"):
        load_cifar(tmp_path, checksums=sums)
    assert not marker.exists()
    with pytest.raises(ValueError, match=r"batches.meta has MD5 .* but " + CIFAR10_MD5["batches.meta"] + r" was expected; refusing"):
        load_cifar(tmp_path, split="test")  # the official checksums reject files that are not the official ones


def test_cifar_bad_contents(tmp_path):
    d, _, sums = _cifar10_tree(tmp_path)
    with open(d / "test_batch", "wb") as f: pickle.dump({b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]}, f)
    with open(d / "data_batch_1", "wb") as f: pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0, 1]}, f)
    sums |= {f: md5sum(d / f) for f in ("test_batch", "data_batch_1")}
    with pytest.raises(ValueError, match=r"test_batch: b'data' must be uint8 rows of 3072 values .* shape \(2, 3000\)"):
        load_cifar(tmp_path, split="test", checksums=sums)
    with pytest.raises(ValueError, match=r"data_batch_1 should be a dict with key b'labels', but holds \[b'data', b'fine_labels'\]"):
        load_cifar(tmp_path, checksums=sums)
    write_cifar_batch(d / "test_batch", np.zeros((2, 3072), np.uint8), [0, 10])
    sums["test_batch"] = md5sum(d / "test_batch")
    with pytest.raises(ValueError, match=r"test_batch: b'labels' must lie in \[0, 10\)"):
        load_cifar(tmp_path, split="test", checksums=sums)
    with pytest.raises(ValueError, match=r"data must be \(n, 3, 32, 32\) or \(n, 3072\) uint8"):
        write_cifar_batch(tmp_path / "x", np.zeros((2, 3, 28, 28), np.uint8), [0, 1])
    with pytest.raises(ValueError, match="name must be 'cifar10' or 'cifar100'"):
        load_cifar(tmp_path, "cifar20")
    with pytest.raises(FileNotFoundError, match="missing batches.meta, test_batch"):
        load_cifar(tmp_path / "elsewhere", split="test")



# ---------------------------------------------------------------- your own images: image folders and .npz files

def save_image(root: Path, rel: str, a, mode: str | None = None, fmt: str | None = None) -> Path:
    "Write the array `a` (H, W), (H, W, 2), (H, W, 3) or (H, W, 4) as an image file at root/rel, converted to `mode` when given."
    p = root / rel; p.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(np.asarray(a, np.uint8))
    (im.convert(mode) if mode else im).save(p, fmt)
    return p


def image_tree(root: Path) -> Path:
    "Three classes in many modes, formats and sizes; 24x16 (H x W) is the most common size, and two images are in colour."
    rng = np.random.default_rng(0)
    grey = lambda h=24, w=16: rng.integers(0, 256, (h, w))
    for i in range(3): save_image(root, f"train/bag/{i}.png", grey())
    save_image(root, "train/bag/deep/er/3.JPG", grey())
    save_image(root, "train/bag/4.bmp", grey(10, 30), "1")
    save_image(root, "train/t shirt/ünïcode name.gif", grey(), "P")
    save_image(root, "train/t shirt/rgb.webp", rng.integers(0, 256, (24, 16, 3)), fmt="WEBP")
    save_image(root, "train/t shirt/la.png", np.zeros((7, 9, 2)))  # LA, fully transparent
    save_image(root, "train/zip/x.tiff", rng.integers(0, 256, (24, 16, 4)))  # RGBA
    sixteen = root / "train/zip/sixteen.png"
    Image.fromarray(np.full((24, 16), 65535, np.uint16)).save(sixteen)  # 16-bit grey, white
    return root


def test_image_folder_modes_sizes_and_order(tmp_path):
    root = image_tree(tmp_path / "my data")
    ds = load_image_folder(root, quiet=True)
    assert ds.classes == ["bag", "t shirt", "zip"] and ds.name == "imagefolder"
    assert ds.shape == (3, 24, 16) and len(ds) == 10 and ds.images.dtype == torch.uint8
    assert ds.paths.tolist() == ["train/bag/0.png", "train/bag/1.png", "train/bag/2.png", "train/bag/4.bmp", "train/bag/deep/er/3.JPG",
                                 "train/t shirt/la.png", "train/t shirt/rgb.webp", "train/t shirt/ünïcode name.gif",
                                 "train/zip/sixteen.png", "train/zip/x.tiff"]
    assert ds.labels.tolist() == [0] * 5 + [1] * 3 + [2] * 2 and ds.index.tolist() == list(range(10))
    # a grey PNG is read exactly, its three channels equal
    png = np.array(Image.open(root / "train/bag/0.png"))
    assert (ds.images[0] == torch.from_numpy(png)).all()
    # a fully transparent LA image is white; 16-bit white is 255, not clipped from 65535 nor wrapped
    assert ds.images[5].unique().tolist() == [255] and ds.images[8].unique().tolist() == [255]
    grey = load_image_folder(root, size=8, channels=1, quiet=True)
    assert grey.shape == (1, 8, 8) and grey.paths.tolist() == ds.paths.tolist()
    assert load_image_folder(root, size=(5, 7), quiet=True).shape == (3, 5, 7)
    # every file grey: one channel by default
    g = tmp_path / "grey"
    for i, h in enumerate([6, 6, 9]): save_image(g, f"train/{'ab'[i % 2]}/{i}.pgm", np.full((h, 6), 50 * i))
    gd = load_image_folder(g, quiet=True)
    assert gd.shape == (1, 6, 6) and gd.images[:, 0, 0, 0].tolist() == [0, 100, 50]  # a's files, then b's
    assert torch.equal(load_dataset("imagefolder", root=g, quiet=True).images, gd.images)


def test_image_folder_test_split_uses_train_classes(tmp_path):
    root = tmp_path
    for c in ("a", "b", "c"): save_image(root, f"train/{c}/1.png", np.zeros((4, 4)))
    save_image(root, "test/c/1.png", np.zeros((4, 4)))
    tr = load_image_folder(root, quiet=True)
    te = load_image_folder(root, "test", classes=tr.classes, quiet=True)
    assert te.classes == ["a", "b", "c"] and te.labels.tolist() == [2]
    assert load_image_folder(root, "test", quiet=True).labels.tolist() == [0]  # without classes=, the ids would not agree
    save_image(root, "test/dog/1.png", np.zeros((4, 4)))
    save_image(root, "test/cat/1.png", np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"test has class folders that are not among the 3 classes given: 'cat', 'dog' \(classes: 'a', 'b', 'c'\)"):
        load_dataset("imagefolder", "test", root=root, classes=tr.classes, quiet=True)
    with pytest.raises(ValueError, match=r"classes must be distinct class names"):
        load_image_folder(root, classes=["a", "a"])


def test_image_folder_unreadable_files_listed_together(tmp_path):
    root = image_tree(tmp_path)
    good = (root / "train/bag/0.png").read_bytes()
    (root / "train/bag/broken.png").write_bytes(good[:len(good) // 2])  # a valid header, then cut: fails only when decoded
    (root / "train/zip/notes.jpg").write_text("these are notes, not a picture")
    (root / "train/zip/.hidden.png").write_text("hidden: never read")
    with pytest.raises(ValueError) as e:
        load_image_folder(root, quiet=True)
    msg = str(e.value)
    assert msg.startswith(f"2 of 12 image files under {root} could not be read:\n")
    assert "\n  train/bag/broken.png: OSError: image file is truncated" in msg
    assert "\n  train/zip/notes.jpg: not an image file Pillow recognises" in msg
    assert "Remove or fix these files and load again" in msg and ".hidden" not in msg
    # with size and channels given there is no header pass: the decoding pass finds both
    with pytest.raises(ValueError, match=r"2 of 12 image files"):
        load_image_folder(root, size=4, channels=3, quiet=True)
    # many: the first 20, then a count
    for i in range(25): (root / f"train/bag/bad{i:02d}.png").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"(?s)27 of 37 image files .*bad19.png: [^\n]*\n  \.\.\. and 7 more\n"):
        load_image_folder(root, quiet=True)


def test_image_folder_layout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="image folder .*nowhere does not exist"):
        load_image_folder(tmp_path / "nowhere")
    save_image(tmp_path, "train/a/1.png", np.zeros((4, 4)))
    with pytest.raises(SplitNotFoundError, match=r"has no 'test' split: .*test is not a folder \(found folders: train\)"):
        load_image_folder(tmp_path, "test")
    (tmp_path / "test").mkdir(); save_image(tmp_path, "test/loose.png", np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"test holds no class folders: .*; the 1 files directly in it need to go into class folders"):
        load_image_folder(tmp_path, "test")
    (tmp_path / "train/b/sub").mkdir(parents=True); (tmp_path / "train/b/readme.txt").write_text("hi")
    with pytest.raises(ValueError, match=r"class folders without image files \(.bmp .gif .*\): .*train/b; add images or remove them"):
        load_image_folder(tmp_path)
    save_image(tmp_path, "train/b/1.png", np.zeros((4, 4)))
    with pytest.warns(UserWarning, match=r"1 files under .*train are not read, .*: train/b/readme.txt"):
        assert len(load_image_folder(tmp_path, quiet=True)) == 2
    for bad in (0, (4,), (4, 0), 2.5, "32"):
        with pytest.raises(ValueError, match="size must be None"):
            load_image_folder(tmp_path, size=bad)
    with pytest.raises(ValueError, match="channels must be None .* 1 or 3, but is 4"):
        load_image_folder(tmp_path, channels=4)
    with pytest.raises(ValueError, match="imagefolder needs root="):
        load_dataset("imagefolder", "test")


@pytest.mark.parametrize("shape", [(6, 5, 4), (6, 1, 5, 4), (6, 3, 5, 4)])
def test_npz_layouts(tmp_path, shape):
    x = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    p = tmp_path / "d.npz"
    np.savez(p, images=x, labels=np.array([0, 1, 1, 0, 1, 0], np.int32), class_names=np.array([b"no", b"yes"]),
             test_images=x[:2], test_labels=np.array([1, 1], np.uint8))
    ds = load_npz(p)
    assert ds.shape == (shape[1] if len(shape) == 4 else 1, 5, 4) and ds.classes == ["no", "yes"] and ds.name == "npz"
    np.testing.assert_array_equal(ds.images.numpy().reshape(shape), x)
    assert ds.labels.dtype == torch.int64 and ds.labels.tolist() == [0, 1, 1, 0, 1, 0] and ds.paths is None
    te = load_dataset("npz", "test", root=p)
    assert te.labels.tolist() == [1, 1] and te.classes == ["no", "yes"]
    np.savez(p, images=x, labels=np.array([0, 1, 1, 0, 1, 0]))
    assert load_npz(p).classes == ["0", "1"]
    with pytest.raises(SplitNotFoundError, match=r"d.npz has no test split: it holds no test_images and test_labels \(it holds images, labels\)"):
        load_npz(p, "test")


def test_npz_errors(tmp_path):
    p = tmp_path / "d.npz"
    def fails(match, exc=ValueError, split="train", **arrays):
        np.savez(p, **arrays)
        with pytest.raises(exc, match=match): load_npz(p, split)
    x = np.zeros((3, 4, 4), np.uint8)
    fails(r"d.npz has no array 'labels'; it holds images, targets. Expected images \(N, H, W\)", images=x, targets=[0, 1, 2])
    fails(r"d.npz has no array 'test_labels'; it holds images, labels, test_images", split="test", images=x, labels=[0, 1, 2], test_images=x)
    fails(r"'images' must be uint8 \(0..255\), but has dtype float32 and shape \(3, 4, 4\); scale floats", images=x.astype(np.float32), labels=[0, 1, 2])
    fails(r"'images' must be \(N, H, W\) or \(N, C, H, W\), but has shape \(3, 16\)", images=x.reshape(3, 16), labels=[0, 1, 2])
    fails(r"'images' has shape \(3, 4, 4, 3\), which looks like \(N, H, W, C\); save images.transpose\(0, 3, 1, 2\)",
          images=np.zeros((3, 4, 4, 3), np.uint8), labels=[0, 1, 2])
    fails(r"'images' holds 3 images but 'labels' holds 2 labels", images=x, labels=[0, 1])
    fails(r"'labels' must be 1-d integers, but has dtype float64", images=x, labels=[0, 1.5, 2])
    fails(r"d.npz: labels must lie in \[0, 2\), but 1 do not: labels\[2\] = 2", images=x, labels=[0, 1, 2], class_names=np.array(["a", "b"]))
    fails(r"d.npz: 'labels' holds negative labels \(1, the first -1\)", images=x, labels=[-1, 1, 0])
    fails(r"'class_names' must be \(K,\) strings, but has dtype int64", images=x, labels=[0, 1, 2], class_names=np.arange(3))
    fails(r"array 'class_names' holds Python objects \(dtype object\), which are not loaded because unpickling can run code",
          images=x, labels=[0, 1, 2], class_names=np.array(["a", "b", {"c": 1}], dtype=object))
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match=r"text.npz cannot be read as an .npz file"):
        load_npz(tmp_path / "text.npz")
    np.save(tmp_path / "one.npy", x)
    with pytest.raises(ValueError, match=r"one.npy holds a single array \(.npy\), not an .npz archive"):
        load_npz(tmp_path / "one.npy")
    with pytest.raises(FileNotFoundError, match=r"missing.npz does not exist"):
        load_dataset("npz", root=tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="npz needs root=, the .npz file"):
        load_dataset("npz")
    with pytest.raises(ValueError, match="split must be one of 'train', 'test', but is 'val'"):
        load_npz(p, "val")


# ---------------------------------------------------------------- digits, synthetic, load_dataset

def test_digits_and_synthetic():
    d = load_digits(size=16)
    assert d.shape == (1, 16, 16) and d.images.dtype == torch.uint8 and d.classes == [str(i) for i in range(10)]
    assert not torch.equal(load_digits(seed=1).index, load_digits(seed=0).index)
    with pytest.raises(ValueError, match="test_fraction must lie strictly between 0 and 1, but is 1.0"):
        load_digits(test_fraction=1.0)
    s = make_synthetic(30, n_classes=3, shape=(3, 4, 5), seed=4)
    assert s.shape == (3, 4, 5) and s.n_classes == 3 and torch.bincount(s.labels).tolist() == [10] * 3
    with pytest.raises(ValueError, match="noise must be non-negative"):
        make_synthetic(noise=-1)
    with pytest.raises(ValueError, match=r"unknown data set 'imagenet'; known: fashion_mnist, digits, cifar10, cifar100, synthetic"):
        load_dataset("imagenet")


# ---------------------------------------------------------------- label noise

@pytest.mark.parametrize("fraction", [0.0, 0.013, 0.5, 1.0])
def test_symmetric_noise_exact(fraction):
    ds = make_synthetic(1000, n_classes=7, seed=3)
    n = inject_label_noise(ds, fraction, seed=5)
    assert int(n.is_noisy.sum()) == round(fraction * 1000)
    assert torch.equal(n.true_labels, ds.labels) and torch.equal(n.images, ds.images)
    # the new labels of the flipped examples spread over the other classes
    if fraction == 1.0:
        pairs = torch.bincount(n.true_labels * 7 + n.labels, minlength=49).reshape(7, 7)
        assert (pairs.diagonal() == 0).all() and (pairs + torch.eye(7, dtype=torch.long) > 0).all()


def test_symmetric_noise_allow_same_rate():
    ds = make_synthetic(20000, n_classes=4, seed=0)
    n = inject_label_noise(ds, 0.6, allow_same=True, seed=1)
    assert abs(n.is_noisy.float().mean().item() - 0.6 * 3 / 4) < 0.015


def test_asymmetric_noise_fashion_pairs():
    labels = torch.arange(10).repeat_interleave(50)
    ds = ImageDataset(torch.zeros(500, 1, 2, 2, dtype=torch.uint8), labels, FASHION_MNIST_CLASSES, "fashion-mnist")
    n = inject_label_noise(ds, 0.4, "asymmetric", seed=0)
    pairs = ASYMMETRIC_PAIRS["fashion_mnist"]
    noisy = n.is_noisy
    assert all(pairs[t] == y for t, y in zip(n.true_labels[noisy].tolist(), n.labels[noisy].tolist()))
    assert torch.bincount(labels[noisy], minlength=10).tolist() == [20 if k in pairs else 0 for k in range(10)]
    # swaps: shirts flipped to T-shirt and T-shirts flipped to shirt are distinct examples, none flipped back
    assert int(noisy.sum()) == 20 * len(pairs)
    full = inject_label_noise(ds, 1.0, "asymmetric", pairs={0: 6, 6: 0})
    assert torch.equal(full.labels[labels == 0], torch.full((50,), 6)) and torch.equal(full.labels[labels == 6], torch.zeros(50, dtype=torch.long))
    # the order of the pairs does not change the noise
    assert torch.equal(inject_label_noise(ds, 0.3, "asymmetric", pairs={6: 0, 0: 6}).labels,
                       inject_label_noise(ds, 0.3, "asymmetric", pairs={0: 6, 6: 0}).labels)


def test_label_noise_bad_input():
    ds = make_synthetic(20)
    with pytest.raises(ValueError, match=r"fraction must lie in \[0, 1\], but is -0.1"):
        inject_label_noise(ds, -0.1)
    with pytest.raises(ValueError, match="kind must be 'symmetric', 'asymmetric' or 'instance', but is 'uniform'"):
        inject_label_noise(ds, 0.1, "uniform")
    ds.name = "mystery"
    with pytest.raises(ValueError, match=r"no asymmetric pairs are known for data set 'mystery' \(known: fashion_mnist, cifar10, digits, synthetic\)"):
        inject_label_noise(ds, 0.1, "asymmetric")
    with pytest.raises(ValueError, match=r"pairs must map classes in \[0, 4\), but holds -1 -> 2, 1 -> 4"):
        inject_label_noise(ds, 0.1, "asymmetric", pairs={-1: 2, 1: 4, 2: 3})
    one = ImageDataset(torch.zeros(3, 1, 1, 1, dtype=torch.uint8), [0, 0, 0], ["only"])
    with pytest.raises(ValueError, match="needs at least 2 classes"):
        inject_label_noise(one, 0.5)
