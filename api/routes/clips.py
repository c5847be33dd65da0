"""``/v1/clips``: one clip, review edits (approve/reject, trim, reframe, caption style) and its renders."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.deps import ClientDep, SettingsDep, dispatch
from api.problems import Problem
from api.schemas import ClipPatch
from pipeline.errors import NotFound
from pipeline.library import review

router = APIRouter(prefix="/v1/clips", tags=["clips"])


@router.get("/{clip_id}", summary="One clip with its renders")
def get_clip(clip_id: str, settings: SettingsDep, client: ClientDep):
    return review.get_clip(settings, clip_id)


@router.patch("/{clip_id}", summary="Approve/reject, trim (start+end), or change reframe/caption style/jump cuts (re-renders)")
def patch_clip(clip_id: str, patch: ClipPatch, settings: SettingsDep, client: ClientDep):
    clip = review.get_clip(settings, clip_id)
    if (patch.start is None) != (patch.end is None):
        raise Problem(422, "A trim needs both start and end (seconds).")
    trim = patch.start is not None
    if patch.status:
        clip = review.set_clip_status(settings, clip_id, patch.status)
    if patch.reframe is not None or patch.caption_style is not None or patch.remove_silences is not None:
        clip = review.set_clip_render_options(settings, clip_id, reframe=patch.reframe,
                                              caption_style=patch.caption_style,
                                              remove_silences=patch.remove_silences,
                                              dispatch=None if trim else dispatch)
    if trim:
        clip = review.trim_clip(settings, clip_id, patch.start, patch.end, dispatch)
    return clip


@router.get("/{clip_id}/renders/{variant}", summary="A render as video/mp4 (Range requests and ETag supported)",
            response_class=FileResponse)
def get_render(clip_id: str, variant: str, settings: SettingsDep, client: ClientDep):
    renders = review.get_clip(settings, clip_id)["renders"]
    if variant not in renders:
        have = ", ".join(sorted(renders)) or "none yet"
        raise NotFound(f"Clip {clip_id} has no render '{variant}' (it has: {have}).")
    path = Path(renders[variant])
    if not path.is_file():
        raise NotFound(f"The render {variant} of clip {clip_id} is recorded but its file is gone.")
    return FileResponse(path, media_type="video/mp4", filename=f"{clip_id}-{variant}.mp4")
