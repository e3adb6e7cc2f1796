"""Per-item sanity checks (silence, clipping, DC offset, NaN, duration) and within-prompt diversity."""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations

import numpy as np

from ..audio import Audio

SILENCE_DBFS = -60.0          # RMS below this (dBFS, all channels) = silent
CLIP_LEVEL = 0.999            # |sample| at or above this counts as clipped
CLIP_SHARE = 0.001            # more than 0.1 % clipped samples = clipping
DC_LIMIT = 0.01               # |mean| of any channel above this = DC offset
DURATION_TOLERANCE = (0.05, 0.02)   # allowed |duration - expected|: max(50 ms, 2 % of expected)

THRESHOLDS = {"silence_dbfs": SILENCE_DBFS, "clip_level": CLIP_LEVEL, "clip_share": CLIP_SHARE,
              "dc_limit": DC_LIMIT, "duration_tolerance_s": DURATION_TOLERANCE[0],
              "duration_tolerance_rel": DURATION_TOLERANCE[1]}
FLAGS = ("unreadable", "nan", "silent", "clipping", "dc_offset", "duration_off")


def item_sanity(audio: Audio, expected_duration: float | None = None) -> dict:
    """Facts and flags for one clip at its native rate and channels.

    Returns {"duration", "sample_rate", "channels", "rms_dbfs", "peak", "clipped_share", "dc_offset",
    "expected_duration", "flags": {flag: bool}}; "duration_off" is only present when an expected
    duration is known.
    """
    x = audio.samples.astype(np.float64)
    rms = float(np.sqrt(np.mean(x ** 2))) if x.size else 0.0
    rms_db = 20 * np.log10(rms) if rms > 0 else None
    clipped = float(np.mean(np.abs(x) >= CLIP_LEVEL)) if x.size else 0.0
    dc = float(np.abs(x.mean(axis=1)).max()) if x.size else 0.0
    flags = {"unreadable": False, "nan": False, "silent": rms_db is None or rms_db < SILENCE_DBFS,
             "clipping": clipped > CLIP_SHARE, "dc_offset": dc > DC_LIMIT}
    if expected_duration is not None:
        tol = max(DURATION_TOLERANCE[0], DURATION_TOLERANCE[1] * expected_duration)
        flags["duration_off"] = abs(audio.duration - expected_duration) > tol
    return {"duration": audio.duration, "sample_rate": audio.sample_rate, "channels": audio.channels,
            "rms_dbfs": rms_db, "peak": float(np.abs(x).max(initial=0.0)), "clipped_share": clipped,
            "dc_offset": dc, "expected_duration": expected_duration, "flags": flags}


def unreadable_sanity(reason: str, nan: bool) -> dict:
    """Sanity record of a file that could not be used (corrupt, empty, NaN samples)."""
    return {"error": reason, "flags": {"unreadable": True, "nan": nan}}


def summarize_flags(records: list[dict]) -> dict:
    """Counts and shares per flag over items: {flag: {"count", "share", "checked"}}."""
    out = {}
    for f in FLAGS:
        checked = [r["flags"][f] for r in records if f in r["flags"]]
        out[f] = {"count": int(sum(checked)), "checked": len(checked),
                  "share": float(np.mean(checked)) if checked else None}
    return out


def within_prompt_diversity(embeddings: np.ndarray, prompts: list[str | None]) -> dict:
    """Mean pairwise distance among items sharing a prompt, against the whole set's mean distance.

    ``embeddings`` [N, D] are standardised per dimension over the set first. Returns
    {"per_prompt": {prompt: {"n", "mean_distance"}}, "within": mean over prompts, "overall": mean
    pairwise distance over all items, "ratio": within / overall} (1 = as varied as the whole set,
    0 = identical outputs for a prompt). Prompts with fewer than 2 items are skipped.
    """
    from scipy.spatial.distance import pdist

    e = np.asarray(embeddings, np.float64)
    sd = e.std(axis=0)
    sd[sd == 0] = 1.0
    e = (e - e.mean(axis=0)) / sd
    groups = defaultdict(list)
    for i, p in enumerate(prompts):
        if p:
            groups[p].append(i)
    per = {}
    for p, idx in groups.items():
        if len(idx) >= 2:
            d = [float(np.linalg.norm(e[a] - e[b])) for a, b in combinations(idx, 2)]
            per[p] = {"n": len(idx), "mean_distance": float(np.mean(d))}
    if not per:
        raise ValueError("no prompt has two or more generated items")
    within = float(np.mean([v["mean_distance"] for v in per.values()]))
    overall = float(pdist(e).mean()) if len(e) > 1 else 0.0
    return {"per_prompt": per, "within": within, "overall": overall,
            "ratio": within / overall if overall > 0 else None, "n_prompts": len(per)}
