"The report stays in its folder and never loses the last good one: run names, the report folder, kills during the swap, tiny runs."
import json, os, shutil
from pathlib import Path

import nbformat
import pytest
import yaml

from mapd.core import folder_lock
from mapd.report import run_report, load_plan, ReportError
from mapd.report_readme import render_readme


def _notebook(path):
    "A notebook that writes its parameter `v` to results.json in `out_dir`."
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    p = nbformat.v4.new_code_cell('out_dir = "."\nv = "plain"'); p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell('import json, pathlib\npathlib.Path(out_dir, "results.json").write_text(json.dumps({"v": v}))')]
    nbformat.write(nb, path)


def _plan(d, runs=("a", "b"), v="new", **extra):
    "A plan in folder `d` with the runs `runs` of the trivial notebook, a claim per run on `v`, tiny parameters beside it."
    d.mkdir(parents=True, exist_ok=True)
    if not (d/"nb.ipynb").exists(): _notebook(d/"nb.ipynb")
    (d/"tiny.yaml").write_text(yaml.safe_dump({"nb.ipynb": {"v": "tiny"}}))
    plan = dict(runs=[dict(name=n, notebook="nb.ipynb", parameters={"v": v}) for n in runs],
                claims=[dict(claim=f"value of {n}", run=n, key="v") for n in runs], **extra)
    (d/"report.yaml").write_text(yaml.safe_dump(plan))
    return d/"report.yaml"


@pytest.fixture
def fake_papermill(monkeypatch):
    "papermill.execute_notebook replaced by a writer of results.json: the swap tests need no kernel."
    import papermill
    def execute(nb, output, parameters, **kw):
        with open(os.path.join(parameters["out_dir"], "results.json"), "w") as f: json.dump({"v": parameters.get("v")}, f)
        with open(output, "w") as f: f.write("{}")
    monkeypatch.setattr(papermill, "execute_notebook", execute)


def _v(out, name):
    return json.loads((out/name/"results.json").read_text())["v"]


def _tree(d):
    return {p.relative_to(d): (p.read_bytes() if p.is_file() else None) for p in d.rglob("*")}


# --- run names --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../victim", "a/b", "..", ".", ".staging", ".aside", ".failed", "/tmp/victim", "a\\b", "README.md",
                                  "manifest.json", "-rf", "a b", "", 3, None, "x" * 101])
def test_bad_run_names_are_refused_and_nothing_is_touched(tmp_path, name, fake_papermill):
    victim = tmp_path/"victim"; victim.mkdir(); (victim/"keep.txt").write_text("mine")
    plan = _plan(tmp_path/"nbs")
    p = yaml.safe_load(plan.read_text()); p["runs"][0]["name"] = name; p["claims"] = []
    plan.write_text(yaml.safe_dump(p))
    before = _tree(tmp_path)
    with pytest.raises(ValueError, match="report.yaml"):
        run_report(plan, tmp_path/"out", quiet=True)
    with pytest.raises(ValueError):
        load_plan(plan)
    assert _tree(tmp_path) == before and (victim/"keep.txt").read_text() == "mine"


def test_good_run_names_pass(tmp_path):
    for name in ("audit", "audit_noise20", "run-1.v2", "A"):
        p = yaml.safe_load(_plan(tmp_path).read_text()); p["runs"][0]["name"] = name; p["claims"] = []
        (tmp_path/"report.yaml").write_text(yaml.safe_dump(p))
        assert load_plan(tmp_path/"report.yaml")["runs"][0]["name"] == name


def test_only_names_cannot_reach_outside(tmp_path, fake_papermill):
    with pytest.raises(ValueError, match="no runs named"):
        run_report(_plan(tmp_path/"nbs"), tmp_path/"out", only=["../victim"], quiet=True)
    assert not (tmp_path/"out").exists()


def test_names_equal_but_for_case_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unique"):
        load_plan(_plan(tmp_path, runs=("audit", "Audit")))


def test_claims_with_the_same_text_are_refused(tmp_path):
    "The README's row of a claim is found by its text: two claims with one text would show one's number under the other's key."
    p = yaml.safe_load(_plan(tmp_path).read_text())
    run = p["runs"][0]["name"]
    p["claims"] = [dict(claim="The same", run=run, key="a"), dict(claim="The same", run=run, key="b")]
    (tmp_path/"report.yaml").write_text(yaml.safe_dump(p))
    with pytest.raises(ValueError, match="claim texts must be unique.*The same"): load_plan(tmp_path/"report.yaml")


@pytest.mark.parametrize("text, match", [
    ("runs: !!python/object/apply:os.system [echo hi]\n", r"report.yaml, line 1: .*python/object"),
    ("runs:\n  - name: a\n    notebook: [unclosed\n", r"report.yaml, line \d+"),
    ("- name: a\n  notebook: nb.ipynb\n", "a plan is a mapping"),
    ("runs: {name: a, notebook: nb.ipynb}\n", "must be a list"),
    ("runs: [a, b]\n", "run 0 is not a mapping"),
    ("runs: [{name: a}]\n", "lacks the field 'notebook'"),
    ("runs: [{name: a, notebook: nb.ipynb, parameters: [1]}]\n", "parameters must be a mapping"),
    ("runs: [{name: a, notebook: nb.ipynb}]\nclaims: [{claim: c, run: b, key: v}]\n", "refers to run 'b'"),
    ("runs: [{name: a, notebook: nb.ipynb}]\nclaims: {c: 1}\n", "`claims` must be a list"),
    ("", "lists no runs"),
])
def test_malformed_plans_get_one_line_errors(tmp_path, text, match):
    _notebook(tmp_path/"nb.ipynb")
    (tmp_path/"report.yaml").write_text(text)
    with pytest.raises(ValueError, match=match) as e:
        load_plan(tmp_path/"report.yaml")
    assert "\n" not in str(e.value) and str(tmp_path/"report.yaml") in str(e.value)


# --- the report folder -------------------------------------------------------------------------------------------------

@pytest.fixture
def checkout(tmp_path, monkeypatch):
    "A folder like a checkout, with its own README.md, as the current folder; the plan in nbs/experiments under it."
    (tmp_path/"README.md").write_text("the checkout's own README")
    plan = _plan(tmp_path/"nbs"/"experiments")
    monkeypatch.chdir(tmp_path)
    return tmp_path, plan


@pytest.mark.parametrize("out", ["", " ", ".", "./", "nbs/..", "nbs/experiments", "nbs", "nbs/experiments/../experiments"])
def test_report_folder_that_is_the_checkout_or_holds_the_plan_is_refused(checkout, out, fake_papermill):
    root, plan = checkout
    before = _tree(root)
    with pytest.raises(ValueError, match="choose a dedicated folder such as outputs/"):
        run_report(plan, out, quiet=True)
    with pytest.raises(ValueError, match="choose a dedicated folder"):
        run_report(plan, out, only=[], quiet=True)   # --render-only writes README.md too
    assert _tree(root) == before and (root/"README.md").read_text() == "the checkout's own README"


def test_report_folder_above_the_current_folder_is_refused(checkout, monkeypatch, fake_papermill):
    root, plan = checkout
    (root/"work").mkdir(); monkeypatch.chdir(root/"work")
    with pytest.raises(ValueError, match="current folder"):
        run_report(plan, "..", quiet=True)
    assert (root/"README.md").read_text() == "the checkout's own README"


def test_folder_of_other_files_is_refused_but_a_report_or_empty_one_is_not(checkout, fake_papermill):
    root, plan = checkout
    docs = root/"docs"; docs.mkdir(); (docs/"README.md").write_text("docs")
    with pytest.raises(FileExistsError, match="did not write"):
        run_report(plan, "docs", quiet=True)
    assert (docs/"README.md").read_text() == "docs" and sorted(p.name for p in docs.iterdir()) == ["README.md"]
    (root/"file").write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        run_report(plan, "file", quiet=True)
    (root/"empty").mkdir(); (root/"empty"/".gitkeep").write_text("")
    run_report(plan, "empty", html=False, quiet=True)
    run_report(plan, "empty", html=False, quiet=True)     # a report folder: again
    assert _v(root/"empty", "a") == "new" and "# The mapd report" in (root/"empty"/"README.md").read_text()
    assert (root/"README.md").read_text() == "the checkout's own README"


def test_report_folder_in_use_is_refused(tmp_path, fake_papermill):
    plan, out = _plan(tmp_path/"nbs"), tmp_path/"out"
    run_report(plan, out, html=False, quiet=True)
    before = _tree(out)
    with folder_lock(out, "mapd report"):                 # as another `mapd report` holds it
        with pytest.raises(RuntimeError, match="another mapd report"):
            run_report(plan, out, only=[], quiet=True)
        with pytest.raises(RuntimeError, match="another mapd report"):
            run_report(plan, out, html=False, quiet=True)
    assert _tree(out) == before
    run_report(plan, out, only=[], quiet=True)


# --- kills during the swap ---------------------------------------------------------------------------------------------

class Kill(BaseException):
    "A kill: nothing in run_report catches it."


def _kill_after(monkeypatch, out, n):
    "Make the n-th change to `out` (rename, replace, unlink, rmdir, rmtree) kill the process; an rmtree killed deletes part of its folder."
    count = [0]
    def step(path):
        if str(os.path.abspath(path)).startswith(str(out)):
            count[0] += 1
            if count[0] > n: return True
        return False
    def wrap(f):
        def g(src, *a, **k):
            if step(src): raise Kill(f"{f.__name__} {src}")
            return f(src, *a, **k)
        return g
    for name in ("rename", "replace", "unlink", "rmdir"): monkeypatch.setattr(os, name, wrap(getattr(os, name)))
    rmtree = shutil.rmtree
    def partial_rmtree(path, *a, **k):
        if step(path):
            files = sorted(p for p in Path(path).rglob("*") if p.is_file())
            for p in files[:1]: os.remove(p)     # part of the folder is gone, then the kill
            raise Kill(f"rmtree {path}")
        return rmtree(path, *a, **k)
    monkeypatch.setattr(shutil, "rmtree", partial_rmtree)


def test_a_kill_at_any_step_of_the_swap_leaves_complete_runs(tmp_path, fake_papermill, capsys):
    nbs, template = tmp_path/"nbs", tmp_path/"template"
    run_report(_plan(nbs, v="old"), template, html=False, quiet=True)
    _plan(nbs, v="new")
    outcomes = []
    for n in range(60):
        out = tmp_path/f"out{n}"; shutil.copytree(template, out)
        with pytest.MonkeyPatch.context() as mp:
            _kill_after(mp, out, n)
            try: run_report(nbs/"report.yaml", out, html=False, quiet=True); killed = False
            except Kill: killed = True
        journal = (out/".swap.json").exists()
        run_report(nbs/"report.yaml", out, only=[], quiet=True)          # any later `mapd report`: here --render-only
        va, vb = _v(out, "a"), _v(out, "b")
        assert va == vb and va in {"old", "new"}, (n, va, vb)          # every run whole, and the report all old or all new
        if journal: assert va == "new", n                             # a swap begun is finished
        assert not {".staging", ".aside", ".swap.json"} & {p.name for p in out.iterdir()}, n
        readme, manifest = (out/"README.md").read_text(), json.loads((out/"manifest.json").read_text())
        assert f"| value of a |  | {va} |" in readme and f"| value of b |  | {vb} |" in readme
        assert set(manifest["runs"]) == {"a", "b"}
        outcomes.append(va)
        if not killed: break
    else: pytest.fail("the report never finished")
    assert "old" in outcomes and outcomes.count("new") > 3   # kills before and after the journal were both tried


def test_a_kill_while_the_notebooks_run_keeps_the_report_and_says_so(tmp_path, fake_papermill, monkeypatch, capsys):
    import papermill
    plan, out = _plan(tmp_path/"nbs", v="old"), tmp_path/"out"
    run_report(plan, out, html=False, quiet=True)
    _plan(tmp_path/"nbs", v="new")
    real, calls = papermill.execute_notebook, []
    def dies_on_second(nb, output, parameters, **kw):
        calls.append(1)
        if len(calls) == 2: raise Kill()
        real(nb, output, parameters, **kw)
    monkeypatch.setattr(papermill, "execute_notebook", dies_on_second)
    with pytest.raises(Kill): run_report(plan, out, html=False, quiet=True)
    assert (out/".staging"/"a"/"results.json").exists()
    run_report(plan, out, only=[], quiet=False)
    assert "interrupted before its runs ['a', 'b'] finished" in capsys.readouterr().err
    assert _v(out, "a") == _v(out, "b") == "old" and (out/".failed"/"a"/"results.json").exists() and not (out/".staging").exists()


def test_states_a_kill_leaves_are_recovered(tmp_path, fake_papermill, capsys):
    nbs = tmp_path/"nbs"
    plan = _plan(nbs, v="old")
    def fresh(name):
        out = tmp_path/name; run_report(plan, out, html=False, quiet=True); return out
    # the previous run renamed aside, the new one not yet in place, no journal: the previous one goes back
    out = fresh("aside_only"); (out/".aside").mkdir(); (out/"a").rename(out/".aside"/"a")
    run_report(plan, out, only=[], quiet=False)
    assert _v(out, "a") == "old" and not (out/".aside").exists() and "put the previous run 'a' back" in capsys.readouterr().err
    # journal written, the old run aside, the new one staged: the swap is finished
    out = fresh("journal")
    (out/".staging"/"a").mkdir(parents=True); (out/".staging"/"a"/"results.json").write_text('{"v": "new"}')
    (out/".aside").mkdir(); (out/"a").rename(out/".aside"/"a")
    m = json.loads((out/"manifest.json").read_text()); m["runs"]["a"]["seconds"] = 42.0
    (out/".swap.json").write_text(json.dumps(dict(runs=["a"], manifest=m)))
    run_report(plan, out, only=[], quiet=True)
    assert _v(out, "a") == "new" and _v(out, "b") == "old" and not (out/".swap.json").exists()
    assert json.loads((out/"manifest.json").read_text())["runs"]["a"]["seconds"] == 42.0 and "| 42.0 |" in (out/"README.md").read_text()
    # the new run in place, the old one half deleted aside: the half-deleted copy is dropped, never put back
    out = fresh("half_deleted"); (out/".aside"/"a").mkdir(parents=True)
    run_report(plan, out, only=[], quiet=True)
    assert _v(out, "a") == "old" and not (out/".aside").exists()
    # staging without a journal: runs that never all finished, kept in .failed, the report unchanged
    out = fresh("staging"); (out/".staging"/"a").mkdir(parents=True); (out/".staging"/"a"/"results.json").write_text('{"v": "new"}')
    run_report(plan, out, only=[], quiet=True)
    assert _v(out, "a") == "old" and (out/".failed"/"a"/"results.json").exists() and not (out/".staging").exists()
    # a journal naming a path is refused, nothing moved
    out = fresh("evil"); (out/".swap.json").write_text(json.dumps(dict(runs=["../victim"], manifest={})))
    with pytest.raises(ReportError, match="not allowed"): run_report(plan, out, only=[], quiet=True)
    assert _v(out, "a") == "old"


def test_a_failing_run_leaves_the_report_and_a_later_run_works(tmp_path, fake_papermill, monkeypatch):
    import papermill
    plan, out = _plan(tmp_path/"nbs", v="old"), tmp_path/"out"
    run_report(plan, out, html=False, quiet=True)
    before = _tree(out)
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: None)   # finishes without results.json
    with pytest.raises(ReportError, match="without writing results.json"):
        run_report(plan, out, html=False, quiet=True)
    assert {k: v for k, v in _tree(out).items() if k.parts[0] != ".failed"} == before and not (out/".staging").exists()


# --- tiny runs ---------------------------------------------------------------------------------------------------------

def test_tiny_is_recorded_per_run_and_the_warning_stays_while_tiny_results_are_shown(tmp_path):
    plan, out = _plan(tmp_path/"nbs"), tmp_path/"out"       # real papermill, the python3 kernel
    run_report(plan, out, tiny=True, only=["a"], html=False, quiet=True)
    assert _v(out, "a") == "tiny" and "Tiny parameters" in (out/"README.md").read_text()
    run_report(plan, out, only=["b"], html=False, quiet=True)              # not tiny, another run: a is still tiny
    readme, m = (out/"README.md").read_text(), json.loads((out/"manifest.json").read_text())
    assert "Tiny parameters (a test run): the numbers mean nothing." in readme and "Runs made with them: a." in readme
    assert m["tiny"] is True and m["runs"]["a"]["tiny"] is True and m["runs"]["b"]["tiny"] is False
    row = next(l for l in readme.splitlines() if l.startswith("| [a](a/a.ipynb)"))
    assert row.endswith("| **yes** |")
    run_report(plan, out, only=[], quiet=True)                             # --render-only keeps it
    assert "Tiny parameters" in (out/"README.md").read_text()
    run_report(plan, out, only=["a"], html=False, quiet=True)              # the tiny run redone for real: the warning goes
    readme, m = (out/"README.md").read_text(), json.loads((out/"manifest.json").read_text())
    assert "Tiny parameters" not in readme and m["tiny"] is False and _v(out, "a") == "new"


def test_tiny_full_run_then_a_partial_real_run(tmp_path, fake_papermill):
    plan, out = _plan(tmp_path/"nbs"), tmp_path/"out"
    run_report(plan, out, tiny=True, html=False, quiet=True)
    assert "the numbers mean nothing.**\n" in (out/"README.md").read_text()    # all tiny: no list of runs
    run_report(plan, out, only=["a"], html=False, quiet=True)
    assert "Runs made with them: b." in (out/"README.md").read_text()
    run_report(plan, out, html=False, quiet=True)
    assert "Tiny parameters" not in (out/"README.md").read_text()


def test_old_manifests_without_tiny_per_run(tmp_path, fake_papermill):
    plan = load_plan(_plan(tmp_path))
    base = dict(commit="abc", mapd_version="0", packages={}, python="3", created="now", runs={"a": {"seconds": 1.0}, "b": {"seconds": 2.0}})
    res = {"a": {"v": 1}, "b": {"v": 2}}
    assert "Tiny parameters" in render_readme(plan, res, {**base, "tiny": True})
    assert "Tiny parameters" not in render_readme(plan, res, {**base, "tiny": False})
    assert "Tiny parameters" not in render_readme(plan, res, base)
    # an old tiny report, then one run redone for real: the other stays tiny
    out = tmp_path/"out"
    run_report(tmp_path/"report.yaml", out, html=False, quiet=True)
    m = json.loads((out/"manifest.json").read_text()); m["tiny"] = True
    for e in m["runs"].values(): del e["tiny"]
    (out/"manifest.json").write_text(json.dumps(m))
    run_report(tmp_path/"report.yaml", out, only=["a"], html=False, quiet=True)
    m = json.loads((out/"manifest.json").read_text())
    assert m["runs"]["b"]["tiny"] is True and m["runs"]["a"]["tiny"] is False and m["tiny"] is True
    assert "Runs made with them: b." in (out/"README.md").read_text()


def test_the_committed_report_stays_under_15_mb(repo):
    "outputs/ as git tracks it (the report a clone gets) is at most 15 MB: every regeneration adds to the history."
    import subprocess
    try: files = subprocess.run(["git", "ls-files", "-z", "outputs"], cwd=repo, capture_output=True, check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError): pytest.skip("not a git checkout")
    sizes = {f: (repo/f).stat().st_size for f in files if f and (repo/f).is_file()}
    assert sizes, "git tracks no report under outputs/"
    assert sum(sizes.values()) <= 15_000_000, sorted(sizes.items(), key=lambda kv: -kv[1])[:5]
