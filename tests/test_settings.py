"Every setting is checked before any work: in Python (every configuration) and on the command line, where nothing is written."
import subprocess, time

import pytest

from conftest import mapd_cmd
from mapd.audit import AuditConfig, run_audit
from mapd.correction import CorrectionConfig
from mapd.prioritized import SelectionConfig
from mapd.train import TrainConfig

BAD_AUDIT = [
    (dict(k=0), "k must be >=1"), (dict(k=-3), "k must be >=1"), (dict(n_fit=0), "n_fit must be >=1"), (dict(n_heldout=0), "n_heldout must be >=1"),
    (dict(epochs=0), "epochs must be >=1"), (dict(batch_size=0), "batch_size must be >=1"), (dict(lr=0), "lr must be >0"), (dict(lr=-1), "lr must be >0"),
    (dict(lr=float("inf")), "lr must be float"), (dict(weight_decay=-1e-4), "weight_decay must be >=0"), (dict(model="vgg16"), "model must be one of"),
    (dict(score_model="resnet"), "score_model must be one of"), (dict(ood="mnist"), "ood must be one of"), (dict(categories=("typical", "weird")), "categories must be one of"),
    (dict(categories=("typical", "typical")), "at least two different"), (dict(dataset="imagenet"), "dataset must be one of"),
    (dict(scores="missing/cscores.npz"), "no such file"), (dict(augment="ture"), "augment must be bool"), (dict(augment=1), "augment must be bool"),
    (dict(k=2.5), "k must be int"), (dict(k="20"), "k must be int"), (dict(noise=1.0), "noise must be [0, 1)"), (dict(alpha=0), "alpha must be (0, 1)"),
    (dict(el2n_at=0), "el2n_at must be (0, 1]"), (dict(typical_pool=1.5), "typical_pool must be (0, 1]"), (dict(score_ratios=(0.0,)), "score_ratios must be (0, 1)"),
    (dict(score_ratios=()), "at least one ratio"), (dict(score_runs=0), "score_runs must be >=1"), (dict(channels=2), "channels must be one of"),
    (dict(corrupt_std="-1"), "corrupt_std must be"), (dict(corrupt_std="nan"), "corrupt_std must be"), (dict(record="none"), "record must be one of"),
    (dict(noise_kind="pairwise"), "noise_kind must be one of"), (dict(dataset="npz"), "needs data_root"), (dict(device="tpu"), "device must be"),
    (dict(n_fit=5, k=20), "fewer than k=20"), (dict(seed=-1), "seed must be >=0"), (dict(cover="some"), "cover must be one of"), (dict(q=1), "q must be (0, 1)"),
]


@pytest.mark.parametrize("bad,msg", BAD_AUDIT, ids=[str(b) for b, _ in BAD_AUDIT])
def test_audit_config_refuses(bad, msg):
    with pytest.raises(ValueError) as e: AuditConfig(**bad)
    assert msg in str(e.value), str(e.value)


@pytest.mark.parametrize("cls,bad,msg", [
    (TrainConfig, dict(epochs=0), "epochs must be >=1"), (TrainConfig, dict(lr=0.0), "lr must be >0"), (TrainConfig, dict(momentum=1.5), "momentum must be [0, 1)"),
    (TrainConfig, dict(augment="yes"), "augment must be bool"), (TrainConfig, dict(amp="on"), "amp must be one of"), (TrainConfig, dict(milestones=(0,)), "milestones must be >=1"),
    (CorrectionConfig, dict(method="gce"), "method must be one of"), (CorrectionConfig, dict(k=0), "k must be >=1"), (CorrectionConfig, dict(beta_soft=2.0), "beta_soft must be [0, 1]"),
    (CorrectionConfig, dict(clean_probe="yes"), "clean_probe must be one of"), (CorrectionConfig, dict(pretrain=-1), "pretrain must be >=0"),
    (SelectionConfig, dict(steps=0), "steps must be >=1"), (SelectionConfig, dict(lr=-1.0), "lr must be >0"), (SelectionConfig, dict(method="random"), "method must be one of"),
    (SelectionConfig, dict(n_select=0), "n_select must be >=1"), (SelectionConfig, dict(eval_every=0), "eval_every must be >=1"),
])
def test_other_configs_refuse(cls, bad, msg):
    with pytest.raises(ValueError) as e: cls(**bad)
    assert msg in str(e.value), str(e.value)


# settings with a fixed set of values are refused by the argument parser (its choices come from AUDIT_RULES), the others by AuditConfig
CLI_BAD = [
    (["--k", "0"], "k must be >=1"), (["--augment", "ture"], "argument --augment"), (["--model", "vgg"], "argument --model: invalid choice"),
    (["--n-fit", "0"], "n_fit must be >=1"), (["--epochs", "-1"], "epochs must be >=1"), (["--lr", "0"], "lr must be >0"),
    (["--batch-size", "0"], "batch_size must be >=1"), (["--scores", "nowhere.npz"], "no such file"), (["--ood", "cifar"], "argument --ood: invalid choice"),
    (["--categories", "typical", "noisy"], "argument --categories: invalid choice"), (["--dataset", "mnist"], "argument --dataset: invalid choice"),
    (["--k", "ten"], "argument --k"), (["--score-ratios", "0.5", "x"], "argument --score-ratios"), (["--el2n-at", "2"], "el2n_at must be (0, 1]"),
    (["--dataset", "digits", "--n-fit", "400", "--n-heldout", "400"], "need 4000 training examples"),
]


@pytest.mark.parametrize("args,msg", CLI_BAD, ids=[" ".join(a) for a, _ in CLI_BAD])
def test_cli_refuses_before_writing(tmp_path, args, msg):
    out = tmp_path/"never"
    t0 = time.perf_counter()
    p = subprocess.run(mapd_cmd() + ["audit", "--out", str(out), "--device", "cpu", "--quiet", *args], capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stderr
    assert msg in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    assert not out.exists(), "a refused run wrote into its output folder"
    assert time.perf_counter() - t0 < 60, "refused only after real work"


@pytest.mark.parametrize("value,expected", [("true", True), ("TRUE", True), ("1", True), ("yes", True), ("false", False), ("0", False), ("No", False)])
def test_cli_booleans(value, expected):
    from mapd.cli import parser
    assert parser().parse_args(["audit", "--augment", value]).augment is expected


def test_cli_el2n_can_be_turned_off(tmp_path):
    from mapd.cli import parser
    a = parser().parse_args(["audit", "--el2n-at", "none", "--typical-pool", "none"])
    assert a.el2n_at is None and a.typical_pool is None
    cfg = AuditConfig(el2n_at=a.el2n_at)
    assert cfg.training().keep_probs == ()


def test_train_and_test_of_other_shapes_refused(tmp_path):
    import numpy as np
    fn = tmp_path/"mixed.npz"
    rng = np.random.default_rng(0)
    np.savez(fn, images=rng.integers(0, 255, (600, 8, 8), dtype=np.uint8), labels=np.arange(600) % 3,
             test_images=rng.integers(0, 255, (50, 9, 9), dtype=np.uint8), test_labels=np.arange(50) % 3)
    with pytest.raises(ValueError, match="both splits must have one image size"):
        run_audit(AuditConfig(dataset="npz", data_root=str(fn), n_fit=20, n_heldout=20, k=5), tmp_path/"out", quiet=True)
    assert not (tmp_path/"out").exists()
