"""`foley data synth`: render the procedural sound-design corpus (labelled stereo clips + manifest)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ..errors import FoleyError
from .data_group import data_app

MIN_RATE, MAX_RATE = 8_000, 96_000      # recipes place partials up to ~6 kHz: below 8 kHz they alias away
MIN_SECONDS, MAX_SECONDS = 0.5, 60.0


@data_app.command("synth")
def synth(
    out: Path = typer.Option(..., "-o", "--out", help="Output folder: audio/<id>.flac and manifest.jsonl."),
    n: int | None = typer.Option(None, "-n", "--num", min=1,
                                 help="Number of clips (default 1000; with --presets-only, 22)."),
    seed: int = typer.Option(0, "--seed", help="Corpus seed; clip i depends only on (seed, i)."),
    duration: float = typer.Option(4.0, "--duration", "-d", help="Seconds per clip."),
    sample_rate: int = typer.Option(16_000, "--sample-rate", help="Hz."),
    jobs: int = typer.Option(0, "--jobs", "-j", min=0,
                             help="Worker processes (0 = one per CPU core); the clips do not depend on it."),
    workers: int | None = typer.Option(None, "--workers", min=1, hidden=True),  # the old name of --jobs
    fmt: str = typer.Option("flac", "--format", help="Audio format of the clips: flac, wav or ogg."),
    presets_only: bool = typer.Option(False, "--presets-only",
                                      help="Render the 22 thesis presets (N // 22 variants of each)."),
    preset_fraction: float = typer.Option(0.15, "--preset-fraction", min=0.0, max=1.0,
                                          help="Share of clips drawn from the thesis presets."),
    sidecars: bool = typer.Option(False, "--sidecars", help="Also write AudioCraft sidecars audio/<id>.json."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the summary."),
) -> None:
    """Render N labelled stereo clips from parametric recipes (drones, noise textures, glitches, beeps,
    impacts, plucks, bells, sweeps, insects) with captions and ground-truth attributes."""
    if not MIN_RATE <= sample_rate <= MAX_RATE:
        raise FoleyError(f"--sample-rate {sample_rate} Hz is out of range; use {MIN_RATE}-{MAX_RATE} Hz")
    if not MIN_SECONDS <= duration <= MAX_SECONDS:
        raise FoleyError(f"--duration {duration} s is out of range; use {MIN_SECONDS}-{MAX_SECONDS} s")
    if out.exists() and not out.is_dir():
        raise FoleyError(f"{out}: exists and is not a folder; choose another --out")
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..data.synth.render import write_corpus

    console = Console(stderr=True)
    bar = Progress(TextColumn("rendering"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=console, transient=True, disable=quiet)
    task = None

    def start(total: int) -> None:
        nonlocal task
        task = bar.add_task("synth", total=total)
        bar.start()

    try:
        summary = write_corpus(out, n, seed, duration, sample_rate, workers or jobs or os.cpu_count() or 1,
                               presets_only, preset_fraction, sidecars, on_clip=lambda _row: bar.advance(task),
                               on_start=start, fmt=fmt)
    finally:
        bar.stop()
    typer.echo(f"rendered {summary.clips} clips ({summary.seconds / 3600:.2f} h, {summary.presets} from presets) "
               f"to {summary.manifest} in {summary.elapsed:.1f} s ({summary.clips_per_second:.0f} clips/s)")
