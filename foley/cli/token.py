"""`foley token create|list|revoke`: API tokens for `foley serve --auth` (no server needed; same data folder)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import RequestError
from . import app

token_app = typer.Typer(help="API tokens for `foley serve --auth`: `foley token create --name alice` prints a "
                             "token once; requests send it as 'Authorization: Bearer <token>'.",
                        no_args_is_help=True)
app.add_typer(token_app, name="token")

DATA = typer.Option(Path("foley-data"), "--data", help="The server's data folder (as given to `foley serve --data`).")
DATABASE = typer.Option(None, "--database", envvar="FOLEY_DATABASE",
                        help="Database URL, if the server uses one (foley serve --database).")


def _db(data: Path, database: str | None):
    from ..server.db import Database
    from ..server.settings import Settings

    settings = Settings(data=data, database_url=database)
    settings.data.mkdir(parents=True, exist_ok=True)
    return Database(settings.db_url)


QUOTA = typer.Option(None, "--quota", help="Audio-seconds this token may ask for per UTC day (jobs and streams); "
                                           "default: the server's --quota-seconds-per-day.")
RATE = typer.Option(None, "--rate", help="Generations and streams this token may start per minute; default: the "
                                         "server's --rate-per-minute.")


@token_app.command("create")
def create(name: str = typer.Option(None, "--name", help="A label for whoever uses it (default token-N)."),
           quota: float = QUOTA, rate: int = RATE, data: Path = DATA, database: str = DATABASE):
    """Make a token and print it once (only its SHA-256 is stored)."""
    from ..server.auth import create_token

    token, row = create_token(_db(data, database), name, quota_seconds=quota, rate_per_minute=rate)
    typer.echo(f"token '{row.name}' (shown once; keep it secret):", err=True)
    typer.echo(token)


@token_app.command("limit")
def limit(name: str = typer.Argument(..., help="The token's name (foley token list)."), quota: float = QUOTA,
          rate: int = RATE,
          default: bool = typer.Option(False, "--default", help="Back to the server's limits (then --quota/--rate, "
                                                                "if given, apply)."),
          data: Path = DATA, database: str = DATABASE):
    """Set a token's own daily quota of audio-seconds and/or its rate limit."""
    from ..server.auth import set_limits

    if quota is None and rate is None and not default:
        raise RequestError("give --quota SECONDS, --rate N or --default (see foley token limit --help)")
    row = set_limits(_db(data, database), name, quota, rate, default)
    typer.echo(f"token '{row.name}': {_limits(row)}")


def _limits(row) -> str:
    quota = "server default" if row.quota_seconds is None else f"{row.quota_seconds:g} s"
    rate = "server default" if row.rate_per_minute is None else f"{row.rate_per_minute}"
    return f"quota {quota} per day, rate {rate} per minute"


@token_app.command("list")
def list_(data: Path = DATA, database: str = DATABASE):
    """Names, dates, limits and today's use of the tokens (never the tokens)."""
    from ..server.auth import list_tokens
    from ..server.quotas import used_today

    db = _db(data, database)
    t = db.clock()
    with db.session() as s:
        for row in list_tokens(db):
            state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
            used = used_today(s, row.id, t)
            typer.echo(f"{row.name}\tcreated {row.created_at:%Y-%m-%d %H:%M}\t{state}\t{_limits(row)}\t"
                       f"used today {used:g} s")


@token_app.command("revoke")
def revoke(name: str = typer.Argument(..., help="The token's name (foley token list)."),
           data: Path = DATA, database: str = DATABASE):
    """Refuse a token from now on (its jobs stay in the database)."""
    from ..server.auth import revoke_token

    revoke_token(_db(data, database), name)
    typer.echo(f"revoked token '{name}'")
