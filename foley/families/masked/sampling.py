"""MaskGIT iterative parallel decoding over a window of codec tokens, and the windows of a long fill.

Hand-written (no library ships MaskGIT decoding for codec tokens): the cosine schedule, confidence-based
re-masking with annealed choice noise, classifier-free guidance and the RVQ order constraint below.

- Pass i of n keeps ``floor(M cos(pi/2 i/n))`` of the M initially unknown tokens masked: every masked token is
  sampled (temperature, top-k, guidance), scored by its log-probability plus Gumbel noise scaled by
  ``choice_temperature (1 - i/n)``, and the least confident are masked again; the last pass fixes all.
- RVQ order: a token is never fixed before the coarser codes of its frame and channel. Its score is the
  minimum over itself and its coarser masked codes (known ones count as +inf), minus a tiny per-level margin,
  so ranking by score fixes a coarse code no later than its finer ones (training masks follow the same order).
- Stereo: rows L_q and R_q draw with the same Gumbel noise per frame and code (each channel keeps its own
  distribution; they agree where the model lets them, as the token LM's coupled sampling).
- Seeds: one ``torch.Generator`` per call, so a seed gives the same tokens in any batch or process.
"""

from __future__ import annotations

import math

import torch


def gumbel(shape, generator: torch.Generator) -> torch.Tensor:
    u = torch.rand(shape, generator=generator).clamp_(1e-10, 1 - 1e-7)
    return -torch.log(-torch.log(u))


@torch.no_grad()
def maskgit(net, codes: torch.Tensor, known: torch.Tensor, states: torch.Tensor, mask: torch.Tensor, steps: int,
            seed: int, settings: dict, on_pass=None, quiet: torch.Tensor | None = None) -> torch.Tensor:
    """Fill the unknown tokens of ``codes`` [K, F] (``known`` [K, F] bool; unknown values are ignored) in
    ``steps`` passes; returns the codes [K, F] with every token known. ``states``/``mask`` are the condition
    ([2, L, D] with guidance: conditional row first). ``on_pass(i, steps)`` after each pass."""
    k, f = codes.shape
    channels, vocab = net.channels, net.vocab
    n_q = k // channels
    g = torch.Generator().manual_seed(int(seed) % 2**63)
    x = torch.where(known, codes.long(), torch.full_like(codes, vocab, dtype=torch.long))
    total = int((~known).sum())
    guidance_start = float(settings.get("guidance_scale", 1.0))
    guidance_end = float(settings.get("guidance_end") or guidance_start)   # MAGNeT's annealing: linear over passes
    guided = guidance_start > 1.0 and states.shape[0] == 2
    temperature = max(float(settings.get("temperature", 1.0)), 1e-4)
    top_k = int(settings.get("top_k") or 0)
    choice = float(settings.get("choice_temperature", 0.0))
    level = (torch.arange(k) // channels).float()[:, None] * 1e-4      # the RVQ order's tie-break margin
    penalty = float(settings.get("quiet_penalty") or 0.0) if quiet is not None else 0.0
    for i in range(1, steps + 1):
        guidance = guidance_start + (guidance_end - guidance_start) * ((i - 1) / max(steps - 1, 1))
        masked = x == vocab
        if not masked.any():
            if on_pass is not None:
                on_pass(i, steps)
            continue
        both = guided and guidance != 1.0  # a pass at guidance 1 (the end of an annealing) needs no other branch
        h = net.hidden(x[None].expand(2 if both else 1, -1, -1), states if both else states[:1],
                       mask if both else mask[:1])
        if both:  # the heads are linear: guiding the hidden states = guiding the logits, at half the head's cost
            h = (h[1] + guidance * (h[0] - h[1]))[None]
        sampled = torch.zeros(k, f, dtype=torch.long)
        score = torch.full((k, f), math.inf)
        noise = gumbel((n_q, f, vocab), g)              # shared by the channels of a codebook (stereo coupling)
        for row in range(k):  # only the masked tokens are scored: the head and the draw skip the known ones
            frames = torch.nonzero(masked[row]).flatten()
            if not frames.numel():
                continue
            logits = net.row_logits(h, row, frames)[0].float()                                  # [n, V]
            logp = torch.log_softmax(logits, dim=-1)
            z = logits / temperature
            if 0 < top_k < vocab:
                kth = torch.kthvalue(z, vocab - top_k + 1, dim=-1, keepdim=True).values  # = topk's last, faster
                z = z.masked_fill(z < kth, -math.inf)
            draw = torch.argmax(z + noise[row // channels, frames], dim=-1)
            sampled[row, frames] = draw
            score[row, frames] = logp.gather(-1, draw[:, None])[:, 0]
            if penalty and row < channels:  # a near-silent coarse code is fixed later than a sounding one
                score[row, frames] -= penalty * quiet[draw].float()
        score = score + choice * (1 - i / steps) * gumbel((k, f), g)
        score = score.view(n_q, channels, f).cummin(dim=0).values.view(k, f) - level       # RVQ order
        keep_masked = math.floor(total * math.cos(math.pi / 2 * i / steps)) if i < steps else 0
        fix = int(masked.sum()) - keep_masked
        if fix > 0:
            cand = torch.where(masked, score, torch.full_like(score, -math.inf)).flatten()
            chosen = torch.topk(cand, fix).indices
            flat = x.flatten()
            flat[chosen] = sampled.flatten()[chosen]
            x = flat.view(k, f)
        if on_pass is not None:
            on_pass(i, steps)
    return x


def windows(known: torch.Tensor, window: int, context: int) -> list[tuple[int, int]]:
    """The windows [start, end) that fill every unknown frame of ``known`` [K, F], in order, each at most
    ``window`` frames: it starts ``context`` frames (or more, centring a short gap) before the first frame
    still unknown, and everything unknown inside it is filled by that window. Depends on the mask only, so the
    number of passes is known before sampling (progress)."""
    todo = (~known).any(0).clone()
    f = todo.shape[0]
    plan = []
    while todo.any():
        f0 = int(torch.nonzero(todo)[0])
        reach = torch.nonzero(todo[f0:min(f, f0 + window - context)])
        run = int(reach[-1]) + 1
        left = max(context, (window - run) // 2)
        start = max(0, min(f0 - left, f - window))
        end = min(f, start + window)
        plan.append((start, end))
        todo[start:end] = False
    return plan
