"""``/v1/episodes``: submit (URL, server path or upload), the library, edits, deletes, downloads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api import uploads
from api.deps import ClientDep, SettingsDep, dispatch
from api.problems import Problem
from api.schemas import EpisodePatch, ReprocessRequest, SubmitRequest
from pipeline import jobs, storage, transcript
from pipeline.errors import DuplicateSource, NotFound
from pipeline.jobs import idempotency
from pipeline.library import bundle, episodes, review

router = APIRouter(prefix="/v1/episodes", tags=["episodes"])

TRANSCRIPT_TYPES = {"srt": "application/x-subrip", "vtt": "text/vtt", "json": "application/json",
                    "txt": "text/plain"}

_SUBMIT_DOC = {"requestBody": {"content": {
    "application/json": {"schema": SubmitRequest.model_json_schema()},
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"},
        **{k: {"type": "string"} for k in SubmitRequest.model_fields if k != "source"}}}}}}}


def _parse(model, data):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError([dict(e, loc=("body", *e["loc"])) for e in exc.errors()]) from None


def _answer(answer: idempotency.Answer) -> JSONResponse:
    headers = {"Location": answer.location} if answer.location else None
    return JSONResponse(answer.body, status_code=answer.status_code, headers=headers)


@router.post("", status_code=202, openapi_extra=_SUBMIT_DOC,
             summary="Submit an episode: a URL, a path on the server, or a multipart upload (part 'file')")
async def submit(request: Request, settings: SettingsDep, client: ClientDep,
                 idempotency_key: Annotated[str | None, Header()] = None):
    content_type = request.headers.get("content-type", "")
    upload = None
    if content_type.startswith("multipart/form-data"):
        upload = await uploads.receive(request, settings, list_fields=("aspects",))
        body = _parse(SubmitRequest, upload.fields)
        if body.source:
            raise Problem(422, "Send either a 'file' part or a 'source', not both.")
        fingerprint = {"upload": upload.digest, "name": upload.file.filename, **upload.fields}
    elif content_type.split(";")[0].strip() in ("application/json", ""):
        try:
            raw = json.loads(await request.body() or b"null")
        except ValueError:
            raise Problem(400, "The body is not valid JSON.") from None
        if not isinstance(raw, dict):
            raise Problem(422, "The body must be a JSON object with at least 'source'.")
        body = _parse(SubmitRequest, raw)
        if not body.source:
            raise Problem(422, "source: required (an http(s) URL or a path on the server), or send a multipart"
                               " upload with a 'file' part.")
        fingerprint = raw
    else:
        raise Problem(415, f"Content-Type {content_type} is not accepted; send application/json or"
                           " multipart/form-data.")

    def work() -> idempotency.Answer:
        source, kind = body.source, None
        if upload is not None:
            source, kind = str(jobs.save_upload(settings, upload.file.filename or "upload", upload.file.file,
                                                limit_key="api.max_upload_mb")), "upload"
        try:
            episode_id, job_id = jobs.enqueue(
                settings, source, dispatch, title=body.title or "", options=body.options(), source_kind=kind,
                priority=jobs.PRIORITY_INTERACTIVE if body.priority is None else body.priority,
                allow_duplicate=body.allow_duplicate)
        except DuplicateSource as exc:   # the existing episode, to poll or reprocess
            return idempotency.Answer(200, {"duplicate_of": exc.episode_id, "detail": str(exc),
                                            "episode": episodes.summary(settings, exc.episode_id)},
                                      f"/v1/episodes/{exc.episode_id}")
        except BaseException:
            if kind == "upload":
                storage.remove_tree(Path(source).parent)
            raise
        return idempotency.Answer(202, jobs.get(settings, job_id), f"/v1/jobs/{job_id}")

    try:
        return _answer(await run_in_threadpool(idempotency.once, settings, client, idempotency_key,
                                        idempotency.fingerprint(fingerprint), work))
    finally:
        if upload is not None:
            await upload.file.close()


@router.get("", summary="List or search episodes, newest first; page on with ?after=<next>")
def list_episodes(settings: SettingsDep, client: ClientDep, search: str = "", include_deleted: bool = False,
                  limit: Annotated[int, Query(ge=1, le=500)] = 50, after: str | None = None):
    return episodes.page(settings, search, include_deleted, limit, after)


@router.get("/{episode_id}", summary="The episode summary JSON (transcript, enrichment, clips, renders)")
def get_episode(episode_id: str, settings: SettingsDep, client: ClientDep):
    return episodes.summary(settings, episode_id)


@router.patch("/{episode_id}", summary="Edit the title, summary or keywords")
def patch_episode(episode_id: str, patch: EpisodePatch, settings: SettingsDep, client: ClientDep):
    episodes.summary(settings, episode_id)   # 404 before anything else
    review.update_enrichment(settings, episode_id, **patch.model_dump(exclude_none=True))
    return episodes.summary(settings, episode_id)


@router.delete("/{episode_id}", summary="Delete: hidden (undo with restore), or ?hard=true: rows and files")
def delete_episode(episode_id: str, settings: SettingsDep, client: ClientDep, hard: bool = False):
    return episodes.delete(settings, episode_id, hard=hard)


@router.post("/{episode_id}/restore", summary="Undo a soft delete")
def restore_episode(episode_id: str, settings: SettingsDep, client: ClientDep):
    return episodes.restore(settings, episode_id)


@router.post("/{episode_id}/reprocess", status_code=202,
             summary="A new job redoing the episode from a stage (e.g. another model); downloads nothing again")
def reprocess(episode_id: str, body: ReprocessRequest, settings: SettingsDep, client: ClientDep):
    job_id = jobs.rework(settings, episode_id, body.from_stage, dispatch, options=body.options(),
                         priority=jobs.PRIORITY_INTERACTIVE if body.priority is None else body.priority)
    return JSONResponse(jobs.get(settings, job_id), status_code=202, headers={"Location": f"/v1/jobs/{job_id}"})


@router.get("/{episode_id}/clips", summary="The episode's clips")
def list_clips(episode_id: str, settings: SettingsDep, client: ClientDep):
    return {"clips": episodes.summary(settings, episode_id)["clips"]}


@router.get("/{episode_id}/transcript.{fmt}", summary="The transcript as srt, vtt, json or txt")
def get_transcript(episode_id: str, fmt: str, settings: SettingsDep, client: ClientDep):
    if fmt not in transcript.FORMATS:
        raise NotFound(f"There is no transcript format '{fmt}'; use one of {', '.join(transcript.FORMATS)}.")
    text = episodes.export(settings, episode_id, fmt)
    return PlainTextResponse(text, media_type=TRANSCRIPT_TYPES[fmt],
                             headers={"Content-Disposition": f'attachment; filename="{episode_id}.{fmt}"'})


@router.get("/{episode_id}/audio", summary="The extracted audio (16 kHz mono WAV)")
def get_audio(episode_id: str, settings: SettingsDep, client: ClientDep):
    episodes.summary(settings, episode_id)
    path = storage.episode_dir(settings.data_dir, episode_id) / "audio.wav"
    if not path.is_file():
        raise NotFound(f"Episode {episode_id} has no audio yet (its extract_audio stage has not run).")
    return FileResponse(path, media_type="audio/wav", filename=f"{episode_id}.wav")


@router.get("/{episode_id}/source", summary="The source file as ingested")
def get_source(episode_id: str, settings: SettingsDep, client: ClientDep):
    path = episodes.summary(settings, episode_id)["source_path"]
    if not path or not Path(path).is_file():
        raise NotFound(f"Episode {episode_id} has no source file yet (its ingest stage has not run).")
    return FileResponse(path, filename=Path(path).name)


@router.get("/{episode_id}/approved.zip", summary="A zip of the approved clips' renders and the transcript")
def get_approved_zip(episode_id: str, settings: SettingsDep, client: ClientDep):
    path = bundle.approved_zip(settings, episode_id)
    return FileResponse(path, media_type="application/zip", filename=path.name)
