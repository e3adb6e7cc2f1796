"""The studio's Control section in headless Chromium (the fixtures of tests/test_browser.py): curves drawn with the
pointer reach the server as points, an imitation goes as an upload, the section shows only for models that steer,
and the result card shows how closely the sound follows the curves. Screenshots go to $FOLEY_SCREENSHOTS."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("torch")
sync_api = pytest.importorskip("playwright.sync_api")
if not Path(os.environ.get("FOLEY_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")).exists():
    pytest.skip("Debian's chromium is not installed (make sysdeps)", allow_module_level=True)

from foley.audio import Audio  # noqa: E402
from tests.server_fixtures import tiny_model  # noqa: E402, F401
from tests.test_browser import ARGS, CHROMIUM, TIMEOUT_MS, server  # noqa: E402, F401


@pytest.fixture
def page(server):  # noqa: F811
    """The studio in a fresh headless Chromium; page errors are collected in ``page.errors``."""
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1100, "height": 1300})
        page.set_default_timeout(TIMEOUT_MS)
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.goto(server)
        page.wait_for_selector("#model option[value=tinylm]", state="attached")
        yield page
        browser.close()


def _draw(page, curve: str, start: float, end: float, span: tuple[float, float] | None = None) -> None:
    """Press on the canvas's left edge at height ``start`` (0 = bottom, 1 = top), drag past its right edge at height
    ``end`` (the pointer is captured, so the stroke covers the whole timeline); or only across ``span`` (fractions
    of the width)."""
    page.select_option("#curve-name", curve)
    box = page.locator("#curve-canvas").bounding_box()
    x = lambda frac: box["x"] + frac * box["width"]  # noqa: E731
    y = lambda frac: box["y"] + 1 + (1 - frac) * (box["height"] - 2)  # noqa: E731  (inside the edges)
    page.mouse.move(x(span[0]) if span else box["x"] + 1, y(start))
    page.mouse.down()
    if span is None:
        page.mouse.move(box["x"] - 10, y(start))
    page.mouse.move(x(span[1]) if span else box["x"] + box["width"] + 10, y(end), steps=20)
    page.mouse.up()


def _job(base: str, page) -> dict:
    """The job of the result card on the page, as the server stored it."""
    import httpx

    job_id = page.get_attribute("#gen-result .card", "data-job")
    return httpx.get(f"{base}/v1/generations/{job_id}").json()


def test_drawn_pitch_and_pan_reach_the_server_and_adherence_is_shown(server, page, tmp_path):  # noqa: F811
    shots = Path(os.environ.get("FOLEY_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    assert page.is_visible("#control") and page.is_hidden("#control-note")  # tiny (the default) steers
    assert page.eval_on_selector_all("#curve-name option", "os => os.map(o => o.value)") == \
        ["loudness", "brightness", "pitch", "density", "pan"]
    page.fill("#prompt", "a tone")
    page.fill("#duration", "1")
    page.fill("#seed", "5")
    page.fill("#steps", "2")
    page.fill("#steer", "1")
    _draw(page, "pitch", 0.9, 0.1)  # a fall first...
    _draw(page, "pitch", 0.0, 1.0)  # ...then drawn again over the whole range: the rise replaces it
    _draw(page, "pan", 0.0, 1.0)    # bottom = left, top = right
    _draw(page, "loudness", 1.0, 0.0)
    assert "drawn 0.00–1.00 s" in page.inner_text("#curve-list .curve-item[data-curve=loudness]")
    page.click("#curve-list .curve-item[data-curve=loudness] button.curve-clear")  # cleared: not sent
    assert "not drawn" in page.inner_text("#curve-list .curve-item[data-curve=loudness]")
    assert "drawn 0.00–1.00 s" in page.inner_text("#curve-list .curve-item[data-curve=pitch]")
    page.screenshot(path=str(shots / "studio_control.png"), full_page=True)

    page.click("#generate")
    page.wait_for_function("(document.querySelector('#gen-result .adherence') || {}).textContent?.includes(' r = ')")
    assert page.inner_text("#gen-status-text") == "done"
    line = page.inner_text("#gen-result .adherence")
    assert "pitch r = " in line and "pan r = " in line and "loudness" not in line
    page.screenshot(path=str(shots / "studio_control_result.png"), full_page=True)

    req = _job(server, page)["request"]
    assert req["steer"] == 1 and set(req["controls"]) == {"pitch", "pan"}
    pitch, pan = req["controls"]["pitch"], req["controls"]["pan"]
    for curve in (pitch, pan):
        assert curve["times"][0] == 0 and curve["times"][-1] == pytest.approx(1.0)
        assert len(curve["times"]) == 21 and np.all(np.diff(curve["times"]) > 0)  # 20 points per second
        assert curve.get("strength") is None  # drawn over the whole timeline
    values = np.array(pitch["values"])
    assert np.all(np.diff(values) >= 0) and values[0] < 110 and values[-1] > 1800  # 100 Hz -> 2 kHz, log axis
    assert pan["values"][0] < -11 and pan["values"][-1] > 11 and np.all(np.diff(pan["values"]) >= 0)
    assert page.errors == []


def test_texture_and_tremolo_are_sent_as_controls_and_their_result_shown(server, page):  # noqa: F811
    """The Texture and Tremolo selects (offered because the model lists them among its controls) go as
    ``controls`` words; the result card says whether each quality was met; "from the words" sends nothing."""
    assert page.is_visible("#texture") and page.is_visible("#tremolo")
    page.fill("#prompt", "a tone")
    page.fill("#duration", "1")
    page.fill("#seed", "5")
    page.fill("#steps", "2")
    page.fill("#steer", "1")
    page.select_option("#texture", "noisy")
    page.click("#generate")
    page.wait_for_function("(document.querySelector('#gen-result .adherence') || {}).textContent?.includes('noisy')")
    line = page.inner_text("#gen-result .adherence")
    assert "noisy: met" in line or "noisy: missed" in line
    req = _job(server, page)["request"]
    assert req["controls"] == {"texture": "noisy"} and req["steer"] == 1
    assert page.errors == []


def test_control_section_only_for_models_that_steer(server, page):  # noqa: F811
    _draw(page, "pitch", 0.2, 0.8)
    _draw(page, "density", 0.5, 0.5, span=(0.25, 0.75))  # the middle half only: no strength elsewhere
    page.fill("#duration", "2")
    sent = page.evaluate("sampleCurve('density', 2)")
    assert sent["times"][0] == 0 and sent["times"][-1] == 2 and len(sent["times"]) == 41
    strength = np.array(sent["strength"])
    assert strength[:9].max() == 0 and strength[12:29].min() == 1 and strength[32:].max() == 0
    assert len(set(sent["values"])) == 1  # undrawn points hold the nearest drawn value (8 onsets/s)
    page.click("#curve-list .curve-item[data-curve=density] button.curve-clear")
    page.select_option("#texture", "tonal")
    page.select_option("#model", "tinylm")  # the token LM cannot follow control curves
    assert page.is_hidden("#control")
    note = page.inner_text("#control-note")
    assert "'tinylm' cannot follow them" in note and "models here that can: tiny." in note
    page.fill("#prompt", "a tone")
    page.fill("#duration", "1")
    page.click("#generate")  # the drawn curve stays in the page but is not sent to this model
    page.wait_for_function("(document.querySelector('#gen-result .meta') || {}).textContent?.includes('tinylm')")
    assert page.inner_text("#gen-status-text") == "done"
    req = _job(server, page)["request"]
    assert req["controls"] is None and req["steer"] is None
    assert page.locator("#gen-result .adherence").count() == 0
    page.select_option("#model", "tiny")
    assert page.is_visible("#control") and page.is_hidden("#control-note")
    assert "drawn" in page.inner_text("#curve-list .curve-item[data-curve=pitch]")
    assert page.errors == []


def test_an_imitation_is_uploaded_and_sent_as_like(server, page, tmp_path):  # noqa: F811
    bad = tmp_path / "notes.txt"
    bad.write_text("not a sound")
    page.set_input_files("#like-file", str(bad))
    page.wait_for_selector("#gen-error:not([hidden])")
    err = page.inner_text("#gen-error")
    assert err.startswith("imitation notes.txt: ") and "\n" not in err
    assert page.input_value("#like-file") == "" and page.is_hidden("#like-clear")

    t = np.arange(16000) / 16000
    sweep = 0.3 * np.sin(2 * np.pi * (200 * t + 300 * t ** 2))  # a hummed rise, 200 -> 800 Hz
    Audio(sweep[None].astype(np.float32), 16000).save(tmp_path / "voice.wav")
    page.set_input_files("#like-file", str(tmp_path / "voice.wav"))
    page.wait_for_selector("#like-clear:not([hidden])")
    assert "voice.wav (1.00 s)" in page.inner_text("#like-status") and page.is_hidden("#gen-error")
    page.fill("#prompt", "a laser zap")
    page.fill("#duration", "1")
    page.fill("#steps", "2")
    page.fill("#steer", "0")  # measure only: the sound as without steering, with its adherence
    with page.expect_request(lambda r: r.url.endswith("/v1/generations") and r.method == "POST") as sent:
        page.click("#generate")
    body = sent.value.post_data_json
    assert body["like"].startswith("upload:") and len(body["like"]) == len("upload:") + 32
    assert body["steer"] == 0 and "controls" not in body
    page.wait_for_function("(document.querySelector('#gen-result .adherence') || {}).textContent?.includes(' r = ')")
    assert "pitch r = " in page.inner_text("#gen-result .adherence")
    job = _job(server, page)
    # the job shows the upload by its file name, never the server's folders
    assert job["request"]["like"] == body["like"].removeprefix("upload:") + ".wav" and job["request"]["steer"] == 0
    assert page.errors == []


def test_the_edit_tab_offers_melody_only_with_models_that_follow_one(page):
    """Task melody shows its length field and lists only the models whose card has the melody task (neither of the
    fixture's models has a control adapter, so the list says so instead of offering one that would fail)."""
    page.click("nav button[data-tab=edit]")
    page.select_option("#edit-task", "melody")
    assert page.is_visible("#melody-duration") and page.is_hidden("#loop-duration")
    assert page.eval_on_selector_all("#edit-model option", "os => os.map(o => o.textContent)") == \
        ["no model here can do melody"]
    page.select_option("#edit-task", "extend")
    assert page.is_hidden("#melody-duration")
    assert "tinylm" in page.eval_on_selector_all("#edit-model option", "os => os.map(o => o.value)")
    assert page.errors == []
