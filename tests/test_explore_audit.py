"The explorer reads an audit through Audit.load and flags as its table does, whatever the k-NN reads (`knn_input`)."
import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from mapd.audit import Audit, AuditConfig
from mapd.data import make_synthetic
from mapd.explore import Explorer
from mapd.metadata import calibrated_table, save_table
from mapd.store import TrajectoryStore

E = 6


def _audit_folder(d, knn_input: str):
    """A tiny audit folder, as run_audit leaves it, whose rows are alike in loss and apart in margin: 512 trained rows, half of them
    with the margin of the random-label probes, and 2 x 80 probes. Only a k-NN that reads the margin tells the halves apart."""
    ds = make_synthetic(672)   # 512 trained as they are, 160 the probes were made from
    rng = np.random.default_rng(0)
    low = np.r_[np.arange(512) % 2 == 1, np.zeros(80, bool), np.ones(80, bool)]   # the rows whose margin stays low: like random labels
    rows = pd.DataFrame(dict(role=["train"] * 512 + ["probe"] * 160, category=[""] * 512 + ["typical"] * 80 + ["random_labels"] * 80,
                             split=[""] * 512 + (["fit"] * 40 + ["heldout"] * 40) * 2, index=range(672), label=list(ds.labels.numpy()[:512]) + [0] * 160))
    L = 2.3 * np.exp(-0.3 * np.arange(E))[None] + rng.normal(0, 0.05, (672, E))
    M = np.where(low, -2.0, 2.0)[:, None] + rng.normal(0, 0.1, (672, E))
    st = TrajectoryStore.create(d/"trajectories", rows, E)
    for e in range(E): st.write_epoch(e, loss=L[:, e], margin=M[:, e], correct=np.zeros(672))
    cfg = AuditConfig(dataset="synthetic", epochs=E, k=10, n_fit=40, n_heldout=40, categories=("typical", "random_labels"), knn_input=knn_input)
    (d/"config.json").write_text(json.dumps(asdict(cfg)))
    (d/"results.json").write_text(json.dumps(dict(n_train=512, n_probes=160, n_rows=672, category_counts={}, parameters=asdict(cfg))))   # what Audit.load checks
    table = calibrated_table(st, k=cfg.k, quantity=knn_input, flags=cfg.flags, q=cfg.q, alpha=cfg.alpha, seed=cfg.seed)[0]   # as run_audit writes it
    save_table(table, d/"metadata.parquet")
    return ds, st, table


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    d = tmp_path_factory.mktemp("explore")/"audit"
    return d, *_audit_folder(d, "loss+margin")


def test_the_explorers_flags_are_the_tables(both):
    "For a loss+margin audit the explorer's flags at the last epoch are the table's (it read the loss alone, and flagged otherwise)."
    d, ds, st, table = both
    ex = Explorer(d, dataset=ds, device="cpu")
    flags = [c for c in table.columns if c.startswith("flag_")]
    assert flags and table.flag_random_labels.sum() > 200   # the low-margin half is flagged ...
    loss_only = calibrated_table(st, k=10, quantity="loss")[0]
    assert (loss_only[flags].to_numpy() != table[flags].to_numpy()).any()   # ... and a k-NN of the loss alone flags otherwise
    got = ex.assignments(ex.n_epochs).reset_index(drop=True)
    pd.testing.assert_frame_equal(got[flags + ["category"]], table[flags + ["category"]])
    pd.testing.assert_frame_equal(got, table)
    assert (ex.k, ex.quantity, ex.curves_of) == (10, "loss+margin", "loss")
    np.testing.assert_array_equal(ex.trajectory(3), st.trajectories("loss", [3])[0])   # the curves draw a recorded quantity


def test_an_audit_object_opens_as_its_folder(both):
    d, ds, st, table = both
    audit = Audit.load(d)
    ex = Explorer(audit, dataset=ds, device="cpu")
    assert ex.audit is audit and ex.config == audit.config and ex.results == audit.results
    pd.testing.assert_frame_equal(ex.assignments(E).reset_index(drop=True), table)
    assert type(audit.explore(dataset=ds, device="cpu")) is Explorer
