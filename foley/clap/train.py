"""Train foley-clap on captioned manifests (recipe section ``[clap]``; a stage of the training harness).

``train_clap(manifests, recipe, out)`` or ``foley train clap --data M.jsonl ... -o runs/clap``. The run folder
holds ``cache/`` (the two log-mel planes of every clip, float16, and the MiniLM vector of every caption) and
``clap/`` with ``ckpt/last.pt`` (exact resume), ``log.jsonl``, ``valid.json`` and ``final/`` (the EMA weights
as a foley-clap folder).

Each step draws a batch (manifests weighted by the square root of their size, clips uniformly within), one
random crop length per batch, a random crop and gain per clip and one of its captions (``description`` or any
of ``captions``); the loss is the symmetric InfoNCE of CLIP with a learned temperature, where clips drawn
with the same caption text count as positives of each other (template captions repeat). Held-out: the
ClipDataset split rule; retrieval R@1 / R@10 both ways on the clips' descriptions, and top-1 among the
thesis's 22 descriptions on freshly rendered preset clips.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch

from ..audio import Audio
from ..data.dataset import select_split
from ..data.manifest import Clip, read_manifest
from ..errors import AudioError, FoleyError
from ..features import MelConfig
from ..fsutil import atomic_path, write_json_atomic
from ..train.solver import NumpyRandomness, Solver
from .model import ClapConfig, ClapNet, clap_features, init_from_encoder, save_clap

CACHE_VERSION = 1
CLAP_DEFAULTS = {"steps": 3000, "batch_size": 64, "lr": 1e-3, "min_seconds": 2.0, "max_seconds": 5.0,
                 "valid_fraction": 0.05, "max_clip_seconds": 10.0, "gain_db": 12.0, "ema_decay": 0.995,
                 "warmup_steps": 200, "weight_decay": 0.05, "channels": [16, 64, 128, 256, 256], "width": 256,
                 "layers": 1, "embed_dim": 256, "init_encoder": "models/foley-encoder/model.safetensors",
                 "preset_clips": 8}


def _lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return 0.5 * peak * (1 + np.cos(np.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def captions_of(clip: Clip) -> list[str]:
    """The clip's description first, then its other captions (duplicates and blanks dropped)."""
    out: list[str] = []
    for t in [clip.description or "", *clip.captions]:
        t = " ".join(str(t).split())
        if t and t not in out:
            out.append(t)
    return out


def _read(clip: Clip, cfg: MelConfig, max_seconds: float) -> Audio:
    import soundfile as sf

    path = clip.resolved_path()
    try:
        with sf.SoundFile(str(path)) as f:
            n = min(f.frames, int(max_seconds * f.samplerate)) if f.frames > 0 else int(max_seconds * f.samplerate)
            data, rate = f.read(n, dtype="float32", always_2d=True), f.samplerate
    except (RuntimeError, sf.LibsndfileError, ValueError, TypeError, OSError) as e:
        raise AudioError(f"{path}: unreadable audio ({e})") from None
    if data.shape[0] == 0 or not np.isfinite(data).all():
        raise AudioError(f"{path}: empty or non-finite audio")
    a = Audio(data.T, rate)
    if a.frames < cfg.n_fft:
        a = a.pad_or_trim(cfg.n_fft)
    return a


def clip_features(clip: Clip, cfg: MelConfig, max_seconds: float, cache: Path | None) -> np.ndarray:
    """float16 ``[2, n_mels, T]`` of the clip's first ``max_seconds`` (cached by path, mtime, size, settings)."""
    f = None
    if cache is not None:
        path = clip.resolved_path()
        st = path.stat()
        ident = {"path": str(path.absolute()), "mtime_ns": st.st_mtime_ns, "size": st.st_size,
                 "mel": cfg.to_dict(), "max_seconds": max_seconds, "version": CACHE_VERSION}
        key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]
        f = cache / key[:2] / f"{key}.npy"
        if f.exists():
            return np.load(f)
    feats = clap_features(_read(clip, cfg, max_seconds), cfg).astype(np.float16)
    if f is not None:
        with atomic_path(f) as tmp, open(tmp, "wb") as fh:
            np.save(fh, feats)
    return feats


def sentence_vectors(texts: list[str], encoder: str, cache: Path | None) -> np.ndarray:
    """MiniLM sentence vectors ``[len(texts), 384]`` float32, cached as one file per text list."""
    key = hashlib.sha256(json.dumps([encoder, texts]).encode()).hexdigest()[:24]
    f = cache / f"text_{key}.npy" if cache is not None else None
    if f is not None and f.exists():
        return np.load(f)
    from ..text import get_text_encoder

    enc = get_text_encoder(encoder)
    rows = [enc(texts[s:s + 128]).pooled.float().numpy() for s in range(0, len(texts), 128)]
    vecs = np.concatenate(rows).astype(np.float32) if rows else np.zeros((0, 384), np.float32)
    if f is not None:
        f.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(f) as tmp, open(tmp, "wb") as fh:
            np.save(fh, vecs)
    return vecs


class CaptionedMels:
    """The clips of one split: features (in memory, float16), caption indices into a shared text table, and the
    manifest each came from."""

    def __init__(self, clips: list[tuple[int, Clip]], cfg: MelConfig, max_seconds: float, cache: Path | None,
                 text_index: dict[str, int], log=print):
        self.feats: list[np.ndarray] = []
        self.captions: list[list[int]] = []
        self.source: list[int] = []
        self.names: list[str] = []
        self.skipped: list[str] = []
        t0 = time.time()
        for k, (m, clip) in enumerate(clips):
            caps = captions_of(clip)
            if not caps:
                self.skipped.append(f"{clip.path}: no caption")
                continue
            try:
                self.feats.append(clip_features(clip, cfg, max_seconds, cache))
            except (AudioError, OSError) as e:
                self.skipped.append(str(e))
                continue
            self.captions.append([text_index[c] for c in caps])
            self.source.append(m)
            self.names.append(clip.path)
            if log and (k + 1) % 2000 == 0:
                log(f"  features of {k + 1}/{len(clips)} clips ({time.time() - t0:.0f} s)")

    def __len__(self) -> int:
        return len(self.feats)

    def crops(self, idx, frames: int, rng: np.random.Generator | None, floor: float, gain_db: float = 0.0):
        out = np.empty((len(idx), 2) + self.feats[0].shape[1:2] + (frames,), np.float32)
        out[:, 0], out[:, 1] = floor, 0.0
        for j, i in enumerate(idx):
            f = self.feats[i]
            n = f.shape[-1]
            start = int(rng.integers(0, n - frames + 1)) if (rng is not None and n > frames) else 0
            part = f[..., start:start + frames].astype(np.float32)
            out[j, :, :, : part.shape[-1]] = part
            if rng is not None and gain_db:
                g = float(rng.uniform(-gain_db, gain_db)) / 20.0 * np.log(10.0)
                out[j, 0] = np.maximum(out[j, 0] + g, floor)
        return out


def clip_loss(audio: torch.Tensor, text: torch.Tensor, same: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE with soft targets: ``same[i, j]`` marks pairs that share a caption (diagonal included)."""
    logits = scale.exp().clamp(max=100.0) * audio @ text.T
    target = same / same.sum(1, keepdim=True)
    a2t = -(target * logits.log_softmax(1)).sum(1).mean()
    t2a = -(target.T / same.T.sum(1, keepdim=True) * logits.T.log_softmax(1)).sum(1).mean()
    return 0.5 * (a2t + t2a)


def recall_at(sim: np.ndarray, k: int) -> float:
    """Share of rows whose own column (the diagonal) ranks in the top ``k``."""
    own = np.diag(sim)[:, None]
    rank = (sim > own).sum(1)
    return float((rank < k).mean())


class ClapSolver(Solver):
    stage = section = "clap"
    ema_kind = "averaged"
    ema_buffers = True
    clip = 5.0
    defaults = CLAP_DEFAULTS

    def finished(self) -> bool:
        return (self.final / "model.safetensors").exists()

    def build(self) -> None:
        r, self.t0 = self.settings, time.time()
        self.mel = MelConfig()
        clips = [(m, c) for m, path in enumerate(self.manifests) for c in read_manifest(path)]
        if not clips:
            raise FoleyError("the manifests hold no clips")
        texts = sorted({t for _, c in clips for t in captions_of(c)})
        self.text_index = {t: i for i, t in enumerate(texts)}
        cache = self.out / "cache"
        fraction, longest = float(r["valid_fraction"]), float(r["max_clip_seconds"])
        flat = [c for _, c in clips]
        valid_ids = {id(c) for c in select_split(flat, "valid", fraction)}
        train = [(m, c) for m, c in clips if id(c) not in valid_ids]
        valid = [(m, c) for m, c in clips if id(c) in valid_ids]
        print(f"{len(clips)} clips, {len(texts)} distinct captions; computing features (cached in {cache})")
        self.train_set = CaptionedMels(train, self.mel, longest, cache, self.text_index)
        self.valid_set = CaptionedMels(valid, self.mel, longest, cache, self.text_index)
        print("encoding captions with MiniLM ...")
        self.text_vecs = torch.from_numpy(sentence_vectors(texts, "all-MiniLM-L6-v2", cache))
        skipped = self.train_set.skipped + self.valid_set.skipped
        print(f"{len(self.train_set)} train / {len(self.valid_set)} valid clips; skipped {len(skipped)}"
              f"{' (first: ' + skipped[0] + ')' if skipped else ''}; data ready in {time.time() - self.t0:.0f} s")
        if len(self.train_set) < 2:
            raise FoleyError("fewer than two trainable clips: CLAP needs captioned audio")
        sizes = np.bincount(np.array(self.train_set.source), minlength=len(self.manifests)).astype(np.float64)
        share = np.sqrt(sizes) / np.sqrt(sizes).sum()
        src = np.array(self.train_set.source)
        self.weights = share[src] / sizes[src]
        self.weights /= self.weights.sum()
        self.config = ClapConfig(mel=self.mel, channels=[int(c) for c in r["channels"]], width=int(r["width"]),
                                 layers=int(r["layers"]), embed_dim=int(r["embed_dim"]),
                                 window_seconds=float(r["max_seconds"]))
        self.model = ClapNet(self.config)
        init = r.get("init_encoder")
        if init and not Path(init).is_absolute():
            from ..paths import models_dir

            init = str(models_dir().parent / init)
        if init and Path(init).is_file():
            taken = init_from_encoder(self.model, init)
            print(f"audio tower starts from {init} ({len(taken)} tensors)")
        lr, warmup = float(r["lr"]), int(r["warmup_steps"])
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=float(r["weight_decay"]))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: float(_lr_at(s, self.steps, lr, warmup)) / lr)
        self.frames = tuple(self.mel.frames_for(float(r[k])) for k in ("min_seconds", "max_seconds"))
        self.floor = float(np.log(self.mel.log_floor))
        self.draws = np.random.default_rng([self.seed, 0])
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        self.crop_rng = self.draws if world == 1 else np.random.default_rng([self.seed, 1, rank])
        self.presets = None
        self.report: dict = {}
        self.run_config = {"data": [str(m) for m in self.manifests], "seed": self.seed, **r,
                           "train_clips": len(self.train_set), "valid_clips": len(self.valid_set),
                           "captions": len(texts)}

    def extra_state(self) -> dict:
        return {"draws": NumpyRandomness(self.draws)}

    def begin(self) -> None:
        if self.is_main:
            write_json_atomic(self.dir / "train_config.json", self.run_config)

    def train_step(self, _batch) -> dict:
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        frames = int(self.draws.integers(self.frames[0], self.frames[1] + 1))
        idx = self.draws.choice(len(self.train_set), size=self.batch_size, p=self.weights)
        caps = np.array([self.train_set.captions[i][int(self.draws.integers(len(self.train_set.captions[i])))]
                         for i in idx])
        # every process embeds its strided share of the clips and all the captions (cheap); the audio embeddings
        # are gathered, the own share keeping its gradient, so each process computes the global loss
        order = np.concatenate([np.arange(r, len(idx), world) for r in range(world)])
        feats = self.train_set.crops(idx[rank::world], frames, self.crop_rng, self.floor,
                                     float(self.settings["gain_db"]))
        dev = self.accelerator.device
        c = torch.from_numpy(caps[order]).to(dev)
        audio, text, scale = self.train_model(torch.from_numpy(feats).to(dev), self.text_vecs[c.cpu()].to(dev))
        if world > 1:
            import torch.distributed as dist

            parts = [torch.empty_like(audio) for _ in range(world)]
            dist.all_gather(parts, audio.detach())
            parts[rank] = audio
            audio = torch.cat(parts)
        same = (c[:, None] == c[None, :]).float()
        loss = clip_loss(audio, text, same, scale)
        return {"loss": loss, "temperature": 1.0 / float(scale.detach().exp())}

    # --- held-out -----------------------------------------------------------------------------------------
    def _preset_set(self):
        if self.presets is None:
            from ..data.synth.presets import PRESETS, render_preset

            feats, labels = [], []
            rng = np.random.default_rng([self.seed, 22])
            for k, slug in enumerate(PRESETS):
                for _ in range(int(self.settings["preset_clips"])):
                    y, _a = render_preset(slug, rng, 4.0, self.mel.sample_rate)
                    feats.append(clap_features(Audio(y, self.mel.sample_rate), self.mel))
                    labels.append(k)
            self.presets = (np.stack(feats), np.array(labels), [PRESETS[s].text for s in PRESETS])
        return self.presets

    @torch.no_grad()
    def evaluate(self, model: ClapNet) -> dict:
        v, frames = self.valid_set, self.frames[1]
        out: dict = {}
        if len(v):
            emb = np.concatenate([model.audio(torch.from_numpy(v.crops(list(range(s, min(s + 64, len(v)))), frames,
                                                                       None, self.floor))).numpy()
                                  for s in range(0, len(v), 64)])
            first = torch.stack([self.text_vecs[c[0]] for c in v.captions])
            txt = model.text(first).numpy()
            sim = emb @ txt.T
            out = {"valid_clips": len(v), "a2t_r1": recall_at(sim, 1), "a2t_r10": recall_at(sim, 10),
                   "t2a_r1": recall_at(sim.T, 1), "t2a_r10": recall_at(sim.T, 10)}
            per = {}
            src = np.array(v.source)
            for m in sorted(set(v.source)):
                sel = np.where(src == m)[0]
                s = sim[np.ix_(sel, sel)]
                per[Path(self.manifests[m]).parent.name or str(m)] = {
                    "n": int(len(sel)), "t2a_r1": recall_at(s.T, 1), "t2a_r10": recall_at(s.T, 10)}
            out["per_corpus"] = per
        feats, labels, texts = self._preset_set()
        from ..text import get_text_encoder

        pt = model.text(get_text_encoder("all-MiniLM-L6-v2")(texts).pooled.float()).numpy()
        pa = model.audio(torch.from_numpy(feats)).numpy()
        out["presets_top1"] = float(((pa @ pt.T).argmax(1) == labels).mean())
        return out

    def validate(self) -> dict:
        self.report = self.evaluate(self.model)
        write_json_atomic(self.dir / "valid.json", {"step": self.step, **self.report})
        print(f"step {self.step}: " + " ".join(f"{k} {v:.3f}" for k, v in self.report.items()
                                               if isinstance(v, float)))
        return {k: v for k, v in self.report.items() if isinstance(v, float)}

    def export(self, dest: Path) -> Path:
        with self.ema_weights() as model:
            model.config.info = {"data": self.run_config["data"], "steps": self.step, "batch_size": self.batch_size,
                                 "parameters": sum(p.numel() for p in model.parameters()), "valid": self.report,
                                 "train_seconds": round(time.time() - self.t0, 1)}
            save_clap(model, dest)
        return dest


def train_clap(manifests: list[Path], recipe: dict, out: Path) -> Path:
    """Train (or resume) foley-clap (recipe section ``[clap]``, see :data:`CLAP_DEFAULTS`); returns
    ``<out>/clap/final``."""
    return ClapSolver(manifests, recipe, out).run()
