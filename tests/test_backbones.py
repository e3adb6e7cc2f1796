"""Tier-3 backbones: random checkpoints in the official formats load through the real loaders.

Each checkpoint carries the official keys and shapes (our module at random init, saved the way the
publisher saves it); the published checksums then do not match, so tests pass their own sha256
through ``checksums=``, which is also how a user loads a file on purpose.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from foley.audio import Audio
from foley.errors import ModelError
from foley.eval.backbones import BACKBONES, load_backbone, unavailable_reason
from foley.eval.backbones.panns import Cnn14
from foley.eval.backbones.spec import file_digests
from foley.eval.backbones.vggish import MEL_MAX_HZ, MEL_MIN_HZ, VGGishFrontEnd, VGGishNet

VGG, PCA = "vggish-10086976.pth", "vggish_pca_params-970ea276.pth"
CNN16, CNN32 = "Cnn14_16k_mAP=0.438.pth", "Cnn14_mAP=0.431.pth"
CLAP = "clap-htsat-unfused"


def sha(path) -> str:
    return file_digests(path)[0]


def noise(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> Audio:
    rng = np.random.default_rng(seed)
    return Audio(0.1 * rng.standard_normal((channels, int(seconds * rate))).astype(np.float32), rate)


def light(state: dict) -> dict:
    """The same keys and shapes as ``state`` with stride-0 constant tensors (a few bytes on disk)."""
    return {k: torch.full((), 0.01).expand(v.shape) for k, v in state.items()}


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLEY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def vggish_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("vggish")
    torch.manual_seed(0)
    torch.save(VGGishNet().state_dict(), d / VGG)
    rng = np.random.default_rng(0)
    vectors, _ = np.linalg.qr(rng.standard_normal((128, 128)))
    # numpy arrays, means as a column, as in Google's vggish_pca_params.npz
    torch.save({"pca_eigen_vectors": vectors, "pca_means": 0.1 * rng.standard_normal((128, 1))}, d / PCA)
    return d


@pytest.fixture(scope="module")
def panns_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("panns")
    torch.manual_seed(0)
    net = Cnn14(16_000, **BACKBONES["panns-cnn14-16k"].options)
    torch.save({"model": net.state_dict()}, d / CNN16)
    return d


@pytest.fixture(scope="module")
def clap_dir(tmp_path_factory):
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapTextConfig,
        RobertaTokenizer,
    )

    d = tmp_path_factory.mktemp("clap") / CLAP
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])}
    for c in [chr(i) for i in range(ord("a"), ord("z") + 1)] + ["Ġ"]:  # byte-level BPE: Ġ is a space
        vocab[c] = len(vocab)
    text = ClapTextConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                          intermediate_size=32, max_position_embeddings=64)
    audio = ClapAudioConfig(depths=[1, 1], num_attention_heads=[1, 2], hidden_size=32, patch_embeds_hidden_size=16,
                            enable_fusion=False, spec_size=256, window_size=8)
    torch.manual_seed(0)
    ClapModel(ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=8)).save_pretrained(d)
    ClapFeatureExtractor(sampling_rate=48_000, max_length_s=1, truncation="rand_trunc", padding="repeatpad",
                         frequency_min=50, frequency_max=14_000).save_pretrained(d)
    RobertaTokenizer(vocab=vocab, merges=[]).save_pretrained(d)
    return d


def install(home, folder: str, *paths) -> None:
    """Put files (symlinks) or a folder copy into ``$FOLEY_HOME/weights/<folder>/``."""
    target = home / "weights" / folder
    target.mkdir(parents=True, exist_ok=True)
    for p in paths:
        (target / p.name).symlink_to(p)


# --- registry and missing files -------------------------------------------------------------------------------

def test_registry_names_official_files_urls_and_licences():
    assert {"vggish", "vggish-pca", "panns-cnn14-16k", "panns-cnn14-32k", CLAP} <= set(BACKBONES)
    for spec in BACKBONES.values():
        assert spec.licence and spec.reference and spec.sample_rate > 0
        assert all(f.url.startswith("http") for f in spec.files)
    assert BACKBONES["vggish"].files[0].name == VGG and BACKBONES["panns-cnn14-32k"].files[0].name == CNN32


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_missing_files_fail_at_once_naming_files_urls_and_folder(name, tmp_path):
    with pytest.raises(ModelError) as err:
        load_backbone(name)
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / "home" / "weights" / BACKBONES[name].folder) in msg
    for f in BACKBONES[name].files:
        if not f.optional:
            assert f.name in msg and f.url in msg
    assert unavailable_reason(name) == msg


def test_missing_path_and_unknown_name_fail_clearly(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_backbone("vggish", tmp_path / "nowhere.pth")
    with pytest.raises(ModelError, match="unknown backbone 'fad'"):
        load_backbone("fad")


# --- VGGish ---------------------------------------------------------------------------------------------------

def test_vggish_loads_from_path_and_embeds(vggish_dir):
    b = load_backbone("vggish", vggish_dir / VGG, checksums={VGG: sha(vggish_dir / VGG)})
    assert (b.name, b.sample_rate, b.dim, b.checksum) == ("vggish", 16_000, 128, "user")
    assert b.hash == sha(vggish_dir / VGG)[:12]
    audios = [noise(1.0, 22_050, channels=2), noise(2.5, 16_000, seed=1), noise(0.2, 16_000, seed=2)]
    frames = b.embed_frames(audios)
    assert [f.shape for f in frames] == [(1, 128), (2, 128), (1, 128)]  # 0.96 s examples; short clip padded
    emb = b.embed(audios)
    assert emb.shape == (3, 128) and emb.dtype == np.float32 and np.isfinite(emb).all()
    np.testing.assert_allclose(emb[1], frames[1].mean(axis=0), rtol=1e-6)
    assert (emb < 0).any()  # the FAD embedding is taken before the final ReLU
    np.testing.assert_array_equal(b.embed(audios), emb)
    assert b.embed([]).shape == (0, 128)
    json.dumps(b.describe())
    assert b.describe()["settings"]["output"].startswith("last linear layer before ReLU")


def test_vggish_loads_from_cache(vggish_dir, tmp_path):
    install(tmp_path / "home", "vggish", vggish_dir / VGG)
    assert unavailable_reason("vggish") is None
    b = load_backbone("vggish", checksums={VGG: sha(vggish_dir / VGG)})
    assert b.hash == sha(vggish_dir / VGG)[:12]
    assert b.embed([noise(1.0, 16_000)]).shape == (1, 128)


def test_vggish_pca_gives_quantised_release_features(vggish_dir):
    sums = {VGG: sha(vggish_dir / VGG), PCA: sha(vggish_dir / PCA)}
    b = load_backbone("vggish-pca", vggish_dir, checksums=sums)
    emb = b.embed_frames([noise(2.0, 16_000)])[0]
    assert emb.shape == (2, 128) and emb.min() >= 0 and emb.max() <= 255
    np.testing.assert_array_equal(emb, np.round(emb))
    assert b.hash != sums[VGG][:12]  # two weight files: the hash covers both


def test_vggish_front_end_puts_a_tone_in_its_mel_band():
    front = VGGishFrontEnd(16_000)
    t = np.arange(16_000) / 16_000
    mel = front(np.sin(2 * np.pi * 1_000.0 * t).astype(np.float32))
    assert mel.shape == (1, 96, 64)
    to_mel = lambda hz: 1127.0 * np.log1p(hz / 700.0)  # noqa: E731
    centres = np.linspace(to_mel(MEL_MIN_HZ), to_mel(MEL_MAX_HZ), 66)[1:-1]
    assert abs(int(mel.mean(dim=1)[0].argmax()) - int(np.argmin(abs(centres - to_mel(1_000.0))))) <= 1


def test_published_checksum_mismatch_fails_clearly(vggish_dir):
    with pytest.raises(ModelError) as err:
        load_backbone("vggish", vggish_dir / VGG)  # random weights under the official name
    msg = str(err.value)
    assert VGG in msg and "10086976" in msg and "re-download" in msg and "\n" not in msg
    with pytest.raises(ModelError, match="the checksum you passed"):
        load_backbone("vggish", vggish_dir / VGG, checksums={VGG: "deadbeef"})
    with pytest.raises(ModelError, match="does not use"):
        load_backbone("vggish", vggish_dir / VGG, checksums={"model.bin": "deadbeef"})


def test_vggish_renamed_and_reshaped_keys_are_named(tmp_path):
    state = light(VGGishNet().state_dict())
    state["embeddings.4.kernel"] = state.pop("embeddings.4.weight")
    state["features.0.weight"] = torch.zeros(64, 1, 3, 2)
    path = tmp_path / VGG
    torch.save(state, path)
    with pytest.raises(ModelError) as err:
        load_backbone("vggish", path, checksums={VGG: sha(path)})
    msg = str(err.value)
    assert "missing keys embeddings.4.weight" in msg and "unexpected keys embeddings.4.kernel" in msg
    assert "features.0.weight (64, 1, 3, 2) != (64, 1, 3, 3)" in msg


# --- PANNs CNN14 ----------------------------------------------------------------------------------------------

def test_panns_loads_from_path_with_embeddings_and_sigmoid_posteriors(panns_dir):
    b = load_backbone("panns-cnn14-16k", panns_dir / CNN16, checksums={CNN16: sha(panns_dir / CNN16)})
    assert (b.sample_rate, b.dim, b.checksum, b.labels) == (16_000, 2048, "user", None)
    audios = [noise(1.0, 16_000), noise(0.5, 44_100, channels=2, seed=1)]
    emb, logits, post = b.embed(audios), b.logits(audios), b.posteriors(audios)
    both = b.embed_and_logits(audios)
    np.testing.assert_array_equal(both[0], emb)
    np.testing.assert_array_equal(both[1], logits)
    assert emb.shape == (2, 2048) and np.isfinite(emb).all() and emb.min() >= 0  # ReLU(fc1)
    assert logits.shape == post.shape == (2, 527)
    assert ((post > 0) & (post < 1)).all()
    np.testing.assert_allclose(post, 1 / (1 + np.exp(-logits)), rtol=1e-5)
    assert not np.allclose(post.sum(axis=1), 1.0)  # multi-label: independent classes
    json.dumps(b.describe())


def test_panns_front_end_equals_the_checkpoints_torchlibrosa_kernels(panns_dir):
    b = load_backbone("panns-cnn14-16k", panns_dir / CNN16, checksums={CNN16: sha(panns_dir / CNN16)})
    net = b.net
    x = torch.from_numpy(noise(1.0, 16_000).samples)
    stft = net.spectrogram_extractor.stft
    padded = torch.nn.functional.pad(x[:, None], (net.n_fft // 2, net.n_fft // 2), mode="reflect")
    power = (torch.nn.functional.conv1d(padded, stft.conv_real.weight, stride=net.hop) ** 2
             + torch.nn.functional.conv1d(padded, stft.conv_imag.weight, stride=net.hop) ** 2)
    reference = power.transpose(1, 2) @ net.logmel_extractor.melW           # torchlibrosa's path
    ours = 10 ** (net.log_mel(x)[:, 0] / 10)                                 # torch.stft + librosa mel
    assert ours.shape == reference.shape
    assert float((ours - reference).abs().max()) < 1e-4 * float(reference.abs().max())


def test_panns_loads_from_cache_with_audioset_labels(panns_dir, tmp_path):
    labels = tmp_path / "class_labels_indices.csv"
    labels.write_text("index,mid,display_name\n" + "".join(f'{i},/m/{i:05d},"Class {i}"\n' for i in range(527)))
    install(tmp_path / "home", "panns", panns_dir / CNN16, labels)
    b = load_backbone("panns-cnn14-16k", checksums={CNN16: sha(panns_dir / CNN16)})
    assert b.labels is not None and len(b.labels) == 527 and b.labels[3] == "Class 3"
    assert b.hash == sha(panns_dir / CNN16)[:12] and b.checksum == "user"
    assert set(b.files) == {CNN16, "class_labels_indices.csv"}


def test_panns_checkpoint_for_another_rate_is_refused(panns_dir):
    with pytest.raises(ModelError) as err:
        load_backbone("panns-cnn14-32k", panns_dir / CNN16, checksums={CNN32: sha(panns_dir / CNN16)})
    msg = str(err.value)
    assert "spectrogram_extractor.stft.conv_real.weight (257, 1, 512) != (513, 1, 1024)" in msg
    assert "logmel_extractor.melW" in msg


def test_panns_tampered_front_end_and_wrong_structure_are_refused(tmp_path):
    real = Cnn14(16_000, **BACKBONES["panns-cnn14-16k"].options).state_dict()
    state = light(real)  # constant weights and mel matrix (right shapes, wrong front end), true STFT kernels
    for key in ("spectrogram_extractor.stft.conv_real.weight", "spectrogram_extractor.stft.conv_imag.weight"):
        state[key] = real[key]
    path = tmp_path / CNN16
    torch.save({"model": state}, path)
    with pytest.raises(ModelError, match="front-end constant .*melW"):
        load_backbone("panns-cnn14-16k", path, checksums={CNN16: sha(path)})
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ModelError, match="expected a dict with a 'model' state dict"):
        load_backbone("panns-cnn14-16k", path, checksums={CNN16: sha(path)})
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="unreadable torch checkpoint"):
        load_backbone("panns-cnn14-16k", path, checksums={CNN16: sha(path)})


# --- LAION-CLAP -----------------------------------------------------------------------------------------------

def test_clap_embeds_audio_and_text_and_scores_pairs(clap_dir):
    b = load_backbone(CLAP, clap_dir)
    assert b.checksum == "unverified" and b.hash == sha(clap_dir / "model.safetensors")[:12]
    assert b.sample_rate == 48_000 and b.dim == 8
    audios = [noise(3.0, 22_050, channels=2), noise(0.5, 16_000, seed=1)]  # longer and shorter than 1 s
    emb = b.embed(audios)
    assert emb.shape == (2, 8) and np.isfinite(emb).all()
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(b.embed(audios), emb)  # no random truncation
    text = b.embed_text(["a dog barks", "rain on a tin roof"])
    assert text.shape == (2, 8)
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, rtol=1e-5)
    score = b.clap_score(audios, ["a dog barks", "rain on a tin roof"])
    np.testing.assert_allclose(score, np.sum(emb * text, axis=1), rtol=1e-5, atol=1e-6)
    assert score.shape == (2,) and (np.abs(score) <= 1 + 1e-6).all()
    with pytest.raises(ModelError, match="one text per audio"):
        b.clap_score(audios, ["only one"])


def test_clap_loads_from_cache_and_from_its_weight_file(clap_dir, tmp_path):
    shutil.copytree(clap_dir, tmp_path / "home" / "weights" / CLAP)
    assert load_backbone(CLAP).hash == sha(clap_dir / "model.safetensors")[:12]
    assert load_backbone(CLAP, clap_dir / "model.safetensors").embed([noise(1.0, 48_000)]).shape == (1, 8)


def test_clap_renamed_and_reshaped_keys_are_named(clap_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    broken = tmp_path / CLAP
    shutil.copytree(clap_dir, broken)
    state = load_file(broken / "model.safetensors")
    state["text_projection.linear1.kernel"] = state.pop("text_projection.linear1.weight")
    state["audio_projection.linear2.weight"] = torch.zeros(8, 3)
    save_file(state, broken / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelError) as err:
        load_backbone(CLAP, broken)
    msg = str(err.value)
    assert "missing keys text_projection.linear1.weight" in msg
    assert "unexpected keys text_projection.linear1.kernel" in msg
    assert "audio_projection.linear2.weight (8, 3) != (8, 8)" in msg


def test_checkpoint_reader_unpickles_objects_only_for_verified_files(tmp_path):
    from fractions import Fraction

    from foley.eval.backbones.common import read_checkpoint
    from foley.eval.backbones.spec import CheckedFile, WeightFile

    arrays, objects = tmp_path / "arrays.pth", tmp_path / "objects.pth"
    torch.save({"w": np.ones((2, 2), np.float32)}, arrays)
    torch.save({"w": torch.ones(2), "sampler": Fraction(1, 3)}, objects)
    wf = WeightFile("x.pth", "https://example.org/x.pth")
    assert read_checkpoint(CheckedFile(wf, arrays, sha(arrays), "unverified"))["w"].shape == (2, 2)
    with pytest.raises(ModelError, match="refusing to unpickle"):
        read_checkpoint(CheckedFile(wf, objects, sha(objects), "unverified"))
    assert read_checkpoint(CheckedFile(wf, objects, sha(objects), "user"))["sampler"] == Fraction(1, 3)
