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
