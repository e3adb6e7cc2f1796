"""Token frames as they are sampled: transformers' ``generate`` runs in a thread and a streamer hands
whole frames (all K codebooks, after the delay pattern) to the caller's iterator.

The streamer never touches the random generator, so a streamed run samples exactly the codes a plain
:meth:`~foley.families.lm.model.TokenLM.sample` call gives with the same seed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import torch

from .delay import delays


class _Cancelled(Exception):
    """Raised inside generate() when the consumer stopped iterating."""


class FrameStreamer:
    """A transformers streamer (``put``/``end``) that turns MusicGen's delayed token columns into frames.

    ``put`` first receives the delayed prompt [K, L0] (start token, prompt codes, padding), then one token
    column [K] per step; frame f is whole once the most-delayed codebook's column ``f + 1 + max_delay``
    has arrived. New frames are queued as int64 [K, n] blocks; ``None`` ends the stream.
    """

    def __init__(self, num_codebooks: int, channels: int, prompt_frames: int, new_frames: int):
        self.delay = delays(num_codebooks, channels)
        self.columns: list[torch.Tensor] = []
        self.next_frame = prompt_frames
        self.end_frame = prompt_frames + new_frames
        self.queue: queue.Queue = queue.Queue()
        self.cancelled = False

    def put(self, value: torch.Tensor) -> None:
        if self.cancelled:
            raise _Cancelled
        value = value.reshape(len(self.delay), -1)
        self.columns.extend(value.unbind(-1))
        whole = min(len(self.columns) - 1 - self.delay[-1], self.end_frame)
        if whole > self.next_frame:
            block = torch.stack([torch.stack([self.columns[f + 1 + d][k] for k, d in enumerate(self.delay)])
                                 for f in range(self.next_frame, whole)], dim=-1)
            self.next_frame = whole
            self.queue.put(block)

    def end(self) -> None:
        self.queue.put(None)


def stream_frames(lm, states, mask, frames: int, seed: int, sampling: dict,
                  prompt: torch.Tensor | None = None, keep: int | None = None, on_wait=None,
                  control=None) -> Iterator[torch.Tensor]:
    """Yield the first ``keep`` (default: all) of the ``frames`` new frames after ``prompt`` as int64 blocks
    [K, n] while they are sampled; sampling goes on to ``frames`` (the frames past ``keep`` are dropped).
    ``on_wait()`` runs once in the caller's thread after the sampler thread has started.

    Same arguments as :meth:`TokenLM.sample`; concatenated, the blocks equal ``sample(...)[:, P:P + keep]``."""
    keep = frames if keep is None else min(keep, frames)
    streamer = FrameStreamer(lm.num_codebooks, lm.cfg.channels, 0 if prompt is None else prompt.shape[-1], keep)
    failure: list[BaseException] = []

    def run():
        try:
            lm.sample(states, mask, frames, seed, sampling, prompt=prompt, streamer=streamer, control=control)
        except _Cancelled:
            pass
        except BaseException as e:  # handed to the consumer below
            failure.append(e)
        finally:
            streamer.end()

    thread = threading.Thread(target=run, name="foley-lm-sampler", daemon=True)
    thread.start()
    try:
        if on_wait is not None:
            on_wait()
        while (block := streamer.queue.get()) is not None:
            yield block
    finally:
        streamer.cancelled = True
        thread.join()
    if failure:
        raise failure[0]
