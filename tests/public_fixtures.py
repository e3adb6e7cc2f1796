"""Tiny random checkpoints in exactly the public repositories' folder layouts, built offline.

Each builder writes what the real repository holds (same component classes, config file names and
weight file names: ``model_index.json`` + component folders for the diffusers pipelines, one folder with
config.json + model.safetensors + tokenizer + preprocessor_config.json for the transformers models),
at the real sample rates and channel counts, with tiny widths so a test runs in seconds. Tokenizers are
built from small vocabularies (a byte-level RoBERTa BPE with no merges, a T5 Unigram over letters):
the real files cannot be fetched here, and the loading code only needs the same classes and files.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

LETTERS = "abcdefghijklmnopqrstuvwxyz"


# --- tokenizers -------------------------------------------------------------------------------------

def roberta_tokenizer(max_length: int = 77):
    """RobertaTokenizer over single letters (byte-level 'Ġ' marks a space), like CLAP's tokenizer files."""
    from transformers import RobertaTokenizer

    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])}
    for c in [*LETTERS, "Ġ"]:
        vocab[c] = len(vocab)
    return RobertaTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def save_roberta(tok, folder: Path) -> None:
    """save_pretrained plus the vocab.json / merges.txt the real repositories also carry."""
    tok.save_pretrained(folder)
    (folder / "vocab.json").write_text(json.dumps(tok.get_vocab()))
    (folder / "merges.txt").write_text("#version: 0.2\n")


def t5_tokenizer(max_length: int = 32):
    """T5Tokenizer (Unigram, '▁' word marker) over letters; <pad>=0, </s>=1, <unk>=2 as in T5."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(c, -3.0) for c in LETTERS] + [("▁" + c, -2.5) for c in LETTERS]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=max_length)


# --- shared tiny parts ------------------------------------------------------------------------------

def hifigan(sample_rate: int = 16_000, n_mels: int = 16):
    """SpeechT5HifiGan with AudioLDM's hop (4 * 4 * 10 = 160 samples at 16 kHz)."""
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    return SpeechT5HifiGan(SpeechT5HifiGanConfig(
        model_in_dim=n_mels, sampling_rate=sample_rate, upsample_initial_channel=16, upsample_rates=[4, 4, 10],
        upsample_kernel_sizes=[8, 8, 20], resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
        normalize_before=False))


def mel_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(block_out_channels=[8, 16], norm_num_groups=4, in_channels=1, out_channels=1,
                         down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                         latent_channels=4)


def ddim():
    from diffusers import DDIMScheduler

    return DDIMScheduler(beta_start=0.0015, beta_end=0.0195, beta_schedule="scaled_linear", clip_sample=False,
                         set_alpha_to_one=False)


def clap_model(projection_dim: int, vocab_size: int):
    from transformers import ClapAudioConfig, ClapConfig, ClapModel, ClapTextConfig

    text = ClapTextConfig(vocab_size=vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                          intermediate_size=32, max_position_embeddings=80)
    audio = ClapAudioConfig(depths=[1, 1], num_attention_heads=[1, 2], hidden_size=32, patch_embeds_hidden_size=16,
                            enable_fusion=False, spec_size=256, window_size=8)
    return ClapModel(ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(),
                                projection_dim=projection_dim))


def clap_features():
    from transformers import ClapFeatureExtractor

    return ClapFeatureExtractor(sampling_rate=48_000, max_length_s=1, truncation="rand_trunc", padding="repeatpad",
                                frequency_min=50, frequency_max=14_000)


# --- builders: one per public layout ----------------------------------------------------------------

def build_audioldm(folder: Path) -> Path:
    """cvssp/audioldm-*: AudioLDMPipeline (ClapTextModelWithProjection, RobertaTokenizer, UNet with the pooled
    CLAP vector as a class embedding, AutoencoderKL over mels, SpeechT5HifiGan, DDIM)."""
    from diffusers import AudioLDMPipeline, UNet2DConditionModel
    from transformers import ClapTextConfig, ClapTextModelWithProjection

    torch.manual_seed(0)
    tok = roberta_tokenizer()
    text = ClapTextModelWithProjection(ClapTextConfig(
        vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=80, projection_dim=16))
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, norm_num_groups=8, sample_size=32, in_channels=4,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=(16, 32),
        class_embed_type="simple_projection", projection_class_embeddings_input_dim=16, class_embeddings_concat=True)
    pipe = AudioLDMPipeline(vae=mel_vae(), text_encoder=text, tokenizer=tok, unet=unet, scheduler=ddim(),
                            vocoder=hifigan())
    pipe.save_pretrained(folder)
    save_roberta(tok, folder / "tokenizer")
    return folder


def build_musicldm(folder: Path) -> Path:
    """ucsd-reach/musicldm: MusicLDMPipeline (ClapModel text+audio, RobertaTokenizer, ClapFeatureExtractor, ...)."""
    from diffusers import MusicLDMPipeline, UNet2DConditionModel

    torch.manual_seed(0)
    tok = roberta_tokenizer()
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, norm_num_groups=8, sample_size=32, in_channels=4,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=(16, 32),
        class_embed_type="simple_projection", projection_class_embeddings_input_dim=16, class_embeddings_concat=True)
    pipe = MusicLDMPipeline(vae=mel_vae(), text_encoder=clap_model(16, len(tok)), tokenizer=tok,
                            feature_extractor=clap_features(), unet=unet, scheduler=ddim(), vocoder=hifigan())
    pipe.save_pretrained(folder)
    save_roberta(tok, folder / "tokenizer")
    return folder


def build_audioldm2(folder: Path) -> Path:
    """cvssp/audioldm2(-music): CLAP + Flan-T5 -> projection -> GPT2Model -> two-stream AudioLDM2 UNet."""
    from diffusers import AudioLDM2Pipeline, AudioLDM2ProjectionModel, AudioLDM2UNet2DConditionModel
    from transformers import GPT2Config, GPT2Model, T5Config, T5EncoderModel

    torch.manual_seed(0)
    tok, tok2 = roberta_tokenizer(), t5_tokenizer()
    unet = AudioLDM2UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, norm_num_groups=8, sample_size=32, in_channels=4,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=([None, 16, 32], [None, 16, 32]))
    t5 = T5EncoderModel(T5Config(vocab_size=len(tok2), d_model=32, d_ff=37, d_kv=8, num_heads=2, num_layers=1))
    gpt = GPT2Model(GPT2Config(n_embd=16, n_head=2, n_layer=1, vocab_size=64, n_ctx=99, n_positions=99,
                               bos_token_id=63, eos_token_id=63))
    gpt.config.max_new_tokens = 8
    proj = AudioLDM2ProjectionModel(text_encoder_dim=16, text_encoder_1_dim=32, langauge_model_dim=16)
    pipe = AudioLDM2Pipeline(vae=mel_vae(), text_encoder=clap_model(16, len(tok)), text_encoder_2=t5,
                             projection_model=proj, language_model=gpt, tokenizer=tok, tokenizer_2=tok2,
                             feature_extractor=clap_features(), unet=unet, scheduler=ddim(), vocoder=hifigan())
    pipe.save_pretrained(folder)
    save_roberta(tok, folder / "tokenizer")
    return folder


def build_stable_audio(folder: Path) -> Path:
    """stabilityai/stable-audio-open-1.0: T5EncoderModel, StableAudioProjectionModel, StableAudioDiTModel,
    AutoencoderOobleck (44.1 kHz stereo, hop 2048 as the real one; its encoder emits mean and scale, so
    encoder_hidden_size = 2 x latent channels), CosineDPMSolverMultistepScheduler."""
    from diffusers import (
        AutoencoderOobleck,
        CosineDPMSolverMultistepScheduler,
        StableAudioDiTModel,
        StableAudioPipeline,
        StableAudioProjectionModel,
    )
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    tok = t5_tokenizer()
    t5 = T5EncoderModel(T5Config(vocab_size=len(tok), d_model=32, d_ff=37, d_kv=8, num_heads=2, num_layers=1))
    cond = 16
    dit = StableAudioDiTModel(sample_size=64, in_channels=4, num_layers=2, attention_head_dim=8,
                              num_attention_heads=2, num_key_value_attention_heads=1, out_channels=4,
                              cross_attention_dim=16, time_proj_dim=16, global_states_input_dim=2 * cond,
                              cross_attention_input_dim=cond)
    proj = StableAudioProjectionModel(text_encoder_dim=32, conditioning_dim=cond, min_value=0, max_value=512)
    vae = AutoencoderOobleck(encoder_hidden_size=8, downsampling_ratios=[2, 4, 4, 8, 8], channel_multiples=[1] * 5,
                             decoder_channels=4, decoder_input_channels=4, audio_channels=2, sampling_rate=44_100)
    sched = CosineDPMSolverMultistepScheduler(sigma_min=0.3, sigma_max=500, solver_order=2,
                                              prediction_type="v_prediction", sigma_data=1.0,
                                              sigma_schedule="exponential")
    StableAudioPipeline(vae=vae, text_encoder=t5, projection_model=proj, tokenizer=tok, transformer=dit,
                        scheduler=sched).save_pretrained(folder)
    return folder


def _encodec_config(sample_rate: int = 32_000):
    from transformers import EncodecConfig

    if sample_rate == 32_000:  # MusicGen's codec: hop 640 (50 Hz), 4 codebooks of 2048 at 2.2 kbps
        return EncodecConfig(sampling_rate=32_000, upsampling_ratios=[8, 5, 4, 4], target_bandwidths=[2.2],
                             codebook_size=2048, num_filters=4, hidden_size=8, num_lstm_layers=1,
                             use_causal_conv=False, norm_type="weight_norm", normalize=False)
    return EncodecConfig(sampling_rate=24_000, upsampling_ratios=[8, 5, 4, 2],  # hop 320 (75 Hz), 1024 codes
                         target_bandwidths=[1.5, 3.0, 6.0, 12.0, 24.0], codebook_size=1024, num_filters=4,
                         hidden_size=8, num_lstm_layers=1)


def random_codebooks(model) -> None:
    """EnCodec's codebooks are zero buffers until trained (every code would decode alike): fill them."""
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("codebook.embed") or name.endswith("codebook.embed_avg"):
                buf.copy_(torch.randn(buf.shape, generator=torch.Generator().manual_seed(len(name))))


def _musicgen_parts(tok):
    from transformers import GenerationConfig, T5Config

    t5 = T5Config(vocab_size=len(tok), d_model=32, d_ff=64, d_kv=16, num_heads=2, num_layers=1)
    gen = GenerationConfig(do_sample=True, guidance_scale=3.0, max_length=1500, top_k=250, pad_token_id=2048,
                           bos_token_id=2048, decoder_start_token_id=2048)
    return t5, gen


def build_musicgen(folder: Path) -> Path:
    """facebook/musicgen-*: one folder, MusicgenForConditionalGeneration (T5 + EnCodec 32 kHz + decoder),
    generation_config.json, T5 tokenizer and EncodecFeatureExtractor's preprocessor_config.json."""
    from transformers import (
        EncodecFeatureExtractor,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        MusicgenProcessor,
    )

    torch.manual_seed(0)
    tok = t5_tokenizer()
    t5, gen = _musicgen_parts(tok)
    dec = MusicgenDecoderConfig(vocab_size=2048, max_position_embeddings=1600, num_hidden_layers=2, ffn_dim=64,
                                num_attention_heads=2, hidden_size=32, num_codebooks=4, pad_token_id=2048,
                                bos_token_id=2048)
    cfg = MusicgenConfig(text_encoder=t5.to_dict(), audio_encoder=_encodec_config().to_dict(), decoder=dec.to_dict())
    model = MusicgenForConditionalGeneration(cfg)
    random_codebooks(model)
    model.generation_config = gen
    model.save_pretrained(folder)
    fe = EncodecFeatureExtractor(feature_size=1, sampling_rate=32_000, padding_side="left")
    MusicgenProcessor(feature_extractor=fe, tokenizer=tok).save_pretrained(folder)
    return folder


def build_musicgen_melody(folder: Path) -> Path:
    """facebook/musicgen-melody: MusicgenMelodyForConditionalGeneration; its feature extractor needs torchaudio
    to be constructed, so its preprocessor_config.json is written as the real file reads."""
    from transformers import (
        MusicgenMelodyConfig,
        MusicgenMelodyDecoderConfig,
        MusicgenMelodyForConditionalGeneration,
    )

    torch.manual_seed(0)
    tok = t5_tokenizer()
    t5, gen = _musicgen_parts(tok)
    dec = MusicgenMelodyDecoderConfig(vocab_size=2048, max_position_embeddings=1600, num_hidden_layers=2,
                                      ffn_dim=64, num_attention_heads=2, hidden_size=32, num_codebooks=4,
                                      pad_token_id=2048, bos_token_id=2048)
    cfg = MusicgenMelodyConfig(text_encoder=t5.to_dict(), audio_encoder=_encodec_config().to_dict(),
                               decoder=dec.to_dict(), num_chroma=12, chroma_length=235)
    model = MusicgenMelodyForConditionalGeneration(cfg)
    random_codebooks(model)
    model.generation_config = gen
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "chunk_length": 30, "feature_extractor_type": "MusicgenMelodyFeatureExtractor", "feature_size": 12,
        "hop_length": 4096, "n_fft": 16384, "num_chroma": 12, "padding_side": "left", "padding_value": 0.0,
        "processor_class": "MusicgenMelodyProcessor", "return_attention_mask": True, "sampling_rate": 32000,
        "stem_indices": [3, 2]}, indent=2))
    return folder


def build_encodec(folder: Path, sample_rate: int = 24_000) -> Path:
    """facebook/encodec_24khz / encodec_32khz: EncodecModel + EncodecFeatureExtractor."""
    from transformers import EncodecFeatureExtractor, EncodecModel

    torch.manual_seed(0)
    model = EncodecModel(_encodec_config(sample_rate))
    random_codebooks(model)
    model.save_pretrained(folder)
    EncodecFeatureExtractor(feature_size=1, sampling_rate=sample_rate).save_pretrained(folder)
    return folder


def build_dac(folder: Path, sample_rate: int = 16_000) -> Path:
    """descript/dac_16khz / dac_44khz: DacModel + DacFeatureExtractor (real hops: 320 and 512)."""
    from transformers import DacConfig, DacFeatureExtractor, DacModel

    torch.manual_seed(0)
    ratios, n_q = ([2, 4, 5, 8], 12) if sample_rate == 16_000 else ([2, 4, 8, 8], 9)
    cfg = DacConfig(encoder_hidden_size=4, downsampling_ratios=ratios, upsampling_ratios=ratios[::-1],
                    decoder_hidden_size=32, n_codebooks=n_q, codebook_size=1024, codebook_dim=4, hidden_size=16,
                    sampling_rate=sample_rate)
    DacModel(cfg).save_pretrained(folder)
    DacFeatureExtractor(feature_size=1, sampling_rate=sample_rate, hop_length=cfg.hop_length).save_pretrained(folder)
    return folder


def build_clap(folder: Path) -> Path:
    """laion/clap-htsat-unfused: ClapModel + ClapProcessor (ClapFeatureExtractor + RobertaTokenizer)."""
    torch.manual_seed(0)
    tok = roberta_tokenizer(max_length=64)
    clap_model(8, len(tok)).save_pretrained(folder)
    clap_features().save_pretrained(folder)
    save_roberta(tok, folder)
    return folder


# registry name -> builder (every public card has one)
BUILDERS = {
    "cvssp/audioldm-s-full": build_audioldm,
    "cvssp/audioldm-s-full-v2": build_audioldm,
    "cvssp/audioldm-m-full": build_audioldm,
    "cvssp/audioldm-l-full": build_audioldm,
    "cvssp/audioldm2": build_audioldm2,
    "cvssp/audioldm2-music": build_audioldm2,
    "ucsd-reach/musicldm": build_musicldm,
    "stabilityai/stable-audio-open-1.0": build_stable_audio,
    "facebook/musicgen-small": build_musicgen,
    "facebook/musicgen-medium": build_musicgen,
    "facebook/musicgen-large": build_musicgen,
    "facebook/musicgen-melody": build_musicgen_melody,
    "facebook/encodec_24khz": lambda f: build_encodec(f, 24_000),
    "facebook/encodec_32khz": lambda f: build_encodec(f, 32_000),
    "descript/dac_16khz": lambda f: build_dac(f, 16_000),
    "descript/dac_44khz": lambda f: build_dac(f, 44_100),
    "laion/clap-htsat-unfused": build_clap,
}
