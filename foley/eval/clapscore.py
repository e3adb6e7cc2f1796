"""CLAP metrics of ``foley eval`` with foley-clap: how well generated sounds follow their own prompts.

``clap_<model name>`` (e.g. ``clap_foley-clap-3c9faec7``: the weights' hash is in the name): the mean cosine of
each generated sound with its own prompt, beside the mean cosine with the other items' prompts (the
"shuffled" baseline: what a sound that ignored its words would get), their difference, and text-to-audio
retrieval R@1 / R@10 among the generated set (for each distinct prompt, is one of its own sounds ranked first /
in the top 10 among all sounds). Items without a prompt (no sidecar, no manifest description) are left out.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError
from .inputs import load
from .prepare import SetData
from .stats import bootstrap_ci


def clap_metrics(gen: SetData, seed: int = 0, n_bootstrap: int = 1000, folder=None) -> dict[str, dict]:
    from ..clap import clap_dir, load_clap

    try:
        clap = load_clap(folder)
    except ModelError as e:
        return {"clap": {"kind": "set", "status": "unavailable", "reason": str(e)}}
    name = f"clap_{clap.name}"
    idx = [i for i in gen.usable if gen.items.items[i].description]
    if len(idx) < 2:
        return {name: {"kind": "set", "status": "unavailable",
                       "reason": "fewer than two generated sounds with a prompt (sidecar or manifest description)"}}
    audios, prompts = [], []
    for i in idx:
        a, _err = load(gen.items.items[i])
        if a is not None:
            audios.append(a)
            prompts.append(gen.items.items[i].description)
    emb = clap.embed(audios)
    texts = sorted(set(prompts))
    temb = clap.embed_text(texts)
    sim = emb @ temb.T                                   # [N sounds, P prompts]
    own = np.array([texts.index(p) for p in prompts])
    matched = sim[np.arange(len(own)), own]
    others = (sim.sum(1) - matched) / max(1, len(texts) - 1) if len(texts) > 1 else np.full(len(own), np.nan)
    ranks = {}
    for k in (1, 10):
        hits = []
        for p in range(len(texts)):
            top = np.argsort(-sim[:, p], kind="stable")[:k]
            hits.append(bool(np.any(own[top] == p)))
        ranks[k] = float(np.mean(hits))
    return {name: {"kind": "set", "status": "ok", "value": float(matched.mean()), "unit": "cosine",
                   "higher_is_better": True, "model": clap.describe(), "folder": str(folder or clap_dir()),
                   "n": len(audios), "prompts": len(texts),
                   "ci": bootstrap_ci(matched.tolist(), seed, n_bootstrap),
                   "shuffled": float(np.nanmean(others)) if len(texts) > 1 else None,
                   "gap": float(np.nanmean(matched - others)) if len(texts) > 1 else None,
                   "t2a_r1": ranks[1], "t2a_r10": ranks[10],
                   "note": "cosine with the sound's own prompt; 'shuffled' = mean cosine with the other prompts"}}
