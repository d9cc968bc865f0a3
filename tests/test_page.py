"An audit's page (report.html) in headless Chromium, and an audit made with a relative data root read again from other folders."
import json, os, shutil

import numpy as np
import pytest

from mapd.audit import Audit, run_audit
from mapd.metadata import ranked
from conftest import WAIT


def test_page_in_a_browser(folder_audit, browser):
    "Every category has its grid of the top-ranked rows, named by their files, with the images and the curves loaded."
    from selenium.webdriver.common.by import By
    _, out, audit = folder_audit
    drv = browser
    drv.get((out/"report.html").as_uri())
    read = lambda c: drv.execute_script(
        "const s = document.querySelector(`section.mapd-category[data-category='${arguments[0]}']`); if (!s) return null;"
        "return {tiles: Array.from(s.querySelectorAll('.mapd-tile')).map(t => [t.querySelector('img').alt, t.querySelector('img').title, t.innerText]),"
        "        loaded: Array.from(s.querySelectorAll('img')).every(i => i.complete && i.naturalWidth > 0),"
        "        curves: s.querySelectorAll('img.mapd-curves').length}", c)
    classes = audit.classes
    for c in audit.config.categories:
        got = read(c)
        assert got is not None, f"no section for {c}"
        top = ranked(audit.table, c).head(20)
        assert [alt for alt, _, _ in got["tiles"]] == list(top.path), c          # the top files, in the table's order
        assert all(p in text and classes[y] in text for (_, _, text), p, y in zip(got["tiles"], top.path, top.label))
        by = "p_typical" if c == "typical" else f"score_{c}"
        assert all(f"{by} {s:.2f}" in title for (_, title, _), s in zip(got["tiles"], top[by])), (c, got["tiles"][:2])
        assert got["loaded"] and got["curves"] == 1, c
    text = drv.find_element(By.TAG_NAME, "body").text
    assert "held-out probe accuracy" in text and f"{len(audit.table):,} training examples" in text
    assert all(" ".join(w.split()) in " ".join(text.split()) for w in audit.results["warnings"])


def test_page_is_written_by_every_audit(folder_audit):
    _, out, audit = folder_audit
    page = (out/"report.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and page.count('class="mapd-category"') == len(audit.config.categories)
    assert "src=\"http" not in page and "<script" not in page   # self-contained: nothing to fetch, nothing to run


def test_paths_travel(folder_audit, tmp_path, monkeypatch):
    "An audit made with --data-root data from its folder stores the root absolute and relative to itself; read from elsewhere, its images load."
    work, out, audit = folder_audit
    cfg = json.loads((out/"config.json").read_text())
    assert cfg["data_root"] == str(work/"data") and cfg["paths_from_audit"] == {"data_root": "../data"}
    monkeypatch.chdir(tmp_path)                                                 # another working folder
    back = Audit.load(out)
    assert back.config.data_root == str(work/"data")
    assert back.table.path.str.startswith("train/").all() and all((work/"data"/p).is_file() for p in back.table.path)   # relative to the root
    fig = back.show("random_labels", 4)
    pos = {int(i): k for k, i in enumerate(back.train.index)}
    first = [ax for ax in fig.axes if ax.images][0]
    np.testing.assert_array_equal(np.asarray(first.images[0].get_array())[..., 0], back.train.images[pos[int(back.issues("random_labels", 1)["index"][0])], 0].numpy())
    assert len(back.explore().shown_indices()) == 20


def test_moved_and_overridden_roots(folder_audit, tmp_path):
    work, out, audit = folder_audit
    shutil.copytree(work, tmp_path/"moved")                                     # the audit and its data moved together
    assert Audit.load(tmp_path/"moved"/"audit").config.data_root == str(tmp_path/"moved"/"data")
    shutil.copytree(out, tmp_path/"alone")                                      # the audit alone: the absolute root
    assert Audit.load(tmp_path/"alone").config.data_root == str(work/"data")
    shutil.copytree(work/"data", tmp_path/"elsewhere")
    over = Audit.load(tmp_path/"alone", data_root=tmp_path/"elsewhere")
    assert over.config.data_root == str(tmp_path/"elsewhere") and len(over.train) == len(audit.train)
    with pytest.raises(FileNotFoundError, match="pass where it is now"):
        Audit.load(tmp_path/"alone", data_root=tmp_path/"gone").show("typical")


def test_resume_from_another_folder(folder_audit, tmp_path, monkeypatch):
    "Run again from another folder, with the root given relative from there, absolute, or at a copy of the same data, the audit resumes; onto other data it is refused."
    work, _, audit = folder_audit
    shutil.copytree(work, tmp_path/"w")
    (tmp_path/"other").mkdir(); monkeypatch.chdir(tmp_path/"other")
    for root in ("../w/data", str(tmp_path/"w"/"data")):
        again = run_audit(audit.config.__class__(**{**audit.config.__dict__, "data_root": root}), "../w/audit", quiet=True)
        assert again.results["probe_accuracy"] == audit.results["probe_accuracy"] and again.store.completed == audit.config.epochs
    shutil.copytree(work/"data", tmp_path/"copy")
    again = run_audit(audit.config.__class__(**{**audit.config.__dict__, "data_root": "../copy"}), "../w/audit", quiet=True)
    assert json.loads((tmp_path/"w"/"audit"/"config.json").read_text())["data_root"] == str(tmp_path/"copy")   # where the data is now
    bad = tmp_path/"copy"/"train"/"bag"/"5.png"
    from PIL import Image
    Image.fromarray(np.zeros((12, 12), np.uint8), "L").save(bad)
    with pytest.raises(ValueError, match="train images differ"):
        run_audit(audit.config.__class__(**{**audit.config.__dict__, "data_root": "../copy"}), "../w/audit", quiet=True)


def test_audit_written_before_paths_travelled(folder_audit, tmp_path, monkeypatch):
    "An audit whose config.json holds the relative root as given (and no paths_from_audit) loads and resumes from the folder it ran in."
    work, _, audit = folder_audit
    shutil.copytree(work, tmp_path/"old")
    fn = tmp_path/"old"/"audit"/"config.json"
    cfg = json.loads(fn.read_text()); cfg.pop("paths_from_audit"); cfg["data_root"] = "data"
    fn.write_text(json.dumps(cfg))
    (tmp_path/"old"/"audit"/"fingerprints.json").unlink()                       # older still: no fingerprints either
    monkeypatch.chdir(tmp_path/"old")
    back = Audit.load("audit")
    assert back.config.data_root == "data" and len(back.train) == len(audit.train)
    again = run_audit(audit.config.__class__(**{**audit.config.__dict__, "data_root": "data"}), "audit", quiet=True)
    assert again.results["probe_accuracy"] == audit.results["probe_accuracy"]
