"""Minimal-pair control test: does the model move the measured attribute the way the prompt asks?

Each pair (``attribute``, ``low_prompt``, ``high_prompt``, ``analyzer``) is rendered over several
seeds; the pair's analyzer should read lower for the low prompt. Per attribute we report the share
of (pair, seed) trials that move the right way (with a Wilson 95 % interval) and the AUC
(Mann-Whitney: probability that a high-prompt value exceeds a low-prompt value; 0.5 = no control).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..analyzers import ANALYZERS, UNITS
from ..errors import FoleyError
from ..generator import Generator, ModelCard
from .stats import auc

BATCH_PROMPTS = 8


def _share(k: int, n: int) -> dict:
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return {"share": k / n, "correct": k, "n": n, "ci95": [float(ci.low), float(ci.high)],
            "ci_method": "Wilson score interval"}


def control_test(generator: Generator, pairs: Sequence, seeds: Sequence[int] | int = 3, duration: float = 4.0,
                 log: Callable[[str], None] | None = None, **generate_kwargs) -> dict:
    """Render every pair's prompts for each seed, measure them, and score each attribute.

    ``pairs``: objects with ``attribute``, ``low_prompt``, ``high_prompt`` and ``analyzer`` (a name
    in :data:`~foley.analyzers.ANALYZERS`). ``seeds``: a list, or a count meaning 0..n-1.
    ``generate_kwargs`` (e.g. ``guidance_scale``, ``steps``) go to every ``generate`` call.
    Returns {"attributes": {attr: {...}}, "overall": {...}, "trials": [...], "settings": {...}}.
    """
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    pairs = list(pairs)
    if not pairs or not seeds:
        raise FoleyError("the control test needs at least one prompt pair and one seed")
    for p in pairs:
        if p.analyzer not in ANALYZERS:
            raise FoleyError(f"pair '{p.attribute}' names unknown analyzer '{p.analyzer}'; "
                             f"choose from {', '.join(ANALYZERS)}")
    prompts = list(dict.fromkeys(x for p in pairs for x in (p.low_prompt, p.high_prompt)))
    steer = generate_kwargs.pop("steer", None)
    if steer:  # as `foley generate --steer N`: the prompts whose words the prior turns into curves are steered
        from ..curves import has_prior

        shaped = {x for x in prompts if has_prior(x)}
    trials = []
    for seed in seeds:
        audio = {}
        for start in range(0, len(prompts), BATCH_PROMPTS):
            chunk = prompts[start:start + BATCH_PROMPTS]
            groups = [(chunk, {})] if not steer else [([x for x in chunk if x not in shaped], {}),
                                                      ([x for x in chunk if x in shaped], {"steer": steer})]
            for group, extra in groups:
                if group:
                    outs = generator.generate(group, duration=duration, seed=seed, **generate_kwargs, **extra)
                    audio.update(zip(group, outs, strict=True))
            if log:
                log(f"seed {seed}: {min(start + BATCH_PROMPTS, len(prompts))}/{len(prompts)} prompts")
        for p in pairs:
            fn = ANALYZERS[p.analyzer]
            lo, hi = fn(audio[p.low_prompt]), fn(audio[p.high_prompt])
            trials.append({"attribute": p.attribute, "analyzer": p.analyzer, "seed": seed,
                           "low_prompt": p.low_prompt, "high_prompt": p.high_prompt,
                           "low": lo, "high": hi, "correct": bool(hi > lo)})
    return score_trials(trials) | {"trials": trials, "settings": {
        "seeds": seeds, "duration": duration, "n_pairs": len(pairs), "n_prompts": len(prompts),
        "rule": "a trial is correct when the high prompt's analyzer value is strictly larger"}}


class OracleGenerator(Generator):
    """Renders each pair's prompts from the pair's own synth specs (``low_spec`` / ``high_spec``).

    The control test on this "model" measures the corpus itself: the ceiling a model trained on it
    can reach, and a check that the analyzers read the attributes of real renders, not only of
    textbook signals.
    """

    def __init__(self, pairs: Sequence, sample_rate: int = 16_000):
        self.card = ModelCard(name="oracle", family="synth corpus", weights="none", sample_rate=sample_rate,
                              channels=2, max_duration=600.0, description="renders minimal pairs from specs")
        self.specs: dict[str, dict] = {}
        for p in pairs:
            for prompt, spec in ((p.low_prompt, p.low_spec), (p.high_prompt, p.high_spec)):
                if self.specs.setdefault(prompt, spec) != spec:
                    raise FoleyError(f"prompt '{prompt}' names two different specs; the oracle needs one each")

    def _generate(self, requests):
        from ..data.synth.render import render_spec

        return [render_spec(self.specs[r.prompt], seed=r.seed or 0, duration=r.duration,
                            sample_rate=self.sample_rate) for r in requests]


def score_trials(trials: list[dict]) -> dict:
    """Per-attribute share correct and AUC, plus overall (pooled share, mean of per-attribute AUCs)."""
    by = defaultdict(list)
    for t in trials:
        by[t["attribute"]].append(t)
    attrs = {}
    for a, ts in by.items():
        lows, highs = [t["low"] for t in ts], [t["high"] for t in ts]
        attrs[a] = {"analyzer": ts[0]["analyzer"], "unit": UNITS[ts[0]["analyzer"]],
                    **_share(sum(t["correct"] for t in ts), len(ts)), "auc": auc(lows, highs),
                    "low_mean": float(np.mean(lows)), "high_mean": float(np.mean(highs))}
    k = sum(t["correct"] for t in trials)
    overall = {**_share(k, len(trials)), "auc_mean": float(np.mean([v["auc"] for v in attrs.values()])),
               "n_attributes": len(attrs)}
    return {"attributes": attrs, "overall": overall}


def control_markdown(result: dict) -> str:
    lines = ["| attribute | analyzer | right way | 95 % CI | AUC | low mean | high mean |",
             "|---|---|---|---|---|---|---|"]
    rows = list(result["attributes"].items()) + [("**overall**", result["overall"])]
    for a, r in rows:
        ci = r["ci95"]
        auc_v = r.get("auc", r.get("auc_mean"))
        lo = f"{r['low_mean']:.3g}" if "low_mean" in r else ""
        hi = f"{r['high_mean']:.3g} {r['unit']}" if "high_mean" in r else ""
        lines.append(f"| {a} | {r.get('analyzer', '')} | {r['correct']}/{r['n']} ({r['share']:.0%}) | "
                     f"{ci[0]:.2f}-{ci[1]:.2f} | {auc_v:.2f} | {lo} | {hi} |")
    return "\n".join(lines) + "\n"


def control_html(result: dict) -> str:
    from .html import _plt, figure_png, fmt, page, table

    rows = [[a, r["analyzer"], f"{r['correct']}/{r['n']} ({r['share']:.0%})", f"{fmt(r['ci95'][0], 2)}–"
             f"{fmt(r['ci95'][1], 2)}", fmt(r["auc"], 3)] for a, r in result["attributes"].items()]
    o = result["overall"]
    rows.append(["<b>overall</b>", "", f"{o['correct']}/{o['n']} ({o['share']:.0%})",
                 f"{fmt(o['ci95'][0], 2)}–{fmt(o['ci95'][1], 2)}", f"{fmt(o['auc_mean'], 3)} (mean)"])
    plt = _plt()
    names = list(result["attributes"])
    fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(names) + 2), 3))
    x = np.arange(len(names))
    ax.bar(x - 0.2, [result["attributes"][n]["share"] for n in names], 0.4, label="share right way")
    ax.bar(x + 0.2, [result["attributes"][n]["auc"] for n in names], 0.4, label="AUC")
    ax.axhline(0.5, color="k", lw=0.8, ls="--")
    ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    model = result.get("model", {})
    head = f"<p>model: <code>{fmt(model.get('name'))}</code> ({fmt(model.get('weight_hash'))}); seeds " \
           f"{result['settings']['seeds']}, {result['settings']['duration']:g} s</p>"
    return page("foley eval control", [head, table(["attribute", "analyzer", "right way", "95 % CI", "AUC"],
                                                   rows), figure_png(fig)])


def write_control(result: dict, out_dir: str | Path) -> dict[str, Path]:
    from ..fsutil import write_json_atomic, write_text_atomic

    out = Path(out_dir)
    paths = {"json": out / "control.json", "markdown": out / "control.md", "html": out / "control.html"}
    write_json_atomic(paths["json"], result)
    write_text_atomic(paths["markdown"], control_markdown(result))
    write_text_atomic(paths["html"], control_html(result))
    return paths
