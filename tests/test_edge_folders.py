"An image folder reads only what is inside it, once: loops, links to parents, siblings, outside the root, dangling links, pipes, sockets and devices are refused and listed."
import os, socket, subprocess

import numpy as np
import pytest
from PIL import Image

from conftest import mapd_cmd
from mapd.image_folder import load_image_folder


def _folder(root, n=3):
    for k in ("a", "b"):
        (root/"train"/k).mkdir(parents=True)
        for i in range(n): Image.fromarray(np.full((4, 4), (40 * i) % 256, np.uint8)).save(root/"train"/k/f"{i}.png")
    return root


BAD = {
    "loop to train": lambda r: os.symlink("..", r/"train"/"a"/"loop"),
    "loop to root": lambda r: os.symlink("../..", r/"train"/"a"/"up"),
    "link to sibling class": lambda r: os.symlink("../b", r/"train"/"a"/"bs"),
    "file link to sibling": lambda r: os.symlink("../b/0.png", r/"train"/"a"/"x.png"),
    "folder outside root": lambda r: os.symlink(r.parent/"outside", r/"train"/"a"/"out"),
    "file outside root": lambda r: os.symlink(r.parent/"outside"/"o.png", r/"train"/"a"/"o.png"),
    "dangling": lambda r: os.symlink("nowhere.png", r/"train"/"a"/"gone.png"),
    "fifo": lambda r: os.mkfifo(r/"train"/"a"/"pipe.png"),
    "socket": lambda r: socket.socket(socket.AF_UNIX).bind(str(r/"train"/"a"/"s.png")),
    "device": lambda r: os.symlink("/dev/null", r/"train"/"a"/"null.png"),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_refused_and_listed(tmp_path, kind):
    (tmp_path/"outside").mkdir(); Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path/"outside"/"o.png")
    root = _folder(tmp_path/"data")
    assert len(load_image_folder(root, quiet=True)) == 6
    BAD[kind](root)
    with pytest.raises(ValueError, match="could not be read:\n  train/") as e: load_image_folder(root, quiet=True)
    if kind in ("folder outside root", "file outside root"): assert "outside the data root" in str(e.value)


def test_link_inside_root_read_once(tmp_path):
    root = _folder(tmp_path/"data")
    (root/"pool").mkdir(); Image.fromarray(np.zeros((4, 4), np.uint8)).save(root/"pool"/"p.png")
    os.symlink("../../pool", root/"train"/"a"/"pool")
    ds = load_image_folder(root, quiet=True)
    assert len(ds) == 7 and "train/a/pool/p.png" in ds.paths.tolist()


def test_cli_fifo_refused_without_hanging(tmp_path):
    root = _folder(tmp_path/"data", 40)
    os.mkfifo(root/"train"/"a"/"pipe.png")
    p = subprocess.run(mapd_cmd() + ["audit", "--dataset", "imagefolder", "--data-root", str(root), "--out", str(tmp_path/"out"), "--device", "cpu", "--quiet"],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "named pipe" in p.stderr, p.stderr
    assert not (tmp_path/"out").exists()


def test_split_folder_linked_out_of_the_root_refused(tmp_path):
    "train/ itself a symbolic link to a folder outside the data root: refused like any link out of the root (already so on main: a regression test)."
    _folder(tmp_path/"elsewhere")
    root = tmp_path/"data"; root.mkdir()
    os.symlink(tmp_path/"elsewhere"/"train", root/"train")
    with pytest.raises(ValueError, match="outside the data root"): load_image_folder(root, quiet=True)


def test_cli_quiet_shows_no_bars_while_reading(tmp_path):
    "--quiet: reading an image folder shows no progress bars, so a refusal is the one line on stderr (main: the bars of both passes came first)."
    root = _folder(tmp_path/"data", 40)
    import shutil; shutil.rmtree(root/"train"/"b")   # one class: refused after reading
    p = subprocess.run(mapd_cmd() + ["audit", "--dataset", "imagefolder", "--data-root", str(root), "--out", str(tmp_path/"out"), "--device", "cpu", "--quiet"],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 2 and len(p.stderr.splitlines()) == 1 and "at least two" in p.stderr, p.stderr
    assert not (tmp_path/"out").exists()
