"""HTTP routes for models, generations, edits and uploads (``/v1/...``)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import ConfigDict, field_validator

from ..editing import EDIT_TASKS
from ..request import GenerationRequest
from .auth import caller
from .db import Job, Upload, new_id
from .jobs import (
    ApiError,
    Services,
    build_request,
    cancel,
    get_job,
    history,
    job_view,
    model_info,
    queue_position,
    submit,
)
from .storage import UploadError, hide_paths, safe_name, valid_id

router = APIRouter(prefix="/v1", dependencies=[Depends(caller)])
MAX_PAGE = 1_000_000  # beyond it the row offset would overflow the database's integers
Owner = Depends(caller)  # the calling token's id (None in open mode); FastAPI caches it per request
SUPER_RES_PROMPT = "clear, detailed, full-band sound"  # the same default as `foley edit`


def svc(request: Request) -> Services:
    return request.app.state.svc


class GenerationBody(GenerationRequest):
    """A generation request: the same fields and validation as `foley generate`, plus the model alias.

    Strict types: ``"duration": true`` or ``"seed": "5"`` are refused, not converted. Prompt lengths are
    checked against this server's limit by `build_request`, so the error names the limit that applies."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: str | None = None

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v: str) -> str:
        return v

    @field_validator("negative_prompt")
    @classmethod
    def _negative(cls, v: str | None) -> str | None:
        return v

    @field_validator("controls", "control_strength", "like", mode="before")
    @classmethod
    def _curves(cls, v, info):
        return v  # types only here: `build_request` checks them once "upload:<id>" sources are resolved


@router.get("/models", tags=["models"], summary="Models this server offers")
def list_models(request: Request) -> dict:
    s = svc(request)
    return {"default": s.settings.default_model, "auth": s.settings.auth,
            "models": [hide_paths(model_info(s, a)) for a in s.settings.models],
            "limits": {"max_duration": s.settings.max_duration,
                       "max_prompt_chars": s.settings.max_prompt_chars,
                       "max_request_seconds": s.settings.max_request_seconds,
                       "max_upload_bytes": s.settings.max_upload_bytes, "max_queue": s.settings.max_queue,
                       "max_streams": s.settings.max_streams,
                       "quota_seconds_per_day": s.settings.quota_seconds_per_day,
                       "rate_per_minute": s.settings.rate_per_minute}}


@router.get("/usage", tags=["models"], summary="The calling token's quota, rate limit and what is left today")
def read_usage(request: Request, owner: str | None = Owner) -> dict:
    """With ``--auth``: audio-seconds asked for today (UTC; failed and cancelled jobs do not count), the token's
    daily quota and what is left, its rate limit and the generations and streams started in the last 60 s. In open
    mode nothing is limited (``limited: false``)."""
    from .quotas import usage_view

    s = svc(request)
    with s.db.session() as session:
        return usage_view(session, s.settings, owner, s.db.clock())


@router.post("/generations", status_code=202, tags=["generations"], summary="Queue a text-to-audio job")
def create_generation(body: GenerationBody, request: Request, owner: str | None = Owner) -> dict:
    """Validates like the CLI and returns the job (``id``, ``status``...) at once; poll
    ``GET /v1/generations/{id}``."""
    if body.task != "generate":
        raise ApiError(422, f"task '{body.task}' edits audio: use POST /v1/edits with the input clip")
    s = svc(request)
    alias, req = build_request(s, _curve_files(s, body.model_dump(exclude_unset=True), owner))
    job = submit(s, "generate", alias, req, owner=owner)
    return job_view(job, queue_position(s, job))


def _curve_files(s: Services, fields: dict, owner: str | None) -> dict:
    """Control curves from sounds come from uploads here: ``"upload:<id>"`` (in ``like`` or a control) becomes
    the upload's file; a path on the server is refused (the server reads no files named by clients)."""
    from ..curves import is_file_source

    def resolve(value, what: str):
        if isinstance(value, str) and value.startswith("upload:"):
            return str(s.storage.upload_path(get_upload(s, value.removeprefix("upload:"), owner).id))
        if isinstance(value, str) and (what == "like" or is_file_source(value)):
            raise ApiError(422, f"{what}: the server reads no files by path; upload the sound (POST /v1/uploads) and "
                                "give \"upload:<id>\", or send the curve as words or {\"times\": [...], "
                                "\"values\": [...]}")
        return value

    if fields.get("like") is not None:
        fields["like"] = resolve(fields["like"], "like")
    if isinstance(fields.get("controls"), dict):
        fields["controls"] = {k: resolve(v, f"control '{k}'") for k, v in fields["controls"].items()}
    return fields


@router.get("/generations", tags=["generations"], summary="History of generations and edits, newest first")
def list_generations(request: Request, page: int = Query(1, ge=1, le=MAX_PAGE),
                     per_page: int = Query(20, ge=1, le=100), owner: str | None = Owner) -> dict:
    return history(svc(request), page, per_page, owner)


@router.get("/generations/{job_id}", tags=["generations"], summary="Status, progress, error and result links")
def read_generation(job_id: str, request: Request, owner: str | None = Owner) -> dict:
    s = svc(request)
    job = get_job(s, job_id, owner)
    return job_view(job, queue_position(s, job))


@router.delete("/generations/{job_id}", tags=["generations"],
               summary="Cancel a queued job, or stop a running one at its next step (no output is kept)")
def cancel_generation(job_id: str, request: Request, owner: str | None = Owner) -> dict:
    """A queued job becomes ``cancelled`` at once; a running one keeps ``running`` with ``cancel_requested``
    until the worker stops it (poll it). 409 once the job is done or failed."""
    s = svc(request)
    job = cancel(s, get_job(s, job_id, owner))
    return job_view(job, queue_position(s, job))


def _result(request: Request, job_id: str, index: int, suffix: str, owner: str | None):
    s = svc(request)
    job = get_job(s, job_id, owner)
    if job.status != "done":
        raise ApiError(409, f"generation is {job.status}; results exist only when it is done")
    if not (0 <= index < len(job.outputs or [])):
        raise ApiError(404, f"no output {index}; this generation has {len(job.outputs or [])}")
    path = s.storage.job_file(job.id, index, suffix)
    if not path.is_file():
        raise ApiError(410, "result file is missing on the server (deleted?)")
    return job, path


def _download_name(job: Job, index: int, suffix: str) -> str:
    import re

    slug = re.sub(r"[^a-z0-9]+", "_", job.params["request"]["prompt"].lower()).strip("_")[:40] or "sound"
    return f"{slug}_{job.id[:8]}_{index}{suffix}"


@router.get("/generations/{job_id}/audio", tags=["generations"], summary="The generated audio (WAV)",
            response_class=FileResponse)
def generation_audio(job_id: str, request: Request, index: int = 0, download: bool = False,
                     owner: str | None = Owner):
    job, path = _result(request, job_id, index, ".wav", owner)
    return FileResponse(path, media_type="audio/wav",
                        filename=_download_name(job, index, ".wav") if download else None)


@router.get("/generations/{job_id}/spectrogram.png", tags=["generations"], response_class=FileResponse)
def generation_spectrogram(job_id: str, request: Request, index: int = 0, owner: str | None = Owner):
    _, path = _result(request, job_id, index, ".png", owner)
    return FileResponse(path, media_type="image/png")


@router.get("/generations/{job_id}/provenance.json", tags=["generations"], response_class=FileResponse,
            summary="The sidecar JSON: request, seed, model, weight hash and library versions")
def generation_provenance(job_id: str, request: Request, index: int = 0, download: bool = False,
                          owner: str | None = Owner):
    job, path = _result(request, job_id, index, ".json", owner)
    return FileResponse(path, media_type="application/json",
                        filename=_download_name(job, index, ".json") if download else None)


# --- uploads and edits -----------------------------------------------------------------------------
def store_upload(s: Services, file: UploadFile, owner: str | None = None) -> Upload:
    """Decode and store an uploaded clip under a new id; the client's name is kept only as a label."""
    try:
        audio = s.storage.receive_upload(file.file, file.filename, s.settings.max_upload_bytes)
    except UploadError as e:
        raise ApiError(e.status, str(e)) from None
    if audio.duration > s.settings.max_duration:
        raise ApiError(422, f"upload is {audio.duration:.1f} s long; this server's limit is "
                            f"{s.settings.max_duration:g} s")
    up = Upload(id=new_id(), filename=safe_name(file.filename), duration=audio.duration,
                sample_rate=audio.sample_rate, channels=audio.channels, owner=owner)
    audio.save(s.storage.upload_path(up.id), subtype="FLOAT")
    with s.db.session() as session:
        session.add(up)
        session.commit()
    return up


def upload_view(up: Upload) -> dict:
    return {"id": up.id, "filename": up.filename, "duration": up.duration, "sample_rate": up.sample_rate,
            "channels": up.channels, "audio_url": f"/v1/uploads/{up.id}/audio"}


@router.post("/uploads", status_code=201, tags=["uploads"], summary="Upload a clip (checked by decoding it)")
def create_upload(request: Request, file: UploadFile = File(...), owner: str | None = Owner) -> dict:
    return upload_view(store_upload(svc(request), file, owner))


def get_upload(s: Services, upload_id: str, owner: str | None = None) -> Upload:
    up = None
    if valid_id(upload_id):
        with s.db.session() as session:
            up = session.get(Upload, upload_id)
    if up is None or (s.settings.auth and up.owner != owner):
        raise ApiError(404, "no such upload")
    return up


@router.get("/uploads/{upload_id}/audio", tags=["uploads"], response_class=FileResponse)
def upload_audio(upload_id: str, request: Request, owner: str | None = Owner):
    s = svc(request)
    return FileResponse(s.storage.upload_path(get_upload(s, upload_id, owner).id), media_type="audio/wav")


@router.post("/edits", status_code=202, tags=["generations"],
             summary="Queue an edit of an uploaded or earlier clip")
def create_edit(
    request: Request,
    task: Literal[EDIT_TASKS] = Form(...),
    prompt: str | None = Form(None),
    file: UploadFile | None = File(None, description="The clip to edit (or source_job / source_upload)."),
    source_job: str | None = Form(None, description="Edit output `source_index` of this finished job."),
    source_index: int = Form(0),
    source_upload: str | None = Form(None, description="Edit an earlier upload (POST /v1/uploads)."),
    model: str | None = Form(None), seed: int | None = Form(None), steps: int | None = Form(None),
    guidance_scale: float | None = Form(None), negative_prompt: str | None = Form(None),
    scheduler: str | None = Form(None), num_variations: int = Form(1),
    duration: float | None = Form(None, description="extend/continue: total length in seconds; melody: the "
                                                    "new sound's length (default: the input's)"),
    strength: float | None = Form(None), mask_start: float | None = Form(None),
    mask_end: float | None = Form(None), cutoff_hz: float | None = Form(None),
    period: float | None = Form(None, description="loop: seconds between the input's kept frames (60/BPM)"),
    owner: str | None = Owner,
) -> dict:
    """Exactly one input: an uploaded ``file``, ``source_job`` (+ ``source_index``) or ``source_upload``."""
    s = svc(request)
    given = [x for x in (file, source_job, source_upload) if x]
    if len(given) != 1:
        raise ApiError(422, "give exactly one input clip: file, source_job or source_upload")
    if source_job:
        job = get_job(s, source_job, owner)
        if job.status != "done" or not (0 <= source_index < len(job.outputs or [])):
            raise ApiError(422, f"generation {source_job} has no finished output {source_index}")
        source, in_duration = {"job": job.id, "index": source_index}, job.outputs[source_index]["duration"]
    else:
        up = store_upload(s, file, owner) if file else get_upload(s, source_upload, owner)
        source, in_duration = {"upload": up.id}, up.duration
    if not prompt and task == "super_resolution":
        prompt = SUPER_RES_PROMPT
    fields = {"prompt": prompt or "", "task": task, "model": model, "seed": seed, "steps": steps,
              "guidance_scale": guidance_scale, "negative_prompt": negative_prompt, "scheduler": scheduler,
              "num_variations": num_variations, "duration": duration or in_duration, "strength": strength,
              "mask_start": mask_start, "mask_end": mask_end, "cutoff_hz": cutoff_hz, "period": period}
    alias, req = build_request(s, fields)
    if task == "inpaint" and req.mask_end > in_duration + 1e-6:
        raise ApiError(422, f"mask end {req.mask_end:g} s is outside the clip ({in_duration:.2f} s)")
    job = submit(s, "edit", alias, req, source, owner=owner)
    return job_view(job, queue_position(s, job))
