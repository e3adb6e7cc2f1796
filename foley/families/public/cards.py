"""Model cards of the public checkpoints (pure data: importing this module imports no torch).

Registry name = Hugging Face hub id. ``files`` are the repository paths a model needs (glob patterns,
used both to download and to tell a user without network what to fetch). Download sizes are the
repositories' listed file sizes where we saw them, otherwise estimates from parameter counts (marked
``~`` by ``foley models list``); the real size is shown once a model is in the cache.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...editing import DIFFUSION_TASKS, TOKEN_TASKS
from ...generator import ModelCard
from ...request import MAX_DURATION

MEL_LDM_TASKS = DIFFUSION_TASKS
STABLE_AUDIO_TASKS = ("generate", "style_transfer", "inpaint", "extend", "continue")
MUSICGEN_TASKS = TOKEN_TASKS
MELODY_TASKS = ("generate", "melody", "style_transfer")
CODEC_TASKS = ("encode", "decode")
CLAP_TASKS = ("embed", "score")

CC_BY_NC_SA = "CC BY-NC-SA 4.0 (non-commercial, share-alike)"
CC_BY_NC = "CC BY-NC 4.0 (non-commercial)"


@dataclass
class HubCard(ModelCard):
    """A card whose weights live in a Hugging Face repository (``weights`` = ``repo`` = the hub id).

    Attributes:
        files: repository paths to fetch (globs; ``vae/*`` = the whole ``vae/`` folder).
        marker: the file whose presence makes a folder this kind of checkpoint.
        size_mb: download size in MB (approximate unless ``size_exact``).
        gated: the repository asks users to accept its licence on the hub before downloading.
        defaults: sampling settings used when a request leaves them unset (the model card's own).
        non_commercial: the weights' licence forbids commercial use (shown when the model loads).
    """

    files: tuple[str, ...] = ()
    marker: str = "config.json"
    size_mb: int = 0
    size_exact: bool = False
    gated: bool = False
    non_commercial: bool = True

    @property
    def repo(self) -> str:
        return self.weights

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.weights}"


def _pipeline_files(*components: str) -> tuple[str, ...]:
    return ("model_index.json", *(f"{c}/*" for c in components))


_TRANSFORMERS = ("config.json", "*.safetensors", "model.safetensors.index.json", "preprocessor_config.json")
_T5_TOKENIZER = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "spiece.model")
_AUDIOLDM = _pipeline_files("scheduler", "text_encoder", "tokenizer", "unet", "vae", "vocoder")
_AUDIOLDM2 = _pipeline_files("feature_extractor", "language_model", "projection_model", "scheduler", "text_encoder",
                             "text_encoder_2", "tokenizer", "tokenizer_2", "unet", "vae", "vocoder")
_MUSICLDM = _pipeline_files("feature_extractor", "scheduler", "text_encoder", "tokenizer", "unet", "vae", "vocoder")
# the repository also holds stable-audio-tools' single-file model.safetensors; the diffusers folders suffice
_STABLE_AUDIO = _pipeline_files("projection_model", "scheduler", "text_encoder", "tokenizer", "transformer", "vae")


def _audioldm(size: str, mb: int, params: str) -> HubCard:
    return HubCard(
        name=f"cvssp/audioldm-{size}", family="audioldm", weights=f"cvssp/audioldm-{size}", sample_rate=16_000,
        channels=1, max_duration=10.24, tasks=MEL_LDM_TASKS, licence=CC_BY_NC_SA,
        description=f"AudioLDM 1 ({params} UNet): text-to-audio latent diffusion on 64-band mels, CLAP text "
                    "conditioning, HiFi-GAN vocoder; sound effects, ambiences, some music.",
        files=_AUDIOLDM, marker="model_index.json", size_mb=mb, defaults={"steps": 10, "guidance_scale": 2.5})


def _musicgen(size: str, mb: int, params: str) -> HubCard:
    return HubCard(
        name=f"facebook/musicgen-{size}", family="musicgen", weights=f"facebook/musicgen-{size}",
        sample_rate=32_000, channels=1, max_duration=30.0, tasks=MUSICGEN_TASKS, licence=CC_BY_NC,
        description=f"MusicGen {size} ({params}): autoregressive transformer over EnCodec 32 kHz tokens "
                    "(4 codebooks, delay pattern), T5 text conditioning; music from text, continuation of audio.",
        files=(*_TRANSFORMERS, "generation_config.json", *_T5_TOKENIZER), size_mb=mb,
        defaults={"guidance_scale": 3.0})


PUBLIC_CARDS: dict[str, HubCard] = {c.name: c for c in (
    _audioldm("s-full", 1_100, "181 M"),
    _audioldm("s-full-v2", 1_100, "181 M"),
    _audioldm("m-full", 1_900, "416 M"),
    _audioldm("l-full", 3_100, "739 M"),
    HubCard(name="cvssp/audioldm2", family="audioldm2", weights="cvssp/audioldm2", sample_rate=16_000, channels=1,
            max_duration=10.24, tasks=MEL_LDM_TASKS, licence=CC_BY_NC_SA,
            description="AudioLDM 2: GPT-2 'language of audio' from CLAP + Flan-T5 embeddings conditions a "
                        "two-stream UNet on 64-band mels; general sound effects and ambiences.",
            files=_AUDIOLDM2, marker="model_index.json", size_mb=4_600,
            defaults={"steps": 200, "guidance_scale": 3.5}),
    HubCard(name="cvssp/audioldm2-music", family="audioldm2", weights="cvssp/audioldm2-music", sample_rate=16_000,
            channels=1, max_duration=10.24, tasks=MEL_LDM_TASKS, licence=CC_BY_NC_SA,
            description="AudioLDM 2 trained for text-to-music.",
            files=_AUDIOLDM2, marker="model_index.json", size_mb=4_600,
            defaults={"steps": 200, "guidance_scale": 3.5}),
    HubCard(name="ucsd-reach/musicldm", family="musicldm", weights="ucsd-reach/musicldm", sample_rate=16_000,
            channels=1, max_duration=10.24, tasks=MEL_LDM_TASKS, licence=CC_BY_NC_SA,
            description="MusicLDM: AudioLDM-style latent diffusion for music, CLAP text conditioning, beat-synchronous "
                        "mixup training.",
            files=_MUSICLDM, marker="model_index.json", size_mb=2_200,
            defaults={"steps": 200, "guidance_scale": 2.0}),
    HubCard(name="stabilityai/stable-audio-open-1.0", family="stable-audio",
            weights="stabilityai/stable-audio-open-1.0", sample_rate=44_100, channels=2, max_duration=47.55,
            tasks=STABLE_AUDIO_TASKS,
            licence="Stability AI Community License (free for research, non-commercial use and organisations under "
                    "USD 1 M annual revenue; gated: accept it on the hub page)",
            description="Stable Audio Open 1.0: DiT latent diffusion over the Oobleck VAE's 64-channel latents "
                        "(21.5 Hz), T5-base text and timing conditioning; stereo sound effects and music up to 47 s.",
            files=_STABLE_AUDIO, marker="model_index.json", size_mb=5_300, gated=True,
            defaults={"steps": 100, "guidance_scale": 7.0}),
    _musicgen("small", 2_400, "300 M decoder"),
    _musicgen("medium", 6_200, "1.5 B decoder"),
    _musicgen("large", 13_000, "3.3 B decoder"),
    HubCard(name="facebook/musicgen-melody", family="musicgen-melody", weights="facebook/musicgen-melody",
            sample_rate=32_000, channels=1, max_duration=30.0, tasks=MELODY_TASKS, licence=CC_BY_NC,
            description="MusicGen melody (1.5 B): MusicGen conditioned on text and on the chromagram of a melody "
                        "audio file (`foley edit tune.wav \"...\" --task style_transfer`).",
            files=(*_TRANSFORMERS, "generation_config.json", *_T5_TOKENIZER), size_mb=6_500,
            defaults={"guidance_scale": 3.0}),
    HubCard(name="facebook/encodec_24khz", family="encodec", weights="facebook/encodec_24khz", sample_rate=24_000,
            channels=1, max_duration=MAX_DURATION, tasks=CODEC_TASKS,
            licence="MIT (facebookresearch/encodec; the hub card carries no licence tag)", non_commercial=False,
            description="EnCodec 24 kHz: neural codec, 75 frames/s, 1.5/3/6/12/24 kbps (2-32 codebooks of 1024).",
            files=_TRANSFORMERS, size_mb=93, size_exact=True),
    HubCard(name="facebook/encodec_32khz", family="encodec", weights="facebook/encodec_32khz", sample_rate=32_000,
            channels=1, max_duration=MAX_DURATION, tasks=CODEC_TASKS,
            licence="CC BY-NC 4.0 (released with MusicGen by audiocraft; the hub card carries no licence tag)",
            description="EnCodec 32 kHz (MusicGen's tokenizer): 50 frames/s, 4 codebooks of 2048 (2.2 kbps).",
            files=_TRANSFORMERS, size_mb=236, size_exact=True),
    HubCard(name="descript/dac_16khz", family="dac", weights="descript/dac_16khz", sample_rate=16_000, channels=1,
            max_duration=MAX_DURATION, tasks=CODEC_TASKS, non_commercial=False,
            licence="MIT (descript-audio-codec; the hub card carries no licence tag)",
            description="Descript Audio Codec 16 kHz: 50 frames/s, 12 codebooks of 1024 (6 kbps).",
            files=_TRANSFORMERS, size_mb=300),
    HubCard(name="descript/dac_44khz", family="dac", weights="descript/dac_44khz", sample_rate=44_100, channels=1,
            max_duration=MAX_DURATION, tasks=CODEC_TASKS, non_commercial=False,
            licence="MIT (descript-audio-codec; the hub card carries no licence tag)",
            description="Descript Audio Codec 44.1 kHz: 86 frames/s, 9 codebooks of 1024 (7.7 kbps).",
            files=_TRANSFORMERS, size_mb=307, size_exact=True),
    HubCard(name="laion/clap-htsat-unfused", family="clap", weights="laion/clap-htsat-unfused", sample_rate=48_000,
            channels=1, max_duration=10.0, tasks=CLAP_TASKS, licence="Apache-2.0", non_commercial=False,
            description="LAION-CLAP (HTSAT audio, RoBERTa text): audio/text embeddings and CLAP scores; used by "
                        "`foley eval` (clap_score) rather than for generation.",
            files=(*_TRANSFORMERS, "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.json", "merges.txt"), size_mb=615),
)}

# model_index.json `_class_name` / config.json `model_type` -> family (for folders without a card)
PIPELINE_FAMILIES = {"AudioLDMPipeline": "audioldm", "AudioLDM2Pipeline": "audioldm2",
                     "MusicLDMPipeline": "musicldm", "StableAudioPipeline": "stable-audio"}
MODEL_TYPE_FAMILIES = {"musicgen": "musicgen", "musicgen_melody": "musicgen-melody", "encodec": "encodec",
                       "dac": "dac", "clap": "clap"}
