"""`foley data music`: render N captioned clips and their manifest, over all CPU cores."""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from ...audio import SAVE_FORMATS, info
from ...errors import AudioError, FoleyError
from ...fsutil import write_text_atomic
from .captions import describe, key_name, tempo_class
from .instruments import INSTRUMENTS_BY_KEY
from .phrase import ClipSpec, median_pitch, phrase_notes, plan_clip
from .render import find_fluidsynth, find_soundfont, licence_of, render_spec, require_mido

MANIFEST_NAME = "manifest.jsonl"
CLIP_DIR = "clips"


@dataclass(frozen=True)
class _Job:
    spec: ClipSpec
    out_dir: str
    sample_rate: int
    soundfont: str
    fmt: str


def clip_attributes(spec: ClipSpec) -> dict:
    """Ground-truth attributes of a clip, as written in the manifest (None where not applicable)."""
    inst = INSTRUMENTS_BY_KEY.get(spec.instrument) if spec.instrument else None
    med = median_pitch(phrase_notes(spec))
    return {
        "instrument": spec.instrument or "drum_kit",
        "program": inst.program if inst else None,
        "family": inst.family if inst else "drums",
        "register": spec.register,
        "tempo_bpm": spec.tempo_bpm,
        "tempo": tempo_class(spec.tempo_bpm),
        "key": key_name(spec.root, spec.mode) if inst else None,
        "root": spec.root,
        "mode": spec.mode,
        "shape": spec.shape,
        "drums": spec.drums,
        "drum_kit": spec.kit,
        "dynamics": spec.dynamics,
        "median_note": med,
        "median_hz": round(440.0 * 2 ** ((med - 69) / 12), 2) if med is not None else None,
    }


def _render_one(job: _Job) -> dict:
    spec = job.spec
    rel = f"{CLIP_DIR}/music_{spec.index:06d}.{job.fmt}"
    path = Path(job.out_dir) / rel
    frames = int(round(spec.duration * job.sample_rate))
    if not _finished(path, frames, job.sample_rate):
        render_spec(spec, job.sample_rate, job.soundfont).save(path)
    licence, credit = licence_of(Path(job.soundfont))
    return {"path": rel, "duration": frames / job.sample_rate, "sample_rate": job.sample_rate, "channels": 2,
            **describe(spec), "attributes": clip_attributes(spec), "source": "music", "licence": licence,
            "credit": credit, "seed": spec.seed, "index": spec.index}


def _finished(path: Path, frames: int, sample_rate: int) -> bool:
    """A clip left by an earlier run with the same settings (writes are atomic, so it is whole)."""
    if not path.exists():
        return False
    try:
        i = info(path)
    except AudioError:
        return False
    return i["frames"] == frames and i["sample_rate"] == sample_rate and i["channels"] == 2


def render_corpus(n: int, out_dir: str | os.PathLike, seed: int = 0, duration: float = 6.0,
                  sample_rate: int = 32000, jobs: int | None = None,
                  soundfont: str | os.PathLike | None = None, fmt: str = "flac",
                  progress: bool = False) -> Path:
    """Render ``n`` stereo clips of ``duration`` seconds at ``sample_rate`` Hz into ``out_dir/clips`` and
    write ``out_dir/manifest.jsonl``; returns the manifest path.

    Deterministic for ``seed``: clip i is the same for any ``n`` and ``jobs``. Clips already rendered with
    the same settings are kept (an interrupted run resumes). Checks for FluidSynth and the SoundFont
    before writing anything.
    """
    if n < 1:
        raise FoleyError(f"-n {n}: the number of clips must be at least 1")
    if not 0.5 <= duration <= 60:
        raise FoleyError(f"--duration {duration}: give a clip length between 0.5 and 60 seconds")
    if not 8000 <= sample_rate <= 96000:
        raise FoleyError(f"--sample-rate {sample_rate}: FluidSynth renders between 8000 and 96000 Hz")
    if fmt not in SAVE_FORMATS:
        raise FoleyError(f"--format {fmt}: use one of {', '.join(SAVE_FORMATS)}")
    require_mido()
    find_fluidsynth()
    sf2 = find_soundfont(soundfont)
    out_dir = Path(out_dir)
    jobs_list = [_Job(plan_clip(seed, i, duration), str(out_dir), int(sample_rate), str(sf2), fmt)
                 for i in range(n)]
    workers = max(1, min(jobs or os.cpu_count() or 1, n))
    from tqdm import tqdm

    rows = []
    with tqdm(total=n, unit="clip", desc="music", disable=not progress) as bar:
        if workers == 1:
            results = map(_render_one, jobs_list)
        else:
            pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"))
            results = pool.map(_render_one, jobs_list, chunksize=4)
        try:
            for row in results:
                rows.append(row)
                bar.update()
        finally:
            if workers > 1:
                pool.shutdown(cancel_futures=True)
    manifest = out_dir / MANIFEST_NAME
    write_text_atomic(manifest, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return manifest

