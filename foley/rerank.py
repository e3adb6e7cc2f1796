"""Best-of-N: draw N candidates per output in one batch, keep the one that follows the words best.

Score of a candidate = its foley-clap cosine with the prompt + ``ATTRIBUTE_WEIGHT`` × the mean, over the
attributes the prompt names ("rising", "fading out", "from left to right", ...), of the candidate's rank among
the N on that attribute's analyzer (centred: -0.5 worst .. +0.5 best). Output j of a request with seed S,
V variations and best-of N is chosen among the seeds S + j + V·k (k < N); the chosen seed is the output's
``seed``, so ``--seed <chosen> --best-of 1`` reproduces it, and the sidecar's ``best_of`` lists every
candidate's seed and scores.

Installed into :mod:`foley.generator` by :func:`install` (``foley.load`` does it), so every family gets it
through ``Generator.generate(..., best_of=N)``.
"""

from __future__ import annotations

import re

import numpy as np

from . import generator as _generator
from .analyzers import ANALYZERS
from .audio import Audio
from .editing import seed_of
from .errors import ModelError, RequestError
from .request import GenerationRequest

ATTRIBUTE_WEIGHT = 0.1

# prompt words -> (analyzer, direction); the first matching pattern per analyzer wins
ATTRIBUTE_WORDS: tuple[tuple[str, str, int], ...] = (
    (r"\b(rising|rises|ascending|going up|upward|sweeping up|spinning up|revving up)\b", "pitch_slope", 1),
    (r"\b(falling|falls|descending|going down|downward|dropping|sweeping down|spinning down)\b", "pitch_slope", -1),
    (r"\b(fad(e|es|ing) out|fading away|dying away|decaying|getting quieter|receding)\b", "loudness_trend", -1),
    (r"\b(fad(e|es|ing) in|getting louder|swelling|growing|building up|crescendo|approaching)\b",
     "loudness_trend", 1),
    (r"\bleft to right\b", "stereo_direction", 1),
    (r"\bright to left\b", "stereo_direction", -1),
    (r"\b(rapid|fast|quick|many times a second|flutter|rattl\w*|machine-gun)\b", "onset_rate", 1),
    (r"\b(slow|sparse|occasional|single|one)\b", "onset_rate", -1),
    (r"\b(bright|high-pitched|high|shrill|piercing|sizzl\w*|hiss\w*)\b", "spectral_centroid", 1),
    (r"\b(deep|dark|low|rumbl\w*|boom\w*|sub-bass|muffled)\b", "spectral_centroid", -1),
    (r"\b(hit|sharp|short|impact|click|knock|slam|snap|pluck\w*|thud)\b", "impulsiveness", 1),
    (r"\b(sustained|steady|continuous|drone|droning)\b", "impulsiveness", -1),
    (r"\b(moving|panning|passing by|flying by)\b", "stereo_motion", 1),
    # texture and tremolo: the control prior's rules (below), plus these words that its rules leave out
    (r"\b(noise|static|crackle|hiss|hissing)\b", "spectral_flatness", 1),
    (r"\b(whistl\w*)\b", "spectral_flatness", -1),
    (r"\b(wobble|warble)\b", "tremolo_depth", 1),
)


QUALITY_ANALYZERS = {"texture": "spectral_flatness", "tremolo": "tremolo_depth"}


def named_attributes(prompt: str) -> dict[str, int]:
    """{analyzer: +1 or -1} for the attributes the prompt's words name (opposites of one analyzer cancel); texture
    and tremolo as the control prior reads them (foley.curves.prior_qualities: one word list for both)."""
    from .curves import prior_qualities

    text = prompt.lower()
    out: dict[str, int] = {}
    for pattern, name, sign in ATTRIBUTE_WORDS:
        if re.search(pattern, text):
            out[name] = out.get(name, 0) + sign
    for q in prior_qualities(prompt).values():
        out[QUALITY_ANALYZERS[q.name]] = 1 if q.sense == ">=" else -1
    return {k: int(np.sign(v)) for k, v in out.items() if v}


def _centred_ranks(values: np.ndarray) -> np.ndarray:
    n = len(values)
    if n < 2:
        return np.zeros(n)
    ranks = np.argsort(np.argsort(values, kind="stable"), kind="stable")
    return ranks / (n - 1) - 0.5


def score_candidates(clap, audios: list[Audio], prompt: str) -> dict:
    """Scores of candidate sounds for one prompt: ``clap`` [N], ``attributes`` {name: (sign, values)},
    ``total`` [N] (see the module docstring)."""
    cos = np.asarray(clap.clap_score(audios, [prompt]), np.float64)
    named = named_attributes(prompt)
    attrs, bonus = {}, np.zeros(len(audios))
    for name, sign in named.items():
        vals = np.array([ANALYZERS[name](a) for a in audios], np.float64)
        attrs[name] = {"direction": sign, "values": [round(float(v), 4) for v in vals]}
        bonus += sign * _centred_ranks(vals)
    if named:
        bonus /= len(named)
    return {"clap": cos, "attributes": attrs, "total": cos + ATTRIBUTE_WEIGHT * bonus}


def rerank(gen, requests: list[GenerationRequest]) -> list[Audio]:
    """``Generator.generate`` for requests with ``best_of`` > 1 (see the module docstring)."""
    from .clap import clap_dir, load_clap

    try:
        clap = load_clap()
    except ModelError as e:
        raise ModelError(f"best-of-N ranks candidates with foley-clap, which is missing ({e}); set FOLEY_CLAP "
                         f"or put the model in {clap_dir()}, or use --best-of 1") from None
    plans, expanded = [], []
    for r in requests:
        n, v = max(1, r.best_of), r.num_variations
        base = seed_of(r)
        plans.append((r, n, v, base))
        expanded.append(r.model_copy(update={"seed": base, "num_variations": v * n, "best_of": 1}))
    candidates = gen._generate(expanded)
    out: list[Audio] = []
    starts = np.cumsum([0] + [r2.num_variations for r2 in expanded])[:-1]
    for (r, n, v, base), start in zip(plans, starts.tolist(), strict=True):
        for j in range(v):
            idx = [start + j + v * m for m in range(n)]
            cands = [candidates[i] for i in idx]
            if n == 1:
                out.append(cands[0])
                continue
            scores = score_candidates(clap, cands, r.prompt)
            best = int(np.argmax(scores["total"]))
            chosen = cands[best]
            seeds = [int(c.meta.get("seed", base + j + v * m)) for m, c in enumerate(cands)]
            meta = dict(chosen.meta)
            req = dict(meta.get("request") or r.model_dump())
            req.update({"seed": r.seed, "num_variations": v, "best_of": n})
            meta.update({"request": req, "variation": j, "seed": seeds[best], "best_of": {
                "n": n, "chosen": best, "chosen_seed": seeds[best], "scorer": clap.name,
                "attribute_weight": ATTRIBUTE_WEIGHT, "seeds": seeds,
                "clap": [round(float(x), 4) for x in scores["clap"]],
                "total": [round(float(x), 4) for x in scores["total"]],
                "attributes": scores["attributes"],
                "reproduce": f"--seed {seeds[best]} --best-of 1"}})
            chosen.meta = meta
            out.append(chosen)
    return out


def install() -> None:
    """Make ``Generator.generate(..., best_of=N)`` use :func:`rerank`."""
    _generator.RERANK = rerank


def check_best_of(request: GenerationRequest) -> None:
    if request.best_of > 1 and request.task != "generate":
        raise RequestError(f"--best-of works with generation, not with '{request.task}'")
