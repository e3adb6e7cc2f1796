"""The `foley` command. Thin: parse, call the library, print. Heavy imports live inside commands."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# typer's rich help (boxes, colours) imports rich.markdown and markdown-it on every `--help`: ~0.1 s of the 0.2 s
# budget (bench/startup.py). Plain help unless the user asks for the boxes with TYPER_USE_RICH=1; read when typer loads.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer  # noqa: E402

from ..errors import FoleyError  # noqa: E402
from ..threads import request as request_threads  # noqa: E402
from . import help_types  # noqa: F401, E402  (flags show no <bool> type in the rich --help)
from .options import threads_option  # noqa: E402

app = typer.Typer(
    name="foley",
    help="Audio generation with foundation models: text and audio to sound effects, ambiences and music.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


_debug = {"on": False}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show the traceback of an internal error "
                                     "(also FOLEY_DEBUG=1); without it, it goes to a log file."),
          threads: str = threads_option()) -> None:
    _debug["on"] = debug
    request_threads(threads)  # checked now; the model commands apply it (foley/threads.py)


def _register() -> None:
    # Each sub-module adds its commands to `app`; none of them may import torch at module level.
    for name in ("data", "generate", "train", "train_lm", "train_finetune",
                 "train_distill", "train_control", "clap", "eval", "codec", "models", "serve",
                 "study", "token", "export"):
        try:
            __import__(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise


_register()


def _debug_wanted() -> bool:
    return _debug["on"] or os.environ.get("FOLEY_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def _usage_line(e: Exception) -> str:
    """A click/typer usage error as one line: 'invalid value for '--duration': ... (see foley generate --help)'.

    Duck-typed (``format_message`` + ``exit_code``): typer vendors click's classes in a private module, and
    plain click raises its own; both have this shape."""
    param = getattr(e, "param", None)
    opts = [o for o in getattr(param, "opts", None) or [] if o.startswith("--")] or getattr(param, "opts", None)
    if opts and type(e).__name__ == "BadParameter":  # name the option once, by its long spelling
        given = ""
        try:  # typer coerces with pydantic: the rejected input is on the cause
            given = f" ({e.__cause__.errors()[0]['input']!r})"
        except (AttributeError, IndexError, KeyError, TypeError):
            pass
        text = str(getattr(e, "message", e))
        msg = f"invalid value for '{opts[0]}'{given}: {text[:1].lower() + text[1:]}"
    else:
        msg = e.format_message()
    msg = " ".join(str(msg).split()).rstrip(".")
    msg = msg[:1].lower() + msg[1:]
    ctx = getattr(e, "ctx", None)
    path = getattr(ctx, "command_path", None)
    return f"{msg} (see {path} --help)" if path else msg


def _is_usage_error(e: BaseException) -> bool:
    return callable(getattr(e, "format_message", None)) and isinstance(getattr(e, "exit_code", None), int)


def _log_internal(argv: list[str]) -> Path | None:
    """Write the current exception's traceback to a log file; its path, or None when nothing is writable."""
    import tempfile
    import time
    import traceback

    from ..registry import home

    text = (f"foley {' '.join(argv)}\n{time.strftime('%Y-%m-%d %H:%M:%S')}  python {sys.version.split()[0]}\n\n"
            + traceback.format_exc())
    name = f"foley-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    for folder in (home() / "logs", Path(tempfile.gettempdir()) / "foley-logs"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")
            return folder / name
        except OSError:
            continue
    return None


# Options whose value may be left out, and the value that then means (typer has no optional-value options; this
# hand-written rewrite gives `foley generate --batch-file p.txt --ray` its local default).
OPTIONAL_VALUES = {"--ray": "local"}


def _optional_values(argv: list[str]) -> list[str]:
    out = []
    for k, arg in enumerate(argv):
        out.append(arg)
        if arg == "--":
            return out + argv[k + 1:]
        if arg in OPTIONAL_VALUES and (k + 1 == len(argv) or argv[k + 1].startswith("-")):
            out.append(OPTIONAL_VALUES[arg])
    return out


def main(argv: list[str] | None = None) -> None:
    """Entry point: every failure is one line on stderr. Exit 2: the user's input or environment (FoleyError,
    usage errors); 1: an internal error (traceback in a log file; inline with --debug or FOLEY_DEBUG=1);
    130: interrupted."""
    argv = _optional_values(list(sys.argv[1:] if argv is None else argv))
    _debug["on"] = False
    try:
        rv = app(args=argv, prog_name="foley", standalone_mode=False)
        if isinstance(rv, int) and rv:
            if rv == 130:  # typer turns Ctrl-C into Exit(130), which click returns without standalone mode
                typer.echo("interrupted", err=True)
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
    except Exception as e:
        if _is_usage_error(e):
            if type(e).__name__ == "NoArgsIsHelpError":  # `foley data` alone: the help was the answer
                e.show()
            else:
                typer.echo(f"error: {_usage_line(e)}", err=True)
            sys.exit(e.exit_code)
        if _debug_wanted():
            raise
        what = " ".join(f"{type(e).__name__}: {e}".split())
        what = what if len(what) <= 200 else what[:197] + "..."
        log = _log_internal(argv)
        where = f"details in {log}" if log else "no log file could be written"
        typer.echo(f"error: internal error ({what}); {where}; rerun with --debug to see them", err=True)
        sys.exit(1)
