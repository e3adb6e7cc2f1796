"""How many CPU threads torch uses: the one place that decides it.

Two torch threads on a machine where another process keeps a core busy run 5-100x slower than one (a
parallel region waits for its second thread, which gets the core only now and then, while the first spins).
Measured on 2 cores with a busy loop beside (``python bench/contention.py``, docs/benchmarks.md): one thread
beside a busy core is as fast as idle; a passive OpenMP wait policy also removes the collapse but makes the idle
machine 2.2-2.4x slower, so it is not the default. And the count must not follow the momentary load: a token
model samples from probabilities whose last bits depend on the thread count, so "same seed = same sound" holds
only for a thread count fixed per machine.

So threads are: ``--threads N|auto`` (every command that runs models), else ``FOLEY_THREADS``, else the
recipe's ``threads`` (training), else ``OMP_NUM_THREADS`` when the user set it, else ``auto``: the CPUs this
process may use minus one left for the rest of the machine (at least 1) -- the same on every run of a machine.

Importing this module does not import torch: before torch starts, the choice goes into ``OMP_NUM_THREADS``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from .errors import FoleyError

ENV = "FOLEY_THREADS"
MAX_PER_CORE = 4      # refuse more threads than this many per usable CPU (a typo, not a wish)

_state: dict = {"choice": None, "omp_written": None, "flag": None}


@dataclass(frozen=True)
class ThreadChoice:
    """A decision: ``threads`` for torch, where it came from (``source``) and why (``reason``, one line)."""

    threads: int
    source: str
    reason: str

    def describe(self) -> dict:
        return {"threads": self.threads, "source": self.source, "reason": self.reason}


def cores() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def parse(value, name: str = ENV) -> int | None:
    """``value`` as a thread count; None means auto. One-line :class:`FoleyError` for anything else."""
    text = str(value).strip().lower()
    if text in ("", "auto"):
        return None
    limit = MAX_PER_CORE * cores()
    try:
        n = int(text)
    except ValueError:
        raise FoleyError(f"{name}={value!r}: give a whole number of CPU threads (1 or more) or 'auto'") from None
    if n < 1:
        raise FoleyError(f"{name}={value}: the number of CPU threads must be 1 or more (or 'auto')")
    if n > limit:
        raise FoleyError(f"{name}={value}: at most {limit} threads ({MAX_PER_CORE} per CPU; this process may use "
                         f"{cores()}); 'auto' chooses for you")
    return n


def auto() -> tuple[int, str]:
    """(threads, reason): the usable CPUs minus one for the rest of the machine, at least 1. Fixed per machine
    (not the momentary load), so a seed gives the same sound on every run."""
    n_cores = cores()
    n = max(1, n_cores - 1)
    return n, f"auto: {n_cores} usable CPU(s), one left for other processes"


def choose(value=None, fallback=None) -> ThreadChoice:
    """Decide without applying: ``value`` (``--threads``) > ``FOLEY_THREADS`` > ``fallback`` (a recipe's
    ``threads``) > ``OMP_NUM_THREADS`` set by the user > auto."""
    if value is not None:
        spec, source = value, "--threads"
    elif os.environ.get(ENV, "").strip():
        spec = os.environ[ENV]
        source = "--threads" if spec.strip() == _state["flag"] else ENV
    elif fallback:
        spec, source = fallback, "recipe"
    else:
        omp = os.environ.get("OMP_NUM_THREADS", "").strip()
        if omp and omp != _state["omp_written"]:
            try:
                n = max(1, int(omp))
                return ThreadChoice(n, "OMP_NUM_THREADS", f"OMP_NUM_THREADS={omp}")
            except ValueError:
                pass
        spec, source = "auto", "default"
    n = parse(spec, "--threads" if source == "--threads" else ENV if source == ENV else "threads")
    if n is None:
        n, reason = auto()
        return ThreadChoice(n, source, reason)
    return ThreadChoice(n, source, f"{source}={n}")


def apply(value=None, fallback=None) -> ThreadChoice:
    """Decide (see :func:`choose`) and put the choice in effect: ``torch.set_num_threads`` when torch is
    imported, else ``OMP_NUM_THREADS`` for torch to read when it starts."""
    c = choose(value, fallback)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        torch.set_num_threads(c.threads)
    else:
        os.environ["OMP_NUM_THREADS"] = _state["omp_written"] = str(c.threads)
    _state["choice"] = c
    return c


def request(value) -> None:
    """Record a ``--threads`` value for this process (checked now; applied by :func:`apply`): it goes into
    ``FOLEY_THREADS``, so the commands' own calls and child processes see it too."""
    if value is not None:
        parse(value, "--threads")
        os.environ[ENV] = _state["flag"] = str(value).strip()


def apply_env() -> None:
    """Honour ``FOLEY_THREADS`` for library users (``foley.load``) unless a choice is already in effect."""
    if _state["choice"] is None and os.environ.get(ENV, "").strip():
        apply()


def current() -> int:
    """The thread count in effect: torch's when it is imported, else the choice applied (or that would be), for
    runtimes that are not torch (onnxruntime sessions of a torch-free backend)."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):
        return int(torch.get_num_threads())
    c = _state["choice"]
    return (c if c is not None else choose()).threads


def describe() -> dict:
    """For provenance: the threads torch uses now, and the decision behind them."""
    torch = sys.modules.get("torch")
    now = torch.get_num_threads() if torch is not None and hasattr(torch, "get_num_threads") else None
    c = _state["choice"]
    out = c.describe() if c is not None else {"source": "torch default"}
    if now is not None:
        out["threads"] = now
    elif c is not None:
        out["threads"] = c.threads
    out["wait_policy"] = os.environ.get("OMP_WAIT_POLICY", "default")
    return out
