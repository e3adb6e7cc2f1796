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
    database: str = typer.Option(None, "--database", help="SQLAlchemy URL (default sqlite:///DATA/foley.db); "
                                                           "e.g. postgresql+psycopg://user@host/foley."),
    model: list[str] = typer.Option(None, "--model", "-m",
                                    help="Offered model: NAME or ALIAS=FOLDER (repeat); default: starter, starter-lm."),
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
                        max_streams=max_streams)
    typer.echo(f"foley studio on http://{host}:{port}/  (API docs: /docs; data: {settings.data})", err=True)
    if auth:
        typer.echo("API tokens required (Authorization: Bearer ...); make one with: foley token create "
                   f"--data {settings.data}", err=True)
    else:
        typer.echo("open mode: no API tokens, every caller sees every job -- for one local user; use --auth "
                   "to share the server", err=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)
