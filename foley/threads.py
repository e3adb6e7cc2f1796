"""How many CPU threads torch uses: the one place that decides it.

Two torch threads on a machine where another process keeps a core busy run 5-100x slower than one (a
parallel region waits for its second thread, which gets the core only now and then; with OpenMP's default
wait policy the first one spins meanwhile). Measured on 2 cores with a busy loop beside (bench/contention.py,
docs/benchmarks.md): both a passive OpenMP wait policy and fewer threads remove most of it, fewer threads
most. So foley does both:

- ``OMP_WAIT_POLICY=PASSIVE`` unless the user set it (``foley/__init__.py``, before torch is imported);
- threads: ``--threads N|auto`` (every command that runs models), else ``FOLEY_THREADS``, else the recipe's
  ``threads`` (training), else ``OMP_NUM_THREADS`` when the user set it, else ``auto``: the CPUs this process
  may use minus those that other processes kept busy during a short sample of ``/proc/stat`` (at least 1).

Importing this module does not import torch: before torch starts, the choice goes into ``OMP_NUM_THREADS``.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

from .errors import FoleyError

ENV = "FOLEY_THREADS"
SAMPLE_SECONDS = 0.2  # how long auto watches the other processes' CPU use
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


def _proc_stat() -> tuple[float, float] | None:
    """(busy, total) CPU ticks of the whole machine since boot, or None where there is no /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [float(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    return total - fields[3] - (fields[4] if len(fields) > 4 else 0.0), total


def busy_elsewhere(seconds: float = SAMPLE_SECONDS) -> float:
    """CPUs kept busy by other processes: a ``seconds`` sample of /proc/stat minus this process's own use
    (elsewhere the 1-minute load average)."""
    before, own0 = _proc_stat(), os.times()
    if before is None:
        try:
            return max(0.0, os.getloadavg()[0])
        except (AttributeError, OSError):
            return 0.0
    time.sleep(seconds)
    after, own1 = _proc_stat(), os.times()
    ticks = after[1] - before[1]
    if ticks <= 0:
        return 0.0
    machine = os.cpu_count() or 1
    busy = (after[0] - before[0]) / ticks * machine
    own = (own1.user + own1.system - own0.user - own0.system) / max(own1.elapsed - own0.elapsed, 1e-3)
    return max(0.0, busy - own)


def auto(seconds: float = SAMPLE_SECONDS) -> tuple[int, str]:
    """(threads, reason): the usable CPUs not kept busy by other processes, at least 1."""
    n_cores, others = cores(), busy_elsewhere(seconds)
    free = min(n_cores, (os.cpu_count() or n_cores) - others)
    n = max(1, min(n_cores, int(free + 0.5)))
    return n, f"auto: {n_cores} usable CPU(s), {others:.1f} busy with other processes"


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


def passive_wait() -> None:
    """``OMP_WAIT_POLICY=PASSIVE`` unless set: idle OpenMP threads sleep instead of spinning on a core that
    another process needs. Effective only before torch is imported."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def describe() -> dict:
    """For provenance: the threads torch uses now, and the decision behind them."""
    torch = sys.modules.get("torch")
    now = torch.get_num_threads() if torch is not None and hasattr(torch, "get_num_threads") else None
    c = _state["choice"]
    out = c.describe() if c is not None else {"source": "torch default"}
    if now is not None:
        out["threads"] = now
    out["wait_policy"] = os.environ.get("OMP_WAIT_POLICY", "default")
    return out
