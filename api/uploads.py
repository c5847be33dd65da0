"""Multipart submits: the body is parsed as it arrives (file parts spill to a temporary file past
1 MB, so an episode is never held in memory) and counted, so an upload over ``api.max_upload_mb``
is stopped at the limit instead of being read to its end."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import FormData, UploadFile

from api.problems import Problem
from pipeline.config import Settings

MULTIPART_OVERHEAD = 1 << 20   # form fields and part headers beside the file


@dataclass
class Upload:
    fields: dict
    file: UploadFile
    digest: str        # SHA-256 of the file, for Idempotency-Key fingerprints
    size: int


def _too_large(settings: Settings) -> Problem:
    return Problem(413, f"The upload is larger than the limit of {settings.api.max_upload_mb} MB (api.max_upload_mb).")


async def receive(request: Request, settings: Settings, list_fields: tuple[str, ...]) -> Upload:
    limit = settings.api.max_upload_mb * (1 << 20) + MULTIPART_OVERHEAD
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(settings)
    received = 0
    inner = request.receive

    async def counting_receive():
        nonlocal received
        message = await inner()
        received += len(message.get("body", b""))
        if received > limit:
            raise _too_large(settings)
        return message

    counted = Request(request.scope, counting_receive)
    form: FormData = await counted.form(max_files=1, max_fields=50)
    file = form.get("file")
    if not isinstance(file, UploadFile):
        names = ", ".join(sorted(form.keys())) or "none"
        raise Problem(422, f"A multipart submit needs the media in a part named 'file' (parts received: {names}).")
    fields: dict = {}
    for key in form.keys():
        if key == "file":
            continue
        values = [v for v in form.getlist(key) if isinstance(v, str)]
        fields[key] = [p.strip() for v in values for p in v.split(",") if p.strip()] if key in list_fields \
            else values[-1]
    digest, size = hashlib.sha256(), 0
    while chunk := await file.read(1 << 20):
        digest.update(chunk)
        size += len(chunk)
    await file.seek(0)
    if size > settings.api.max_upload_mb * (1 << 20):
        raise _too_large(settings)
    if size == 0:
        raise Problem(422, f"The uploaded file '{file.filename}' is empty (0 bytes).")
    return Upload(fields, file, digest.hexdigest(), size)
