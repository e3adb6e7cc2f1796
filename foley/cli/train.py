"""`foley train ...`: one command per family, each resumable after a kill."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import FoleyError
from . import app
from .options import with_threads

train_app = typer.Typer(help="Train models on your own captioned sounds (resumable).", no_args_is_help=True)
app.add_typer(train_app, name="train")


def check_inputs(data: list[Path], stages: str, known: tuple[str, ...]) -> tuple[str, ...]:
    """Parse ``--stages`` against ``known`` and check every manifest exists; one-line errors."""
    chosen = tuple(s.strip() for s in stages.split(",") if s.strip())
    bad = [s for s in chosen if s not in known]
    if bad:
        raise FoleyError(f"unknown stage(s) {', '.join(bad)}; choose from {', '.join(known)}")
    for m in data:
        if not m.exists():
            raise FoleyError(f"{m}: manifest not found (make one with `foley data scan DIR -o {m}`)")
    return chosen


@train_app.command("ldm")
@with_threads
def train_ldm(
    data: list[Path] = typer.Option(..., "--data", help="Manifest(s) (JSONL); repeat for several."),
    recipe: Path = typer.Option(Path("recipes/starter-ldm.toml"), "--recipe",
                                help="Recipe (TOML); found from any folder, e.g. recipes/smoke-ldm.toml."),
    run: Path = typer.Option(Path("runs/ldm"), "--run", help="Working folder (checkpoints, logs, previews)."),
    output: Path = typer.Option(None, "--output", "-o", help="Where to write the finished model folder."),
    stages: str = typer.Option("vae,latents,unet,export", "--stages",
                               help="Comma-separated: vae, latents, unet, vocoder, export."),
    overrides: list[str] = typer.Option([], "--set", help="Override a recipe value: --set unet.steps=20 (repeat)."),
):
    """Train the latent-diffusion family: VAE, latent pre-encoding, UNet (and vocoder), then export."""
    from ..families.ldm.train import STAGES
    from ..families.ldm.train import train_ldm as _train
    from ..train.loop import load_recipe

    chosen = check_inputs(data, stages, (*STAGES[:-1], "vocoder", STAGES[-1]))
    folder = _train(list(data), load_recipe(recipe, overrides), run, stages=chosen, dest=output)
    if folder:
        typer.echo(f"model written to {folder}")
