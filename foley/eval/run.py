"""`foley eval`: compute the selected metrics for a generated set against a reference set.

:func:`evaluate` returns an :class:`EvalResult` (the JSON-ready report plus the in-memory data the
HTML pictures need); :func:`write_report` writes ``report.json`` and ``report.html`` atomically.
"""

from __future__ import annotations

import datetime as _dt
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FoleyError, ModelError
from . import metrics as M
from .cache import FeatureCache
from .extractors import FeatureExtractor, extractor_names, get_extractor, gives_posteriors
from .inputs import collect, pair
from .paired import HIGHER_IS_BETTER, PAIRED_METRICS, PAIRED_UNITS
from .prepare import EvalSettings, SetData, prepare, process_set
from .sanity import THRESHOLDS, summarize_flags, within_prompt_diversity
from .stats import bootstrap_ci, default_subset_size, subset_stats

REPORT_FORMAT = "foley-eval-report"
REPORT_VERSION = 1
MIN_SUBSET_ITEMS = 4
SET_PREFIXES = ("fd_inf_", "fd_", "kid_", "knn_", "kl_", "is_")
KID_NOTE = ("KID is an unbiased estimate of MMD^2: the true value is >= 0, but the estimate can be negative on "
            "small sets; a value within the subsets' spread of 0 means no detectable difference")
OTHER = ("sanity", "diversity", "attributes", "clap")
SET_INFO = {  # prefix -> (unit, higher is better, description)
    "fd_": ("", False, "Fréchet distance between Gaussian fits to pooled frame features"),
    "fd_inf_": ("", False, "FD extrapolated to infinitely many items: a in FD(n) = a + b/n"),
    "kid_": ("", False, "unbiased MMD^2 with a cubic polynomial kernel on clip embeddings"),
    "knn_": ("share 0..1", True, "k-NN precision (fidelity) and recall (coverage), Kynkäänniemi 2019"),
    "kl_": ("nats", False, "KL(reference ‖ generated) of class posteriors, per pair"),
    "is_": ("", True, "inception score exp(E KL(p(y|x) ‖ p(y))) of generated class posteriors"),
}


def default_metrics() -> list[str]:
    """Tier 1 (no weights) plus FD/KID/KL/IS for every registered backbone."""
    out = ["fd_logmel", "kid_logmel", "fd_inf_logmel", "knn_logmel", *PAIRED_METRICS, *OTHER]
    for name in extractor_names():
        if name != "logmel":
            out += [f"fd_{name}", f"kid_{name}"]
            out += [f"kl_{name}", f"is_{name}"] if gives_posteriors(name) else []
    return out


def split_metric(metric: str) -> tuple[str, str] | None:
    """'fd_inf_logmel' -> ('fd_inf_', 'logmel'); None for paired and other metrics."""
    for p in SET_PREFIXES:
        if metric.startswith(p) and len(metric) > len(p):
            return p, metric[len(p):]
    return None


def parse_metrics(names: list[str] | None) -> list[str]:
    """Validate metric names (comma lists allowed); None or 'all' -> :func:`default_metrics`."""
    if not names:
        return default_metrics()
    flat = [n.strip() for x in names for n in x.split(",") if n.strip()]
    if "all" in flat:
        return default_metrics()
    known = set(extractor_names())
    for n in flat:
        sp = split_metric(n)
        if n in PAIRED_METRICS or n in OTHER or (sp and sp[1] in known):
            continue
        raise FoleyError(f"unknown metric '{n}'; use {', '.join(PAIRED_METRICS)}, {', '.join(OTHER)} or "
                         f"fd_/fd_inf_/kid_/knn_/kl_/is_ + one of {', '.join(sorted(known))}")
    return list(dict.fromkeys(flat))


@dataclass
class EvalResult:
    report: dict
    generated: SetData
    reference: SetData
    pairs: list[tuple[int, int]]


def load_extractors(metrics: list[str]) -> tuple[dict[str, FeatureExtractor], dict[str, str]]:
    """Build each needed extractor once; ModelError (missing weights) -> reason, never a substitute."""
    names = ["logmel"] + [sp[1] for m in metrics if (sp := split_metric(m))]
    ok, unavailable = {}, {}
    for n in dict.fromkeys(names):
        try:
            ok[n] = get_extractor(n)
        except ModelError as e:
            unavailable[n] = str(e)
    return ok, unavailable


def evaluate(generated: str | Path, reference: str | Path, metrics: list[str] | None = None,
             settings: EvalSettings | None = None, log: Callable[[str], None] | None = None,
             remote=None) -> EvalResult:
    """Evaluate a generated folder/manifest against a reference folder/manifest. ``remote``: a
    :class:`foley.eval.remote.RayFeatures` computing the features on Ray actors."""
    s = settings or EvalSettings()
    gen_items, ref_items = collect(generated), collect(reference)
    metrics = parse_metrics(metrics)
    extractors, unavailable = load_extractors(metrics)
    cache = FeatureCache(s.cache_dir)
    want_attr = "attributes" in metrics
    gen = process_set(gen_items, extractors, s, cache, want_attr, log, remote)
    ref = process_set(ref_items, extractors, s, cache, want_attr, log, remote)
    for d in (gen, ref):
        unavailable.update(d.unavailable)
    if not gen.usable or not ref.usable:
        bad = gen if not gen.usable else ref
        raise FoleyError(f"{bad.items.source}: none of its {len(bad.items.items)} audio files is readable "
                         f"(first problem: {bad.records[0]['sanity']['error']})")
    pairs_all, rule = pair(gen_items, ref_items)
    gu, ru = set(gen.usable), set(ref.usable)
    pairs = [(g, r) for g, r in pairs_all if g in gu and r in ru]
    report = _header(s, gen, ref, extractors, unavailable, cache, rule, pairs, pairs_all)
    out = report["metrics"]
    for m in metrics:
        sp = split_metric(m)
        if sp:
            out[m] = set_metric(sp[0], sp[1], gen, ref, extractors, unavailable, pairs, s)
    paired = [m for m in metrics if m in PAIRED_METRICS]
    if paired:
        out.update(paired_metrics(paired, gen, ref, pairs, rule, s))
    if "sanity" in metrics:
        report["sanity"] = {"thresholds": THRESHOLDS, "generated": summarize_flags(
            [r["sanity"] for r in gen.records]), "reference": summarize_flags([r["sanity"] for r in ref.records])}
    if "diversity" in metrics:
        out["diversity"] = diversity(gen, s)
    if want_attr:
        report["attributes"] = attributes(gen, ref, s)
    if "clap" in metrics:
        from .clapscore import clap_metrics

        out.update(clap_metrics(gen, s.seed, s.n_bootstrap))
    report["examples"] = examples(gen, ref, pairs, out)
    report["cache"] = cache.describe()
    return EvalResult(report, gen, ref, pairs)


def _header(s, gen, ref, extractors, unavailable, cache, rule, pairs, pairs_all) -> dict:
    from ..version import __version__

    return {
        "format": REPORT_FORMAT, "version": REPORT_VERSION,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "foley_version": __version__, "python": platform.python_version(), "command": sys.argv,
        "inputs": {"generated": gen.items.describe() | {"n_usable": len(gen.usable)},
                   "reference": ref.items.describe() | {"n_usable": len(ref.usable)}},
        "settings": s.to_dict() | {"paired_preparation": s.preparation(s.sample_rate, 1)},
        "extractors": {n: e.describe() for n, e in extractors.items()},
        "unavailable_extractors": unavailable,
        "pairing": {"rule": rule, "n_pairs": len(pairs), "n_pairs_before_unreadable": len(pairs_all)},
        "metrics": {},
        "items": {"generated": gen.records, "reference": ref.records},
    }


def _conditions(ex: FeatureExtractor, gen: SetData, ref: SetData, s: EvalSettings, feats=True) -> dict:
    c = {"extractor": ex.describe(), "preparation": s.preparation(ex.sample_rate, ex.channels),
         "n_generated": len(gen.usable), "n_reference": len(ref.usable), "seed": s.seed}
    if feats:
        c["n_frames_generated"] = gen.features[ex.name].n_frames
        c["n_frames_reference"] = ref.features[ex.name].n_frames
    return c


def _standardise(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Centre on the reference mean and divide by ONE scale (the reference's RMS spread over all
    dimensions): keeps the features' relative geometry, unlike per-dimension z-scores, which blow up
    dimensions that barely vary in the reference."""
    mu = ref.mean(axis=0)
    scale = float(np.sqrt(np.mean(ref.var(axis=0))))
    return (x - mu) / (scale if scale > 0 else 1.0)


def set_metric(prefix: str, name: str, gen: SetData, ref: SetData, extractors: dict,
               unavailable: dict, pairs: list, s: EvalSettings) -> dict:
    """One set metric ('fd_', 'fd_inf_', 'kid_', 'knn_', 'kl_', 'is_') on extractor ``name``."""
    unit, better, desc = SET_INFO[prefix]
    base = {"kind": "set", "unit": unit, "higher_is_better": better, "description": desc}
    if name in unavailable:
        return base | {"status": "unavailable", "reason": unavailable[name]}
    ex = extractors[name]
    fg, fr = gen.features[name], ref.features[name]
    ng, nr = len(fg.embeddings), len(fr.embeddings)
    base |= {"id": f"{prefix}{name}@{ex.hash[:8]}", "conditions": _conditions(ex, gen, ref, s)}
    size = s.subset_size or default_subset_size(ng, nr)
    if min(ng, nr) < MIN_SUBSET_ITEMS:  # every draw would hold (nearly) the same items: no spread to report
        def sub_of(fn):
            return {"status": "unavailable", "reason": f"subsets need at least {MIN_SUBSET_ITEMS} items per set"}
    else:
        def sub_of(fn):
            return subset_stats(fn, ng, nr, size, s.n_subsets, s.seed)
    try:
        if prefix == "fd_":
            val = M.fd(fg.pooled(range(ng)), fr.pooled(range(nr)))
            sub = sub_of(lambda a, b: M.fd(fg.pooled(a), fr.pooled(b)))
            return base | {"status": "ok", "value": val, "subsets": sub}
        if prefix == "fd_inf_":
            r = M.fd_infinity(lambda a, b: M.fd(fg.pooled(a), fr.pooled(b)), ng, nr, seed=s.seed)
            return base | {"status": "ok", "value": r.pop("value"), "fit": r}
        if prefix == "kid_":
            xg, xr = fg.embeddings.astype(np.float64), fr.embeddings.astype(np.float64)
            if name == "logmel":  # raw log-mel statistics have very unequal scales; backbones stay raw
                xg, xr = _standardise(xg, xr), _standardise(xr, xr)
                base["feature_scaling"] = ("centred on the reference mean, divided by the reference's RMS "
                                           "spread over all dimensions (one scalar)")
            sub = sub_of(lambda a, b: M.kid(xg[a], xr[b]))
            return base | {"status": "ok", "value": M.kid(xg, xr), "subsets": sub, "note": KID_NOTE}
        if prefix == "knn_":
            return base | {"status": "ok", **M.knn_precision_recall(fr.embeddings, fg.embeddings, s.knn_k)}
    except ValueError as e:
        return base | {"status": "unavailable", "reason": str(e)}
    if fg.posteriors is None or fr.posteriors is None:
        return base | {"status": "unavailable", "reason": f"extractor '{name}' gives no class posteriors"}
    if prefix == "is_":
        sub = sub_of(lambda a, b: M.inception_score(fg.posteriors[a]))
        return base | {"status": "ok", "value": M.inception_score(fg.posteriors), "subsets": sub,
                       "reference_value": M.inception_score(fr.posteriors)}
    if not pairs:  # kl_
        return base | {"status": "unavailable", "reason": "KL is per pair and the two sets do not pair up"}
    gi = {g: k for k, g in enumerate(gen.usable)}
    ri = {r: k for k, r in enumerate(ref.usable)}
    kl = M.kl_divergence(fr.posteriors[[ri[r] for _, r in pairs]], fg.posteriors[[gi[g] for g, _ in pairs]])
    for (g, r), v in zip(pairs, kl.tolist(), strict=True):
        gen.records[g].setdefault("paired", {"reference": ref.items.items[r].name})[f"kl_{name}"] = v
    return base | {"status": "ok", "direction": "KL(reference ‖ generated)", "per": "pair",
                   **bootstrap_ci(kl, s.seed, s.n_bootstrap)}


def paired_metrics(names: list[str], gen: SetData, ref: SetData, pairs: list, rule: str | None,
                   s: EvalSettings) -> dict:
    """Per-pair metrics at ``s.sample_rate`` (mono, cropped to the shorter clip) with bootstrap CIs."""
    from .inputs import load

    if not pairs:
        reason = ("generated and reference items do not pair up (no shared ids or file names, and not "
                  "two manifests of equal length)")
        return {n: {"kind": "paired", "status": "unavailable", "reason": reason} for n in names}
    vals = {n: [] for n in names}
    for g, r in pairs:
        ag, _ = load(gen.items.items[g])
        ar, _ = load(ref.items.items[r])
        pg, pr = prepare(ag, s.sample_rate, 1, s), prepare(ar, s.sample_rate, 1, s)
        rec = gen.records[g].setdefault("paired", {"reference": ref.items.items[r].name})
        for n in names:
            v = PAIRED_METRICS[n](pg, pr)
            rec[n] = v
            vals[n].append(v)
    cond = {"preparation": s.preparation(s.sample_rate, 1), "pairing": rule, "n_pairs": len(pairs),
            "crop": "both clips cropped to the shorter one", "seed": s.seed}
    return {n: {"kind": "paired", "status": "ok", "unit": PAIRED_UNITS[n], "higher_is_better": HIGHER_IS_BETTER[n],
                "conditions": cond, **bootstrap_ci(v, s.seed, s.n_bootstrap)} for n, v in vals.items()}


def diversity(gen: SetData, s: EvalSettings) -> dict:
    emb = gen.features["logmel"].embeddings
    try:
        d = within_prompt_diversity(emb, gen.prompts())
    except ValueError as e:
        return {"kind": "set", "status": "unavailable", "reason": f"within-prompt diversity: {e}"}
    per = [v["mean_distance"] for v in d["per_prompt"].values()]
    return {"kind": "set", "status": "ok", "unit": "standardised logmel-embedding distance",
            "higher_is_better": True, "features": "logmel clip embedding, standardised over the generated set",
            **d, "ci_over_prompts": bootstrap_ci(per, s.seed, s.n_bootstrap)}


def attributes(gen: SetData, ref: SetData, s: EvalSettings) -> dict:
    """Per analyzer: generated and reference means with bootstrap CIs (native rate and channels)."""
    from ..analyzers import ANALYZERS, UNITS

    out = {}
    for n in ANALYZERS:
        g = [r["attributes"][n] for r in gen.records if "attributes" in r]
        rv = [r["attributes"][n] for r in ref.records if "attributes" in r]
        out[n] = {"unit": UNITS[n], "generated": bootstrap_ci(g, s.seed, s.n_bootstrap),
                  "reference": bootstrap_ci(rv, s.seed, s.n_bootstrap)}
    return {"conditions": {"audio": "each file at its native sample rate and channels (no resampling)",
                           "ci": "percentile bootstrap 95 % over items", "seed": s.seed}, "values": out}


def examples(gen: SetData, ref: SetData, pairs: list, out: dict, k: int = 3) -> dict:
    """Best and worst generated items: by LSD to their reference when paired, else by the distance
    of their logmel embedding to the nearest reference embedding."""
    if out.get("lsd", {}).get("status") == "ok":
        scores = {g: gen.records[g]["paired"]["lsd"] for g, _ in pairs}
        crit = "LSD to the paired reference (dB, lower is better)"
    else:
        d = M.nearest_distance(ref.features["logmel"].embeddings, gen.features["logmel"].embeddings)
        scores = dict(zip(gen.usable, d.tolist(), strict=True))
        crit = "distance to the nearest reference item (standardised logmel embedding, lower is better)"
    for g, v in scores.items():
        gen.records[g]["score"] = v
    order = sorted(scores, key=scores.get)
    k = min(k, max(1, len(order) // 2))
    return {"criterion": crit, "best": [gen.records[i]["name"] for i in order[:k]],
            "worst": [gen.records[i]["name"] for i in order[::-1][:k]]}


def write_report(result: EvalResult, out_dir: str | Path, html: bool = True) -> dict[str, Path]:
    """Write report.json (and report.html) atomically into ``out_dir``; returns the paths."""
    from ..fsutil import write_json_atomic, write_text_atomic

    out = Path(out_dir)
    paths = {"json": out / "report.json"}
    write_json_atomic(paths["json"], _jsonable(result.report))
    if html:
        from .html import render_report

        paths["html"] = out / "report.html"
        write_text_atomic(paths["html"], render_report(result))
    return paths


def _jsonable(x):
    """NaN/inf -> None (JSON has no NaN); numpy scalars -> Python."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x
