"""Database models (SQLAlchemy 2): jobs, uploads, studies, participants and their answers.

Only portable column types (String, Integer, Float, JSON, DateTime) are used, so the same models work on
SQLite (the default) and PostgreSQL. The schema is made and upgraded by the Alembic migrations in
``foley/server/migrations`` (:func:`migrate`, run by :class:`Database` at start-up).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
ID_LENGTH = 32  # hex characters of a random id (128 bits)


def new_id() -> str:
    """A random 128-bit id as 32 lowercase hex characters (never derived from client input)."""
    return secrets.token_hex(ID_LENGTH // 2)


def now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Job(Base):
    """One generation or edit. ``params`` holds the validated request and the model alias; ``outputs`` the
    result files (names inside the job's folder) once done."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))                  # generate | edit
    status: Mapped[str] = mapped_column(String(16), index=True, default="queued")
    model: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict] = mapped_column(JSON)
    # edits: {"upload": id} or {"job": id, "index": i}
    source: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    outputs: Mapped[list | None] = mapped_column(JSON, nullable=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # the API token that made the job (None in open mode); other tokens cannot see it
    owner: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True, index=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # while running: the worker that holds the job and until when (database clock); its heartbeat renews it
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now, index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Upload(Base):
    """An uploaded clip, decoded and stored as ``uploads/<id>.wav``; the client's name is only a label."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    filename: Mapped[str] = mapped_column(String(255))
    duration: Mapped[float] = mapped_column(Float)
    sample_rate: Mapped[int] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer)
    owner: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class ApiToken(Base):
    """An API token (``foley token create``): only its SHA-256 is stored; the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # its own limits (None: the server's --quota-seconds-per-day / --rate-per-minute)
    quota_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    rate_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Usage(Base):
    """What a token was charged: the audio-seconds a job or stream asked for, when it was accepted. A job that
    fails or is cancelled is not counted (``foley.server.quotas``)."""

    __tablename__ = "usage"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    kind: Mapped[str] = mapped_column(String(16))                  # job | stream
    job_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    seconds: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Study(Base):
    """A listening test: its clips (copied into ``studies/<id>/``), units, protocol options, and the hash of
    the owner's token (the token itself is shown once, at creation)."""

    __tablename__ = "studies"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    protocol: Mapped[str] = mapped_column(String(16))
    options: Mapped[dict] = mapped_column(JSON)
    clips: Mapped[list] = mapped_column(JSON)
    units: Mapped[list] = mapped_column(JSON)
    owner_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class Participant(Base):
    """One participant's session: their own randomised trial list; the id is the secret of the session."""

    __tablename__ = "participants"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    trials: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Answer(Base):
    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("participant_id", "trial"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    trial: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class Database:
    """Engine + session factory for one URL; brings the schema up to date (Alembic) on first use."""

    def __init__(self, url: str):
        from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

        from ..errors import MissingDependencyError, RequestError

        self.url = url
        kwargs: dict = {}
        if url.startswith("sqlite"):
            # the worker thread and the request threads share the file; WAL lets readers run during a write
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True  # a server restart or idle timeout drops connections
        try:
            self.engine = create_engine(_driver(url), **kwargs)
        except (ArgumentError, NoSuchModuleError):
            raise RequestError(f"--database '{_safe_url(url)}' is not a database URL; use e.g. "
                               "postgresql://user:password@host/foley or sqlite:///path/foley.db") from None
        except ModuleNotFoundError as e:
            raise MissingDependencyError(f"--database {url.split(':')[0]} needs the Python package '{e.name}': "
                                         "pip install 'foley[serve]'") from None
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            migrate(self.engine)
        except DBAPIError as e:
            reason = " ".join(str(e.orig).split())[:300]
            raise RequestError(f"cannot use the database {_safe_url(url)}: {reason}") from None
        self.session = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def shared(self) -> bool:
        """A database that worker processes on other machines can share (PostgreSQL); SQLite is one machine's."""
        return self.dialect != "sqlite"

    def clock(self) -> datetime:
        """The database's time (PostgreSQL), so leases of workers on several machines use one clock."""
        if not self.shared:
            return now()
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT clock_timestamp()")).scalar_one()

    def dispose(self) -> None:
        self.engine.dispose()


def write_lock(session) -> None:
    """Start the session's transaction holding the write lock, so a read-then-write cannot interleave with
    another writer: ``BEGIN IMMEDIATE`` on SQLite, a table lock on PostgreSQL."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE")


MIGRATIONS_LOCK = 0x466F6C6579  # pg_advisory_xact_lock key: one process migrates at a time ("Foley")


def migrate(engine) -> str:
    """Upgrade the schema to the newest Alembic revision; returns it. A database made by a foley older than the
    migrations (tables, no ``alembic_version``) gets its missing columns and is stamped at revision 0001 first.
    On PostgreSQL an advisory lock lets one of several starting processes migrate while the others wait."""
    from pathlib import Path

    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent / "migrations"))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATIONS_LOCK})
        tables = set(inspect(conn).get_table_names())
        cfg.attributes["connection"] = conn
        if "jobs" in tables and "alembic_version" not in tables:
            _add_new_columns(conn, tables)
            command.stamp(cfg, "0001")
        command.upgrade(cfg, "head")
        return MigrationContext.configure(conn).get_current_revision()


def _add_new_columns(conn, tables: set[str]) -> None:
    """A database made by a foley older than the migrations lacks what came before them with API tokens: the
    ``api_tokens`` table and owner/cancel columns; add them as revision 0001 has them."""
    if "api_tokens" not in tables:
        from sqlalchemy import Column, MetaData, Table

        tz = DateTime(timezone=True)
        Table("api_tokens", MetaData(), Column("id", String(ID_LENGTH), primary_key=True),
              Column("name", String(100), nullable=False, unique=True),
              Column("token_hash", String(64), nullable=False, unique=True, index=True),
              Column("created_at", tz, nullable=False), Column("revoked_at", tz, nullable=True)).create(conn)
    new = {"jobs": {"owner": "VARCHAR(32)", "cancel_requested": "BOOLEAN DEFAULT FALSE NOT NULL"},
           "uploads": {"owner": "VARCHAR(32)"}}
    have = inspect(conn)
    for table, columns in new.items():
        existing = {c["name"] for c in have.get_columns(table)}
        for name, ddl in columns.items():
            if name not in existing:
                conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}"))
    conn.execute(text("CREATE INDEX IF NOT EXISTS ix_jobs_owner ON jobs (owner)"))


def _driver(url: str) -> str:
    """``postgresql://`` means psycopg 3 (the driver the serve extra installs), not SQLAlchemy's psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(_driver(url)).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def aware(t: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; they were written in UTC."""
    if t is not None and t.tzinfo is None:
        return t.replace(tzinfo=UTC)
    return t
