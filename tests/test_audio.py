"""The Audio type: round trips, conversions, loudness, editing, and one-line errors for bad input."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from foley.audio import Audio, info
from foley.errors import AudioError

from .conftest import tone

PCM16_STEP = 1.0 / 32768


def _snr_db(ref: np.ndarray, x: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref**2) / max(np.sum((ref - x) ** 2), 1e-20)))


@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg"])
def test_round_trip(tmp_path, fmt, rate, channels):
    x = tone(0.25, rate, channels, freq=300.0)
    path = Audio(x, rate).save(tmp_path / f"a.{fmt}")
    y = Audio.load(path)
    assert (y.sample_rate, y.channels, y.frames) == (rate, channels, x.shape[1])
    assert y.samples.dtype == np.float32
    assert info(path) == {"duration": x.shape[1] / rate, "sample_rate": rate, "channels": channels,
                          "frames": x.shape[1]}
    if fmt == "ogg":
        # Vorbis maps 6 channels to 5.1 with the LFE last, and its encoder low-passes the LFE.
        for k in range(5 if channels == 6 else channels):
            assert _snr_db(x[k], y.samples[k]) > 15, f"channel {k}"
    else:  # PCM_16: exact to half a quantisation step
        assert np.abs(y.samples - x).max() <= PCM16_STEP


def test_mp3_loads(tmp_path):
    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile cannot write MP3 (needs libsndfile >= 1.1 built with LAME)")
    x = tone(1.0, 44100, 2, freq=440.0, amp=0.3)
    sf.write(str(tmp_path / "a.mp3"), x.T, 44100, format="MP3", subtype="MPEG_LAYER_III")
    y = Audio.load(tmp_path / "a.mp3")
    assert (y.sample_rate, y.channels) == (44100, 2)
    assert abs(y.frames - x.shape[1]) <= 1152  # at most one MPEG frame of padding
    assert abs(y.rms_db() - Audio(x, 44100).rms_db()) < 1.0
    spectrum = np.abs(np.fft.rfft(y.samples[0]))
    assert abs(np.argmax(spectrum) * 44100 / y.frames - 440.0) < 5.0


@pytest.mark.parametrize(("src", "dst", "seconds"), [(44100, 16000, 1.0), (48000, 22050, 0.3), (8000, 48000, 0.5)])
def test_resample_keeps_duration_and_pitch(src, dst, seconds):
    a = Audio(tone(seconds, src, 2, freq=1000.0), src)
    b = a.resample(dst)
    assert b.sample_rate == dst
    assert b.frames == round(seconds * dst)
    spectrum = np.abs(np.fft.rfft(b.samples[0]))
    assert abs(np.argmax(spectrum) * dst / b.frames - 1000.0) <= dst / b.frames


def test_load_converts_rate_and_channels(tmp_path, write_audio):
    write_audio(tmp_path / "six.wav", seconds=0.5, rate=48000, channels=6)
    a = Audio.load(tmp_path / "six.wav", sample_rate=16000, channels=2)
    assert (a.channels, a.sample_rate, a.frames) == (2, 16000, 8000)


def test_mono_stereo():
    mono = Audio(tone(0.1, 16000, 1), 16000)
    st = mono.to_stereo()
    assert st.channels == 2 and np.array_equal(st.samples[0], st.samples[1])
    assert np.allclose(st.to_mono().samples, mono.samples)
    lr = Audio(np.stack([np.ones(100), -np.ones(100)]), 16000)
    assert np.allclose(lr.to_mono().samples, 0.0)
    lfe_only = np.zeros((6, 100), np.float32)
    lfe_only[3] = 0.5
    assert np.allclose(Audio(lfe_only, 16000).to_stereo().samples, 0.0)  # 5.1 down-mix drops the LFE
    left_only = np.zeros((6, 100), np.float32)
    left_only[0] = 1.0
    folded = Audio(left_only, 16000).to_stereo().samples
    assert folded[0].max() > 0 and np.allclose(folded[1], 0.0) and folded.max() <= 1.0
    with pytest.raises(AudioError):
        mono.to_channels(3)


def _true_peak_db(a: Audio) -> float:
    # An independent true-peak estimate (polyphase x4, not soxr) to check the limiter's promise.
    up = resample_poly(a.samples.astype(np.float64), 4, 1, axis=1)
    return 20 * np.log10(np.abs(up).max())


@pytest.mark.parametrize("target", [-23.0, -16.0])
def test_loudness_normalisation(target):
    rng = np.random.default_rng(0)
    noise = Audio(0.02 * rng.standard_normal((2, 48000)), 48000)
    peaky = tone(2.0, 48000, 2, freq=200.0, amp=0.1) * np.exp(-np.arange(96000) / 48000 * 3)
    for a in (noise, Audio(peaky, 48000)):
        b = a.normalize_loudness(target, true_peak_db=-1.0)
        assert abs(b.loudness() - target) <= 0.5
        assert _true_peak_db(b) <= -1.0 + 0.1
        assert b.true_peak_db() <= -1.0


def test_limiter_holds_ceiling_on_hot_audio():
    rng = np.random.default_rng(1)
    hot = Audio(np.clip(rng.standard_normal((2, 16000)), -4, 4), 16000)
    out = hot.limit(-1.0)
    assert out.true_peak_db() <= -1.0 and _true_peak_db(out) <= -0.9


def test_silence_normalises_to_silence():
    s = Audio.silence(0.5, 16000, 2)
    assert np.array_equal(s.normalize_loudness().samples, s.samples)


def test_fades():
    a = Audio(np.ones((2, 16000), np.float32), 16000)
    b = a.fade(fade_in=0.1, fade_out=0.2)
    env = b.samples[0]
    assert env[0] == 0.0 and env[-1] == 0.0
    assert np.all(np.diff(env[:1600]) >= 0) and np.all(np.diff(env[-3200:]) <= 0)
    assert np.allclose(env[1600:16000 - 3200], 1.0)
    assert abs(env[800] - 0.5) < 0.01  # cosine-squared ramp is half way at its midpoint


def test_trim_silence():
    rate = 16000
    body = tone(0.2, rate, 1)
    x = np.concatenate([np.zeros((1, 4800)), body, np.zeros((1, 4800))], axis=1)
    t = Audio(x, rate).trim_silence(threshold_db=-50, pad=0.01)
    assert abs(t.duration - (0.2 + 2 * 0.01)) <= 0.011
    # A sound only in the last, partial 10 ms window is kept.
    tail = np.concatenate([np.zeros((1, 4800)), tone(0.005, rate, 1)], axis=1)
    assert Audio(tail, rate).trim_silence().frames > 0
    assert Audio.silence(0.3, rate).trim_silence().frames == 0


def _patched_wav(path, rate: int | None = None, channels_field: int | None = None):
    """A valid 16 kHz wav whose header then claims another sample rate."""
    sf.write(str(path), np.zeros(1600, np.float32), 16000, subtype="PCM_16")
    b = bytearray(path.read_bytes())
    b[24:28] = struct.pack("<I", rate)
    b[28:32] = struct.pack("<I", rate * 2)
    path.write_bytes(bytes(b))
    return path


def _bad_inputs(tmp_path):
    (tmp_path / "folder.wav").mkdir()
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF" + bytes(range(256)) * 4)
    (tmp_path / "notes.txt").write_text("not audio")
    sf.write(str(tmp_path / "zero.wav"), np.zeros((0, 1), np.float32), 16000)
    sf.write(str(tmp_path / "many.wav"), np.zeros((10, 100), np.float32), 16000)
    return {
        "missing.wav": "not found",
        "folder.wav": "is a folder",
        "empty.wav": "empty",
        "corrupt.wav": "corrupt",
        "notes.txt": "unsupported format",
        "zero.wav": "zero length",
        "many.wav": "100 channels",
        _patched_wav(tmp_path / "slow.wav", 5).name: "5 Hz",
        _patched_wav(tmp_path / "fast.wav", 10_000_000).name: "10000000 Hz",
    }


@pytest.mark.parametrize("reader", ["load", "info"])
def test_bad_inputs_give_one_line_errors(tmp_path, reader):
    for name, words in _bad_inputs(tmp_path).items():
        path = tmp_path / name
        with pytest.raises(AudioError) as e:
            Audio.load(path) if reader == "load" else info(path)
        msg = str(e.value)
        assert "\n" not in msg and str(path) in msg and words in msg, (name, msg)


def test_failed_saves_leave_no_file(tmp_path, monkeypatch):
    bad = Audio(np.full((1, 100), np.nan, np.float32), 16000)
    with pytest.raises(AudioError, match="NaN"):
        bad.save(tmp_path / "nan.wav")
    with pytest.raises(AudioError, match="cannot write format"):
        Audio(tone(0.1), 16000).save(tmp_path / "a.mp3")

    def crash(file, data, samplerate, **kw):  # writes half the bytes, then the disk is full
        with open(file, "wb") as f:
            f.write(b"RIFF" + b"\0" * 1000)
        raise OSError(28, "No space left on device")

    good = Audio(tone(0.1), 16000)
    good.save(tmp_path / "kept.wav")
    before = (tmp_path / "kept.wav").read_bytes()
    monkeypatch.setattr(sf, "write", crash)
    with pytest.raises(AudioError, match="No space left") as e:
        good.save(tmp_path / "crash.wav")
    assert "\n" not in str(e.value) and "crash.wav" in str(e.value)
    with pytest.raises(AudioError):
        Audio(tone(0.1, 16000, 1, freq=100.0), 16000).save(tmp_path / "kept.wav")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.wav"]  # no target, no temporary files
    assert (tmp_path / "kept.wav").read_bytes() == before  # the old file is untouched


def test_saved_files_get_normal_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    os.umask(umask)
    path = Audio(tone(0.1), 16000).save(tmp_path / "a.flac")
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
