"Pickles that cannot run code, and image paths that cannot leave the data root: CIFAR files go through `safe_unpickle` even when their MD5 is vouched for, and the paths of Clothing1M's, Waterbirds' and CelebA's annotation files must stay inside the data root."
import builtins, io, os, pickle, re, struct, subprocess

import numpy as np
import pytest
import torch

import mapd.groups
from mapd.data import md5sum
from mapd.cifar import load_cifar, safe_unpickle, write_cifar_batch, write_cifar_meta
from mapd.groups import load_celeba, load_clothing1m, load_waterbirds, read_celeba_attributes, read_label_kv
from test_groups import CLEAN, NOISY, save_image, write_celeba, write_clothing1m, write_waterbirds


class Call:
    "Unpickled, calls `func(*args)`: the way a pickle runs code. Callable itself, so that one can be the function of another."
    def __init__(self, func, *args): self.func, self.args = func, args
    def __reduce__(self): return self.func, self.args
    def __call__(self, *a): raise AssertionError("only ever called by an unpickler")


def payloads(marker):
    "(name of the refused global, object whose unpickling would create `marker`) for several ways a pickle runs code."
    m = str(marker)
    return {
        "os.system": Call(os.system, f"touch '{m}'"),
        "builtins.eval": Call(builtins.eval, f"open({m!r}, 'w').close()"),
        "builtins.exec": Call(builtins.exec, f"open({m!r}, 'w').close()"),
        "subprocess.Popen": Call(subprocess.Popen, ["touch", m]),
        "subprocess.check_call": Call(subprocess.check_call, ["touch", m]),
        "builtins.getattr": Call(Call(builtins.getattr, Call(builtins.__import__, "os"), "system"), f"touch '{m}'"),
        "builtins.__import__": Call(builtins.__import__, "this"),
        "io.open": Call(builtins.open, m, "w"),  # builtins.open is io.open
        "numpy.save": Call(np.save, m, np.arange(3)),  # a NumPy function, but not one that rebuilds arrays
        "numpy.savetxt": Call(np.savetxt, m, np.arange(3)),
    }


def cifar10(root, n=6, seed=0):
    "A CIFAR-10 folder written by the repo's own writer: root/cifar-10-batches-py/{batches.meta, test_batch}; returns images, labels, MD5s."
    d = root / "cifar-10-batches-py"; d.mkdir(parents=True)
    x, y = np.random.default_rng(seed).integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), np.arange(n) % 3
    write_cifar_meta(d / "batches.meta", ["cat", "dog", "frog"])
    write_cifar_batch(d / "test_batch", x, y)
    return x, y, {f: md5sum(d / f) for f in ("batches.meta", "test_batch")}


def legit_batch(n=4) -> dict:
    return {b"batch_label": b"testing batch 1 of 1", b"labels": list(range(n)), b"data": np.zeros((n, 3072), np.uint8),
            b"filenames": [f"{i}.png".encode() for i in range(n)]}


# ---------------------------------------------------------------- what CIFAR's files hold loads

def test_cifar10_and_cifar100_written_by_the_writer_load(tmp_path):
    x, y, sums = cifar10(tmp_path / "c10")
    ds = load_cifar(tmp_path / "c10", "cifar10", "test", checksums=sums)
    assert torch.equal(ds.images, torch.from_numpy(x)) and ds.labels.tolist() == y.tolist() and ds.classes == ["cat", "dog", "frog"]
    d = tmp_path / "c100" / "cifar-100-python"; d.mkdir(parents=True)
    x2 = np.random.default_rng(1).integers(0, 256, (5, 3, 32, 32), dtype=np.uint8)
    write_cifar_meta(d / "meta", ["apple", "bee"], fine=True)
    for split in ("train", "test"): write_cifar_batch(d / split, x2, [0, 1, 1, 0, 1], fine=True)
    sums = {f: md5sum(d / f) for f in ("meta", "train", "test")}
    for split in ("train", "test"):
        ds = load_cifar(tmp_path / "c100", "cifar100", split, checksums=sums)
        assert torch.equal(ds.images, torch.from_numpy(x2)) and ds.labels.tolist() == [0, 1, 1, 0, 1] and ds.classes == ["apple", "bee"]


def test_safe_unpickle_reads_what_pickle_reads(tmp_path):
    _, _, _ = cifar10(tmp_path)
    p = tmp_path / "cifar-10-batches-py" / "test_batch"
    with open(p, "rb") as f: want = pickle.load(f, encoding="bytes")
    for got in (safe_unpickle(p), safe_unpickle(str(p)), safe_unpickle(io.BytesIO(p.read_bytes()))):
        assert list(got) == list(want) and got[b"labels"] == want[b"labels"] and got[b"filenames"] == want[b"filenames"]
        assert type(got[b"data"]) is np.ndarray and np.array_equal(got[b"data"], want[b"data"]) and got[b"data"].flags.writeable


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_numpy_arrays_and_scalars_of_numbers_and_strings(protocol):
    obj = {"u8": np.arange(12, dtype=np.uint8).reshape(3, 4), "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
           "big": np.arange(5, dtype=">i4"), "empty": np.zeros((0, 3), np.int64), "bool": np.array([True, False]),
           "text": np.array(["ab", "c"]), "bytes": np.array([b"ab", b"c"]), "complex": np.array([1 + 2j]),
           "scalars": [np.int64(3), np.float32(2.5)], "plain": (1, 2.5, "s", b"b", b"", None, True, [{"x": 1}])}
    got = safe_unpickle(io.BytesIO(pickle.dumps(obj, protocol=protocol)))
    for k, a in obj.items():
        if isinstance(a, np.ndarray):
            assert type(got[k]) is np.ndarray and got[k].dtype == a.dtype and np.array_equal(got[k], a), k
    assert got["fortran"].flags.f_contiguous
    assert got["scalars"] == obj["scalars"] and type(got["scalars"][0]) is np.int64 and got["plain"] == obj["plain"]


def _py2_batch(data: np.ndarray, labels) -> bytes:
    "A batch pickled as CIFAR's own files were, by Python 2's cPickle at protocol 2: str as BINSTRING, numpy.core.multiarray._reconstruct."
    def s(b: bytes): return (b"U" + bytes([len(b)]) + b) if len(b) < 256 else (b"T" + struct.pack("<I", len(b)) + b)
    def i(n: int): return b"J" + struct.pack("<i", n)
    arr = (b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n" + i(0) + b"\x85" + s(b"b") + b"\x87R"
           + b"(" + i(1) + i(data.shape[0]) + i(data.shape[1]) + b"\x86"
           + b"cnumpy\ndtype\n" + s(b"u1") + i(0) + i(1) + b"\x87R" + b"(" + i(3) + s(b"|") + b"NNN" + i(-1) + i(-1) + i(0) + b"tb"
           + b"\x89" + s(data.tobytes()) + b"tb")
    return (b"\x80\x02}(" + s(b"data") + arr + s(b"labels") + b"]("+ b"".join(i(int(v)) for v in labels) + b"e"
            + s(b"batch_label") + s(b"testing batch 1 of 1") + b"u.")


def test_a_python2_cifar_file_loads(tmp_path):
    x = np.random.default_rng(2).integers(0, 256, (3, 3072), dtype=np.uint8)
    raw = _py2_batch(x, [2, 0, 1])
    with_pickle = pickle.loads(raw, encoding="bytes")
    assert np.array_equal(with_pickle[b"data"], x)  # the hand-written stream is a valid pickle
    got = safe_unpickle(io.BytesIO(raw))
    assert np.array_equal(got[b"data"], x) and got[b"labels"] == [2, 0, 1] and got[b"batch_label"] == b"testing batch 1 of 1"
    d = tmp_path / "cifar-10-batches-py"; d.mkdir()
    write_cifar_meta(d / "batches.meta", ["a", "b", "c"])
    (d / "test_batch").write_bytes(raw)
    ds = load_cifar(tmp_path, split="test", checksums={f: md5sum(d / f) for f in ("batches.meta", "test_batch")})
    assert ds.images.reshape(3, -1).numpy().tolist() == x.tolist() and ds.labels.tolist() == [2, 0, 1]


# ---------------------------------------------------------------- what runs code is refused, even with the right MD5

@pytest.mark.parametrize("name", [n for n in payloads("m") if n != "builtins.__import__"])
def test_the_payloads_do_run_code_under_plain_pickle(tmp_path, name):
    marker = tmp_path / "marker.npy"
    r = pickle.loads(pickle.dumps(payloads(marker)[name], protocol=2))
    if isinstance(r, subprocess.Popen): r.wait()
    elif hasattr(r, "close"): r.close()
    assert marker.exists(), f"{name}: the payload is not live, so refusing it proves nothing"


@pytest.mark.parametrize("protocol", [0, 2, 4])
@pytest.mark.parametrize("name", list(payloads("m")))
def test_code_is_refused_even_with_the_right_md5(tmp_path, name, protocol):
    marker = tmp_path / "marker.npy"  # .npy: np.save adds none
    x, y, sums = cifar10(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "test_batch"
    evil = legit_batch(len(x)) | {b"data": x.reshape(len(x), -1), b"labels": [*y.tolist()[:-1], payloads(marker)[name]]}
    batch.write_bytes(pickle.dumps(evil, protocol=protocol))
    sums["test_batch"] = md5sum(batch)  # the user vouches for the file, as the MD5 message invites
    with pytest.raises(ValueError, match=rf"test_batch refers to {name}\b.*never needs; refusing to load it"):
        load_cifar(tmp_path, split="test", checksums=sums)
    with pytest.raises(ValueError, match=rf"refers to {name}\b"):
        safe_unpickle(batch)
    assert not marker.exists(), f"{name} ran"


def test_code_in_the_meta_file_is_refused_before_any_batch(tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    _, _, sums = cifar10(tmp_path)
    meta = tmp_path / "cifar-10-batches-py" / "batches.meta"
    meta.write_bytes(pickle.dumps({b"label_names": [b"a", b"b", b"c"], b"num_vis": Call(os.system, f"touch '{marker}'")}, protocol=2))
    sums["batches.meta"] = md5sum(meta)
    with pytest.raises(ValueError, match=r"batches.meta refers to os.system \(posix.system in the file\)"):
        load_cifar(tmp_path, split="test", checksums=sums)
    assert not marker.exists()


def test_hand_written_streams_are_refused(tmp_path):
    m = str(tmp_path / "marker")
    streams = {  # name shown -> a stream that calls it: the opcodes GLOBAL, INST and STACK_GLOBAL, and global names of Python 2
        "os.system": f"cos\nsystem\n(S'touch {m}'\ntR.".encode(),
        "os.system (posix.system": f"cposix\nsystem\n(S'touch {m}'\ntR.".encode(),
        "subprocess.call": f"(S'touch {m}'\nisubprocess\ncall\n.".encode(),
        "builtins.eval (__builtin__.eval": f"c__builtin__\neval\n(S'open({m!r}, \"w\")'\ntR.".encode(),
        "copyreg._reconstructor (copy_reg._reconstructor": b"ccopy_reg\n_reconstructor\n(c__builtin__\nobject\nNNtR.",
        "numpy._core.multiarray.fromfile": b"\x80\x04\x8c\x16numpy._core.multiarray\x8c\x08fromfile\x93.",
        "numpy.testing.assert_": b"cnumpy.testing\nassert_\n.",
    }
    for name, raw in streams.items():
        with pytest.raises(ValueError, match=f"refers to {name}".replace("(", r"\(").replace(".", r"\.")):
            safe_unpickle(io.BytesIO(raw))
    assert not (tmp_path / "marker").exists()


def test_allowed_globals_only_build_plain_arrays(tmp_path):
    m = str(tmp_path / "marker")
    bad = {  # what the stand-ins refuse, though the globals named are the allowed ones
        "no objects": pickle.dumps(np.array([Call(os.system, f"touch {m}")], dtype=object), protocol=2),
        "records": pickle.dumps(np.zeros(2, dtype=[("a", "i4"), ("b", "f8")]), protocol=2),
        "dates": pickle.dumps(np.array(["2020-01-01"], dtype="M8[D]"), protocol=2),
        "not a numpy.ndarray": b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\ndtype\n(I0\ntS'b'\ntR.",
        "numpy.ndarray itself": b"cnumpy\nndarray\n(I3\ntR.",
        "codecs.encode to 'rot13'": b"c_codecs\nencode\n(Vabc\nVrot13\ntR.",
        "bytes() with arguments": b"c__builtin__\nbytes\n(I1000000000\ntR.",
        "sub-arrays or fields": b"cnumpy\ndtype\n(Vu1\nI00\nI01\ntR(I3\nV|\nN(Va\ntNI-1\nI-1\nI0\ntb.",
    }
    for why, raw in bad.items():
        with pytest.raises(ValueError, match="is not a CIFAR file: it holds .*" + why.replace("(", r"\(").replace(")", r"\)")):
            safe_unpickle(io.BytesIO(raw))
    class ShortArray:  # numpy's own reduction, with one byte of data missing
        def __reduce__(self):
            f, args, state = np.arange(4, dtype=np.uint8).__reduce__()
            return f, args, (*state[:4], state[4][:3])
    for protocol in (2, 4):
        with pytest.raises(ValueError, match=r"it holds 3 bytes of data for an array of shape \(4,\) and dtype uint8, which takes 4"):
            safe_unpickle(io.BytesIO(pickle.dumps(ShortArray(), protocol=protocol)))
    assert not (tmp_path / "marker").exists()


def test_broken_files_are_a_clear_error(tmp_path):
    _, _, sums = cifar10(tmp_path)
    p = tmp_path / "cifar-10-batches-py" / "test_batch"
    p.write_bytes(p.read_bytes()[:500])
    with pytest.raises(ValueError, match=r"test_batch cannot be read as a CIFAR pickle \("):
        load_cifar(tmp_path, split="test", checksums=sums | {"test_batch": md5sum(p)})
    with pytest.raises(ValueError, match=r"the pickle cannot be read"):
        safe_unpickle(io.BytesIO(b"\x80\x02"))
    with pytest.raises(FileNotFoundError):
        safe_unpickle(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="refusing to unpickle"):  # the MD5 check still comes first
        load_cifar(tmp_path, split="test")


# ---------------------------------------------------------------- image paths stay inside the data root

@pytest.fixture
def outside(tmp_path):
    "An image outside the data root, and a folder of them."
    save_image(tmp_path / "secret" / "x.jpg")
    return save_image(tmp_path / "outside.jpg", (1, 2, 3))


@pytest.fixture
def no_image_read(monkeypatch):
    "Fails a test that reads any image: the paths are checked first."
    def fail(*a, **k): raise AssertionError("an image was read before the paths were checked")
    monkeypatch.setattr(mapd.groups, "load_images", fail)


def _add(path, line):
    path.write_text(path.read_text() + line + "\n")


@pytest.mark.parametrize("bad", ["../outside.jpg", "images/../../outside.jpg", "ABS"])
def test_clothing1m_key_list_paths(tmp_path, outside, no_image_read, bad):
    root = write_clothing1m(tmp_path / "root")
    bad = str(outside) if bad == "ABS" else bad
    ann = root / "annotations"
    _add(ann / "clean_train_key_list.txt", bad)
    why = "is absolute" if bad == str(outside) else "has a '..' component"
    with pytest.raises(ValueError, match=rf"clean_train_key_list.txt line 3: image path '{re.escape(bad)}' {why}; refusing to read it"):
        load_clothing1m(root, "clean_train")
    with pytest.raises(ValueError, match=rf"clean_train_key_list.txt line 3: image path '{re.escape(bad)}' {why}"):
        load_clothing1m(root, "clean_train", limit=1)  # a path the limit leaves out is refused all the same


@pytest.mark.parametrize("bad", ["../outside.jpg", "ABS"])
def test_clothing1m_label_file_paths(tmp_path, outside, bad):
    root = write_clothing1m(tmp_path / "root")
    bad = str(outside) if bad == "ABS" else bad
    _add(root / "annotations" / "noisy_label_kv.txt", f"{bad} 3")
    with pytest.raises(ValueError, match=rf"noisy_label_kv.txt line 6: image path '{re.escape(bad)}' (is absolute|has a '..' component)"):
        load_clothing1m(root)
    with pytest.raises(ValueError, match=r"noisy_label_kv.txt line 6"):
        read_label_kv(root / "annotations" / "noisy_label_kv.txt")


def test_clothing1m_symlinks(tmp_path, outside, no_image_read):
    root = write_clothing1m(tmp_path / "root")
    (root / "images" / "9" / "99" / "f.jpg").unlink()
    (root / "images" / "9" / "99" / "f.jpg").symlink_to(outside)  # a file link out of the root
    with pytest.raises(ValueError, match=rf"clean_train_key_list.txt line 1: image path 'images/9/99/f.jpg' leads through a symbolic link "
                                         rf"to {re.escape(str(outside.resolve()))}, outside the data root;.* inside the data root {re.escape(str(root.resolve()))}\."):
        load_clothing1m(root, "clean_train")
    root = write_clothing1m(tmp_path / "root2")
    (root / "images" / "8").symlink_to(outside.parent / "secret")  # a folder link out of the root
    _add(root / "annotations" / "clean_train_key_list.txt", "images/8/x.jpg")
    _add(root / "annotations" / "clean_label_kv.txt", "images/8/x.jpg 4")
    with pytest.raises(ValueError, match=r"line 3: image path 'images/8/x.jpg' leads through a symbolic link"):
        load_clothing1m(root, "clean_train")


def test_links_inside_the_root_are_fine(tmp_path):
    root = write_clothing1m(tmp_path / "root")
    f = root / "images" / "9" / "99" / "f.jpg"
    (root / "store").mkdir(); f.rename(root / "store" / "f.jpg"); f.symlink_to(root / "store" / "f.jpg")
    assert load_clothing1m(root, "clean_train", size=8).ds.labels.tolist() == [1, 7]
    linked = tmp_path / "elsewhere"; linked.symlink_to(root)  # the root itself reached through a link
    assert len(load_clothing1m(linked, "clean_train", size=8)) == 2


@pytest.mark.parametrize("bad", ["../outside.jpg", "001.A/../../outside.jpg", "ABS", "LINK", "DIRLINK"])
def test_waterbirds_paths(tmp_path, outside, no_image_read, bad):
    root = tmp_path / "root"
    name = {"ABS": str(outside), "LINK": "001.A/link.jpg", "DIRLINK": "999.B/x.jpg"}.get(bad, bad)
    rows = [(1, "001.A/a.jpg", 1, 0, 1), (2, "001.A/b.jpg", 0, 0, 0)] + ([] if bad in ("LINK", "DIRLINK") else [(3, name, 0, 0, 1)])
    write_waterbirds(root, rows)
    if bad in ("LINK", "DIRLINK"):
        if bad == "LINK": (root / name).symlink_to(outside)
        else: (root / "999.B").symlink_to(outside.parent / "secret")
        _add(root / "metadata.csv", f"3,{name},0,0,1,x.jpg")
    why = {"ABS": "is absolute", "LINK": "leads through a symbolic link", "DIRLINK": "leads through a symbolic link"}.get(bad, "has a '..' component")
    with pytest.raises(ValueError, match=rf"metadata.csv row 2: image path '{re.escape(name)}' {why}"):
        load_waterbirds(root)
    if bad not in ("LINK", "DIRLINK"):
        with pytest.raises(ValueError, match=r"metadata.csv row 2"):
            load_waterbirds(root, "test")  # another split's row is refused too: the file is not to be trusted


@pytest.mark.parametrize("txt", [False, True])
@pytest.mark.parametrize("bad", ["../outside.jpg", "ABS"])
def test_celeba_partition_and_attribute_paths(tmp_path, outside, no_image_read, bad, txt):
    root = write_celeba(tmp_path / "root", txt=txt)
    bad = str(outside) if bad == "ABS" else bad
    why = "is absolute" if bad == str(outside) else "has a '..' component"
    part = root / ("Eval/list_eval_partition.txt" if txt else "list_eval_partition.csv")
    _add(part, f"{bad} 0" if txt else f"{bad},0")
    with pytest.raises(ValueError, match=rf"list_eval_partition.(txt|csv) row 6: image path '{re.escape(bad)}' {why}"):
        load_celeba(root)
    root = write_celeba(tmp_path / "root2", txt=txt)
    attr = root / ("Anno/list_attr_celeba.txt" if txt else "list_attr_celeba.csv")
    if txt:
        lines = attr.read_text().splitlines(); lines[0] = "7"
        attr.write_text("\n".join(lines + [f"{bad} -1 1 1 -1"]) + "\n")
    else: _add(attr, f"{bad},-1,1,1,-1")
    with pytest.raises(ValueError, match=rf"list_attr_celeba.(txt|csv) row 6: image path '{re.escape(bad)}' {why}"):
        read_celeba_attributes(attr)
    with pytest.raises(ValueError, match=rf"row 6: image path '{re.escape(bad)}' {why}"):
        load_celeba(root)


def test_celeba_symlinks(tmp_path, outside, no_image_read):
    root = write_celeba(tmp_path / "root")
    img = root / "img_align_celeba" / "000002.jpg"
    img.unlink(); img.symlink_to(outside)
    with pytest.raises(ValueError, match=r"list_eval_partition.csv row 1: image path '000002.jpg' leads through a symbolic link to "
                                         + re.escape(str(outside.resolve()))):
        load_celeba(root)
    root = write_celeba(tmp_path / "root2")
    (root / "img_align_celeba").rename(tmp_path / "faces")
    (root / "img_align_celeba").symlink_to(tmp_path / "faces")  # the whole image folder out of the root
    with pytest.raises(ValueError, match=r"row 0: image path '000001.jpg' leads through a symbolic link"):
        load_celeba(root)
