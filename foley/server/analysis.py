"""Listening-study analysis from an export (:func:`foley.server.studies.export_study`): screening, means with
95 % CIs, confusion matrices, A/B preference rates, Krippendorff's alpha, and a CSV of every answer.

Used by the owner's results page and by `foley study analyse`, so both give the same numbers.

Statistics: see ``STATISTICS``.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict

import numpy as np

CI_LEVEL = 0.95
STATISTICS = (
    "The participant is the unit of replication. A system's mean is the mean over participants of each "
    "participant's own mean for that system, and its 95 % CI is the t interval over those participant "
    "means (a clip's mean and CI likewise over the participants who rated it). A/B preference rates "
    "use the Wilson interval and a two-sided binomial test on the pooled choices. Krippendorff's alpha "
    "uses the first answer of each participant to each item (interval level for ratings, nominal for "
    "choices).")
REPEAT_TOLERANCE = 0.3  # a repeated rating agrees when the mean |difference| is <= 30 % of the scale


def mean_ci(values, level: float = CI_LEVEL, bounds: tuple[float, float] | None = None) -> dict:
    """Mean and t-interval CI of ``values`` [N]; ``ci95`` is None when N < 2. ``bounds``: the scale's range,
    to which the interval is clipped (a t interval of few participants can reach past the scale)."""
    from scipy.stats import t

    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    out = {"mean": float(v.mean()) if v.size else None, "n": int(v.size), "ci95": None}
    if v.size >= 2:
        sd = float(v.std(ddof=1))
        half = float(t.ppf(0.5 + level / 2, v.size - 1)) * sd / math.sqrt(v.size)
        lo, hi = out["mean"] - half, out["mean"] + half
        if bounds is not None:
            lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
        out["ci95"] = [lo, hi]
        out["sd"] = sd
    return out


def krippendorff_alpha(matrix, level: str) -> dict:
    """Krippendorff's alpha of a raters x units matrix (NaN = no rating); ``level`` 'interval' or 'nominal'.

    Returns {"alpha", "level", "raters", "units"}; alpha is None with a "note" when it is undefined
    (fewer than two raters of one unit, or every rating the same).
    """
    import krippendorff

    m = np.asarray(matrix, dtype=np.float64)
    out = {"alpha": None, "level": level, "raters": int(m.shape[0]) if m.ndim == 2 else 0,
           "units": int(m.shape[1]) if m.ndim == 2 else 0}
    if m.ndim != 2 or m.shape[0] < 2 or not (np.isfinite(m).sum(axis=0) >= 2).any():
        return {**out, "note": "needs at least two raters of the same unit"}
    if np.unique(m[np.isfinite(m)]).size < 2:
        return {**out, "note": "every rating is the same value, so agreement beyond chance is undefined"}
    a = float(krippendorff.alpha(reliability_data=m, level_of_measurement=level))
    return {**out, "alpha": a} if math.isfinite(a) else {**out, "note": "undefined for these ratings"}


# --- screening -------------------------------------------------------------------------------------------
def _preferred(trial: dict) -> str | None:
    r = trial.get("response")
    if not r:
        return None
    return trial["clips"][0] if r["choice"] == "A" else trial["clips"][1]


def _agree(protocol: str, scales: dict, a: dict, b: dict) -> tuple[bool, str]:
    if scales:
        diffs = [abs(a["response"][k] - b["response"][k]) / (hi - lo) for k, (lo, hi) in scales.items()]
        d = float(np.mean(diffs))
        return d <= REPEAT_TOLERANCE, f"mean difference {100 * d:.0f} % of the scale"
    if protocol == "ab":
        same = _preferred(a) == _preferred(b)
        return same, "same preference" if same else "preference changed"
    same = a["response"]["choice"] == b["response"]["choice"]
    return same, "same choice" if same else "different choices"


def screening(export: dict, participant: dict) -> dict:
    """Checks of one participant: each repeated unit answered consistently; in matching, reference clips
    matched to their own description. {"passed": bool | None (nothing to check), "checks": [...]}."""
    study = export["study"]
    protocol, scales = study["protocol"], study["options"].get("scales") or {}
    clips = {c["key"]: c for c in study["clips"]}
    checks = []
    first: dict[str, dict] = {}
    for t in participant["trials"]:
        if t["role"] == "main":
            first[t["unit"]] = t
    for t in participant["trials"]:
        if t["role"] == "repeat" and t.get("response") and first[t["unit"]].get("response"):
            ok, detail = _agree(protocol, scales, first[t["unit"]], t)
            checks.append({"kind": "repeat", "unit": t["unit"], "ok": ok, "detail": detail})
        clip = clips[t["clips"][0]]
        if protocol == "matching" and t["role"] == "main" and t.get("response") and clip["reference"]:
            ok = t["response"]["choice"] == clip["description"]
            checks.append({"kind": "reference", "unit": t["unit"], "ok": ok,
                           "detail": "reference matched" if ok else "reference not matched"})
    return {"passed": all(c["ok"] for c in checks) if checks else None, "checks": checks}


# --- analysis ----------------------------------------------------------------------------------------------
def analyse(export: dict, include_failed: bool = False, include_incomplete: bool = False) -> dict:
    """The full analysis of an export. By default only completed participants who passed screening count."""
    study = export["study"]
    parts, excluded, screens = [], [], {}
    for p in export["participants"]:
        screens[p["id"]] = screening(export, p)
        if not p["completed"] and not include_incomplete:
            excluded.append({"id": p["id"], "reason": "did not finish"})
        elif screens[p["id"]]["passed"] is False and not include_failed:
            excluded.append({"id": p["id"], "reason": "failed screening"})
        else:
            parts.append(p)
    out = {"study": {k: study[k] for k in ("id", "name", "protocol")},
           "participants": {"total": len(export["participants"]), "included": [p["id"] for p in parts],
                            "excluded": excluded},
           "screening": screens, "statistics": STATISTICS}
    protocol = study["protocol"]
    if protocol in ("ovl_rel", "emotion"):
        out["ratings"] = _ratings(study, parts)
    elif protocol == "matching":
        out["matching"] = _matching(study, parts)
    else:
        out["ab"] = _ab(study, parts)
    return out


def _main_answers(parts: list[dict]):
    for p in parts:
        for t in p["trials"]:
            if t["role"] == "main" and t.get("response"):
                yield p["id"], t


def _ratings(study: dict, parts: list[dict]) -> dict:
    clips = {c["key"]: c for c in study["clips"]}
    keys = [c["key"] for c in study["clips"]]
    pids = [p["id"] for p in parts]
    out = {}
    for scale, bounds in study["options"]["scales"].items():
        per_p_sys: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        per_clip: dict[str, list] = defaultdict(list)
        matrix = np.full((len(pids), len(keys)), np.nan)
        for pid, t in _main_answers(parts):
            key, v = t["clips"][0], t["response"][scale]
            per_p_sys[clips[key]["system"]][pid].append(v)
            per_clip[key].append(v)
            matrix[pids.index(pid), keys.index(key)] = v
        by_system = {}
        for system in sorted({c["system"] for c in study["clips"]}):
            by_p = per_p_sys.get(system, {})
            by_system[system] = {**mean_ci([np.mean(v) for v in by_p.values()], bounds=bounds),
                                 "n_ratings": int(sum(len(v) for v in by_p.values()))}
        by_clip = [{"key": k, "system": clips[k]["system"], "description": clips[k]["description"],
                    **mean_ci(per_clip.get(k, []), bounds=bounds)} for k in keys]
        out[scale] = {"by_system": by_system, "by_clip": by_clip,
                      "alpha": krippendorff_alpha(matrix, "interval")}
    return out


def _matching(study: dict, parts: list[dict]) -> dict:
    clips = {c["key"]: c for c in study["clips"]}
    labels = sorted({c["description"] for c in study["clips"]})
    keys = [c["key"] for c in study["clips"]]
    pids = [p["id"] for p in parts]
    any_ref = any(c["reference"] for c in study["clips"])
    matrices: dict[str, np.ndarray] = defaultdict(lambda: np.zeros((len(labels), len(labels)), np.int64))
    correct: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    nominal = np.full((len(pids), len(keys)), np.nan)
    for pid, t in _main_answers(parts):
        clip = clips[t["clips"][0]]
        i, j = labels.index(clip["description"]), labels.index(t["response"]["choice"])
        group = "reference" if clip["reference"] else "generated"
        for name in (group, f"system:{clip['system']}"):
            matrices[name][i, j] += 1
            correct[name][pid].append(float(i == j))
        nominal[pids.index(pid), keys.index(clip["key"])] = j

    def accuracy(name: str) -> dict:
        per_p = correct.get(name, {})
        n = sum(len(v) for v in per_p.values())
        hits = sum(sum(v) for v in per_p.values())
        return {**mean_ci([np.mean(v) for v in per_p.values()], bounds=(0.0, 1.0)), "correct": int(hits),
                "answers": int(n),
                "pooled": hits / n if n else None}

    k = int(study["options"]["k"])
    out = {"labels": labels, "k": k, "chance": 1.0 / k,
           "matrix": matrices["generated"].tolist(), "accuracy": accuracy("generated"),
           "by_system": {s: {"accuracy": accuracy(f"system:{s}"), "matrix": matrices[f"system:{s}"].tolist()}
                         for s in sorted({c["system"] for c in study["clips"]})},
           "alpha": krippendorff_alpha(nominal, "nominal")}
    if any_ref:
        out["reference"] = {"matrix": matrices["reference"].tolist(), "accuracy": accuracy("reference")}
    return out


def _ab(study: dict, parts: list[dict]) -> dict:
    from scipy.stats import binomtest

    clips = {c["key"]: c for c in study["clips"]}
    units = {u["id"]: u for u in study["units"]}
    unit_ids = list(units)
    pids = [p["id"] for p in parts]
    wins: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    nominal = np.full((len(pids), len(unit_ids)), np.nan)
    for pid, t in _main_answers(parts):
        systems = sorted(clips[k]["system"] for k in units[t["unit"]]["clips"])
        side = systems.index(clips[_preferred(t)]["system"])
        wins[tuple(systems)][side] += 1
        nominal[pids.index(pid), unit_ids.index(t["unit"])] = side
    pairs = []
    for (a, b), (wa, wb) in sorted(wins.items()):
        n = wa + wb
        test = binomtest(wa, n, 0.5)
        ci = test.proportion_ci(confidence_level=CI_LEVEL, method="wilson")
        pairs.append({"systems": [a, b], "wins": [wa, wb], "n": n, "rate": wa / n,
                      "ci95": [float(ci.low), float(ci.high)], "p_value": float(test.pvalue)})
    return {"pairs": pairs, "alpha": krippendorff_alpha(nominal, "nominal")}


def answers_csv(export: dict) -> str:
    """One row per answered trial, with the clip's hidden labels and the participant's screening result."""
    study = export["study"]
    clips = {c["key"]: c for c in study["clips"]}
    scales = list(study["options"].get("scales") or {})
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["participant", "completed", "passed_screening", "trial", "role", "unit", "clip_a", "system_a",
                "description_a", "clip_b", "system_b", "choices", "choice", "preferred_system", *scales])
    for p in export["participants"]:
        passed = screening(export, p)["passed"]
        for t in p["trials"]:
            r = t.get("response")
            if not r:
                continue
            a = clips[t["clips"][0]]
            b = clips[t["clips"][1]] if len(t["clips"]) > 1 else None
            pref = clips[_preferred(t)]["system"] if study["protocol"] == "ab" else ""
            w.writerow([p["id"], p["completed"], "" if passed is None else passed, t["index"], t["role"],
                        t["unit"], a["key"], a["system"], a["description"], b["key"] if b else "",
                        b["system"] if b else "", " | ".join(t.get("choices", [])), r.get("choice", ""), pref,
                        *[r.get(s, "") for s in scales]])
    return buf.getvalue()
