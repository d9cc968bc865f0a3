"The explorer widget: its behaviour from Python on a small real audit, and the explorer notebook served by Voila in headless Chromium."
import contextlib, os, signal, socket, subprocess, sys, time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from mapd.explore import Explorer
from mapd.metadata import load_table

from conftest import WAIT, browser_deps


@pytest.fixture(scope="module")
def explorer(digits_audit):
    out, cfg, _ = digits_audit
    return Explorer(out, device="cpu")


def test_last_epoch_is_the_audits_table(explorer, digits_audit):
    out, cfg, _ = digits_audit
    table = load_table(out/"metadata.parquet")
    got = explorer.assignments(explorer.n_epochs)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), table)   # same k-NN on the same trajectories
    assert explorer.epoch == explorer.n_epochs == cfg.epochs
    assert explorer.categories == list(cfg.categories) and explorer.k == cfg.k


def test_moving_the_slider_redraws(explorer):
    ex = explorer
    ex.epoch, ex.category, ex.klass = ex.n_epochs, ex.categories[0], None
    last = dict(shown=ex.shown_indices(), counts=ex.counts().to_dict(), summary=ex.summary.value, grid=ex.grid.value, curves=ex.curves.value)
    ex.epoch_slider.value = 1                                      # as a person dragging the slider does
    assert ex.epoch == 1
    first = dict(shown=ex.shown_indices(), counts=ex.counts().to_dict(), summary=ex.summary.value, grid=ex.grid.value, curves=ex.curves.value)
    assert first["counts"] != last["counts"], "one epoch of loss should not assign like the whole trajectory"
    assert first["summary"] != last["summary"] and "epoch 1" in first["summary"]
    assert first["shown"] != last["shown"] and first["grid"] != last["grid"] and first["curves"] != last["curves"]
    assert sum(first["counts"].values()) == len(ex.table)
    moved = (ex.assignments(1).category.astype(str) != ex.assignments(ex.n_epochs).category.astype(str)).sum()
    assert f"{moved:,} of {len(ex.table):,} assigned differently" in ex.summary.value
    ex.epoch = ex.n_epochs
    assert ex.shown_indices() == last["shown"] and ex.summary.value == last["summary"]   # back to the cached epoch


def test_category_ranks_by_its_score(explorer):
    "The grid shows the top n by the category's ranking column: its flag score where the table has one (typical: the vote)."
    from mapd.metadata import ranking
    ex = explorer
    ex.epoch, ex.klass = ex.n_epochs, None
    shown = {}
    for c in ex.categories:
        ex.category_dropdown.value = c
        tab = ex.assignments().set_index("index")
        col = ranking(tab, c)
        assert col == (f"p_{c}" if c == "typical" else f"score_{c}"), col
        assert len(ex.shown_indices()) == ex.n_show
        s = tab.loc[ex.shown_indices(), col].to_numpy()
        assert (np.diff(s) <= 0).all() and s[0] == tab[col].max(), c
        assert s[-1] >= np.sort(tab[col].to_numpy())[-ex.n_show]     # the top n, not any n
        shown[c] = ex.shown_indices()
    assert len({tuple(v) for v in shown.values()}) > 1, shown


def test_class_filters_the_grid(explorer):
    ex = explorer
    ex.category = "typical"
    tab = ex.assignments().set_index("index")
    for k in (0, 3, 7):
        ex.class_dropdown.value = k
        assert ex.klass == k
        assert set(tab.loc[ex.shown_indices(), "label"]) == {k}
        assert f"class {ex.classes[k]}, epoch {ex.epoch}" in ex.summary.value
    ex.klass = None
    assert len(set(tab.loc[ex.shown_indices(), "label"])) > 1


def test_grid_size_and_typed_curves(explorer):
    open_before = set(plt.get_fignums())  # other tests in the same process may have left figures open
    ex = explorer
    ex.n_slider.value = 35
    assert len(ex.shown_indices()) == 35 and ex.grid.value.count('class="mapd-tile"') == 35
    assert ex.curve_indices() == ex.shown_indices()[:ex.n_curves]
    idx = [int(i) for i in ex.table["index"].iloc[[3, 50]]]
    ex.indices_text.value = f"{idx[0]}, {idx[1]}"
    assert ex.curve_indices() == idx and ex.status.value == ""
    ex.indices_text.value = "12, oops"
    assert ex.curve_indices() == ex.shown_indices()[:ex.n_curves] and "oops" in ex.status.value
    ex.indices_text.value, ex.n_show = "", 20
    assert set(plt.get_fignums()) == open_before                     # nothing left open by redraws


def test_noisy_labels_are_shown_with_the_true_one(explorer):
    ex = explorer
    ex.epoch, ex.category, ex.klass, ex.n_show = ex.n_epochs, "random_labels", None, 100
    noisy = set(ex.table.loc[ex.table.is_noisy, "index"])
    hits = [i for i in ex.shown_indices() if i in noisy]
    assert hits, "the top of random_labels should hold some of the flipped examples"
    assert "(true: " in ex.grid.value
    ex.n_show = 20


def test_bad_audit_folder(tmp_path, digits_audit):
    with pytest.raises(FileNotFoundError, match="config.json not found"):
        Explorer(tmp_path)
    out, _, _ = digits_audit
    with pytest.raises(ValueError, match="epoch must be in 1.."):
        Explorer(out).assignments(0)


# --- in a browser --------------------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


@contextlib.contextmanager
def _voila(repo, audit_dir, d: Path, **params):
    "The explorer notebook with audit_dir (and `params`) injected by papermill (not executed), served by Voila from `d` on a free local port."
    browser_deps(repo)
    for mod in ("selenium", "voila"):
        try: __import__(mod)
        except ImportError: pytest.fail(f"{mod} is not installed: install the dev extras (pip install -e '.[dev]')")
    import papermill as pm
    nb = d/"explorer.ipynb"
    pm.execute_notebook(str(repo/"nbs"/"explore"/"explorer.ipynb"), str(nb), parameters=dict(audit_dir=str(audit_dir), **params), prepare_only=True, kernel_name="python3")
    port, log = _free_port(), open(d/"voila.log", "w")
    env = dict(os.environ, OMP_NUM_THREADS="1", JUPYTER_RUNTIME_DIR=str(d/"runtime"))
    proc = subprocess.Popen([sys.executable, "-m", "voila", str(nb), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
                             "--show_tracebacks=True"], cwd=d, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close(); break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Voila did not start (exit {proc.poll()}):\n{(d/'voila.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/", d/"voila.log"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)          # Voila and the kernel it started, which share its new session
        try: proc.wait(timeout=20)
        except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL); proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def served_explorer(repo, digits_audit, tmp_path_factory):
    "The explorer of the digits audit, served by Voila."
    with _voila(repo, digits_audit[0], tmp_path_factory.mktemp("voila")) as served: yield served


def test_explorer_in_a_browser(served_explorer, browser, repo):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait
    url, log = served_explorer
    drv = browser
    art = repo/"test-artifacts"; art.mkdir(exist_ok=True)
    (art/"explorer-failed.png").unlink(missing_ok=True)
    # read in one script each: a redraw replaces the grid's elements, and reading them one by one could meet stale ones
    grid = lambda: drv.execute_script("return Array.from(document.querySelectorAll('.mapd-grid .mapd-tile')).map(e => e.dataset.index)")
    summary = lambda: drv.execute_script("const e = document.querySelector('.mapd-summary'); return e ? e.innerText : ''")
    def wait(cond, what):
        try: return WebDriverWait(drv, WAIT, poll_frequency=0.5).until(lambda d: cond())
        except Exception as e:
            drv.save_screenshot(str(art/"explorer-failed.png"))
            raise AssertionError(f"{what} within {WAIT} s; Voila's log:\n{log.read_text()[-3000:]}") from e

    drv.get(url)
    wait(lambda: len(grid()) == 20, "the explorer rendered 20 images")
    assert drv.find_elements(By.CSS_SELECTOR, ".mapd-epoch .noUi-handle"), "no epoch slider"
    assert len(drv.find_elements(By.CSS_SELECTOR, ".mapd-category select, .mapd-class select")) == 2, "no category and class drop-downs"
    imgs = drv.find_elements(By.CSS_SELECTOR, ".mapd-grid img")
    assert all(drv.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i) for i in imgs), "images did not load"
    assert drv.find_elements(By.CSS_SELECTOR, ".mapd-curves"), "no loss-curve plot"
    drv.save_screenshot(str(art/"explorer.png"))
    grid0, summary0 = grid(), summary()
    assert "epoch 15" in summary0, summary0

    readout = drv.find_element(By.CSS_SELECTOR, ".mapd-epoch .widget-readout")   # the slider's editable value
    readout.click(); readout.send_keys(Keys.CONTROL, "a"); readout.send_keys("1", Keys.ENTER)
    wait(lambda: "at epoch 1 than" in summary(), "the summary showed epoch 1 after moving the slider")
    assert summary() != summary0
    assert grid() != grid0, "the image grid did not change between epoch 15 and epoch 1"
    drv.save_screenshot(str(art/"explorer-epoch1.png"))

    grid1 = grid()
    Select(drv.find_element(By.CSS_SELECTOR, ".mapd-category select")).select_by_visible_text("random labels")
    wait(lambda: grid() != grid1, "the grid changed after choosing the category random labels")
    grid2 = grid()
    Select(drv.find_element(By.CSS_SELECTOR, ".mapd-class select")).select_by_index(4)   # "3: 3"
    wait(lambda: grid() != grid2, "the grid changed after choosing a class")
    drv.execute_script("arguments[0].scrollIntoView()", drv.find_element(By.CSS_SELECTOR, ".mapd-epoch"))
    drv.save_screenshot(str(art/"explorer-random-labels.png"))
    assert "Traceback" not in drv.page_source and "Error" not in drv.find_element(By.CSS_SELECTOR, ".mapd-status").text


@pytest.fixture(scope="module")
def served_folder_explorer(repo, folder_audit, tmp_path_factory):
    "The explorer of the image-folder audit (made with a relative data root), served by Voila from another folder."
    with _voila(repo, folder_audit[1], tmp_path_factory.mktemp("voila-folder")) as served: yield served


def test_image_folder_explorer_in_a_browser(served_folder_explorer, browser, folder_audit):
    "Served from another folder than the audit ran in: the images load, the tiles name their files, and no closed widget leaves an error above it."
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from mapd.metadata import ranked
    url, log = served_folder_explorer
    drv, (_, out, audit) = browser, folder_audit
    tiles = lambda: drv.execute_script("return Array.from(document.querySelectorAll('.mapd-grid .mapd-tile')).map(e => [e.dataset.index, e.innerText])")
    drv.get(url)
    try: WebDriverWait(drv, WAIT, poll_frequency=0.5).until(lambda d: len(tiles()) == 20)
    except Exception as e: raise AssertionError(f"the explorer did not render 20 images within {WAIT} s; Voila's log:\n{log.read_text()[-3000:]}") from e
    top = ranked(audit.table, audit.config.categories[0]).head(20)   # the first category at the last epoch: the audit's own table
    shown = tiles()
    assert [int(i) for i, _ in shown] == list(top["index"])
    assert all(p in text for (_, text), p in zip(shown, top.path)), (shown[:3], list(top.path[:3]))
    imgs = drv.find_elements(By.CSS_SELECTOR, ".mapd-grid img")
    assert all(drv.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i) for i in imgs), "images did not load"
    # a progress bar shown while the images are read is a widget closed before the page renders it: an "Error displaying widget:
    # model not found" output above the explorer. The explorer's cell must have shown nothing but the explorer.
    outputs = drv.execute_script("return Array.from(document.querySelector('.mapd-grid').closest('.jp-OutputArea').children).map(c => c.innerText)")
    assert len(outputs) == 1 and "Error displaying widget" not in drv.find_element(By.TAG_NAME, "body").text, outputs
