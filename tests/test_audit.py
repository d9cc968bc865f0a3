"The audit end to end on real data: its outputs, its figures' inputs, bad input and what a failed run leaves behind."
import hashlib, json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from mapd.audit import AuditConfig, run_audit
from mapd.metadata import load_table
from mapd.store import TrajectoryStore


def _digest(folder):
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_audit_outputs(digits_audit):
    out, cfg, res = digits_audit
    for fn in ("config.json", "scores.npy", "probes.csv", "history.csv", "metadata.parquet", "probe_predictions.csv", "results.json"):
        assert (out/fn).exists(), fn
    results = json.loads((out/"results.json").read_text())
    for key in ("probe_accuracy_main", "probe_accuracy", "mislabel_auroc"):
        assert 0 <= results[key] <= 1
    pred = pd.read_csv(out/"probe_predictions.csv")   # both held-out checks rebuild from the committed file
    assert (pred.predicted == pred.category).mean() == pytest.approx(results["probe_accuracy"])
    four = pred[pred.predicted_main.notna()]
    assert set(four.category) == {"typical", "atypical", "random_labels", "corrupted"}
    assert (four.predicted_main == four.category).mean() == pytest.approx(results["probe_accuracy_main"])
    assert results["parameters"]["noise"] == 0.2 and "mapd_version" in results
    table = load_table(out/"metadata.parquet")
    st = TrajectoryStore(out/"trajectories")
    assert len(table) == results["n_rows"] == 1347 and results["n_train"] == (st.rows.role == "train").sum() < 1347   # every example a row ...
    assert table["index"].is_unique and set(table.scored_by) == {"trained", "natural probe, held out", "natural probe, left out", "second run"}   # ... the probes' sources by a second run
    p = table[[c for c in table.columns if c.startswith("p_")]].to_numpy()
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-5)
    assert (table.knn_category.astype(str) == table[[c for c in table.columns if c.startswith("p_")]].idxmax(1).str[2:]).all()  # the paper's rule
    # the table's category follows the flags: a flagged problem where there is one, else typical or atypical
    problems = [c for c in cfg.categories if c not in ("typical", "atypical")]
    flagged = table[[f"flag_{c}" for c in problems]].to_numpy()
    cat = table.category.astype(str).to_numpy()
    assert all(cat[i] in problems and table[f"flag_{cat[i]}"].iloc[i] for i in np.flatnonzero(flagged.any(1)))
    assert set(cat[~flagged.any(1)]) <= {"typical", "atypical"}
    for th in results["flag_thresholds"]:   # BH at q: each flag is its q-values at most q
        assert th["rule"] == "fdr" and (table[f"q_{th['category']}"] <= th["q"]).sum() >= results["flag_counts"][th["category"]]
    # the flipped labels are known, and MAP-D ranks them far above chance even on this tiny run
    assert results["mislabel_auroc"] > 0.7, results["mislabel_auroc"]
    # probes are made from the noisy data, as a user would: flipped examples have low consistency and crowd
    # into the atypical probe, leaving fewer of them among the training rows
    assert results["atypical_probe_noisy_fraction"] > 0.2 and abs(table.is_noisy.mean() - 0.2) < 0.01   # the table holds every example, so all the flips
    assert results["typical_probe_noisy_fraction"] < 0.2


def test_probe_accuracy_well_above_chance(digits_audit):
    _, cfg, res = digits_audit
    assert res["probe_accuracy"] > 2 / 6, res["probe_accuracy"]      # chance is 1/6
    assert res["probe_accuracy_main"] > 2 / 4, res["probe_accuracy_main"]      # chance is 1/4


def test_other_configuration_refused_and_nothing_overwritten(digits_audit):
    out, cfg, _ = digits_audit
    before = _digest(out)
    with pytest.raises(FileExistsError, match="another configuration"):
        run_audit(replace(cfg, epochs=3), out, quiet=True)
    assert _digest(out) == before


def test_bad_config_fails_before_writing(tmp_path):
    with pytest.raises(ValueError, match="n_fit=5 .* fewer than k=20"):
        run_audit(AuditConfig(dataset="digits", n_fit=5, k=20), tmp_path/"a", quiet=True)
    with pytest.raises(ValueError, match="dataset must be one of .*got 'imagenet21k'"):
        run_audit(AuditConfig(dataset="imagenet21k"), tmp_path/"b", quiet=True)
    with pytest.raises(ValueError, match=r"noise must be \[0, 1\)"):
        AuditConfig(noise=1.5)
    assert not (tmp_path/"a").exists() and not (tmp_path/"b").exists()


def test_diverged_run_is_a_clear_error_and_keeps_nothing_half_written(tmp_path):
    cfg = AuditConfig(dataset="digits", epochs=3, lr=1e6, scores="speed", score_epochs=1, n_fit=30, n_heldout=30, k=5)
    with pytest.raises(FloatingPointError, match="training diverged"):
        run_audit(cfg, tmp_path/"d", quiet=True)
    assert not (tmp_path/"d"/"results.json").exists() and not (tmp_path/"d"/"metadata.parquet").exists()
    assert TrajectoryStore(tmp_path/"d"/"trajectories").completed == 0


def test_probes_stay_unaugmented_unless_asked(tmp_path, monkeypatch):
    "As in the authors' code, an augmented audit leaves its probes as made; augment_probes=True augments them too."
    import mapd.audit
    seen, real_fit = [], mapd.audit.fit
    def recording_fit(*args, **kwargs):
        seen.append(kwargs.get("fixed_rows"))
        return real_fit(*args, **kwargs)
    monkeypatch.setattr(mapd.audit, "fit", recording_fit)
    cfg = AuditConfig(dataset="digits", epochs=2, augment=True, scores="speed", score_epochs=1, n_fit=30, n_heldout=30, k=5, corrupt_std="paper")
    run_audit(cfg, tmp_path/"a", quiet=True)
    rows = TrajectoryStore(tmp_path/"a"/"trajectories").rows
    assert seen[-1].tolist() == (rows.role == "probe").tolist() and seen[-1].any() and not seen[-1].all()
    run_audit(replace(cfg, augment_probes=True), tmp_path/"b", quiet=True)
    assert seen[-1] is None


def test_one_neighbour_search_per_probe_set(tmp_path, monkeypatch):
    """The metadata step asks each fitted k-NN one search (`MAPD.neighbourhoods`), for the table's rows and the held-out probes
    together; no vote or radius is searched on its own. A second run (cover) is a k-NN of its own probes."""
    from mapd.knn import MAPD
    searched, single = [], []   # the k-NN of each search, kept alive so that no two share an id
    real = MAPD.neighbourhoods
    def counted(self, X, *a, **kw):
        searched.append(self)
        return real(self, X, *a, **kw)
    monkeypatch.setattr(MAPD, "neighbourhoods", counted)
    for name in ("predict_proba", "kth_distance", "kneighbors"):
        orig = getattr(MAPD, name)
        monkeypatch.setattr(MAPD, name, lambda self, *a, _n=name, _f=orig, **kw: single.append(_n) or _f(self, *a, **kw))
    cfg = AuditConfig(dataset="synthetic", noise=0.2, epochs=3, batch_size=64, score_runs=2, score_epochs=2, n_fit=25, n_heldout=25, k=5, ood="sketch")
    a = run_audit(cfg, tmp_path/"a", quiet=True)
    assert single == [], single
    assert len({id(m) for m in searched}) == len(searched), "a k-NN searched twice"
    assert len(searched) == 2 + (a.results["covered_rows"] > 0)   # all categories, the four main ones, and the second run's
