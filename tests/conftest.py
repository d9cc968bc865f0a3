import os, shutil, subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO/".venv"/"bin"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def digits_audit(tmp_path_factory):
    "A small real audit of scikit-learn's digits: real training, real trajectories (about 15 s on 2 cores), with the paper's probes."
    from mapd.settings import AuditConfig, PAPER_PROBES
    from mapd.audit import run_audit
    out = tmp_path_factory.mktemp("digits")/"audit"
    cfg = AuditConfig(dataset="digits", noise=0.2, epochs=15, batch_size=64, scores="speed", score_epochs=3,
                      n_fit=60, n_heldout=60, k=10, device="cpu", **PAPER_PROBES)   # the paper's probes: the figure-4 check is theirs
    return out, cfg, run_audit(cfg, out, quiet=True).results


def write_image_folder(root, corrupt=False):
    "A small ImageFolder: train/ and test/ with three classes, one of them with a space in its name, PNGs of mixed sizes and modes."
    from PIL import Image
    import numpy as np
    rng = np.random.default_rng(0)
    for split, n in (("train", 90), ("test", 12)):
        for k, cls in enumerate(("coat", "t shirt", "bag")):
            d = root/split/cls; d.mkdir(parents=True)
            for i in range(n):
                x = np.clip(rng.normal(60 + 70 * k, 25, (12 + i % 3, 12)), 0, 255).astype(np.uint8)
                name = f"été {i}.png" if i == 0 else f"{i}.png"
                Image.fromarray(x, "L").save(d/name) if i % 2 else Image.fromarray(np.stack([x] * 3, -1), "RGB").save(d/name)
    if corrupt: (root/"train"/"bag"/"broken file.png").write_bytes(b"not a png at all")


@pytest.fixture(scope="session")
def folder_audit(tmp_path_factory):
    """A small real audit of an image folder, run from the folder holding it with a relative data root (`data`) and output
    folder (`audit`), as a user types `mapd audit --data-root data --out audit`: (working folder, audit folder, audit)."""
    from mapd.audit import AuditConfig, run_audit
    work = tmp_path_factory.mktemp("folder")
    write_image_folder(work/"data")
    cfg = AuditConfig(dataset="imagefolder", data_root="data", image_size=10, epochs=4, batch_size=32, scores="speed", score_epochs=2,
                      corrupt_std="0.5", n_fit=10, n_heldout=10, k=3, device="cpu")
    here = os.getcwd()
    os.chdir(work)
    try: audit = run_audit(cfg, "audit", quiet=True)
    finally: os.chdir(here)
    return work, work/"audit", audit


def mapd_cmd() -> list[str]:
    "The installed `mapd` command of the venv (or the one on PATH)."
    exe = VENV_BIN/"mapd"
    return [str(exe)] if exe.exists() else ["mapd"]


def completed_epochs(out) -> int:
    "Complete epochs of the audit being written into `out` (0 before its store exists or while meta.json is being replaced)."
    import json
    try: return json.loads((Path(out)/"trajectories"/"meta.json").read_text())["completed_epochs"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError): return 0


def wait_for_epochs(p, out, n: int, timeout: float = 240) -> int:
    "Poll until process `p`'s audit in `out` has `n` complete epochs (or `p` ended, or `timeout` passed); the epochs complete then."
    import time
    deadline = time.time() + timeout
    while completed_epochs(out) < n and p.poll() is None and time.time() < deadline: time.sleep(0.01)
    return completed_epochs(out)


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
WAIT = 120   # seconds: a kernel start, `import torch` and the first k-NN on a loaded 2-core machine


def browser_deps(repo):
    "Chromium and its driver, installed from Debian by scripts/browser_deps.sh when missing; skip only where apt cannot."
    if CHROMIUM.exists() and CHROMEDRIVER.exists(): return
    if shutil.which("apt-get") is None: pytest.skip("headless Chromium is missing and apt-get is not available to install it")
    r = subprocess.run(["bash", str(repo/"scripts"/"browser_deps.sh")], capture_output=True, text=True, timeout=900)
    if r.returncode == 2: pytest.skip(f"cannot install Chromium: {r.stderr.strip()}")
    assert r.returncode == 0, f"scripts/browser_deps.sh failed:\n{r.stdout}\n{r.stderr}"


@pytest.fixture(scope="module")
def browser(repo, tmp_path_factory):
    "Headless Chromium driven by selenium (installed by scripts/browser_deps.sh where missing)."
    browser_deps(repo)
    try: from selenium import webdriver
    except ImportError: pytest.fail("selenium is not installed: install the dev extras (pip install -e '.[dev]')")
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1400,1300",
              f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(WAIT); driver.set_script_timeout(30)
    try: yield driver
    finally: driver.quit()
