"""Render clips and whole corpora: per-clip seeds, manifest rows, parallel workers, atomic writes.

Clip ``i`` of a corpus with seed ``S`` is rendered from ``clip_seed(S, i)`` alone, so a corpus is
identical whatever the number of workers, and any clip can be re-rendered from its manifest row
(``seed``, ``duration``, ``sample_rate``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...audio import Audio
from ...fsutil import write_json_atomic, write_text_atomic
from .captions import captions_for, keywords_for
from .presets import PRESETS, render_preset
from .recipes import render_attributes, sample_attributes

LICENCE = "CC0-1.0 (rendered by foley)"
SOURCE = "synth"
CHANNELS = 2
PRESET_FRACTION = 0.15
FORMAT_VERSION = 1


@dataclass
class SynthClip:
    """One rendered clip: stereo ``audio`` [2, T] and everything its manifest row says."""

    id: str
    audio: Audio
    description: str
    captions: list[str]
    keywords: list[str]
    attributes: dict
    recipe: str
    seed: int

    def manifest_row(self, path: str, index: int | None = None) -> dict:
        row = {"id": self.id, "path": path, "duration": self.audio.duration, "sample_rate": self.audio.sample_rate,
               "channels": self.audio.channels, "description": self.description, "captions": self.captions,
               "keywords": self.keywords, "attributes": self.attributes, "recipe": self.recipe,
               "seed": self.seed, "source": SOURCE, "licence": LICENCE}
        if index is not None:
            row["index"] = index
        return row


def clip_seed(seed: int, index: int) -> int:
    """The seed of clip ``index`` in a corpus with seed ``seed`` (a 32-bit integer)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def _streams(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent streams for choosing attributes, rendering audio and wording captions."""
    return tuple(np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(3))


def _preset_captions(slug: str, attrs: dict, rng: np.random.Generator) -> list[str]:
    p = PRESETS[slug]
    chosen = [p.paraphrases[i] for i in rng.permutation(len(p.paraphrases))[: int(rng.integers(2, 4))]]
    own = captions_for(attrs, rng, count=int(rng.integers(2, 5)))
    out = [p.text] + chosen
    for c in own:
        if c.lower() not in {o.lower() for o in out} and len(out) < 8:
            out.append(c)
    return out


def render_clip(seed: int, duration: float = 4.0, sample_rate: int = 16_000,
                preset_fraction: float = PRESET_FRACTION, preset: str | None = None,
                clip_id: str = "") -> SynthClip:
    """Render one clip from its seed: a random recipe, or a thesis preset (``preset`` forces one)."""
    pick, sound, words = _streams(seed)
    if preset is None and pick.random() < preset_fraction:
        preset = list(PRESETS)[int(pick.integers(len(PRESETS)))]
    if preset is not None:
        if preset not in PRESETS:
            raise KeyError(f"unknown preset '{preset}'")
        y, attrs = render_preset(preset, sound, duration, sample_rate)
        caps = _preset_captions(preset, attrs, words)
        recipe = f"preset:{preset}"
        keywords = keywords_for(attrs) + [preset]
    else:
        attrs = sample_attributes(pick)
        y = render_attributes(attrs, sound, duration, sample_rate)
        caps = captions_for(attrs, words)
        recipe = attrs["recipe"]
        keywords = keywords_for(attrs)
    return SynthClip(clip_id or f"{seed:010d}", Audio(y, sample_rate), caps[0], caps, keywords, attrs, recipe,
                     int(seed))


def render_spec(spec: dict, seed: int = 0, duration: float = 4.0, sample_rate: int = 16_000) -> Audio:
    """Render a partial spec ({"recipe": "hum", "register": "deep", ...}); unsaid attributes take the
    recipe's ordinary value (static, dry, sustained, steady). Used by minimal pairs and tests."""
    spec = dict(spec)
    recipe = spec.pop("recipe")
    pick, sound, _ = _streams(seed)
    attrs = sample_attributes(pick, recipe, fixed=spec, canonical=True)
    return Audio(render_attributes(attrs, sound, duration, sample_rate), sample_rate)


# --- corpora -----------------------------------------------------------------------------------
@dataclass
class CorpusSummary:
    clips: int
    seconds: float
    elapsed: float
    presets: int
    manifest: Path
    categories: dict = field(default_factory=dict)

    @property
    def clips_per_second(self) -> float:
        return self.clips / self.elapsed if self.elapsed > 0 else float("inf")


@dataclass(frozen=True)
class _Job:
    index: int
    clip_id: str
    seed: int
    preset: str | None
    duration: float
    sample_rate: int
    preset_fraction: float
    audio_dir: str
    sidecar: bool
    fmt: str = "flac"


def _run(job: _Job) -> dict:
    clip = render_clip(job.seed, job.duration, job.sample_rate, job.preset_fraction, job.preset, job.clip_id)
    clip.audio.save(Path(job.audio_dir) / f"{clip.id}.{job.fmt}")
    row = clip.manifest_row(f"audio/{clip.id}.{job.fmt}", job.index)
    if job.sidecar:  # AudioCraft reads <audio>.json beside each file for its descriptions
        write_json_atomic(Path(job.audio_dir) / f"{clip.id}.json",
                          {k: row[k] for k in ("description", "captions", "keywords", "attributes", "source",
                                               "licence")})
    return row


def plan(n: int | None, seed: int, presets_only: bool = False) -> list[tuple[int, str, int, str | None]]:
    """The clips of a corpus as (index, id, clip seed, forced preset). ``presets_only`` renders every preset
    ``max(1, n // 22)`` times (22 clips by default), named by slug."""
    if presets_only:
        rounds = max(1, (n or len(PRESETS)) // len(PRESETS))
        out = []
        for r in range(rounds):
            for k, slug in enumerate(PRESETS):
                i = r * len(PRESETS) + k
                out.append((i, slug if rounds == 1 else f"{slug}-{r:03d}", clip_seed(seed, i), slug))
        return out
    n = 1000 if n is None else n
    width = max(6, len(str(n - 1)))
    return [(i, f"{i:0{width}d}", clip_seed(seed, i), None) for i in range(n)]


def write_corpus(out_dir: str | Path, n: int | None = None, seed: int = 0, duration: float = 4.0,
                 sample_rate: int = 16_000, workers: int = 2, presets_only: bool = False,
                 preset_fraction: float = PRESET_FRACTION, sidecars: bool = False,
                 on_clip: Callable[[dict], None] | None = None, on_start: Callable[[int], None] | None = None,
                 fmt: str = "flac") -> CorpusSummary:
    """Render a corpus into ``out_dir``: ``audio/<id>.<fmt>`` (stereo 16-bit, atomic; FLAC by default, as every
    data command) and ``manifest.jsonl`` (plus an AudioCraft sidecar ``audio/<id>.json`` per clip with ``sidecars``).

    Rows come back in clip order whatever ``workers`` is; ``on_clip(row)`` is called as clips finish.
    """
    from ...audio import SAVE_FORMATS
    from ...errors import FoleyError

    if fmt not in SAVE_FORMATS:
        raise FoleyError(f"--format {fmt}: use one of {', '.join(SAVE_FORMATS)}")
    out_dir = Path(out_dir)
    audio_dir = out_dir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    jobs = [_Job(i, cid, s, p, float(duration), int(sample_rate), float(preset_fraction), str(audio_dir), sidecars,
                 fmt) for i, cid, s, p in plan(n, seed, presets_only)]
    start = time.perf_counter()
    rows: list[dict] = []
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp

        ctx = mp.get_context("fork" if sys.platform == "linux" else "spawn")
        chunk = max(1, min(16, len(jobs) // (workers * 8)))
        with ctx.Pool(min(workers, len(jobs))) as pool:
            if on_start:  # after the fork, so no progress-bar thread is copied into the workers
                on_start(len(jobs))
            for row in pool.imap(_run, jobs, chunksize=chunk):
                rows.append(row)
                if on_clip:
                    on_clip(row)
    else:
        if on_start:
            on_start(len(jobs))
        for job in jobs:
            rows.append(_run(job))
            if on_clip:
                on_clip(rows[-1])
    manifest = out_dir / "manifest.jsonl"
    write_text_atomic(manifest, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    elapsed = time.perf_counter() - start
    cats: dict[str, int] = {}
    for r in rows:
        c = r["attributes"]["category"]
        cats[c] = cats.get(c, 0) + 1
    write_json_atomic(out_dir / "corpus.json", {
        "format_version": FORMAT_VERSION, "source": SOURCE, "licence": LICENCE, "seed": seed, "clips": len(rows),
        "duration": duration, "sample_rate": sample_rate, "channels": CHANNELS, "presets_only": presets_only,
        "preset_fraction": preset_fraction, "categories": dict(sorted(cats.items()))})
    return CorpusSummary(len(rows), float(sum(r["duration"] for r in rows)), elapsed,
                         sum(1 for r in rows if r["recipe"].startswith("preset:")), manifest, cats)
