"""The FastAPI application: `create_app(settings)` wires the database, storage, worker, routes and pages."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from ..errors import FoleyError
from .db import Database
from .jobs import ApiError, Services
from .settings import Settings
from .storage import Storage
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
        counts = recover(db, settings)
        if any(counts.values()):
            log.warning("recovered jobs from an earlier run: %s", counts)
        app.state.recovered = counts
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            db.dispose()

    app = FastAPI(title="foley", version="1", lifespan=lifespan,
                  description="Text-to-audio generation, editing and listening tests. Jobs are asynchronous: "
                              "POST returns a job id at once; poll it, then download audio, spectrogram and "
                              "provenance by id.")
    app.state.svc = svc

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(FoleyError)
    async def _foley_error(_request: Request, exc: FoleyError):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": _one_line(exc)}, status_code=422)

    @app.middleware("http")
    async def _limit_body(request: Request, call_next):
        """Refuse an oversized upload from its Content-Length before reading the body."""
        size = request.headers.get("content-length")
        if request.method == "POST" and size and size.isdigit() and \
                int(size) > settings.max_upload_bytes + MULTIPART_OVERHEAD:
            limit = settings.max_upload_bytes / 1e6
            return JSONResponse({"detail": f"upload is over the limit of {limit:g} MB"}, status_code=413)
        return await call_next(request)

    from .api import router as api_router
    from .study_api import router as study_router

    app.include_router(api_router)
    app.include_router(study_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def studio():
        return FileResponse(STATIC / "index.html")

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
