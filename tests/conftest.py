import os
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
    from mapd.audit import AuditConfig, PAPER_PROBES, run_audit
    out = tmp_path_factory.mktemp("digits")/"audit"
    cfg = AuditConfig(dataset="digits", noise=0.2, epochs=15, batch_size=64, scores="speed", score_epochs=3,
                      n_fit=60, n_heldout=60, k=10, device="cpu", **PAPER_PROBES)   # the paper's probes: the figure-4 check is theirs
    return out, cfg, run_audit(cfg, out, quiet=True).results


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
