"""`foley data ...`: manifests, folder scanning, and the corpora we render here."""

from __future__ import annotations

from . import app, data_caption, data_manifest, data_music, data_synth  # noqa: F401  (the commands register on data_app)
from .data_group import data_app

app.add_typer(data_app, name="data")
