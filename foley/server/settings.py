"""Server settings: where data lives, which models are offered, and the limits on requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RequestError
from ..request import MAX_PROMPT_CHARS
from .limits import DEFAULT_MAX_PROMPT_CHARS, DEFAULT_MAX_REQUEST_SECONDS

MB = 1024 * 1024


@dataclass
class Settings:
    """Everything :func:`foley.server.create_app` needs.

    Attributes:
        data: folder for the database (SQLite default), job results, uploads and study clips.
        database_url: SQLAlchemy URL; ``None`` means ``sqlite:///<data>/foley.db``. A PostgreSQL URL
            (``postgresql+psycopg://user@host/db``) works for a shared deployment.
        models: the models clients may ask for, alias -> registry name or model folder. Clients only ever
            send an alias, so no client string becomes a filesystem path.
        default_model: alias used when a request names no model.
        max_queue: queued + running jobs accepted at once; more is a 429.
        max_upload_bytes: largest accepted upload; more is a 413.
        max_duration: longest request in seconds (the model's own maximum also applies).
        max_prompt_chars: longest prompt and negative prompt (at most the request model's own limit); the
            one number both the check and its message use.
        max_request_seconds: audio one request may ask for in total (variations x duration); more is a 422,
            so one request cannot hold the only worker for minutes.
        auth: require an API token (``Authorization: Bearer ...``, made by ``foley token create``); each
            token sees only its own jobs and uploads. Off: open mode for one local user.
        quota_seconds_per_day: audio-seconds each API token may ask for per UTC day (jobs and streams; jobs that
            fail or are cancelled do not count); None: unlimited. ``foley token limit`` sets a token's own.
        rate_per_minute: generations and streams each API token may start per 60 s; None: unlimited.
        max_attempts: how often a job is started (its worker killed or stopped before it finished) before it
            is marked failed with the reason.
        lease_seconds: how long a worker's claim on a running job holds without a heartbeat (renewed every third
            of it); a worker silent for longer loses the job, which goes back to the queue.
        max_cached_models: loaded models kept in memory by the worker.
        max_streams: live ``GET /v1/stream`` responses at once; more is a 429.
        start_worker: run the job worker thread (tests of the queue alone may turn it off).
        preload: load the default model when the worker starts, so the first request does not wait for it.
        study_loudness_lufs: study clips are normalised to this loudness (EBU R128); None keeps them.
    """

    data: Path = Path("foley-data")
    database_url: str | None = None
    models: dict[str, str] = field(default_factory=lambda: _shipped_models())
    default_model: str | None = None
    max_queue: int = 16
    max_upload_bytes: int = 50 * MB
    max_duration: float = 30.0
    max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS
    max_request_seconds: float = DEFAULT_MAX_REQUEST_SECONDS
    max_attempts: int = 2
    lease_seconds: float = 30.0
    max_cached_models: int = 2
    max_streams: int = 2
    start_worker: bool = True
    preload: bool = True
    study_loudness_lufs: float | None = -23.0
    auth: bool = False
    quota_seconds_per_day: float | None = None
    rate_per_minute: int | None = None

    def __post_init__(self):
        self.data = Path(self.data).expanduser().resolve()
        if not self.models:
            raise RequestError("the server needs at least one model: --model NAME or --model ALIAS=FOLDER")
        if self.default_model is None:
            self.default_model = next(iter(self.models))
        if self.default_model not in self.models:
            raise RequestError(f"default model '{self.default_model}' is not one of the offered models: "
                               f"{', '.join(self.models)}")
        self.max_prompt_chars = min(int(self.max_prompt_chars), MAX_PROMPT_CHARS)
        for name in ("max_queue", "max_upload_bytes", "max_attempts", "max_cached_models", "max_streams"):
            if int(getattr(self, name)) < 1:
                raise RequestError(f"{name} must be at least 1, got {getattr(self, name)}")
        if (self.quota_seconds_per_day is not None or self.rate_per_minute is not None) and not self.auth:
            raise RequestError("quotas and rate limits are per API token: add --auth (open mode has no tokens)")
        if self.quota_seconds_per_day is not None and self.quota_seconds_per_day < 0:
            raise RequestError(f"quota_seconds_per_day must be 0 or more, got {self.quota_seconds_per_day}")
        if self.rate_per_minute is not None and self.rate_per_minute < 0:
            raise RequestError(f"rate_per_minute must be 0 or more, got {self.rate_per_minute}")
        if not self.lease_seconds > 0:
            raise RequestError(f"lease_seconds must be positive, got {self.lease_seconds}")
        if not self.max_duration > 0:
            raise RequestError(f"max_duration must be positive, got {self.max_duration}")
        if not self.max_request_seconds > 0:
            raise RequestError(f"max_request_seconds must be positive, got {self.max_request_seconds}")

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data / 'foley.db'}"


def _shipped_models() -> dict[str, str]:
    """Every shipped model whose folder is here (the starter first); the two starters' names when none is, so the
    server starts and says what is missing when one is asked for."""
    from ..registry import shipped_present

    return {n: n for n in shipped_present() or ["starter", "starter-lm"]}


def parse_models(specs: list[str] | None) -> dict[str, str]:
    """``["starter", "mine=/path/to/folder"]`` -> ``{"starter": "starter", "mine": "/path/to/folder"}``."""
    out: dict[str, str] = {}
    if not specs:  # the shipped models and every LoRA adapter under models/ (as BASE+ADAPTER)
        from ..adapters import found

        specs = list(_shipped_models()) + [f"{c['base'].get('name')}+{f.name}" for f, c in found()
                                             if "/" not in str(c["base"].get("name"))]
    for spec in specs:
        alias, sep, target = spec.partition("=")
        alias, target = alias.strip(), (target.strip() if sep else spec.strip())
        if not alias or not target:
            raise RequestError(f"--model '{spec}': use NAME or ALIAS=FOLDER")
        if sep and ("/" in alias or alias.startswith(".")):
            raise RequestError(f"--model '{spec}': the alias must be a plain name, e.g. mine=/path/to/model")
        if not sep:
            alias = Path(target).name or target
        out[alias] = target
    return out
