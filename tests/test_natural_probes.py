"The natural probes keep flipped labels out, and held-out models veto image-problem flags on rows they recognise (issue 10)."
import numpy as np
import pandas as pd
import pytest

from mapd.settings import AuditConfig, PAPER_PROBES
from mapd.audit import Audit, run_audit
from mapd.categories import image_problems


@pytest.fixture(scope="module")
def two_audits(tmp_path_factory):
    "The same noisy digits audited with the default natural probes and with the paper's (held-out scores, real training)."
    base = dict(dataset="digits", noise=0.2, epochs=12, batch_size=64, score_runs=1, score_epochs=10, n_fit=40, n_heldout=40, k=10, device="cpu",
                corrupt_std="paper")
    d = tmp_path_factory.mktemp("natural")
    new = run_audit(AuditConfig(**base), d/"default", quiet=True).results
    paper = run_audit(AuditConfig(**{**base, **PAPER_PROBES}), d/"paper", quiet=True).results
    return d, base, new, paper


def test_flipped_labels_kept_out_of_the_atypical_probe(two_audits):
    d, base, new, paper = two_audits
    # the paper's atypical probe (the least consistent examples) is mostly flipped labels at 20% noise; the default's is not
    assert paper["atypical_probe_noisy_fraction"] > 0.6, paper["atypical_probe_noisy_fraction"]
    assert new["atypical_probe_noisy_fraction"] < paper["atypical_probe_noisy_fraction"] - 0.2, (new["atypical_probe_noisy_fraction"], paper["atypical_probe_noisy_fraction"])
    assert new["natural_probe_excluded"] > 0 and paper["natural_probe_excluded"] is None
    assert (d/"default"/"heldout_probs.npy").exists()


def test_likely_mislabeled_column_vetoes_image_flags(two_audits):
    d, base, new, paper = two_audits
    t = pd.read_parquet(d/"default"/"metadata.parquet")
    lm = t.likely_mislabeled.to_numpy()
    assert lm.sum() == new["likely_mislabeled_rows"] > 0
    assert t.is_noisy[lm].mean() > t.is_noisy[~lm].mean()   # the held-out models' disagreement points at the flipped labels
    for c in image_problems():
        assert not (t[f"flag_{c}"].to_numpy() & lm).any()
    assert all(t[c].dtype == bool for c in t.columns if c.startswith("flag_")), t.dtypes
    assert "likely_mislabeled" not in pd.read_parquet(d/"paper"/"metadata.parquet")


def test_reopened_audit_rebuilds_the_same_probes(two_audits):
    d, base, new, paper = two_audits
    a = Audit.load(d/"default")   # rebuilds the suite from scores.npy and heldout_probs.npy: must match the rows trained on
    assert len(a.combined) == a.store.n_rows
    pos = pd.Series(np.arange(len(a.train)), index=a.train.index.numpy())
    src = a.suite.source[(a.suite.category == "atypical")]
    from mapd.scores import likely_mislabeled
    lm = likely_mislabeled(np.load(d/"default"/"heldout_probs.npy"), a.train.labels)
    assert not lm[pos[src].to_numpy()].any()


def test_edited_probes_start_from_clean_examples(two_audits):
    "Random-label and corrupted probes edit consistent examples: none already flipped (the paper's draw from all takes about the noise rate)."
    d = two_audits[0]
    noisy = {}
    for name in ("default", "paper"):
        a = Audit.load(d/name)
        train, s, sc = a.train, a.suite, np.load(d/name/"scores.npy")
        pos = pd.Series(np.arange(len(train)), index=train.index.numpy())
        src = pos[s.source[np.isin(s.category, ["random_labels", "corrupted"])]].to_numpy()
        noisy[name] = float(train.is_noisy.numpy()[src].mean())
        if name == "default":
            assert (sc[src] >= np.quantile(sc, 0.2) - 1e-9).all()   # from the most consistent 80%
            lm = a.results["natural_probe_excluded"]; assert lm > 0
    assert noisy["paper"] > 0.1 and noisy["default"] < noisy["paper"] / 2, noisy


def test_unrecognised_examples_counted(two_audits):
    d, base, new, paper = two_audits
    assert isinstance(new["unrecognised_rows"], int) and paper["unrecognised_rows"] is None
