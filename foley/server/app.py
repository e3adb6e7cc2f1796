"""The FastAPI application: `create_app(settings)` wires the database, storage, worker, routes and pages."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException

from ..errors import FoleyError
from .db import Database
from .jobs import ApiError, Services
from .settings import Settings
from .storage import Storage, hide_paths
from .worker import ModelCache, Worker, recover

STATIC = Path(__file__).resolve().parent / "static"
MULTIPART_OVERHEAD = 64 * 1024  # form fields and boundaries around an upload
log = logging.getLogger("foley.server")


def _one_line(exc: RequestValidationError) -> str:
    """FastAPI's list of validation errors -> one line, the first problem, as `make_request` words it."""
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path", "form"))
    msg = str(err.get("msg", "invalid value"))
    if msg.startswith("Value error, "):
        return msg.removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit. An HTTPException, so FastAPI passes it
    through its body parsing untouched and answers 413 with the detail."""


class BodyLimit:
    """ASGI middleware: refuse a request body over ``limit`` bytes -- from Content-Length before reading,
    and, for a chunked body or a false Content-Length, while it streams (so at most ``limit`` bytes plus
    one chunk are ever read, never the whole body)."""

    def __init__(self, app, limit: int, detail: str):
        self.app, self.limit, self.detail = app, limit, detail

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        size = Headers(scope=scope).get("content-length", "")
        if size.isdigit() and int(size) > self.limit:
            return await JSONResponse({"detail": self.detail}, status_code=413)(scope, receive, send)
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(413, self.detail)
            return message

        await self.app(scope, limited_receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. The worker starts (and interrupted jobs are recovered) when the app starts serving."""
    settings = settings or Settings()
    settings.data.mkdir(parents=True, exist_ok=True)
    storage = Storage(settings.data)
    db = Database(settings.db_url)
    models = ModelCache(settings)
    worker = Worker(db, storage, settings, models) if settings.start_worker else None
    svc = Services(settings=settings, db=db, storage=storage, models=models, worker=worker)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        counts = recover(db, settings, storage)
        if any(counts.values()):
            log.warning("recovered jobs from an earlier run: %s", counts)
        app.state.recovered = counts
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            app.state.streams.stop_all()
            if worker is not None:
                worker.stop()
            db.dispose()

    app = FastAPI(title="foley", version="1", lifespan=lifespan,
                  description="Text-to-audio generation, editing and listening tests. Jobs are asynchronous: "
                              "POST returns a job id at once; poll it, then download audio, spectrogram and "
                              "provenance by id.")
    app.state.svc = svc
    from .streams import StreamHub

    app.state.streams = StreamHub(svc)

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else exc.headers
        return JSONResponse({"detail": hide_paths(exc.detail)}, status_code=exc.status, headers=headers)

    @app.exception_handler(FoleyError)
    async def _foley_error(_request: Request, exc: FoleyError):
        return JSONResponse({"detail": hide_paths(str(exc))}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": _one_line(exc)}, status_code=422)

    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes + MULTIPART_OVERHEAD,
                       detail=f"upload is over the limit of {settings.max_upload_bytes / 1e6:g} MB")

    from .api import router as api_router
    from .streams import router as stream_router
    from .study_api import router as study_router

    app.include_router(api_router)
    app.include_router(stream_router)
    app.include_router(study_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def studio():
        return FileResponse(STATIC / "index.html")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon():
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    @app.get("/study/{study_id}", include_in_schema=False)
    def study_page(study_id: str):
        return FileResponse(STATIC / "study.html")

    @app.get("/study/{study_id}/results", include_in_schema=False)
    def results_page(study_id: str):
        return FileResponse(STATIC / "results.html")

    @app.get("/healthz", tags=["server"])
    def health() -> dict:
        return {"ok": True, "worker": worker.alive if worker is not None else False}

    return app
