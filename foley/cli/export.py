"""`foley export onnx MODEL -o DIR`: a latent-diffusion UNet, a token model's decoder step or a WaveGAN generator for
onnxruntime (`foley generate --backend onnx`)."""

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
    model: str = typer.Argument(..., help="A latent-diffusion, token or WaveGAN model: name or folder (e.g. "
                                "models/starter)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the .onnx file and its .json."),
):
    """Export the UNet (latent diffusion), the decoder step (token models) or the generator (WaveGAN) to ONNX,
    checked against torch at other shapes before it is written; use it with `foley generate -m MODEL --backend onnx
    --onnx-dir DIR`."""
    from .. import load
    from ..errors import RequestError

    gen = load(model)
    if not hasattr(gen, "export_onnx"):
        raise RequestError(f"model '{model}' ({gen.card.family}) has no ONNX export; latent-diffusion, token and "
                           "WaveGAN models of ours have")
    path = gen.export_onnx(output)
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
