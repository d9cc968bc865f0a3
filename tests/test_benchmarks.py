"The benchmarks (GPU, store, k-NN) run end to end at a tiny size on the CPU (behaviour, not time), and environment.yml has the shape conda needs."
import json, math, os, subprocess, sys

import pytest
import torch

from conftest import REPO

BENCH = REPO/"benchmarks"


def _run(script, *args, timeout=120):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    return subprocess.run([sys.executable, str(BENCH/script), *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)


def test_gpu_train_bench_smoke(tmp_path):
    out = tmp_path/"train.json"
    r = _run("bench_gpu_train.py", "--device", "cpu", "--small", "--repeats", "1", "--epochs", "1", "--json", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    for line in ("online / none:", "eval / none:", "online images/s:", "one forward pass over all rows"): assert line in r.stdout
    res = json.loads(out.read_text())
    fig = res["batch_sizes"]["128"]
    assert set(fig["ratio_to_none"]) == {"none", "online", "eval", "forward"}
    assert fig["ratio_to_none"]["none"] == 1.0 and all(math.isfinite(v) and v > 0 for v in fig["ratio_to_none"].values())
    assert res["rows"] == 512 and res["model"] == "cnn" and res["channels_last"]


def test_gpu_knn_bench_smoke(tmp_path):
    out = tmp_path/"knn.json"
    r = _run("bench_gpu_knn.py", "--device", "cpu", "--small", "--repeats", "1", "--sklearn-repeats", "1", "--json", str(out))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for line in ("speedup, scikit-learn / mapd (whole set", "whole set with mapd:", "predict_proba equal to scikit-learn's"): assert line in r.stdout
    res = json.loads(out.read_text())
    assert sum(res["equality"]["differ_not_tie"].values()) == 0 and res["checks"]["equal_to_sklearn"]
    assert res["queries"] == 5000 and res["speedup_vs_sklearn"] > 0


def test_store_bench_smoke(tmp_path):
    out = tmp_path/"store.json"
    r = _run("bench_store.py", "--rows", "3000", "--probes-per-category", "40", "--epochs", "6", "--write-epochs", "4", "--slice", "500",
             "--chunk", "700", "--repeats", "1", "--dir", str(tmp_path), "--json", str(out),
             "--knn-check", "digits", "--knn-epochs", "3", "--knn-k", "10")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for line in ("bytes per example-epoch", "write one epoch", "500 random training rows", "RSS growth", "4 of the 6 epochs written",
                 "k-NN on real trajectories, float16 against float32: digits"): assert line in r.stdout
    res = json.loads(out.read_text())
    s16, s32 = res["store"]["stores"]["float16"], res["store"]["stores"]["float32"]
    assert (s16["bytes_per_example_epoch"], s32["bytes_per_example_epoch"]) == (5, 9)
    assert 2 * s16["file_bytes"]["loss"] == s32["file_bytes"]["loss"] == (3000 + 6 * 40) * 6 * 4
    times = [s["write_s_per_epoch"] for s in (s16, s32)] + [v["s"] for s in (s16, s32) for d in s["reads"].values() for v in d.values()]
    assert all(math.isfinite(t) and t >= 0 for t in times) and len(times) == 2 + 2 * 4 * 2
    assert not list(tmp_path.glob("bench_store_*")), "the stores are removed after"
    for q in res["knn"]["quantities"].values():
        assert q["agree"] >= 0.99 and q["neighbour_changed"] == q["neighbour_changed_near_tie"]


def test_store_bench_refuses_what_the_disk_cannot_hold(tmp_path):
    r = _run("bench_store.py", "--rows", "10000000000", "--dir", str(tmp_path))
    assert r.returncode != 0 and "lower --rows or --epochs" in r.stderr


def test_knn_bench_smoke(tmp_path):
    "bench_knn.py (MAPD against scikit-learn on the CPU) at a tiny size, a slice and the whole set: the ratio is printed and written."
    out = tmp_path/"knn.json"
    r = _run("bench_knn.py", "--size", "tiny", "--repeats", "1", "--slice", "500", "--full", "--json", str(out))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for line in ("scikit-learn / mapd (above 1: mapd faster):", "whole set, once each:", "rows whose probabilities differ from scikit-learn's"):
        assert line in r.stdout
    res = json.loads(out.read_text())
    assert res["queries"] == 2000 and res["slice"] == 500 and res["differ_not_tie"] == 0
    assert res["ratio_sklearn_over_mapd"]["best"] > 0 and res["full"]["ratio"] > 0 and res["full"]["rss_mib_peak"] > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given where there is no CUDA device")
@pytest.mark.parametrize("script", ["bench_gpu_train.py", "bench_gpu_knn.py"])
def test_gpu_bench_without_cuda_says_so(script):
    r = _run(script)  # --device cuda is the default
    assert r.returncode == 0 and "sees no CUDA device" in r.stderr and "--device cpu --small" in r.stderr


def test_environment_yml_shape():
    "No conda solver can reach conda-forge from these machines, so only the file's structure is checked here."
    yaml = pytest.importorskip("yaml")
    env = yaml.safe_load((REPO/"environment.yml").read_text())
    assert env["name"] == "mapd"
    assert {"conda-forge", "rapidsai"} <= set(env["channels"])
    deps = env["dependencies"]
    names = {d.split("=")[0].split()[0] for d in deps if isinstance(d, str)}
    assert {"python", "pytorch", "cuml", "cuda-version", "pip", "numpy", "scikit-learn", "pandas"} <= names
    assert any(isinstance(d, str) and d.replace(" ", "").startswith("pytorch=*=cuda") for d in deps), "pytorch must be a CUDA build"
    pip = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert len(pip) == 1, f"one pip section expected, got {len(pip)}"
    editable = [p for p in pip[0] if p.split("#")[0].strip().startswith("-e .")]
    assert editable, f"the pip section must install this checkout (-e .), but is {pip[0]}"
    assert (REPO/"pyproject.toml").exists()  # `-e .` resolves relative to environment.yml's folder


def test_gpu_check_script_smoke(tmp_path):
    "scripts/gpu_check.sh, the one command a GPU machine runs, end to end on the CPU at its smallest: every step passes and leaves its file."
    out = tmp_path/"gpu"
    r = subprocess.run(["bash", str(REPO/"scripts"/"gpu_check.sh"), "--device", "cpu", "--small", "--out", str(out)],
                       capture_output=True, text=True, timeout=400, cwd=REPO)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    summary = json.loads((out/"summary.json").read_text())
    assert set(summary["steps"]) == {"nbdev_gpu", "gpu_train", "gpu_knn", "audit", "planted"}
    assert all(s["exit"] == 0 for s in summary["steps"].values())
    assert summary["env"]["device"] == "cpu" and summary["gpu_knn"]["checks"]["equal_to_sklearn"]
    assert 0 <= summary["audit"]["probe_accuracy_main"] <= 1 and (out/"planted"/"results.json").exists()


def test_gpu_check_script_refuses_a_missing_gpu(tmp_path):
    "Asked for CUDA where there is none, the script says so and stops with exit code 2 before any step."
    if torch.cuda.is_available(): pytest.skip("a GPU is here")
    r = subprocess.run(["bash", str(REPO/"scripts"/"gpu_check.sh"), "--out", str(tmp_path/"g")], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 2 and "no CUDA device" in r.stdout
    assert not (tmp_path/"g"/"steps.tsv").read_text()


def test_metadata_bench_smoke(tmp_path):
    "The metadata step's benchmark: one neighbour search against the old sequence of searches, and today's step against the module at cb7de79."
    out = tmp_path/"metadata.json"
    r = _run("bench_metadata.py", "--size", "tiny", "--repeats", "1", "--json", str(out))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for line in ("now 1 neighbourhoods", "searches, before / now:", "the metadata step, before / now:"): assert line in r.stdout
    res = json.loads(out.read_text())
    assert res["votes_differ"] == 0 and res["radius_max_rel_err"] < 1e-4 and res["flags_differ"] == 0
    assert res["search_ratio_median"] > 0 and res["step_ratio_median"] > 0
