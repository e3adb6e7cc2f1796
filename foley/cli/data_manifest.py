"""`foley data scan | validate | stats`: folders into manifests, and checks and figures on manifests."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import ManifestError
from .data_group import data_app

PROGRESS_MIN_FILES = 200  # show a progress bar from this many files up


@data_app.command("scan")
def scan(
    folder: Path = typer.Argument(..., help="Folder of audio files, scanned recursively."),
    output: Path = typer.Option(..., "-o", "--output", help="Manifest to write (.jsonl, or .jsonl.gz)."),
    captions: Path | None = typer.Option(None, "--captions",
                                         help="CSV with columns path,caption (path relative to FOLDER "
                                              "or absolute); used when a file has no sidecar."),
    absolute: bool = typer.Option(False, "--absolute/--relative",
                                  help="Write absolute paths, or paths relative to the manifest's folder."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the summary."),
) -> None:
    """Scan FOLDER into a manifest. Captions from a sidecar .json (AudioCraft; for sounds foley generated,
    the prompt in their sidecar), else a sidecar .txt, else a manifest (.jsonl) inside FOLDER (as `foley data
    synth` writes), else the --captions CSV, else the file and folder names ("doors/door_creak_heavy.ogg" -> "door creak
    heavy"). Every skipped file is listed with its reason."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..data.manifest import write_manifest
    from ..data.scan import SOURCE_NAMES, list_files, scan_folder
    from ..fsutil import check_writable

    check_writable(output, "manifest")
    console = Console(stderr=True)
    relative_to = None if absolute else output.resolve().parent
    n_files = len(list_files(folder)) if folder.is_dir() else 0
    if n_files >= PROGRESS_MIN_FILES and not quiet:
        with Progress(TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task("scan", total=n_files)
            result = scan_folder(folder, captions, relative_to, exclude=[output],
                                 on_file=lambda _f: bar.advance(task))
    else:
        result = scan_folder(folder, captions, relative_to, exclude=[output])
    if not quiet:
        for s in result.skipped:
            typer.echo(f"skipped {s.path}: {s.reason}", err=True)
    for w in result.warnings:
        typer.echo(f"warning: {w}", err=True)
    if not result.clips:
        raise ManifestError(f"{folder}: no usable audio files ({len(result.skipped)} skipped); "
                            f"nothing written to {output}")
    write_manifest(output, result.clips)
    seconds = sum(c.duration for c in result.clips)
    sources = ", ".join(f"{v} from {SOURCE_NAMES.get(k, k)}" for k, v in result.caption_sources.most_common())
    typer.echo(f"wrote {output}: {len(result.clips)} clips, {seconds / 3600:.3f} h ({seconds:.1f} s); "
               f"captions: {sources}; "
               f"{len(result.skipped)} skipped")


@data_app.command("validate")
def validate(
    manifest: Path = typer.Argument(..., help="Manifest (.jsonl or .jsonl.gz)."),
    tolerance: float = typer.Option(0.05, help="Allowed duration difference in seconds."),
) -> None:
    """Check that every clip's file exists and reads, its duration, rate and channels match, and it
    has a caption. Prints each problem; exits 1 if there is any, 0 when clean."""
    from ..data.scan import validate_manifest

    n, problems = validate_manifest(manifest, tolerance=tolerance)
    if n == 0 and not problems:
        raise ManifestError(f"{manifest}: the manifest has no clips; make one with `foley data scan DIR -o "
                            f"{manifest}`")
    for p in problems:
        typer.echo(f"{manifest}: {p}")
    if problems:
        bad = len({(p.line, p.path) for p in problems})
        typer.echo(f"{len(problems)} problem(s) in {bad} of {n} clips", err=True)
        raise SystemExit(1)  # not typer.Exit: click returns its code under standalone_mode=False
    typer.echo(f"{manifest}: {n} clips, no problems")


@data_app.command("stats")
def stats(
    manifests: list[Path] = typer.Argument(..., help="One or more manifests."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables."),
    top: int = typer.Option(20, help="How many of the most frequent caption words to show."),
) -> None:
    """Clips, total hours, duration histogram, sample rates, channels, sources and caption words."""
    import json

    from ..data.stats import manifest_stats

    s = manifest_stats(manifests, top=top)
    if as_json:
        typer.echo(json.dumps(s, indent=2))
        return
    _print_stats(s)


def _print_stats(s: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    head = Table(title="manifests", show_header=True)
    head.add_column("manifest")
    head.add_column("clips", justify="right")
    for m, n in s["manifests"].items():
        head.add_row(m, str(n))
    console.print(head)
    d = s["duration"]
    typer.echo(f"clips {s['clips']}, total {s['total_hours']:.3f} h ({s['total_seconds']:.1f} s), "
               f"captioned {s['captioned']}"
               + (f"; duration min {d['min']:.2f} s, median {d['median']:.2f} s, mean {d['mean']:.2f} s, "
                  f"max {d['max']:.2f} s" if d else ""))
    hist = Table(title="durations")
    hist.add_column("seconds")
    hist.add_column("clips", justify="right")
    hist.add_column("")
    peak = max([h["clips"] for h in s["histogram"]] + [1])
    for h in s["histogram"]:
        hist.add_row(h["bin"], str(h["clips"]), "#" * round(30 * h["clips"] / peak))
    console.print(hist)
    for key, title in (("sample_rates", "sample rate (Hz)"), ("channels", "channels"), ("sources", "source")):
        t = Table(title=title)
        t.add_column(title)
        t.add_column("clips", justify="right")
        for k, v in s[key].items():
            t.add_row(k, str(v))
        console.print(t)
    words = Table(title=f"caption words ({s['vocabulary_size']} distinct)")
    words.add_column("word")
    words.add_column("count", justify="right")
    for w, c in s["top_words"]:
        words.add_row(w, str(c))
    console.print(words)
