"""The token LM's sampling loop without ``generate``'s per-frame Python: same ops, same shapes, same draws.

``MusicgenForCausalLM.generate`` spends about half of a frame's time on Python around a tiny network (4 layers of
256 at batch 2): building processors, re-applying the delay mask to the whole sequence, the output-capturing and
deprecation wrappers of every module, rebuilding the causal and cross-attention masks, and growing the KV cache by
``torch.cat``. :func:`sample` runs the same computation as a plain loop:

- one step = the decoder's own weights through the same torch functions, in the same order, on tensors of the
  same shapes (the guidance's two halves as one batch of 2, as transformers batches them), so the logits are
  bit-identical to the decoder's ``forward`` (tested) and a seed gives the same codes as ``generate``;
- the self-attention keys and values go into buffers allocated once per window and attention reads the filled
  part as a view. transformers' ``StaticCache`` does not fit: it attends over the whole preallocated length under a
  mask, which changes SDPA's sums in the last bits (measured: 36 of 43 lengths differ), and so flips sampled codes;
- the cross-attention keys and values and the text mask are computed once per window;
- sampling is transformers' own processors (guidance, temperature, top-k, top-p) and softmax + multinomial, in the
  order ``generate`` applies them, so the global generator advances exactly as before; after coupled stereo
  sampling (a one-hot that guidance and the multinomial only pass on) the loop takes its choice and draws the
  Exp(1) noise that torch's one-sample multinomial draws.

Hand-written because transformers has no decode step for MusicGen short of ``torch.compile`` (which changes the
numbers). :func:`supported` says when a decoder is the plain eager network this mirrors; otherwise
``TokenLM.sample`` keeps calling ``generate``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812

# generation-config fields that would make generate() do what this loop does not (extra processors, guidance from
# the folder's config when the call passes none)
_UNSUPPORTED = ("repetition_penalty", "encoder_repetition_penalty", "no_repeat_ngram_size", "bad_words_ids",
                "min_length", "min_new_tokens", "forced_bos_token_id", "forced_eos_token_id", "sequence_bias",
                "exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens", "min_p", "top_h",
                "typical_p", "epsilon_cutoff", "eta_cutoff", "watermarking_config", "renormalize_logits",
                "remove_invalid_values", "eos_token_id", "guidance_scale")
_NEUTRAL = {"guidance_scale": 1.0, "repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0,
            "no_repeat_ngram_size": 0, "min_length": 0, "typical_p": 1.0, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0,
            "renormalize_logits": False, "remove_invalid_values": False}


def supported(decoder) -> bool:
    """True when ``decoder`` is the eager, unwrapped ``MusicgenForCausalLM`` whose step :class:`Step` mirrors."""
    from transformers.activations import GELUActivation

    cfg, net = decoder.config, getattr(getattr(decoder, "model", None), "decoder", None)
    if net is None or decoder.training or cfg._attn_implementation != "sdpa" or cfg.scale_embedding:
        return False
    if cfg.activation_function != "gelu" or not all(type(h) is torch.nn.Linear for h in decoder.lm_heads):
        return False
    gc = decoder.generation_config
    if any(getattr(gc, k, None) not in (None, _NEUTRAL.get(k)) for k in _UNSUPPORTED):
        return False
    for layer in net.layers:
        linears = [layer.fc1, layer.fc2] + [getattr(a, p) for a in (layer.self_attn, layer.encoder_attn)
                                            for p in ("q_proj", "k_proj", "v_proj", "out_proj")]
        norms = (layer.self_attn_layer_norm, layer.encoder_attn_layer_norm, layer.final_layer_norm)
        if not (all(type(m) is torch.nn.Linear for m in linears) and all(type(m) is torch.nn.LayerNorm for m in norms)
                and type(layer.activation_fn) is GELUActivation and layer.activation_fn.act is F.gelu):
            return False
    return type(net.layer_norm) is torch.nn.LayerNorm


class Step:
    """One decoder step (one new token column) over preallocated self-attention buffers.

    Mirrors ``MusicgenDecoder.forward`` + ``MusicgenForCausalLM.forward`` for a query of length 1 in eval mode
    (dropout is the identity there); ``logits(column)`` returns float32 [B*K, V] as ``generate`` sees them."""

    def __init__(self, decoder, states: torch.Tensor, mask: torch.Tensor, length: int, cache=None):
        from transformers.masking_utils import create_bidirectional_mask

        net = decoder.model.decoder
        self.k = decoder.config.num_codebooks
        self.embed = [e.weight for e in net.embed_tokens]
        self.heads = [h.weight for h in decoder.lm_heads]
        self.layers = list(net.layers)
        self.norm = _ln(net.layer_norm)
        # per layer, the tensors and constants of the step, looked up once (module attribute access is slow)
        self.params = [(_ln(la.self_attn_layer_norm), *(_lin(getattr(la.self_attn, p)) for p in
                                                         ("q_proj", "k_proj", "v_proj", "out_proj")),
                        la.self_attn.scaling, _ln(la.encoder_attn_layer_norm), _lin(la.encoder_attn.q_proj),
                        _lin(la.encoder_attn.out_proj), la.encoder_attn.scaling, _ln(la.final_layer_norm),
                        _lin(la.fc1), _lin(la.fc2)) for la in self.layers]
        if length > net.embed_positions.weights.size(0):  # as the positional embedding grows itself
            net.embed_positions.make_weights(length, net.embed_positions.embedding_dim)
        self.positions = net.embed_positions.weights
        b, d = states.shape[0], decoder.config.hidden_size
        a0 = self.layers[0].self_attn
        self.b, self.d, self.h, self.hd = b, d, a0.num_heads, a0.head_dim
        # the cross-attention mask as the decoder builds it for a one-token query (constant over the window)
        self.cross_mask = create_bidirectional_mask(config=decoder.config, inputs_embeds=states.new_empty(b, 1, d),
                                                    attention_mask=mask, encoder_hidden_states=states)
        shape = (b, self.h, length, self.hd)
        self.keys = [states.new_empty(shape) for _ in self.layers]
        self.values = [states.new_empty(shape) for _ in self.layers]
        self.filled = 0
        if cache is not None and cache.get_seq_length() > 0:  # a prefilled transformers cache (prompt columns)
            n = cache.get_seq_length()
            for i, layer in enumerate(cache.self_attention_cache.layers):
                self.keys[i][:, :, :n] = layer.keys
                self.values[i][:, :, :n] = layer.values
            self.cross = [(layer.keys, layer.values) for layer in cache.cross_attention_cache.layers]
            self.filled = n
        else:
            self.cross = []
            for layer in self.layers:
                att = layer.encoder_attn
                kv = (b, states.shape[1], -1, self.hd)
                # contiguous, as DynamicLayer.update's torch.cat leaves them
                self.cross.append((F.linear(states, att.k_proj.weight, att.k_proj.bias).view(kv).transpose(1, 2)
                                   .contiguous(),
                                   F.linear(states, att.v_proj.weight, att.v_proj.bias).view(kv).transpose(1, 2)
                                   .contiguous()))

    def _attend(self, q_proj, out_proj, scale, x, keys, values, mask):
        b, d = self.b, self.d
        q = F.linear(x, *q_proj).view(b, 1, -1, self.hd).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, dropout_p=0.0, scale=scale,
                                             is_causal=False)
        return F.linear(out.transpose(1, 2).reshape(b, 1, d), *out_proj)

    def logits(self, column: torch.Tensor) -> torch.Tensor:
        """``column`` [B*K] token ids at position ``self.filled`` -> float32 logits [B*K, V]."""
        b, hd, t = self.b, self.hd, self.filled
        ids = column.reshape(b, self.k, 1)
        x = sum(F.embedding(ids[:, c], w) for c, w in enumerate(self.embed))  # the decoder's own sum, same order
        h = x + self.positions[t:t + 1]
        for (ln1, q, k, v, o, scale, ln2, cq, co, cscale, ln3, fc1, fc2), keys, values, cross in zip(
                self.params, self.keys, self.values, self.cross, strict=True):
            y = F.layer_norm(h, *ln1)
            keys[:, :, t] = F.linear(y, *k).view(b, -1, hd)
            values[:, :, t] = F.linear(y, *v).view(b, -1, hd)
            h = h + self._attend(q, o, scale, y, keys[:, :, :t + 1], values[:, :, :t + 1], None)
            y = F.layer_norm(h, *ln2)
            h = h + self._attend(cq, co, cscale, y, *cross, self.cross_mask)
            y = F.layer_norm(h, *ln3)
            h = h + F.linear(F.gelu(F.linear(y, *fc1)), *fc2)
        h = F.layer_norm(h, *self.norm)
        self.filled = t + 1
        out = torch.stack([F.linear(h, w) for w in self.heads], dim=1)   # [B, K, 1, V]
        return out.reshape(b * self.k, -1).float()


def _is_guidance(proc) -> bool:
    from transformers.generation.logits_process import ClassifierFreeGuidanceLogitsProcessor

    return isinstance(proc, ClassifierFreeGuidanceLogitsProcessor)


def _coupled(chain):
    """The :class:`~.sampling.CoupledStereoSampling` leading ``chain`` when nothing after it but progress callbacks
    and guidance reshapes its one-hot (then its choice is the draw), else None."""
    from .sampling import CoupledStereoSampling, StepCallback

    if chain and isinstance(chain[0], CoupledStereoSampling) and all(
            isinstance(p, StepCallback) or _is_guidance(p) for p in chain[1:]):
        return chain[0]
    return None


def _ln(m) -> tuple:
    return m.normalized_shape, m.weight, m.bias, m.eps


def _lin(m) -> tuple:
    return m.weight, m.bias


def processors(custom, guidance: float | None, temperature, top_k, top_p) -> list:
    """The processor list ``MusicgenForCausalLM.generate`` builds for these settings, in its order: the caller's,
    then classifier-free guidance, then temperature, top-k, top-p (``generate``'s defaults for sampling)."""
    from transformers.generation.logits_process import (
        ClassifierFreeGuidanceLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    out = list(custom)
    if guidance is not None and guidance > 1:
        out.append(ClassifierFreeGuidanceLogitsProcessor(guidance))
    if temperature is not None and temperature != 1.0:
        out.append(TemperatureLogitsWarper(temperature))
    if top_k is not None and top_k != 0:
        out.append(TopKLogitsWarper(top_k=top_k, min_tokens_to_keep=1))
    if top_p is not None and top_p < 1.0:
        out.append(TopPLogitsWarper(top_p=top_p, min_tokens_to_keep=1))
    return out


@torch.no_grad()
def sample(decoder, ids: torch.Tensor, states, mask, new_tokens: int, logits_processor, guided: bool,
           streamer=None, cache=None, make_step=Step) -> torch.Tensor:
    """What ``decoder.generate(input_ids=ids, ..., do_sample=True, max_new_tokens=new_tokens)`` returns for batch 1
    ([1, K, frames]), given the full processor list (:func:`processors`) and optionally a cache holding all delayed
    prompt columns but the last (``TokenLM._prefill``). ``guided``: ``states`` holds the guidance's two halves.
    ``make_step``: :class:`Step`'s constructor, or another with its signature (the onnx backend's)."""
    pad = int(decoder.generation_config.pad_token_id)
    k = decoder.config.num_codebooks
    length = ids.shape[-1] + new_tokens
    delayed, pattern = decoder.build_delay_pattern_mask(ids, pad, max_length=length)
    if streamer is not None:
        streamer.put(delayed.cpu())
    seq = torch.full((k, length), pad, dtype=torch.long)
    start = delayed.shape[-1]
    seq[:, :start] = delayed
    forced = pattern != -1
    step = make_step(decoder, states, mask, length, cache)
    if step.filled != start - 1:
        raise ValueError(f"the cache holds {step.filled} columns; the prompt needs {start - 1}")
    coupled = _coupled(logits_processor)
    chain = [p for p in logits_processor if coupled is None or not _is_guidance(p)]
    for t in range(start, length):
        column = torch.where(forced[:, t - 1], pattern[:, t - 1], seq[:, t - 1])  # apply_delay_pattern_mask
        scores = step.logits(column.repeat(2) if guided else column)
        for proc in chain:  # as LogitsProcessorList calls them, without its per-call signature check
            scores = proc(seq[:, :t], scores)
        if coupled is not None:
            # guidance would map the coupled one-hot pair to a one-hot, whose multinomial draw is its hot code after
            # drawing Exp(1) noise of the probabilities' shape (torch's one-sample path): draw that noise only, to
            # keep generate()'s random stream (other steps than Step's draw other codes anyway: skip it there)
            if make_step is Step or getattr(make_step, "wraps", None) is Step:
                torch.empty((k, scores.shape[-1]), dtype=torch.float32).exponential_()
            nxt = coupled.choice
        else:
            probs = F.softmax(scores, dim=-1)
            nxt = torch.multinomial(probs, num_samples=1).squeeze(1)
        seq[:, t] = nxt
        if streamer is not None:
            streamer.put(nxt.cpu())
    if streamer is not None:
        streamer.end()
    out = torch.where(forced, pattern, seq)
    return out[out != pad].reshape(1, k, -1)
