"""One mono source renderer per recipe kind: ``render(ctx) -> [T]`` float64 at ``ctx.sr`` Hz.

A source draws its character (kind, register, texture, brightness, rhythm, pitch contour) from
``ctx.attrs`` and ``ctx``; the loudness contour, tremolo, stereo motion, reverb and level are
applied afterwards by :func:`foley.data.synth.recipes.render_attributes`, identically for all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import dsp

# brightness -> (harmonic count, spectral rolloff exponent) for harmonic tones
HARMONICS = {"dark": (5, 2.0), "neutral": (12, 1.4), "bright": (24, 1.0)}


@dataclass
class Ctx:
    """What a source needs: attributes, rate, length, random stream, and the shared contours.

    ``f0`` [T] is the pitch contour in Hz (None for unpitched kinds); ``events`` holds onset times
    in seconds for rhythmic or single-event kinds (empty for continuous ones).
    """

    attrs: dict
    sr: int
    n: int
    rng: np.random.Generator
    f0: np.ndarray | None
    events: np.ndarray

    @property
    def t(self) -> np.ndarray:
        return dsp.times(self.n, self.sr)

    @property
    def duration(self) -> float:
        return self.n / self.sr

    def harmonics(self, extra_rolloff: float = 0.0, scale: float = 1.0) -> tuple[int, float]:
        count, roll = HARMONICS[self.attrs["brightness"]]
        return max(1, int(count * scale)), roll + extra_rolloff

    def stepped_f0(self, quantize: bool = False) -> np.ndarray:
        """The pitch contour held constant from one event onset to the next (notes, not glides)."""
        if len(self.events) == 0:
            return self.f0
        idx = np.clip((self.events * self.sr).astype(int), 0, self.n - 1)
        held = self.f0[idx]
        if quantize:  # snap to the equal-tempered semitone grid around the register's f0
            ref = self.attrs["f0_hz"]
            held = ref * 2 ** (np.round(12 * np.log2(held / ref)) / 12)
        which = np.searchsorted(idx, np.arange(self.n), side="right") - 1
        return np.where(which >= 0, held[np.maximum(which, 0)], held[0])

    def since_event(self) -> np.ndarray:
        """Seconds since the latest onset at each frame (large before the first), shape [T]."""
        which = np.searchsorted(self.events, self.t, side="right") - 1
        last = np.where(which >= 0, self.events[np.maximum(which, 0)], -1e3)
        return self.t - last

    def centre_hz(self) -> float:
        return float(self.attrs.get("centre_hz") or 4 * self.attrs["f0_hz"])


def _noise_band(c: Ctx, centre: np.ndarray | float, width_oct: float) -> np.ndarray:
    """Noise around a (possibly moving) centre frequency [T] or scalar, unit RMS."""
    if np.ndim(centre) == 0:
        return dsp.colored_noise(c.n, c.sr, c.rng, lambda f: dsp.log_gauss(f, float(centre), width_oct))
    track = np.asarray(centre)

    def gains(f, t):
        ct = np.interp(t, c.t, track)
        return dsp.log_gauss(f[:, None], ct[None, :], width_oct)

    return dsp.tv_noise(c.n, c.sr, c.rng, gains)


def _texture(c: Ctx, tone: np.ndarray, ratio: float = 3.0) -> np.ndarray:
    """A noisy texture buries the tone in noise that follows its pitch; a tonal one keeps it pure."""
    if c.attrs["texture"] != "noisy":
        return tone
    return 0.3 * tone + _noise_band(c, c.f0 * ratio, 1.5)


# --- drones and hums ---------------------------------------------------------------------------
def hum(c: Ctx) -> np.ndarray:
    count, roll = c.harmonics(extra_rolloff=0.5, scale=0.6)
    return _texture(c, dsp.harmonic_tone(c.f0, c.sr, count, roll, c.rng))


def drone(c: Ctx) -> np.ndarray:
    count, roll = c.harmonics()
    cents = c.rng.uniform(1, 3)   # a gentle chorus: wider detuning beats like tremolo
    x = sum(w * dsp.harmonic_tone(c.f0 * 2 ** (d * cents / 1200), c.sr, count, roll, c.rng)
            for d, w in ((-1, 0.6), (0, 1.0), (1, 0.6)))
    return _texture(c, dsp.unit_rms(x))


def buzz(c: Ctx) -> np.ndarray:
    count, roll = c.harmonics(extra_rolloff=-0.3, scale=1.5)
    x = dsp.harmonic_tone(c.f0, c.sr, count, roll, c.rng)
    rough = 1 + 0.25 * dsp.lowpass(c.rng.standard_normal(c.n), c.sr, 60.0) * 4
    return _texture(c, x * rough)


def hollow(c: Ctx) -> np.ndarray:
    count, roll = c.harmonics(scale=1.2)
    return _texture(c, dsp.harmonic_tone(c.f0, c.sr, count, roll - 0.2, c.rng, odd_only=True))


# --- noise textures ----------------------------------------------------------------------------
def _slow(c: Ctx, hz: float, depth: float) -> np.ndarray:
    """Smooth random level fluctuation around 1, shape [T]."""
    w = dsp.unit_rms(dsp.lowpass(c.rng.standard_normal(c.n), c.sr, hz, 2))
    return np.clip(1 + depth * w, 0.05, None)


def hiss(c: Ctx) -> np.ndarray:
    ce = c.centre_hz()
    shape = lambda f: 1 / (1 + (ce / 2 / np.maximum(f, 1.0)) ** 4) * dsp.log_gauss(f, ce, 2.0)  # noqa: E731
    return dsp.colored_noise(c.n, c.sr, c.rng, shape) * _slow(c, 1.0, 0.1)


def sizzle(c: Ctx) -> np.ndarray:
    ce = c.centre_hz()
    bed = _noise_band(c, ce, 1.2)
    sparkle = dsp.lowpass(np.abs(c.rng.standard_normal(c.n)) ** 3, c.sr, 45.0)
    bed = bed * dsp.unit_rms(sparkle)
    pops = (c.rng.random(c.n) < 150 / c.sr) * np.minimum(c.rng.pareto(3.0, c.n), 3.0)
    crackle = sum(dsp.resonator_clicks(pops, c.sr, ce * r, 0.5) for r in (0.7, 1.0, 1.4))
    return dsp.unit_rms(bed) + 0.6 * dsp.unit_rms(crackle)


def crackle(c: Ctx) -> np.ndarray:
    ce = c.centre_hz()
    rate = c.rng.uniform(15, 50)
    pops = (c.rng.random(c.n) < rate / c.sr) * np.minimum(1 + c.rng.pareto(3.0, c.n), 4.0)
    x = sum(dsp.resonator_clicks(pops, c.sr, ce * r, 0.8) for r in (0.6, 1.0, 1.6))
    bed = dsp.colored_noise(c.n, c.sr, c.rng, lambda f: dsp.log_gauss(f, ce, 1.5))
    return dsp.unit_rms(x) + 0.08 * bed


def rumble(c: Ctx) -> np.ndarray:
    ce = c.centre_hz()
    x = dsp.colored_noise(c.n, c.sr, c.rng, lambda f: dsp.brown(f) * dsp.log_gauss(f, ce, 1.0))
    return x * _slow(c, 0.4, 0.3)


def wind(c: Ctx) -> np.ndarray:
    ce = c.centre_hz()
    width = {"deep": 1.0, "low": 0.9, "mid": 0.7, "high": 0.45}[c.attrs["register"]]
    wander = dsp.unit_rms(dsp.lowpass(c.rng.standard_normal(c.n), c.sr, 0.6, 1))
    x = _noise_band(c, ce * 2 ** (0.4 * wander), width)
    return x * _slow(c, 0.7, 0.35)


def rain(c: Ctx) -> np.ndarray:
    ce = c.centre_hz()
    bed = dsp.colored_noise(c.n, c.sr, c.rng, lambda f: dsp.pink(f) * dsp.log_gauss(f, ce, 1.5))
    drops = (c.rng.random(c.n) < c.rng.uniform(150, 500) / c.sr) * c.rng.uniform(0.2, 1.0, c.n)
    x = sum(dsp.resonator_clicks(drops * (c.rng.random(c.n) < 0.4), c.sr, ce * r, 0.4)
            for r in c.rng.uniform(0.5, 1.8, 4))
    return 0.7 * bed + dsp.unit_rms(x)


# --- glitches and granular clouds ----------------------------------------------------------------
def glitch(c: Ctx) -> np.ndarray:
    out = np.zeros(c.n)
    sq = dsp.wavetable(dsp.harmonic_amps(dsp.band_limited_count(15, 4 * c.attrs["f0_hz"], c.sr), 1.0, True))
    tonal = c.attrs["texture"] == "tonal"
    for s in c.events:
        a = int(s * c.sr)
        f = c.f0[min(a, c.n - 1)] * c.rng.choice([1.0, 1.0, 2.0])
        seg = int(c.rng.uniform(0.015, 0.08) * c.sr)
        m = min(seg, c.n - a)
        if m <= 4:
            continue
        if tonal or c.rng.random() < 0.2:
            x = dsp.osc(sq, np.full(m, f), c.sr, c.rng.uniform())
        else:
            x = dsp.bandpass(c.rng.standard_normal(m), c.sr, f, 4 * f)
        hold = int(max(1, round(c.sr / c.rng.uniform(3000.0, 16000.0))))   # crush to a 3-16 kHz "sample rate"
        x = dsp.sample_hold(dsp.bitcrush(x, int(c.rng.integers(3, 8))), hold)
        if c.rng.random() < 0.3:  # stutter: the fragment repeats a few times
            rep = int(c.rng.integers(2, 5))
            x = np.resize(x[: max(4, m // rep)], m)
        x = dsp.unit_rms(x) * np.hanning(m + 2)[1:-1] ** 0.2 * c.rng.uniform(0.5, 1.0)
        out[a:a + m] += x
    # crushing spreads energy upwards; keep the fragments in their register
    return dsp.lowpass(out, c.sr, min(16 * float(c.f0.max()), 0.45 * c.sr), 2)


def granular(c: Ctx) -> np.ndarray:
    out = np.zeros(c.n)
    density = c.attrs.get("grain_rate_hz", 80.0)
    count = max(4, int(density * c.duration))
    starts = np.sort(c.rng.uniform(0, c.duration - 0.05, count))
    spread = c.rng.uniform(2.0, 6.0) if c.attrs["pitch"] == "steady" else c.rng.uniform(0.5, 2.0)
    noisy = c.attrs["texture"] == "noisy"
    band = _noise_band(c, c.f0 * 2, 1.5) if noisy else None
    for s in starts:
        a = int(s * c.sr)
        m = min(int(c.rng.uniform(0.015, 0.07) * c.sr), c.n - a)
        if m <= 4:
            continue
        w = np.hanning(m) * c.rng.uniform(0.3, 1.0)
        if noisy:
            out[a:a + m] += band[a:a + m] * w
        else:
            f = c.f0[a] * 2 ** (np.round(c.rng.normal(0, spread)) / 12)
            f = min(f, dsp.NYQUIST_SHARE * c.sr)
            out[a:a + m] += np.sin(2 * np.pi * f * np.arange(m) / c.sr + c.rng.uniform(0, 6.3)) * w
    return out


# --- beeps and alarms --------------------------------------------------------------------------
def _beep_lengths(c: Ctx) -> np.ndarray:
    if c.attrs["rate"] == "single":
        return np.full(len(c.events), c.rng.uniform(0.15, 0.4))
    period = 1.0 / c.attrs["rate_hz"]
    return np.full(len(c.events), min(0.35, c.rng.uniform(0.35, 0.6) * period))


def beep(c: Ctx) -> np.ndarray:
    count, roll = c.harmonics(extra_rolloff=0.8, scale=0.5)
    freq = c.stepped_f0()
    tone = dsp.harmonic_tone(freq, c.sr, count, roll, c.rng)
    if c.attrs["rate"] == "steady":
        return tone
    return tone * dsp.gate(c.n, c.sr, c.events, _beep_lengths(c), 0.004, 0.006)


def alarm(c: Ctx) -> np.ndarray:
    count, roll = c.harmonics(extra_rolloff=0.3, scale=0.5)
    ratio = c.attrs.get("interval_ratio", 1.0)
    which = np.searchsorted(c.events, c.t, side="right") - 1   # two-tone: every other beep sits higher
    freq = c.stepped_f0() * np.where(which % 2 == 1, ratio, 1.0)
    tone = dsp.harmonic_tone(freq, c.sr, count, roll, c.rng, odd_only=True)
    return tone * dsp.gate(c.n, c.sr, c.events, _beep_lengths(c), 0.003, 0.005)


def siren(c: Ctx) -> np.ndarray:
    count, roll = c.harmonics(extra_rolloff=0.3)
    return dsp.harmonic_tone(c.f0, c.sr, count, roll, c.rng)


# --- impacts, plucks and bells -----------------------------------------------------------------
def _ring_seconds(c: Ctx, single_long: float, single_short: float) -> float:
    if c.attrs["rate"] == "single":
        return single_long if c.attrs["envelope"] == "decay" else single_short
    return min(single_short, 2.5 / c.attrs["rate_hz"])


def _place_events(c: Ctx, event: np.ndarray) -> np.ndarray:
    return dsp.place(c.n, event, c.events, c.sr, c.rng.uniform(0.75, 1.0, len(c.events)))


def _click(c: Ctx, length_s: float, lo: float, hi: float) -> np.ndarray:
    m = max(4, int(length_s * c.sr))
    return dsp.bandpass(c.rng.standard_normal(m), c.sr, lo, hi) * np.exp(-np.arange(m) / (0.25 * m))


def metallic(c: Ctx) -> np.ndarray:
    f0 = c.attrs["f0_hz"]
    ratios = np.array([1.0, 2.76, 5.40, 8.93, 13.34]) * c.rng.uniform(0.97, 1.03, 5)
    ring = _ring_seconds(c, c.rng.uniform(2.0, 3.5), c.rng.uniform(0.5, 1.0))
    m = min(c.n, int(ring * c.sr) + 1)
    ev = dsp.partials(f0 * ratios, [1, 0.7, 0.5, 0.35, 0.25], ring / (1 + 0.35 * np.arange(5)), m, c.sr, c.rng)
    click = _click(c, 0.004, 2 * f0, 8 * f0)
    ev[: len(click)] += 0.5 * dsp.unit_rms(click) * dsp.rms(ev)
    return _place_events(c, ev)


def wooden(c: Ctx) -> np.ndarray:
    f0 = c.attrs["f0_hz"]
    ring = c.rng.uniform(0.08, 0.2)
    m = min(c.n, int(0.3 * c.sr))
    ev = dsp.partials(f0 * np.array([1.0, 2.57, 4.1]), [1, 0.5, 0.25], [ring, ring * 0.6, ring * 0.4],
                      m, c.sr, c.rng)
    click = _click(c, 0.008, f0, 6 * f0)
    ev[: len(click)] += 1.5 * dsp.unit_rms(click) * np.abs(ev).max()
    return _place_events(c, ev)


def thump(c: Ctx) -> np.ndarray:
    f0 = c.attrs["f0_hz"]
    ring = _ring_seconds(c, c.rng.uniform(0.5, 0.9), c.rng.uniform(0.25, 0.5))
    m = min(c.n, int(ring * c.sr) + 1)
    tt = np.arange(m) / c.sr
    freq = f0 * (1 + 1.5 * np.exp(-tt / 0.03))
    ev = np.sin(2 * np.pi * np.cumsum(freq) / c.sr) * np.exp(-6.9 * tt / ring)
    thud = dsp.lowpass(c.rng.standard_normal(m), c.sr, 4 * f0) * np.exp(-tt / 0.012)
    return _place_events(c, ev + 0.5 * thud)


def pluck(c: Ctx) -> np.ndarray:
    freq = c.stepped_f0(quantize=True)
    count, roll = c.harmonics(scale=2.0)
    bright = dsp.osc(dsp.wavetable(dsp.harmonic_amps(dsp.band_limited_count(count, freq.max(), c.sr), roll),
                                   c.rng), freq, c.sr)
    body = dsp.osc(dsp.wavetable(dsp.harmonic_amps(3, 2.0), c.rng), freq, c.sr)
    dt = c.since_event()
    ring = _ring_seconds(c, c.rng.uniform(1.2, 2.0), c.rng.uniform(0.5, 1.0))
    attack = np.clip(dt / 0.002, 0, 1)
    x = attack * (bright * np.exp(-6.9 * dt / (0.25 * ring)) + body * np.exp(-6.9 * dt / ring))
    return np.where(dt >= 0, x, 0.0)


BELL_RATIOS = np.array([0.5, 1.0, 1.19, 1.5, 2.0, 2.5, 2.99, 4.17])


def bell(c: Ctx) -> np.ndarray:
    f0 = c.attrs["f0_hz"]
    ring = _ring_seconds(c, c.rng.uniform(2.5, 4.0), c.rng.uniform(0.6, 1.0))
    m = min(c.n, int(ring * c.sr) + 1)
    amps = np.array([0.6, 1.0, 0.5, 0.35, 0.5, 0.25, 0.2, 0.12])
    ev = dsp.partials(f0 * BELL_RATIOS * c.rng.uniform(0.99, 1.01, 8), amps,
                      ring * np.array([1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2]), m, c.sr, c.rng)
    return _place_events(c, ev)


def chime(c: Ctx) -> np.ndarray:
    ring = _ring_seconds(c, c.rng.uniform(1.5, 2.5), c.rng.uniform(0.4, 0.8))
    m = min(c.n, int(ring * c.sr) + 1)
    out = np.zeros(c.n)
    freq = c.stepped_f0(quantize=True)
    for s in c.events:
        a = int(s * c.sr)
        f = freq[min(a, c.n - 1)]
        ev = dsp.partials(f * np.array([1.0, 2.76, 5.40]), [1.0, 0.4, 0.2],
                          [ring, ring * 0.5, ring * 0.3], min(m, c.n - a), c.sr, c.rng)
        out[a:a + len(ev)] += ev * c.rng.uniform(0.75, 1.0)
    return out


# --- sweeps and risers -------------------------------------------------------------------------
def sweep(c: Ctx) -> np.ndarray:
    if c.attrs["texture"] == "noisy":
        return _noise_band(c, c.f0 * 2, 1.0)
    count, roll = c.harmonics()
    return dsp.harmonic_tone(c.f0, c.sr, count, roll, c.rng)


def riser(c: Ctx) -> np.ndarray:
    count, roll = c.harmonics(extra_rolloff=-0.2)
    tone = dsp.unit_rms(sum(dsp.harmonic_tone(c.f0 * 2 ** (d / 1200), c.sr, count, roll, c.rng)
                            for d in (-3, 3)))
    noise = _noise_band(c, c.f0 * 3, 1.2)
    return tone + 0.3 * noise if c.attrs["texture"] == "tonal" else 0.3 * tone + noise


def whoosh(c: Ctx) -> np.ndarray:
    return _noise_band(c, c.f0 * 4, 1.0)


# --- insects -----------------------------------------------------------------------------------
def cricket(c: Ctx) -> np.ndarray:
    f = min(c.attrs["f0_hz"], 0.4 * c.sr)
    carrier = dsp.harmonic_tone(np.full(c.n, f), c.sr, 2, 3.0, c.rng)
    pulse_hz = c.attrs.get("pulse_hz", 35.0)
    per_chirp = 3 if c.attrs["rate"] == "slow" else 2
    pulses = (c.events[:, None] + np.arange(per_chirp)[None, :] / pulse_hz).ravel()
    g = dsp.gate(c.n, c.sr, pulses, 0.6 / pulse_hz, 0.25 / pulse_hz, 0.25 / pulse_hz)
    scrape = _noise_band(c, f, 0.7)   # the file-and-scraper rasp around the song's carrier
    return (carrier + 0.5 * scrape) * g


def swarm(c: Ctx) -> np.ndarray:
    voices = int(c.rng.integers(6, 14))
    count, roll = c.harmonics(extra_rolloff=-0.2)
    out = np.zeros(c.n)
    for _ in range(voices):
        vib = dsp.unit_rms(dsp.lowpass(c.rng.standard_normal(c.n), c.sr, 4.0, 1))
        freq = c.f0 * 2 ** ((c.rng.normal(0, 3) + 0.4 * vib) / 12)
        out += dsp.harmonic_tone(freq, c.sr, count, roll, c.rng) * _slow(c, 1.5, 0.4) * c.rng.uniform(0.4, 1.0)
    return out


def cicada(c: Ctx) -> np.ndarray:
    ce = c.centre_hz()
    band = _noise_band(c, ce, 0.35)
    buzz_hz = c.rng.uniform(80, 200)
    am = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * buzz_hz * c.t))
    return band * dsp.lowpass(am, c.sr, 3 * buzz_hz, 1) * _slow(c, 0.5, 0.2)
