"A probe category of your own is one registration: the audit makes, trains, scores, flags and reports it like the paper's, and refuses it unregistered."
import numpy as np
import pandas as pd
import pytest
import torch

from mapd.audit import Audit, AuditConfig, run_audit
from mapd.categories import CATEGORY_TABLE, register_category, unregister_category
from mapd.integrations.datalab import find_mapd_issues
from mapd.probes import examples_taken
from mapd.store import TrajectoryStore

CATS = ("typical", "atypical", "random_labels", "inverted")


@pytest.fixture
def inverted():
    rec = register_category("inverted", lambda ds, pick, n, g: 255 - ds.images[pick], description="Learned like images with inverted grey levels.")
    yield rec
    unregister_category("inverted")


def test_unregistered_category_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="categories must be one of"):
        AuditConfig(dataset="digits", categories=CATS)
    assert not (tmp_path/"a").exists()


def test_a_registered_category_is_audited_like_the_papers(inverted, tmp_path):
    cfg = AuditConfig(dataset="digits", categories=CATS, epochs=6, batch_size=64, scores="speed", score_epochs=2,
                      n_fit=40, n_heldout=40, k=10, device="cpu")
    audit = run_audit(cfg, tmp_path/"a", quiet=True)
    t = audit.table
    assert {"p_inverted", "flag_inverted"} <= set(t.columns)
    assert set(t.category) <= set(CATS)
    # the probes are the inverted images of examples no other probe took, with their labels; those examples left the training set
    store = TrajectoryStore(tmp_path/"a"/"trajectories")
    rows = store.rows
    inv = rows[(rows.role == "probe") & (rows.category == "inverted")]
    assert len(inv) == 80 and (inv["index"] >= 0).all()
    assert not rows[rows.role == "train"]["index"].isin(inv["index"]).any()
    suite, _ = audit._rebuild()
    src = pd.Series(np.arange(len(audit.train)), index=audit.train.index.numpy())[suite.source[suite.category == "inverted"]].to_numpy()
    assert torch.equal(suite.images[torch.from_numpy(np.array(suite.category == "inverted", dtype=bool))], 255 - audit.train.images[src])
    # the edited probe's sources are scored by the second run (cover), like random_labels'
    assert examples_taken("inverted", audit.train) == "edited"
    # a folder reloads with the category registered, and Datalab reports it as an issue type of its own
    again = Audit.load(tmp_path/"a")
    assert again.table.equals(t)
    issues = find_mapd_issues(again)
    assert "is_mapd_inverted_issue" in issues.columns
    assert issues.attrs["categories"][-2:] == ["inverted", "atypical"] and CATEGORY_TABLE["inverted"].kind == "image"
