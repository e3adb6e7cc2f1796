"""`foley serve`: the REST API and web studio (uvicorn)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import MissingDependencyError, RequestError
from ..server.limits import DEFAULT_MAX_PROMPT_CHARS, DEFAULT_MAX_REQUEST_SECONDS
from . import app
from .options import with_threads


@app.command()
@with_threads
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 for a team)."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    data: Path = typer.Option(Path("foley-data"), "--data",
                              help="Folder for the database, results and studies."),
    database: str = typer.Option(None, "--database", envvar="FOLEY_DATABASE",
                                 help="Database URL (default sqlite:///DATA/foley.db); e.g. postgresql://user@host/"
                                      "foley, the password in PGPASSWORD or ~/.pgpass."),
    model: list[str] = typer.Option(None, "--model", "-m",
                                    help="Offered model: NAME or ALIAS=FOLDER (repeat); default: every shipped model "
                                         "in models/."),
    default_model: str = typer.Option(None, "--default-model", help="Alias used when a request names none."),
    max_queue: int = typer.Option(16, "--max-queue", help="Jobs waiting or running at once."),
    max_upload_mb: float = typer.Option(50.0, "--max-upload-mb", help="Largest accepted upload."),
    max_duration: float = typer.Option(30.0, "--max-duration", help="Longest request, seconds."),
    max_prompt_chars: int = typer.Option(DEFAULT_MAX_PROMPT_CHARS, "--max-prompt-chars", help="Longest prompt."),
    max_request_seconds: float = typer.Option(DEFAULT_MAX_REQUEST_SECONDS, "--max-request-seconds",
                                              help="Most audio one request may ask for: variations x duration, "
                                                   "seconds."),
    max_streams: int = typer.Option(2, "--max-streams", help="Live GET /v1/stream responses at once."),
    auth: bool = typer.Option(False, "--auth", help="Require API tokens (foley token create); each token sees "
                                                    "only its own jobs."),
    insecure_open: bool = typer.Option(False, "--insecure-open",
                                       help="Allow open mode (no tokens) on a non-loopback --host: anyone who "
                                            "can reach the port sees and makes every job."),
    quota_seconds_per_day: float = typer.Option(None, "--quota-seconds-per-day",
                                                help="With --auth: audio-seconds each token may ask for per UTC day "
                                                     "(foley token limit sets a token's own)."),
    rate_per_minute: int = typer.Option(None, "--rate-per-minute",
                                        help="With --auth: generations and streams each token may start per "
                                             "minute."),
    worker: bool = typer.Option(True, "--worker/--no-worker",
                                help="Run jobs in this process too (default); --no-worker serves the API only, "
                                     "for a PostgreSQL queue served by 'foley worker' processes."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
):
    """Serve the REST API (OpenAPI docs at /docs), the web studio (/) and listening studies."""
    try:
        import uvicorn
    except ModuleNotFoundError:
        raise MissingDependencyError("foley serve needs the serve extra: pip install 'foley[serve]'") \
            from None
    from ..server import Settings, create_app, parse_models
    from ..server.auth import is_loopback
    from ..server.settings import MB

    if not auth and not insecure_open and not is_loopback(host):
        raise RequestError(f"--host {host} is reachable from other machines: add --auth (and give each user a "
                           "token from 'foley token create'), or --insecure-open to serve without tokens")
    settings = Settings(data=data, database_url=database, models=parse_models(model),
                        default_model=default_model, max_queue=max_queue,
                        max_upload_bytes=int(max_upload_mb * MB), max_duration=max_duration, auth=auth,
                        max_prompt_chars=max_prompt_chars, max_request_seconds=max_request_seconds,
                        max_streams=max_streams, start_worker=worker,
                        quota_seconds_per_day=quota_seconds_per_day, rate_per_minute=rate_per_minute)
    typer.echo(f"foley studio on http://{host}:{port}/  (API docs: /docs; data: {settings.data})", err=True)
    if auth:
        typer.echo("API tokens required (Authorization: Bearer ...); make one with: foley token create "
                   f"--data {settings.data}", err=True)
    else:
        typer.echo("open mode: no API tokens, every caller sees every job -- for one local user; use --auth "
                   "to share the server", err=True)
    from ..numba_warm import warm

    warm()  # several servers on one installation share librosa's numba cache: compiled once (numba#10128)
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)


@app.command("worker")
@with_threads
def worker_command(
    database: str = typer.Option(..., "--database", envvar="FOLEY_DATABASE",
                                 help="The queue: the URL 'foley serve --database' uses, e.g. postgresql://user@host/"
                                      "foley, the password in PGPASSWORD or ~/.pgpass."),
    data: Path = typer.Option(Path("foley-data"), "--data",
                              help="The shared results folder (the one 'foley serve --data' serves from)."),
    models: str = typer.Option(None, "--models", help="Comma-separated models whose jobs this worker runs: NAME "
                                                      "or ALIAS=FOLDER, with the aliases the server offers "
                                                      "(default: every shipped model in models/)."),
    lease_seconds: float = typer.Option(30.0, "--lease-seconds", help="A job whose worker has not renewed its "
                                                                      "lease for this long goes back to the queue."),
    max_attempts: int = typer.Option(2, "--max-attempts", help="Starts of a job (its worker died or stopped) "
                                                               "before it is marked failed."),
    max_cached_models: int = typer.Option(2, "--max-cached-models", help="Loaded models kept in memory."),
):
    """Run queued jobs from a shared PostgreSQL queue (start any number, on any machine that sees --data)."""
    import logging
    import signal

    from ..server import Settings, parse_models
    from ..server.db import Database
    from ..server.storage import Storage
    from ..server.worker import ModelCache, Worker

    specs = [m for m in (models or "").split(",") if m.strip()] or None
    settings = Settings(data=data, database_url=database, models=parse_models(specs), max_attempts=max_attempts,
                        lease_seconds=lease_seconds, max_cached_models=max_cached_models)
    if database.startswith("sqlite"):
        raise RequestError("foley worker takes jobs from a shared PostgreSQL queue (--database postgresql://...); "
                           "with SQLite, 'foley serve' runs the jobs itself")
    settings.data.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("foley").setLevel(logging.INFO)
    db = Database(settings.db_url)
    worker = Worker(db, Storage(settings.data), settings, ModelCache(settings))
    typer.echo(f"foley worker {worker.name}: models {', '.join(worker.aliases)}; results in {settings.data}",
               err=True)
    for sig in (signal.SIGINT, signal.SIGTERM):  # finish cleanly: the running job goes back to the queue
        signal.signal(sig, lambda *_: worker.stop(timeout=0))
    worker.start()
    worker.join()
    worker.stop()
    db.dispose()
    typer.echo(f"foley worker {worker.name} stopped after {worker.finished} job(s)", err=True)
