"""Control curves (foley.curves): the five analyzers on signals whose truth is known, every source form and its
one-line errors, the prompt prior, adherence, the request fields and the capability refusal."""

from __future__ import annotations

import json

import numpy as np
import pytest

from foley import curves as cv
from foley.audio import Audio
from foley.errors import RequestError
from foley.request import make_request

SR = 16_000
DUR = 3.0
T = np.arange(int(DUR * SR)) / SR


def glide(f_start=200.0, f_end=800.0, harmonic=True) -> Audio:
    f = f_start * (f_end / f_start) ** (T / DUR)
    phase = 2 * np.pi * np.cumsum(f) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 5)) if harmonic else np.sin(phase)
    return Audio(0.3 * x, SR)


def rising(values) -> bool:
    """Mostly increasing: the last quarter's mean well above the first quarter's."""
    v = np.asarray(values)
    q = max(1, len(v) // 4)
    return v[-q:].mean() > v[:q].mean()


# --- analyzers -----------------------------------------------------------------------------------------------
def test_a_rising_sine_has_a_rising_pitch_and_brightness_curve():
    m = cv.measure(glide(harmonic=False), ["pitch", "brightness"])
    p = m["pitch"]
    assert rising(p.values) and p.strength.min() >= 0.5 and np.median(p.strength) == 1.0  # edge bins half-padded
    assert p.meta["mode"] == "f0"
    assert 150 < np.median(p.values[:5]) < 260 and 600 < np.median(p.values[-5:]) < 900  # Hz at the ends
    assert np.corrcoef(np.log2(p.values), p.times)[0, 1] > 0.97
    assert rising(m["brightness"].values)
    assert len(p.times) == round(DUR * cv.CURVE_RATE) and p.span == pytest.approx(DUR)


def test_a_harmonic_glide_follows_its_f0_not_a_harmonic():
    p = cv.pitch(glide(200, 400))
    assert 170 < p.values[len(p.values) // 2] < 330  # f0 at the middle is ~283 Hz, the 2nd harmonic ~566


def band_sweep(seed: int, f_start=300.0, f_end=1200.0, octaves=0.5) -> Audio:
    """White noise through a broad resonance (``octaves`` wide) whose centre glides from f_start to f_end."""
    rng = np.random.default_rng(seed)
    n = len(T)
    out = np.zeros(n)
    frame = 1024
    win = np.hanning(frame)
    freqs = np.fft.rfftfreq(frame, 1.0 / SR)
    for start in range(0, n - frame, frame // 4):
        fc = f_start * (f_end / f_start) ** (start / n)
        g = np.exp(-0.5 * (np.log2(np.maximum(freqs, 1.0) / fc) / octaves) ** 2)
        x = np.fft.irfft(np.fft.rfft(rng.normal(size=frame)) * g, frame) * win
        out[start: start + frame] += x
    return Audio(0.3 * out / np.abs(out).max(), SR)


def test_a_noise_whoosh_has_the_pitch_of_its_peak_and_the_same_curve_for_every_noise_draw():
    a, b = cv.pitch(band_sweep(1)), cv.pitch(band_sweep(2))
    assert a.meta["mode"] == "peak"  # no f0: not periodic
    assert 250 < np.median(a.values[2:6]) < 420 and 850 < np.median(a.values[-6:-2]) < 1500
    ok = (a.strength > 0) & (b.strength > 0)
    truth = np.log2(300.0 * 4 ** (a.times / DUR))
    # one definition per sound and a smoothed peak: two noise draws of the same whoosh give the same curve, on
    # the resonance's glide (the earlier f0-or-raw-peak mix per frame: 0.86 between draws, 0.94 to the glide)
    assert np.corrcoef(np.log2(a.values[ok]), np.log2(b.values[ok]))[0, 1] > 0.93
    assert np.corrcoef(np.log2(a.values[ok]), truth[ok])[0, 1] > 0.95


def test_a_tone_with_a_loud_third_harmonic_is_measured_by_its_f0():
    f = 220.0 * 2 ** (T / DUR)  # 220 -> 440 Hz
    phase = 2 * np.pi * np.cumsum(f) / SR
    p = cv.pitch(Audio(0.1 * np.sin(phase) + 0.1 * np.sin(2 * phase) + 0.4 * np.sin(3 * phase), SR))
    assert p.meta["mode"] == "f0"
    assert 260 < p.values[len(p.values) // 2] < 360  # f0 ~311 Hz at the middle; the loud 3rd harmonic ~933


def test_the_steering_pitch_proxy_agrees_with_the_analyzer():
    import torch

    from foley.features import MelConfig, log_mel_np
    from foley.steering import MelCurves

    cfg = MelConfig()
    audio = band_sweep(3)
    target = cv.pitch(audio)
    mc = MelCurves(cfg)
    proxy = mc(torch.from_numpy(log_mel_np(audio.samples, cfg))[None], ("pitch",))["pitch"][0][0].numpy()
    t = (np.arange(len(proxy)) + 0.5) / mc.frame_rate
    v = np.interp(target.times, t, proxy)
    assert np.corrcoef(v, np.log2(target.values))[0, 1] > 0.9
    assert abs(np.median(v - np.log2(target.values))) < 0.25  # within a quarter octave in level


def test_a_fade_has_a_falling_loudness_curve_and_silence_counts_no_brightness():
    x = 0.5 * np.sin(2 * np.pi * 440 * T) * np.linspace(1.0, 0.01, len(T))
    x[-SR // 2:] = 0.0
    c = cv.measure(Audio(x, SR))
    loud = c["loudness"].values
    assert not rising(loud) and np.all(np.diff(loud[1:-12]) < 0) and loud[0] - loud[-12] > 12
    assert loud[-1] == pytest.approx(loud.max() - cv.LOUDNESS_FLOOR_DB)  # silence: floored under the peak
    assert c["brightness"].strength[-3:].max() == 0.0 and c["brightness"].strength[:10].min() == 1.0


def test_a_left_to_right_pan_moves_and_mono_is_centred():
    g = T / DUR
    s = 0.4 * np.sin(2 * np.pi * 440 * T)
    pan = cv.pan(Audio(np.stack([s * np.cos(g * np.pi / 2), s * np.sin(g * np.pi / 2)]), SR))
    assert pan.values[2] < -10 and pan.values[-3] > 10 and rising(pan.values)
    assert np.all(np.diff(pan.values[2:-2]) > 0)
    assert np.abs(cv.pan(Audio(s, SR)).values).max() == 0.0


def test_density_counts_onsets_per_second_and_follows_an_accelerating_train():
    x = np.zeros(len(T))
    x[(np.arange(0.1, DUR, 0.25) * SR).astype(int)] = 0.9  # 4 clicks per second
    d = cv.density(Audio(x, SR))
    assert 3.0 < np.median(d.values) < 5.0
    times = np.cumsum(np.linspace(0.5, 0.08, 20))
    times = times[times < DUR - 0.05]
    y = np.zeros(len(T))
    y[(times * SR).astype(int)] = 0.9
    assert rising(cv.density(Audio(y, SR)).values)


def test_silence_gives_curves_not_errors():
    c = cv.measure(Audio(np.zeros((2, SR)), SR))
    assert all(np.isfinite(x.values).all() for x in c.values())
    assert c["density"].values.max() == 0.0 and c["pitch"].strength.max() == 0.0


# --- sources ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, values, relative", [
    ("pitch=rise 200Hz->800Hz", [200, 800], False),
    ("pitch=800 Hz -> 0.2kHz", [800, 200], False),
    ("pitch=steady 440Hz", [440], False),
    ("pitch=rise", [440, 880], True),
    ("pitch=low->high", [220, 880], True),
    ("loudness=fade out", [0, -40], True),
    ("loudness=fade in", [-40, 0], True),
    ("loudness=-30dB->0dB", [-30, 0], True),
    ("loudness=a short sharp hit", [0, -50, -60], True),
    ("pan=left->right", [-12, 12], False),
    ("pan=from right to left", [12, -12], False),
    ("pan=back and forth", [-12, 12, -12], False),
    ("pan=-6dB->6dB", [-6, 6], False),
    ("brightness=dark->bright", [500, 2000], True),
    ("brightness=getting brighter", [500, 2000], True),
    ("brightness=500Hz->4kHz", [500, 4000], False),
    ("density=faster", [2, 8], False),
    ("density=2/s->8/s", [2, 8], False),
    ("density=steady 4/s", [4], False),
    ("volume=fade out", [0, -40], True),  # an alias
])
def test_words_become_curves(spec, values, relative):
    name, source = cv.split_spec(spec)
    c = cv.parse_spec(name, source)
    np.testing.assert_allclose(c.values, values)
    assert c.relative == relative and c.source.startswith("words: ")


@pytest.mark.parametrize("spec, words", [
    ("pitch", "is not NAME=SOURCE"),
    ("pitch=", "nothing after '='"),
    ("colour=red", "unknown control 'colour'; choose loudness, brightness, pitch, density, pan, texture or tremolo"),
    ("pitch=wobble", "cannot read 'wobble' as a pitch value; use 'rise'"),
    ("pitch=fall 200Hz->800Hz", "a fall goes down"),
    ("pitch=200dB->300dB", "is in dB; pitch is in Hz"),
    ("pitch=0Hz->100Hz", "must be positive"),
    ("density=-2/s", "not negative"),
    ("pan=faster", "cannot read 'faster' as a pan value"),  # a density word
    ("pitch=missing.csv", "missing.csv not found"),
    ("loudness=missing.wav", "missing.wav not found"),
])
def test_bad_specs_are_one_line_errors(spec, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RequestError) as e:
        cv.parse_spec(*cv.split_spec(spec))
    assert "\n" not in str(e.value) and words in str(e.value)


def test_csv_json_and_sound_files(tmp_path):
    (tmp_path / "c.csv").write_text("time,value\n0,200\n1.5,400\n3,800\n")
    c = cv.parse_spec("pitch", str(tmp_path / "c.csv"))
    assert c.span == 3.0 and c.values.tolist() == [200, 400, 800] and c.source.startswith("file: ")
    (tmp_path / "s.csv").write_text("0;-6;1\n2;6;0.5\n")
    s = cv.parse_spec("pan", str(tmp_path / "s.csv"))
    assert s.strength.tolist() == [1.0, 0.5]
    (tmp_path / "c.json").write_text(json.dumps({"times": [0, 1], "values": [1000, 3000]}))
    assert cv.parse_spec("brightness", str(tmp_path / "c.json")).values.tolist() == [1000, 3000]
    (tmp_path / "p.json").write_text(json.dumps([[0, 2], [1, 8]]))
    assert cv.parse_spec("density", str(tmp_path / "p.json")).values.tolist() == [2, 8]
    glide().save(tmp_path / "ref.wav")
    ref = cv.parse_spec("pitch", str(tmp_path / "ref.wav"))
    assert rising(ref.values) and ref.source.startswith("sound: ")
    bad = [("x.csv", "0,1\nfoo,bar\n", "line 2 is not numbers"), ("y.csv", "0,1,2,3\n", "4 columns"),
           ("z.csv", "time,value\n", "no rows"), ("d.csv", "1,200\n0,300\n", "increasing"),
           ("j.json", "{", "not valid JSON"), ("k.json", '{"times": [0, 1]}', "needs 'times' and 'values'"),
           ("n.csv", "0,200\n1,nan\n", "non-finite")]
    for name, text, words in bad:
        (tmp_path / name).write_text(text)
        with pytest.raises(RequestError, match=words):
            cv.parse_spec("pitch", str(tmp_path / name))


def test_curves_are_stretched_to_the_output_duration():
    c = cv.from_words("pitch", "200Hz->800Hz").resample(4.0)
    assert len(c.times) == 80 and c.span == 4.0
    assert c.values[0] == pytest.approx(200, rel=0.03) and c.values[-1] == pytest.approx(800, rel=0.03)
    assert c.values[40] == pytest.approx(400, rel=0.03)  # geometric: half way is an octave up
    ref = cv.pitch(glide()).resample(6.0)  # a 3 s sound stretched over 6 s
    assert len(ref.times) == 120 and rising(ref.values)


# --- the prompt prior ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("prompt, name, spec", [
    ("a rising tone", "pitch", "rise"),
    ("a siren sliding upward", "pitch", "rise"),
    ("a falling whistle", "pitch", "fall"),
    ("a bell slowly fading", "loudness", "fade out"),
    ("wind dying away", "loudness", "fade out"),
    ("an engine getting louder", "loudness", "fade in"),
    ("drums faster and faster", "density", "faster"),
    ("a clock slowing down", "density", "slower"),
    ("a car passing from left to right", "pan", "left->right"),
    ("a jet moving right to left", "pan", "right->left"),
    ("a short sharp hit on a metal pipe", "loudness", "hit"),
    ("a synth pad getting brighter", "brightness", "brighter"),
    ("a bee circling around the listener", "pan", "back and forth"),
    ("a stationary generator hum", "pan", "centre"),
    ("rapid beeps", "density", "fast"),
    ("occasional water drips", "density", "sparse"),
    ("a sustained organ chord", "loudness", "steady"),
])
def test_the_prior_turns_words_of_a_prompt_into_curves(prompt, name, spec):
    c = cv.prior(prompt)
    assert name in c and c[name].source.endswith(f"{name}={spec}")
    expected = cv.from_words(name, spec)
    assert np.sign(c[name].values[-1] - c[name].values[0]) == np.sign(expected.values[-1] - expected.values[0])


@pytest.mark.parametrize("prompt", ["rain falling on a roof", "a dog barking", "wind, not rising", "a laser zap",
                                    "footsteps on gravel", "a fly, not circling", "radio static",
                                    "a slow deep drone", "a rapid rise"])
def test_the_prior_stays_quiet_without_shape_words(prompt):
    assert cv.prior(prompt) == {}


def test_slow_fades_spread_over_the_whole_sound():
    slow = cv.prior("a bell slowly fading")["loudness"].resample(4.0)
    plain = cv.prior("a bell fading")["loudness"].resample(4.0)
    assert slow.values[30] < plain.values[30] - 10  # at 1.5 s the slow fade is already well down


# --- adherence and targets ---------------------------------------------------------------------------------------
def test_adherence_of_a_sound_to_its_own_curves_is_perfect_and_to_the_opposite_negative():
    a = glide()
    own = cv.measure(a, ["pitch", "loudness"])
    res = cv.adherence(own, a)
    assert res["pitch"]["correlation"] > 0.999 and res["pitch"]["mean_error"] < 0.01
    opposite = {"pitch": cv.from_words("pitch", "800Hz->200Hz").resample(DUR)}
    bad = cv.adherence(opposite, a)["pitch"]
    assert bad["correlation"] < -0.9 and bad["unit"] == "semitones"


def test_loudness_is_compared_up_to_its_level():
    x = 0.5 * np.sin(2 * np.pi * 440 * T) * np.linspace(1.0, 0.05, len(T))
    target = cv.from_words("loudness", "fade out").resample(DUR)
    quiet = cv.adherence({"loudness": target}, Audio(0.01 * x, SR))["loudness"]
    loud = cv.adherence({"loudness": target}, Audio(x, SR))["loudness"]
    assert quiet["mean_error"] == pytest.approx(loud["mean_error"], abs=0.05)


def test_targets_precedence_controls_over_imitation_over_prior(tmp_path):
    glide(800, 200).save(tmp_path / "voice.wav")
    t = cv.targets(controls=["pitch=rise 200Hz->800Hz"], like=str(tmp_path / "voice.wav"),
                   prompt="a bell slowly fading", duration=2.0)
    assert set(t.curves) == {"loudness", "brightness", "pitch", "density"}  # mono imitation: no pan
    assert t.curves["pitch"].source.startswith("words") and t.curves["loudness"].source.startswith("imitation")
    assert all(len(c.times) == 40 for c in t.curves.values())
    im = cv.imitation(Audio.load(tmp_path / "voice.wav"))
    assert im["pitch"].relative and im["loudness"].relative and not im["density"].relative
    assert not rising(im["pitch"].values)


# --- the request --------------------------------------------------------------------------------------------------
def test_request_fields_accept_every_form_and_refuse_in_one_line(tmp_path):
    r = make_request(prompt="a tone", controls=["pitch=rise", "pan = left->right"], control_strength=["pitch=2"])
    assert r.controls == {"pitch": "rise", "pan": "left->right"} and r.control_strength == {"pitch": 2.0}
    assert r.steering and r.steer is None and cv.steer_iterations(r) == cv.DEFAULT_STEER
    r = make_request(prompt="a tone", controls={"f0": cv.from_words("pitch", "rise 200Hz->400Hz")})
    assert r.controls["pitch"].values == [200.0, 400.0]
    json.dumps(r.model_dump())  # the sidecar can hold it
    assert make_request(prompt="a rising tone", steer=3).steer == 3  # the prior gives the curve
    assert not make_request(prompt="a tone").steering
    cases = [({"controls": "pitch=wobble"}, "cannot read 'wobble'"),
             ({"steer": 4}, "steering needs target curves"),
             ({"prompt": "a rising tone", "steer": 4, "prior": False}, "drop --no-prior"),
             ({"controls": "pitch=rise", "steer": 501}, "steer must be between 0 and 500"),
             ({"controls": "pitch=rise", "control_strength": {"pitch": 11}}, "between 0 and 10"),
             ({"controls": "pitch=rise", "control_strength": ["pitch"]}, "is not NAME=VALUE"),
             ({"like": str(tmp_path / "none.wav")}, "none.wav not found"),
             ({"controls": ["pitch=rise", "f0=fall"]}, "given twice")]
    for fields, words in cases:
        fields = {"prompt": "a tone", **fields}
        with pytest.raises(RequestError, match=words) as e:
            make_request(**fields)
        assert "\n" not in str(e.value)


def test_a_model_that_cannot_steer_refuses_and_names_the_ones_that_can():
    from foley.registry import check_request, describe

    card, caps = describe("starter")
    assert caps.steers and caps.setting("steer").maximum == 500
    assert "steer" in [s["name"] for s in caps.to_dict()["settings"]]
    with pytest.raises(RequestError, match="model 'starter-wavegan' cannot follow control curves .*models that "
                                           "can: starter"):
        check_request("starter-wavegan", make_request(prompt="a tone", controls=["pitch=rise"], duration=1))
    with pytest.raises(RequestError, match="cannot follow control curves"):
        check_request("starter-wavegan", make_request(prompt="a tone", prior=False, duration=1))
    check_request("starter-wavegan", make_request(prompt="a rising tone", duration=1))  # the prior alone asks nothing


def clicks(rate: float, seconds: float = 4.0) -> Audio:
    """Short noise bursts at ``rate`` per second."""
    rng = np.random.default_rng(0)
    x = np.zeros(int(seconds * SR))
    burst = rng.normal(size=400) * np.exp(-np.arange(400) / 60)
    for t in np.arange(0.1, seconds - 0.1, 1.0 / rate):
        x[int(t * SR): int(t * SR) + 400] += burst
    return Audio(0.3 * x / np.abs(x).max(), SR)


def test_a_constant_density_target_steers_the_level():
    """"rapid beeps" (8 onsets/s) and "sparse" (1/s) have no shape to correlate with: steering compares the
    calibrated density level, so the faster train is closer to "rapid" and the slower one to "sparse", and the loss
    has a gradient (before, such a target gave steering nothing to do)."""
    import torch

    from foley.features import MelConfig, log_mel_np
    from foley.steering import FrameTargets, MelCurves, objective

    cfg = MelConfig()
    mc = MelCurves(cfg)

    def loss(audio, prompt):
        lm = torch.from_numpy(log_mel_np(audio.samples, cfg))[None].requires_grad_(True)
        t = cv.targets(prompt=prompt, duration=4.0)
        ft = FrameTargets.build(t, lm.shape[-1], mc.frame_rate, 4.0)
        value, _ = objective(mc(lm, ft.names()), ft)
        value.backward()
        return float(value.detach()), float(lm.grad.abs().sum())

    assert cv.measure(clicks(8.0), ["density"])["density"].values.mean() > 4 * cv.measure(
        clicks(1.5), ["density"])["density"].values.mean()
    (fast_fast, grad), (slow_fast, _) = loss(clicks(8.0), "rapid beeps"), loss(clicks(1.5), "rapid beeps")
    (fast_sparse, _), (slow_sparse, _) = loss(clicks(8.0), "sparse beeps"), loss(clicks(1.5), "sparse beeps")
    assert fast_fast < slow_fast and slow_sparse < fast_sparse and grad > 0


@pytest.mark.parametrize("prompt,name,label", [
    ("a staticky hum", "texture", "noisy"), ("a noisy drone", "texture", "noisy"),
    ("a pure-toned hum", "texture", "tonal"), ("a sinusoidal beep", "texture", "tonal"),
    ("a quivering drone", "tremolo", "tremolo"), ("a hum with tremolo", "tremolo", "tremolo"),
    ("a drone without tremolo", "tremolo", "none"), ("an unwavering drone", "tremolo", "none")])
def test_the_prior_reads_texture_and_tremolo_words(prompt, name, label):
    q = cv.prior_qualities(prompt)
    assert list(q) == [name] and q[name].label == label and cv.has_prior(prompt)
    assert cv.targets(prompt=prompt, duration=2.0).qualities_dict()[name]["quality"] == label


@pytest.mark.parametrize("source,label,sense,level", [
    ("noisy", "noisy", ">=", -4.7), ("Pure-toned", "tonal", "<=", -9.6), ("at least -3.5", "noisy", ">=", -3.5),
    ("<= -11", "tonal", "<=", -11.0)])
def test_an_explicit_texture_control_is_a_one_sided_level(source, label, sense, level):
    q = cv.parse_quality("texture", source)
    assert (q.label, q.sense, q.level) == (label, sense, level) and q.source.startswith("control")


@pytest.mark.parametrize("source,label", [("on", "tremolo"), ("quivering", "tremolo"), ("off", "none"),
                                          ("none", "none"), ("at most 0.05", "none")])
def test_an_explicit_tremolo_control(source, label):
    assert cv.parse_quality("tremolo", source).label == label


def test_explicit_qualities_override_the_prompt_and_bad_ones_fail_in_one_line():
    """--control texture=tonal wins over the prompt's "noisy"; the prompt's tremolo word stays; curves and
    qualities mix; aliases (noise) and strengths work; a curve, a bad word or an out-of-range level is refused."""
    t = cv.targets(controls=["noise=tonal", "pitch=rise"], prompt="a noisy quivering hum", duration=2.0,
                   strength={"texture": 2})
    assert t.qualities["texture"].label == "tonal" and t.qualities["texture"].source.startswith("control")
    assert t.qualities["tremolo"].source.startswith("prior") and list(t.curves) == ["pitch"]
    assert t.strength["texture"] == 2.0
    assert cv.check_controls({"tremolo": "off"}) == {"tremolo": "off"}
    for controls, match in [({"texture": {"times": [0, 1], "values": [0, 1]}}, "one level for the whole sound"),
                            (["texture=loud"], "unknown texture; give texture=noisy"),
                            (["tremolo=at least 3"], "out of range 0..1")]:
        with pytest.raises(RequestError, match=match) as e:
            cv.check_controls(controls)
        assert "\n" not in str(e.value)
    with pytest.raises(RequestError, match="whole-sound quality"):
        cv.canonical("texture")  # as a curve (measure, files): still no curve


@pytest.mark.parametrize("prompt", ["a hum that is not noisy", "a door slam", "a bright whoosh"])
def test_no_quality_without_its_words(prompt):
    assert cv.prior_qualities(prompt) == {}


def test_texture_and_tremolo_targets_order_noise_tone_and_modulation():
    """Steering's one-sided quality losses: white noise meets "noisy" and a sine meets "pure-toned" (zero loss) while
    the other way round costs, with a gradient; a 6 Hz tremolo tone meets "quivering" and a steady one
    "unwavering"; the analyzers agree with the proxies' order."""
    import torch

    from foley.analyzers import spectral_flatness, tremolo_depth
    from foley.features import MelConfig, log_mel_np
    from foley.steering import FrameTargets, MelCurves, objective

    cfg = MelConfig()
    mc = MelCurves(cfg)

    def loss(audio, prompt):
        lm = torch.from_numpy(log_mel_np(audio.samples, cfg))[None].requires_grad_(True)
        ft = FrameTargets.build(cv.targets(prompt=prompt, duration=2.0), lm.shape[-1], mc.frame_rate, 2.0)
        value, parts = objective(mc(lm, ft.names()), ft)
        value.backward()
        return float(value.detach()), float(lm.grad.abs().sum())

    t = np.arange(2 * SR) / SR
    noise = Audio((0.2 * np.random.default_rng(0).standard_normal((1, len(t)))).astype(np.float32), SR)
    sine = Audio((0.3 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32), SR)
    trem = Audio((0.3 * (1 + 0.8 * np.sin(2 * np.pi * 6 * t)) / 1.8 * np.sin(2 * np.pi * 440 * t))[None]
                 .astype(np.float32), SR)
    assert spectral_flatness(noise) > 100 * spectral_flatness(sine) and tremolo_depth(trem) > 5 * tremolo_depth(sine)
    (noise_noisy, _), (sine_noisy, grad) = loss(noise, "a staticky hum"), loss(sine, "a staticky hum")
    (noise_tonal, grad2), (sine_tonal, _) = loss(noise, "a pure-toned hum"), loss(sine, "a pure-toned hum")
    assert noise_noisy < sine_noisy and sine_tonal < noise_tonal and grad > 0 and grad2 > 0
    (trem_on, _), (steady_on, grad3) = loss(trem, "a quivering hum"), loss(sine, "a quivering hum")
    (trem_off, grad4), (steady_off, _) = loss(trem, "an unwavering hum"), loss(sine, "an unwavering hum")
    assert trem_on < steady_on and steady_off < trem_off and grad3 > 0 and grad4 > 0
