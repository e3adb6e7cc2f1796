"""`foley data caption`: measured attribute words (short, bright, falling, fading out...) in a manifest's captions."""

from __future__ import annotations

from pathlib import Path

import typer

from .data_group import data_app


@data_app.command("caption")
def caption(
    manifest: Path = typer.Argument(..., help="Manifest to caption (.jsonl or .jsonl.gz)."),
    output: Path = typer.Option(..., "-o", "--output", help="Manifest to write (every field kept, plus "
                                                                 "captions, measured, measured_words)."),
    variants: int = typer.Option(4, "--variants", "-n", min=0,
                                 help="New caption variants per clip (fewer when they coincide)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the phrasing; a clip's variants depend on it and its path."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Worker processes measuring the clips."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the summary."),
) -> None:
    """Measure every clip (spectral centroid, pitch, onsets, flatness, stereo movement, impulsiveness,
    loudness trend) and append to its `captions` up to N phrasings of its description with the attribute
    words that are confidently true ("a short, bright sword attack", "sword attack, fading out"). The
    description is unchanged. On procedural clips with ground truth, a word the truth contradicts is left
    out. Prints how many clips got each word."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..data.captions import GROUPS, WORDS, caption_manifest
    from ..fsutil import check_writable

    check_writable(output, "manifest")
    bar = Progress(TextColumn("measuring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True, disable=quiet)
    task = None

    def start(total: int) -> None:
        nonlocal task
        task = bar.add_task("caption", total=total)
        bar.start()

    try:
        report = caption_manifest(manifest, output, variants, seed, jobs, on_clip=lambda: bar.advance(task),
                                  on_start=start)
    finally:
        bar.stop()
    for f in report.failed[:20]:
        typer.echo(f"not measured: {f}", err=True)
    if len(report.failed) > 20:
        typer.echo(f"... and {len(report.failed) - 20} more not measured", err=True)
    n = max(report.clips, 1)
    typer.echo(f"wrote {output}: {report.clips} clips, {report.captioned} with measured words "
               f"({100 * report.captioned / n:.1f} %), {len(report.failed)} not measured")
    typer.echo("| word | clips | share |" + (" vetoed by ground truth |" if report.agreement else ""))
    typer.echo("|---|---:|---:|" + ("---:|" if report.agreement else ""))
    for group in GROUPS:
        for word in WORDS[group]:
            line = f"| {word} | {report.words[word]} | {100 * report.words[word] / n:.1f} % |"
            if report.agreement:
                line += f" {report.vetoed[word]} |"
            typer.echo(line)
