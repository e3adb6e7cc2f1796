"""The encoder's label space: one softmax over all corpora's classes, plus masked attribute heads.

Main classes (one per clip, prefixed by corpus so the label set can mix them):

- ``synth:<recipe>``: procedural clips (``attributes.recipe``, e.g. ``synth:pluck``; a thesis preset
  clip keeps the recipe it is built on, and its preset name goes to the ``preset`` head);
- ``music:<family>``: rendered music (``attributes.family``, e.g. ``music:brass``);
- ``sfx:<category>``: real game sound effects (top-level ``category``, e.g. ``sfx:footsteps``).

Auxiliary heads (multi-task; a clip without the attribute is masked out of that head's loss):
:data:`AUX_HEADS` maps a head to the attribute keys that feed it (``register`` is shared by synth and
music clips). Labels are plain strings; the lists are sorted, so the same data gives the same order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from ...data.manifest import Clip

# head -> attribute key in ``clip.attributes`` (values are stringified; None/absent = masked)
AUX_HEADS: dict[str, str] = {
    "register": "register", "pitch": "pitch", "rate": "rate", "texture": "texture", "envelope": "envelope",
    "space": "space", "brightness": "brightness", "preset": "preset", "instrument": "instrument",
    "tempo": "tempo", "mode": "mode", "shape": "shape",
}
CORPORA = ("synth", "music", "sfx")


def main_label(clip: Clip) -> str | None:
    """``synth:<recipe>``, ``music:<family>``, ``sfx:<category>`` or None (a clip we cannot label)."""
    attrs = clip.attributes or {}
    if attrs.get("recipe"):
        return f"synth:{attrs['recipe']}"
    if attrs.get("family"):
        return f"music:{attrs['family']}"
    category = getattr(clip, "category", None)  # real-SFX manifests keep it as a top-level extra field
    if isinstance(category, str) and category:
        return f"sfx:{category}"
    return None


def aux_labels(clip: Clip) -> dict[str, str]:
    """{head: label} for the auxiliary heads this clip has ground truth for."""
    attrs = clip.attributes or {}
    out = {}
    for head, key in AUX_HEADS.items():
        v = attrs.get(key)
        if v is not None and not isinstance(v, bool | dict | list) and str(v):
            out[head] = str(v)
    return out


def corpus_of(label: str) -> str:
    """'synth:pluck' -> 'synth'."""
    return label.split(":", 1)[0]


def build_label_space(clips: Iterable[Clip], min_count: int = 1) -> tuple[list[str], dict[str, list[str]]]:
    """Sorted main labels and sorted labels per auxiliary head seen in ``clips``.

    Labels seen fewer than ``min_count`` times are dropped (their clips are then unlabelled for that
    head). A head with fewer than two labels is dropped.
    """
    main: Counter = Counter()
    aux: dict[str, Counter] = {h: Counter() for h in AUX_HEADS}
    for c in clips:
        m = main_label(c)
        if m is None:
            continue
        main[m] += 1
        for h, v in aux_labels(c).items():
            aux[h][v] += 1
    labels = sorted(k for k, n in main.items() if n >= min_count)
    heads = {h: sorted(k for k, n in cnt.items() if n >= min_count) for h, cnt in aux.items()}
    return labels, {h: v for h, v in heads.items() if len(v) >= 2}
