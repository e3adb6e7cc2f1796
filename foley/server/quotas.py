"""Per-token limits of a shared server (``--auth``): audio-seconds per day (UTC) and generations per minute.

Every accepted job and stream is a row of the ``usage`` ledger: the audio it asked for (duration x variations x
best-of candidates), when, and its job. The day's use is the sum since 00:00 UTC on the database's clock, leaving
out jobs that failed or were cancelled; the rate counts the jobs and streams accepted in the last 60 s. The check
and the new row are one write transaction (the same lock as the queue's count), so concurrent requests cannot
overshoot a limit. A token's own limits (``foley token limit``) replace the server's defaults; open mode (no tokens)
has none."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select

from .db import ApiToken, Job, Usage, aware

WINDOW = timedelta(seconds=60)


@dataclass
class Limits:
    name: str
    quota_seconds: float | None    # audio-seconds per UTC day; None: unlimited
    rate_per_minute: int | None    # jobs + streams accepted per 60 s; None: unlimited


def limits_of(session, settings, owner: str) -> Limits:
    token = session.get(ApiToken, owner)
    quota = token.quota_seconds if token and token.quota_seconds is not None else settings.quota_seconds_per_day
    rate = token.rate_per_minute if token and token.rate_per_minute is not None else settings.rate_per_minute
    return Limits(token.name if token else owner, quota, rate)


def day_start(t: datetime) -> datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def used_today(session, owner: str, t: datetime) -> float:
    """Audio-seconds ``owner`` was charged since 00:00 UTC, without jobs that failed or were cancelled."""
    q = (select(func.coalesce(func.sum(Usage.seconds), 0.0)).select_from(Usage)
         .outerjoin(Job, Job.id == Usage.job_id)
         .where(Usage.owner == owner, Usage.at >= day_start(t),
                or_(Usage.job_id.is_(None), Job.status.is_(None), Job.status.notin_(("failed", "cancelled")))))
    return float(session.scalar(q) or 0.0)


def recent(session, owner: str, t: datetime) -> list[datetime]:
    return [aware(x) for x in session.scalars(select(Usage.at).where(Usage.owner == owner, Usage.at > t - WINDOW)
                                              .order_by(Usage.at))]


def charge(session, settings, owner: str | None, seconds: float, kind: str, t: datetime,
           job_id: str | None = None) -> Usage | None:
    """Refuse (429 with ``Retry-After``) a request over the token's limits, else record it in ``session`` (whose
    transaction must hold the queue's write lock). Open mode (no owner) is not limited."""
    from .jobs import ApiError

    if owner is None:
        return None
    lim = limits_of(session, settings, owner)
    if lim.rate_per_minute is not None:
        times = recent(session, owner, t)
        if len(times) >= lim.rate_per_minute:
            oldest = times[-lim.rate_per_minute] if lim.rate_per_minute else t
            wait = max(1, int((oldest + WINDOW - t).total_seconds() + 0.999))
            raise ApiError(429, f"API token '{lim.name}' may start {lim.rate_per_minute} generations or streams a "
                                f"minute; try again in {wait} s", headers={"Retry-After": str(wait)})
    if lim.quota_seconds is not None:
        used = used_today(session, owner, t)
        if used + seconds > lim.quota_seconds + 1e-9:
            wait = int((day_start(t) + timedelta(days=1) - t).total_seconds()) + 1
            raise ApiError(429, f"API token '{lim.name}' has used {used:g} of its {lim.quota_seconds:g} audio-seconds "
                                f"today (UTC) and this request asks for {seconds:g} s; ask for less, or wait until "
                                "00:00 UTC", headers={"Retry-After": str(wait)})
    row = Usage(owner=owner, kind=kind, job_id=job_id, seconds=float(seconds), at=t)
    session.add(row)
    return row


def usage_view(session, settings, owner: str | None, t: datetime) -> dict:
    """``GET /v1/usage``: the caller's limits and what is left of them."""
    if owner is None:
        return {"token": None, "limited": False, "seconds_today": None, "quota_seconds_per_day": None,
                "rate_per_minute": None, "started_last_minute": None, "resets_at": None}
    lim = limits_of(session, settings, owner)
    used = used_today(session, owner, t)
    return {"token": lim.name, "limited": lim.quota_seconds is not None or lim.rate_per_minute is not None,
            "seconds_today": round(used, 3), "quota_seconds_per_day": lim.quota_seconds,
            "seconds_left_today": None if lim.quota_seconds is None else round(max(lim.quota_seconds - used, 0), 3),
            "rate_per_minute": lim.rate_per_minute, "started_last_minute": len(recent(session, owner, t)),
            "resets_at": (day_start(t) + timedelta(days=1)).isoformat()}


def request_seconds(req) -> float:
    """The audio a request asks for: what a quota counts."""
    return float(req.duration) * int(req.num_variations) * int(getattr(req, "best_of", 1) or 1)
