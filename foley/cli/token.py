"""`foley token create|list|revoke`: API tokens for `foley serve --auth` (no server needed; same data folder)."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app

token_app = typer.Typer(help="API tokens for `foley serve --auth`: `foley token create --name alice` prints a "
                             "token once; requests send it as 'Authorization: Bearer <token>'.",
                        no_args_is_help=True)
app.add_typer(token_app, name="token")

DATA = typer.Option(Path("foley-data"), "--data", help="The server's data folder (as given to `foley serve --data`).")
DATABASE = typer.Option(None, "--database", help="SQLAlchemy URL, if the server uses one (foley serve --database).")


def _db(data: Path, database: str | None):
    from ..server.db import Database
    from ..server.settings import Settings

    settings = Settings(data=data, database_url=database)
    settings.data.mkdir(parents=True, exist_ok=True)
    return Database(settings.db_url)


@token_app.command("create")
def create(name: str = typer.Option(None, "--name", help="A label for whoever uses it (default token-N)."),
           data: Path = DATA, database: str = DATABASE):
    """Make a token and print it once (only its SHA-256 is stored)."""
    from ..server.auth import create_token

    token, row = create_token(_db(data, database), name)
    typer.echo(f"token '{row.name}' (shown once; keep it secret):", err=True)
    typer.echo(token)


@token_app.command("list")
def list_(data: Path = DATA, database: str = DATABASE):
    """Names and dates of the tokens (never the tokens)."""
    from ..server.auth import list_tokens

    for row in list_tokens(_db(data, database)):
        state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
        typer.echo(f"{row.name}\tcreated {row.created_at:%Y-%m-%d %H:%M}\t{state}")


@token_app.command("revoke")
def revoke(name: str = typer.Argument(..., help="The token's name (foley token list)."),
           data: Path = DATA, database: str = DATABASE):
    """Refuse a token from now on (its jobs stay in the database)."""
    from ..server.auth import revoke_token

    revoke_token(_db(data, database), name)
    typer.echo(f"revoked token '{name}'")
