"""Server hardening against the real app, a real SQLite file and the tiny trained model: validation at
submission, the streamed body limit, the queue limit under concurrency, cancelling, start-up clean-up and
attempt counting, API tokens (401/403/404) and no server paths in responses."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("torch")

from fastapi.testclient import TestClient  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from foley.cli import app as cli  # noqa: E402
from foley.errors import RequestError  # noqa: E402
from foley.server import Settings, create_app  # noqa: E402
from foley.server.app import MULTIPART_OVERHEAD  # noqa: E402
from foley.server.db import Database, Job  # noqa: E402
from foley.server.settings import DEFAULT_MAX_PROMPT_CHARS  # noqa: E402
from foley.server.worker import recover  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.server_fixtures import tiny_model  # noqa: E402, F401
from tests.test_server import FAST, wait, wav_bytes  # noqa: E402

LONG = {"duration": 1.0, "steps": 1000}  # the most steps a request may ask for: runs long enough to cancel


def _settings(data, model, **kw) -> Settings:
    return Settings(data=data, models={"tiny": str(model), "lm": "starter-lm"}, **kw)


@pytest.fixture(scope="module")
def queue_only(tiny_model, tmp_path_factory):  # noqa: F811
    """An app without a worker: submissions are validated and queued, never run."""
    data = tmp_path_factory.mktemp("queue_only")
    with TestClient(create_app(_settings(data, tiny_model, start_worker=False, max_queue=1000))) as c:
        yield c


# --- validation at submission -----------------------------------------------------------------------------
@pytest.mark.parametrize("body, words", [
    ({"prompt": "rain", "scheduler": "bogus"}, "unknown scheduler 'bogus'; choose one of ddim"),
    ({"prompt": "rain", "duration": True}, "duration: Input should be a valid number"),
    ({"prompt": "rain", "seed": True}, "seed: Input should be a valid integer"),
    ({"prompt": "rain", "steps": True}, "steps: Input should be a valid integer"),
    ({"prompt": "rain", "num_variations": "2"}, "num_variations: Input should be a valid integer"),
    ({"prompt": "rain", "guidance_scale": "3"}, "guidance_scale: Input should be a valid number"),
    ({"prompt": "x" * 2000}, f"prompt has 2000 characters; this server's limit is {DEFAULT_MAX_PROMPT_CHARS}"),
    ({"prompt": "x" * 501}, f"prompt has 501 characters; this server's limit is {DEFAULT_MAX_PROMPT_CHARS}"),
    ({"prompt": "rain", "negative_prompt": "y" * 1200}, "negative prompt has 1200 characters; this server's "
                                                         f"limit is {DEFAULT_MAX_PROMPT_CHARS}"),
    ({"prompt": "rain", "duration": 6, "num_variations": 21}, "asks for 21 x 6 s = 126 s of audio; this "
                                                              "server's limit per request is 120 s"),
])
def test_bad_generation_fields_are_refused_at_submission(queue_only, body, words):
    r = queue_only.post("/v1/generations", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and words in detail
    assert "1000" not in detail  # the request model's own limit never shows through the server's


def test_a_prompt_padded_with_spaces_counts_as_the_model_counts_it(queue_only):
    # 600 characters as typed, 299 after whitespace is collapsed (what the model and the CLI use)
    r = queue_only.post("/v1/generations", json={"prompt": "a   " * 150, **FAST})
    assert r.status_code == 202 and r.json()["request"]["prompt"] == ("a " * 150).strip()


@pytest.mark.parametrize("query", ["page=99999999999999999999", "page=1000001", "page=0", "per_page=101",
                                   "page=abc"])
def test_history_paging_out_of_range_is_422(queue_only, query):
    r = queue_only.get(f"/v1/generations?{query}")
    assert r.status_code == 422 and "page" in r.json()["detail"]


def test_edit_a_model_cannot_do_names_the_models_that_can(queue_only):
    up = queue_only.post("/v1/uploads", files={"file": ("in.wav", wav_bytes(), "audio/wav")}).json()
    r = queue_only.post("/v1/edits", data={"task": "inpaint", "prompt": "x", "mask_start": 0.1, "mask_end": 0.5,
                                           "source_upload": up["id"], "model": "lm"})
    assert r.status_code == 422
    detail = r.json()["detail"]  # (starter-lm with its control adapter also lists melody)
    assert detail.startswith("model 'lm' cannot do 'inpaint' (it supports generate, continue, extend")
    assert detail.endswith("); models on this server that can: tiny")
    r = queue_only.post("/v1/edits", data={"task": "extend", "prompt": "x", "source_upload": up["id"],
                                           "duration": 1.5, "scheduler": "nope"})
    assert r.status_code == 422 and "unknown scheduler 'nope'" in r.json()["detail"]
    # what the studio's Edit tab filters its model list by
    tasks = {m["name"]: m["tasks"] for m in queue_only.get("/v1/models").json()["models"]}
    assert "inpaint" in tasks["tiny"] and "inpaint" not in tasks["lm"]


def test_favicon_is_served(queue_only):
    r = queue_only.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in r.content
    assert 'id="edit-model"' in queue_only.get("/").text


# --- body size on the stream --------------------------------------------------------------------------------
def test_a_chunked_body_over_the_limit_is_refused_while_streaming(tiny_model, tmp_path):  # noqa: F811
    """No Content-Length (chunked): the limit is counted on the bytes read, and reading stops there."""
    limit = 100_000
    app = create_app(_settings(tmp_path, tiny_model, start_worker=False, max_upload_bytes=limit))
    chunk, total = b"\0" * 65536, 500 * 1024 * 1024
    read = {"bytes": 0}
    sent: list[dict] = []

    head = (b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n'
            b"Content-Type: audio/wav\r\n\r\n")

    async def receive():  # a well-formed multipart upload whose file part goes on for 500 MB
        part = head if read["bytes"] == 0 else chunk[:min(len(chunk), total - read["bytes"])]
        read["bytes"] += len(part)
        return {"type": "http.request", "body": part, "more_body": read["bytes"] < total}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "http_version": "1.1", "method": "POST", "path": "/v1/uploads", "raw_path": b"",
             "root_path": "", "scheme": "http", "query_string": b"", "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80), "headers": [(b"content-type", b"multipart/form-data; boundary=xyz"),
                                                      (b"transfer-encoding", b"chunked")]}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert start["status"] == 413 and "over the limit of 0.1 MB" in json.loads(body)["detail"]
    assert read["bytes"] <= limit + MULTIPART_OVERHEAD + len(chunk)  # not 500 MB


def test_a_content_length_over_the_limit_is_refused_before_reading(tiny_model, tmp_path):  # noqa: F811
    with TestClient(create_app(_settings(tmp_path, tiny_model, start_worker=False, max_upload_bytes=10))) as c:
        r = c.post("/v1/generations", content=b"{" + b" " * 200_000 + b"}",
                   headers={"content-type": "application/json"})
        assert r.status_code == 413 and "limit" in r.json()["detail"]


# --- the queue limit under concurrency ----------------------------------------------------------------------
def test_max_queue_holds_under_concurrent_submissions(tiny_model, tmp_path):  # noqa: F811
    limit, callers = 3, 12
    with TestClient(create_app(_settings(tmp_path, tiny_model, start_worker=False, max_queue=limit))) as c:
        barrier, codes = threading.Barrier(callers), []

        def post(i):
            barrier.wait()
            codes.append(c.post("/v1/generations", json={"prompt": f"tone {i}", **FAST}).status_code)

        threads = [threading.Thread(target=post, args=(i,)) for i in range(callers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(codes) == [202] * limit + [429] * (callers - limit)
        assert c.get("/v1/generations").json()["total"] == limit


# --- cancelling ---------------------------------------------------------------------------------------------
def test_cancel_a_queued_and_a_running_job(tiny_model, tmp_path):  # noqa: F811
    with TestClient(create_app(_settings(tmp_path, tiny_model))) as c:
        running = c.post("/v1/generations", json={"prompt": "long", **LONG}).json()["id"]
        queued = c.post("/v1/generations", json={"prompt": "waiting", **FAST}).json()["id"]
        r = c.delete(f"/v1/generations/{queued}")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        for _ in range(1200):
            job = c.get(f"/v1/generations/{running}").json()
            if job["status"] == "running" and job["progress"] > 0:
                break
            time.sleep(0.05)
        assert job["status"] == "running", job
        r = c.delete(f"/v1/generations/{running}")
        assert r.status_code == 200 and r.json()["cancel_requested"] is True
        for _ in range(1200):
            job = c.get(f"/v1/generations/{running}").json()
            if job["status"] != "running":
                break
            time.sleep(0.05)
        assert job["status"] == "cancelled" and job["error"] == "cancelled by the client" and job["outputs"] == []
        assert job["progress"] < 0.5  # stopped between steps, long before the 1000th
        assert not (tmp_path / "jobs" / running).exists()
        assert c.get(f"/v1/generations/{running}/audio").status_code == 409
        # the worker goes on; a finished job cannot be cancelled
        done = wait(c, c.post("/v1/generations", json={"prompt": "after", **FAST}).json()["id"])
        assert done["status"] == "done"
        r = c.delete(f"/v1/generations/{done['id']}")
        assert r.status_code == 409 and "only a queued or running one" in r.json()["detail"]
        assert c.delete("/v1/generations/" + "0" * 32).status_code == 404


# --- start-up clean-up and attempts -------------------------------------------------------------------------
def test_recovery_removes_stale_temp_files_and_partial_results(tmp_path):
    settings = Settings(data=tmp_path, models={"x": "x"})
    db = Database(settings.db_url)
    killed, done = "a" * 32, "b" * 32
    with db.session() as s:
        s.add_all([Job(id=killed, kind="generate", model="x", params={}, status="running", attempts=1),
                   Job(id=done, kind="generate", model="x", params={}, status="done", attempts=1)])
        s.commit()
    for job in (killed, done):
        (tmp_path / "jobs" / job).mkdir(parents=True)
    (tmp_path / "jobs" / killed / ".0.wav.k3x9.wav").write_bytes(b"")  # killed mid-write: 0-byte temp
    (tmp_path / "jobs" / killed / "0.wav").write_bytes(b"RIFF")      # a partial result of that job
    (tmp_path / "jobs" / done / "0.wav").write_bytes(b"RIFF")
    (tmp_path / "jobs" / done / ".0.json.q1.json").write_bytes(b"")
    (tmp_path / "tmp").mkdir()
    (tmp_path / "tmp" / "tmpab12.wav").write_bytes(b"half an upload")
    assert recover(db, settings) == {"requeued": 1, "failed": 0}
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".db"
                  and "foley.db" not in p.name)
    assert left == [f"jobs/{done}/0.wav"]


def test_a_graceful_restart_keeps_the_attempt_count(tiny_model, tmp_path):  # noqa: F811
    """A job that is running whenever the server stops does not restart forever: the attempt counts."""
    settings = _settings(tmp_path, tiny_model, max_attempts=1)
    with TestClient(create_app(settings)) as c:
        job_id = c.post("/v1/generations", json={"prompt": "poison", **LONG}).json()["id"]
        for _ in range(1200):
            if c.get(f"/v1/generations/{job_id}").json()["status"] == "running":
                break
            time.sleep(0.05)
    with Database(settings.db_url).session() as s:
        job = s.get(Job, job_id)
        assert (job.status, job.attempts) == ("queued", 1)  # put back, but the start was counted
    app = create_app(settings)
    with TestClient(app) as c:
        assert app.state.recovered == {"requeued": 0, "failed": 1}
        job = c.get(f"/v1/generations/{job_id}").json()
        assert job["status"] == "failed" and "stopped while this job was running, 1 time(s)" in job["error"]


# --- API tokens ---------------------------------------------------------------------------------------------
def _token(data, *args) -> str:
    r = CliRunner().invoke(cli, ["token", "create", "--data", str(data), *args])
    assert r.exit_code == 0, r.output
    return r.stdout.strip().splitlines()[-1]


def test_tokens_scope_every_job_and_hide_server_paths(tiny_model, tmp_path):  # noqa: F811
    alice, bob = _token(tmp_path, "--name", "alice"), _token(tmp_path, "--name", "bob")
    dup = CliRunner().invoke(cli, ["token", "create", "--data", str(tmp_path), "--name", "alice"])
    assert dup.exit_code != 0 and "exists" in str(dup.exception)
    listed = CliRunner().invoke(cli, ["token", "list", "--data", str(tmp_path)]).stdout
    assert "alice" in listed and "bob" in listed and alice not in listed
    A, B = ({"Authorization": f"Bearer {t}"} for t in (alice, bob))
    with TestClient(create_app(_settings(tmp_path, tiny_model, auth=True))) as c:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": alice}):  # missing, bad, no scheme
            r = c.get("/v1/generations", headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
            assert "\n" not in r.json()["detail"]
        assert c.post("/v1/generations", json={"prompt": "x", **FAST}).status_code == 401
        assert c.get("/v1/models").status_code == 401
        job = wait_auth(c, c.post("/v1/generations", json={"prompt": "a tone", "seed": 1, **FAST},
                                  headers=A).json()["id"], A)
        assert job["status"] == "done", job["error"]
        out = job["outputs"][0]
        for path in (f"/v1/generations/{job['id']}", out["audio_url"], out["provenance_url"],
                     out["spectrogram_url"]):
            assert c.get(path, headers=A).status_code == 200, path
            assert c.get(path, headers=B).status_code == 404, path  # another token's job does not exist
        assert c.delete(f"/v1/generations/{job['id']}", headers=B).status_code == 404
        assert c.post("/v1/edits", headers=B, data={"task": "extend", "prompt": "x", "source_job": job["id"],
                                                    "duration": 1.5}).status_code == 404
        study = {"name": "s", "protocol": "ovl_rel", "clips": [{"job": job["id"], "index": 0}]}
        assert c.post("/v1/studies", json=study, headers=B).status_code == 404
        assert c.post("/v1/studies", json=study).status_code == 401
        up = c.post("/v1/uploads", headers=A, files={"file": ("in.wav", wav_bytes(), "audio/wav")}).json()
        assert c.get(f"/v1/uploads/{up['id']}/audio", headers=B).status_code == 404
        assert c.get(f"/v1/uploads/{up['id']}/audio", headers=A).status_code == 200
        assert c.get("/v1/generations", headers=A).json()["total"] == 1
        assert c.get("/v1/generations", headers=B).json() | {"items": []} == {"items": [], "page": 1,
                                                                              "per_page": 20, "total": 0}
        # the studio's cookie works for downloads (GET) only
        c.cookies.set("foley_token", alice)
        assert c.get(out["audio_url"]).status_code == 200
        assert c.post("/v1/generations", json={"prompt": "x", **FAST}).status_code == 401
        c.cookies.clear()
        # no absolute server path in what a client sees
        prov = c.get(out["provenance_url"], headers=A).text
        seen = prov + json.dumps(job) + c.get("/v1/models", headers=A).text
        for secret in (str(tiny_model), str(tiny_model.parent), str(tmp_path)):
            assert secret not in seen
        assert json.loads(prov)["model"]["weights"] == tiny_model.name
        # a revoked token is known but refused
        assert CliRunner().invoke(cli, ["token", "revoke", "bob", "--data", str(tmp_path)]).exit_code == 0
        r = c.get("/v1/generations", headers=B)
        assert r.status_code == 403 and "revoked" in r.json()["detail"]


def wait_auth(client, job_id: str, headers: dict, timeout: float = 240.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job = client.get(f"/v1/generations/{job_id}", headers=headers).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def test_errors_never_show_server_paths(tmp_path):
    gone = tmp_path / "models" / "gone"
    with TestClient(create_app(Settings(data=tmp_path / "d", models={"gone": str(gone)}, start_worker=False))) as c:
        info = c.get("/v1/models").json()["models"][0]
        r = c.post("/v1/generations", json={"prompt": "x"})
        assert info["available"] is False and r.status_code == 503
        for text in (info["reason"], r.json()["detail"]):
            assert str(tmp_path) not in text and "gone" in text


def test_open_mode_is_refused_off_loopback_and_announced_on_it(tiny_model, tmp_path):  # noqa: F811
    r = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--data", str(tmp_path)])
    assert isinstance(r.exception, RequestError) and "add --auth" in str(r.exception)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "foley", "serve", "--port", str(port), "--data", str(tmp_path),
                             "--model", f"tiny={tiny_model}", "--log-level", "warning"],
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stderr.readline() for _ in range(2)]
    finally:
        proc.kill()
        proc.wait(30)
    assert lines[0].startswith("foley studio on http://127.0.0.1:")
    assert lines[1].startswith("open mode: no API tokens") and "--auth" in lines[1]


def test_a_database_made_before_tokens_gains_the_new_columns(tmp_path):
    from sqlalchemy import inspect, text

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = Database(url)
    with old.engine.begin() as conn:  # the schema of a foley without tokens, cancelling or migrations
        conn.execute(text("DROP INDEX ix_jobs_owner"))
        for table in ("alembic_version", "api_tokens", "usage"):
            conn.execute(text(f"DROP TABLE {table}"))
        for table, column in (("jobs", "owner"), ("jobs", "cancel_requested"), ("uploads", "owner"),
                              ("jobs", "lease_owner"), ("jobs", "lease_until")):
            conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
    old.dispose()
    db = Database(url)
    assert {"owner", "cancel_requested", "lease_owner"} <= {c["name"] for c in inspect(db.engine).get_columns("jobs")}
    assert "quota_seconds" in {c["name"] for c in inspect(db.engine).get_columns("api_tokens")}
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from foley.server.db import Base

    with db.engine.connect() as conn:  # the same schema as a new database's (but for the order of columns)
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    with db.session() as s:
        s.add(Job(id="d" * 32, kind="generate", model="x", params={}, owner="e" * 32))
        s.commit()
        assert s.get(Job, "d" * 32).cancel_requested is False
