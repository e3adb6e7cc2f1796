"""``foley train wavegan``: pick the one-shots of the corpora, train the GAN, export a model folder.

Stages, each in ``<run>/<stage>/`` and resumable:

- ``clips``: every clip of the manifests through the one-shot filter (:mod:`.data`: duration and onset strength,
  the rule stated there), its onset-aligned window kept as int16 ``[N, samples]`` with its captions and their
  MiniLM sentence vectors (``clips/{train,valid}.pt``), and ``clips/report.json`` (kept/rejected per manifest
  and reason, licences of the kept clips);
- ``gan``: :class:`WaveGANSolver` on the training harness, optimised manually: per step the discriminators
  (the WaveGAN discriminator with phase shuffle, and log-mel discriminators at two resolutions, all conditional
  by projection; hinge loss, plus real clips under another clip's caption as fakes), then the generator (hinge
  adversarial + batch-mean feature matching on the discriminators' feature maps); Adam betas 0.5/0.9, weight
  EMA of the generator (what is exported);
- ``export``: the model folder (``foley.json``, ``generator.safetensors``, ``README.md`` card with the training's
  CPU time, data and licences).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from ...errors import FoleyError
from ...fsutil import atomic_path, write_json_atomic, write_text_atomic
from ...text import MINILM
from ...train.solver import Solver
from .data import FILTER_DEFAULTS, one_shot, read_start
from .model import (
    WEIGHTS,
    DiscriminatorNet,
    FolderConfig,
    GeneratorNet,
    MelDiscriminator,
    WaveGANConfig,
    load_folder,
    save_folder,
)

STAGES = ("clips", "gan", "export")
DEFAULTS = {"sample_rate": 16000, "latent_dim": 100, "cond_proj": 128, "width": 16, "layers": 5, "base_length": 16,
            "disc_width": 16, "phase_shuffle": 2, "max_duration": 1.0, "text_encoder": MINILM,
            "batch_size": 32, "steps": 3000, "lr": 2e-4, "disc_lr": 2e-4, "ema_decay": 0.999, "clip": 10.0,
            "mel_ffts": [1024, 256], "mel_width": 64, "mel_weight": 1.0, "fm_weight": 2.0,
            "mismatch_weight": 0.5, "valid_items": 32}


def settings(recipe: dict) -> dict:
    return {**DEFAULTS, **recipe.get("wavegan", {})}


def net_config(r: dict) -> WaveGANConfig:
    return WaveGANConfig(sample_rate=int(r["sample_rate"]), latent_dim=int(r["latent_dim"]),
                         cond_proj=int(r["cond_proj"]), width=int(r["width"]), layers=int(r["layers"]),
                         base_length=int(r["base_length"]), disc_width=int(r["disc_width"]),
                         phase_shuffle=int(r["phase_shuffle"]))


# --- stage 1: clips --------------------------------------------------------------------------------
def prepare_clips(manifests, recipe: dict, out: Path) -> Path:
    """The one-shot windows of every manifest's train and valid split (see :mod:`.data`)."""
    from ...data.dataset import select_split
    from ...data.manifest import clip_captions, read_manifest
    from ...text import get_text_encoder
    from ...train.loop import progress, set_threads

    stage = Path(out) / "clips"
    if (stage / "train.pt").exists() and (stage / "valid.pt").exists():
        return stage
    r = settings(recipe)
    rule = {**FILTER_DEFAULTS, **recipe.get("clips", {})}
    cfg = net_config(r)
    sr, n = cfg.sample_rate, cfg.samples
    set_threads(recipe.get("train", {}).get("threads"))
    valid_fraction = float(recipe.get("audio", {}).get("valid_fraction", 0.03))
    cap = rule.pop("max_per_manifest", None)
    report: dict = {"rule": rule, "manifests": {}}
    splits = {"train": [], "valid": []}
    for m in manifests:
        clips = read_manifest(m)
        counts: Counter = Counter()
        licences: Counter = Counter()
        for split in ("valid", "train"):
            chosen = select_split(clips, split, valid_fraction)
            kept = 0
            bar = progress(len(chosen), 0, f"one-shots {Path(m).name} {split}")
            for clip in chosen:
                bar.update(1)
                if cap is not None and split == "train" and kept >= int(cap):
                    counts["over max_per_manifest"] += 1
                    continue
                try:
                    x = read_start(clip.resolved_path(), sr, float(rule["read_seconds"]))
                except FoleyError:
                    counts["unreadable"] += 1
                    continue
                win, reason = one_shot(x, sr, float(clip.duration), n, rule)
                counts[reason] += 1
                if win is None:
                    continue
                kept += 1
                licences[clip.licence or "unknown"] += split == "train"
                splits[split].append({"audio": win, "captions": clip_captions(clip), "path": str(clip.path),
                                      "manifest": str(m), "licence": clip.licence or "unknown"})
            bar.close()
        report["manifests"][str(m)] = {"clips": len(clips), "decisions": dict(counts),
                                       "kept_train_licences": {k: v for k, v in licences.items() if v}}
    if not splits["train"]:
        raise FoleyError("no one-shots in the manifests' train split (see the rule in foley/families/wavegan/data.py)")
    text = get_text_encoder(str(r["text_encoder"]))
    for split, items in splits.items():
        captions = sorted({c for it in items for c in it["captions"]})
        index = {c: i for i, c in enumerate(captions)}
        vectors = torch.cat([text(captions[s:s + 256]).pooled.float() for s in range(0, len(captions), 256)]) \
            if captions else torch.zeros(0, text.dim)
        audio = np.stack([it["audio"] for it in items]) if items else np.zeros((0, n), np.float32)
        blob = {"audio": torch.from_numpy(np.round(audio * 32767).astype(np.int16)),
                "caption_ids": [[index[c] for c in it["captions"]] for it in items], "captions": captions,
                "vectors": vectors.half(), "paths": [it["path"] for it in items],
                "licences": [it["licence"] for it in items], "sample_rate": sr}
        with atomic_path(stage / f"{split}.pt") as tmp:
            torch.save(blob, tmp)
        report[split] = len(items)
    write_json_atomic(stage / "report.json", report)
    return stage


def load_clips(out: Path, split: str) -> dict:
    path = Path(out) / "clips" / f"{split}.pt"
    if not path.exists():
        raise FoleyError(f"{path}: missing; run the clips stage first (--stages clips,gan,export)")
    return torch.load(path, weights_only=True)


# --- stage 2: the GAN ------------------------------------------------------------------------------
class Discriminators(torch.nn.Module):
    """The conditional WaveGAN discriminator and (``mel_weight`` > 0) spectral ones on log-mels at the
    ``mel_ffts`` resolutions, as one module: ``forward(x, c)`` -> [(logits, feature maps, weight)] (one call for a
    process-parallel wrapper)."""

    def __init__(self, cfg: WaveGANConfig, r: dict):
        super().__init__()
        self.wave = DiscriminatorNet(cfg)
        self.mel_weight = float(r["mel_weight"])
        ffts = list(r["mel_ffts"]) if self.mel_weight > 0 else []
        self.mels = torch.nn.ModuleList(MelDiscriminator(cfg, int(n), width=int(r["mel_width"])) for n in ffts)

    def forward(self, x: torch.Tensor, c: torch.Tensor):
        logits, feats = self.wave(x, c)
        outs = [(logits, feats, 1.0)]
        outs += [(*d(x, c), self.mel_weight / len(self.mels)) for d in self.mels]
        return outs


class Clock:
    """Training seconds so far, checkpointed (the card's CPU time counts every resumed run)."""

    def __init__(self):
        self.seconds, self._last = 0.0, None

    def tick(self) -> None:
        now = time.monotonic()
        if self._last is not None:
            self.seconds += min(now - self._last, 600.0)  # a pause (validation, a stop) is not training time
        self._last = now

    def state_dict(self) -> dict:
        return {"seconds": self.seconds}

    def load_state_dict(self, state: dict) -> None:
        self.seconds = float(state["seconds"])


def _feature_matching(fake: list, real: list) -> torch.Tensor:
    """Batch-mean feature matching: |mean_b f(fake) - mean_b f(real)| relative to the real mean's size."""
    total, n = torch.zeros(()), 0
    for a, b in zip(fake, real, strict=True):
        mb = b.detach().mean(0)
        total = total + (a.mean(0) - mb).abs().mean() / (mb.abs().mean() + 1e-5)
        n += 1
    return total / max(1, n)


class WaveGANSolver(Solver):
    stage, section = "gan", "wavegan"
    manual_optimization = True
    defaults = DEFAULTS

    def finished(self) -> bool:
        return (self.final / WEIGHTS).exists()

    def build(self) -> None:
        r = self.settings
        self.cfg = net_config(r)
        clips = load_clips(self.out, "train")
        if clips["audio"].shape[1] != self.cfg.samples:
            raise FoleyError(f"{self.out}/clips holds {clips['audio'].shape[1]}-sample windows, the network makes "
                             f"{self.cfg.samples}; delete {self.out}/clips to redo them")
        self.audio, self.caption_ids = clips["audio"], clips["caption_ids"]
        self.vectors = clips["vectors"].float()
        self.valid = load_clips(self.out, "valid")
        self.model = GeneratorNet(self.cfg)
        self.disc = Discriminators(self.cfg, r)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=float(r["lr"]), betas=(0.5, 0.9))
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=float(r["disc_lr"]), betas=(0.5, 0.9))
        self.data = range(self.audio.shape[0])
        self.batch_size = min(self.batch_size, len(self.data))
        self.clock = Clock()

    def extra_state(self) -> dict:
        return {"disc": self.disc, "opt_d": self.opt_d, "clock": self.clock}

    def begin(self) -> None:
        self.train_disc, self.opt_d = self.accelerator.prepare(self.disc, self.opt_d)
        self.clock._last = None

    def _condition(self, ids: list[list[int]], vectors: torch.Tensor) -> torch.Tensor:
        """One caption's sentence vector per item, chosen with the solver's RNG (zeros for a clip without text)."""
        out = torch.zeros(len(ids), self.cfg.cond_dim)
        for i, choices in enumerate(ids):
            if choices:
                out[i] = vectors[self.rng.choice(choices)]
        return out

    def train_step(self, idx: torch.Tensor) -> dict:
        self.clock.tick()
        r, dev = self.settings, self.accelerator.device
        idx = idx.cpu().tolist()
        x = (self.audio[idx].float() / 32767)[:, None]
        sign = torch.tensor([1.0 if self.rng.random() < 0.5 else -1.0 for _ in idx])  # polarity: a free augmentation
        x = (x * sign[:, None, None]).to(dev)
        c = self._condition([self.caption_ids[i] for i in idx], self.vectors).to(dev)
        z = torch.randn(len(idx), self.cfg.latent_dim, device=dev)
        fake = self.train_model(z, c)
        D = self.train_disc
        # discriminators: hinge on real vs fake (and real audio under another clip's caption, conditional one only)
        real_out = D(x, c)
        d_loss = sum(w * (F.relu(1 - lr).mean() + F.relu(1 + lf).mean())
                     for (lr, _, w), (lf, _, _) in zip(real_out, D(fake.detach(), c), strict=True))
        mw = float(r["mismatch_weight"])
        if mw > 0 and len(idx) > 1:
            other = c.roll(1, 0)
            differ = (other - c).abs().sum(1) > 1e-3
            if differ.any():
                d_loss = d_loss + mw * sum(w * F.relu(1 + lm[differ]).mean() for lm, _, w in D(x, other))
        self.optimizer_step(d_loss, self.opt_d, list(self.disc.parameters()), None)
        # generator: hinge adversarial + batch-mean feature matching against the real pass
        self.disc.requires_grad_(False)
        fake_out = D(fake, c)
        adv = sum(w * -lf.mean() for lf, _, w in fake_out)
        fm = sum(w * _feature_matching(ff, fr) for (_, ff, w), (_, fr, _) in zip(fake_out, real_out, strict=True))
        self.disc.requires_grad_(True)
        g_loss = adv + float(r["fm_weight"]) * fm
        self.optimizer_step(g_loss, self.optimizer, list(self.model.parameters()), self.settings.get("clip"))
        return {"loss": g_loss.detach(), "adv": adv.detach(), "fm": fm.detach(), "disc": d_loss.detach()}

    def validate(self) -> dict:
        """Spectral-envelope distance on held-out one-shots: mean |log-mel spectrum (time-averaged) of the sound made
        from a clip's first caption (seed = its index) - that of the clip|, in dB; the generated and real RMS (dBFS)."""
        v, k = self.valid, min(int(self.settings["valid_items"]), self.valid["audio"].shape[0])
        if k == 0:
            return {}
        c = torch.stack([v["vectors"][ids[0]].float() if ids else torch.zeros(self.cfg.cond_dim)
                         for ids in v["caption_ids"][:k]])
        z = torch.stack([torch.randn(self.cfg.latent_dim, generator=torch.Generator().manual_seed(i))
                         for i in range(k)])
        fake = self.model(z.to(self.accelerator.device), c.to(self.accelerator.device))[:, 0].cpu()
        real = v["audio"][:k].float() / 32767
        dist = (_mel_profile(fake, self.cfg.sample_rate) - _mel_profile(real, self.cfg.sample_rate)).abs().mean()
        rms = 10 * torch.log10(fake.pow(2).mean() + 1e-12)
        real_rms = 10 * torch.log10(real.pow(2).mean() + 1e-12)
        return {"valid_envelope_db": float(dist), "valid_rms_dbfs": float(rms), "valid_real_rms_dbfs": float(real_rms)}

    def preview(self, step: int) -> None:
        from ...audio import Audio
        from ...text import get_text_encoder

        prompts = self.recipe.get("train", {}).get("preview_prompts", [])
        if not prompts:
            return
        c = get_text_encoder(str(self.settings["text_encoder"]))(prompts).pooled.float()
        z = torch.stack([torch.randn(self.cfg.latent_dim, generator=torch.Generator().manual_seed(0))] * len(prompts))
        with self.ema_weights() as g:
            y = g(z.to(self.accelerator.device), c.to(self.accelerator.device))[:, 0].cpu().numpy()
        for i, w in enumerate(y):
            Audio(w[None], self.cfg.sample_rate).save(self.dir / "previews" / f"step{step:06d}_{i}.wav")

    def export(self, dest: Path) -> Path:
        if self.ema is not None:
            self.ema.copy_to(self.model.parameters())
        r = self.settings
        threads = self.recipe.get("train", {}).get("threads") or 1
        extra = {"recipe": self.recipe.get("name"), "licence": self.recipe.get("licence", "unknown"),
                 "steps": self.step, "train_seconds": round(self.clock.seconds, 1), "threads": threads,
                 "trained_on": [str(m) for m in self.manifests]}
        cfg = FolderConfig(net=self.cfg, max_duration=float(r["max_duration"]), text_encoder=str(r["text_encoder"]),
                           extra=extra)
        return save_folder(self.model, cfg, dest)


def _mel_profile(x: torch.Tensor, sample_rate: int, n_fft: int = 1024, n_mels: int = 64) -> torch.Tensor:
    """Time-averaged log-mel power (dB) of waves [B, T] -> [B, n_mels]."""
    import librosa

    fb = torch.from_numpy(librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)).float()
    spec = torch.stft(x, n_fft, n_fft // 4, window=torch.hann_window(n_fft), return_complex=True).abs().pow(2)
    return 10 * torch.log10(torch.einsum("mf,bft->bm", fb, spec) / spec.shape[-1] + 1e-10)


def train_gan(manifests, recipe: dict, out: Path) -> Path:
    return WaveGANSolver(manifests, recipe, out).run()


# --- stage 3: export -------------------------------------------------------------------------------
def export(recipe: dict, out: Path, dest: Path) -> Path:
    """The model folder at ``dest``: the gan stage's EMA generator + a README.md card (CPU time, data, licences)."""
    src = Path(out) / "gan" / "final"
    if not (src / WEIGHTS).exists():
        raise FoleyError(f"{src}: no trained generator; run the gan stage first (--stages gan,export)")
    net, cfg = load_folder(src)
    report = json.loads((Path(out) / "clips" / "report.json").read_text()) \
        if (Path(out) / "clips" / "report.json").exists() else {}
    dest = Path(dest)
    save_folder(net, cfg, dest)
    write_text_atomic(dest / "README.md", card_text(recipe, cfg, report, net))
    return dest


def card_text(recipe: dict, cfg: FolderConfig, report: dict, net: GeneratorNet) -> str:
    """The model card: what it makes, how to use it, how it was trained (measured), data and licences."""
    e, n = cfg.extra, cfg.net
    name = recipe.get("name") or "wavegan"
    params = sum(p.numel() for p in net.parameters())
    hours = e.get("train_seconds", 0) / 3600
    cpu_hours = hours * int(e.get("threads") or 1)
    rows = []
    licences: Counter = Counter()
    for m, d in report.get("manifests", {}).items():
        dec = d.get("decisions", {})
        rows.append(f"| `{m}` | {d.get('clips', 0):,} | {dec.get('short', 0):,} | {dec.get('onset', 0):,} | "
                    f"{sum(v for k, v in dec.items() if k not in ('short', 'onset')):,} |")
        licences.update(d.get("kept_train_licences", {}))
    lic = ", ".join(f"{k} ({v:,})" for k, v in licences.most_common()) or "see the manifests"
    table = [
        ("family", f"WaveGAN (Donahue et al. 2019): dense → {n.layers} transposed 1-D convolutions (kernel 25, "
                   f"stride 4) → tanh; {n.samples} samples"),
        ("conditioning", f"MiniLM sentence vector (all-MiniLM-L6-v2, frozen, its pip package) → {n.cond_proj}-d "
                         f"projection, concatenated with the {n.latent_dim}-d latent and FiLM after each layer"),
        ("size", f"generator {params / 1e6:.2f} M parameters (width d = {n.width}), float32 "
                 "`generator.safetensors` (EMA weights)"),
        ("discriminators (training only)", f"WaveGAN's (phase shuffle ±{n.phase_shuffle}, d = {n.disc_width}) + "
                                           "log-mel ones at two resolutions, all with a projection on the text "
                                           "vector; hinge loss, feature matching"),
        ("limits", f"{cfg.max_duration:g} s, mono; no editing; up to 1024 sounds per request"),
        ("recipe", "`recipes/starter-wavegan.toml`, one command: `bash recipes/starter-wavegan.sh`"),
    ]
    rule = report.get("rule", {})
    lines = [
        f"# {name} — foley's WaveGAN starter (1 s one-shots as waveforms)", "",
        f"Text → {n.sample_rate / 1000:g} kHz mono one-shots (impacts, footsteps, drum hits, UI sounds) of up to "
        f"{cfg.max_duration:g} s, made straight as waveforms in **one forward pass for a whole batch**, and **latent "
        "interpolation** between two prompts or seeds. The CLI, the Python API and the server are the same as for "
        "every model.", "",
        "```bash",
        f'foley generate "a metal impact" -m {name} -n 100 -o hits/impact.wav     # 100 one-shots, one batch',
        f'foley generate --interpolate "a wooden knock" "a metal clang" -n 8 -m {name} --seed 3 -o morph/k.wav',
        f'foley generate "a metal impact" --interpolate 3 17 -n 8 -m {name}       # seed 3 -> seed 17',
        "```", "", "| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in table], "",
        "## Training (measured by the run)", "",
        f"{e.get('steps', '?')} steps, {hours * 60:.0f} min of training at {e.get('threads', 1)} thread(s): "
        f"**{cpu_hours:.2f} CPU-hours** (the clips stage's decoding and MiniLM vectors not included).", "",
        "## Training data and licences", "",
        "One-shots picked from the manifests by duration and onset strength (the rule: "
        f"`foley/families/wavegan/data.py`): {report.get('train', '?')} training and {report.get('valid', '?')} "
        "held-out windows.", "",
        f"| manifest | clips | kept: ≤ {rule.get('max_clip_seconds', 1.5)} s | kept: onset + decay | rejected |",
        "|---|---|---|---|---|", *rows, "",
        f"Licences of the kept training clips: {lic}.",
        f"**Licence of these weights:** {e.get('licence', 'unknown')}. Code: Apache-2.0.", ""]
    return "\n".join(lines)


def train_wavegan(manifests: list[Path], recipe: dict, out: Path, stages=STAGES, dest: Path | None = None
                  ) -> Path | None:
    """Run the requested stages in order; each resumes or is skipped when already finished."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "recipe.json", recipe)
    if "clips" in stages:
        prepare_clips(manifests, recipe, out)
    if "gan" in stages:
        train_gan(manifests, recipe, out)
    if "export" in stages:
        return export(recipe, out, dest or out / "model")
    return None
