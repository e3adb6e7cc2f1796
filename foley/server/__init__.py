"""`foley serve`: the REST API, job worker, web studio and listening studies.

``create_app(settings)`` builds the FastAPI app; :class:`Settings` holds the data folder, database URL,
offered models and limits. FastAPI and SQLAlchemy are imported only when the app is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .settings import Settings


def __getattr__(name: str):
    if name in ("Settings", "parse_models"):  # pydantic (through foley.request): not for `foley --help`
        from . import settings

        return getattr(settings, name)
    raise AttributeError(f"module 'foley.server' has no attribute {name!r}")


def create_app(settings: Settings | None = None):
    """The FastAPI app (see :mod:`foley.server.app`)."""
    from .app import create_app as _create

    return _create(settings)


__all__ = ["Settings", "create_app", "parse_models"]
