"""The REST API against the real app, a real SQLite file and a tiny trained model: generation, edits,
uploads, limits, bad input, and jobs surviving a stopped or killed server."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("torch")

from fastapi.testclient import TestClient  # noqa: E402

from foley.audio import Audio  # noqa: E402
from foley.server import Settings, create_app  # noqa: E402
from foley.server.db import Database, Job  # noqa: E402
from foley.server.worker import recover  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.server_fixtures import tiny_model  # noqa: E402, F401

FAST = {"duration": 1.0, "steps": 2}


def wait(client, job_id: str, timeout: float = 240.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job = client.get(f"/v1/generations/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def wav_bytes(seconds=1.0, rate=16000, channels=2) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    x = np.stack([0.3 * np.sin(2 * np.pi * 330 * (c + 1) * t) for c in range(channels)]).astype(np.float32)
    buf = io.BytesIO()
    import soundfile as sf

    sf.write(buf, x.T, rate, format="WAV", subtype="FLOAT")
    return buf.getvalue()


def settings_for(data, model, **kw) -> Settings:
    return Settings(data=data, models={"tiny": str(model)}, **kw)


@pytest.fixture(scope="module")
def client(tiny_model, tmp_path_factory):  # noqa: F811
    data = tmp_path_factory.mktemp("serve")
    with TestClient(create_app(settings_for(data, tiny_model))) as c:
        c.data = data
        yield c


def test_generate_poll_download_and_provenance(client, tmp_path):
    seen: list = []
    client.app.state.svc.worker.add_listener(lambda job_id, frac: seen.append((job_id, frac)))
    r = client.post("/v1/generations", json={"prompt": "  a tone   at 440 hertz ", "seed": 7, "duration": 1.0,
                                             "steps": 4})
    assert r.status_code == 202
    job = wait(client, r.json()["id"])
    assert job["status"] == "done" and job["progress"] == 1.0 and job["attempts"] == 1
    fractions = [f for j, f in seen if j == job["id"]]  # progress came from the sampler's steps
    assert len(fractions) >= 2 and fractions == sorted(fractions) and fractions[-1] == 0.99
    assert "denoise" not in vars(client.app.state.svc.models.loaded("tiny").model)  # the wrapper is gone
    assert job["request"]["prompt"] == "a tone at 440 hertz"  # the same normalisation as the CLI
    out = job["outputs"][0]
    wav = client.get(out["audio_url"] + "&download=1")
    assert wav.headers["content-type"] == "audio/wav" and "attachment" in wav.headers["content-disposition"]
    (tmp_path / "a.wav").write_bytes(wav.content)
    audio = Audio.load(tmp_path / "a.wav")
    assert audio.sample_rate == 16000 and audio.channels == 2 and audio.frames == 16000
    assert client.get(out["spectrogram_url"]).content[:8] == b"\x89PNG\r\n\x1a\n"
    prov = client.get(out["provenance_url"]).json()
    assert prov["seed"] == 7 and prov["request"]["steps"] == 4 and prov["model_alias"] == "tiny"
    # same request and seed: the same sound
    again = wait(client, client.post("/v1/generations", json={"prompt": "a tone at 440 hertz", "seed": 7,
                                                              "duration": 1.0, "steps": 4}).json()["id"])
    (tmp_path / "b.wav").write_bytes(client.get(again["outputs"][0]["audio_url"]).content)
    assert np.array_equal(Audio.load(tmp_path / "b.wav").samples, audio.samples)
    hist = client.get("/v1/generations?per_page=1").json()
    assert hist["total"] >= 2 and hist["items"][0]["id"] == again["id"]
    assert client.get("/v1/generations?page=2&per_page=1").json()["items"][0]["id"] == job["id"]


@pytest.mark.parametrize("body, words", [
    ({"prompt": ""}, "prompt is empty"),
    ({"prompt": "x" * 10_000}, "10000 characters"),
    ({"prompt": "x" * 600}, "server's limit is 500"),
    ({"prompt": "rain", "duration": 1e9}, "over the limit"),
    ({"prompt": "rain", "duration": 20}, "model 'tiny''s maximum of 6"),
    ({"prompt": "rain", "duration": -1}, "positive number"),
    ({"prompt": "rain", "steps": 0}, "steps must be between"),
    ({"prompt": "rain", "model": "../../etc"}, "unknown model"),
    ({"prompt": "rain", "colour": "red"}, "colour"),
    ({"prompt": "rain", "task": "inpaint", "mask_start": 0, "mask_end": 1}, "POST /v1/edits"),
])
def test_bad_requests_are_one_line_422(client, body, words):
    r = client.post("/v1/generations", json=body)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and words in detail


def test_uploads_are_checked_and_names_never_become_paths(client, tmp_path):
    up = client.post("/v1/uploads", files={"file": ("../../../../evil name.wav", wav_bytes(), "audio/wav")})
    assert up.status_code == 201
    info = up.json()
    assert info["filename"] == "evil name.wav" and info["duration"] == pytest.approx(1.0)
    stored = sorted(p.name for p in (client.data / "uploads").iterdir())
    assert stored == [f"{info['id']}.wav"]
    assert not any(p.name.startswith("evil") for p in client.data.parent.rglob("evil*"))
    bad = [("x.wav", b"RIFF not really a wave file", 422, "not decodable"),
           ("x.exe", wav_bytes(), 415, "unsupported file type"),
           ("x.wav", b"", 422, "empty")]
    for name, content, status, words in bad:
        r = client.post("/v1/uploads", files={"file": (name, content, "audio/wav")})
        assert r.status_code == status and words in r.json()["detail"], (name, r.text)
    for path in ("/v1/generations/..%2F..%2Ffoley.db/audio", "/v1/generations/foley.db",
                 f"/v1/uploads/{'a' * 31}/audio", "/v1/generations/" + "0" * 32):
        assert client.get(path).status_code == 404, path


def test_upload_size_and_queue_limits(tiny_model, tmp_path):  # noqa: F811
    settings = settings_for(tmp_path, tiny_model, max_upload_bytes=10_000, max_queue=1, start_worker=False)
    with TestClient(create_app(settings)) as c:
        r = c.post("/v1/uploads", files={"file": ("big.wav", wav_bytes(2.0), "audio/wav")})
        assert r.status_code == 413 and "limit" in r.json()["detail"]
        assert c.post("/v1/generations", json={"prompt": "one", **FAST}).status_code == 202
        full = c.post("/v1/generations", json={"prompt": "two", **FAST})
        assert full.status_code == 429 and "queue is full" in full.json()["detail"]


def test_inpaint_an_upload_keeps_the_rest_of_the_clip(client, tmp_path):
    data = wav_bytes(1.0)
    r = client.post("/v1/edits", data={"task": "inpaint", "prompt": "a tone", "mask_start": 0.4,
                                       "mask_end": 0.7, "seed": 1, "steps": 2},
                    files={"file": ("in.wav", data, "audio/wav")})
    assert r.status_code == 202, r.text
    job = wait(client, r.json()["id"])
    assert job["status"] == "done", job["error"]
    (tmp_path / "in.wav").write_bytes(data)
    (tmp_path / "out.wav").write_bytes(client.get(job["outputs"][0]["audio_url"]).content)
    src, out = Audio.load(tmp_path / "in.wav"), Audio.load(tmp_path / "out.wav")
    assert out.frames == src.frames
    keep = int(0.3 * 16000)  # before the mask and its crossfade: the input's samples (to 16-bit precision)
    assert np.abs(out.samples[:, :keep] - src.samples[:, :keep]).max() < 2 / 32768
    assert not np.allclose(out.samples[:, 7000:10000], src.samples[:, 7000:10000], atol=1e-3)
    # the result can itself be edited by id, and edits validate like the CLI
    ext = client.post("/v1/edits", data={"task": "extend", "prompt": "a tone", "source_job": job["id"],
                                         "duration": 1.5, "steps": 2})
    assert ext.status_code == 202
    for data_, files, words in [
        ({"task": "inpaint", "prompt": "x", "mask_start": 0.2, "mask_end": 0.5}, None, "exactly one input"),
        ({"task": "inpaint", "prompt": "x", "mask_start": 0.2, "mask_end": 3, "source_job": job["id"]}, None,
         "outside the clip"),
        ({"task": "inpaint", "prompt": "x", "source_job": job["id"]}, None, "needs a time range"),
        ({"task": "style_transfer", "prompt": "x", "strength": 2, "source_job": job["id"]}, None, "strength"),
        # a task setting given to a task with no use for it: refused before any model loads, not ignored
        ({"task": "inpaint", "prompt": "x", "mask_start": 0.2, "mask_end": 0.5, "strength": 0.3,
          "source_job": job["id"]}, None, "strength is a setting of style_transfer and variation"),
        ({"task": "explode", "prompt": "x", "source_job": job["id"]}, None, "task"),
    ]:
        r = client.post("/v1/edits", data=data_, files=files)
        assert r.status_code == 422 and words in r.json()["detail"], r.text
    done = wait(client, ext.json()["id"])
    assert done["status"] == "done" and done["outputs"][0]["duration"] == pytest.approx(1.5)


def test_openapi_and_pages(client):
    spec = client.get("/openapi.json").json()
    for path in ("/v1/generations", "/v1/generations/{job_id}", "/v1/edits", "/v1/studies"):
        assert path in spec["paths"]
    props = spec["components"]["schemas"]["GenerationBody"]["properties"]
    assert {"prompt", "negative_prompt", "duration", "seed", "steps", "guidance_scale", "model"} <= set(props)
    assert "foley studio" in client.get("/").text
    assert "Listening test" in client.get("/study/" + "0" * 32).text
    assert client.get("/static/studio.js").status_code == 200
    models = client.get("/v1/models").json()
    assert models["default"] == "tiny" and models["models"][0]["max_duration"] == 6.0


def test_graceful_stop_requeues_and_next_app_finishes(tiny_model, tmp_path):  # noqa: F811
    ids = []
    with TestClient(create_app(settings_for(tmp_path, tiny_model))) as c:
        for i in range(2):
            ids.append(c.post("/v1/generations", json={"prompt": f"tone {i}", "seed": i, "duration": 1.0,
                                                       "steps": 50}).json()["id"])
    # the app stopped: nothing finished, nothing lost
    with Database(settings_for(tmp_path, tiny_model).db_url).session() as s:
        states = {s.get(Job, i).status for i in ids}
    assert states <= {"queued", "running"}
    with TestClient(create_app(settings_for(tmp_path, tiny_model))) as c:
        for i in ids:
            assert wait(c, i)["status"] == "done"


def test_killed_server_loses_no_job(tiny_model, tmp_path):  # noqa: F811
    import httpx

    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "foley", "serve", "--port", str(port),
                             "--data", str(tmp_path), "--model", f"tiny={tiny_model}",
                             "--log-level", "warning"], env=env,
                            stdout=subprocess.DEVNULL, stderr=(tmp_path / "serve.log").open("wb"))
    base = f"http://127.0.0.1:{port}"
    http = httpx.Client(base_url=base, timeout=120)  # a loaded CI machine can be slow while torch imports
    try:
        for _ in range(300):
            try:
                if http.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        first = http.post("/v1/generations", json={"prompt": "a long one", "duration": 1.0, "steps": 60,
                                                           "seed": 3}).json()["id"]
        second = http.post("/v1/generations", json={"prompt": "waiting", **FAST}).json()["id"]
        for _ in range(600):
            if http.get(f"/v1/generations/{first}").json()["status"] == "running":
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)  # no shutdown handler runs: the job is left "running"
        proc.wait(30)
    finally:
        http.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    with Database(settings_for(tmp_path, tiny_model).db_url).session() as s:
        assert s.get(Job, first).status == "running" and s.get(Job, second).status == "queued"
    app = create_app(settings_for(tmp_path, tiny_model))
    with TestClient(app) as c:
        assert app.state.recovered == {"requeued": 1, "failed": 0}
        for job_id in (first, second):
            job = wait(c, job_id)
            assert job["status"] == "done", job["error"]
        assert wait(c, first)["attempts"] == 2


def test_job_killed_too_often_fails_with_the_reason(tmp_path):
    settings = Settings(data=tmp_path, models={"x": "x"}, max_attempts=2)
    tmp_path.mkdir(exist_ok=True)
    db = Database(settings.db_url)
    with db.session() as s:
        s.add_all([Job(id="a" * 32, kind="generate", model="x", params={}, status="running", attempts=2),
                   Job(id="b" * 32, kind="generate", model="x", params={}, status="running", attempts=1),
                   Job(id="c" * 32, kind="generate", model="x", params={}, status="queued")])
        s.commit()
    assert recover(db, settings) == {"requeued": 1, "failed": 1}
    with db.session() as s:
        a, b, c = (s.get(Job, x * 32) for x in "abc")
    assert a.status == "failed" and "stopped while this job was running, 2 time(s)" in a.error
    assert b.status == "queued" and c.status == "queued"
    assert json.loads(json.dumps(a.params)) == {}
