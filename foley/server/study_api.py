"""HTTP routes for listening studies: create (anyone on the server), take part (by link), results (owner
token)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from ..errors import RequestError
from .analysis import analyse, answers_csv
from .api import get_upload, svc
from .auth import caller
from .db import Answer, Participant, Study, now
from .jobs import ApiError, get_job
from .storage import valid_id
from .studies import check_owner, check_response, create_study, export_study, public_trial, start_participant

router = APIRouter(prefix="/v1/studies", tags=["studies"])


class ClipRef(BaseModel):
    """A clip of the study: output ``index`` of finished generation ``job``, or an upload (e.g. a real
    reference). ``description`` defaults to the generation's prompt; ``system`` to its model."""

    model_config = ConfigDict(extra="forbid")
    job: str | None = None
    index: int = 0
    upload: str | None = None
    description: str | None = Field(None, max_length=1000)
    system: str | None = Field(None, max_length=100)
    reference: bool = False
    group: str | None = Field(None, max_length=200)


class StudyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., max_length=200)
    protocol: Literal["ovl_rel", "matching", "emotion", "ab"]
    clips: list[ClipRef] = Field(..., min_length=1, max_length=500)
    k: int | None = Field(None, description="matching: descriptions offered per trial (default 4)")
    repeats: int | None = Field(None, description="screening: units heard twice per participant (default 1)")
    instructions: str | None = Field(None, max_length=2000)


class AnswerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    trial: int
    response: dict


def _study(request: Request, study_id: str) -> Study:
    study = None
    if valid_id(study_id):
        with svc(request).db.session() as s:
            study = s.get(Study, study_id)
    if study is None:
        raise ApiError(404, "no such study")
    return study


def _owner(request: Request, study_id: str) -> Study:
    study = _study(request, study_id)
    auth = request.headers.get("authorization", "")
    token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
    if not token:
        raise ApiError(401, "the results need the owner token: send 'Authorization: Bearer <token>'")
    if not check_owner(study, token):
        raise ApiError(403, "wrong owner token for this study")
    return study


def _participant(request: Request, study: Study, pid: str) -> Participant:
    p = None
    if valid_id(pid):
        with svc(request).db.session() as s:
            p = s.get(Participant, pid)
    if p is None or p.study_id != study.id:
        raise ApiError(404, "no such participant session")
    return p


@router.post("", status_code=201, summary="Create a study from generations and uploads")
def new_study(body: StudyBody, request: Request, owner: str | None = Depends(caller)) -> dict:
    """Returns the participant link and the owner token (shown only now: keep it). With API tokens on, it
    needs one, and only the caller's own generations and uploads can be used."""
    s = svc(request)
    items = []
    for c in body.clips:
        if bool(c.job) == bool(c.upload):
            raise ApiError(422, "each clip needs exactly one of job or upload")
        if c.job:
            job = get_job(s, c.job, owner)
            if job.status != "done" or not (0 <= c.index < len(job.outputs or [])):
                raise ApiError(422, f"generation {c.job} has no finished output {c.index}")
            path = s.storage.job_file(job.id, c.index, ".wav")
            meta = {"description": c.description or job.params["request"]["prompt"],
                    "system": c.system or job.model, "source": f"job {job.id} #{c.index}"}
        else:
            up = get_upload(s, c.upload, owner)
            if not c.description:
                raise ApiError(422, f"upload {c.upload} needs a description")
            path = s.storage.upload_path(up.id)
            system = c.system or ("reference" if c.reference else "upload")
            meta = {"description": c.description, "system": system, "source": f"upload {up.filename}"}
        items.append((path, {**meta, "reference": c.reference, "group": c.group}))
    options = {"k": body.k, "repeats": body.repeats, "instructions": body.instructions}
    try:
        study, token = create_study(s.db, s.storage, body.name, body.protocol, items, options,
                                    s.settings.study_loudness_lufs)
    except RequestError as e:
        raise ApiError(422, str(e)) from None
    return {"id": study.id, "name": study.name, "protocol": study.protocol, "owner_token": token,
            "participant_url": f"/study/{study.id}",
            "results_url": f"/study/{study.id}/results#token={token}",
            "clips": len(study.clips), "units": len(study.units)}


@router.get("/{study_id}", summary="What a participant needs to start (no answers, no clip labels)")
def read_study(study_id: str, request: Request) -> dict:
    st = _study(request, study_id)
    o = st.options
    n = len(st.units) + min(int(o.get("repeats", 0)), len(st.units))
    return {"id": st.id, "name": st.name, "protocol": st.protocol, "instructions": o["instructions"],
            "scales": o.get("scales") or {}, "trials": n, "k": o.get("k")}


def _session_view(study: Study, p: Participant, answered: list[int]) -> dict:
    return {"participant": p.id, "study": study.id, "protocol": study.protocol,
            "trials": [public_trial(study, t) for t in p.trials], "answered": sorted(answered),
            "completed": p.completed_at is not None}


@router.post("/{study_id}/participants", status_code=201, summary="Start a participant session")
def new_participant(study_id: str, request: Request) -> dict:
    study = _study(request, study_id)
    p = start_participant(svc(request).db, study)
    return _session_view(study, p, [])


def _answered(request: Request, pid: str) -> list[int]:
    from sqlalchemy import select

    with svc(request).db.session() as s:
        return list(s.scalars(select(Answer.trial).where(Answer.participant_id == pid)))


@router.get("/{study_id}/participants/{pid}", summary="Resume a session: its own trials and answered indices")
def read_participant(study_id: str, pid: str, request: Request) -> dict:
    study = _study(request, study_id)
    p = _participant(request, study, pid)
    return _session_view(study, p, _answered(request, p.id))


@router.post("/{study_id}/participants/{pid}/answers", summary="Answer (or change the answer to) one trial")
def answer(study_id: str, pid: str, body: AnswerBody, request: Request) -> dict:
    from sqlalchemy import select

    study = _study(request, study_id)
    p = _participant(request, study, pid)
    if p.completed_at is not None:
        raise ApiError(409, "this session is finished; answers can no longer change")
    if not (0 <= body.trial < len(p.trials)):
        raise ApiError(422, f"trial {body.trial} does not exist (0 to {len(p.trials) - 1})")
    try:
        response = check_response(study, p.trials[body.trial], body.response)
    except RequestError as e:
        raise ApiError(422, str(e)) from None
    from sqlalchemy.exc import IntegrityError

    with svc(request).db.session() as s:
        row = s.scalar(select(Answer).where(Answer.participant_id == p.id, Answer.trial == body.trial))
        if row is None:
            s.add(Answer(participant_id=p.id, trial=body.trial, response=response))
        else:
            row.response, row.created_at = response, now()
        try:
            s.commit()
        except IntegrityError:  # the same trial answered twice at the same moment
            raise ApiError(409, "this answer was sent twice at once; send it again") from None
    return {"trial": body.trial, "saved": True}


@router.post("/{study_id}/participants/{pid}/complete", summary="Finish the session (all trials answered)")
def complete(study_id: str, pid: str, request: Request) -> dict:
    study = _study(request, study_id)
    p = _participant(request, study, pid)
    missing = sorted(set(range(len(p.trials))) - set(_answered(request, p.id)))
    if missing:
        raise ApiError(409, f"{len(missing)} trial(s) not answered yet (first: {missing[0] + 1})")
    with svc(request).db.session() as s:
        row = s.get(Participant, p.id)
        row.completed_at = row.completed_at or now()
        s.commit()
    return {"completed": True}


@router.get("/{study_id}/clips/{key}/audio", response_class=FileResponse,
            summary="A study clip by its opaque key")
def clip_audio(study_id: str, key: str, request: Request):
    study = _study(request, study_id)
    if key not in {c["key"] for c in study.clips}:
        raise ApiError(404, "no such clip in this study")
    return FileResponse(svc(request).storage.study_clip(study.id, key), media_type="audio/wav")


@router.get("/{study_id}/results", summary="Analysis (owner token): means with 95 % CIs, confusion, alpha")
def results(study_id: str, request: Request, include_failed: bool = False) -> dict:
    study = _owner(request, study_id)
    export = export_study(svc(request).db, study.id)
    return {**analyse(export, include_failed=include_failed), "clips": study.clips}


@router.get("/{study_id}/export.json", summary="Export (owner token): study, trials and answers")
def export_json(study_id: str, request: Request) -> dict:
    return export_study(svc(request).db, _owner(request, study_id).id)


@router.get("/{study_id}/export.csv", response_class=PlainTextResponse,
            summary="Every answer as CSV (owner token)")
def export_csv(study_id: str, request: Request):
    study = _owner(request, study_id)
    name = f"study_{study.id[:8]}.csv"
    return PlainTextResponse(answers_csv(export_study(svc(request).db, study.id)), media_type="text/csv",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})
