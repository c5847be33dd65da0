"""Per-job options: what an operator may change for one submission, checked before it queues.

A job's options override the config for that job only. Stages read them as
``ctx.options.get(key) or <config default>``. Invalid options are bad input: the job is
refused at enqueue time with a sentence naming the option, so it never fails later.
"""

from __future__ import annotations

from pipeline import vocabulary
from pipeline.config import Settings
from pipeline.errors import BadInput
from pipeline.jobs.states import TARGET_STAGES
from pipeline.stages import model_choice

ENGINES = ("faster-whisper", "openai-whisper")
ASPECTS = ("9x16", "16x9", "1x1")
REFRAME_MODES = ("center", "face", "fit", "split", "auto")


def validate(settings: Settings, options: dict | None, trusted: bool = False) -> dict:
    """Return the options with known keys checked and empty values dropped; BadInput otherwise.

    ``trusted`` (the CLI) may name a model folder anywhere; see ``stages.model_choice``."""
    options = {key: value for key, value in (options or {}).items() if value not in (None, "", [])}
    unknown = set(options) - set(_CHECKS)
    if unknown:
        raise BadInput(f"Unknown job option(s): {', '.join(sorted(unknown))}. Known: {', '.join(sorted(_CHECKS))}.")
    for key, value in options.items():
        _CHECKS[key](settings, key, value)
    if "model" in options:
        model_choice.check(options["model"], settings.data_dir, settings.transcribe.allow_downloads,
                           trusted=trusted or settings.paths.allowed_source_dirs == ("*",))
    if "vocabulary" in options:   # stored as a list, whether it came as a list or as "a, b, c"
        options["vocabulary"] = vocabulary.parse(options["vocabulary"])
        if not options["vocabulary"]:
            del options["vocabulary"]
    low = options.get("min_clip_seconds", settings.enrich.min_clip_seconds)
    high = options.get("max_clip_seconds", settings.enrich.max_clip_seconds)
    if low > high:
        raise BadInput(f"The shortest clip ({low:g} s) is longer than the longest clip ({high:g} s).")
    if options.get("full_episode") and options.get("target_stage", "render") != "render":
        raise BadInput(f"Option full_episode needs target_stage render (got {options['target_stage']}).")
    return options


def caption_styles(settings: Settings) -> tuple[str, ...]:
    """Caption preset names the config defines (``render.caption_presets``)."""
    return tuple(settings.render.caption_presets)


def _choice(allowed):
    def check(settings, key, value):
        choices = allowed(settings) if callable(allowed) else allowed
        if value not in choices:
            raise BadInput(f"Option {key}: '{value}' is not one of {', '.join(choices)}.")
    return check


def _text(settings, key, value):
    if not isinstance(value, str) or len(value) > 200:
        raise BadInput(f"Option {key} must be a short text.")


def _number(low, high, whole=False):
    def check(settings, key, value):
        kind = int if whole else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
            raise BadInput(f"Option {key} must be a {'whole ' if whole else ''}number from {low} to {high}"
                           f" (got {value!r}).")
    return check


def _aspects(settings, key, value):
    if not isinstance(value, list) or not value or any(a not in ASPECTS for a in value):
        raise BadInput(f"Option {key} must list one or more of {', '.join(ASPECTS)} (got {value!r}).")


def _caption_style(settings, key, value):
    styles = caption_styles(settings)
    if not isinstance(value, str) or (styles and value not in styles):
        raise BadInput(f"Option {key}: '{value}' is not a caption style; use one of {', '.join(styles)}.")


def _url(settings, key, value):
    if not isinstance(value, str) or not value.startswith(("http://", "https://")) or len(value) > 2000 \
            or any(c.isspace() for c in value):
        raise BadInput(f"Option {key} must be an http:// or https:// URL (got {value!r}).")


def _vocabulary(settings, key, value):
    try:
        vocabulary.parse(value)
    except vocabulary.VocabularyError as exc:
        raise BadInput(f"Option {exc}") from None


def _flag(settings, key, value):
    if not isinstance(value, bool):
        raise BadInput(f"Option {key} must be true or false.")


_CHECKS = {
    "engine": _choice(ENGINES),
    "model": _text,
    "language": _text,
    "max_clips": _number(1, 10, whole=True),
    "min_clip_seconds": _number(1, 600),
    "max_clip_seconds": _number(1, 1800),
    "aspects": _aspects,
    "caption_style": _caption_style,
    "reframe": _choice(REFRAME_MODES),
    "full_episode": _flag,
    "target_stage": _choice(TARGET_STAGES),
    "webhook_url": _url,   # this job's own webhook, besides webhooks.urls
    "remove_silences": _flag,
    "title_overlay_seconds": _number(0, 30),
    "vocabulary": _vocabulary,
}

NAMES = tuple(_CHECKS)   # every job option, in one place: the CLI, the dashboard and the API offer these
