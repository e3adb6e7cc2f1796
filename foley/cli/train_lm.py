"""`foley train codec`: the neural codec, a component the token families build on (resumable)."""

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
