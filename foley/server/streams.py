"""``GET /v1/stream``: audio sent while a streaming-capable model generates it.

The request is validated like a generation submission (:func:`~foley.server.jobs.build_request`), then a thread
takes the model from the worker's :class:`~foley.server.worker.ModelCache`, waits for the process's generation
turn (shared with the worker's jobs) and iterates ``Generator.stream``; each chunk becomes 16-bit PCM (as
``Audio.save`` writes it, by libsndfile) handed to the response. The thread runs at generation speed whatever the
client's speed (a request is at most the server's ``max_duration`` of audio), so it never holds the turn longer
than generating takes; it stops at the next chunk when the client disconnects or the server stops. Streams are
not jobs: no queue, history or files; ``max_streams`` of them may be live at once (429 beyond).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import threading
from collections import deque
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from ..audio import pcm16
from ..errors import FoleyError
from .auth import caller
from .jobs import ApiError, Services, build_request, charge_stream, contract, refund
from .storage import hide_paths

log = logging.getLogger("foley.server")
router = APIRouter(prefix="/v1", dependencies=[Depends(caller)])
PARAMS = ("prompt", "model", "duration", "seed", "guidance_scale", "negative_prompt", "format")
_END = object()


def wav_header(sample_rate: int, channels: int, frames: int) -> bytes:
    """A 44-byte PCM WAV header announcing ``frames`` sample frames (the length the request asks for)."""
    data = frames * channels * 2
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * channels * 2, channels * 2, 16) +
            b"data" + struct.pack("<I", data))


class StreamFailed(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


class Stream:
    """One live stream: a generating thread that hands PCM bytes to an asyncio queue on the server's loop."""

    def __init__(self, hub: StreamHub, alias: str, req, loop: asyncio.AbstractEventLoop):
        self.hub, self.alias, self.req, self.loop = hub, alias, req, loop
        self.queue: asyncio.Queue = asyncio.Queue()
        self.stop_event = threading.Event()
        self.frames = 0  # sample frames generated so far
        self.sample_rate = self.channels = None
        self.thread = threading.Thread(target=self._run, name="foley-stream", daemon=True)

    def stop(self) -> None:
        self.stop_event.set()

    def _emit(self, item) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the event loop is closed: nobody listens any more
            self.stop_event.set()

    def _run(self) -> None:
        reason = "done"
        try:
            gen = self.hub.models.get(self.alias)
            if not gen.capabilities.streams:
                raise StreamFailed(422, self.hub.cannot_stream(self.alias))
            self.sample_rate, self.channels = gen.sample_rate, gen.channels
            with self.hub.models.turn(self.stop_event) as mine:
                if not mine:
                    reason = "stopped"
                    return
                chunks = gen.stream(self.req)
                try:
                    for chunk in chunks:
                        self.frames += chunk.frames
                        self._emit(pcm16(chunk.samples))
                        if self.stop_event.is_set():
                            reason = "stopped"
                            break
                finally:
                    chunks.close()  # stops the model's sampler thread at its next token
        except StreamFailed as e:
            reason = "failed"
            self._emit(e)
        except FoleyError as e:
            reason = "failed"
            self._emit(StreamFailed(422, hide_paths(str(e))))
        except Exception as e:  # a bug or resource problem: the client gets the reason, the server lives
            log.exception("stream of model '%s' failed", self.alias)
            reason = "failed"
            self._emit(StreamFailed(500, hide_paths(" ".join(f"internal error: {type(e).__name__}: {e}".split()))))
        finally:
            self.hub._finished(self, reason)  # recorded before the response can end
            self._emit(_END)


class StreamHub:
    """The live streams of this process: the ``max_streams`` cap, their stop switches, and how the last ones
    ended (``finished``: alias, frames generated, frames asked for, reason done / stopped / failed)."""

    def __init__(self, svc: Services):
        self.svc, self.models = svc, svc.models
        self._lock = threading.Lock()
        self.live: set[Stream] = set()
        self.finished: deque[dict] = deque(maxlen=100)

    def cannot_stream(self, alias: str) -> str:
        able = []
        for a in self.svc.settings.models:
            try:
                caps = contract(self.svc, a)[1]
            except FoleyError:
                continue
            if caps is not None and caps.streams:
                able.append(a)
        hint = f"models on this server that can: {', '.join(able)}" if able else "no model on this server can"
        return f"model '{alias}' cannot stream (it makes whole sounds; use POST /v1/generations); {hint}"

    def open(self, alias: str, req, loop) -> Stream:
        stream = Stream(self, alias, req, loop)
        with self._lock:
            if len(self.live) >= self.svc.settings.max_streams:
                raise ApiError(429, f"{len(self.live)} streams are live, this server's limit; try again when one "
                                    "ends, or use POST /v1/generations")
            self.live.add(stream)
        stream.thread.start()
        return stream

    def _finished(self, stream: Stream, reason: str) -> None:
        total = int(round(stream.req.duration * (stream.sample_rate or 0)))
        with self._lock:
            self.live.discard(stream)
            self.finished.append({"model": stream.alias, "frames": stream.frames, "total": total, "reason": reason})

    def stop_all(self, timeout: float = 30.0) -> None:
        with self._lock:
            live = list(self.live)
        for s in live:
            s.stop()
        for s in live:
            s.thread.join(timeout)


class AudioStream(StreamingResponse):
    """A streaming response that stops its generator however the response ends (done, disconnect, error)."""

    def __init__(self, content, stream: Stream, **kw):
        super().__init__(content, **kw)
        self.stream = stream

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.stream.stop()


async def _next(stream: Stream, request: Request):
    """The stream's next item; stops the stream if the client goes away while waiting for it."""
    while True:
        try:
            return await asyncio.wait_for(stream.queue.get(), 0.25)
        except TimeoutError:
            if await request.is_disconnected():
                stream.stop()
                raise ApiError(499, "the client closed the connection") from None


@router.get("/stream", tags=["generations"], response_class=StreamingResponse,
            summary="Generate with a streaming-capable model and receive the audio while it is made",
            responses={200: {"content": {"audio/L16": {}, "audio/wav": {}},
                             "description": "16-bit little-endian interleaved PCM, or a WAV stream"}})
async def stream_audio(
    request: Request,
    prompt: str = Query(..., description="What the sound should be."),
    model: str | None = Query(None, description="An offered model whose capabilities say it streams."),
    duration: float | None = Query(None, description="Seconds of audio."),
    seed: int | None = Query(None, description="Random if not given; the response's X-Seed says which."),
    guidance_scale: float | None = Query(None),
    negative_prompt: str | None = Query(None),
    format: Literal["pcm", "wav"] = Query("pcm", description="pcm: raw audio/L16; wav: a WAV header, then PCM."),
    owner: str | None = Depends(caller),
):
    """Raw PCM (``audio/L16;rate=R;channels=C``) or a WAV stream; the format is in ``X-Sample-Rate``,
    ``X-Channels``, ``X-Frames`` (sample frames asked for), ``X-Seed``. Validated like ``POST /v1/generations``
    before anything is generated; a model that cannot stream is a 422 naming the models that can."""
    svc: Services = request.app.state.svc
    unknown = sorted(set(request.query_params) - set(PARAMS))
    if unknown:
        raise ApiError(422, f"unknown parameter '{unknown[0]}'; /v1/stream takes {', '.join(PARAMS)}")
    fields = {"prompt": prompt, "model": model, "duration": duration, "seed": seed,
              "guidance_scale": guidance_scale, "negative_prompt": negative_prompt}
    alias, req = await run_in_threadpool(build_request, svc, fields)
    caps = contract(svc, alias)[1]
    hub: StreamHub = request.app.state.streams
    if caps is not None and not caps.streams:
        raise ApiError(422, hub.cannot_stream(alias))
    if req.seed is None:
        import secrets

        req = req.model_copy(update={"seed": secrets.randbelow(2**31)})
    charged = await run_in_threadpool(charge_stream, svc, owner, req)  # the token's limits (429 over them)
    try:
        stream = hub.open(alias, req, asyncio.get_running_loop())
    except ApiError:
        await run_in_threadpool(refund, svc, charged)
        raise
    try:
        first = await _next(stream, request)  # errors before any audio (loading, the model's checks) are statuses
    except BaseException:
        stream.stop()
        await run_in_threadpool(refund, svc, charged)
        raise
    if isinstance(first, StreamFailed) or first is _END:
        await run_in_threadpool(refund, svc, charged)
    if isinstance(first, StreamFailed):
        raise ApiError(first.status, first.detail)
    if first is _END:
        raise ApiError(503, "the server is stopping; try again later")
    rate, channels = stream.sample_rate, stream.channels
    frames = int(round(req.duration * rate))
    headers = {"X-Sample-Rate": str(rate), "X-Channels": str(channels), "X-Frames": str(frames),
               "X-Seed": str(req.seed), "X-Model": alias, "Cache-Control": "no-store"}
    media = "audio/wav" if format == "wav" else f"audio/L16;rate={rate};channels={channels}"

    async def body():
        left = frames * channels * 2  # never more than the header announced
        if format == "wav":
            yield wav_header(rate, channels, frames)
        item = first
        while item is not _END:  # to the end, so the generator finishes rather than being stopped
            if isinstance(item, StreamFailed):  # the status is sent: the stream ends short
                log.warning("stream of model '%s' ended early: %s", alias, item.detail)
                break
            if left > 0:
                yield item[:left]
                left -= len(item)
            item = await stream.queue.get()

    return AudioStream(body(), stream, media_type=media, headers=headers)
