"MAP-D's issue types in cleanlab's Datalab, on the trajectories of a real audit of Fashion-MNIST with flipped labels."
import contextlib, io, subprocess, sys

import numpy as np
import pytest
import torch

pytest.importorskip("cleanlab.datalab", reason='the Datalab integration needs pip install "cleanlab[datalab]"')
from cleanlab import Datalab

from mapd.audit import AuditConfig, run_audit
from mapd.data import find_fashion_mnist, inject_label_noise, load_fashion_mnist
from mapd.metadata import detection_scores
from mapd.integrations.datalab import ISSUE_CATEGORIES, MAPD_ISSUE_MANAGERS, find_mapd_issues, metadata_from

# AUROC of 1 - mapd_random_labels_score against the flipped labels, on the rows MAP-D scores. Measured with this fixture's settings
# (5,000 images, seeds 0, 1, 2 of the subset and the audit): 0.915, 0.928, 0.937; the same scores on shuffled rows: 0.483, 0.497, 0.492.
AUROC_BAR = 0.85


@pytest.fixture(scope="session")
def fm_audit(tmp_path_factory):
    "A small real audit of 5,000 Fashion-MNIST training images, 20% of their labels flipped (about 10 s on 2 cores), and the noisy set it saw."
    try: find_fashion_mnist()
    except FileNotFoundError as e: pytest.skip(f"Fashion-MNIST not on this machine: {e}")
    fm = load_fashion_mnist("train")
    train = fm.subset(torch.randperm(len(fm), generator=torch.Generator().manual_seed(0))[:5000])
    test = load_fashion_mnist("test").subset(torch.arange(500))
    cfg = AuditConfig(noise=0.2, epochs=10, n_fit=50, n_heldout=50, k=10, score_epochs=2, cover="trained", device="cpu")   # the sources of edited probes stay without a row
    audit = run_audit(cfg, tmp_path_factory.mktemp("fashion")/"audit", data=(train, test), quiet=True)
    return audit, inject_label_noise(train, cfg.noise, cfg.noise_kind, seed=cfg.seed)


def find(data: dict, pred_probs=None, **issue_types) -> Datalab:
    "A Datalab over `data` (labels in its 'label' column) after find_issues with `issue_types`; fails on the errors cleanlab only prints."
    lab = Datalab(data=data, label_name="label", verbosity=0)
    out = io.StringIO()
    with contextlib.redirect_stdout(out): lab.find_issues(pred_probs=pred_probs, issue_types=issue_types)
    assert "Error in" not in out.getvalue() and "Failed to check" not in out.getvalue(), out.getvalue()
    return lab


def shuffled(audit, noisy, seed: int = 1):
    "The whole noisy training set as a user's Datalab holds it, in its own order: labels, example ids, held-out probabilities, truth."
    order = np.random.default_rng(seed).permutation(len(noisy))
    data = {"label": noisy.labels.numpy()[order], "index": noisy.index.numpy()[order]}
    return data, np.load(audit.path/"heldout_probs.npy")[order], noisy.is_noisy.numpy()[order]


def test_columns_in_the_tables_order(fm_audit):
    audit, _ = fm_audit
    t = audit.table
    lab = find({"label": t.label.to_numpy()}, mapd={"source": audit})
    iss = lab.get_issues()
    assert len(iss) == len(t)
    for c in ISSUE_CATEGORIES:
        assert lab.get_issues(f"mapd_{c}").columns.tolist() == [f"is_mapd_{c}_issue", f"mapd_{c}_score"]
        np.testing.assert_allclose(iss[f"mapd_{c}_score"], 1 - t[f"p_{c}"].to_numpy(np.float64), atol=1e-6)
        assert (iss[f"is_mapd_{c}_issue"].to_numpy() == t[f"flag_{c}"].to_numpy()).all()
        assert lab.get_issue_summary(f"mapd_{c}").num_issues[0] == int(t[f"flag_{c}"].sum())
        assert iss[f"mapd_{c}_score"].between(0, 1).all()
    assert sorted(lab.get_issue_summary().issue_type) == sorted(["mapd", *(f"mapd_{c}" for c in ISSUE_CATEGORIES)])
    assert (iss.is_mapd_issue.to_numpy() == t[[f"flag_{c}" for c in ISSUE_CATEGORIES]].any(axis=1).to_numpy()).all()
    assert (iss.mapd_category.to_numpy() == t.category.astype(str).to_numpy()).all()
    assert lab.get_info("mapd")["issue_rules"]["random_labels"] == "flag_random_labels"


def test_the_whole_training_set_beside_cleanlabs_label_issues(fm_audit):
    audit, noisy = fm_audit
    t, cfg = audit.table, audit.config
    data, pred_probs, _ = shuffled(audit, noisy)
    lab = find(data, pred_probs, label={}, mapd={"source": audit, "rows": "index", "missing": "clean"})
    iss = lab.get_issues()
    assert {"is_label_issue", "label_score", "is_mapd_random_labels_issue", "mapd_random_labels_score", "is_mapd_issue"} <= set(iss.columns)
    assert {"label", "mapd", "mapd_random_labels"} <= set(lab.get_issue_summary().issue_type)
    assert lab.get_issues("label").is_label_issue.sum() > 0
    # each Datalab row carries the verdict of its own example
    p = t.set_index("index").p_random_labels.reindex(data["index"]).to_numpy()
    scored = ~np.isnan(p)
    np.testing.assert_allclose(iss.mapd_random_labels_score.to_numpy()[scored], 1 - p[scored], atol=1e-6)
    # the examples the probes were made from: no verdict, reported clean
    assert (~scored).sum() == 2 * (cfg.n_fit + cfg.n_heldout) == lab.get_info("mapd")["unscored_rows"]   # random_labels and corrupted; natural probes have rows
    assert not iss.is_mapd_issue[~scored].any() and (iss.mapd_score[~scored] == 1).all() and iss.mapd_category[~scored].isna().all()
    out = io.StringIO()
    with contextlib.redirect_stdout(out): lab.report(num_examples=3)
    summary = lab.get_issue_summary()
    with_issues = set(summary.issue_type[summary.num_issues > 0])
    assert "label" in with_issues   # the report has a section exactly for each issue type with issues (which MAP-D flags take rows varies with the machine's floats)
    assert all((f" {n} issues -" in out.getvalue()) == (n in with_issues) for n in ["label", "mapd", *(f"mapd_{c}" for c in ISSUE_CATEGORIES)])
    for verbosity in range(5):   # every level prints its info keys, for every MAP-D issue type, with issues or without
        out = io.StringIO()
        with contextlib.redirect_stdout(out): lab.report(num_examples=2, verbosity=verbosity, show_all_issues=True)
        assert all(f"-- mapd_{c} issues --" in out.getvalue() for c in ISSUE_CATEGORIES)
    assert "issue_rules" in out.getvalue() and "category_counts" in out.getvalue()


def test_random_labels_issues_are_the_flipped_labels(fm_audit):
    audit, noisy = fm_audit
    data, pred_probs, truth = shuffled(audit, noisy)
    lab = find(data, pred_probs, label={}, mapd={"source": audit, "rows": "index", "missing": "clean"})
    iss = lab.get_issues()
    scored = iss.mapd_category.notna().to_numpy()
    auroc = detection_scores(truth[scored], 1 - iss.mapd_random_labels_score[scored])["auroc"]
    assert auroc > AUROC_BAR, auroc
    flagged = iss.is_mapd_random_labels_issue.to_numpy()
    assert not flagged.any() or truth[flagged].mean() > 0.8   # the calibrated flags are few in an audit this small, but right
    # the k-NN's most probable category: hundreds of issues, nearly all flipped (measured 97-99%, 20% of all rows are)
    argmax = find(data, mapd={"source": audit, "rows": "index", "missing": "clean", "rule": "argmax"}).get_issues()
    mine = argmax.is_mapd_random_labels_issue.to_numpy()
    assert mine.sum() >= 100 and truth[mine].mean() > 0.8 > 3 * truth.mean()
    # rows out of order: the label check refuses them; without it, the scores no longer find the flipped labels
    t = audit.table
    order = np.random.default_rng(2).permutation(len(t))
    with pytest.raises(ValueError, match="the rows are not aligned"): find({"label": t.label.to_numpy()[order]}, mapd={"source": audit})
    wrong = find({"label": t.label.to_numpy()[order]}, mapd={"source": audit, "check_labels": False}).get_issues()
    bad = detection_scores(t.is_noisy.to_numpy()[order], 1 - wrong.mapd_random_labels_score)["auroc"]
    assert abs(bad - 0.5) < 0.1 and bad < AUROC_BAR, bad


def test_other_sources_and_one_category_alone(fm_audit):
    audit, _ = fm_audit
    t, cfg = audit.table, audit.config
    labels = {"label": t.label.to_numpy()}
    from_folder = find(labels, mapd_random_labels={"source": audit.path}).get_issues()
    assert from_folder.columns.tolist() == ["is_mapd_random_labels_issue", "mapd_random_labels_score"]
    from_store = find(labels, mapd_random_labels={"source": audit.store, "k": cfg.k, "alpha": cfg.alpha}).get_issues()
    assert from_folder.equals(from_store)   # the store's k-NN and flags are the audit's (the veto touches image problems only)
    assert (from_store.is_mapd_random_labels_issue.to_numpy() == t.flag_random_labels.to_numpy()).all()
    assert metadata_from(audit.path).equals(t) and metadata_from(t) is t
    assert set(MAPD_ISSUE_MANAGERS) == {"typical", "atypical", "random_labels", "random_inputs", "corrupted", "ood"}
    two = find(labels, mapd={"source": t, "categories": ["random_labels", "typical"]})
    assert sorted(two.get_issue_summary().issue_type) == ["mapd", "mapd_random_labels", "mapd_typical"]
    assert two.get_info("mapd_typical")["issue_rules"] == {"typical": "category == 'typical'"}


def test_bad_input(fm_audit):
    audit, noisy = fm_audit
    t = audit.table
    labels = {"label": t.label.to_numpy()}
    with pytest.raises(ValueError, match=f"the MAP-D table has {len(t):,} rows but the Datalab {len(t) - 1:,}"):
        find({"label": t.label.to_numpy()[:-1]}, mapd={"source": audit})
    with pytest.raises(ValueError, match=r"unknown MAP-D categories \['noisy'\]"): find(labels, mapd={"source": audit, "categories": ["noisy"]})
    with pytest.raises(ValueError, match="needs source="): find(labels, mapd={})
    with pytest.raises(ValueError, match="rows='id' names no column"): find(labels, mapd={"source": audit, "rows": "id"})
    with pytest.raises(ValueError, match="reports 'ood' only"): find(labels, mapd_ood={"source": audit, "categories": ["ood"]})
    with pytest.raises(ValueError, match="rule must be 'flag' or 'argmax'"): find(labels, mapd={"source": audit, "rule": "best"})
    with pytest.raises(TypeError, match="unexpected keyword argument 'categores'"): find(labels, mapd={"source": audit, "categores": ["ood"]})
    data, _, _ = shuffled(audit, noisy)
    with pytest.raises(ValueError, match="200 of the 5,000 rows are examples the MAP-D table does not score"):
        find(data, mapd={"source": audit, "rows": "index"})
    with pytest.raises(ValueError, match="each example id once"): find_mapd_issues(audit, rows=[3, 3])
    with pytest.raises(TypeError, match="source must be an audit"): find_mapd_issues([1, 2, 3])
    with pytest.raises(FileNotFoundError, match="neither an audit's metadata.parquet"): find_mapd_issues(audit.path.parent)



def test_rows_in_another_order_are_refused_whatever_the_labels_are_called(fm_audit):
    """Issue 32.5: a Datalab whose labels are class names (not ids) in another order than the table's was let through, and a third of its rows got another
    example's score; now the pairing of each table class with one name is checked row by row, for names, for ids, and for rows reordered, cut or repeated."""
    audit, _ = fm_audit
    t = audit.table
    names = np.array(["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"])
    y = t.label.to_numpy()
    lab = find({"label": names[y]}, mapd={"source": audit})   # in the table's order: accepted
    assert len(lab.get_issues("mapd_random_labels")) == len(t)
    order = np.random.default_rng(0).permutation(len(t))
    moved = [order,                                        # reordered
             np.roll(np.arange(len(t)), 1),                # shifted by one row
             np.r_[np.arange(len(t) - 50), np.arange(50)],  # the last rows replaced by the first again
             np.where(np.arange(len(t)) % 7 == 0, np.roll(np.arange(len(t)), 3), np.arange(len(t)))]   # every 7th row from elsewhere
    for o in moved:
        for labels in (names[y[o]], y[o]):   # by name, by id
            if (labels == (names[y] if labels.dtype.kind == "U" else y)).mean() > 0.995: continue   # (a reordering that left the labels as they were)
            with pytest.raises(ValueError, match="the Datalab's labels differ from the MAP-D table's"): find({"label": labels}, mapd={"source": audit})
    with pytest.raises(ValueError, match="Datalab label '[A-Za-z-]+'"):   # the Datalab's own name of the label, not its position
        find({"label": names[y[order]]}, mapd={"source": audit})

def test_mapd_imports_without_cleanlab():
    "The core package needs no cleanlab; the integration says how to get it."
    code = ("import sys; sys.modules['cleanlab'] = None\n"
            "import mapd.audit, mapd.metadata, mapd.integrations\n"
            "try: import mapd.integrations.datalab\n"
            "except ImportError as e: print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'pip install "cleanlab[datalab]"' in out.stdout
