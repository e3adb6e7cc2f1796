"""`foley eval --ray [ADDRESS]`: feature extraction fanned out over Ray actors, each building the extractors it is
asked for once (its own copy of the weights). The driver still reads the audio, prepares it, checks it and caches
the features; a batch's prepared clips are split over the actors and the pieces put back in order, so the
numbers are those of the in-process pass (same code on the same arrays)."""

from __future__ import annotations

import numpy as np

from ..errors import FoleyError, ModelError
from ..raycluster import cause, connect


class FeatureWorker:
    """One Ray actor: extractors by name, built on first use and kept."""

    def __init__(self, threads: int):
        self.threads = threads
        self.extractors: dict = {}

    def features(self, name: str, prepared: list) -> tuple:
        from .. import threads as _threads
        from .extractors import get_extractor

        if name not in self.extractors:
            _threads.request(self.threads)
            _threads.apply()
            self.extractors[name] = get_extractor(name)
        ex = self.extractors[name]
        frames = ex.embed_frames(prepared)
        emb = np.asarray(ex.embed(prepared))
        post = np.asarray(ex.posteriors(prepared)) if ex.has_posteriors else None
        return frames, emb, post


class RayFeatures:
    """The actors of one evaluation; ``compute(ex, prepared)`` -> (frames, embeddings, posteriors or None)."""

    def __init__(self, address: str | None, actors: int | None = None, actor_cpus: int = 1):
        from ..numba_warm import warm

        warm()  # local actors share this installation's numba cache: compiled once, before they start
        self.ray, self.started = connect(address)
        if actors is None:
            actors = max(1, int(float(self.ray.cluster_resources().get("CPU", 1.0)) // actor_cpus))
        cls = self.ray.remote(num_cpus=actor_cpus, max_restarts=2, max_task_retries=2)(FeatureWorker)
        self.pool = [cls.remote(actor_cpus) for _ in range(actors)]

    def compute(self, ex, prepared: list) -> tuple:
        k = min(len(self.pool), len(prepared))
        bounds = np.linspace(0, len(prepared), k + 1).astype(int)
        futures = [a.features.remote(ex.name, prepared[bounds[i]:bounds[i + 1]]) for i, a in enumerate(self.pool[:k])]
        try:
            parts = self.ray.get(futures)
        except Exception as e:  # noqa: BLE001
            inner = getattr(e, "cause", None)
            if isinstance(inner, ModelError):  # the extractor's weights are missing there: reported as unavailable
                raise inner from None
            raise FoleyError(f"a Ray actor failed extracting '{ex.name}' features: {cause(e)}") from None
        frames = [f for p in parts for f in p[0]]
        emb = np.concatenate([p[1] for p in parts])
        post = np.concatenate([p[2] for p in parts]) if parts[0][2] is not None else None
        return frames, emb, post

    def close(self) -> None:
        for a in self.pool:
            self.ray.kill(a)
        if self.started:
            self.ray.shutdown()
