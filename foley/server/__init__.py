"""`foley serve`: the REST API, job worker, web studio and listening studies.

``create_app(settings)`` builds the FastAPI app; :class:`Settings` holds the data folder, database URL,
offered models and limits. FastAPI and SQLAlchemy are imported only when the app is built.
"""

from __future__ import annotations

from .settings import Settings, parse_models


def create_app(settings: Settings | None = None):
    """The FastAPI app (see :mod:`foley.server.app`)."""
    from .app import create_app as _create

    return _create(settings)


__all__ = ["Settings", "create_app", "parse_models"]
