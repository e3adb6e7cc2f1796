"""``GET /v1/stream`` against the real app and a tiny random token LM: the streamed PCM equals the generated WAV of
the same seed (while a worker job runs beside it), headers, WAV framing, one-line 422s, tokens, and over a real
uvicorn server: a client that disconnects stops the generation, the concurrency cap (429), and the studio's
Stream button in headless Chromium."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("torch")

from fastapi.testclient import TestClient  # noqa: E402

from foley.server import Settings, create_app  # noqa: E402
from foley.server.auth import create_token  # noqa: E402
from foley.server.db import Database  # noqa: E402
from tests.test_lm import build_lm  # noqa: E402
from tests.test_server import wait  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
RATE, CHANNELS = 16000, 2


@pytest.fixture(scope="module")
def lm(tmp_path_factory) -> Path:
    """The tiny LM of tests/test_lm.py, allowed 30 s (long-form), so a long stream runs for seconds."""
    folder = build_lm(tmp_path_factory.mktemp("streamlm") / "tinylm")
    cfg = json.loads((folder / "foley.json").read_text())
    (folder / "foley.json").write_text(json.dumps({**cfg, "max_duration": 30.0}))
    return folder


def _settings(data, lm, **kw) -> Settings:
    return Settings(data=data, models={"tinylm": str(lm), "ldm": "starter"}, **kw)  # "starter" cannot stream


@pytest.fixture(scope="module")
def client(lm, tmp_path_factory):
    with TestClient(create_app(_settings(tmp_path_factory.mktemp("stream"), lm))) as c:
        yield c


def _wav_pcm(content: bytes) -> tuple[bytes, int, int]:
    import soundfile as sf

    x, rate = sf.read(io.BytesIO(content), dtype="int16", always_2d=True)
    return x.astype("<i2").tobytes(), rate, x.shape[1]


def test_streamed_pcm_equals_the_generated_wav_even_beside_a_running_job(client):
    body = {"prompt": "a tone", "seed": 9, "duration": 4.0, "model": "tinylm"}
    job = client.post("/v1/generations", json=body).json()  # the worker samples it while the stream runs
    r = client.get("/v1/stream", params={k: v for k, v in body.items()})
    assert r.status_code == 200, r.text
    h = r.headers
    assert h["content-type"] == "audio/L16;rate=16000;channels=2"
    assert (h["x-sample-rate"], h["x-channels"], h["x-frames"], h["x-seed"], h["x-model"]) == \
        ("16000", "2", "64000", "9", "tinylm")
    done = wait(client, job["id"])
    assert done["status"] == "done", done["error"]
    pcm, rate, channels = _wav_pcm(client.get(done["outputs"][0]["audio_url"]).content)
    assert (rate, channels) == (RATE, CHANNELS) and len(pcm) == 64000 * 4
    assert r.content == pcm  # the same seed: the same sound, as the WAV's 16-bit samples
    assert np.abs(np.frombuffer(pcm, "<i2")).max() > 0
    assert client.app.state.streams.finished[-1] == {"model": "tinylm", "frames": 64000, "total": 64000,
                                                     "reason": "done"}


def test_wav_stream_and_the_seed_header(client):
    r = client.get("/v1/stream", params={"prompt": "a door", "duration": 1.0, "format": "wav"})  # no seed
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    seed = int(r.headers["x-seed"])
    assert r.content[:4] == b"RIFF" and r.content[8:16] == b"WAVEfmt "
    pcm, rate, channels = _wav_pcm(r.content)
    assert (rate, channels, len(pcm)) == (RATE, CHANNELS, 16000 * 4)
    again = client.get("/v1/stream", params={"prompt": "a door", "duration": 1.0, "seed": seed})
    assert again.content == pcm  # X-Seed names the seed that was drawn


@pytest.mark.parametrize("params, status, words", [
    ({"prompt": "rain", "model": "ldm"}, 422, "model 'ldm' cannot stream (it makes whole sounds; use POST "
                                              "/v1/generations); models on this server that can: tinylm"),
    ({"prompt": ""}, 422, "prompt is empty"),
    ({}, 422, "prompt: Field required"),
    ({"prompt": "x" * 600}, 422, "prompt has 600 characters; this server's limit is 500"),
    ({"prompt": "rain", "negative_prompt": "y" * 700}, 422, "negative prompt has 700 characters"),
    ({"prompt": "rain", "duration": 40}, 422, "duration 40 s is over this server's limit of 30 s"),
    ({"prompt": "rain", "duration": -1}, 422, "positive"),
    ({"prompt": "rain", "duration": "long"}, 422, "duration: Input should be a valid number"),
    ({"prompt": "rain", "seed": -1}, 422, "seed must be a non-negative integer"),
    ({"prompt": "rain", "guidance_scale": 99}, 422, "guidance scale must be between 0 and 30, got 99.0"),
    ({"prompt": "rain", "steps": 4}, 422, "unknown parameter 'steps'; /v1/stream takes prompt, model"),
    ({"prompt": "rain", "format": "mp3"}, 422, "format: Input should be 'pcm' or 'wav'"),
    ({"prompt": "rain", "model": "../etc"}, 422, "unknown model '../etc'; this server offers: tinylm, ldm"),
])
def test_bad_stream_requests_are_refused_before_generating(client, params, status, words):
    before = len(client.app.state.streams.finished)
    r = client.get("/v1/stream", params=params)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and words in detail, detail
    assert len(client.app.state.streams.finished) == before and not client.app.state.streams.live


def test_streams_need_a_token_when_auth_is_on(lm, tmp_path):
    settings = _settings(tmp_path, lm, auth=True, start_worker=False)
    token, _ = create_token(Database(settings.db_url), "alice")
    params = {"prompt": "a tone", "duration": 0.5, "seed": 1}
    with TestClient(create_app(settings)) as c:
        for headers in ({}, {"Authorization": "Bearer nope"}):
            r = c.get("/v1/stream", params=params, headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert not c.app.state.streams.finished  # refused before anything was generated
        r = c.get("/v1/stream", params=params, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and len(r.content) == 8000 * 4
        c.cookies.set("foley_token", token)  # the studio's cookie copy (GET only), e.g. for an <audio> element
        assert c.get("/v1/stream", params=params).content == r.content


# --- over HTTP: a real uvicorn server -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def live(lm, tmp_path_factory):
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(_settings(tmp_path_factory.mktemp("live"), lm, max_streams=1))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(600):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app
    srv.should_exit = True
    thread.join(60)


def _sampler_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in ("foley-stream", "foley-lm-sampler")]


def test_disconnect_stops_generation_and_the_cap_answers_429(live, monkeypatch):
    import httpx

    base, app = live
    hub = app.state.streams
    # the model's stream holds after its first chunk until the test says go: on a fast machine the tiny model
    # otherwise makes all 30 s before the client's next request, and there is no live stream left to test
    gen, gate = app.state.svc.models.get("tinylm"), threading.Event()
    plain = gen.stream

    def held(req):
        chunks = plain(req)
        try:
            for i, chunk in enumerate(chunks):
                yield chunk
                if i == 0:
                    gate.wait(120)
        finally:
            chunks.close()

    monkeypatch.setattr(gen, "stream", held)
    long = {"prompt": "a long drone", "duration": 30.0, "seed": 4}
    with httpx.Client(base_url=base, timeout=120) as http:
        with http.stream("GET", "/v1/stream", params=long) as r:
            assert r.status_code == 200 and r.headers["x-frames"] == str(30 * RATE)
            raw = r.iter_raw()  # kept: a dropped iterator is closed at once, and with it the connection
            first = next(raw)
            assert len(first) > 0 and len(hub.live) == 1
            busy = http.get("/v1/stream", params={"prompt": "x", "duration": 0.5})  # max_streams=1
            assert busy.status_code == 429 and "1 streams are live, this server's limit" in busy.json()["detail"]
            [stream] = list(hub.live)
        # leaving the block closed the connection after one chunk: the server notices and stops the stream ...
        end = time.monotonic() + 60
        while not stream.stop_event.is_set() and time.monotonic() < end:
            time.sleep(0.05)
        assert stream.stop_event.is_set()
        gate.set()  # ... and the generation, let go, ends at its next chunk
        monkeypatch.setattr(gen, "stream", plain)
        end = time.monotonic() + 120
        while (hub.live or _sampler_threads()) and time.monotonic() < end:
            time.sleep(0.05)
        assert not hub.live and not _sampler_threads()
        last = hub.finished[-1]
        assert last["reason"] == "stopped" and 0 < last["frames"] < last["total"] == 30 * RATE, last
        # the slot and the generation turn are free again
        ok = http.get("/v1/stream", params={"prompt": "x", "duration": 0.5, "seed": 2})
        assert ok.status_code == 200 and len(ok.content) == 8000 * 4
        assert hub.finished[-1]["reason"] == "done"


CHROMIUM = os.environ.get("FOLEY_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make sysdeps)")
def test_studio_streams_with_web_audio(live, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.test_browser import ARGS

    base, app = live
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.set_default_timeout(120_000)
            page.goto(base + "/")
            page.wait_for_selector("#model option[value=ldm]", state="attached")
            page.select_option("#model", "ldm")
            assert page.is_hidden("#stream")  # the capabilities say this model cannot stream
            page.select_option("#model", "tinylm")
            assert page.is_visible("#stream")
            page.fill("#prompt", "a tone")
            page.fill("#duration", "1")
            page.fill("#seed", "9")
            page.click("#stream")
            page.wait_for_function("state.stream && state.stream.done")
            got = page.evaluate("({received: state.stream.received, scheduled: state.stream.scheduled})")
            assert got == {"received": 16000 * 4, "scheduled": 1.0}
            page.wait_for_function("state.stream.ctx.currentTime > 0.5")  # Web Audio played it
            assert "seed 9" in page.inner_text(".stream-card .meta")
            assert page.get_attribute(".stream-card audio", "src").startswith("blob:")
            page.screenshot(path=str(Path(os.environ.get("FOLEY_SCREENSHOTS", tmp_path)) / "studio_stream.png"))
        finally:
            browser.close()
