"""`foley data music`: short captioned phrases played by General MIDI instruments through FluidSynth."""

from __future__ import annotations

from pathlib import Path

import typer

from .data_group import data_app


@data_app.command("music")
def music(
    n: int = typer.Option(..., "-n", help="Number of clips to render."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder (clips/ and manifest.jsonl)."),
    seed: int = typer.Option(0, "--seed", help="Corpus seed: the same seed renders the same clips."),
    duration: float = typer.Option(6.0, "--duration", "-d", help="Clip length in seconds."),
    sample_rate: int = typer.Option(32000, "--sample-rate", "-r", help="Sample rate in Hz."),
    jobs: int = typer.Option(0, "--jobs", "-j", min=0, help="Worker processes (0 = one per CPU core)."),
    workers: int | None = typer.Option(None, "--workers", min=1, hidden=True),  # as `data synth` once named it
    soundfont: Path = typer.Option(None, "--soundfont",
                                   help="A .sf2 SoundFont (default: $FOLEY_SOUNDFONT, else FluidR3_GM)."),
    fmt: str = typer.Option("flac", "--format", help="Audio format of the clips: flac, wav or ogg."),
) -> None:
    """Render N stereo music clips (instruments, drum beats, tempos, keys, registers, melodic shapes)
    with captions such as "a slow cello melody in a low register, D minor, 70 bpm".

    Needs the Debian packages fluidsynth and fluid-soundfont-gm. An interrupted run resumes.
    """
    from ..data.music import render_corpus

    manifest = render_corpus(n, out, seed=seed, duration=duration, sample_rate=sample_rate,
                             jobs=workers or jobs or None, soundfont=soundfont, fmt=fmt, progress=True)
    typer.echo(f"wrote {n} clips ({n * duration / 60:.1f} min) and {manifest}")
