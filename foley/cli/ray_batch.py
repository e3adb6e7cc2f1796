"""`foley generate --ray [ADDRESS]`: a batch's requests fanned out over Ray actors, one model load per actor.

Ray does the cluster, scheduling and transport (``ray.util.ActorPool``); this module only says what an actor
does (load once, then generate one request at a time) and turns Ray's failures into one-line errors. The
driver (the ``foley generate`` process) writes every result as it arrives, so the nodes need no shared folder
and a batch is resumable exactly like the in-process one (generate.py decides what is left to do).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from ..errors import FoleyError
from ..raycluster import cause as _cause
from ..raycluster import connect

RETRIES = 2


class BatchWorker:
    """One Ray actor: the model loaded once (:meth:`load`), then any number of :meth:`generate` calls. An actor
    that Ray restarts (its process or node died) loads the model again on its first call."""

    def __init__(self, model: str, options: dict, threads: int):
        self.model, self.options, self.threads = model, options, threads
        self.gen = None

    def _load(self):
        from .. import load
        from .. import threads as _threads

        _threads.request(self.threads)
        _threads.apply()
        self.gen = load(self.model, **self.options)

    def load(self, warmup=None) -> str:
        self._load()
        if warmup is not None:  # pays what the first generation loads lazily (benchmarks)
            self.gen.generate([warmup])
        return f"{os.uname().nodename}:{os.getpid()}"

    def generate(self, key: int, request) -> tuple[int, list]:
        if self.gen is None:
            self._load()
        audios = self.gen.generate([request])
        for a in audios:  # provenance: which node and process made it (the sidecar keeps it)
            a.meta["ray_actor"] = f"{os.uname().nodename}:{os.getpid()}"
        return key, audios


def run(address: str | None, model: str, options: dict, requests: Sequence, on_result: Callable[[int, list], None],
        actors: int | None = None, actor_cpus: float = 1.0, on_ready: Callable[[list[str]], None] | None = None,
        warmup=None) -> int:
    """Generate ``requests`` on Ray actors; ``on_result(i, audios)`` runs in this process as each one finishes
    (in completion order). ``on_ready(actors' host:pid)`` once every actor has loaded the model (and generated
    ``warmup``, a request whose result is dropped, when given). Returns the number of actors used."""
    from ..numba_warm import warm

    warm()  # local actors share this installation's numba cache: compiled once, before they start (numba#10128)
    ray, started = connect(address)
    from ray.util import ActorPool

    if actors is None:
        total = float(ray.cluster_resources().get("CPU", 1.0))
        actors = max(1, int(total // actor_cpus))
    actors = max(1, min(int(actors), len(requests)))
    gpus = 1 if str(options.get("device", "")).startswith("cuda") else 0
    # a dead actor (process or node lost) is restarted and its call retried, twice; errors raised by foley are not
    cls = ray.remote(num_cpus=actor_cpus, num_gpus=gpus, max_restarts=RETRIES, max_task_retries=RETRIES)(BatchWorker)
    pool = [cls.remote(model, options, max(1, int(actor_cpus))) for _ in range(actors)]
    try:
        try:
            where = ray.get([a.load.remote(warmup) for a in pool])
        except Exception as e:  # noqa: BLE001
            raise FoleyError(f"a Ray actor could not load model '{model}': {_cause(e)}") from None
        if on_ready is not None:
            on_ready(where)
        jobs = ActorPool(pool).map_unordered(lambda a, item: a.generate.remote(*item), list(enumerate(requests)))
        while True:
            try:
                i, audios = next(jobs)
            except StopIteration:
                break
            except Exception as e:  # noqa: BLE001  (RayTaskError, ActorDiedError, ...)
                raise FoleyError(f"a Ray actor failed: {_cause(e)}") from None
            on_result(i, audios)
    finally:
        for a in pool:
            ray.kill(a)
        if started:
            ray.shutdown()
    return actors
