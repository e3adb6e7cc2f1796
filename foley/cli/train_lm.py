"""`foley train codec` and `foley train lm`: the token family's training commands (resumable)."""

from __future__ import annotations

from pathlib import Path

import typer

from .options import with_threads
from .train import check_inputs, train_app


@train_app.command("codec")
@with_threads
def train_codec(
    data: list[Path] = typer.Option(..., "--data", help="Manifest(s) (JSONL); repeat for several."),
    recipe: Path = typer.Option(Path("recipes/starter-codec-mel.toml"), "--recipe", help="Recipe (TOML)."),
    run: Path = typer.Option(Path("runs/codec"), "--run", help="Working folder (checkpoints, logs, previews)."),
    output: Path = typer.Option(None, "--output", "-o", help="Also copy the finished codec folder here."),
    overrides: list[str] = typer.Option([], "--set", help="Override a recipe value: --set unet.steps=20 (repeat)."),
):
    """Train the neural codec (RVQ autoencoder, STFT discriminators; or the mel codec when the recipe says
    [codec] kind = "mel"); writes <run>/codec/final."""
    from ..codec.train import train_codec as _train
    from ..train.loop import load_recipe

    check_inputs(data, "", ())
    folder = _train(list(data), load_recipe(recipe, overrides), run)
    if output is not None:
        import shutil

        shutil.copytree(folder, output, dirs_exist_ok=True)
        folder = output
    typer.echo(f"codec written to {folder}")


@train_app.command("lm")
@with_threads
def train_lm(
    data: list[Path] = typer.Option(..., "--data", help="Manifest(s) (JSONL); repeat for several."),
    recipe: Path = typer.Option(Path("recipes/starter-lm.toml"), "--recipe", help="Recipe (TOML)."),
    run: Path = typer.Option(Path("runs/lm"), "--run", help="Working folder (tokens, checkpoints, logs)."),
    output: Path = typer.Option(None, "--output", "-o", help="Where to write the finished model folder."),
    stages: str = typer.Option("tokens,lm,export", "--stages", help="Comma-separated: tokens, lm, export."),
    overrides: list[str] = typer.Option([], "--set", help="Override a recipe value: --set unet.steps=20 (repeat)."),
):
    """Train the token LM on a trained codec's tokens: pre-tokenise, train the decoder, export."""
    from ..families.lm.train import STAGES
    from ..families.lm.train import train_lm as _train
    from ..train.loop import load_recipe

    chosen = check_inputs(data, stages, tuple(STAGES))
    folder = _train(list(data), load_recipe(recipe, overrides), run, stages=chosen, dest=output)
    if folder:
        typer.echo(f"model written to {folder}")
