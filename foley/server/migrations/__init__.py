"""Alembic migrations of the server's database (``foley.server.db.Database`` runs them at start-up)."""
