"""Per-token quotas (audio-seconds per UTC day) and rate limits (generations and streams per minute), on SQLite and
PostgreSQL: the server's defaults and a token's own (``foley token limit``), 429 with ``Retry-After`` and one line,
failed or cancelled jobs not counted, streams charged (and refunded when they cannot start), ``GET /v1/usage``,
``foley token list``, and the one-line refusals of bad limits."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("torch")

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import update  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from foley.cli import app as cli  # noqa: E402
from foley.server import Settings, create_app  # noqa: E402
from foley.server.db import Database, Usage  # noqa: E402
from tests.server_fixtures import tiny_model  # noqa: E402,F401
from tests.test_server_pg import database, pg_url  # noqa: E402,F401

FAST = {"duration": 1.0, "steps": 2}


def _token(data, url, *args) -> dict:
    r = CliRunner().invoke(cli, ["token", "create", "--data", str(data), "--database", url, *args])
    assert r.exit_code == 0, r.output
    return {"Authorization": f"Bearer {r.stdout.strip().splitlines()[-1]}"}


def _app(data, url, model, **kw):
    return create_app(Settings(data=data, database_url=url, models={"tiny": str(model)}, auth=True,
                               start_worker=False, max_queue=100, **kw))


def test_daily_quota_server_default_and_token_own(database, tiny_model, tmp_path):  # noqa: F811
    alice = _token(tmp_path, database, "--name", "alice")
    bob = _token(tmp_path, database, "--name", "bob", "--quota", "10")
    with TestClient(_app(tmp_path, database, tiny_model, quota_seconds_per_day=3)) as c:
        ok = c.post("/v1/generations", json={"prompt": "x", "num_variations": 2, **FAST}, headers=alice)
        assert ok.status_code == 202
        r = c.post("/v1/generations", json={"prompt": "x", "num_variations": 2, **FAST}, headers=alice)
        assert r.status_code == 429 and "\n" not in r.json()["detail"]
        assert r.json()["detail"] == ("API token 'alice' has used 2 of its 3 audio-seconds today (UTC) and this "
                                      "request asks for 2 s; ask for less, or wait until 00:00 UTC")
        assert 0 < int(r.headers["retry-after"]) <= 86400
        assert c.post("/v1/generations", json={"prompt": "x", **FAST}, headers=alice).status_code == 202
        usage = c.get("/v1/usage", headers=alice).json()
        assert (usage["token"], usage["seconds_today"], usage["quota_seconds_per_day"],
                usage["seconds_left_today"], usage["limited"]) == ("alice", 3.0, 3.0, 0.0, True)
        # bob's own quota replaces the server's
        assert c.post("/v1/generations", json={"prompt": "x", "duration": 5.0, "steps": 2}, headers=bob)\
            .status_code == 202
        assert c.get("/v1/usage", headers=bob).json()["seconds_left_today"] == 5.0
        # a cancelled job gives its seconds back
        assert c.delete(f"/v1/generations/{ok.json()['id']}", headers=alice).json()["status"] == "cancelled"
        assert c.get("/v1/usage", headers=alice).json()["seconds_today"] == 1.0
        assert c.post("/v1/generations", json={"prompt": "x", "num_variations": 2, **FAST}, headers=alice)\
            .status_code == 202
        assert c.get("/v1/models", headers=alice).json()["limits"]["quota_seconds_per_day"] == 3
    # yesterday's use does not count
    db = Database(database)
    with db.session() as s:
        s.execute(update(Usage).values(at=db.clock() - timedelta(days=1)))
        s.commit()
    db.dispose()
    with TestClient(_app(tmp_path, database, tiny_model, quota_seconds_per_day=3)) as c:
        assert c.get("/v1/usage", headers=alice).json()["seconds_today"] == 0.0
    listed = CliRunner().invoke(cli, ["token", "list", "--data", str(tmp_path), "--database", database]).stdout
    assert "alice" in listed and "quota server default per day" in listed and "quota 10 s per day" in listed


def test_rate_limit_per_minute_and_token_limit_command(database, tiny_model, tmp_path):  # noqa: F811
    alice = _token(tmp_path, database, "--name", "alice")
    with TestClient(_app(tmp_path, database, tiny_model, rate_per_minute=2)) as c:
        for _ in range(2):
            assert c.post("/v1/generations", json={"prompt": "x", **FAST}, headers=alice).status_code == 202
        r = c.post("/v1/generations", json={"prompt": "x", **FAST}, headers=alice)
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
        assert r.json()["detail"].startswith("API token 'alice' may start 2 generations or streams a minute; "
                                             "try again in ")
        assert c.get("/v1/usage", headers=alice).json()["started_last_minute"] == 2
    r = CliRunner().invoke(cli, ["token", "limit", "alice", "--rate", "5", "--data", str(tmp_path),
                                 "--database", database])
    assert r.exit_code == 0 and "rate 5 per minute" in r.stdout
    with TestClient(_app(tmp_path, database, tiny_model, rate_per_minute=2)) as c:
        assert c.post("/v1/generations", json={"prompt": "x", **FAST}, headers=alice).status_code == 202
    r = CliRunner().invoke(cli, ["token", "limit", "alice", "--default", "--data", str(tmp_path),
                                 "--database", database])
    assert r.exit_code == 0 and "rate server default" in r.stdout


def test_open_mode_is_not_limited_and_limits_need_auth(tiny_model, tmp_path):  # noqa: F811
    from foley.errors import RequestError

    with pytest.raises(RequestError, match="per API token: add --auth"):
        Settings(data=tmp_path, models={"tiny": str(tiny_model)}, quota_seconds_per_day=5)
    with TestClient(create_app(Settings(data=tmp_path, models={"tiny": str(tiny_model)}, start_worker=False))) as c:
        assert c.get("/v1/usage").json()["limited"] is False


@pytest.mark.parametrize("args, words", [
    (["serve", "--quota-seconds-per-day", "10"], "per API token: add --auth"),
    (["serve", "--auth", "--rate-per-minute", "-1"], "rate_per_minute must be 0 or more"),
    (["token", "create", "--quota", "-5"], "--quota must be 0 or more"),
    (["token", "limit", "nobody", "--rate", "3"], "no token named 'nobody'"),
    (["token", "limit", "nobody"], "give --quota SECONDS, --rate N or --default"),
])
def test_bad_limits_are_one_line(foley_cli, tmp_path, args, words):
    r = foley_cli(*args, "--data", tmp_path, cwd=tmp_path)
    assert r.returncode != 0 and words in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    from tests.test_lm import build_lm

    return build_lm(tmp_path_factory.mktemp("quotalm") / "tinylm")


def test_streams_are_charged_and_refused_over_the_quota(lm, tmp_path):
    url = f"sqlite:///{tmp_path / 'foley.db'}"
    alice = _token(tmp_path, url, "--name", "alice")
    settings = Settings(data=tmp_path, models={"tinylm": str(lm)}, auth=True, quota_seconds_per_day=1.0,
                        preload=False)
    with TestClient(create_app(settings)) as c:
        params = {"prompt": "a tone", "model": "tinylm", "duration": 0.6, "seed": 1}
        r = c.get("/v1/stream", params=params, headers=alice)
        assert r.status_code == 200 and len(r.content) > 0
        assert c.get("/v1/usage", headers=alice).json()["seconds_today"] == 0.6
        r = c.get("/v1/stream", params=params, headers=alice)
        assert r.status_code == 429 and "has used 0.6 of its 1 audio-seconds" in r.json()["detail"]
        assert json.loads(c.get("/v1/usage", headers=alice).text)["seconds_today"] == 0.6
