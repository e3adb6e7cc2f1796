"""Does a generated sound resemble real clips of its caption more than clips of other captions?

For labelled reference clips (e.g. the 22 thesis presets, or real game SFX by category) we embed
every clip with a weight-free feature (default: per-band log-mel mean and sd, standardised on the
reference set), take each label's centroid, generate sounds from each label's prompt(s), and
classify every generated sound by its nearest centroid. Reported: top-1 accuracy (chance = 1/K)
with a Wilson 95 % interval, the mean rank of the true label, the share of sounds closer to their
own label's centroid than to the median other label, and the confusion matrix.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from ..audio import Audio
from ..errors import FoleyError


def _prepare(audios: Sequence[Audio], extractor) -> np.ndarray:
    ready = [a.resample(extractor.sample_rate, quality="VHQ").to_mono() if a.sample_rate != extractor.sample_rate
             else a.to_mono() for a in audios]
    return extractor.embed(ready)


def resemblance(generator, references: dict[str, list[Audio]], prompts: dict[str, list[str]],
                seeds: Sequence[int] = (0, 1), duration: float = 4.0, extractor=None) -> dict:
    """Generate from every label's prompts and classify the results by nearest reference centroid.

    Args:
        generator: a :class:`foley.generator.Generator`.
        references: label -> real/reference clips of that label (at least one each).
        prompts: label -> prompts for that label (labels must match ``references``).
        seeds: one generation per (prompt, seed).
    """
    from .control import _share
    from .extractors import LogMelExtractor

    labels = sorted(references)
    if set(prompts) - set(labels):
        raise FoleyError(f"prompts for labels without reference clips: {sorted(set(prompts) - set(labels))}")
    if any(not references[k] for k in labels) or len(labels) < 2:
        raise FoleyError("resemblance needs at least two labels, each with reference clips")
    extractor = extractor or LogMelExtractor()
    ref_emb = {k: _prepare(references[k], extractor) for k in labels}
    allref = np.concatenate(list(ref_emb.values()))
    mu, sd = allref.mean(0), allref.std(0) + 1e-6
    centroids = np.stack([((ref_emb[k] - mu) / sd).mean(0) for k in labels])
    rows = []
    for label, ps in prompts.items():
        for seed in seeds:
            outs = generator.generate(list(ps), duration=duration, seed=seed)
            emb = (_prepare(outs, extractor) - mu) / sd
            for p, e in zip(ps, emb, strict=True):
                d = np.linalg.norm(centroids - e, axis=1)
                rows.append({"label": label, "prompt": p, "seed": seed,
                             "predicted": labels[int(d.argmin())],
                             "rank": int((d < d[labels.index(label)]).sum()) + 1,
                             "closer_than_median_other": bool(
                                 d[labels.index(label)] < np.median(np.delete(d, labels.index(label))))})
    k = sum(r["predicted"] == r["label"] for r in rows)
    conf = np.zeros((len(labels), len(labels)), int)
    per = defaultdict(list)
    for r in rows:
        conf[labels.index(r["label"]), labels.index(r["predicted"])] += 1
        per[r["label"]].append(r["predicted"] == r["label"])
    return {
        "labels": labels,
        "accuracy": _share(k, len(rows)),
        "chance": 1 / len(labels),
        "mean_rank": float(np.mean([r["rank"] for r in rows])),
        "closer_than_median_other": float(np.mean([r["closer_than_median_other"] for r in rows])),
        "per_label_accuracy": {k2: float(np.mean(v)) for k2, v in per.items()},
        "confusion": conf.tolist(),
        "trials": rows,
        "settings": {"extractor": extractor.describe(), "seeds": list(seeds), "duration": duration,
                     "standardisation": "z-score per feature dimension over all reference clips",
                     "classifier": "nearest label centroid (Euclidean)"},
    }


def markdown(result: dict, title: str) -> str:
    acc = result["accuracy"]
    lines = [f"### {title}", "",
             f"Top-1 nearest-centroid accuracy {acc['share']:.2f} (95 % CI {acc['ci95'][0]:.2f}–{acc['ci95'][1]:.2f},"
             f" n = {acc['n']}; chance {result['chance']:.2f}); mean rank of the true label "
             f"{result['mean_rank']:.2f} of {len(result['labels'])}; closer to own label than to the median other "
             f"label: {result['closer_than_median_other']:.2f}.", "",
             "| label | accuracy |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in sorted(result["per_label_accuracy"].items())]
    return "\n".join(lines)
