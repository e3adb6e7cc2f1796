"""`foley export onnx MODEL -o DIR`: a latent-diffusion UNet for onnxruntime (`foley generate --backend onnx`)."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app
from .options import with_threads

export_app = typer.Typer(help="Export models for other runtimes.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("onnx")
@with_threads
def onnx(
    model: str = typer.Argument(..., help="A latent-diffusion model: name or folder (e.g. models/starter)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for unet.onnx and onnx.json."),
):
    """Export the UNet to ONNX (checked against torch at other shapes before it is written); use it with
    `foley generate -m MODEL --backend onnx --onnx-dir DIR`."""
    from .. import load
    from ..errors import RequestError
    from ..families.ldm.accel import export_onnx

    gen = load(model)
    if not hasattr(getattr(gen, "model", None), "unet"):
        raise RequestError(f"model '{model}' is not a latent-diffusion model of ours; ONNX export covers those")
    path = export_onnx(gen.model, output)
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
