"""The `foley data` command group; its commands (data_manifest, data_music, data_synth) register on it."""

from __future__ import annotations

import typer

data_app = typer.Typer(help="Datasets: scan folders into manifests, validate, describe, render corpora.",
                       no_args_is_help=True)
