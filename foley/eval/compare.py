"""`foley eval compare A B --reference R`: differences A - B with their uncertainty, paired where possible.

- Per-item metrics (LSD, SI-SDR, ..., KL): paired by reference item when both A and B pair with the
  same reference items (percentile bootstrap CI of the mean difference); otherwise unpaired (each
  side resampled independently).
- Set metrics (FD, KID, IS): the difference over shared subset draws: each draw uses one reference
  subset for both sides, and the same items of A and B when A and B pair up with each other.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import metrics as M
from .inputs import pair
from .prepare import EvalSettings
from .run import MIN_SUBSET_ITEMS, EvalResult, _standardise, evaluate, split_metric
from .stats import CI_LEVEL, default_subset_size

MIN_COMPARE_DRAWS = 50


def _interval(values: np.ndarray) -> list[float]:
    a = (1 - CI_LEVEL) / 2
    return [float(np.quantile(values, a)), float(np.quantile(values, 1 - a))]


def diff_ci(a, b, seed: int, n_resamples: int, paired: bool) -> dict:
    """Bootstrap CI of mean(a) - mean(b) (paired: mean of a_i - b_i)."""
    from scipy.stats import bootstrap

    a, b = np.asarray(a, float), np.asarray(b, float)
    if paired:
        d = a - b
        out = {"difference": float(d.mean()), "n": len(d), "paired": True}
        data, stat = (d,), np.mean
    else:
        out = {"difference": float(a.mean() - b.mean()), "n_a": len(a), "n_b": len(b), "paired": False}
        data, stat = (a, b), lambda x, y: np.mean(x) - np.mean(y)
    if min(len(x) for x in data) < 2 or all(np.ptp(x) == 0 for x in data):
        out["ci95"] = None if min(len(x) for x in data) < 2 else [out["difference"]] * 2
        return out
    res = bootstrap(data, stat, n_resamples=n_resamples, method="percentile", vectorized=False,
                    confidence_level=CI_LEVEL, random_state=np.random.default_rng(seed))
    out["ci95"] = [float(res.confidence_interval.low), float(res.confidence_interval.high)]
    return out


def _subset_diff(fn: Callable, ra: EvalResult, rb: EvalResult, ab_pairs: list, s: EvalSettings) -> dict:
    """fn(result, gen_positions, ref_positions) over shared draws; A-B positions paired if possible."""
    na, nb, nr = len(ra.generated.usable), len(rb.generated.usable), len(ra.reference.usable)
    pos_a = {g: k for k, g in enumerate(ra.generated.usable)}
    pos_b = {g: k for k, g in enumerate(rb.generated.usable)}
    partners = [(pos_a[a], pos_b[b]) for a, b in ab_pairs if a in pos_a and b in pos_b]
    paired = len(partners) >= MIN_SUBSET_ITEMS
    if min(len(partners) if paired else min(na, nb), nr) < MIN_SUBSET_ITEMS:
        return {"status": "unavailable", "reason": f"subset draws need at least {MIN_SUBSET_ITEMS} items per set"}
    size = s.subset_size or default_subset_size(len(partners) if paired else min(na, nb), nr)
    rng = np.random.default_rng(s.seed)
    count = max(s.n_subsets, MIN_COMPARE_DRAWS)
    diffs = []
    for _ in range(count):
        ir = np.sort(rng.choice(nr, size, replace=False))
        if paired:
            pick = rng.choice(len(partners), size, replace=False)
            ia = np.array([partners[i][0] for i in pick])
            ib = np.array([partners[i][1] for i in pick])
        else:
            ia = np.sort(rng.choice(na, size, replace=False))
            ib = np.sort(rng.choice(nb, size, replace=False))
        diffs.append(fn(ra, ia, ir) - fn(rb, ib, ir))
    d = np.asarray(diffs)
    return {"difference_mean": float(d.mean()), "sd": float(d.std(ddof=1)), "interval95": _interval(d),
            "size": int(size), "count": count, "paired_items": paired, "replacement": False, "seed": s.seed}


def _set_fn(prefix: str, name: str) -> Callable | None:
    def fd(r, ig, ir):
        return M.fd(r.generated.features[name].pooled(ig), r.reference.features[name].pooled(ir))

    def kid(r, ig, ir):
        xg, xr = r.generated.features[name].embeddings, r.reference.features[name].embeddings
        if name == "logmel":
            xg, xr = _standardise(xg, xr), _standardise(xr, xr)
        return M.kid(xg[ig], xr[ir])

    def inception(r, ig, ir):
        return M.inception_score(r.generated.features[name].posteriors[ig])

    return {"fd_": fd, "kid_": kid, "is_": inception}.get(prefix)


def _per_item(result: EvalResult, metric: str) -> dict[str, float]:
    """{reference name: value} of a per-pair metric stored on generated records."""
    return {r["paired"]["reference"]: r["paired"][metric] for r in result.generated.records
            if metric in r.get("paired", {})}


def compare(a: str | Path, b: str | Path, reference: str | Path, metrics: list[str] | None = None,
            settings: EvalSettings | None = None, log=None) -> dict:
    """Evaluate A and B against one reference and report A - B per metric with its uncertainty."""
    from .inputs import collect

    s = settings or EvalSettings()
    ra = evaluate(a, reference, metrics, s, log)
    rb = evaluate(b, reference, metrics, s, log)
    ab_pairs, ab_rule = pair(collect(a), collect(b))
    out = {"format": "foley-eval-compare", "version": 1, "a": str(a), "b": str(b), "reference": str(reference),
           "direction": "A - B", "pairing_a_b": {"rule": ab_rule, "n_pairs": len(ab_pairs)},
           "settings": ra.report["settings"], "metrics": {}, "reports": {"a": ra.report, "b": rb.report}}
    for m, ma in ra.report["metrics"].items():
        mb = rb.report["metrics"].get(m, {})
        if ma.get("status") != "ok" or mb.get("status") != "ok":
            reason = ma.get("reason") or mb.get("reason") or "not computed"
            out["metrics"][m] = {"status": "unavailable", "reason": reason}
            continue
        row = {"status": "ok", "unit": ma.get("unit"), "higher_is_better": ma.get("higher_is_better"),
               "conditions": ma.get("conditions")}
        sp = split_metric(m)
        if ma.get("kind") == "paired" or (sp and sp[0] == "kl_"):
            va, vb = _per_item(ra, m), _per_item(rb, m)
            common = [k for k in va if k in vb]
            if len(common) >= 2:
                row |= {"a": ma["mean"], "b": mb["mean"], "by": "reference item",
                        **diff_ci([va[k] for k in common], [vb[k] for k in common], s.seed, s.n_bootstrap, True)}
            else:
                row |= {"a": ma["mean"], "b": mb["mean"],
                        **diff_ci(list(va.values()), list(vb.values()), s.seed, s.n_bootstrap, False)}
        elif sp and (fn := _set_fn(*sp)):
            row |= {"a": ma["value"], "b": mb["value"], "difference": ma["value"] - mb["value"],
                    "subsets": _subset_diff(fn, ra, rb, ab_pairs, s)}
        elif sp and sp[0] == "knn_":
            row |= {k: {"a": ma[k], "b": mb[k], "difference": ma[k] - mb[k]} for k in ("precision", "recall")}
            row["note"] = "no interval: k-NN balls change with every subset"
        elif "within" in ma:
            row |= {"a": ma["within"], "b": mb["within"], "difference": ma["within"] - mb["within"]}
        out["metrics"][m] = row
    out["attributes"] = _attr_diffs(ra, rb, s)
    return out


def _attr_diffs(ra: EvalResult, rb: EvalResult, s: EvalSettings) -> dict:
    out = {}
    if "attributes" not in ra.report:
        return out
    for n, entry in ra.report["attributes"]["values"].items():
        va = [r["attributes"][n] for r in ra.generated.records if "attributes" in r]
        vb = [r["attributes"][n] for r in rb.generated.records if "attributes" in r]
        if va and vb:
            out[n] = {"unit": entry["unit"], "a": float(np.mean(va)), "b": float(np.mean(vb)),
                      **diff_ci(va, vb, s.seed, s.n_bootstrap, False)}
    return out


def render_compare(result: dict) -> str:
    from .html import fmt, page, table

    rows = []
    for m, r in result["metrics"].items():
        if r["status"] != "ok":
            rows.append([m, "–", "–", "unavailable", r.get("reason", "")])
            continue
        if "subsets" in r:
            sub = r["subsets"]
            if "interval95" not in sub:
                rows.append([m, fmt(r["a"]), fmt(r["b"]), fmt(r["difference"]), sub["reason"]])
                continue
            unc = f"draws: {fmt(sub['difference_mean'])} ± {fmt(sub['sd'])}, 95 % [{fmt(sub['interval95'][0])}, " \
                  f"{fmt(sub['interval95'][1])}] (n={sub['size']}, ×{sub['count']})"
            rows.append([m, fmt(r["a"]), fmt(r["b"]), fmt(r["difference"]), unc])
        elif "ci95" in r:
            ci = r["ci95"]
            unc = (f"95 % CI [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "no CI (n < 2)") + \
                (" paired by reference item" if r.get("paired") else " unpaired")
            rows.append([m, fmt(r["a"]), fmt(r["b"]), fmt(r["difference"]), unc])
        elif "precision" in r:
            for k in ("precision", "recall"):
                rows.append([f"{m} {k}", fmt(r[k]["a"]), fmt(r[k]["b"]), fmt(r[k]["difference"]), r["note"]])
        else:
            rows.append([m, fmt(r.get("a")), fmt(r.get("b")), fmt(r.get("difference")), ""])
    for n, r in result["attributes"].items():
        ci = r["ci95"]
        rows.append([f"attribute {n} ({r['unit']})", fmt(r["a"]), fmt(r["b"]), fmt(r["difference"]),
                     f"95 % CI [{fmt(ci[0])}, {fmt(ci[1])}] unpaired" if ci else ""])
    head = f"<p>A = <code>{result['a']}</code>, B = <code>{result['b']}</code>, reference = " \
           f"<code>{result['reference']}</code>; difference = A - B</p>"
    return page("foley eval compare", [head, table(["metric", "A", "B", "A - B", "uncertainty"], rows)])
