"Settings that do not apply to the chosen data are refused, not recorded as if applied."
import os, subprocess

import numpy as np
import pytest

from conftest import mapd_cmd
from mapd.audit import AuditConfig, run_audit
from mapd.data import make_synthetic


@pytest.mark.parametrize("dataset", ["fashion_mnist", "digits", "synthetic", "npz", "cifar10"])
@pytest.mark.parametrize("field,value", [("image_size", 32), ("channels", 3)])
def test_folder_only_settings_refused(dataset, field, value):
    with pytest.raises(ValueError, match=f"{field}={value}.*applies only to dataset='imagefolder'"):
        AuditConfig(dataset=dataset, data_root="x" if dataset in ("npz", "cifar10") else None, **{field: value})


@pytest.mark.parametrize("dataset", ["digits", "synthetic"])
def test_data_root_refused_where_no_files_are_read(dataset):
    with pytest.raises(ValueError, match="does not apply"): AuditConfig(dataset=dataset, data_root="/tmp")


def test_custom_data_refuses_data_root(tmp_path):
    ds = make_synthetic(64)
    with pytest.raises(ValueError, match="does not apply to dataset='custom'"):
        run_audit(AuditConfig(dataset="npz", data_root=str(tmp_path/"x.npz"), device="cpu"), tmp_path/"out", data=ds, quiet=True)
    assert not (tmp_path/"out").exists()


def test_ood_digits_on_digits_refused(tmp_path):
    with pytest.raises(ValueError, match="would not be foreign"):
        run_audit(AuditConfig(dataset="digits", ood="digits", device="cpu"), tmp_path/"out", quiet=True)
    assert not (tmp_path/"out").exists()


@pytest.mark.parametrize("flag", [["--image-size", "32"], ["--channels", "3"]])
def test_cli_image_size_on_fashion_mnist(tmp_path, flag):
    p = subprocess.run(mapd_cmd() + ["audit", "--dataset", "fashion_mnist", *flag, "--out", str(tmp_path/"out"), "--device", "cpu", "--quiet"],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "applies only to dataset='imagefolder'" in p.stderr, p.stderr
    assert not (tmp_path/"out").exists()


def test_moot_settings_recorded_not_applied(tmp_path):
    "A setting other settings make moot is recorded under not_applied in results.json, and said in its warnings where given (main recorded it as applied)."
    import json
    from edge_helpers import data_args, run
    args = data_args(tmp_path) + ["--exclude-mislabeled", "0.3", "--score-runs", "8", "--noise-kind", "asymmetric", "--alpha", "0.2"]   # scores=speed, noise 0, flags fdr
    p = run(args + ["--out", str(tmp_path/"a")])
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads((tmp_path/"a"/"results.json").read_text())
    for f in ("exclude_mislabeled", "score_runs", "noise_kind", "alpha", "score_kind", "score_ratios"): assert f in r["not_applied"], (f, r["not_applied"])
    for f in ("exclude_mislabeled=0.3", "score_runs=8", "noise_kind='asymmetric'", "alpha=0.2"): assert any(w.startswith(f + " was not applied") for w in r["warnings"]), f
    assert not any(w.startswith("score_kind=") for w in r["warnings"])   # a default made moot is recorded, not warned about
    assert "exclude_mislabeled=0.3 was not applied" in p.stderr   # the summary says it


@pytest.mark.parametrize("kw,moot", [(dict(categories=("typical", "atypical", "ood"), flip_to="confused", corrupt_with="gaussian_blur", typical_pool=0.5), {"flip_to", "corrupt_with", "corrupt_std", "edit_pool", "cover"}),
                                     (dict(categories=("random_labels", "atypical", "ood"), typical_pool=0.5), {"typical_pool"}),
                                     (dict(categories=("random_labels", "corrupted", "ood")), {"typical_pool", "atypical_pool", "score_runs", "score_epochs", "exclude_mislabeled", "exclude_doubted"}),
                                     (dict(flags="rate", augment_probes=True), {"q", "augment_probes", "noise_kind"})])
def test_not_applied_by_category_and_rule(kw, moot):
    from mapd.audit import _not_applied
    na = _not_applied(AuditConfig(**kw), make_synthetic(600))
    assert moot <= set(na), (moot - set(na), na)
    if "categories" in kw and "ood" in kw["categories"]: assert "ood" not in na
    assert "k" not in na and "epochs" not in na


@pytest.mark.parametrize("kw", [dict(scores="speed", flip_to="confused"), dict(scores="speed", flip_to="mixed"),
                                dict(categories=("random_labels", "corrupted", "ood"), flip_to="confused"), dict(device="meta")])
def test_settings_that_need_what_is_absent_refused_before_work(tmp_path, kw):
    "flip_to='confused'/'mixed' needs held-out probabilities; device='meta' trains nothing: refused by AuditConfig, before the folder is made (main wrote scores, then failed)."
    with pytest.raises(ValueError, match="flip_to|device"): AuditConfig(**kw)


def test_cli_flip_to_confused_with_speed_writes_nothing(tmp_path):
    from edge_helpers import data_args, fails
    fails(data_args(tmp_path) + ["--flip-to", "confused", "--out", str(tmp_path/"o")], "flip_to='confused'", "scores='heldout'")
    assert not (tmp_path/"o").exists()


def test_sizes_chosen_are_not_warned_as_given(tmp_path):
    "score_epochs chosen by `sized` for a score file audit is recorded not applied but not warned about as if the user had given it."
    import json
    from edge_helpers import data_args, run
    args = data_args(tmp_path)
    fn = tmp_path/"s.npz"; np.savez(fn, scores=np.linspace(0, 1, 300, dtype=np.float32), labels=np.arange(300) % 3)
    args[args.index("--scores") + 1] = str(fn)
    i = args.index("--score-epochs"); del args[i:i + 2]
    p = run(args + ["--out", str(tmp_path/"a")])
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads((tmp_path/"a"/"results.json").read_text())
    assert {"score_epochs", "score_model", "score_runs"} <= set(r["not_applied"]) and not any("not applied" in w for w in r["warnings"]), r["warnings"]
