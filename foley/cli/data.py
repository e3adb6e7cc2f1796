"""`foley data ...`: manifests, folder scanning, and the corpora we render here."""

from __future__ import annotations

import typer

from . import app

data_app = typer.Typer(help="Datasets: scan folders into manifests, validate, describe, render corpora.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")

# Commands live in their own modules and register themselves on `data_app`.
from . import data_manifest, data_music, data_synth  # noqa: E402,F401
