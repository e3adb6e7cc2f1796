"""Options and displays shared by the commands that run models: ``--threads`` and the step progress bar."""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys

import typer

THREADS_HELP = ("CPU threads for torch: a number, or 'auto' (default; the CPUs not busy with other processes). "
                "Also `foley --threads N <command>` or FOLEY_THREADS.")


def threads_option():
    """The ``--threads`` typer option (the root callback's and every model command's)."""
    return typer.Option(None, "--threads", help=THREADS_HELP, metavar="N|auto", show_default=False)


def with_threads(fn):
    """Add ``--threads N|auto`` to a command; the value is checked and put in effect before the command runs
    (:func:`foley.threads.request` then :func:`foley.threads.apply`)."""
    sig = inspect.signature(fn)
    param = inspect.Parameter("threads", inspect.Parameter.KEYWORD_ONLY, default=threads_option(), annotation="str")

    @functools.wraps(fn)
    def command(*args, threads: str | None = None, **kwargs):
        from .. import threads as _threads

        _threads.request(threads)
        _threads.apply()
        return fn(*args, **kwargs)

    command.__signature__ = sig.replace(parameters=[*sig.parameters.values(), param])
    command.__annotations__ = {**fn.__annotations__, "threads": "str"}
    return command


@contextlib.contextmanager
def step_progress(gen, desc: str, stream=None):
    """A progress bar over ``gen.on_step(i, n)`` (denoising steps or sampled frames) on ``stream`` (stderr)
    while the block runs; nothing when it is not a terminal. A new pass (another batch, window or a redraw)
    restarts the bar and counts the passes in its label."""
    stream = sys.stderr if stream is None else stream
    if not getattr(stream, "isatty", lambda: False)() or not hasattr(gen, "on_step"):
        yield
        return
    from tqdm.auto import tqdm

    state = {"bar": None, "last": 0, "passes": 0}

    def on_step(i: int, n: int) -> None:
        bar = state["bar"]
        if bar is None or i < state["last"]:
            state["passes"] += 1
            label = desc if state["passes"] == 1 else f"{desc} (pass {state['passes']})"
            if bar is None:
                bar = state["bar"] = tqdm(total=n, desc=label, file=stream, dynamic_ncols=True, leave=False,
                                          mininterval=0.2)
            else:
                bar.reset(total=n)
                bar.set_description(label)
        bar.update(i - bar.n)
        if i == n:  # a finished pass is drawn even when it took less than the refresh interval
            bar.refresh()
        state["last"] = i

    before = gen.on_step
    gen.on_step = on_step
    try:
        yield
    finally:
        gen.on_step = before
        if state["bar"] is not None:
            state["bar"].close()
