#!/usr/bin/env python
"""Rebuild every number of the report's claims table from committed files; exit 1 on any mismatch.

    python scripts/check_report.py [OUT] [--plan nbs/experiments/report.yaml]

Two checks, per claim row:
1. The row of OUT/README.md is the row `render_readme` makes from the plan and the committed results.json files
   (nothing typed, nothing stale).
2. Its value is rebuilt from a committed per-seed or per-method file of its run (a CSV, or the audit's table), at the
   precision the README prints it. A claim that no committed file can rebuild is listed as
   "not rebuildable: needs <file>" (its source is git-ignored, e.g. a noisy audit's metadata.parquet), or
   "not rebuilt yet: <why>" where the file is committed but no rebuilder is written: neither counts as a pass.

Every file a rebuild reads must be tracked by git (`git ls-files`): a file only on this disk does not count.
"""
from __future__ import annotations
import argparse, json, subprocess, sys
from pathlib import Path

import numpy as np
import pandas as pd

from mapd.core import current_names
from mapd.group_metrics import detection_prf
from mapd.rankings import read_rankings, auroc_of_ranking
from mapd.report import load_plan, _read_manifest
from mapd.report_readme import render_readme, _lookup, _shown, per_seed

_OLD_COLUMNS = {"predicted_4": "predicted_main"}   # columns of committed files under the names they had before they said what they hold


class NotRebuildable(Exception):
    "A claim whose number no committed file holds."


def tracked(out: Path) -> set[str]:
    "The paths under `out` that git tracks, relative to `out`."
    try: r = subprocess.run(["git", "ls-files", "-z", "."], cwd=out, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError): return set()
    return {p for p in r.split("\0") if p}


class Files:
    "Committed files of the report, read once; asking for one that is not committed raises NotRebuildable."
    def __init__(self, out: Path):
        self.out, self.tracked, self.cache, self.read = out, tracked(out), {}, set()

    def path(self, rel: str) -> Path:
        if rel not in self.tracked:
            ignored = subprocess.run(["git", "check-ignore", "-q", rel], cwd=self.out, capture_output=True).returncode == 0
            raise NotRebuildable(f"needs {self.out.name}/{rel} ({'git-ignored' if ignored else 'not committed'}{'' if (self.out/rel).exists() else ', not on this disk'})")
        self.read.add(rel)
        return self.out/rel

    def csv(self, rel: str, **kw) -> pd.DataFrame:
        if rel not in self.cache: self.cache[rel] = pd.read_csv(self.path(rel), **kw)
        self.read.add(rel)
        return self.cache[rel]

    def parquet(self, rel: str) -> pd.DataFrame:
        if rel not in self.cache: self.cache[rel] = pd.read_parquet(self.path(rel))
        self.read.add(rel)
        return self.cache[rel]

    def rankings(self, rel: str) -> dict:
        "The named rankings and flag sets of a `mapd.rankings.write_rankings` file."
        if rel not in self.cache: self.cache[rel] = read_rankings(self.path(rel))
        self.read.add(rel)
        return self.cache[rel]

    def json(self, rel: str) -> dict:
        if rel not in self.cache: self.cache[rel] = json.loads(self.path(rel).read_text())
        self.read.add(rel)
        return self.cache[rel]


def _flag_prf(bits: pd.DataFrame) -> dict:
    "Precision, recall, F1 and the FDR reached of a flag set (truth and flag per row)."
    prf = detection_prf(bits.value.to_numpy(bool), bits.truth.to_numpy(bool))
    return {**prf, "fdr": 1 - prf["precision"] if bits.value.any() else 0.0}


def _median_of_kinds(f: Files, kinds, method: str) -> float:
    r = f.csv("planted/recovery_per_seed.csv")
    return float(np.median([r[(r.kind == k) & (r.method == method)].auroc.median() for k in kinds]))


FLIPS = ("flip_symmetric", "flip_asymmetric", "flip_instance")
# summaries the comparison wrote from the audits' per-row tables; those tables of the noisy audits are git-ignored, so a
# row rebuilt from one of these is checked against the comparison's own output, not recomputed from the rows
SUMMARIES = {"compare/comparison.csv", "compare/flag_promise.csv", "compare/flags.csv", "compare/mislabeled_vs_atypical.csv"}
PER_ROW = "the audits' recordings (outputs/audit*/trajectories)"


def rebuild(c: dict, f: Files):
    "The claim's value rebuilt from committed files of its run, or NotRebuildable naming what is missing."
    run, key = c["run"], c["key"]
    if c.get("per_seed"):
        spec = c["per_seed"]; f.path(f"{run}/{spec['file']}")
        if spec.get("stat") == "speedup":   # the claims read the mean curve over seeds, not the mean of the seeds' speed-ups
            from mapd.prioritized import speedup
            cur = f.csv(f"{run}/{spec['file']}")
            mean = cur.groupby(["method", "step"], sort=False).test_acc.mean().reset_index()
            return float(speedup(mean, target=spec.get("target")).set_index("method").speedup[spec["method"]])
        v = [x for x in per_seed(f.out, run, spec).values() if not np.isnan(x)]
        return ("median" if "median" in c["claim"] + key or run == "planted" else "mean", v)
    if run == "label_noise":
        if key.startswith("top_noise_median."): return float(f.csv("label_noise/top_noise_per_seed.csv")[key.split(".", 1)[1]].median())
        pairs = {"mapd_minus_m_dyr_h": ("mapd", "m_dyr_h"), "mapd_minus_m_dyr_h_true_rows": ("mapd", "m_dyr_h_true_rows"),
                 "mapd_given_probes_minus_m_dyr_h": ("mapd_given_probes", "m_dyr_h")}
        for stem, (a, b) in pairs.items():
            if key in (f"{stem}_top_noise_median", f"{stem}_top_noise_range"):
                t = f.csv("label_noise/top_noise_per_seed.csv"); d = t[a] - t[b]
                return float(d.median()) if key.endswith("median") else f"{100 * d.min():+.1f} to {100 * d.max():+.1f} points ({len(d)} seeds)"
        if key == "binary_minus_probabilistic_mean":
            r = f.csv("label_noise/runs.csv"); r = r[(r.kind == "symmetric") & (r.pretrain == 7)]
            m = r.groupby(["level", "method"]).final_test_acc.mean().unstack()
            return float((m["mapd_binary"] - m["mapd"]).mean())
    if run == "compare" and "compare/rankings.parquet" in f.tracked:   # from the rows: every mislabeled AUROC and every flag
        def rk(): return f.rankings("compare/rankings.parquet")   # read only by the claims it answers, so the others name their own source
        def auroc(noise, problem, method): return auroc_of_ranking(rk()[f"rank:{noise}/{problem}/{method}"])
        def best(noise, problem):
            mine = [n for n in rk() if n.startswith(f"rank:{noise}/{problem}/") and not n.split("/", 2)[2].startswith("MAP-D")]
            if not mine: raise KeyError(f"no single-axis ranking of {noise}/{problem} in compare/rankings.parquet")
            return max(auroc_of_ranking(rk()[n]) for n in mine)
        head, _, rest = key.partition(".")
        if head in ("promise_f1", "promise_precision", "promise_fdr"):
            return float(_flag_prf(rk()[f"flag:{rest}/table"])[head.split("_", 1)[1]])
        if head == "promise_wrong_estimated":   # the audit's own count (confident learning on its held-out models), in its results.json
            src = {"clean": "audit", "symmetric": "audit_noise20", "asymmetric": "audit_asym20", "instance": "audit_inst20"}[rest]
            return float(f.json(f"{src}/results.json")["prevalence"]["random_labels"]["share"])
        if key == "best_own_rule_f1.symmetric":
            return max(_flag_prf(b)["f1"] for n, b in rk().items() if n.startswith("flag:symmetric/") and n != "flag:symmetric/table"
                       and not n.split("/", 1)[1].startswith("MAP-D"))
    elif run == "compare":   # no rankings committed: the comparison's summary
        comp = f.csv("compare/comparison.csv")
        def auroc(noise, problem, method): return float(comp[(comp.noise == noise) & (comp.problem == problem) & (comp.method == method)].auroc.iloc[0])
        def best(noise, problem):
            g = comp[(comp.noise == noise) & (comp.problem == problem) & ~comp.method.str.startswith("MAP-D")]
            return float(g.auroc.max())
    if run == "compare":
        head, _, rest = key.partition(".")
        if head.startswith("promise_"):
            fp = f.csv("compare/flag_promise.csv").set_index("noise")
            col = {"promise_f1": "f1", "promise_precision": "precision", "promise_fdr": "fdr", "promise_wrong_estimated": "wrong_estimated"}[head]
            return float(fp.loc[rest, col])
        if head == "mapd_auroc": n, p = rest.split("/"); return auroc(n, p, "MAP-D")
        if head == "auroc": n, p, m = rest.split("/", 2); return auroc(n, p, m)
        if head == "best_single_axis": n, p = rest.split(".")[0].split("/"); return best(n, p)
        if key == "mapd_mislabeled_auroc_symmetric": return auroc("symmetric", "mislabeled", "MAP-D")
        if key == "mapd_vote_mislabeled_auroc_symmetric": return auroc("symmetric", "mislabeled", "MAP-D vote p (the paper's equation 6)")
        if key == "best_single_mislabeled_auroc_symmetric": return best("symmetric", "mislabeled")
        if key.endswith("_mislabeled_vs_atypical_clean"):
            mva = f.csv("compare/mislabeled_vs_atypical.csv"); mva = mva[mva.noise == "clean"]
            if key.startswith("best_single"): return float(mva[~mva.method.str.startswith("MAP-D")].auroc_mislabeled_vs_atypical.max())
            m = "MAP-D vote p (the paper's equation 6)" if "vote" in key else "MAP-D"
            return float(mva[mva.method == m].auroc_mislabeled_vs_atypical.iloc[0])
        if key == "best_own_rule_f1.symmetric":
            fl = f.csv("compare/flags.csv")
            return float(fl[(fl.noise == "symmetric") & ~fl.method.str.startswith("MAP-D")].f1.max())
    if run == "planted":
        if key == "mapd_auroc_flips_median": return _median_of_kinds(f, FLIPS, "MAP-D")
        if key == "mapd_vote_auroc_flips_median": return _median_of_kinds(f, FLIPS, "MAP-D vote p (the paper's equation 6)")
        if key == "mapd_other_auroc_flips_median": return _median_of_kinds(f, FLIPS, "MAP-D, k-NN on loss+margin")
        if key == "best_single_auroc_flips_median":
            r = f.csv("planted/recovery_per_seed.csv"); r = r[~r.method.str.startswith("MAP-D")]
            return float(np.median([r[r.kind == k].groupby("method").auroc.median().max() for k in FLIPS]))
    if run == "prioritized" and key in ("mapd_unbalanced_speedup", "mapd_balanced_given_probes_speedup", "rho_loss_speedup"):
        from mapd.prioritized import speedup
        cur = f.csv("prioritized/curves.csv")
        mean = cur.groupby(["method", "step"], sort=False).test_acc.mean().reset_index()
        m = {"mapd_unbalanced_speedup": "mapd", "mapd_balanced_given_probes_speedup": "mapd_balanced_given_probes", "rho_loss_speedup": "rho_loss"}[key]
        return float(speedup(mean).set_index("method").speedup[m])
    if run in ("audit", "audit_noise20") and key == "probe_accuracy":
        p = f.csv(f"{run}/probe_predictions.csv")
        return float((p.predicted == p.category).mean())
    if run in ("audit", "audit_noise20") and key == "probe_accuracy_main":
        p = f.csv(f"{run}/probe_predictions.csv").rename(columns=_OLD_COLUMNS)
        if "predicted_main" in p:
            p = p[p.predicted_main.notna()]; return float((p.predicted_main == p.category).mean())
        raise NotRebuildable(f"needs {run}/trajectories (git-ignored): the four-category k-NN is refitted on the probes' "
                             "trajectories; the six-category predictions in probe_predictions.csv do not give it")
    if run == "audit" and key == "test_accuracy": return float(f.csv("audit/history.csv").test_acc.iloc[-1])
    if run == "probe_dynamics":
        area = f.csv("probe_dynamics/probe_dynamics.csv").groupby("category").first_learned.sum()   # area under the first-learned curve
        return {"typical_fastest": area.idxmax() == "typical", "random_labels_slowest": area.idxmin() == "random_labels",
                "typical_before_corrupted": area["typical"] > area["corrupted"], "atypical_before_corrupted": area["atypical"] > area["corrupted"]}[key]
    if run in ("audit_noise20", "audit_asym20", "audit_inst20") and key.startswith("mislabel_auroc"):
        if f"{run}/rankings.parquet" in f.tracked:
            which = {"mislabel_auroc": "score", "mislabel_auroc_vote": "vote", "mislabel_auroc_mean_loss": "mean_loss"}[key]
            return auroc_of_ranking(f.rankings(f"{run}/rankings.parquet")[f"rank:mislabel/{which}"])
        f.path(f"{run}/metadata.parquet")
    if run == "probe_suites":
        head, _, name = key.partition(".")
        if head in ("accuracy_4", "accuracy_6"):
            c = f.parquet("probe_suites/calls.parquet").rename(columns=_OLD_COLUMNS); suite, noise = name.split("_noise")
            c = c[(c.suite.astype(str) == suite) & (np.round(100 * c.noise) == int(noise))]
            col = "predicted_main" if head == "accuracy_4" else "predicted"
            c = c[c[col].notna()]
            return float((c[col].astype(str) == c.category.astype(str)).mean())
    if run == "audit" and key == "image_problem_flag_rate":
        t = pd.read_parquet(f.path("audit/metadata.parquet"))
        flags = [c for c in ("flag_random_inputs", "flag_corrupted", "flag_ood") if c in t.columns]
        if not flags: raise NotRebuildable("not rebuilt yet: audit/metadata.parquet lacks the image-problem flag columns")
        rows = t[t["split"] == "train"] if "split" in t.columns else t
        return float(rows[flags].any(axis=1).mean())
    raise NotRebuildable(f"not rebuilt yet: no rebuilder from a committed file of {run}/ for `{key}` (only in {run}/results.json)")


def _agrees(c: dict, rebuilt, value) -> bool:
    "Whether the rebuilt value prints as the claim's value does (a per-seed list: its mean or its median does)."
    if isinstance(rebuilt, str): return rebuilt == _shown(value, c) or rebuilt == value
    if isinstance(rebuilt, tuple):
        _, v = rebuilt
        return any(_shown(float(s(v)), c) == _shown(value, c) for s in (np.mean, np.median)) if v else value is None
    if isinstance(rebuilt, (bool, np.bool_)): return bool(rebuilt) == value
    if value is None: return bool(np.isnan(float(rebuilt)))   # n/a: never reached, in both
    return _shown(float(rebuilt), c) == _shown(value, c)


def check(out: Path, plan_path: Path) -> tuple[list, list, list, list]:
    "(mismatches, not rebuilt, rebuilt, rebuilt from the comparison's summaries only) of every claim row."
    plan = load_plan(plan_path)
    f = Files(out)
    results = {}
    for r in plan["runs"]:
        rel = f"{r['name']}/results.json"
        if rel in f.tracked: results[r["name"]] = current_names(json.loads((out/rel).read_text()))   # older names read as today's
    readme = (out/"README.md").read_text(encoding="utf-8") if (out/"README.md").is_file() else ""
    fresh = render_readme(plan, results, _read_manifest(out), out=out)
    rows = lambda md: {l.split(" | ")[0][2:]: l for l in md.splitlines() if l.startswith("| ")}
    have, want = rows(readme), rows(fresh)
    bad, missing, ok, summary = [], [], [], []
    for c in plan["claims"]:
        name = f"{c['run']}: {c['claim']}"
        if have.get(c["claim"]) != want.get(c["claim"]):
            bad.append(f"{name}: the README's row differs from the committed results\n    README:   {have.get(c['claim'])}\n    rendered: {want.get(c['claim'])}")
            continue
        value = _lookup(results.get(c["run"], {}), c["key"])
        f.read = set()
        try: rebuilt = rebuild(c, f)
        except NotRebuildable as e:
            missing.append(f"{name} (`{c['key']}`): " + (str(e) if str(e).startswith("not rebuilt") else f"not rebuildable: {e}")); continue
        except (KeyError, IndexError, ValueError) as e: bad.append(f"{name}: the rebuild failed: {type(e).__name__}: {e}"); continue
        src = ", ".join(sorted(f.read)) or "?"
        (ok if _agrees(c, rebuilt, value) else bad).append(f"{name}: results.json {value!r}, rebuilt {rebuilt!r} from {src}")
        if f.read and f.read <= SUMMARIES:
            summary.append(f"{name} (`{c['key']}`): rebuilt from {src} only, the comparison's summary; from the rows it needs {PER_ROW} (git-ignored)")
    return bad, missing, ok, summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default="outputs")
    ap.add_argument("--plan", default="nbs/experiments/report.yaml")
    ap.add_argument("-v", "--verbose", action="store_true", help="also list each rebuilt claim, its value and the files it came from")
    a = ap.parse_args(argv)
    out = Path(a.out)
    if not (out/"README.md").is_file(): print(f"check_report: {out}/README.md not found", file=sys.stderr); return 2
    bad, missing, ok, summary = check(out, Path(a.plan)); verbose = a.verbose
    print(f"{len(ok)} claims rebuilt from committed files and equal to the report")
    for m in missing: print(f"  {m}")
    for m in summary: print(f"  {m}")
    for b in bad: print(f"MISMATCH {b}")
    if verbose:
        for o in ok: print(f"  ok {o}")
    print(f"{len(ok)} rebuilt, {len(missing)} not rebuilt, of the rebuilt {len(summary)} from the comparison's summaries only (listed above), {len(bad)} mismatches")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
