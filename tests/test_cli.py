"The `mapd` command line."
import json, subprocess

from conftest import mapd_cmd


def test_audit_command_writes_results(tmp_path):
    out = tmp_path/"a"
    r = subprocess.run(mapd_cmd() + ["audit", "--dataset", "synthetic", "--epochs", "2", "--score-runs", "1", "--score-epochs", "1",
                                     "--n-fit", "20", "--n-heldout", "20", "--k", "5", "--out", str(out), "--quiet"],
                       capture_output=True, text=True, check=True)
    printed = json.loads(r.stdout[r.stdout.index("{"):])
    assert printed["probe_accuracy_6"] == json.loads((out/"results.json").read_text())["probe_accuracy_6"]


def test_bad_input_exits_2_with_a_message(tmp_path):
    r = subprocess.run(mapd_cmd() + ["audit", "--dataset", "cifar10", "--out", str(tmp_path/"c")], capture_output=True, text=True)
    assert r.returncode == 2 and "cifar10 needs root=" in r.stderr
    r = subprocess.run(mapd_cmd() + ["audit", "--dataset", "cifar10", "--data-root", str(tmp_path), "--out", str(tmp_path/"c")], capture_output=True, text=True)
    assert r.returncode != 0 and "cifar" in r.stderr.lower()
    assert not (tmp_path/"c").exists()


def test_version():
    r = subprocess.run(mapd_cmd() + ["--version"], capture_output=True, text=True, check=True)
    assert r.stdout.startswith("mapd ")
