"""The token LM: our codec + MiniLM + a transformers ``MusicgenForCausalLM``, loaded from a model folder.

A model folder::

    foley.json           {"family": "lm", ...}: rate, channels, window, defaults, chunked-decoding settings
    codec/               our codec: a transformers EncodecModel folder, or a MelCodec folder (mel RVQ + vocoder/),
                         each with foley_codec.json
    decoder/             transformers MusicgenForCausalLM (config.json + model.safetensors)
    text_projection/     config.json + model.safetensors: Linear(text dim -> decoder width)

``text_projection`` is MusicGen's ``enc_to_dec_proj``; MiniLM (the text encoder) comes from its pip package
and is not copied. :meth:`TokenLM.composite` assembles transformers' ``MusicgenForConditionalGeneration``
from the same parts (its own ``generate`` works unchanged); our pipeline calls the decoder's ``generate``
with precomputed text states so it can stream, continue from codes and slide a context window.

Shapes: codes are int64 [K, F] with K = channels x codebooks (stereo rows interleave L0, R0, L1, R1, ...),
F frames at ``frame_rate``; text states [B, L, d] with mask [B, L].
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ...audio import Audio
from ...codec.loaders import load_folder
from ...codec.model import FoleyCodec
from ...codec.storage import load_model, load_state_strict, save_model
from ...errors import ModelError
from ...formats import FORMATS, check_format
from ...fsutil import write_json_atomic
from ...hashing import folder_hash
from ...text import MINILM, get_text_encoder
from . import decode as fast

LM_FORMAT = FORMATS["lm"]
SAMPLING_DEFAULTS = {"guidance_scale": 3.0, "top_k": 250, "top_p": 0.0, "temperature": 1.0}
# stereo models: draw each codebook's left and right code with shared noise (sampling.CoupledStereoSampling)
COUPLED_DEFAULT = True
TEXT_CACHE = 32  # TokenLM.condition: results kept (a few kB each)
LOOP_ENV = "FOLEY_LM_LOOP"  # "generate": transformers' generate() instead of the fast loop (same codes; comparisons)
PROJECTION_MODEL_TYPE = "foley_text_projection"  # text_projection/config.json: transformers' AutoModel (foley.hf)


@dataclass
class LMConfig:
    """What foley.json holds besides the transformers folders."""

    sample_rate: int
    channels: int
    frame_rate: float
    window_seconds: float
    max_duration: float = 60.0
    text_encoder: str = MINILM
    defaults: dict = field(default_factory=lambda: dict(SAMPLING_DEFAULTS))
    decode: dict = field(default_factory=lambda: {"chunk_frames": 10, "max_chunk_frames": 50, "context_frames": 25})
    context_seconds: float | None = None  # long-form: codes kept as the prompt of the next window
    # long-form: frames sampled at the end of every window but the last and then dropped (the next window samples
    # them again after its context); None = max_delay - 1, the frames whose codes saw the delay pattern's closing pad
    discard_frames: int | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> LMConfig:
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            check_format(path.parent, "lm", d)
            return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
        except (OSError, json.JSONDecodeError, TypeError, KeyError) as e:
            raise ModelError(f"{path}: invalid foley.json ({e})") from None

    def to_dict(self) -> dict:
        return {"family": "lm", "format": LM_FORMAT, **asdict(self)}


class TokenLM:
    """Loaded parts of an LM folder and the operations between text, audio and codes."""

    def __init__(self, codec: FoleyCodec, decoder, projection: torch.nn.Linear, cfg: LMConfig,
                 folder: Path | None = None):
        self.codec, self.decoder, self.projection, self.cfg = codec, decoder.eval(), projection.eval(), cfg
        self.folder = Path(folder) if folder is not None else None
        self.text = get_text_encoder(cfg.text_encoder)
        if codec.sample_rate != cfg.sample_rate:
            raise ModelError(f"codec rate {codec.sample_rate} Hz differs from the LM's {cfg.sample_rate} Hz")
        dc = decoder.config
        if dc.num_codebooks % cfg.channels or dc.audio_channels != cfg.channels:
            raise ModelError(f"decoder has {dc.num_codebooks} codebooks for {dc.audio_channels} channel(s); "
                             f"foley.json says {cfg.channels}")
        if dc.vocab_size != codec.codebook_size or dc.num_codebooks // cfg.channels > codec.num_quantizers:
            raise ModelError("decoder vocabulary or codebook count does not match the codec")
        self._hash: str | None = None
        self._composite = None
        self._text_cache: OrderedDict = OrderedDict()
        self._text_lock = threading.Lock()
        self.backend, self.onnx_session, self.quantized = "torch", None, None  # accel.use_onnx: steps in onnxruntime

    # --- sizes -----------------------------------------------------------------------------------
    @property
    def num_codebooks(self) -> int:
        """Rows of the token streams (channels x codebooks per channel)."""
        return int(self.decoder.config.num_codebooks)

    @property
    def n_q(self) -> int:
        return self.num_codebooks // self.cfg.channels

    @property
    def pad(self) -> int:
        return int(self.decoder.config.pad_token_id)

    @property
    def max_delay(self) -> int:
        return self.n_q - 1

    def frames(self, seconds: float) -> int:
        return math.ceil(seconds * self.cfg.frame_rate - 1e-9)

    @property
    def window_frames(self) -> int:
        return self.frames(self.cfg.window_seconds)

    @property
    def context_frames(self) -> int:
        ctx = self.cfg.context_seconds if self.cfg.context_seconds is not None else self.cfg.window_seconds / 2
        return max(1, min(self.window_frames - 1, self.frames(ctx)))

    @property
    def discard_frames(self) -> int:
        """Frames dropped at the end of each long-form window but the last (at least one frame is kept).

        Sampling a window ends with the delay pattern's closing steps: codebook k of the last frames is drawn
        while padding stands where later frames' lower codebooks would be (frames F - k + 1 .. F - 1 of a
        window of F, for k up to ``max_delay``). Those codes are drawn as at the end of a training window, and
        as context of the next window they start it from an ending: measured on starter-lm, 19 % of window
        boundaries had a spectral change above the clip's 95th percentile with them kept, about the chance rate
        (5-7 %) with 1 to 4 frames dropped (bench/seams.py)."""
        d = self.cfg.discard_frames
        d = max(0, self.max_delay - 1) if d is None else int(d)
        return max(0, min(d, self.window_frames - self.context_frames - 1))

    # --- folders ---------------------------------------------------------------------------------
    @classmethod
    def from_folder(cls, folder: str | Path) -> TokenLM:
        from transformers import MusicgenDecoderConfig, MusicgenForCausalLM

        folder = Path(folder)
        cfg_path = folder / "foley.json"
        if not cfg_path.is_file():
            raise ModelError(f"{folder}: not a foley LM folder (no foley.json)")
        cfg = LMConfig.load(cfg_path)
        codec = load_folder(folder / "codec")
        decoder = load_model(MusicgenDecoderConfig, MusicgenForCausalLM, folder / "decoder")
        projection = load_projection(folder / "text_projection")
        lm = cls(codec, decoder, projection, cfg, folder)
        _generation_defaults(lm.decoder)
        return lm

    def save(self, folder: str | Path, dtype: str = "float32") -> Path:
        folder = Path(folder)
        self.codec.save(folder / "codec", dtype)
        save_model(self.decoder, folder / "decoder", dtype)
        save_projection(self.projection, folder / "text_projection", dtype)
        write_json_atomic(folder / "foley.json", self.cfg.to_dict())
        return folder

    def weight_hash(self) -> str:
        if self._hash is None:
            self._hash = folder_hash(self.folder) if self.folder else "unsaved"
        return self._hash

    def composite(self):
        """transformers' ``MusicgenForConditionalGeneration`` over these parts (MiniLM as text encoder)."""
        if self._composite is None:
            if getattr(self.codec, "kind", "encodec") != "encodec":
                raise ModelError("the composite transformers MusicGen needs an EncodecModel codec; this model's "
                                 f"codec is a '{self.codec.kind}' codec (use the LM's own generate)")
            import copy

            from transformers import MusicgenForConditionalGeneration

            # a copy of MiniLM: the composite adopts its text encoder, and the process-wide one must stay as it is
            # (a trace of it after adoption lost its attention mask: foley/onnxtext.py)
            net = MusicgenForConditionalGeneration(text_encoder=copy.deepcopy(self.text.model),
                                                   audio_encoder=self.codec.net, decoder=self.decoder)
            if hasattr(net, "enc_to_dec_proj"):
                net.enc_to_dec_proj.load_state_dict(self.projection.state_dict())
            net.generation_config = self.decoder.generation_config
            self._composite = net.eval()
        return self._composite

    # --- text ------------------------------------------------------------------------------------
    @torch.no_grad()
    def condition(self, prompts: list[str], negatives: list[str | None] | None = None,
                  guidance: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected text states and mask: [B, L, d], [B, L]; with ``guidance`` the unconditional half
        follows ([2B, ...]): zeros with an empty mask (the training's dropped condition) or the negative
        prompt's states.

        The last ``TEXT_CACHE`` results are kept (variations, redraws, re-rolls and streams of one prompt encode
        it once): treat the tensors as read-only. The key holds the projection's weight versions, so training it
        in place is never answered from the cache."""
        negatives = list(negatives or [None] * len(prompts))
        p = self.projection
        key = (tuple(prompts), tuple(negatives), bool(guidance), id(p.weight), p.weight._version,
               None if p.bias is None else p.bias._version)
        with self._text_lock:
            if key in self._text_cache:
                self._text_cache.move_to_end(key)
                return self._text_cache[key]
        out = self._condition(prompts, negatives, guidance)
        with self._text_lock:
            self._text_cache[key] = out
            while len(self._text_cache) > TEXT_CACHE:
                self._text_cache.popitem(last=False)
        return out

    def _condition(self, prompts: list[str], negatives: list[str | None],
                   guidance: bool) -> tuple[torch.Tensor, torch.Tensor]:
        texts = list(prompts) + [n or "" for n in negatives]
        emb = self.text(texts)
        states = self.projection(emb.tokens) * emb.mask[..., None]
        mask = emb.mask.clone()
        b = len(prompts)
        if not guidance:
            return states[:b], mask[:b]
        for i, n in enumerate(negatives):
            if not n:
                states[b + i] = 0.0
                mask[b + i] = 0
        return states, mask

    # --- audio <-> codes -------------------------------------------------------------------------
    def audio_codes(self, audio: Audio) -> torch.Tensor:
        """Audio -> codes [K, F] at the model's rate and channels (stereo rows interleaved L/R)."""
        a = audio.to_channels(self.cfg.channels) if audio.channels != self.cfg.channels else audio
        if a.sample_rate != self.cfg.sample_rate:
            a = a.resample(self.cfg.sample_rate)
        x = torch.from_numpy(np.ascontiguousarray(a.samples))[:, None]        # [C, 1, T]
        codes = self.codec.encode_tensor(x, self.n_q)                         # [C, n_q, F]
        return codes.transpose(0, 1).reshape(self.num_codebooks, -1)         # L0, R0, L1, R1, ...

    def per_channel(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [K, F] -> [C, n_q, F] (the codec decodes each channel as a batch item)."""
        return codes.reshape(self.n_q, self.cfg.channels, -1).transpose(0, 1)

    def chunk_decoder(self, batch: int):
        """The codec's chunked decoder with this model's settings (streaming and non-streaming alike)."""
        d = self.cfg.decode
        return self.codec.chunk_decoder(int(d["chunk_frames"]), int(d["context_frames"]), batch,
                                        d.get("max_chunk_frames"))

    # --- sampling --------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, states: torch.Tensor, mask: torch.Tensor, frames: int, seed: int, sampling: dict,
               prompt: torch.Tensor | None = None, streamer=None, on_step=None, control=None) -> torch.Tensor:
        """Sample ``frames`` new frames after ``prompt`` codes [K, P] -> codes [K, P + frames].

        ``states``/``mask`` come from :meth:`condition` (doubled when guidance > 1). Seeds the global torch
        generator with ``seed`` first (transformers' sampler has no per-call generator). ``on_step(i, n)`` is
        called after each of the n = frames + delay sampling steps. ``control``: ``(decoder, frames)`` of the
        control adapter (:mod:`.conditioning`): its decoder samples, with ``frames`` [B, N, d] added to the input
        of positions 0..N-1 (B as ``states``; N covering the prompt and the new steps)."""
        from .conditioning import added_frames

        decoder, extra = (self.decoder, None) if control is None else control
        with added_frames(decoder, extra):
            return self._sample(decoder, extra, states, mask, frames, seed, sampling, prompt, streamer, on_step)

    def _sample(self, decoder, extra, states, mask, frames, seed, sampling, prompt, streamer, on_step) -> torch.Tensor:
        k = self.num_codebooks
        start = torch.full((k, 1), self.pad, dtype=torch.long)
        ids = start if prompt is None else torch.cat([start, prompt.long()], dim=-1)
        guidance = float(sampling.get("guidance_scale", 1.0))
        kwargs = {"top_k": int(sampling.get("top_k") or 0) or None,
                  "top_p": float(sampling["top_p"]) if sampling.get("top_p") else None,
                  "temperature": float(sampling.get("temperature", 1.0))}
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache

        # the decoder-only generate() would make a self-attention-only cache, into which the cross-attention
        # would then append its keys: give it the encoder-decoder cache the decoder itself builds
        cfg = decoder.config
        cache = EncoderDecoderCache(DynamicCache(config=cfg), DynamicCache(config=cfg))
        if prompt is not None and prompt.shape[-1]:
            self._prefill(ids, states, mask, cache, guidance > 1.0, frames, decoder)
        from transformers import LogitsProcessorList

        from .sampling import CoupledStereoSampling, StepCallback

        processors = LogitsProcessorList()
        if self.cfg.channels > 1 and sampling.get("stereo_coupling", COUPLED_DEFAULT):
            processors.append(CoupledStereoSampling(self.cfg.channels, guidance, kwargs["temperature"],
                                                    kwargs["top_k"] or 0, kwargs["top_p"] or 0.0))
            kwargs = {"top_k": 0, "top_p": None, "temperature": 1.0}  # the processor did them
        if on_step is not None:
            processors.append(StepCallback(on_step, frames + self.max_delay))
        loop = _loop()
        if self.onnx_session is not None and (loop != "fast" or not fast.supported(decoder)):
            raise ModelError(f"--backend onnx runs the fast sampling loop on a plain MusicGen decoder "
                             f"({LOOP_ENV}={loop}, supported: {fast.supported(decoder)}); use --backend torch")
        if loop == "fast" and fast.supported(decoder):
            make_step = fast.Step
            if self.onnx_session is not None:
                from functools import partial

                from .accel import OnnxStep

                make_step = partial(OnnxStep, self.onnx_session)
            if extra is not None:
                from .conditioning import control_step

                make_step = control_step(extra, make_step)
            gc = decoder.generation_config  # what generate() would take where a setting is not passed
            chain = fast.processors(processors, guidance, kwargs["temperature"],
                                    kwargs["top_k"] if kwargs["top_k"] is not None else gc.top_k,
                                    kwargs["top_p"] if kwargs["top_p"] is not None else gc.top_p)
            torch.manual_seed(seed)
            return fast.sample(decoder, ids, states, mask, frames + self.max_delay, chain, guidance > 1.0,
                               streamer, cache, make_step)[0]
        torch.manual_seed(seed)
        out = decoder.generate(
            input_ids=ids, attention_mask=torch.ones(1, ids.shape[-1], dtype=torch.long),
            **{_cache_kwarg(decoder): cache},
            encoder_hidden_states=states, encoder_attention_mask=mask, do_sample=True, logits_processor=processors,
            guidance_scale=guidance if guidance > 1.0 else None, max_new_tokens=frames + self.max_delay,
            num_return_sequences=1, streamer=streamer, **{k_: v for k_, v in kwargs.items() if v is not None})
        return out[0]

    def _prefill(self, ids: torch.Tensor, states, mask, cache, guided: bool, frames: int, decoder=None) -> None:
        """Run the delayed prompt columns but the last through the decoder into ``cache``.

        MusicGen's ``prepare_inputs_for_generation`` feeds only the last column of ``input_ids`` once it has a
        cache object, and ``generate`` always has one (ours, or one it builds), so without this the decoder saw
        the start token's slot filled by the prompt's last column and nothing before it: a continuation window
        ignored its context (measured: the first forward got 1 column over an empty cache for a 47-frame
        prompt). With the cache holding the columns before the last, that last column lands at its true
        position and attends to the whole prompt, as in training."""
        delayed, _ = decoder.build_delay_pattern_mask(ids, self.pad, max_length=ids.shape[-1] + frames
                                                      + self.max_delay)
        head = delayed[:, :-1]                                         # [K, P]: start token + prompt, delayed
        if guided:
            head = head.repeat((2, 1))                                 # the guidance's unconditional half
        b = head.shape[0] // self.num_codebooks
        decoder(input_ids=head, attention_mask=torch.ones(b, head.shape[-1], dtype=torch.long),
                encoder_hidden_states=states, encoder_attention_mask=mask, **{_cache_kwarg(decoder): cache},
                use_cache=True)


def _loop() -> str:
    """Which sampling loop :meth:`TokenLM.sample` runs: ``fast`` (:mod:`.decode`, the default; same codes) or
    ``generate`` (transformers' ``MusicgenForCausalLM.generate``), from ``FOLEY_LM_LOOP``."""
    value = os.environ.get(LOOP_ENV, "fast").strip().lower() or "fast"
    if value not in ("fast", "generate"):
        raise ModelError(f"{LOOP_ENV}={value}: expected 'fast' or 'generate'")
    return value


def _cache_kwarg(decoder) -> str:
    """The name ``forward`` takes the KV cache by: ``past_key_values`` up to transformers 5.23, ``cache`` from 5.24."""
    import inspect

    params = inspect.signature(decoder.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def new_decoder(codec: FoleyCodec, channels: int, r: dict | None = None):
    """A random ``MusicgenForCausalLM`` over ``codec``'s codebooks (``r``: width, layers, heads, n_q...)."""
    from transformers import MusicgenDecoderConfig, MusicgenForCausalLM

    r = r or {}
    n_q = int(r.get("n_q", codec.num_quantizers))
    if not 1 <= n_q <= codec.num_quantizers:
        raise ModelError(f"the LM cannot model {n_q} codebooks of a {codec.num_quantizers}-codebook codec")
    width = int(r.get("hidden_size", 256))
    v = codec.codebook_size
    cfg = MusicgenDecoderConfig(
        vocab_size=v, num_codebooks=n_q * channels, audio_channels=channels, hidden_size=width,
        num_hidden_layers=int(r.get("layers", 4)), num_attention_heads=int(r.get("heads", max(1, width // 64))),
        ffn_dim=int(r.get("ffn_dim", 4 * width)), max_position_embeddings=int(r.get("max_positions", 2048)),
        dropout=float(r.get("dropout", 0.1)), attention_dropout=0.0, activation_dropout=0.0,
        pad_token_id=v, bos_token_id=v, decoder_start_token_id=v, eos_token_id=None, tie_word_embeddings=False)
    decoder = MusicgenForCausalLM(cfg)
    _generation_defaults(decoder)
    return decoder


def _generation_defaults(decoder) -> None:
    """Special tokens for MusicGen sampling: start and padding are the extra embedding ``vocab_size``."""
    g, v = decoder.generation_config, decoder.config.vocab_size
    g.pad_token_id = g.bos_token_id = g.decoder_start_token_id = v
    g.eos_token_id = None


def save_projection(proj: torch.nn.Linear, folder: Path, dtype: str) -> None:
    from safetensors.torch import save_file

    from ...fsutil import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if dtype == "float16" else v).contiguous() for k, v in proj.state_dict().items()}
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file(state, str(tmp))
    write_json_atomic(folder / "config.json", {"model_type": PROJECTION_MODEL_TYPE, "in_features": proj.in_features,
                                               "out_features": proj.out_features})


def load_projection(folder: Path) -> torch.nn.Linear:
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        proj = torch.nn.Linear(int(cfg["in_features"]), int(cfg["out_features"]))
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise ModelError(f"{folder}: missing or invalid config.json of the text projection") from None
    load_state_strict(proj, folder / "model.safetensors")
    return proj.eval()
