"""The token LM's decoder step in onnxruntime (``backend="onnx"``): the fast loop's :class:`~.decode.Step` as a graph.

On this kind of CPU (AMD EPYC, AVX2, torch's MKL) a decoder step at batch 2 is ~40 matrix products of
[2, 256] x [256, <=1024], small products that onnxruntime's MLAS runs faster than torch's MKL: a whole 10 s
generation 1.56x faster in float, 2.57x with int8 (``python bench/lm_backends.py --threads 1``, docs/benchmarks.md).
:func:`export_onnx` writes ``lm_step.onnx``:
one step for a query of length 1 — token ids of the new column and its position in, logits and the column's
self-attention keys/values out — with the past keys/values and the window's cross-attention keys/values and mask
as inputs. :class:`OnnxStep` keeps the past in zeroed numpy buffers of the window's whole length, handed to
onnxruntime without a copy each step; an additive mask hides the columns not sampled yet, and the new column's own
key and value enter the attention beside the buffer (no concatenation of the growing past, which cost ~0.7 ms a
step at 300 columns).

The numbers are not torch's to the last bit (other kernels), so a seed draws other codes than with the torch
backend: a different, equally likely sound, never the torch backend's sound. ``quantize="int8"`` runs an int8 copy
of the graph (onnxruntime's dynamic quantisation: a quarter of the weight bytes a step reads; its effect on the
sound is measured in bench/codec_lm.py). The export is checked against
:class:`~.decode.Step` logits over several steps before anything is written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from ... import onnxrt
from ...errors import ModelError
from ...fsutil import atomic_path
from . import decode

BACKENDS = ("torch", "onnx")
QUANTIZE = ("int8",)  # onnx backend only: the torch loop's products stay float32
ONNX_FILE, ONNX_META, ONNX_INT8 = "lm_step.onnx", "lm_onnx.json", "lm_step_int8.onnx"
CHECK_TOLERANCE = 2e-3  # max abs difference of the logits (|logit| ~ 10) between onnxruntime and torch


class _StepGraph(torch.nn.Module):
    """:meth:`.decode.Step.logits` with the caches as inputs and outputs (what the exporter traces).

    Inputs: ``ids`` [B, K] int64, ``pos`` [1] int64, ``self_mask`` [1, 1, 1, L] (additive: 0 for the columns
    before ``pos``, -inf after), ``cross_mask`` [B, 1, 1, S] float (additive) and ``cross_keep`` [B, 1, 1, 1] (0 for
    a text with every token masked: torch's attention gives 0 there), then per layer ``past_k``/``past_v``
    [B, H, L, hd], then per layer ``cross_k``/``cross_v`` [B, H, S, hd]. Outputs: logits [B*K, V], then per layer
    ``new_k``/``new_v`` [B, H, 1, hd]."""

    def __init__(self, decoder):
        super().__init__()
        net = decoder.model.decoder
        self.decoder = decoder
        self.k = decoder.config.num_codebooks
        a0 = net.layers[0].self_attn
        self.h, self.hd, self.d = a0.num_heads, a0.head_dim, decoder.config.hidden_size

    def forward(self, ids, pos, self_mask, cross_mask, cross_keep, *caches):
        net = self.decoder.model.decoder
        n = len(net.layers)
        past, cross = caches[:2 * n], caches[2 * n:]
        x = sum(F.embedding(ids[:, c], e.weight) for c, e in enumerate(net.embed_tokens))      # [B, D]
        h = (x + net.embed_positions.weights.index_select(0, pos))[:, None]                     # [B, 1, D]
        new = []
        for i, la in enumerate(net.layers):
            sa, ca = la.self_attn, la.encoder_attn
            y = la.self_attn_layer_norm(h)
            k = sa.k_proj(y).view(-1, 1, self.h, self.hd).transpose(1, 2)                         # [B, H, 1, hd]
            v = sa.v_proj(y).view(-1, 1, self.h, self.hd).transpose(1, 2)
            q = sa.q_proj(y).view(-1, 1, self.h, self.hd).transpose(1, 2)
            scores = torch.cat([torch.matmul(q, past[2 * i].transpose(2, 3)) * sa.scaling + self_mask,
                                (q * k).sum(-1, keepdim=True) * sa.scaling], dim=-1)               # [B, H, 1, L+1]
            p = torch.softmax(scores, dim=-1)
            out = torch.matmul(p[..., :-1], past[2 * i + 1]) + p[..., -1:] * v
            h = h + sa.out_proj(out.transpose(1, 2).reshape(-1, 1, self.d))
            y = la.encoder_attn_layer_norm(h)
            h = h + self._attend(ca, y, cross[2 * i], cross[2 * i + 1], cross_mask, cross_keep)
            y = la.final_layer_norm(h)
            h = h + la.fc2(F.gelu(la.fc1(y)))
            new += [k, v]
        h = net.layer_norm(h)
        logits = torch.stack([head(h) for head in self.decoder.lm_heads], dim=1)                 # [B, K, 1, V]
        return (logits.reshape(-1, logits.shape[-1]), *new)

    def _attend(self, att, y, keys, values, mask, keep):
        q = att.q_proj(y).view(-1, 1, self.h, self.hd).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, scale=att.scaling)
        if keep is not None:
            out = out * keep
        return att.out_proj(out.transpose(1, 2).reshape(-1, 1, self.d))


def _names(layers: int) -> tuple[list[str], list[str]]:
    ins = ["ids", "pos", "self_mask", "cross_mask", "cross_keep"]
    ins += [f"past_{kv}{i}" for i in range(layers) for kv in "kv"]
    ins += [f"cross_{kv}{i}" for i in range(layers) for kv in "kv"]
    outs = ["logits"] + [f"new_{kv}{i}" for i in range(layers) for kv in "kv"]
    return ins, outs


def _additive(mask, b: int, s: int) -> tuple[np.ndarray, np.ndarray]:
    """The cross-attention mask :class:`~.decode.Step` builds (None, bool or additive float) as the graph's
    additive float32 mask and keep factor (rows with every token masked: mask 0, keep 0)."""
    if mask is None:
        return np.zeros((b, 1, 1, s), np.float32), np.ones((b, 1, 1, 1), np.float32)
    if mask.dtype == torch.bool:
        mask = torch.zeros(mask.shape).masked_fill(~mask, float("-inf"))
    add = mask.float().expand(b, 1, 1, s).clone()
    dead = torch.isinf(add).all(dim=-1, keepdim=True)
    add[dead.expand_as(add)] = 0.0
    return np.ascontiguousarray(add.numpy()), (~dead).float().numpy()


class OnnxStep(decode.Step):
    """:class:`~.decode.Step` whose ``logits`` runs in onnxruntime; the same construction (cross keys/values and
    mask once per window, a prefilled prompt cache copied in)."""

    def __init__(self, session, decoder, states, mask, length: int, cache=None):
        super().__init__(decoder, states, mask, length, cache)
        self.session = session
        b, n = self.b, len(self.layers)
        s = states.shape[1]
        self.ins, self.outs = _names(n)
        self.past = []
        for keys, values in zip(self.keys, self.values, strict=True):  # zeroed: masked columns add 0 x 0
            pk = np.zeros((b, self.h, length, self.hd), np.float32)
            pv = np.zeros_like(pk)
            pk[:, :, :self.filled] = keys[:, :, :self.filled].numpy()
            pv[:, :, :self.filled] = values[:, :, :self.filled].numpy()
            self.past += [pk, pv]
        self.self_mask = np.full((1, 1, 1, length), -np.inf, np.float32)
        self.self_mask[..., :self.filled] = 0.0
        self.keys = self.values = None  # the torch buffers are not used by this step
        cross_mask, keep = _additive(self.cross_mask, b, s)
        self.feed = {"self_mask": self.self_mask, "cross_mask": cross_mask, "cross_keep": keep}
        self.feed.update(zip(self.ins[5:5 + 2 * n], self.past, strict=True))
        for i, (ck, cv) in enumerate(self.cross):
            self.feed[f"cross_k{i}"] = np.ascontiguousarray(ck.detach().numpy())
            self.feed[f"cross_v{i}"] = np.ascontiguousarray(cv.detach().numpy())

    def logits(self, column: torch.Tensor) -> torch.Tensor:
        t = self.filled
        feed = self.feed  # the buffers and masks are the same arrays every step, filled in place
        feed["ids"] = column.reshape(self.b, self.k).numpy()
        feed["pos"] = np.array([t], np.int64)
        out = self.session.run(None, feed)
        for buf, new in zip(self.past, out[1:], strict=True):
            buf[:, :, t] = new[:, :, 0]
        self.self_mask[..., t] = 0.0
        self.filled = t + 1
        return torch.from_numpy(out[0])


def _example(decoder, b: int, past: int, s: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    cfg = decoder.config
    a0 = decoder.model.decoder.layers[0].self_attn
    n = len(decoder.model.decoder.layers)
    ids = torch.randint(0, cfg.vocab_size, (b, cfg.num_codebooks), generator=g)
    mask = torch.ones(b, 1, 1, s, dtype=torch.bool)
    mask[0, ..., max(1, s // 2):] = False  # a padded text
    mask[-1] = b < 2  # a text with every token masked (the guidance's unconditional half)
    mask, keep = (torch.from_numpy(a) for a in _additive(mask, b, s))
    length = past + 3  # the buffer runs past the filled columns (zeros there, masked)
    caches = [torch.randn(b, a0.num_heads, length, a0.head_dim, generator=g) for _ in range(2 * n)]
    for c in caches:
        c[:, :, past:] = 0.0
    caches += [torch.randn(b, a0.num_heads, s, a0.head_dim, generator=g) for _ in range(2 * n)]
    self_mask = torch.zeros(1, 1, 1, length)
    self_mask[..., past:] = float("-inf")
    return (ids, torch.tensor([past]), self_mask, mask, keep, *caches)


def export_onnx(lm, out: str | Path, opset: int = 17) -> Path:
    """Write ``out/lm_step.onnx`` (+ ``lm_onnx.json``: the weights hash it was made from); checked against torch."""
    onnxrt.need_onnx()
    decoder = lm.decoder
    if not decode.supported(decoder):
        raise ModelError(f"{lm.folder}: this decoder is not the plain MusicGen decoder the onnx step mirrors; "
                         "use --backend torch")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    net = _StepGraph(decoder).eval()
    n = len(decoder.model.decoder.layers)
    ins, outs = _names(n)
    axes = {"ids": {0: "batch"}, "self_mask": {3: "length"}, "cross_mask": {0: "batch", 3: "text"},
            "cross_keep": {0: "batch"}, "logits": {0: "rows"}}
    axes.update({name: {0: "batch", 2: "length"} for name in ins[5:5 + 2 * n]})
    axes.update({name: {0: "batch", 2: "text"} for name in ins[5 + 2 * n:]})
    axes.update({name: {0: "batch"} for name in outs[1:]})
    import warnings

    with atomic_path(out / ONNX_FILE) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python control flow; the check below decides
        torch.onnx.export(net, _example(decoder, 2, 5, 7, 0), str(tmp), input_names=ins, output_names=outs,
                          dynamic_axes=axes, opset_version=opset, dynamo=False)
        session = onnxrt.session(tmp, torch.get_num_threads())
        for b, past, s, seed in ((1, 0, 4, 1), (2, 40, 12, 2), (4, 3, 1, 3)):
            args = _example(decoder, b, past, s, seed)
            feed = {name: a.numpy() for name, a in zip(ins, args, strict=True)}
            got = session.run(None, feed)
            want = net(*args)
            diff = max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want, strict=True))
            if not diff <= CHECK_TOLERANCE:
                raise ModelError(f"ONNX export of {lm.folder}: the step differs from torch by {diff:.2g} at batch {b}, "
                                 f"{past} past columns, {s} text tokens (tolerance {CHECK_TOLERANCE:g})")
    meta = {"weights_hash": lm.weight_hash(), "opset": opset, "torch": torch.__version__}
    (out / ONNX_META).write_text(json.dumps(meta, indent=2) + "\n")
    return out / ONNX_FILE


def _int8(path: Path) -> Path:
    """``lm_step_int8.onnx`` beside ``path``: onnxruntime's dynamic quantisation of its MatMul weights (int8 per
    tensor, activations quantised per call), made once."""
    out = path.with_name(ONNX_INT8)
    if not out.exists():
        import logging

        from onnxruntime.quantization import QuantType, quantize_dynamic

        logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # its "pre-process first" note
        with atomic_path(out) as tmp:
            quantize_dynamic(str(path), str(tmp), weight_type=QuantType.QInt8)
    return out


def use_onnx(lm, onnx_dir: str | Path | None = None, quantize: str | None = None):
    """Run ``lm``'s decoder steps in onnxruntime from ``onnx_dir`` (default: exported once into the cache,
    ``$FOLEY_HOME/onnx/<weights hash>``), with int8 weights when ``quantize="int8"``; ``lm`` back."""
    if quantize not in (None, *QUANTIZE):
        raise ModelError(f"unknown quantisation '{quantize}'; choose {', '.join(QUANTIZE)}")
    path = onnxrt.exported(onnx_dir, lm.weight_hash(), ONNX_FILE, ONNX_META, lambda f: export_onnx(lm, f))
    lm.onnx_session = onnxrt.session(_int8(path) if quantize else path, torch.get_num_threads())
    lm.backend, lm.quantized = "onnx", quantize
    return lm
