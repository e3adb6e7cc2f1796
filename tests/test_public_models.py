"""Public foundation models through the registry, API and CLI, on tiny look-alike checkpoints.

Every public card gets a tiny random checkpoint in its repository's exact folder layout
(tests/public_fixtures.py), registered under its hub id in a temporary $FOLEY_HOME, so the real
loading code (diffusers/transformers ``from_pretrained`` on a local folder) runs offline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from typer.testing import CliRunner  # noqa: E402

import foley  # noqa: E402
from foley import registry  # noqa: E402
from foley.audio import Audio  # noqa: E402
from foley.errors import ModelError, RequestError  # noqa: E402
from foley.families.public import hub  # noqa: E402
from foley.families.public.cards import PUBLIC_CARDS, HubCard  # noqa: E402
from foley.family import families  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from public_fixtures import BUILDERS  # noqa: E402

GENERATORS = [n for n, c in PUBLIC_CARDS.items() if "generate" in c.tasks]
CODECS = [n for n, c in PUBLIC_CARDS.items() if c.family in ("encodec", "dac")]
FAST = {"steps": 2}  # diffusion steps in these tests


def sine(seconds: float, rate: int, channels: int = 1, freq: float = 440.0) -> Audio:
    t = np.arange(int(round(seconds * rate))) / rate
    x = np.stack([0.3 * np.sin(2 * np.pi * freq * (k + 1) * t) for k in range(channels)]).astype(np.float32)
    return Audio(x, rate)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A $FOLEY_HOME holding every public card's tiny checkpoint, imported under its hub id."""
    root = tmp_path_factory.mktemp("public")
    old = os.environ.get("FOLEY_HOME")
    os.environ["FOLEY_HOME"] = str(root / "home")
    built: dict = {}
    for name, build in BUILDERS.items():
        key = (build, name if build.__name__ == "<lambda>" else "")
        if key not in built:
            built[key] = build(root / "src" / name.replace("/", "--"))
        hub.import_folder(built[key], name=name)
    yield root
    if old is None:
        os.environ.pop("FOLEY_HOME", None)
    else:
        os.environ["FOLEY_HOME"] = old


_loaded: dict = {}


@pytest.fixture
def load(home):
    def get(name):
        if name not in _loaded:
            _loaded[name] = foley.load(name)
        return _loaded[name]

    return get


def cli(*args):
    from foley.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def run_foley(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "foley", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200", **(env or {})}, timeout=timeout)


# --- cards --------------------------------------------------------------------------------------------

def test_every_public_card_states_rate_channels_length_tasks_licence_and_files():
    required = {"cvssp/audioldm-s-full", "cvssp/audioldm-s-full-v2", "cvssp/audioldm-m-full", "cvssp/audioldm-l-full",
                "cvssp/audioldm2", "cvssp/audioldm2-music", "ucsd-reach/musicldm", "stabilityai/stable-audio-open-1.0",
                "facebook/musicgen-small", "facebook/musicgen-medium", "facebook/musicgen-large",
                "facebook/musicgen-melody", "facebook/encodec_24khz", "facebook/encodec_32khz", "descript/dac_16khz",
                "descript/dac_44khz", "laion/clap-htsat-unfused"}
    assert required <= set(registry.CARDS) and required == set(BUILDERS)
    for name in required:
        card = registry.CARDS[name]
        assert isinstance(card, HubCard) and card.repo == name and card.family in families()
        assert card.sample_rate > 0 and card.channels in (1, 2) and card.max_duration > 0 and card.tasks
        assert card.licence and "unknown" not in card.licence and card.files and card.size_mb > 0
    assert registry.CARDS["stabilityai/stable-audio-open-1.0"].channels == 2
    assert all(registry.CARDS[n].non_commercial for n in ("facebook/musicgen-small", "cvssp/audioldm2"))
    assert "melody" in registry.CARDS["facebook/musicgen-melody"].tasks
    assert registry.card_for("musicgen-small").name == "facebook/musicgen-small"  # unique tail
    assert registry.CARDS["starter"].family == "ldm"  # our own model is still there


# --- offline behaviour ----------------------------------------------------------------------------------

def test_offline_load_fails_at_once_naming_files_and_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLEY_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(ModelError) as e:
        foley.load("cvssp/audioldm-s-full-v2")
    assert time.monotonic() - start < 10  # generous bound: the point is no 45 s hub time-out
    msg = str(e.value)
    for part in ("model_index.json", "unet", "vae", "vocoder", "text_encoder", "tokenizer", "scheduler",
                 "https://huggingface.co/cvssp/audioldm-s-full-v2", str(tmp_path / "empty" / "models"),
                 "foley models import", "foley models pull", "HF_HUB_OFFLINE"):
        assert part in msg
    assert "\n" not in msg
    with pytest.raises(ModelError, match="not downloaded yet"):  # resolve() alone never downloads
        registry.resolve("facebook/musicgen-small")


def test_unreachable_hub_is_detected_without_offline_flag(tmp_path):
    # port 9 (discard) on localhost is closed: connection refused, no network traffic
    env = {"FOLEY_HOME": str(tmp_path), "HF_HUB_OFFLINE": "", "TRANSFORMERS_OFFLINE": "",
           "HF_ENDPOINT": "http://127.0.0.1:9", "HTTPS_PROXY": "", "https_proxy": "", "ALL_PROXY": ""}
    start = time.monotonic()
    r = run_foley("models", "pull", "facebook/musicgen-small", env=env)
    r2 = run_foley("generate", "rain", "-m", "facebook/musicgen-small", "-o", tmp_path / "x.wav", env=env)
    assert time.monotonic() - start < 60  # two interpreter start-ups; a hub time-out alone would be ~45 s each
    for res in (r, r2):
        assert res.returncode == 2, res.stderr
        assert "127.0.0.1:9 is unreachable" in res.stderr and "model.safetensors" in res.stderr
        assert "foley models import DIR --name facebook/musicgen-small" in res.stderr
        assert "Traceback" not in res.stderr
    assert not (tmp_path / "x.wav").exists()


# --- generation through the API -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", GENERATORS)
def test_every_generator_card_generates_through_the_api(name, load):
    gen = load(name)
    card = registry.CARDS[name]
    sequential = card.family.startswith("musicgen")  # one sequence at a time: keep this short
    prompts = ["a dog barking"] if sequential else ["a dog barking", "rain"]
    seconds = 0.25 if sequential else 0.5
    outs = gen.generate(prompts, duration=seconds, seed=7, num_variations=2, **({} if sequential else FAST))
    assert len(outs) == 2 * len(prompts)
    for k, a in enumerate(outs):
        assert (a.sample_rate, a.channels, a.frames) == (card.sample_rate, card.channels, card.sample_rate * seconds)
        assert np.isfinite(a.samples).all()
        assert a.meta["model"]["name"] == name and a.meta["seed"] == 7 + k % 2 and a.meta["variation"] == k % 2
        assert a.meta["request"]["prompt"] == prompts[k // 2] and a.meta["model"]["weight_hash"]
        assert a.meta["placement"]["device"] == "cpu" and a.meta["settings"]
    assert not np.array_equal(outs[0].samples, outs[1].samples)  # variations differ


@pytest.mark.parametrize("name", ["cvssp/audioldm-s-full-v2", "facebook/musicgen-small"])
def test_a_seed_gives_the_same_sound_in_any_batch(name, load):
    gen = load(name)
    extra = {} if "musicgen" in name else FAST
    alone = gen.generate("footsteps on gravel", duration=0.25, seed=11, **extra)[0]
    batch = gen.generate(["wind", "footsteps on gravel"], duration=0.25, seed=11, **extra)[1]
    scale = np.abs(alone.samples).max()
    assert scale > 0 and np.abs(alone.samples - batch.samples).max() <= 1e-3 * scale


def test_settings_a_model_does_not_have_are_refused(load):
    with pytest.raises(RequestError, match="no steps setting"):
        load("facebook/musicgen-small").generate("x", duration=0.5, steps=10)
    with pytest.raises(RequestError, match="has no scheduler setting"):
        load("stabilityai/stable-audio-open-1.0").generate("x", duration=0.5, scheduler="euler")
    with pytest.raises(RequestError, match="maximum"):
        load("stabilityai/stable-audio-open-1.0").generate("x", duration=10.0)


# --- editing -------------------------------------------------------------------------------------------

def test_audioldm_edits_in_latent_space(load):
    gen = load("cvssp/audioldm-s-full-v2")
    src = sine(1.0, 16_000)
    same = gen.edit(src, "a bell", task="style_transfer", strength=0.0, seed=1, **FAST)[0]
    np.testing.assert_array_equal(same.samples, src.samples)
    styled = gen.edit(src, "a bell", task="style_transfer", strength=0.6, seed=1, **FAST)[0]
    assert styled.frames == src.frames and not np.allclose(styled.samples, src.samples)
    inp = gen.edit(src, "a bell", task="inpaint", mask_start=0.4, mask_end=0.6, seed=1, **FAST)[0]
    assert inp.frames == src.frames
    np.testing.assert_array_equal(inp.samples[:, :6000], src.samples[:, :6000])  # outside mask: bit-exact
    np.testing.assert_array_equal(inp.samples[:, 10_000:], src.samples[:, 10_000:])
    assert not np.allclose(inp.samples[:, 7000:9000], src.samples[:, 7000:9000])
    ext = gen.edit(src, "a bell", task="continue", duration=1.5, seed=1, **FAST)[0]
    assert ext.frames == 24_000
    np.testing.assert_array_equal(ext.samples[:, :15_000], src.samples[:, :15_000])
    sr = gen.edit(src, "full band", task="super_resolution", cutoff_hz=2000.0, seed=1, **FAST)[0]
    assert sr.frames == src.frames and sr.meta["request"]["task"] == "super_resolution"


def test_stable_audio_inpaints_and_transfers_stereo(load):
    gen = load("stabilityai/stable-audio-open-1.0")
    src = sine(1.0, 44_100, channels=2)
    inp = gen.edit(src, "thunder", task="inpaint", mask_start=0.3, mask_end=0.6, seed=2, **FAST)[0]
    assert (inp.channels, inp.frames) == (2, src.frames)
    np.testing.assert_array_equal(inp.samples[:, :12_000], src.samples[:, :12_000])
    styled = gen.edit(src, "thunder", task="style_transfer", strength=0.5, seed=2, **FAST)[0]
    assert styled.frames == src.frames and np.isfinite(styled.samples).all()


def test_musicgen_continues_audio_and_melody_conditions_on_a_tune(load):
    src = sine(0.4, 32_000)
    cont = load("facebook/musicgen-small").edit(src, "jazz", task="continue", duration=0.8, seed=3)[0]
    assert cont.frames == 25_600 and cont.meta["request"]["task"] == "continue"
    np.testing.assert_array_equal(cont.samples[:, :12_000], src.samples[:, :12_000])
    mel = load("facebook/musicgen-melody").edit(src, "strings", task="style_transfer", duration=0.6, seed=3)[0]
    assert mel.frames == 19_200 and mel.meta["settings"]["melody_seconds"] == pytest.approx(0.4)


def test_melody_chroma_marks_the_pitch_class_of_a_tone():
    from foley.families.public.musicgen import MelodyChroma

    chroma = MelodyChroma({"sampling_rate": 32_000, "n_fft": 16_384, "hop_length": 4096, "num_chroma": 12})
    c = chroma(sine(2.0, 32_000, freq=440.0).samples[0])  # A
    assert c.shape[-1] == 12 and torch.all(c.sum(-1) == 1)
    assert (c[0, 2:-2].argmax(-1) == 9).all()  # chroma index 9 = A (C = 0)


def test_unsupported_tasks_name_the_models_that_support_them(load):
    with pytest.raises(RequestError) as e:
        load("facebook/musicgen-small").edit(sine(0.5, 32_000), "x", task="inpaint", mask_start=0.1, mask_end=0.2)
    assert "cvssp/audioldm-s-full-v2" in str(e.value) and "stabilityai/stable-audio-open-1.0" in str(e.value)
    with pytest.raises(RequestError, match="models that can: .*cvssp/audioldm2"):
        load("stabilityai/stable-audio-open-1.0").edit(sine(0.5, 44_100, 2), "x", task="super_resolution")


# --- CLI --------------------------------------------------------------------------------------------

def test_foley_generate_with_a_hub_id_in_a_fresh_process(home, tmp_path):
    out = tmp_path / "dog.wav"
    r = run_foley("generate", "a dog barking", "--model", "cvssp/audioldm-s-full-v2", "-d", "0.5", "--steps", "2",
                  "--seed", "4", "-o", out, env={"HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("NON-COMMERCIAL weights, licence CC BY-NC-SA 4.0") == 1
    a = Audio.load(out)
    assert (a.sample_rate, a.channels, a.frames) == (16_000, 1, 8000)
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["model"]["name"] == "cvssp/audioldm-s-full-v2" and side["seed"] == 4 and side["settings"]["steps"] == 2


@pytest.mark.parametrize("name", ["cvssp/audioldm2", "ucsd-reach/musicldm", "stabilityai/stable-audio-open-1.0",
                                  "facebook/musicgen-small"])
def test_foley_generate_and_edit_cli_for_each_family(name, home, tmp_path):
    card = registry.CARDS[name]
    steps = [] if card.family.startswith("musicgen") else ["--steps", "2"]
    out = tmp_path / "g.wav"
    seconds = "0.25" if card.family == "musicgen" else "0.5"
    r = cli("generate", "soft rain", "-m", name, "-d", seconds, "--seed", "1", *steps, "-o", out)
    assert r.exit_code == 0, r.output
    a = Audio.load(out)
    assert (a.sample_rate, a.channels) == (card.sample_rate, card.channels)
    task, how = ("continue", ["-d", "0.45"]) if card.family == "musicgen" else ("style_transfer", ["--strength", "0.5"])
    edited = tmp_path / "e.wav"
    r = cli("edit", out, "heavy rain", "--task", task, "-m", name, "--seed", "2", *steps, *how, "-o", edited)
    assert r.exit_code == 0, r.output
    assert json.loads(edited.with_suffix(".json").read_text())["request"]["task"] == task


def test_generate_refuses_codecs_and_clap_clearly(home, tmp_path):
    r = cli("generate", "x", "-m", "facebook/encodec_24khz", "-o", tmp_path / "x.wav")
    assert isinstance(r.exception, RequestError) and "is a codec" in str(r.exception)
    assert "cvssp/audioldm-s-full-v2" in str(r.exception)


# --- codecs and CLAP --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", CODECS)
def test_codecs_encode_and_decode(name, load):
    codec = load(name)
    card = registry.CARDS[name]
    src = sine(0.1, 22_050)  # any rate: resampled to the codec's
    codes = codec.encode(src)
    n = int(round(0.1 * card.sample_rate))
    assert codes.dtype == np.int64 and codes.shape[1] == int(np.ceil(n / codec.hop_length))
    assert 0 <= codes.min() and codes.max() < codec.codebook_size
    rec = codec.reconstruct(src)
    assert (rec.sample_rate, rec.channels, rec.frames) == (card.sample_rate, 1, n)
    low = codec.encode(src, bandwidth=codec.bandwidths[0])
    assert low.shape[0] < codes.shape[0] or len(codec.bandwidths) == 1
    assert codec.decode(low).frames >= n
    with pytest.raises(RequestError, match="kbps"):
        codec.encode(src, bandwidth=0.123)


@pytest.mark.parametrize("name", CODECS)
def test_codecs_through_the_foley_codec_cli(name, home, tmp_path):
    src = tmp_path / "in.wav"
    sine(0.2, 16_000).save(src)
    codes = tmp_path / "x.foley"
    r = cli("codec", "encode", src, "-c", name, "-o", codes)
    assert r.exit_code == 0, r.output
    r = cli("codec", "decode", codes, "-c", name, "-o", tmp_path / "out.wav")
    assert r.exit_code == 0, r.output
    out = Audio.load(tmp_path / "out.wav")
    rate = registry.CARDS[name].sample_rate  # decoded at the codec's rate, with the input's exact duration
    assert out.sample_rate == rate and out.frames == int(round(0.2 * rate))


def test_encodec_bandwidths_pick_codebooks(load):
    codec = load("facebook/encodec_24khz")
    assert codec.bandwidths == [1.5, 3.0, 6.0, 12.0, 24.0] and codec.frame_rate == 75
    assert codec.encode(sine(0.2, 24_000), bandwidth=1.5).shape[0] == 2
    assert load("facebook/encodec_32khz").encode(sine(0.2, 32_000)).shape[0] == 4  # MusicGen's 4 x 2048


def test_clap_card_loads_the_evaluation_backbone(load):
    clap = load("laion/clap-htsat-unfused")
    emb = clap.embed([sine(0.5, 48_000)])
    assert emb.shape == (1, clap.dim) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert -1 <= clap.clap_score([sine(0.5, 16_000)], ["a tone"])[0] <= 1
    assert clap.card.name == "laion/clap-htsat-unfused"


# --- foley models ----------------------------------------------------------------------------------

def test_models_list_and_info(home):
    r = cli("models", "list")
    assert r.exit_code == 0, r.output
    for name in PUBLIC_CARDS:
        assert name in r.output
    rows = {row["name"]: row for row in json.loads(cli("models", "list", "--json").output)}
    assert rows["facebook/musicgen-small"]["status"] == "imported"
    assert rows["facebook/musicgen-small"]["size"].endswith("MB") and rows["starter"]["family"] == "ldm"
    r = cli("models", "info", "stabilityai/stable-audio-open-1.0")
    assert r.exit_code == 0 and "Stability AI Community License" in r.output and "44100 Hz" in r.output
    assert "transformer" in r.output and "gated" in r.output
    r = cli("models", "info", "nope/nothing")
    assert isinstance(r.exception, ModelError)


def test_models_list_shows_missing_models_with_download_sizes(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLEY_HOME", str(tmp_path))
    rows = {row["name"]: row for row in json.loads(cli("models", "list", "--json").output)}
    assert rows["facebook/musicgen-large"]["status"] == "missing"
    assert rows["facebook/musicgen-large"]["size"].startswith("~") and rows["facebook/encodec_24khz"]["size"] == "93 MB"
    r = cli("models", "info", "facebook/musicgen-large")
    assert "foley models pull facebook/musicgen-large" in r.output and "spiece.model" in r.output


def test_import_detects_the_type_guesses_names_and_refuses_wrong_folders(home, tmp_path, monkeypatch):
    monkeypatch.setenv("FOLEY_HOME", str(tmp_path / "h"))
    src = home / "src" / "descript--dac_16khz"
    # a folder named like the repository: the hub id is guessed
    named = tmp_path / "dl" / "dac_16khz"
    named.parent.mkdir()
    named.symlink_to(src, target_is_directory=True)
    r = cli("models", "import", named)
    assert r.exit_code == 0, r.output
    assert "imported descript/dac_16khz (dac)" in r.output
    assert (tmp_path / "h" / "models" / "descript" / "dac_16khz" / "config.json").is_file()
    index = json.loads((tmp_path / "h" / "models.json").read_text())
    assert index["descript/dac_16khz"]["family"] == "dac" and index["descript/dac_16khz"]["fingerprint"]
    # a custom name for a folder of a known family loads too
    r = cli("models", "import", home / "src" / "cvssp--audioldm-s-full", "--name", "my-audioldm", "--symlink")
    assert r.exit_code == 0, r.output
    gen = foley.load("my-audioldm")
    assert gen.card.family == "audioldm" and gen.generate("x", duration=0.3, seed=1, **FAST)[0].frames == 4800
    # wrong family for a hub name, wrong rate for a card, incomplete folder, not a model folder
    r = cli("models", "import", src, "--name", "cvssp/audioldm2")
    assert isinstance(r.exception, ModelError) and "holds a dac checkpoint" in str(r.exception)
    cli("models", "import", home / "src" / "facebook--encodec_24khz", "--name", "facebook/encodec_32khz")
    with pytest.raises(ModelError, match="24000 Hz, 1-channel model but 'facebook/encodec_32khz' is 32000 Hz"):
        foley.load("facebook/encodec_32khz")
    broken = tmp_path / "broken"
    import shutil

    shutil.copytree(home / "src" / "cvssp--audioldm-s-full", broken)
    for f in (broken / "vocoder").glob("*.safetensors"):
        f.unlink()
    with pytest.raises(ModelError, match="missing vocoder/ weights"):
        hub.import_folder(broken, name="cvssp/audioldm-m-full")
    with pytest.raises(ModelError, match="not a known checkpoint layout"):
        hub.import_folder(tmp_path / "dl")


def test_hub_cache_layout_and_hand_placed_folders_are_found(home, tmp_path, monkeypatch):
    monkeypatch.setenv("FOLEY_HOME", str(tmp_path))
    import shutil

    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--facebook--encodec_24khz"
    shutil.copytree(home / "src" / "facebook--encodec_24khz", repo / "snapshots" / sha)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)
    codec = foley.load("facebook/encodec_24khz")
    assert codec.folder == repo / "snapshots" / sha and codec.weight_hash() == sha[:12]
    shutil.copytree(home / "src" / "descript--dac_16khz", tmp_path / "models" / "descript" / "dac_16khz")
    assert foley.load("descript/dac_16khz").encode(sine(0.1, 16_000)).shape[0] == 12
    rows = {row["name"]: row["status"] for row in json.loads(cli("models", "list", "--json").output)}
    assert rows["facebook/encodec_24khz"] == "cached" and rows["descript/dac_16khz"] == "imported"


# --- device policy ------------------------------------------------------------------------------

def test_device_policy_is_cpu_float32_here_and_refuses_what_it_cannot_do(monkeypatch):
    from foley import device

    for var in ("FOLEY_DEVICE", "FOLEY_DTYPE", "FOLEY_OFFLOAD"):
        monkeypatch.delenv(var, raising=False)
    p = device.choose(10**9)
    if not torch.cuda.is_available():
        assert (p.device, p.dtype, p.offload) == ("cpu", "float32", False)
        monkeypatch.setenv("FOLEY_DEVICE", "cuda")
        with pytest.raises(ModelError, match="not available"):
            device.choose()
        monkeypatch.delenv("FOLEY_DEVICE")
    assert device.choose(device="cpu", dtype="bfloat16").torch_dtype == torch.bfloat16
    assert device.choose(device="cpu", offload=True).offload is False  # nothing to offload to
    with pytest.raises(ModelError, match="unknown precision"):
        device.choose(dtype="float8")
    with pytest.raises(ModelError, match="unknown device"):
        device.choose(device="tpu")
