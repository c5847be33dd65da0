"""The enrich stage: title, summary, chapters, keywords, hashtags and scored clip suggestions.

With ``llm.base_url`` set, an OpenAI-compatible LLM does the work (``llm_enrich``); without
one, or when the LLM keeps failing or answering garbage, the offline heuristic does
(``heuristic``), and the enrichment records ``source`` and ``fallback_reason``. A rejected API
key fails the job instead: falling back would hide a configuration mistake forever.
Either way every clip obeys ``clip_rules`` (sentence bounds, length, overlap), and when
the LLM picked fewer than ``enrich.min_clips`` good clips the heuristic's best fill the gap.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

from pipeline import db, storage, transcript, vocabulary
from pipeline.config import Settings
from pipeline.enrichment import clip_rules, heuristic, keywords, llm, llm_enrich, loudness, sentences, topics
from pipeline.enrichment.clip_rules import ClipRules
from pipeline.stages.context import StageContext

NO_SPEECH_NOTE = "No speech was found, so there are no chapters or clip suggestions."


def enrich_transcript(doc: dict, settings: Settings, options: dict | None = None,
                      progress: Callable[[float], None] = lambda fraction: None,
                      levels_for: Callable[[list], list[float] | None] | None = None) -> tuple[dict, list[dict]]:
    """(enrichment, clips) for a transcript; clips carry an ``id`` and obey the job's clip rules.

    Keywords are picked in the transcript's language, and the operator's vocabulary (the
    transcript's, the config's and the job's) is never dropped from them as stop words."""
    terms = vocabulary.merge(doc.get("vocabulary") or [], settings.transcribe.vocabulary,
                             (options or {}).get("vocabulary") or [])
    with keywords.speaking(doc.get("language"), vocabulary.words(terms)):
        return _enrich(doc, settings, options, progress, levels_for)


def _enrich(doc: dict, settings: Settings, options: dict | None, progress: Callable[[float], None],
            levels_for: Callable[[list], list[float] | None] | None) -> tuple[dict, list[dict]]:
    rules = clip_rules.rules_for(settings.enrich, options)
    words = transcript.all_words(doc)
    sents = sentences.build(words, doc.get("language"))
    duration = float(doc.get("duration") or (sents[-1].end if sents else 0.0))
    if not sents:
        return {"title": "", "summary": "", "chapters": [], "keywords": [], "hashtags": [], "source": "heuristic",
                "notes": [NO_SPEECH_NOTE], "note": NO_SPEECH_NOTE}, []
    cache: dict = {}
    topic_starts, fences = topics.find(topics.clauses(words), settings.enrich.chapter_seconds)

    def levels():   # read audio.wav only if the heuristic runs
        if "levels" not in cache:
            cache["levels"] = levels_for(sents) if levels_for else None
        return cache["levels"]

    notes: list[str] = []
    fallback_reason = None
    if settings.llm.base_url:
        reached = [0.0]

        def report(fraction: float) -> None:   # waits between retries re-report the last fraction (cancel check)
            reached[0] = fraction
            progress(fraction)

        client = llm.ChatClient(settings.llm, on_wait=lambda: progress(reached[0]))
        try:
            enrichment, clips, notes = llm_enrich.enrich(sents, duration, settings, rules, report, client,
                                                         topic_starts)
            enrichment["source"] = "llm"
            for clip in clips:
                text = sentences.text_between(sents, clip["start"], clip["end"]).lower()
                clip["hashtags"] = [keywords.hashtag(k) for k in enrichment["keywords"] if k.lower() in text][:3]
            if len(clips) < rules.min_clips:
                clips = _top_up(clips, sents, enrichment["keywords"], rules, levels(), notes, topic_starts, fences)
            return _finish(enrichment, clips, notes)
        except llm.LLMError as exc:   # LLMAuthError is BadInput, not LLMError: it fails the job
            fallback_reason = f"{exc} Used the offline enricher instead."
    enrichment, clips = heuristic.enrich(sents, rules, settings.enrich.keyword_count, settings.enrich.chapter_seconds,
                                         levels(), topic_starts, fences)
    enrichment["source"] = "heuristic"
    if fallback_reason:
        enrichment["fallback_reason"] = fallback_reason
        notes.append(fallback_reason)
    if len(clips) < rules.min_clips:
        notes.append(f"Only {len(clips)} clip{'s' if len(clips) != 1 else ''} of {rules.min_seconds:g}-"
                     f"{rules.max_seconds:g} s fit this {duration:.0f}-second episode.")
    return _finish(enrichment, clips, notes)


def _top_up(clips: list[dict], sents: list, top: list[str], rules: ClipRules, levels, notes: list[str],
            topic_starts: list[float], fences: list[float]) -> list[dict]:
    """Fill up to min_clips with the heuristic's best clips among those that stay clear of the LLM's picks."""
    extra = heuristic.clips(sents, top, rules, levels, limit=rules.min_clips - len(clips), around=clips,
                            chapter_starts=[0.0, *topic_starts], fences=fences)
    filled = clip_rules.select(extra, rules.min_clips, chosen=clips)
    added = len(filled) - len(clips)
    if added:
        notes.append(f"The LLM suggested {len(clips)} usable clip{'s' if len(clips) != 1 else ''}; "
                     f"added {added} from the offline heuristic.")
    return filled


def _finish(enrichment: dict, clips: list[dict], notes: list[str]) -> tuple[dict, list[dict]]:
    enrichment["notes"] = notes
    enrichment["note"] = " ".join(notes)
    for clip in clips:
        clip["id"] = clip.get("id") or uuid.uuid4().hex[:12]
    return enrichment, clips


def run(ctx: StageContext) -> None:
    doc = transcript.load(ctx.transcript_path())
    audio = ctx.episode_dir / "audio.wav"

    def levels_for(sents):
        return loudness.sentence_levels(audio, sents) if audio.exists() else None

    enrichment, clips = enrich_transcript(doc, ctx.settings, ctx.options, lambda f: ctx.progress(0.9 * f), levels_for)
    rows = [{"id": c["id"], "start": c["start"], "end": c["end"], "score": c["score"], "title": c["title"],
             "reason": c["reason"], "source": c.get("source", enrichment["source"]),
             "hashtags_json": json.dumps(c.get("hashtags") or []),
             "score_detail_json": json.dumps(c["score_detail"]) if c.get("score_detail") else None} for c in clips]
    with db.session(ctx.settings.app_db) as conn, db.transaction(conn):
        now = time.time()
        db.set_episode_enrichment(conn, ctx.episode_id, json.dumps(enrichment), now)
        if enrichment["title"]:
            db.set_episode_title_if_empty(conn, ctx.episode_id, enrichment["title"], now)
        db.replace_clips(conn, ctx.episode_id, rows, now)
    storage.remove_tree(ctx.episode_dir / "clips")   # renders of earlier suggestions, if any
    ctx.progress(1.0)
