"""`foley eval` end to end: reports, bad input, compare, extractors with posteriors, the control test."""

import json
from dataclasses import dataclass

import numpy as np
import pytest

from foley.audio import Audio
from foley.errors import ModelError
from foley.eval import extractors as X
from foley.eval.control import control_test, write_control
from foley.eval.prepare import EvalSettings
from foley.eval.run import evaluate
from foley.generator import Generator, ModelCard

SR = 16_000


def make_set(folder, shift=0.0, n=6, prompts=("a low hum", "a high hum"), stereo_rate=None):
    """n half-second tones (with a little noise) named clip0..; sidecars carry a prompt each."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(int(shift * 10) + n)
    t = np.arange(SR // 2) / SR
    for i in range(n):
        x = 0.3 * np.sin(2 * np.pi * (220 * (1 + i % 3) + shift) * t) + 0.02 * rng.standard_normal(len(t))
        a = Audio(x, SR)
        if stereo_rate and i == 0:  # one stereo file at another rate: exercises resampling and mixing
            a = a.to_stereo().resample(stereo_rate)
        a.save(folder / f"clip{i}.wav")
        (folder / f"clip{i}.json").write_text(json.dumps({"request": {"prompt": prompts[i % 2], "duration": 0.5}}))
    return folder


@pytest.fixture
def sets(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLEY_HOME", str(tmp_path / "home"))
    return make_set(tmp_path / "gen", shift=30, stereo_rate=22_050), make_set(tmp_path / "ref")


def test_eval_writes_comparable_report(sets, tmp_path, foley_cli):
    gen, ref = sets
    out = tmp_path / "report"
    r = foley_cli("eval", "--generated", gen, "--reference", ref, "-o", out, "--bootstrap", "200")
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "report.json").read_text())
    assert rep["format"] == "foley-eval-report" and rep["inputs"]["generated"]["n_items"] == 6
    assert rep["pairing"] == {"rule": "relative name", "n_pairs": 6, "n_pairs_before_unreadable": 6}
    m = rep["metrics"]
    assert not any("fad" in k.lower() for k in m)                 # hand-crafted features are not FAD
    fd = m["fd_logmel"]
    assert fd["status"] == "ok" and fd["value"] > 0 and fd["id"].startswith("fd_logmel@")
    c = fd["conditions"]
    assert c["extractor"]["name"] == "logmel" and len(c["extractor"]["hash"]) == 64
    assert c["preparation"]["sample_rate"] == 16000 and c["preparation"]["resampler"] == "soxr VHQ"
    assert "mono" in c["preparation"]["channel_policy"] and c["preparation"]["clip"]["seconds"] is None
    assert c["n_generated"] == c["n_reference"] == 6 and c["n_frames_generated"] > 100 and c["seed"] == 0
    assert fd["subsets"]["size"] == 3 and fd["subsets"]["count"] == 10 and fd["subsets"]["replacement"] is False
    assert m["kid_logmel"]["status"] == "ok" and "fit" in m["fd_inf_logmel"]
    assert 0 <= m["knn_logmel"]["precision"] <= 1
    for name in ("lsd", "mel_distance", "si_sdr", "chroma_cosine", "loudness_diff"):
        assert m[name]["status"] == "ok" and m[name]["n"] == 6
        lo, hi = m[name]["ci95"]
        assert lo <= m[name]["mean"] <= hi
    assert m["diversity"]["status"] == "ok" and m["diversity"]["n_prompts"] == 2
    # a backbone without weights is unavailable with the files to fetch, never replaced
    assert m["fd_vggish"]["status"] == "unavailable" and "vggish-10086976.pth" in m["fd_vggish"]["reason"]
    assert rep["sanity"]["generated"]["duration_off"] == {"count": 0, "checked": 6, "share": 0.0}
    assert rep["items"]["generated"][0]["sanity"]["channels"] == 2
    assert set(rep["attributes"]["values"]) >= {"spectral_centroid", "pitch_slope"}
    assert rep["cache"]["misses"] > 0 and str(tmp_path / "home") in rep["cache"]["dir"]
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3 and "fd_logmel" in html
    # the second run reads every feature from the cache
    r2 = foley_cli("eval", "-g", gen, "-r", ref, "-o", tmp_path / "again", "-m", "fd_logmel", "--no-html")
    assert r2.returncode == 0, r2.stderr
    rep2 = json.loads((tmp_path / "again" / "report.json").read_text())
    assert rep2["cache"]["misses"] == 0 and rep2["metrics"]["fd_logmel"]["value"] == pytest.approx(fd["value"])
    assert not (tmp_path / "again" / "report.html").exists()


@pytest.mark.parametrize("case", ["missing", "empty", "metric"])
def test_bad_input_is_one_line_and_no_report(sets, tmp_path, foley_cli, case):
    gen, ref = sets
    (tmp_path / "empty").mkdir()
    args = {"missing": ["-g", tmp_path / "nope", "-r", ref], "empty": ["-g", tmp_path / "empty", "-r", ref],
            "metric": ["-g", gen, "-r", ref, "-m", "fad"]}[case]
    out = tmp_path / "out"
    r = foley_cli("eval", *args, "-o", out)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert not out.exists()


def test_compare_reports_difference_with_ci(sets, tmp_path, foley_cli):
    gen, ref = sets
    far = make_set(tmp_path / "far", shift=120)
    out = tmp_path / "cmp"
    r = foley_cli("eval", "compare", gen, far, "--reference", ref, "-o", out, "-m", "fd_logmel,lsd,si_sdr",
                  "--bootstrap", "200")
    assert r.returncode == 0, r.stderr
    res = json.loads((out / "compare.json").read_text())
    assert res["direction"] == "A - B" and res["pairing_a_b"]["rule"] == "relative name"
    fd = res["metrics"]["fd_logmel"]
    assert fd["difference"] < 0 and fd["subsets"]["paired_items"] and fd["subsets"]["count"] >= 50
    assert fd["subsets"]["interval95"][1] < 0               # A (closer to the reference) is clearly better
    lsd = res["metrics"]["lsd"]
    assert lsd["paired"] and lsd["by"] == "reference item" and lsd["n"] == 6
    assert lsd["ci95"][0] <= lsd["difference"] <= lsd["ci95"][1]
    assert (out / "compare.html").exists()


# --- extractors through the registry -----------------------------------------------------------
class BandPosteriors(X.FeatureExtractor):
    """A tiny deterministic extractor with class posteriors: softmax of 8 log band energies."""

    name = "bands"
    sample_rate = SR
    has_posteriors = True

    @property
    def hash(self) -> str:
        return "test-bands-1"

    def embed(self, audios):
        out = []
        for a in audios:
            p = np.abs(np.fft.rfft(a.samples[0])) ** 2
            out.append(np.log([b.sum() + 1e-9 for b in np.array_split(p, 8)]))
        return np.asarray(out)

    def posteriors(self, audios):
        from scipy.special import softmax

        return softmax(self.embed(audios), axis=1)


def _missing():
    raise ModelError("missing-net weights not found: download missing.pth into ~/.cache/foley/weights/missing/")


def test_posterior_metrics_and_unavailable_extractor(sets, monkeypatch):
    gen, ref = sets
    X.extractor_names()  # load the backbone plugins first, then add test extractors (restored afterwards)
    monkeypatch.setitem(X._REGISTRY, "bands", BandPosteriors)
    monkeypatch.setitem(X._REGISTRY, "missing", _missing)
    res = evaluate(gen, ref, ["fd_bands", "kid_bands", "kl_bands", "is_bands", "fd_missing", "kl_missing"],
                   EvalSettings(n_bootstrap=200))
    m = res.report["metrics"]
    assert m["kl_bands"]["direction"] == "KL(reference ‖ generated)" and m["kl_bands"]["n"] == 6
    assert m["kl_bands"]["mean"] > 0 and m["kl_bands"]["per"] == "pair"
    assert m["is_bands"]["value"] >= 1.0 and m["is_bands"]["reference_value"] >= 1.0
    assert m["fd_bands"]["conditions"]["extractor"]["hash"] == "test-bands-1"
    for k in ("fd_missing", "kl_missing"):
        assert m[k]["status"] == "unavailable" and "missing.pth" in m[k]["reason"]
    assert "missing" in res.report["unavailable_extractors"]


# --- control test ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pair:
    attribute: str
    low_prompt: str
    high_prompt: str
    analyzer: str


class ToyGenerator(Generator):
    """Renders prompts with simple DSP: 'high' raises the pitch, 'rising'/'falling' glide, 'fading in'
    is rendered as a fade OUT (a model that gets it backwards), anything else ignores the wording."""

    card = ModelCard(name="toy", family="test", weights="none", sample_rate=SR, channels=1, max_duration=10.0)

    def _generate(self, requests):
        out = []
        for r in requests:
            rng = np.random.default_rng(r.seed)
            t = np.arange(int(r.duration * SR)) / SR
            f0 = (1500.0 if "high" in r.prompt else 200.0) * rng.uniform(0.9, 1.1)
            slope = {"rising": 6.0, "falling": -6.0}.get(r.prompt.split()[0], 0.0)
            f = f0 * 2 ** (slope * t / 12)
            x = 0.3 * np.sin(2 * np.pi * np.cumsum(f) / SR) + 0.01 * rng.standard_normal(len(t))
            if "fading in" in r.prompt:
                x *= 1 - t / t[-1]
            out.append(Audio(x, SR))
        return out


def test_control_scores_attributes(tmp_path):
    pairs = [Pair("register", "a low hum", "a high hum", "spectral_centroid"),
             Pair("pitch", "falling hum", "rising hum", "pitch_slope"),
             Pair("tremolo", "a steady hum", "a wobbly hum", "tremolo_depth"),
             Pair("fade", "a hum fading out", "a hum fading in", "loudness_trend")]
    res = control_test(ToyGenerator(), pairs, seeds=3, duration=1.0)
    a = res["attributes"]
    assert a["register"]["share"] == 1.0 and a["register"]["auc"] == 1.0
    assert a["pitch"]["share"] == 1.0 and a["pitch"]["auc"] == 1.0
    assert a["tremolo"]["share"] == 0.0 and a["tremolo"]["auc"] == 0.5       # identical audio: ties
    assert a["fade"]["share"] == 0.0 and a["fade"]["auc"] == 0.0             # backwards
    assert a["register"]["n"] == 3 and a["register"]["ci95"][0] < 1.0
    o = res["overall"]
    assert o["correct"] == 6 and o["n"] == 12 and o["auc_mean"] == pytest.approx(0.625)
    assert len(res["trials"]) == 12 and res["settings"]["seeds"] == [0, 1, 2]
    paths = write_control(res, tmp_path / "ctl")
    assert json.loads(paths["json"].read_text())["overall"]["share"] == 0.5
    assert "| register | spectral_centroid | 3/3 (100%)" in paths["markdown"].read_text()
    assert "data:image/png;base64," in paths["html"].read_text()


def test_oracle_control_reads_the_synth_corpus():
    """The analyzers read every attribute of real corpus renders (one pair per attribute, one seed)."""
    from foley.data.synth.control import minimal_pairs
    from foley.eval.control import OracleGenerator

    first = {}
    for p in minimal_pairs():
        first.setdefault(p.attribute, p)
    pairs = list(first.values())
    res = control_test(OracleGenerator(pairs), pairs, seeds=[0], duration=2.0)
    assert len(res["attributes"]) == 8
    wrong = {a: r for a, r in res["attributes"].items() if r["share"] < 1.0}
    assert not wrong, wrong


def test_eval_control_cli_takes_only_the_attributes_asked(tmp_path):
    from typer.testing import CliRunner

    from foley.cli import app

    r = CliRunner().invoke(app, ["--threads", "1", "eval", "control", "--oracle", "--seeds", "1", "--duration", "1",
                                 "--attribute", "tremolo", "-o", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "c" / "control.json").read_text())
    assert set(res["attributes"]) == {"tremolo"} and res["settings"]["attributes"] == ["tremolo"]
    bad = CliRunner().invoke(app, ["eval", "control", "--oracle", "--attribute", "loudness", "-o", str(tmp_path / "b")])
    assert bad.exit_code != 0 and "unknown attribute loudness" in str(bad.exception or bad.output)
    assert not (tmp_path / "b").exists()
