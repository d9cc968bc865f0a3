"The `mapd` command line."
import json, subprocess

from conftest import mapd_cmd, write_image_folder


def test_audit_command_writes_results(tmp_path):
    out = tmp_path/"a"
    r = subprocess.run(mapd_cmd() + ["audit", "--dataset", "synthetic", "--epochs", "2", "--score-runs", "1", "--score-epochs", "1",
                                     "--n-fit", "20", "--n-heldout", "20", "--k", "5", "--out", str(out), "--quiet"],
                       capture_output=True, text=True, check=True)
    printed = json.loads(r.stdout[r.stdout.index("{"):])
    assert printed["probe_accuracy"] == json.loads((out/"results.json").read_text())["probe_accuracy"]


def test_bad_input_exits_2_with_a_message(tmp_path):
    r = subprocess.run(mapd_cmd() + ["audit", "--dataset", "cifar10", "--out", str(tmp_path/"c")], capture_output=True, text=True)
    assert r.returncode == 2 and "cifar10 needs root=" in r.stderr
    r = subprocess.run(mapd_cmd() + ["audit", "--dataset", "cifar10", "--data-root", str(tmp_path), "--out", str(tmp_path/"c")], capture_output=True, text=True)
    assert r.returncode != 0 and "cifar" in r.stderr.lower()
    assert not (tmp_path/"c").exists()


def test_version():
    r = subprocess.run(mapd_cmd() + ["--version"], capture_output=True, text=True, check=True)
    assert r.stdout.startswith("mapd ")


def test_audit_of_an_image_folder_keeps_paths(tmp_path):
    import pandas as pd
    write_image_folder(tmp_path/"data")
    out = tmp_path/"a"
    r = subprocess.run(mapd_cmd() + ["audit", "--dataset", "imagefolder", "--data-root", str(tmp_path/"data"), "--image-size", "10",
                                     "--epochs", "2", "--score-runs", "1", "--score-epochs", "1", "--corrupt-std", "0.5",
                                     "--n-fit", "10", "--n-heldout", "10", "--k", "3", "--out", str(out), "--quiet"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    table = pd.read_parquet(out/"metadata.parquet")
    res = json.loads((out/"results.json").read_text())
    assert len(table) == res["n_rows"] == 270 and table.path.notna().all() and table.path.is_unique   # every image of the folder a row
    assert table.path.str.startswith("train/").all()
    assert any(p.startswith("train/t shirt/") for p in table.path)          # the class folder with a space
    assert all((tmp_path/"data"/p).is_file() for p in table.path)            # every path names a real file
    assert (out/"report.html").is_file() and "train/t shirt/" in (out/"report.html").read_text(encoding="utf-8")   # the audit's page names them too
    assert res["test_accuracy"] is not None and any(c.startswith("flag_") for c in table.columns)
    assert "categories:" in r.stderr


def test_image_folder_with_a_corrupt_file_names_it(tmp_path):
    write_image_folder(tmp_path/"data", corrupt=True)
    r = subprocess.run(mapd_cmd() + ["audit", "--dataset", "imagefolder", "--data-root", str(tmp_path/"data"), "--out", str(tmp_path/"a"), "--quiet"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "train/bag/broken file.png" in r.stderr, r.stderr
    assert not (tmp_path/"a").exists()   # bad input writes nothing


def test_audit_of_an_npz_without_test_split(tmp_path):
    import numpy as np
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 80)
    x = np.clip(rng.normal(60 + 60 * y[:, None, None], 30, (240, 8, 8)), 0, 255).astype(np.uint8)
    np.savez(tmp_path/"d.npz", images=x, labels=y, class_names=np.array(["a", "b", "c"]))
    out = tmp_path/"a"
    r = subprocess.run(mapd_cmd() + ["audit", "--dataset", "npz", "--data-root", str(tmp_path/"d.npz"), "--epochs", "2", "--score-runs", "1",
                                     "--score-epochs", "1", "--corrupt-std", "paper", "--ood", "sketch", "--n-fit", "10", "--n-heldout", "10", "--k", "3",
                                     "--out", str(out), "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    res = json.loads((out/"results.json").read_text())
    assert res["test_accuracy"] is None and res["corrupt_std"] is None and res["n_train"] + res["n_probes"] == 240 - 5 * 20 + 6 * 20   # five categories (sketch OOD too) take their sources out


def test_report_help_lists_the_run_names(repo, tmp_path):
    "`mapd report --help` names the runs --only takes, from another folder too (the plan of the checkout mapd is installed from)."
    import yaml
    names = [r["name"] for r in yaml.safe_load((repo/"nbs"/"experiments"/"report.yaml").read_text())["runs"]]
    for cwd in (repo, tmp_path):
        r = subprocess.run(mapd_cmd() + ["report", "--help"], capture_output=True, text=True, check=True, cwd=cwd)
        h = " ".join(r.stdout.split())
        assert "the default plan's runs: " + ", ".join(names) in h, h


def test_report_shows_where_each_run_is(tmp_path):
    "Each run says when it starts and ends, its own progress bars and prints reach the terminal, and its executed notebook keeps the bars' last lines as text."
    import nbformat, yaml
    d = tmp_path/"plan"; d.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    p = nbformat.v4.new_code_cell('out_dir = "."'); p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell('import json, pathlib, time\nfrom mapd.core import progress\n'
                                             'for i in progress(range(4), desc="epochs of the run"): time.sleep(0.3)\n'
                                             'print("hello from the run")\npathlib.Path(out_dir, "results.json").write_text(json.dumps({"v": 1}))')]
    nbformat.write(nb, d/"nb.ipynb")
    (d/"report.yaml").write_text(yaml.safe_dump(dict(runs=[dict(name="first", notebook="nb.ipynb"), dict(name="second", notebook="nb.ipynb")])))
    (d/"tiny.yaml").write_text("{}\n")
    r = subprocess.run(mapd_cmd() + ["report", "--plan", str(d/"report.yaml"), "--out", str(tmp_path/"out"), "--tiny", "--no-html"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    for s in ("[1/2] first (nb.ipynb) started", "[1/2] first finished in", "[2/2] second (nb.ipynb) started", "epochs of the run: 100%", "4/4"):
        assert s in r.stderr, (s, r.stderr)
    assert "Executing" not in r.stderr and r.stdout.count("hello from the run") == 2, r.stdout
    cell = next(c for c in nbformat.read(tmp_path/"out"/"first"/"first.ipynb", as_version=4).cells if "progress(" in c.source)
    assert not [o for o in cell.outputs if o.output_type == "display_data"], cell.outputs   # no widget
    bar = "".join(o.text for o in cell.outputs if o.get("name") == "stderr")   # stdout and stderr reach the notebook in either order
    assert "\r" not in bar and bar.count("epochs of the run") == 1 and "4/4" in bar, repr(bar)
