"""`foley train ...`: one command per family, each resumable after a kill."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperGroup
from typer.main import get_command_from_info
from typer.models import CommandInfo

from ..errors import FoleyError
from ..family import families
from . import app
from .options import with_threads


class _TrainGroup(TyperGroup):
    """`foley train`: the families' commands are made the first time this group's commands are looked at, not at
    import: finding plugin families reads every installed package's metadata, too slow for `foley --help`."""

    @property
    def commands(self):
        if not self._families_added:
            self._families_added = True
            own = dict(self._commands)
            self._commands.clear()
            for fam in families().values():  # the families first, then the group's own commands (clap, ...)
                if fam.train is not None and fam.name not in own:
                    info = CommandInfo(name=fam.name, callback=with_threads(_family_command(fam)))
                    self._commands[fam.name] = get_command_from_info(
                        info, pretty_exceptions_short=True, rich_markup_mode=self.rich_markup_mode)
            self._commands.update(own)
        return self._commands

    @commands.setter
    def commands(self, value):
        self._families_added = False
        self._commands = value


train_app = typer.Typer(help="Train models on your own captioned sounds (resumable).", no_args_is_help=True,
                        cls=_TrainGroup)
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


def _family_command(fam):
    """``foley train NAME`` for a family with a training entry (built-in or a plugin): the same options for all."""
    known = tuple(fam.stages)

    def command(
        data: list[Path] = typer.Option(..., "--data", help="Manifest(s) (JSONL); repeat for several."),
        recipe: Path = typer.Option(Path(fam.recipe) if fam.recipe else None, "--recipe",
                                    help="Recipe (TOML); found from any folder, e.g. recipes/smoke-ldm.toml."),
        run: Path = typer.Option(Path("runs") / fam.name, "--run",
                                 help="Working folder (checkpoints, logs, previews)."),
        output: Path = typer.Option(None, "--output", "-o", help="Where to write the finished model folder."),
        stages: str = typer.Option(",".join(fam.default_stages or known), "--stages",
                                   help=f"Comma-separated: {', '.join(known)}."),
        overrides: list[str] = typer.Option([], "--set", help="Override a recipe value: --set unet.steps=20 (repeat)."),
    ):
        from ..train.loop import load_recipe

        if recipe is None:
            raise FoleyError(f"family '{fam.name}' has no default recipe; give --recipe FILE.toml")
        chosen = check_inputs(data, stages, known)
        folder = fam.train_function()(list(data), load_recipe(recipe, overrides), run, stages=chosen, dest=output)
        if folder:
            typer.echo(f"model written to {folder}")

    command.__doc__ = (f"Train the '{fam.name}' family: {fam.description}. Stages {', '.join(known)}; each "
                       "resumes after a kill." if fam.description else f"Train the '{fam.name}' family (resumable).")
    return command

