"The explorer escapes every string it puts into HTML: class names, category names, the data set's name, the audit folder's path, typed text and error messages."
import html
from dataclasses import replace
from pathlib import Path

import ipywidgets as W
import numpy as np
import pandas as pd
import pytest

from mapd.audit import Audit, AuditConfig
from mapd.data import make_synthetic
from mapd.explore import Explorer
from mapd.metadata import metadata_table, save_table
from mapd.store import TrajectoryStore

SCRIPT, IMG = "<script>alert(1)</script>", "<img src=x onerror=alert(1)>"
RAW = ("<script", "<img src=x", "onerror=alert(1)>")  # none of these may reach the page unescaped
CLASSES = [SCRIPT, IMG, 'a "quoted" & <b>bold</b> class', "plain"]
CATEGORIES = ["typical", IMG, "<script>x"]  # categories named by whoever wrote the audit


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    "A small audit whose folder, data set name, classes, categories and file paths hold HTML."
    ds = make_synthetic(330, n_classes=4)   # 240 trained as they are, 90 the probes are made from
    ds = replace(ds, classes=CLASSES, paths=np.array([f"{SCRIPT}/{IMG}{i}.png" for i in range(len(ds))], dtype=object))
    d = tmp_path_factory.mktemp("audit") / IMG / "audit"  # a folder name may hold < > = and spaces
    E, rng = 5, np.random.default_rng(0)
    t = np.arange(E)
    n, per = 240, 30
    rows = pd.DataFrame(dict(role=["train"] * n + ["probe"] * per * 3, category=[""] * n + [c for c in CATEGORIES for _ in range(per)],
                             split=[""] * n + (["fit"] * (per // 2) + ["heldout"] * (per // 2)) * 3,
                             index=range(n + per * 3), label=list(ds.labels.numpy()[:n]) + [0] * per * 3))
    rows["true_label"] = rows.label
    rows.loc[:19, "true_label"] = (rows.label[:20] + 1) % 4  # some noisy labels, so that tiles show "(true: ...)"
    rows["path"] = list(ds.paths[:n]) + [""] * per * 3
    st = TrajectoryStore.create(d / "trajectories", rows, E)
    speed = np.r_[np.arange(n) % 3, np.repeat([0, 1, 2], per)]
    L = 2.3 * np.exp(-t[None] / (1 + 2 * speed[:, None])) + rng.normal(0, 0.05, (len(rows), E))
    for e in range(E): st.write_epoch(e, loss=L[:, e], margin=np.zeros(len(L)), correct=np.zeros(len(L)))
    cfg = AuditConfig(dataset="synthetic", k=5, flags="rate")
    cfg.dataset, cfg.categories = SCRIPT, tuple(CATEGORIES)   # names no checked configuration takes, set after its checks: what a hostile folder could hold
    table = metadata_table(st, k=5)
    save_table(table, d / "metadata.parquet")
    return Explorer(Audit(d, cfg, st, table, {}), dataset=ds, device="cpu"), ds


def widgets(w):
    "`w` and every widget under it."
    yield w
    for c in getattr(w, "children", ()): yield from widgets(c)


def page(ex) -> str:
    "Every HTML, HTMLMath and Label value of the explorer's widget tree, together."
    vals = [w.value for w in widgets(ex.widget) if isinstance(w, (W.HTML, W.HTMLMath, W.Label))]
    assert len(vals) >= 4
    return "\n".join(vals)


def check(ex):
    p = page(ex)
    for raw in RAW: assert raw not in p, f"{raw!r} reached the page unescaped:\n{p}"
    return p


def test_every_state_is_escaped(hostile):
    ex, ds = hostile
    p = check(ex)
    assert html.escape(SCRIPT) in p and html.escape(str(ex.path)) in p  # the data set's name and the folder, in the header
    for c in CATEGORIES:
        ex.category = c
        for k in (None, 0, 1, 2, 3):
            ex.klass = k
            for t in (1, ex.n_epochs):
                ex.epoch = t
                p = check(ex)
                assert html.escape(c.replace("_", " ")) in p
                if k is not None: assert html.escape(CLASSES[k]) in ex.grid.value and html.escape(CLASSES[k]) in ex.summary.value
    ex.category, ex.klass, ex.n_show = CATEGORIES[0], None, 100
    p = check(ex)
    assert "(true: " in ex.grid.value and all(html.escape(c) in ex.grid.value for c in CLASSES)
    assert ex.grid.value.count('class="mapd-tile"') == 100


def test_the_grid_html_is_well_formed(hostile):
    "Parsed, the grid and the summary hold only the tags the explorer writes: no <script>, no <img> without a data URI."
    from html.parser import HTMLParser
    ex, _ = hostile
    ex.category, ex.klass, ex.n_show = IMG, None, 20

    class Tags(HTMLParser):
        def __init__(self): super().__init__(); self.tags, self.srcs = set(), []
        def handle_starttag(self, tag, attrs):
            self.tags.add(tag)
            if tag == "img": self.srcs.append(dict(attrs).get("src"))
            for k, v in attrs: assert not k.startswith("on"), (tag, k, v)
    for value in (ex.grid.value, ex.summary.value, ex.header.value):
        t = Tags(); t.feed(value)
        assert t.tags <= {"div", "img", "br", "b", "i", "span", "code", "table", "tr", "th", "td"}, t.tags
        assert all(s.startswith("data:image/png;base64,") for s in t.srcs)


def test_typed_text_and_errors_are_escaped(hostile, monkeypatch):
    ex, _ = hostile
    ex.indices_text.value = SCRIPT
    assert html.escape(SCRIPT) in ex.status.value
    check(ex)
    ex.indices_text.value = ""
    def boom(*a): raise ValueError(f"bad {IMG}")
    monkeypatch.setattr(Explorer, "_curves_png", boom)
    with pytest.raises(ValueError):
        ex.epoch = 1 if ex.epoch != 1 else 2
    assert html.escape(f"bad {IMG}") in ex.status.value
    check(ex)
