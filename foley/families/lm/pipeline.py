"""The token-LM Generator: text to audio, audio continuation, long-form and streaming.

Every output is sampled on its own after seeding (transformers' sampler has one global generator), so a
seed gives the same sound in any batch; variation j uses seed + j, window w of a long piece seed + 7919 w
(:mod:`foley.editing`, which also holds the crossfade).
Codes become audio through :class:`~foley.codec.model.ChunkDecoder` in fixed chunks, whether streamed or
not, so the streamed chunks of a request concatenate to exactly the non-streamed output, unless ``generate``
redrew an inaudible result (RMS under ``silent_dbfs``) from a derived seed, which a stream cannot take back;
the sidecar then names the seed that was used. Peaks over -3 dBFS are soft-clipped sample by sample
(:func:`soft_clip`), identically in both paths.

Long-form: past the training window, each new window is prompted with the last ``context_seconds`` of codes
(token-level overlap; the prompt really reaches the decoder: :meth:`TokenLM._prefill`), every window but the
last drops its last ``discard_frames`` (codes drawn by the delay pattern's closing steps, which the next window
samples again), and the whole code stream is decoded continuously. ``bench/seams.py`` measures the joins.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ...audio import Audio
from ...capabilities import Capabilities, Setting
from ...editing import CROSSFADE_SECONDS, TOKEN_TASKS, extended_length, seed_of, splice_samples, window_seed
from ...errors import RequestError
from ...generator import EXTEND_SECONDS, Generator, ModelCard, card_from_config, read_foley_json, record_used
from ...request import GenerationRequest, make_request
from .model import TokenLM

MELODY = "melody"  # the task a control adapter adds: a new sound following a reference's melody (chroma)
KNEE, CEILING = 0.7079, 0.98  # soft clip: linear up to -3 dBFS, then bending towards 0.98 (never reaching it)


def soft_clip(x: np.ndarray) -> np.ndarray:
    """Sample-wise saturation (no state, so streaming and whole-clip decoding agree): identity up to ``KNEE``,
    then ``KNEE + (CEILING - KNEE) tanh(excess / (CEILING - KNEE))``, continuous in value and slope."""
    a = np.abs(x)
    over = a > KNEE
    if not over.any():
        return x
    span = CEILING - KNEE
    y = x.copy()
    y[over] = np.sign(x[over]) * (KNEE + span * np.tanh((a[over] - KNEE) / span))
    return y


class LMGenerator(Generator):
    """Generator over a :class:`TokenLM` folder. ``sampling`` overrides the folder's top-k/top-p/temperature."""

    def __init__(self, lm: TokenLM, card: ModelCard, sampling: dict | None = None):
        self.lm, self.card = lm, card
        # progress of non-streamed sampling: on_step(i, n) per sampled frame of the whole request (the server)
        self.on_step = None
        self.sampling = {**lm.cfg.defaults, **{k: v for k, v in (sampling or {}).items() if v is not None}}
        self._control = None  # the control adapter (conditioning.Control), loaded on first use

    @classmethod
    def from_folder(cls, folder: str | Path, card: ModelCard | None = None, top_k: int | None = None,
                    top_p: float | None = None, temperature: float | None = None,
                    vocoder: str | None = None, device: str | None = None, backend: str = "torch",
                    quantize: str | None = None, onnx_dir: str | Path | None = None) -> LMGenerator:
        """``backend="onnx"``: decoder steps in onnxruntime, from ``onnx_dir`` or exported once into the cache, with
        ``quantize="int8"`` an int8 copy (:mod:`foley.families.lm.accel`; other codes for a seed than torch's)."""
        from ...device import cpu_only
        from . import accel

        cpu_only("token models of this family", device)  # FOLEY_DEVICE / --device: refused, not ignored
        if vocoder not in (None, "auto"):
            raise RequestError(f"--vocoder {vocoder}: token models decode with their own codec; drop it")
        if top_k is not None and top_k < 0 or top_p is not None and not 0 <= top_p <= 1:
            raise RequestError("top-k must be >= 0 and top-p between 0 and 1")
        if temperature is not None and temperature <= 0:
            raise RequestError(f"temperature must be positive, got {temperature}")
        if backend not in accel.BACKENDS:
            raise RequestError(f"unknown backend '{backend}'; choose {', '.join(accel.BACKENDS)}")
        if quantize is not None and backend != "onnx":
            raise RequestError(f"--quantize {quantize} for token models runs in onnxruntime: add --backend onnx")
        if onnx_dir is not None and backend != "onnx":
            raise RequestError("--onnx-dir needs --backend onnx")
        lm = TokenLM.from_folder(folder)
        if backend == "onnx":
            accel.use_onnx(lm, onnx_dir, quantize)
        cfg = lm.cfg
        card = card or ModelCard(name=Path(folder).name, family="lm", weights=str(folder), sample_rate=cfg.sample_rate,
                                 channels=cfg.channels, max_duration=cfg.max_duration, tasks=tasks_of(folder),
                                 licence=cfg.extra.get("licence", "unknown"), defaults=dict(cfg.defaults))
        return cls(lm, card, {"top_k": top_k, "top_p": top_p, "temperature": temperature})

    def export_onnx(self, out: str | Path) -> Path:
        """``foley export onnx``: the graph ``--backend onnx`` runs, checked against torch, written into ``out``."""
        from . import accel

        return accel.export_onnx(self.lm, out)

    def runtime(self) -> dict:
        rt = {"backend": getattr(self.lm, "backend", "torch"), "quantize": getattr(self.lm, "quantized", None)}
        return {k: v for k, v in rt.items() if v not in (None, "torch")}

    def weight_hash(self) -> str:
        from ...adapters import weight_tag

        return weight_tag(self.lm.weight_hash(), self.adapters)

    def lora_target(self):
        if self.lm.backend != "torch":
            raise RequestError("LoRA adapters merge into float torch weights: drop --backend onnx / --quantize")
        return self.lm.decoder

    @classmethod
    def capabilities_for(cls, card: ModelCard) -> Capabilities:
        """With a control adapter (its card then lists the ``melody`` task) the model follows control curves
        (``controls``, ``like``, the prompt's shape words) through it; it never steers (no ``steer`` setting)."""
        from ...capabilities import CONTROLS
        from ...curves import NAMES

        follows = (Setting(CONTROLS, choices=NAMES, help="control curves, read by the model's control adapter (no "
                                                         "steering)"),) if MELODY in card.tasks else ()
        return Capabilities(
            tasks=tuple(card.tasks), max_duration=card.max_duration, streams=True, progress="frames",
            settings=(Setting("guidance_scale", card.defaults.get("guidance_scale", 3.0), 0.0, 30.0,
                              help="classifier-free guidance (<= 1: off)"),
                      Setting("negative_prompt", help="the guidance's other branch"), *follows))

    @classmethod
    def read_card(cls, folder) -> ModelCard:
        cfg = read_foley_json(folder)
        return card_from_config(folder, cfg, "lm", cfg["sample_rate"], tasks_of(folder), max_duration=60.0)

    # --- the control adapter (conditioning.py) ---------------------------------------------------
    @property
    def has_control(self) -> bool:
        """The folder holds a control adapter trained for this decoder."""
        from .conditioning import has_adapter

        return self.lm.folder is not None and has_adapter(self.lm.folder)

    def control_adapter(self):
        """The loaded adapter (:class:`~.conditioning.Control`), once; None without one."""
        if self._control is None and self.has_control:
            from .conditioning import load_adapter

            self._control = load_adapter(self.lm.folder, self.lm.decoder)
        return self._control

    def _uses_adapter(self, r: GenerationRequest) -> bool:
        """The request's curves (or melody) drive the control adapter: it has one, the request allows it, and the
        decoder runs in torch (the exported step graph takes no added frames)."""
        if not (r.control_adapter and self.has_control):
            return False
        if self.lm.backend != "torch":
            if r.steering or r.task == MELODY:  # asked for in so many words: say why it cannot be done
                raise RequestError("the control adapter runs in torch: drop --backend onnx / --quantize for control "
                                   "curves and melodies")
            return False  # the prompt's shape words alone: sampled as without an adapter
        return True

    def _controlled(self, r: GenerationRequest) -> bool:
        """The request has target curves (explicit, an imitation, or, with an adapter, the prompt's shape words)."""
        if r.steering:
            return True
        if r.task != "generate" or not r.prior or not self._uses_adapter(r):
            return False
        from ... import curves as cv

        return bool(cv.prior(r.prompt))

    def _plan(self, r: GenerationRequest, melody: Audio | None = None):
        """(conditioning features or None, the sidecar's ``control`` record without adherence, targets)."""
        from ... import curves as cv

        targets = cv.request_targets(r)
        record: dict = {"targets": targets.to_dict()}
        feats = None
        if self._uses_adapter(r):
            from .conditioning import target_features

            control = self.control_adapter()
            feats = target_features(targets.curves, r.duration, melody)
            record["method"] = "control adapter (conditioning frames read through LoRA of the decoder)"
            record["adapter"] = {"weights": control.card["weights"], "steps": control.card.get("steps"),
                                 "scale": 1.0}
        else:
            record["method"] = "none (measured only)"
        if melody is not None:
            record["melody"] = {"seconds": round(melody.duration, 3)}
        return feats, record, targets

    # --- settings ------------------------------------------------------------------------------
    def _settings(self, r: GenerationRequest) -> dict:
        s = dict(self.sampling)
        if r.guidance_scale is not None:
            s["guidance_scale"] = r.guidance_scale
        return s

    # --- generation ----------------------------------------------------------------------------
    def _generate(self, requests: list[GenerationRequest], melody: Audio | None = None) -> list[Audio]:
        import time

        from ... import curves as cv

        outs = []
        for r in requests:
            base = seed_of(r)
            settings = self._settings(r)
            controlled = melody is not None or self._controlled(r)
            feats, record, targets = self._plan(r, melody) if controlled else (None, None, None)
            for j in range(r.num_variations):
                started = time.perf_counter()

                def draw(seed, r=r, settings=settings, feats=feats):
                    return np.concatenate(list(self._chunks(r, seed, settings, streaming=False, feats=feats)),
                                          axis=-1)
                samples, seed, redrawn = self._draw_audible(draw, base + j)
                audio = self._finish(samples, r, seed, j, settings)
                if redrawn:
                    audio.meta["redrawn"] = redrawn
                if record is not None:
                    rec = copy.deepcopy(record)
                    rec["adherence"] = cv.adherence(targets.curves, audio)
                    if targets.qualities:
                        rec["qualities"] = cv.quality_adherence(targets.qualities, audio)
                    if melody is not None:
                        rec["melody"].update(cv.melody_adherence(melody, audio))
                    rec["seconds"] = round(time.perf_counter() - started, 2)
                    audio.meta["control"] = rec
                outs.append(audio)
        return outs

    def stream(self, prompt: str | GenerationRequest, **kwargs) -> Iterator[Audio]:
        """Yield audio chunks (Audio [C, n] at the model rate) while tokens are sampled; concatenated they
        equal ``generate(...)[0]`` for the same request and seed. One output per call (no variations)."""
        r = prompt if isinstance(prompt, GenerationRequest) else make_request(prompt=prompt, **kwargs)
        if r.task != "generate" or r.num_variations != 1:
            raise RequestError("streaming makes one sound from text: task 'generate', one variation")
        self.check(r)
        seed, settings = seed_of(r), self._settings(r)
        feats, record, _ = self._plan(r) if self._controlled(r) else (None, None, None)
        meta: dict = {}

        def describe():  # once per stream, while the first frames are sampled (package metadata: ~30 ms a call)
            if not meta:
                meta.update(self._meta(r, seed, 0, settings))
                if record is not None:
                    meta["control"] = record  # (no adherence: the whole sound is not there yet)

        offset = 0
        for i, chunk in enumerate(self._chunks(r, seed, settings, streaming=True, on_wait=describe, feats=feats)):
            describe()
            audio = Audio(np.ascontiguousarray(chunk, np.float32), self.sample_rate)
            audio.meta = {**copy.deepcopy(meta), "chunk": i, "offset": offset}
            offset += chunk.shape[-1]
            yield audio

    def _chunks(self, r: GenerationRequest, seed: int, settings: dict, streaming: bool,
                on_wait=None, feats: np.ndarray | None = None) -> Iterator[np.ndarray]:
        """Samples [C, n] chunk by chunk, ``r.duration`` seconds in all. ``on_wait()`` (streaming) runs once while
        the sampler thread draws the first frames. ``feats``: the control adapter's features over the sound."""
        lm = self.lm
        total = int(round(r.duration * self.sample_rate))
        dec = lm.chunk_decoder(lm.cfg.channels)
        made = 0
        blocks = self._blocks(r, seed, settings, lm.frames(r.duration), streaming, None, on_wait, feats)
        for block in _then_none(blocks):
            out = dec.flush() if block is None else dec.push(lm.per_channel(block))
            out = soft_clip(np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0))[:, : total - made]
            if out.shape[-1]:
                made += out.shape[-1]
                yield out.astype(np.float32)
        if made < total:  # never expected: the codes cover ceil(duration * frame rate) frames
            yield np.zeros((lm.cfg.channels, total - made), np.float32)

    def windows(self, frames: int, prompt_frames: int = 0) -> list[tuple[int, int, int]]:
        """The long-form plan of ``frames`` new code frames: (context, sampled, kept) frames per window, in order.

        A window holds at most the training window of frames; the first one has ``prompt_frames`` of context
        (0 for text to audio), each later one the last ``context_frames`` codes kept so far. Every window but the
        last samples as many frames as fit and keeps all but its last ``discard_frames``
        (:attr:`TokenLM.discard_frames`: codes drawn by the delay pattern's closing steps), which the next
        window samples again after its context; the last samples only what is still needed."""
        lm, plan, made = self.lm, [], 0
        ctx = min(prompt_frames, lm.context_frames)
        while made < frames:
            room = lm.window_frames - ctx
            if frames - made <= room:
                plan.append((ctx, frames - made, frames - made))
            else:
                plan.append((ctx, room, room - lm.discard_frames))
            made += plan[-1][2]
            ctx = min(lm.context_frames, ctx + plan[-1][2])
        return plan

    def seams(self, duration: float) -> list[float]:
        """Seconds at which a window of a ``duration``-second sound starts sampling after the previous one's codes
        (text to audio): where long-form joins could show."""
        starts = np.cumsum([kept for _, _, kept in self.windows(self.lm.frames(duration))])[:-1]
        return [float(f / self.lm.cfg.frame_rate) for f in starts]

    def _blocks(self, r: GenerationRequest, seed: int, settings: dict, frames: int, streaming: bool,
                prompt: torch.Tensor | None, on_wait=None, feats: np.ndarray | None = None) -> Iterator[torch.Tensor]:
        """New code frames [K, n] in order (the kept frames of each window of :meth:`windows`); every window
        after the first is prompted with the last ``context_frames`` codes before it. With ``feats`` (the control
        adapter's features over the whole sound) each window is sampled by the adapter's decoder with the
        conditioning frames of its own span of the sound."""
        from .stream import stream_frames

        lm = self.lm
        guided = float(settings["guidance_scale"]) > 1.0
        states, mask = lm.condition([r.prompt], [r.negative_prompt], guidance=guided)
        ctx = None if prompt is None else prompt[:, -lm.context_frames:]
        made = 0
        for window, (p, n, keep) in enumerate(self.windows(frames, 0 if ctx is None else ctx.shape[-1])):
            s = window_seed(seed, window)
            control = None
            if feats is not None:  # position q of this window draws frame made - p + q of the sound
                adapter = self.control_adapter()
                control = (adapter.decoder, adapter.frames(feats, 1 + p + n + lm.max_delay, made - p, guided))
            if streaming:
                parts = []
                for block in stream_frames(lm, states, mask, n, s, settings, prompt=ctx, keep=keep,
                                           on_wait=on_wait if window == 0 else None, control=control):
                    parts.append(block)
                    yield block
                new = torch.cat(parts, dim=-1)
            else:
                hook = None
                if self.on_step is not None:
                    def hook(i, steps, done=made, keep=keep, fn=self.on_step):
                        if i <= keep:  # once per kept frame (the last steps complete earlier frames)
                            fn(done + i, frames)
                new = lm.sample(states, mask, n, s, settings, prompt=ctx, on_step=hook, control=control)[:, p:p + keep]
                yield new
            ctx = (new if ctx is None else torch.cat([ctx, new], dim=-1))[:, -lm.context_frames:]
            made += keep

    def _finish(self, samples: np.ndarray, r: GenerationRequest, seed: int, variation: int, settings: dict) -> Audio:
        audio = Audio(np.ascontiguousarray(samples, np.float32), self.sample_rate)
        audio.meta = self._meta(r, seed, variation, settings)
        return audio

    def _meta(self, r: GenerationRequest, seed: int, variation: int, settings: dict) -> dict:
        return record_used(self.provenance(r, seed, variation), {
            **settings, "frame_rate": self.lm.cfg.frame_rate, "window_seconds": self.lm.cfg.window_seconds})

    # --- continuation --------------------------------------------------------------------------
    def _edit(self, audio: Audio, r: GenerationRequest) -> list[Audio]:
        """Continue ``audio`` to ``r.duration`` seconds in all (default: 5 s more); the input is kept
        bit-exact up to its last 50 ms, which crossfade into the continuation. Task ``melody`` (with a control
        adapter): a new sound of ``r.duration`` s (default: the input's length) from the prompt, following the
        input's melody (its chroma, MusicGen-melody style), plus any target curves of the request."""
        if r.task == MELODY:
            return self._melody(audio, r)
        src = audio.to_channels(self.channels) if audio.channels != self.channels else audio
        if src.sample_rate != self.sample_rate:
            src = src.resample(self.sample_rate)
        total = extended_length(src, r.duration, self.card.max_duration, EXTEND_SECONDS)
        settings = self._settings(r)
        hop = self.lm.codec.hop_length
        whole = (src.frames // hop) * hop  # the prompt ends on a frame border: no half-silent last frame
        if whole < 2 * hop:
            raise RequestError(f"the input is too short to continue ({src.duration:.3f} s); give at least "
                               f"{2 * hop / self.sample_rate:.2f} s")
        codes = self.lm.audio_codes(src.pad_or_trim(whole))               # [K, P]
        keep = codes[:, -self.lm.context_frames:]
        overlap = min(keep.shape[-1], -(-int(CROSSFADE_SECONDS * self.sample_rate) // hop) + 1)
        start = (codes.shape[-1] - overlap) * hop                         # first decoded sample (input timeline)
        new_seconds = total - start / self.sample_rate
        rr = r.model_copy(update={"duration": new_seconds})
        outs, base = [], seed_of(r)
        for j in range(r.num_variations):
            gen = np.concatenate(list(self._continue_chunks(rr, base + j, settings, keep, overlap)), axis=-1)
            out = np.zeros((self.channels, int(round(total * self.sample_rate))), np.float32)
            out[:, start:start + gen.shape[-1]] = soft_clip(np.nan_to_num(gen[:, : out.shape[-1] - start]))
            xf = int(CROSSFADE_SECONDS * self.sample_rate)  # the input's last xf samples fade into the new
            joined = splice_samples(src.samples, out, src.frames - xf, out.shape[-1], xf)
            outs.append(self._finish(joined, r, base + j, j, settings))
        return outs

    def _melody(self, audio: Audio, r: GenerationRequest) -> list[Audio]:
        if r.strength is not None:
            raise RequestError("melody conditioning has no strength setting; drop --strength")
        if not self._uses_adapter(r):
            raise RequestError(f"model '{self.card.name}' follows a melody through its control adapter: "
                               + ("drop --no-control-adapter" if self.has_control else "it has none (foley train "
                                  "control)"))
        melody = audio.to_mono()
        if melody.sample_rate != self.sample_rate:
            melody = melody.resample(self.sample_rate)
        return self._generate([r], melody=melody)

    def _continue_chunks(self, r, seed, settings, prompt: torch.Tensor, overlap: int) -> Iterator[np.ndarray]:
        """Decoded audio from the last ``overlap`` prompt frames on: those frames' audio, then the new."""
        lm = self.lm
        dec = lm.chunk_decoder(lm.cfg.channels)
        dec.prime(lm.per_channel(prompt[:, :-overlap]))
        yield dec.push(lm.per_channel(prompt[:, -overlap:]))
        frames = lm.frames(r.duration) - overlap
        for block in self._blocks(r, seed, settings, max(frames, 0), False, prompt):
            yield dec.push(lm.per_channel(block))
        yield dec.flush()


def tasks_of(folder) -> tuple[str, ...]:
    """A folder's tasks: the token tasks, and ``melody`` when it holds a control adapter for its own decoder."""
    from .conditioning import has_adapter

    return TOKEN_TASKS + ((MELODY,) if folder is not None and has_adapter(folder) else ())


def _then_none(it):
    yield from it
    yield None
