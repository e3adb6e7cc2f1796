"""End to end in headless Chromium (Debian's /usr/bin/chromium through Playwright): generate a sound from the
studio page, play it, inpaint a dragged range, build a listening test, take it as a participant, and read
the results on the owner's page. Screenshots go to $FOLEY_SCREENSHOTS (default: the test's tmp folder)."""

from __future__ import annotations

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
sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("FOLEY_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (make sysdeps)", allow_module_level=True)

from foley.audio import Audio  # noqa: E402
from foley.server import Settings, create_app  # noqa: E402
from tests.server_fixtures import tiny_model  # noqa: E402, F401

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--autoplay-policy=no-user-gesture-required"]
TIMEOUT_MS = 240_000


@pytest.fixture
def server(tiny_model, tmp_path):  # noqa: F811
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from tests.test_lm import build_lm

    lm = build_lm(tmp_path / "tinylm")
    app = create_app(Settings(data=tmp_path / "data", models={"tiny": str(tiny_model), "tinylm": str(lm)}))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(300):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(60)


def _play_all(page, selector: str) -> None:
    """Start every audio element and wait until each has really played (time advanced or ended)."""
    page.evaluate(f"document.querySelectorAll('{selector}').forEach(a => a.play())")
    page.wait_for_function(f"[...document.querySelectorAll('{selector}')]"
                           ".every(a => a.currentTime > 0.05 || a.ended)", timeout=30_000)


def _set_slider(page, name: str, value: int) -> None:
    page.eval_on_selector(f"input[type=range][name={name}]",
                          "(e, v) => { e.value = v; e.dispatchEvent(new Event('input')); }", value)


def test_generate_play_edit_and_run_a_study(server, tmp_path):
    import httpx

    shots = Path(os.environ.get("FOLEY_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    ref = tmp_path / "reference.wav"
    t = np.arange(16000) / 16000
    Audio(np.stack([0.3 * np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32), 16000).save(ref)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1100, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        # --- generate from the page and play the result ---------------------------------------------
        page.goto(server)
        page.wait_for_selector("#model option[value=tiny]", state="attached")
        page.fill("#prompt", "a tone at 440 hertz")
        page.fill("#duration", "1")
        page.fill("#seed", "5")
        page.fill("#steps", "2")
        page.click("#generate")
        page.wait_for_selector("#gen-status:not([hidden])")
        page.wait_for_selector("#gen-result .result-audio")
        assert page.inner_text("#gen-status-text") == "done"
        assert "seed 5" in page.inner_text("#gen-result .meta")
        _play_all(page, "#gen-result .result-audio")
        page.wait_for_function("document.querySelector('#gen-result img.spec').naturalWidth > 0")
        drawn = page.evaluate("""(() => { const c = document.querySelector('#gen-result canvas.wave');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let dark = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 100) dark++; return dark; })()""")
        assert drawn > 100  # the waveform was decoded and drawn
        page.screenshot(path=str(shots / "studio_generate.png"), full_page=True)
        first_job = page.get_attribute("#gen-result .card", "data-job")
        page.click("#gen-result button:has-text('Generate again with this seed')")
        page.wait_for_function("(document.querySelector('#gen-result .card') || {}).dataset?.job !== "
                               f"{first_job!r}")
        assert "seed 5" in page.inner_text("#gen-result .meta") and page.input_value("#seed") == "5"

        # --- inpaint a range dragged on the waveform ---------------------------------------------------
        page.click("#gen-result button:has-text('Edit this clip')")
        page.wait_for_function("document.querySelector('#edit-audio').src.includes('/audio')")
        page.wait_for_timeout(300)  # waveform decode
        box = page.locator("#edit-wave").bounding_box()
        page.mouse.move(box["x"] + 0.2 * box["width"], box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + 0.6 * box["width"], box["y"] + box["height"] / 2, steps=5)
        page.mouse.up()
        assert page.input_value("#edit-task") == "inpaint"
        # the Edit tab's own model list holds only the models that can inpaint (not the token model)
        assert page.eval_on_selector_all("#edit-model option", "os => os.map(o => o.value)") == ["tiny"]
        start, end = float(page.input_value("#mask-start")), float(page.input_value("#mask-end"))
        assert start == pytest.approx(0.2, abs=0.02) and end == pytest.approx(0.6, abs=0.02)
        page.fill("#edit-steps", "2")
        page.click("#edit-submit")
        page.wait_for_selector("#edit-result .result-audio")
        assert "inpaint" in page.inner_text("#edit-result .meta")
        page.screenshot(path=str(shots / "studio_edit.png"), full_page=True)

        # --- history: tick the generation for a study; add a real reference --------------------------
        page.click("nav button[data-tab=history]")
        row = page.locator("#history tbody tr", has_text="generate").first
        row.wait_for()
        row.locator("input.pick").check()
        page.screenshot(path=str(shots / "studio_history.png"), full_page=True)
        page.click("nav button[data-tab=studies]")
        assert page.inner_text("#study-count") == "1"
        page.fill("#study-name", "browser check")
        page.select_option("#study-protocol", "ovl_rel")
        page.set_input_files("#ref-files", str(ref))
        page.wait_for_selector("#ref-list input.ref-desc")
        page.fill("#ref-list input.ref-desc", "a tone at 440 hertz")
        page.click("#study-create")
        page.wait_for_selector("#results-link")
        page.screenshot(path=str(shots / "studio_study_created.png"), full_page=True)
        participant_url = page.get_attribute("#participant-link", "href")
        results_url = page.get_attribute("#results-link", "href")
        token = results_url.split("#token=")[1]
        export = httpx.get(f"{server}/v1/studies/{participant_url.split('/')[-1]}/export.json",
                           headers={"Authorization": f"Bearer {token}"}).json()
        system_of = {c["key"]: c["system"] for c in export["study"]["clips"]}
        assert sorted(system_of.values()) == ["reference", "tiny"]

        # --- a participant takes the study in a fresh browser context ---------------------------------
        part = browser.new_context().new_page()
        part.set_default_timeout(TIMEOUT_MS)
        held = []  # the study's own description is held back: Start must wait for it (CI once clicked too early)
        part.route(server + participant_url.replace("/study/", "/v1/studies/"), lambda route: held.append(route))
        part.goto(server + participant_url)
        for _ in range(200):
            if held:
                break
            part.wait_for_timeout(50)
        assert held and part.is_disabled("#start")
        for route in held:
            route.continue_()
        part.unroute(server + participant_url.replace("/study/", "/v1/studies/"))
        part.click("#start")
        n_trials = 0
        while True:
            part.wait_for_selector("#trial:not([hidden]) .trial-audio, #done:not([hidden]), #error:not([hidden])")
            assert not part.is_visible("#error"), part.inner_text("#error")
            if part.is_visible("#done"):
                break
            key = part.get_attribute(".trial-audio", "src").split("/")[-2]
            assert part.is_disabled("#next")  # nothing played or rated yet
            _play_all(part, ".trial-audio")
            ovl, rel = (90, 80) if system_of[key] == "reference" else (70, 60)
            _set_slider(part, "ovl", ovl)
            _set_slider(part, "rel", rel)
            if n_trials == 0:
                part.screenshot(path=str(shots / "study_trial.png"), full_page=True)
            counter = part.inner_text("#counter")
            part.click("#next")
            part.wait_for_function(f"document.querySelector('#counter').innerText !== {counter!r} || "
                                   "!document.querySelector('#done').hidden")
            n_trials += 1
        assert n_trials == 3  # two clips and one repeated screening item
        part.screenshot(path=str(shots / "study_done.png"), full_page=True)

        # --- the owner's results page --------------------------------------------------------------------
        page.goto(server + results_url)
        page.wait_for_selector("table.ratings[data-scale=ovl] tr[data-system=tiny] .mean")
        assert "1 participant(s), 1 included" in page.inner_text("#participants")
        assert page.inner_text("table.ratings[data-scale=ovl] tr[data-system=tiny] .mean") == "70.0"
        assert page.inner_text("table.ratings[data-scale=ovl] tr[data-system=reference] .mean") == "90.0"
        assert page.inner_text("table.ratings[data-scale=rel] tr[data-system=reference] .mean") == "80.0"
        assert page.locator("svg.chart").count() == 2
        with page.expect_download() as dl:
            page.click("#export-csv")
        csv_text = Path(dl.value.path()).read_text()
        assert csv_text.startswith("participant,") and len(csv_text.strip().splitlines()) == 4
        page.screenshot(path=str(shots / "study_results.png"), full_page=True)
        # --- a token model from the same form: no steps field ---------------------------------------------
        page.goto(server)
        page.wait_for_selector("#model option[value=tinylm]", state="attached")
        assert not page.is_disabled("#steps")
        page.select_option("#model", "tinylm")
        assert page.is_disabled("#steps") and page.input_value("#steps") == ""
        page.fill("#prompt", "a tone")
        page.fill("#duration", "1")
        page.click("#generate")
        page.wait_for_function("(document.querySelector('#gen-result .meta') || {}).textContent?.includes('tinylm')")
        assert page.inner_text("#gen-status-text") == "done"
        assert errors == []
        browser.close()
