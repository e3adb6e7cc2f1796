"""`foley train control`: a control adapter (the five control curves; melody for token models) for a model."""

from __future__ import annotations

from pathlib import Path

import typer

from .options import with_threads
from .train import train_app


@train_app.command("control")
@with_threads
def control(
    base: str = typer.Option("starter", "--from", help="The model to control: starter, starter-lm, or a model "
                             "folder of the latent-diffusion or token-LM family."),
    data: list[Path] = typer.Option(..., "--data", help="Manifest(s) (JSONL) of sounds to learn the curves from: its "
                                    "own training manifests; repeat for several. No labels needed: the curves are "
                                    "measured from the audio."),
    output: Path = typer.Option(None, "--output", "-o", help="Where to write the adapter (default: the model "
                                "folder's control/, where its sampler finds it)."),
    recipe: Path = typer.Option(None, "--recipe", help="Recipe (TOML): [windows] how many training windows; [control] "
                                "training settings (default: the family's, recipes/starter-control.toml for latent "
                                "diffusion, recipes/starter-lm-control.toml for the token LM)."),
    run: Path = typer.Option(None, "--run", help="Working folder (default runs/control-<model name>); a killed run "
                             "resumes from it."),
    minutes: float = typer.Option(None, "--minutes", min=0.1, help="Time budget of the training stage in minutes."),
    overrides: list[str] = typer.Option([], "--set", help="Override a recipe value: --set control.steps=500 "
                                        "(repeat)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing adapter."),
):
    """Train a control adapter that reads loudness, brightness, pitch, density and pan curves (latent diffusion: a
    ControlNet; token LM: conditioning frames + LoRA, which also read a melody's chroma). The curves are measured
    from the training sounds themselves; each is dropped at random so any subset works. Once in the model folder,
    every request with target curves (--control, --like, shape words of the prompt) uses it, and a token LM takes
    `foley edit melody REF.wav "prompt"`."""
    from ..family import get
    from ..registry import family_of, resolve
    from ..train.loop import load_recipe

    folder, card = resolve(base)
    family = card.family if card is not None else family_of(folder)
    name = card.name if card is not None else str(folder)
    fam = get(family)
    train = fam.control_function()
    r = load_recipe(recipe or Path(fam.control_recipe or "recipes/starter-control.toml"), overrides)
    if minutes is not None:
        r.setdefault("train", {})["max_minutes"] = minutes
    run = run or Path("runs") / f"control-{Path(folder).name}"
    dest = train(folder, name, list(data), r, run, output, force=force, say=typer.echo)
    typer.echo(f"control adapter written to {dest}")
    typer.echo(f"use it: foley generate \"a synth tone\" -m {base} --control \"pitch=rise 300Hz->1200Hz\"")
