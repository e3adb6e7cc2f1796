"""Listening studies: building one from clips, each participant's randomised trials, answer checks, export.

Protocols (``PROTOCOLS``):

- ``ovl_rel`` — overall quality (OVL) and relevance to the text (REL), 1-100 sliders (AudioLDM's protocol).
- ``emotion`` — strength of happiness, sadness, fear and anger, 0-10 sliders; the text is not shown.
- ``matching`` — pick the clip's description among K (the true one and K-1 others) -> confusion matrix.
- ``ab`` — forced choice between two clips of the same description from different systems.

Screening: every participant hears ``repeats`` units twice (a repeat of a pair is presented swapped), placed
at least one trial apart; the analysis checks that the two answers agree. In ``matching`` studies, reference
clips are also attention items (their true description should be picked).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import secrets
from pathlib import Path

import numpy as np
from sqlalchemy import select

from ..audio import LOAD_FORMATS, Audio
from ..errors import FoleyError, ManifestError, RequestError
from .db import Answer, Database, Participant, Study, aware, new_id
from .storage import Storage

EMOTIONS = ("happiness", "sadness", "fear", "anger")
PROTOCOLS = {
    "ovl_rel": {"scales": {"ovl": [1, 100], "rel": [1, 100]}, "show_description": True,
                "instructions": "Rate each sound: OVL, its overall quality (1 = bad, 100 = excellent), "
                                "and REL, how well it matches the description (1 = not at all, "
                                "100 = perfectly)."},
    "emotion": {"scales": {e: [0, 10] for e in EMOTIONS}, "show_description": False,
                "instructions": "For each sound, rate how strongly it expresses each emotion "
                                "(0 = not at all, 10 = very strongly)."},
    "matching": {"scales": {}, "show_description": False,
                 "instructions": "Listen to each sound and pick the description that fits it best."},
    "ab": {"scales": {}, "show_description": True,
           "instructions": "Listen to both sounds and pick the one you prefer: better quality and closer to "
                           "the description."},
}
DEFAULT_K = 4
DEFAULT_REPEATS = 1
MAX_CLIPS = 500


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_owner(study: Study, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(study.owner_hash, hash_token(token))


# --- clips from the command line: a manifest or a folder ---------------------------------------------
def clips_from_path(path: str | Path, reference: bool = False) -> list[tuple[Path, dict]]:
    """(audio file, {description, system, reference, group}) for each clip of a JSONL manifest or a folder.

    Folder: the description comes from a sidecar ``.json`` (``description``, or the ``request.prompt`` of
    a foley output), a ``.txt``, or the file name; the system from a ``system`` field, the model name in a
    foley sidecar, else the sub-folder (``DIR/<system>/clip.wav``), else the folder's own name.
    """
    from ..data.manifest import clip_captions, read_manifest, read_sidecar
    from ..data.scan import caption_from_name, list_files

    path = Path(path)
    out: list[tuple[Path, dict]] = []
    if path.is_file():
        for clip in read_manifest(path):
            extra = clip.to_json()
            texts = clip_captions(clip)
            if not texts:
                raise ManifestError(f"{path}: line {clip.manifest_line} has no description")
            system = extra.get("system") or ("reference" if reference else path.stem)
            out.append((clip.resolved_path(), {
                "description": texts[0], "system": str(system),
                "reference": bool(extra.get("reference", reference)), "group": extra.get("group")}))
        return out
    if not path.is_dir():
        raise ManifestError(f"{path}: not a manifest file or a folder of clips")
    for f in list_files(path):
        if f.suffix.lower() not in LOAD_FORMATS:
            continue
        side = read_sidecar(f)
        request = side.get("request") if isinstance(side.get("request"), dict) else {}
        text = side.get("description") or request.get("prompt")
        if not text and f.with_suffix(".txt").is_file():
            lines = f.with_suffix(".txt").read_text(encoding="utf-8").splitlines()
            text = next((ln.strip() for ln in lines if ln.strip()), None)
        text = text or caption_from_name(f.name)
        rel = f.relative_to(path)
        model = side.get("model") if isinstance(side.get("model"), dict) else {}
        system = side.get("system") or (rel.parts[0] if len(rel.parts) > 1 else None) or model.get("name") \
            or ("reference" if reference else path.name)
        out.append((f, {"description": text, "system": str(system), "reference": reference,
                        "group": side.get("group")}))
    if not out:
        raise ManifestError(f"{path}: no audio files ({', '.join(sorted(LOAD_FORMATS))})")
    return out


# --- building a study --------------------------------------------------------------------------------
def _units(protocol: str, clips: list[dict]) -> list[dict]:
    if protocol != "ab":
        return [{"id": f"u{i}", "clips": [c["key"]]} for i, c in enumerate(clips)]
    groups: dict[str, list[dict]] = {}
    for c in clips:
        groups.setdefault(c.get("group") or c["description"], []).append(c)
    units = []
    for members in groups.values():
        for a, b in itertools.combinations(sorted(members, key=lambda c: c["system"]), 2):
            if a["system"] != b["system"]:
                units.append({"id": f"u{len(units)}", "clips": [a["key"], b["key"]]})
    if not units:
        raise RequestError("an A/B study needs clips of the same description (or group) from two different "
                           "systems; none were found")
    return units


def create_study(db: Database, storage: Storage, name: str, protocol: str, items: list[tuple[Path, dict]],
                 options: dict | None = None, loudness_lufs: float | None = -23.0) -> tuple[Study, str]:
    """Copy the clips into the study (loudness-normalised to ``loudness_lufs`` unless None) and store it.

    ``items``: (audio file, {"description", "system", "reference", "group"}). Returns (study, owner token);
    the token is not stored (only its hash) and cannot be shown again.
    """
    if protocol not in PROTOCOLS:
        raise RequestError(f"unknown protocol '{protocol}'; use one of {', '.join(PROTOCOLS)}")
    name = " ".join((name or "").split())
    if not name or len(name) > 200:
        raise RequestError("a study needs a name of 1 to 200 characters")
    if not items:
        raise RequestError("a study needs at least one clip")
    if len(items) > MAX_CLIPS:
        raise RequestError(f"{len(items)} clips is over the limit of {MAX_CLIPS} per study")
    proto = PROTOCOLS[protocol]
    opts = {"k": DEFAULT_K, "repeats": DEFAULT_REPEATS, "instructions": proto["instructions"],
            "scales": proto["scales"], "show_description": proto["show_description"],
            **{k: v for k, v in (options or {}).items() if v is not None}}
    if not (2 <= int(opts["k"]) <= 10):
        raise RequestError(f"k (choices per matching trial) must be 2 to 10, got {opts['k']}")
    if not (0 <= int(opts["repeats"]) <= 10):
        raise RequestError(f"repeats (screening items) must be 0 to 10, got {opts['repeats']}")
    for _, meta in items:
        if not str(meta.get("description") or "").strip():
            raise RequestError("every clip needs a description (the prompt it was made from)")
    if protocol == "matching":
        n_labels = len({m["description"] for _, m in items})
        if n_labels < 2:
            raise RequestError("a matching study needs clips of at least two different descriptions")
        opts["k"] = min(int(opts["k"]), n_labels)
    study = Study(id=new_id(), name=name, protocol=protocol, options=opts, clips=[], units=[], owner_hash="")
    folder = storage.study_dir(study.id)
    clips = []
    try:
        for path, meta in items:
            audio = Audio.load(path)
            if loudness_lufs is not None:
                audio = audio.normalize_loudness(loudness_lufs)
            key = secrets.token_hex(8)
            audio.save(storage.study_clip(study.id, key))
            clips.append({"key": key, "description": " ".join(str(meta["description"]).split()),
                          "system": str(meta.get("system") or "generated"),
                          "reference": bool(meta.get("reference")),
                          "group": meta.get("group"), "source": meta.get("source") or Path(path).name,
                          "duration": round(audio.duration, 3)})
        study.clips, study.units = clips, _units(protocol, clips)
    except FoleyError:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        raise
    token = secrets.token_urlsafe(24)
    study.owner_hash = hash_token(token)
    with db.session() as s:
        s.add(study)
        s.commit()
    return study, token


# --- participants --------------------------------------------------------------------------------------
def make_trials(study: Study, rng: np.random.Generator) -> list[dict]:
    """One participant's trial list: units in random order, ``repeats`` of them again later (at least one
    trial apart), matching choices and A/B sides drawn at random. ``role`` stays on the server."""
    units = [study.units[i] for i in rng.permutation(len(study.units))]
    trials = [{"unit": u["id"], "role": "main", "clips": list(u["clips"])} for u in units]
    n_rep = min(int(study.options.get("repeats", 0)), len(units))
    for i in sorted(rng.choice(len(units), n_rep, replace=False).tolist(), reverse=True):
        lo = min(i + 2, len(trials))
        trials.insert(int(rng.integers(lo, len(trials) + 1)), {"unit": units[i]["id"], "role": "repeat",
                                                                  "clips": list(units[i]["clips"])})
    by_key = {c["key"]: c for c in study.clips}
    labels = sorted({c["description"] for c in study.clips})
    first: dict[str, dict] = {}
    for idx, t in enumerate(trials):
        t["index"] = idx
        main = first.setdefault(t["unit"], t)
        if study.protocol == "matching":
            true = by_key[t["clips"][0]]["description"]
            if main is t:
                others = [x for x in labels if x != true]
                pick = rng.choice(len(others), int(study.options["k"]) - 1, replace=False)
                choices = [true, *[others[j] for j in pick]]
            else:
                choices = list(main["choices"])
            t["choices"] = [choices[j] for j in rng.permutation(len(choices))]
        elif study.protocol == "ab":
            t["clips"] = (list(main["clips"][::-1]) if main is not t
                          else [t["clips"][j] for j in rng.permutation(2)])
    return trials


def public_trial(study: Study, t: dict) -> dict:
    """What a participant sees of a trial: audio links, and the text the protocol shows; no labels."""
    by_key = {c["key"]: c for c in study.clips}
    out = {"index": t["index"], "audio": [f"/v1/studies/{study.id}/clips/{k}/audio" for k in t["clips"]]}
    if study.options.get("show_description"):
        out["description"] = by_key[t["clips"][0]]["description"]
    if "choices" in t:
        out["choices"] = t["choices"]
    return out


def start_participant(db: Database, study: Study) -> Participant:
    rng = np.random.default_rng(secrets.randbits(64))
    p = Participant(id=new_id(), study_id=study.id, trials=make_trials(study, rng))
    with db.session() as s:
        s.add(p)
        s.commit()
    return p


def check_response(study: Study, trial: dict, response: dict) -> dict:
    """The cleaned response, or RequestError naming the problem."""
    if not isinstance(response, dict):
        raise RequestError("response must be an object")
    scales = study.options.get("scales") or {}
    if scales:
        if set(response) != set(scales):
            raise RequestError(f"response needs exactly these ratings: {', '.join(scales)}")
        out = {}
        for name, (lo, hi) in scales.items():
            v = response[name]
            if isinstance(v, bool) or not isinstance(v, int | float) or not (lo <= v <= hi):
                raise RequestError(f"{name} must be a number from {lo} to {hi}, got {v!r}")
            out[name] = float(v)
        return out
    choice = response.get("choice")
    allowed = trial.get("choices") if study.protocol == "matching" else ["A", "B"]
    if set(response) != {"choice"} or choice not in allowed:
        raise RequestError(f"choice must be one of: {', '.join(map(str, allowed))}")
    return {"choice": choice}


def export_study(db: Database, study_id: str) -> dict:
    """Everything needed to analyse the study offline (the input of :func:`foley.server.analysis.analyse`)."""
    with db.session() as s:
        study = s.get(Study, study_id)
        if study is None:
            raise RequestError(f"no study '{study_id}'")
        parts = s.scalars(select(Participant).where(Participant.study_id == study_id)
                          .order_by(Participant.created_at)).all()
        answers = s.scalars(select(Answer).where(Answer.participant_id.in_([p.id for p in parts]))).all()
    by_p: dict[str, dict[int, dict]] = {}
    for a in answers:
        by_p.setdefault(a.participant_id, {})[a.trial] = a.response
    participants = []
    for n, p in enumerate(parts):
        stamp = aware(p.completed_at)
        mine = by_p.get(p.id, {})
        participants.append({"id": f"P{n + 1:03d}", "session": p.id[:8],
                             "completed": p.completed_at is not None,
                             "completed_at": stamp.isoformat() if stamp else None,
                             "trials": [{**t, "response": mine.get(t["index"])} for t in p.trials]})
    return {"format": "foley-study", "version": 1,
            "study": {"id": study.id, "name": study.name, "protocol": study.protocol,
                      "options": study.options, "clips": study.clips, "units": study.units,
                      "created_at": aware(study.created_at).isoformat()},
            "participants": participants}
