"""`foley clap embed|score|search` (foley-clap: audio and text in one space) and `foley train clap`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..errors import FoleyError, RequestError
from . import app
from .options import with_threads
from .train import train_app

clap_app = typer.Typer(help="Our audio-text model: embed sounds or texts, score sounds against words, search a "
                            "folder of sounds with words.", no_args_is_help=True)
app.add_typer(clap_app, name="clap")

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
MODEL_HELP = "foley-clap folder (default: FOLEY_CLAP, else models/foley-clap)."


def _clap(model: Path | None):
    from ..clap import load_clap

    return load_clap(model)


def _audio_files(inputs: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in inputs:
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES and f.is_file())
        elif p.is_file():
            files.append(p)
        else:
            raise RequestError(f"{p}: no such file or folder")
    if not files:
        raise RequestError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {', '.join(map(str, inputs))}")
    return files


def _cache_file(clap, folder: Path) -> Path:
    import hashlib

    from ..paths import home

    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return home() / "clap" / clap.hash / f"{key}.npz"


def embed_files(clap, files: list[Path], cache: Path | None = None, progress: bool = True):
    """Embeddings [N, D] of audio files; with ``cache``, rows of unchanged files (path, size, mtime) are reused.
    Unreadable files are skipped and named; returns (files kept, embeddings, skipped)."""
    import numpy as np

    from ..audio import Audio
    from ..errors import AudioError
    from ..fsutil import atomic_path

    def ident(f: Path) -> str:
        st = f.stat()
        return f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}"

    known: dict[str, np.ndarray] = {}
    if cache is not None and cache.exists():
        with np.load(cache) as z:
            known = dict(zip(z["ids"].tolist(), z["emb"], strict=True))
    ids = [ident(f) for f in files]
    kept, rows, skipped = [], [], []
    todo = [(f, i) for f, i in zip(files, ids, strict=True) if i not in known]
    for k, (f, i) in enumerate(todo):
        try:
            known[i] = clap.embed([Audio.load(f)])[0]
        except AudioError as e:
            skipped.append(str(e))
        if progress and (k + 1) % 50 == 0:
            typer.echo(f"  embedded {k + 1}/{len(todo)}", err=True)
    for f, i in zip(files, ids, strict=True):
        if i in known:
            kept.append(f)
            rows.append(known[i])
    if cache is not None and todo:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, ids=np.array(list(known)), emb=np.stack(list(known.values())))
    emb = np.stack(rows) if rows else np.zeros((0, clap.dim), np.float32)
    return kept, emb, skipped


@clap_app.command("embed")
@with_threads
def embed(
    inputs: list[str] = typer.Argument(..., help="Audio files or folders (or texts with --text)."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the vectors (.npy); a .json beside "
                                "it lists what each row is."),
    text: bool = typer.Option(False, "--text", help="The inputs are texts, not audio."),
    model: Path = typer.Option(None, "--model", help=MODEL_HELP),
):
    """Embed sounds or texts into foley-clap's space (L2-normalised rows of an .npy file)."""
    import numpy as np

    from ..fsutil import atomic_path, check_writable, write_json_atomic

    if output.suffix.lower() != ".npy":
        raise RequestError(f"{output}: write the vectors to a .npy file")
    check_writable(output)
    clap = _clap(model)
    if text:
        rows, names, skipped = clap.embed_text(inputs), list(inputs), []
    else:
        files, rows, skipped = embed_files(clap, _audio_files([Path(p) for p in inputs]))
        names = [str(f) for f in files]
    with atomic_path(output) as tmp, open(tmp, "wb") as fh:
        np.save(fh, rows.astype(np.float32))
    write_json_atomic(output.with_suffix(".json"), {"model": clap.name, "kind": "text" if text else "audio",
                                                    "rows": names, "skipped": skipped})
    typer.echo(f"wrote {output}  ({rows.shape[0]} x {rows.shape[1]}, {clap.name})")
    for s in skipped:
        typer.echo(f"skipped: {s}", err=True)


@clap_app.command("score")
@with_threads
def score(
    audio: list[Path] = typer.Argument(..., help="Audio files or folders."),
    text: str = typer.Option(..., "--text", "-t", help="The words to score the sounds against."),
    model: Path = typer.Option(None, "--model", help=MODEL_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
):
    """CLAP score (cosine, -1..1) of each sound against the words; higher = closer."""
    clap = _clap(model)
    files, emb, skipped = embed_files(clap, _audio_files(audio), progress=False)
    scores = emb @ clap.embed_text([text])[0]
    rows = [{"file": str(f), "score": round(float(s), 4)} for f, s in zip(files, scores, strict=True)]
    if as_json:
        typer.echo(json.dumps({"model": clap.name, "text": text, "scores": rows, "skipped": skipped}, indent=1))
        return
    for r in rows:
        typer.echo(f"{r['score']:+.4f}  {r['file']}")
    for s in skipped:
        typer.echo(f"skipped: {s}", err=True)


@clap_app.command("search")
@with_threads
def search(
    folder: Path = typer.Argument(..., help="A folder of sounds (searched recursively)."),
    query: str = typer.Argument(..., help="What you are looking for, e.g. 'a heavy door slam'."),
    top: int = typer.Option(10, "--top", "-k", help="How many results."),
    model: Path = typer.Option(None, "--model", help=MODEL_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not reuse or store the folder's embeddings "
                                  "(kept under $FOLEY_HOME/clap, never in your folder)."),
):
    """Rank the sounds of a folder by how well they match the words (embeddings are cached per folder)."""
    import numpy as np

    if not folder.is_dir():
        raise RequestError(f"{folder}: not a folder; give a folder of sounds")
    if top < 1:
        raise RequestError(f"--top must be at least 1, got {top}")
    clap = _clap(model)
    files, emb, skipped = embed_files(clap, _audio_files([folder]), None if no_cache else _cache_file(clap, folder))
    if not files:
        raise FoleyError(f"{folder}: none of its audio files could be read (first: {skipped[0]})")
    scores = emb @ clap.embed_text([query])[0]
    order = np.argsort(-scores, kind="stable")[:top]
    rows = [{"rank": k + 1, "file": str(files[i]), "score": round(float(scores[i]), 4)} for k, i in enumerate(order)]
    if as_json:
        typer.echo(json.dumps({"model": clap.name, "query": query, "results": rows, "searched": len(files),
                               "skipped": skipped}, indent=1))
        return
    for r in rows:
        typer.echo(f"{r['rank']:3d}. {r['score']:+.4f}  {r['file']}")
    typer.echo(f"({len(files)} sounds searched with {clap.name}"
               f"{f'; {len(skipped)} unreadable skipped' if skipped else ''})", err=True)


@train_app.command("clap")
@with_threads
def train_clap_command(
    data: list[Path] = typer.Option(..., "--data", help="Captioned manifest(s) (JSONL: description and/or "
                                    "captions); repeat for several."),
    recipe: Path = typer.Option(Path("recipes/foley-clap.toml"), "--recipe", help="Recipe (TOML), section [clap]."),
    run: Path = typer.Option(Path("runs/clap"), "--run", help="Working folder (feature cache, checkpoints, logs)."),
    output: Path = typer.Option(None, "--output", "-o", help="Copy the finished model folder here."),
    overrides: list[str] = typer.Option([], "--set", help="Override a recipe value: --set clap.steps=200 (repeat)."),
):
    """Train foley-clap (contrastive audio-text) on captioned sounds; resumes after a kill."""
    import shutil

    from ..clap.train import train_clap
    from ..train.loop import load_recipe

    for m in data:
        if not m.exists():
            raise FoleyError(f"{m}: manifest not found (make one with `foley data scan DIR -o {m}`)")
    folder = train_clap(list(data), load_recipe(recipe, overrides), run)
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "model.safetensors"):
            shutil.copy2(folder / name, output / name)
        folder = output
    typer.echo(f"model written to {folder}")
