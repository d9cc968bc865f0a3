"Each experiment notebook run by papermill with tiny parameters, and the report built from them."
import json, re, shutil

import nbformat
import numpy as np
import pytest
import yaml

from mapd.report import run_report, load_plan, ReportError
from mapd.report_readme import _lookup, _shown


@pytest.fixture(scope="module")
def tiny_report(repo, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")/"outputs"
    results = run_report(repo/"nbs"/"experiments"/"report.yaml", out, tiny=True, quiet=True)
    return out, results


def test_every_run_writes_notebook_html_figures_and_results(repo, tiny_report):
    out, results = tiny_report
    plan = load_plan(repo/"nbs"/"experiments"/"report.yaml")
    for r in plan["runs"]:
        d = out/r["name"]
        assert (d/f"{r['name']}.ipynb").exists() and (d/f"{r['name']}.html").exists()
        res = json.loads((d/"results.json").read_text())
        assert res == results[r["name"]]
        assert {"out_dir", "seed", "device", "dataset"} <= set(res["parameters"]) | {"out_dir"}
        nb = nbformat.read(d/f"{r['name']}.ipynb", as_version=4)
        assert not [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    audit = out/"audit"
    for fig in ("fig4_trajectories.png", "fig4_confusion.png", "fig_category_counts.png", "fig1_surfaced.png", "fig5_typical_vs_random_labels.png"):
        assert (audit/fig).stat().st_size > 5000, fig
    assert (out/"audit_noise20"/"fig_mislabel_detection.png").exists()
    import pandas as pd
    flagged = pd.read_csv(audit/"flagged.csv")
    assert set(flagged.flagged_as) == set(results["audit"]["parameters"]["categories"])
    from mapd.metadata import ranking
    for c, g in flagged.groupby("flagged_as"):  # each block holds the highest-ranked examples of its category, in order
        col = ranking(flagged, c)
        assert col == (f"p_{c}" if c == "typical" else f"score_{c}") and g[col].is_monotonic_decreasing
    import pandas as pd
    comp = pd.read_csv(out/"compare"/"comparison.csv")
    assert set(comp.problem) == {"mislabeled", "atypical", "corrupted", "ood"} and set(comp.noise) == {"symmetric", "asymmetric", "instance"}
    assert {"MAP-D", "cleanlab", "mean loss", "forgetting"} <= set(comp.method) and comp.auroc.between(0, 1).all()
    cost = pd.read_csv(out/"compare"/"cost.csv")   # every detector of mapd.detectors too, timed in the same run
    assert {"MAP-D", "Data-IQ", "VoG", "Conf-Agree (MC dropout)", "prototypicality", "ALLSH (augmentation KL)"} <= set(cost.method) <= set(comp.method) | {"(extra training for the model-based detectors)"}
    assert len(set(comp.method) - {"MAP-D", "MAP-D vote p (the paper's equation 6)"}) >= 13 and (cost.filter(like="seconds_") >= 0).all().all()
    assert (out/"compare"/"fig_comparison_auroc.png").stat().st_size > 5000
    assert results["compare"]["audits"] == {"symmetric": "audit_noise20", "asymmetric": "audit_asym20", "instance": "audit_inst20", "clean": "audit"}
    for fig in ("fig3_probe_dynamics.png", "fig3_loss_spread.png"):
        assert (out/"probe_dynamics"/fig).stat().st_size > 5000, fig
    # the dynamics notebook read the audit run of the same report rather than training again
    assert results["probe_dynamics"]["audit_run"] == "audit"
    assert not (out/"probe_dynamics"/"audit").exists()
    # label-noise correction: every method at every level, the three figures, the claims' keys
    ln = pd.read_csv(out/"label_noise"/"table.csv")
    assert set(ln.method) == {"ce", "mixup", "bootstrap_soft", "bootstrap_hard", "forward", "m_dyr_h", "mapd", "mapd_binary"}
    assert ln["mean"].between(0, 1).all() and set(ln.kind) == {"symmetric", "asymmetric"}
    for fig in ("fig6_noise_correction.png", "fig7_pretraining.png", "fig11_binary.png"):
        assert (out/"label_noise"/fig).stat().st_size > 5000, fig
    assert 0 <= results["label_noise"]["mapd_top_noise"] <= 1
    lr = results["label_noise"]   # figure 7 per level as short minus long, and the highest noise seed by seed
    abl = lr["pretraining_ablation"]["mapd/0.50"]
    assert lr["mapd_pretraining_change_top_noise"] == pytest.approx(abl["short"] - abl["long"])
    assert set(lr["pretraining_change"]["m_dyr_h"]) == {"0.00", "0.50"}
    assert lr["seeds_top_noise"] == [0, 1] and lr["parameters"]["seeds"] == [0]   # more seeds at the highest level than below it
    assert len(lr["mapd_minus_m_dyr_h_top_noise_per_seed"]) == 2
    assert lr["mapd_minus_m_dyr_h_top_noise_median"] == pytest.approx(np.median(lr["mapd_minus_m_dyr_h_top_noise_per_seed"]))
    # figure 6's controls at the highest level: every run on every top seed, with its median and spread, and who got true labels
    runs6 = {"mapd", "mapd_given_probes", "m_dyr_h", "m_dyr_h_true_rows", "ce", "ce_true_rows"}
    assert set(lr["top_noise_median"]) == set(lr["top_noise_min"]) == runs6 and all(len(lr["top_noise_per_seed"][r]) == 2 for r in runs6)
    assert lr["top_noise_median"]["m_dyr_h_true_rows"] == pytest.approx(np.median(lr["top_noise_per_seed"]["m_dyr_h_true_rows"]))
    assert lr["top_noise_true_labels"] == {"mapd": 25, "mapd_given_probes": 0, "m_dyr_h": 0, "m_dyr_h_true_rows": 25, "ce": 0, "ce_true_rows": 25}
    gap = np.subtract(lr["top_noise_per_seed"]["mapd"], lr["top_noise_per_seed"]["m_dyr_h_true_rows"])
    assert lr["mapd_minus_m_dyr_h_true_rows_top_noise_median"] == pytest.approx(np.median(gap))
    assert lr["gap_points_median"]["MAP-D − M-DYR-H with the same true labels"] == pytest.approx(100 * np.median(gap))
    assert (out/"label_noise"/"fig6_controls.png").stat().st_size > 5000
    # prioritized training: a curve per method and seed, the speed-up of uniform against itself is 1
    pr = pd.read_csv(out/"prioritized"/"speedup.csv").set_index("method")
    assert pr.speedup["uniform"] == 1.0 and len(pr) == 9   # seven methods and MAP-D's two given-label controls
    assert results["prioritized"]["controls"] == ["mapd_given_probes", "mapd_balanced_given_probes"]
    prm = results["prioritized"]["parameters"]
    assert prm["seed"] == 0 and prm["seeds"] == [0, 1], prm   # the loop over seeds does not overwrite the seed parameter
    assert sorted(pd.read_csv(out/"prioritized"/"curves.csv").seed.unique()) == [0, 1]
    rp = results["prioritized"]   # each MAP-D variant's speed-up on its own, and the steadier measures for every method
    assert rp["mapd_balanced_speedup"] == rp["speedup"]["mapd_balanced"] and rp["mapd_unbalanced_speedup"] == rp["speedup"]["mapd"]
    assert set(rp["mean_acc"]) == set(rp["speedup_at_fixed_target"]) == set(pr.index) and all(0 <= v <= 1 for v in rp["mean_acc"].values())
    assert (out/"prioritized"/"fig8_prioritized.png").stat().st_size > 5000
    # minority groups: MAP-D and every swept JTT epoch scored; upweighting rows for ERM, JTT, MAP-D and the oracle
    det = pd.read_csv(out/"minority"/"detection.csv")
    assert set(det.method) == {"MAP-D", "JTT"} and det[["precision", "recall", "f1"]].stack().between(0, 1).all()
    up = pd.read_csv(out/"minority"/"upweighting.csv")
    assert {"ERM", "MAP-D", "oracle (true minority)"} <= set(up.method)
    assert (out/"minority"/"fig9_minority_detection.png").stat().st_size > 5000


def test_readme_numbers_are_the_results_files(repo, tiny_report):
    out, results = tiny_report
    plan = load_plan(repo/"nbs"/"experiments"/"report.yaml")
    readme = (out/"README.md").read_text()
    assert "Tiny parameters" in readme
    manifest = json.loads((out/"manifest.json").read_text())
    assert manifest["commit"] != "" and "torch" in manifest["packages"]
    for c in plan["claims"]:
        v = _lookup(results[c["run"]], c["key"])
        row = next(l for l in readme.splitlines() if l.startswith(f"| {c['claim']} |"))
        shown = "n/a" if v is None else _shown(v, c)  # None: not reached / not applicable in this run
        assert c.get("unit") == "points" or "%" not in c.get("format", "") or "+" not in c.get("format", ""), c   # differences print in points
        assert f"| {shown} |" in row, (row, v)


def test_render_only_runs_nothing_and_keeps_every_run(repo, tiny_report):
    out, results = tiny_report
    before = json.loads((out/"manifest.json").read_text())
    run_report(repo/"nbs"/"experiments"/"report.yaml", out, only=[], quiet=True)   # what `mapd report --render-only` does
    after = json.loads((out/"manifest.json").read_text())
    assert after == before                                                       # no run executed, none forgotten, the same commit
    readme = (out/"README.md").read_text()
    for r in load_plan(repo/"nbs"/"experiments"/"report.yaml")["runs"]: assert f"[{r['name']}]({r['name']}/{r['name']}.ipynb)" in readme


def _failing_notebook(path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    p = nbformat.v4.new_code_cell('out_dir = "x"'); p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell('raise ValueError("the data set is on fire")')]
    nbformat.write(nb, path)


def test_failing_notebook_stops_the_report_and_keeps_the_previous_one(repo, tiny_report, tmp_path):
    out, _ = tiny_report
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and ".failed" not in p.parts}
    nbs = tmp_path/"nbs"; nbs.mkdir()
    _failing_notebook(nbs/"fail.ipynb")
    (nbs/"report.yaml").write_text(yaml.safe_dump(dict(runs=[dict(name="audit", notebook="fail.ipynb")])))
    with pytest.raises(ReportError, match="fail.ipynb .*ValueError: the data set is on fire"):
        run_report(nbs/"report.yaml", out, quiet=True)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and ".failed" not in p.parts}
    assert after == before
    assert (out/".failed"/"audit"/"audit.ipynb").exists()


def test_parameters_cells_hold_literals_and_the_contract(repo):
    for nb_path in (repo/"nbs"/"experiments").glob("*.ipynb"):
        nb = nbformat.read(nb_path, as_version=4)
        assert nb.metadata.get("kernelspec", {}).get("name") == "python3", nb_path
        params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1, nb_path
        names = re.findall(r"^(\w+)\s*:", params[0].source, re.M)
        assert {"out_dir", "seed", "device", "dataset"} <= set(names), (nb_path, names)


def test_planted_run_scores_every_kind_and_the_report_shows_its_table(tiny_report):
    from mapd.plant import PLANTED_CATEGORY, ALL_PLANTED_CATEGORY
    out, results = tiny_report
    r = results["planted"]
    assert set(r["mapd_auroc"]) == set(PLANTED_CATEGORY) | set(r["heldout_kinds"]) and set(r["heldout_kinds"]) <= set(ALL_PLANTED_CATEGORY)   # in-family and held-out kinds
    assert set(r["flag_fdr"]) >= {"random_labels", "any"} and all(0 <= v <= 1 for v in r["flag_fdr"].values())
    assert all(0 <= v <= 1 for v in r["mapd_auroc"].values())
    assert set(r["best_single_method"].values()) <= {"mean loss", "forgetting", "cartography (1 - confidence)", "AUM (-area under margin)",
                                                     "EL2N", "beta mixture (Arazo)", "cleanlab", "Datalab outlier", "Data-IQ",
                                                     "Detector (LSTM on random-label probes)", "VoG", "Conf-Agree (MC dropout)", "prototypicality",
                                                     "ALLSH (augmentation KL)"} | {m for m in r["cost_seconds"] if m.startswith("GraNd")}   # mapd.detectors'
    assert {"MAP-D", "Data-IQ", "VoG", "prototypicality"} <= set(r["cost_seconds"]) and all(v >= 0 for v in r["cost_seconds"].values())
    readme = (out/"README.md").read_text()
    assert "### How far to trust it" in readme and "### What the clean audit finds" in readme
    assert f"| flip_symmetric | {r['mapd_auroc']['flip_symmetric']:.3f} |" in readme
    assert not (out/"planted"/"audit_seed0"/"trajectories").exists()   # the report keeps tables, not recordings
