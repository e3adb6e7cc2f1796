"""The `foley` command. Thin: parse, call the library, print. Heavy imports live inside commands."""

from __future__ import annotations

import sys

import typer

from ..errors import FoleyError

app = typer.Typer(
    name="foley",
    help="Audio generation with foundation models: text and audio to sound effects, ambiences and music.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Each sub-module adds its commands to `app`; none of them may import torch at module level.
    from . import data  # noqa: F401
    for name in ("generate", "train", "train_lm", "eval", "codec", "models", "serve", "study", "token"):
        try:
            __import__(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise


_register()


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2."""
    try:
        rv = app(standalone_mode=False)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
    except FoleyError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except Exception as e:  # click usage errors
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        raise
