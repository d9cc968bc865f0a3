"The report a reviewer signs: a verdict per claim, spreads over seeds, every claim row rebuilt from committed files, provenance."
import json, re, shutil, subprocess, sys
from pathlib import Path

import pytest
import yaml

from mapd.report import VERDICTS, load_plan, run_report, ReportError
from mapd.report_readme import render_readme

PLAN = Path(__file__).resolve().parents[1]/"nbs"/"experiments"/"report.yaml"
MANIFEST = dict(commit="abc", mapd_version="0", packages={}, python="3", created="now", runs={})


def _git(d, *a):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *a], cwd=d, capture_output=True, text=True, check=True).stdout


def test_every_claim_of_the_report_has_a_verdict_and_its_reason():
    plan = load_plan(PLAN)
    for c in plan["claims"]:
        assert c.get("verdict") in VERDICTS, c["claim"]
        assert isinstance(c.get("why"), str) and 0 < len(c["why"].split()) <= 20, c["claim"]


def test_a_verdict_outside_the_five_is_refused(tmp_path):
    (tmp_path/"x.ipynb").write_text("{}")
    (tmp_path/"report.yaml").write_text(yaml.safe_dump(dict(runs=[dict(name="a", notebook="x.ipynb")],
                                                           claims=[dict(claim="c", run="a", key="v", verdict="mostly")])))
    with pytest.raises(ValueError, match="verdict 'mostly' is not one of"): load_plan(tmp_path/"report.yaml")


def test_the_claims_table_shows_the_verdict_and_the_spread_over_seeds(tmp_path):
    (tmp_path/"a").mkdir()
    (tmp_path/"a"/"runs.csv").write_text("seed,method,pre,acc\n0,m,1,0.50\n0,m,7,0.60\n1,m,1,0.70\n1,m,7,0.69\n2,m,1,0.40\n2,m,7,0.41\n"
                                         "0,jtt (T=2),1,0.9\n1,jtt (T=3),1,\n")
    plan = dict(runs=[dict(name="a", notebook="x.ipynb")], claims=[
        dict(claim="short minus long", run="a", key="gap", unit="points", verdict="partly", why="two seeds of three",
             per_seed=dict(file="runs.csv", where=dict(method="m", pre=1), value="acc", minus=dict(pre=7))),
        dict(claim="jtt", run="a", key="j", format="{:.1%}", verdict="reproduces",
             per_seed=dict(file="runs.csv", where=dict(method="^jtt.*"), value="acc")),
        dict(claim="no seeds", run="a", key="n", format="{:.2f}", verdict="not comparable", why="another data set")])
    md = render_readme(plan, {"a": {"gap": -0.0367, "j": 0.9, "n": 1.0}}, MANIFEST, out=tmp_path)
    rows = {l.split(" | ")[0][2:]: l for l in md.splitlines() if l.startswith("| ")}
    assert "| claim | paper | this report | over seeds | verdict | run |" in md
    assert "| -3.7 points | median -1.0, range -10.0 to +1.0 (3 seeds: -10.0, +1.0, -1.0) | **partly**: two seeds of three |" in rows["short minus long"]
    assert "median 90.0%, range 90.0% to 90.0% (2 seeds: 90.0%, none)" in rows["jtt"]          # a seed without a value says so
    assert "| 1.00 |  | **not comparable**: another data set |" in rows["no seeds"]
    assert "over seeds" not in render_readme({**plan, "claims": plan["claims"][2:]}, {"a": {"n": 1.0}}, MANIFEST)


def test_the_header_names_each_runs_commit_and_the_plans():
    plan = dict(runs=[dict(name="a", notebook="x.ipynb"), dict(name="b", notebook="x.ipynb")])
    m = {**MANIFEST, "runs": {"a": dict(commit="1111"), "b": dict(commit="2222")}}
    md = render_readme(plan, {"a": {}, "b": {}}, m, rendered=dict(commit="3333", plan_commit="4444"))
    assert "at commit `1111` (a); `2222` (b); this README rendered at commit `3333` from the plan (report.yaml) of commit `4444`" in md
    assert "Made by `mapd report` at commit `1111`" in render_readme(plan, {}, {**MANIFEST, "runs": {"a": dict(commit="1111")}})


def _repo_with_report(d, tiny=False):
    "A git checkout holding a plan and a report of it (results, manifest), everything committed."
    d.mkdir(parents=True, exist_ok=True)
    (d/"x.ipynb").write_text("{}")
    (d/"report.yaml").write_text(yaml.safe_dump(dict(runs=[dict(name="a", notebook="x.ipynb")], claims=[dict(claim="v", run="a", key="v")])))
    (d/"out"/"a").mkdir(parents=True); (d/"out"/"a"/"results.json").write_text('{"v": 1}')
    (d/"out"/"a"/"a.html").write_text("<html/>"); (d/".gitignore").write_text("out/**/*.html\n")
    (d/"out"/"manifest.json").write_text(json.dumps({**MANIFEST, "tiny": tiny, "runs": {"a": dict(commit="abc", tiny=tiny)}}))
    _git(d, "init", "-q"); _git(d, "add", "."); _git(d, "commit", "-q", "-m", "a report")
    return d


def test_render_only_refuses_a_dirty_checkout_like_a_full_run(tmp_path):
    d = _repo_with_report(tmp_path/"r")
    (d/"x.ipynb").write_text('{"changed": 1}')                            # code changed since the commit: the README could not name it
    with pytest.raises(ReportError, match="uncommitted changes"): run_report(d/"report.yaml", d/"out", only=[], quiet=True)
    assert not (d/"out"/"README.md").exists()
    run_report(d/"report.yaml", d/"out", only=[], allow_dirty=True, quiet=True)   # asked for: rendered, and it says -dirty
    assert "-dirty" in (d/"out"/"README.md").read_text()
    t = _repo_with_report(tmp_path/"t", tiny=True); (t/"x.ipynb").write_text('{"changed": 1}')
    run_report(t/"report.yaml", t/"out", only=[], quiet=True)             # a tiny report is re-rendered anywhere, as a tiny run is made
    assert "Tiny parameters" in (t/"out"/"README.md").read_text()


def test_the_runs_table_links_only_files_the_report_holds(tmp_path):
    d = _repo_with_report(tmp_path/"r")
    run_report(d/"report.yaml", d/"out", only=[], quiet=True)
    md = (d/"out"/"README.md").read_text()
    assert "| [a](a/a.ipynb) | x.ipynb |" in md and "a.html" not in md    # the HTML copy is git-ignored: not linked
    sha = _git(d, "rev-parse", "HEAD").strip()
    assert f"rendered at commit `{sha}` from the plan (report.yaml) of commit `{sha}`" in md
    (d/".gitignore").write_text(""); _git(d, "commit", "-qam", "keep html")
    run_report(d/"report.yaml", d/"out", only=[], quiet=True)
    assert "([html](a/a.html))" in (d/"out"/"README.md").read_text()


def test_no_note_writes_a_difference_of_shares_in_percent():
    plan = yaml.safe_load(PLAN.read_text())
    text = " ".join([plan.get("notes", ""), plan.get("intro", "")] + [t.get("text", "") for t in plan.get("tables", [])] + [c["claim"] for c in plan["claims"]])
    diff = re.compile(r"\b(drop|drops|lead|leads|gap|lower|higher|behind|ahead|better|worse|loses|gains|costs)\b( is| of| by)? [+-]?\d+(\.\d+)?%")
    assert not diff.findall(" ".join(text.split())), diff.findall(" ".join(text.split()))


CHECK = Path(__file__).resolve().parents[1]/"scripts"/"check_report.py"


def _check(out, plan=PLAN):
    return subprocess.run([sys.executable, str(CHECK), str(out), "--plan", str(plan)], capture_output=True, text=True)


def test_check_report_rebuilds_the_committed_report():
    r = _check(PLAN.parents[2]/"outputs")
    assert r.returncode == 0, r.stdout + r.stderr
    n, missing, summary = map(int, re.search(r"(\d+) rebuilt, (\d+) not rebuilt, of the rebuilt (\d+) from the comparison", r.stdout).groups())
    assert n >= 80 and missing == 0, r.stdout   # every row from a committed per-seed, per-method or per-row file (rankings.parquet)
    assert summary <= 3 and "from the comparison's summaries only" in r.stdout, r.stdout   # the few from a summary alone are said, not hidden


def test_check_report_fails_on_a_number_that_does_not_rebuild(tmp_path):
    "A copy of the committed report in a git checkout of its own; a per-seed file edited so it no longer gives the claimed number."
    src, out = PLAN.parents[2]/"outputs", tmp_path/"outputs"
    for p in src.rglob("*"):
        if p.is_file() and p.suffix in (".json", ".csv", ".md") and "audit_seed" not in str(p) and "/runs/" not in p.as_posix():
            (out/p.relative_to(src)).parent.mkdir(parents=True, exist_ok=True); shutil.copy(p, out/p.relative_to(src))
    shutil.copy(src/"audit"/"metadata.parquet", out/"audit"/"metadata.parquet")
    _git(tmp_path, "init", "-q"); _git(tmp_path, "add", "."); _git(tmp_path, "commit", "-q", "-m", "copy")
    assert _check(out).returncode == 0
    t = out/"label_noise"/"top_noise_per_seed.csv"
    lines = t.read_text().splitlines(); cells = lines[1].split(","); cells[1] = "0.10"; lines[1] = ",".join(cells)
    t.write_text("\n".join(lines) + "\n"); _git(tmp_path, "commit", "-qam", "edited")
    r = _check(out)
    assert r.returncode == 1 and "MISMATCH label_noise" in r.stdout, r.stdout
    readme = out/"README.md"; _git(tmp_path, "checkout", "HEAD~1", "--", "."); assert _check(out).returncode == 0
    first = load_plan(PLAN)["claims"][0]["claim"]   # a claim row typed by hand: its value cell changed
    lines = readme.read_text().splitlines(); i = next(i for i, l in enumerate(lines) if l.startswith(f"| {first} |"))
    cells = lines[i].split(" | "); cells[2] = "12.34%"; lines[i] = " | ".join(cells)
    readme.write_text("\n".join(lines) + "\n")
    r = _check(out)
    assert r.returncode == 1 and "the README's row differs" in r.stdout, r.stdout


def test_a_per_seed_file_without_the_rows_says_so_instead_of_failing(tmp_path):
    "A tiny run writes fewer rows or columns: the README still renders, the spread says n/a."
    (tmp_path/"a").mkdir(); (tmp_path/"a"/"s.csv").write_text("seed,acc\n0,0.5\n")
    plan = dict(runs=[dict(name="a", notebook="x.ipynb")],
                claims=[dict(claim="c", run="a", key="v", verdict="partly", per_seed=dict(file="s.csv", where=dict(level=0.9), value="acc"))],
                tables=[dict(title="t", run="a", csv="s.csv", index="seed", columns={"m": "median:acc", "x": "median:missing"})])
    md = render_readme(plan, {"a": {"v": 0.5}}, MANIFEST, out=tmp_path)
    assert "| 0.5 | n/a (s.csv: KeyError 'level') | **partly** |" in md
    assert "| seed | m | x |" in md and "| 0 | 0.5 |  |" in md
