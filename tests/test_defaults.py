"Each default written once: k, alpha and q live in one constant each, read wherever None is given; the corrupted probe's noise is one setting, parsed in one function."
import ast
from pathlib import Path

import numpy as np
import pytest

import mapd
import mapd.knn, mapd.flags
from mapd.audit import AuditConfig, _corrupt_std
from mapd.knn import MAPD, DEFAULT_K
from mapd.flags import DEFAULT_ALPHA, DEFAULT_Q, flag_thresholds, fdr_thresholds
from mapd.probes import corrupt_std_setting

PKG = Path(mapd.__file__).parent
WRITTEN = {"k": 20, "alpha": 0.05, "q": 0.1}   # the numbers that were written out ~25 times before

def _literal_defaults(tree):
    "(name, value, line) of every parameter or dataclass field among WRITTEN whose default is that number written out."
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            pairs = list(zip(a.args[len(a.args) - len(a.defaults):], a.defaults)) + [(p, d) for p, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
            for p, d in pairs: yield p.arg, d, d.lineno
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            yield node.target.id, node.value, node.lineno

def test_the_defaults_are_written_once():
    found = [f"{f.name}:{line} {name}={d.value}" for f in sorted(PKG.rglob("*.py")) if f.name != "_modidx.py"
             for name, d, line in _literal_defaults(ast.parse(f.read_text(encoding="utf-8")))
             if name in WRITTEN and isinstance(d, ast.Constant) and d.value == WRITTEN[name]]
    assert found == [], f"defaults written out again instead of read from DEFAULT_K / DEFAULT_ALPHA / DEFAULT_Q: {found}"
    assert (DEFAULT_K, DEFAULT_ALPHA, DEFAULT_Q) == (20, 0.05, 0.1)   # the values themselves are unchanged
    assert (AuditConfig().alpha, AuditConfig().q) == (DEFAULT_ALPHA, DEFAULT_Q)

def test_none_reads_the_one_source(monkeypatch):
    assert MAPD().k == MAPD(None).k == DEFAULT_K
    monkeypatch.setattr(mapd.knn, "DEFAULT_K", 7)
    assert MAPD().k == 7
    rng = np.random.default_rng(0)
    cats = np.array(["typical"] * 200 + ["random_labels"] * 200)
    S = np.stack([rng.random(400), rng.random(400) + (cats == "random_labels")], 1)
    th = flag_thresholds(S, cats, ["typical", "random_labels"], statistic="score")
    assert th.alpha["random_labels"] == DEFAULT_ALPHA   # one problem category: the familywise share is all of alpha
    monkeypatch.setattr(mapd.flags, "DEFAULT_ALPHA", 0.2)
    th = flag_thresholds(S, cats, ["typical", "random_labels"], statistic="score")
    assert th.alpha["random_labels"] == 0.2

@pytest.mark.parametrize("given, stored, means", [("auto", "auto", "auto"), ("paper", "paper", "paper"), ("0.5", "0.5", 0.5),
                                                  (0.5, "0.5", 0.5), (1, "1", 1.0), ("1e-1", "1e-1", 0.1)])
def test_corrupt_std_old_spellings_still_parse(given, stored, means):
    "What `mapd audit --corrupt-std` and earlier config.json files hold: kept as that text (a resume compares it), read as one typed value."
    cfg = AuditConfig(corrupt_std=given)
    assert cfg.corrupt_std == stored and corrupt_std_setting(cfg.corrupt_std) == means
    std, info = _corrupt_std(cfg, None, None, "cpu", True) if means != "auto" else (None, {})
    assert info == {} and std == (None if means in ("paper", "auto") else means)

@pytest.mark.parametrize("bad", ["-1", "nan", "inf", "lots", "", 0, -0.5, True])
def test_corrupt_std_refused(bad):
    with pytest.raises(ValueError, match="AuditConfig: corrupt_std must be 'auto', 'paper' or a positive number"): AuditConfig(corrupt_std=bad)
    with pytest.raises(ValueError, match="corrupt_std must be"): corrupt_std_setting(bad)
