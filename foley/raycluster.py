"""Connecting to Ray (an optional extra: pip install 'foley[ray]'), shared by the commands that fan work out over
it (`foley generate --ray`, `foley eval --ray`): the one-line errors and the local default."""

from __future__ import annotations

from .errors import FoleyError

INSTALL = "Ray is not installed: pip install 'foley[ray]'"


def require():
    """The ray module, or the one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise FoleyError(INSTALL) from None
    return ray


def cause(err: BaseException) -> str:
    """The one line worth showing from a Ray error: the original exception's message when it has one."""
    inner = getattr(err, "cause", None)
    if isinstance(inner, BaseException) and not type(inner).__name__.startswith("Ray"):
        return str(inner).strip().splitlines()[0] if str(inner).strip() else type(inner).__name__
    text = str(err).strip().splitlines()
    return text[-1] if text else type(err).__name__


def _reachable(address: str | None) -> None:
    """A HOST:PORT address must answer within 10 s: Ray itself retries an unreachable one for minutes
    (hand-written: Ray has no connect timeout for ``ray.init``)."""
    import socket

    if not address or address == "auto" or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=10):
            pass
    except ValueError:
        raise FoleyError(f"--ray {address}: not HOST:PORT (e.g. 10.0.0.1:6379), 'auto' or a ray:// address") from None
    except OSError as e:
        raise FoleyError(f"cannot reach the Ray cluster at {address}: {e.strerror or e}") from None


def connect(address: str | None):
    """``ray.init()`` (a local instance when ``address`` is None) unless this process is already connected."""
    ray = require()
    if ray.is_initialized():
        return ray, False
    import logging

    _reachable(address)
    try:
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING, configure_logging=True)
    except Exception as e:  # noqa: BLE001  (ConnectionError, ValueError, RuntimeError: all mean "no cluster")
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise FoleyError(f"cannot start or reach {where}: {cause(e)}") from None
    return ray, True
