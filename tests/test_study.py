"""Listening studies: analysis with known answers, the CLI, participant/owner API rules. No model needed."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("krippendorff")

from fastapi.testclient import TestClient  # noqa: E402

from foley.server import Settings, create_app  # noqa: E402
from foley.server.analysis import analyse, answers_csv, krippendorff_alpha, mean_ci  # noqa: E402
from foley.server.db import Database, Study  # noqa: E402
from foley.server.storage import Storage  # noqa: E402
from foley.server.studies import create_study, make_trials  # noqa: E402

LABELS = ["car horn", "dog bark", "rain"]


def test_alpha_matches_krippendorffs_published_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 observers x 12 units
    n = np.nan
    data = [[1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n], [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
            [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n], [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n]]
    assert krippendorff_alpha(data, "nominal")["alpha"] == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(data, "interval")["alpha"] == pytest.approx(0.849, abs=5e-4)
    same = krippendorff_alpha([[3, 3], [3, 3]], "interval")
    assert same["alpha"] is None and "same value" in same["note"]
    assert krippendorff_alpha([[1, 2, 3]], "nominal")["alpha"] is None  # one rater


def test_mean_ci_is_the_t_interval():
    from scipy.stats import t

    m = mean_ci([1.0, 2.0, 3.0, 4.0])
    half = t.ppf(0.975, 3) * np.std([1, 2, 3, 4], ddof=1) / 2
    assert m["mean"] == 2.5 and m["ci95"] == pytest.approx([2.5 - half, 2.5 + half])
    assert mean_ci([5.0])["ci95"] is None and mean_ci([])["mean"] is None
    assert mean_ci([0.0, 1.0], bounds=(0.0, 1.0))["ci95"] == [0.0, 1.0]


def _clips(root, write_audio, systems=("sysA", "sysB")):
    for s_i, system in enumerate(systems):
        for l_i, label in enumerate(LABELS):
            wav = root / system / f"{label.replace(' ', '_')}.wav"
            write_audio(wav, seconds=0.3, freq=200 + 100 * l_i + 20 * s_i)
            wav.with_suffix(".json").write_text(json.dumps({"description": label}))
    return root


def _setup(tmp_path, write_audio, protocol, **options):
    data = tmp_path / "data"
    settings = Settings(data=data, models={"none": str(tmp_path / "no-model")}, start_worker=False)
    app = create_app(settings)
    from foley.server.studies import clips_from_path

    db, storage = Database(settings.db_url), Storage(settings.data)
    items = clips_from_path(_clips(tmp_path / "clips", write_audio))
    study, token = create_study(db, storage, "test", protocol, items, options)
    return app, study, token


def _take_part(client, study, answer, finish=True):
    """Answer every trial with ``answer(trial, description)``; the test knows the descriptions by clip key."""
    desc = {c["key"]: c["description"] for c in study.clips}
    s = client.post(f"/v1/studies/{study.id}/participants").json()
    seen: dict = {}
    for t in s["trials"]:
        keys = [u.split("/")[-2] for u in t["audio"]]
        unit = tuple(sorted(keys))
        first = unit not in seen
        seen.setdefault(unit, True)
        r = client.post(f"/v1/studies/{study.id}/participants/{s['participant']}/answers",
                        json={"trial": t["index"], "response": answer(t, [desc[k] for k in keys], first)})
        assert r.status_code == 200, r.text
    if finish:
        done = client.post(f"/v1/studies/{study.id}/participants/{s['participant']}/complete")
        assert done.status_code == 200
    return s


def test_matching_confusion_matrix_screening_and_cli(tmp_path, write_audio, foley_cli):
    data = tmp_path / "data"
    _clips(tmp_path / "clips", write_audio)
    r = foley_cli("study", "create", "--name", "match", "--clips", tmp_path / "clips",
                  "--protocol", "matching", "--k", 3, "--repeats", 1, "--data", data)
    assert r.returncode == 0, r.stderr
    sid = re.search(r"study ([0-9a-f]{32})", r.stdout).group(1)
    token = re.search(r"#token=(\S+)", r.stdout).group(1)
    app = create_app(Settings(data=data, models={"none": str(tmp_path / "none")}, start_worker=False))
    with TestClient(app) as c:
        with Database(Settings(data=data).db_url).session() as s:
            study = s.get(Study, sid)
        assert len(study.clips) == 6 and {c["system"] for c in study.clips} == {"sysA", "sysB"}
        _take_part(c, study, lambda t, d, first: {"choice": d[0]})                       # always right
        _take_part(c, study, lambda t, d, first: {"choice": "car horn"})                 # always "car horn"
        _take_part(c, study, lambda t, d, first: {"choice": d[0] if first else            # inconsistent
                                                   next(x for x in t["choices"] if x != d[0])})
        _take_part(c, study, lambda t, d, first: {"choice": d[0]}, finish=False)         # did not finish
        assert c.get(f"/v1/studies/{sid}/results").status_code == 401
        wrong = c.get(f"/v1/studies/{sid}/results", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403
        res = c.get(f"/v1/studies/{sid}/results", headers={"Authorization": f"Bearer {token}"}).json()
        export = c.get(f"/v1/studies/{sid}/export.json", headers={"Authorization": f"Bearer {token}"}).json()
    m = res["matching"]
    assert m["labels"] == LABELS and m["k"] == 3 and m["chance"] == pytest.approx(1 / 3)
    assert m["matrix"] == [[4, 0, 0], [2, 2, 0], [2, 0, 2]]
    assert m["accuracy"]["mean"] == pytest.approx(2 / 3) and m["accuracy"]["correct"] == 8
    assert {e["reason"] for e in res["participants"]["excluded"]} == {"failed screening", "did not finish"}
    assert res["screening"]["P003"]["passed"] is False and res["screening"]["P001"]["passed"] is True
    assert analyse(export, include_failed=True)["matching"]["accuracy"]["answers"] == 18
    # the command line gives the same numbers, from the database and from the export file
    for target in (sid, tmp_path / "export.json"):
        (tmp_path / "export.json").write_text(json.dumps(export))
        out = foley_cli("study", "analyse", target, "--data", data, "-o", tmp_path / "a.json")
        assert out.returncode == 0, out.stderr
        assert "8/12 correct" in out.stdout and "car horn" in out.stdout
        assert json.loads((tmp_path / "a.json").read_text())["matching"]["matrix"] == m["matrix"]
    rows = answers_csv(export).splitlines()
    assert rows[0].startswith("participant,") and len(rows) == 1 + 4 * 7  # 3 finished, 1 unfinished, 7 each


def test_ovl_rel_means_cis_and_alpha(tmp_path, write_audio):
    app, study, token = _setup(tmp_path, write_audio, "ovl_rel", repeats=1)
    system = {c["key"]: c["system"] for c in study.clips}

    def rater(offset):
        def answer(t, d, first):
            key = t["audio"][0].split("/")[-2]
            base = 80 if system[key] == "sysA" else 40
            return {"ovl": base + offset, "rel": base - 10 + offset}
        return answer

    with TestClient(app) as c:
        for offset in (0, 10):
            _take_part(c, study, rater(offset))
        res = c.get(f"/v1/studies/{study.id}/results", headers={"Authorization": f"Bearer {token}"}).json()
    ovl = res["ratings"]["ovl"]["by_system"]
    assert ovl["sysA"]["mean"] == pytest.approx(85) and ovl["sysB"]["mean"] == pytest.approx(45)
    assert ovl["sysA"]["n"] == 2 and ovl["sysA"]["n_ratings"] == 6
    assert ovl["sysA"]["ci95"] == pytest.approx(mean_ci([80, 90], bounds=(1, 100))["ci95"])
    assert ovl["sysA"]["ci95"][1] == 100  # two participants: the t interval is clipped to the scale
    alpha = res["ratings"]["rel"]["alpha"]
    expected = krippendorff_alpha([[70 if system[k] == "sysA" else 30 for k in system],
                                   [80 if system[k] == "sysA" else 40 for k in system]], "interval")
    assert alpha["alpha"] == pytest.approx(expected["alpha"]) and 0 < alpha["alpha"] < 1


def test_ab_preference_rate_and_binomial_test(tmp_path, write_audio):
    from scipy.stats import binomtest

    app, study, token = _setup(tmp_path, write_audio, "ab", repeats=1)
    assert len(study.units) == 3  # one pair per description
    system = {c["key"]: c["system"] for c in study.clips}
    with TestClient(app) as c:
        for _ in range(2):  # both participants always prefer sysA, whichever side it is on
            _take_part(c, study, lambda t, d, first: {
                "choice": "A" if system[t["audio"][0].split("/")[-2]] == "sysA" else "B"})
        res = c.get(f"/v1/studies/{study.id}/results", headers={"Authorization": f"Bearer {token}"}).json()
    (pair,) = res["ab"]["pairs"]
    assert pair["systems"] == ["sysA", "sysB"] and pair["wins"] == [6, 0] and pair["rate"] == 1.0
    assert pair["p_value"] == pytest.approx(binomtest(6, 6, 0.5).pvalue)
    assert res["participants"]["excluded"] == []  # the swapped repeat gave the same preference


def test_participant_sees_no_labels_and_cannot_change_finished_answers(tmp_path, write_audio):
    app, study, token = _setup(tmp_path, write_audio, "emotion", repeats=2)
    with TestClient(app) as c:
        info = c.get(f"/v1/studies/{study.id}").json()
        assert info["trials"] == 8 and set(info["scales"]) == {"happiness", "sadness", "fear", "anger"}
        s = c.post(f"/v1/studies/{study.id}/participants").json()
        text = json.dumps(s)
        for secret in ("sysA", "reference", "role", "unit", "dog bark", token):
            assert secret not in text
        url = f"/v1/studies/{study.id}/participants/{s['participant']}"
        ok = {"happiness": 3, "sadness": 0, "fear": 10, "anger": 5}
        assert c.post(f"{url}/answers", json={"trial": 0, "response": {**ok, "fear": 11}}).status_code == 422
        assert c.post(f"{url}/answers", json={"trial": 0, "response": {"happiness": 3}}).status_code == 422
        assert c.post(f"{url}/answers", json={"trial": 99, "response": ok}).status_code == 422
        assert c.post(f"{url}/complete").status_code == 409
        for t in s["trials"]:
            assert c.post(f"{url}/answers", json={"trial": t["index"], "response": ok}).status_code == 200
        assert c.post(f"{url}/complete").status_code == 200
        assert c.post(f"{url}/answers", json={"trial": 0, "response": ok}).status_code == 409
        assert c.get(f"/v1/studies/{study.id}/participants/{'0' * 32}").status_code == 404
        assert c.get(f"/v1/studies/{study.id}/clips/..%2F..%2Ffoley.db/audio").status_code == 404
        assert c.get(f"/v1/studies/{study.id}/export.csv").status_code == 401


def test_trials_are_randomised_with_spaced_repeats(tmp_path, write_audio):
    _, study, _ = _setup(tmp_path, write_audio, "matching", repeats=2, k=2)
    orders = []
    for seed in range(6):
        trials = make_trials(study, np.random.default_rng(seed))
        assert len(trials) == 8 and [t["index"] for t in trials] == list(range(8))
        reps = [t for t in trials if t["role"] == "repeat"]
        assert len(reps) == 2
        for r in reps:
            main = next(t for t in trials if t["unit"] == r["unit"] and t["role"] == "main")
            assert r["index"] - main["index"] >= 2 and sorted(r["choices"]) == sorted(main["choices"])
        assert all(len(t["choices"]) == 2 for t in trials)
        orders.append(tuple(t["unit"] for t in trials))
    assert len(set(orders)) > 1


def test_bad_study_definitions_are_one_line_errors(tmp_path, write_audio):
    from foley.errors import RequestError

    db, storage = Database(f"sqlite:///{tmp_path / 'db.sqlite'}"), Storage(tmp_path)
    wav = tmp_path / "a.wav"
    write_audio(wav)
    with pytest.raises(RequestError, match="two different descriptions"):
        create_study(db, storage, "x", "matching", [(wav, {"description": "a"})] * 2)
    with pytest.raises(RequestError, match="two different systems"):
        create_study(db, storage, "x", "ab", [(wav, {"description": "a", "system": "s"})] * 2)
    with pytest.raises(RequestError, match="unknown protocol"):
        create_study(db, storage, "x", "mushra", [(wav, {"description": "a"})])
