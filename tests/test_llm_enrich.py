"""Enrichment through an OpenAI-compatible LLM (a real scripted server on 127.0.0.1), and its fallbacks."""

import dataclasses
import json
import re

import pytest
import synthetic_transcript
from llm_server import FakeLLM, Reply
from test_enrich import check_chapters, check_clip_rules

from pipeline import db, jobs, storage
from pipeline.config import EnrichSettings, LLMSettings, Settings
from pipeline.enrichment import clip_rules, llm
from pipeline.enrichment.clip_rules import ClipRules
from pipeline.stages import enrich
from pipeline.stages.context import StageContext

LINE = re.compile(r"^\[(\d+\.\d)\] ", re.MULTILINE)


def settings_for(server, **llm_overrides) -> Settings:
    values = dict(base_url=server.url, model="test-model", timeout_seconds=5.0, max_retries=1, backoff_seconds=0.01,
                  backoff_max_seconds=0.1)
    values.update(llm_overrides)
    return Settings(llm=LLMSettings(**values))


@pytest.fixture
def server():
    with FakeLLM() as fake:
        yield fake


def sample_answer(**overrides):
    answer = {
        "title": "How small teams ship great software",
        "summary": "Three lessons on planning, testing and speed.",
        "keywords": ["testing", "planning", "speed"],
        "hashtags": ["#Testing", "small teams", "#Speed"],
        "chapters": [{"start": 0, "title": "Intro"}, {"start": 14.3, "title": "Testing"},
                     {"start": 999, "title": "Invented"}],
        "clips": [
            {"start": 14.0, "end": 29.0, "score": 91, "title": "Why real tests matter",
             "reason": "A question answered in one breath. It also has a second sentence."},
            {"start": 6.4, "end": 16.0, "score": 77, "title": "Plan first", "reason": "Concrete advice"},
            {"start": 500.0, "end": 530.0, "score": 99, "title": "Invented", "reason": "Not in the episode."},
            {"start": "0:29.5", "end": "0:39", "score": 60, "title": "Speed", "reason": "Short and practical."},
        ],
    }
    answer.update(overrides)
    return answer


def test_llm_answer_is_validated_snapped_and_stored_as_the_llm_source(server, speech_transcript):
    server.push(Reply.completion(sample_answer()))
    settings = settings_for(server)
    options = {"min_clip_seconds": 8, "max_clip_seconds": 20, "max_clips": 5}
    enrichment, clips = enrich.enrich_transcript(speech_transcript, settings, options)
    assert enrichment["source"] == "llm" and "fallback_reason" not in enrichment
    assert enrichment["title"] == "How small teams ship great software"
    assert enrichment["hashtags"] == ["#Testing", "#SmallTeams", "#Speed"]
    assert any("outside the episode" in note and "8:20" in note for note in enrichment["notes"])
    assert any("Invented" in note for note in enrichment["notes"])          # the chapter at 999 s
    assert [c["title"] for c in enrichment["chapters"]] == ["Intro", "Testing"]
    check_chapters(enrichment["chapters"], speech_transcript["duration"])
    assert {c["title"] for c in clips} == {"Why real tests matter", "Plan first", "Speed"}
    check_clip_rules(speech_transcript, clips, clip_rules.rules_for(settings.enrich, options))
    best = clips[0]
    assert (best["start"], best["score"], best["source"]) == (14.26, 91, "llm")
    assert best["reason"] == "A question answered in one breath."
    assert best["hashtags"] == ["#Testing"]         # the episode keywords said in the clip
    request = server.requests[0]
    assert "8 to 20 seconds" in request.prompt and "up to 5" in request.prompt
    assert "[16.6] Every feature needs a real test" in request.prompt


def test_too_few_usable_llm_clips_are_topped_up_from_the_heuristic(server, speech_transcript):
    server.push(Reply.completion(sample_answer(clips=[{"start": 14.0, "end": 29.0, "score": 91, "title": "Tests",
                                                       "reason": "Good."}])))
    enrichment, clips = enrich.enrich_transcript(speech_transcript, settings_for(server),
                                                 {"min_clip_seconds": 8, "max_clip_seconds": 20})
    assert len(clips) == 3 and [c["source"] for c in clips].count("llm") == 1
    assert "added 2 from the offline heuristic" in enrichment["note"]
    check_clip_rules(speech_transcript, sorted(clips, key=lambda c: -c["score"]), ClipRules(8, 20))


def test_endpoint_failing_falls_back_to_the_heuristic_and_says_why(server, speech_transcript):
    server.default = Reply(500)
    enrichment, clips = enrich.enrich_transcript(speech_transcript, settings_for(server),
                                                 {"min_clip_seconds": 8, "max_clip_seconds": 20})
    assert enrichment["source"] == "heuristic"
    assert "HTTP 500" in enrichment["fallback_reason"] and "offline enricher" in enrichment["fallback_reason"]
    assert len(server.requests) == 2            # one try + max_retries=1
    assert len(clips) >= 3 and all(c["source"] == "heuristic" for c in clips)


def test_garbage_twice_falls_back_but_garbage_once_is_repaired(server, speech_transcript):
    server.push(Reply.completion("```json\n{\"title\": \"Half"), Reply.completion(sample_answer()))
    enrichment, _ = enrich.enrich_transcript(speech_transcript, settings_for(server))
    assert enrichment["source"] == "llm" and enrichment["llm"]["repairs"] == 1
    server.push(Reply.completion("no"), Reply.completion("still no"))
    enrichment, clips = enrich.enrich_transcript(speech_transcript, settings_for(server))
    assert enrichment["source"] == "heuristic" and "unusable" in enrichment["fallback_reason"]
    assert clips


def test_rejected_api_key_fails_the_enrichment(server, speech_transcript):
    server.default = Reply(403)
    with pytest.raises(llm.LLMAuthError, match="HTTP 403"):
        enrich.enrich_transcript(speech_transcript, settings_for(server))
    assert len(server.requests) == 1


def windowed_reply(body: dict) -> Reply:
    """Answers each window from the times in its prompt; the final request gets an episode summary."""
    prompt = "\n".join(m["content"] for m in body["messages"])
    if "summaries of the consecutive parts" in prompt:
        parts = len(re.findall(r"^Part \d+:", prompt, re.MULTILINE))
        return Reply.completion({"title": f"Episode of {parts} parts", "summary": "All parts.",
                                 "keywords": ["databases", "cycling"], "hashtags": ["#Databases"]})
    times = [float(t) for t in LINE.findall(prompt)]
    first, middle = times[0], times[len(times) // 2]
    clip = {"start": middle, "end": middle + 30, "score": 50 + len(times) % 40, "title": f"At {middle}",
            "reason": "Scripted."}
    return Reply.completion({
        "title": "Part", "summary": f"Part from {first}.", "keywords": ["databases"], "hashtags": [],
        "chapters": [{"start": first, "title": f"From {first}"}, {"start": middle, "title": f"Shift at {middle}"}],
        "clips": [clip, dict(clip, start=middle + 1, end=middle + 29, score=clip["score"] - 1),   # a near-duplicate
                  {"start": 99999, "end": 99999 + 20, "score": 100, "title": "Invented", "reason": "Made up."}],
    })


def test_two_hour_transcript_is_windowed_within_the_context_budget(server):
    doc = synthetic_transcript.transcript(["databases", "cycling", "baking", "astronomy"] * 3, seconds_per_topic=600)
    server.default = windowed_reply
    settings = dataclasses.replace(settings_for(server, context_tokens=4096, max_tokens=1024,
                                                window_overlap_seconds=30),
                                   enrich=EnrichSettings(max_clips=10))
    seen = []
    enrichment, clips = enrich.enrich_transcript(doc, settings, progress=seen.append)

    window_requests = [r for r in server.requests if LINE.search(r.prompt)]
    assert len(window_requests) >= 10 and len(server.requests) == len(window_requests) + 1
    for request in server.requests:      # system + user text, counted the conservative way, plus the answer
        assert llm.estimate_tokens(request.prompt) + request.body["max_tokens"] <= 4096
    spans = [[float(t) for t in LINE.findall(r.prompt)] for r in window_requests]
    all_starts = {round(s["start"], 1) for s in doc["segments"]}
    assert set().union(*map(set, spans)) == all_starts                   # every sentence is in some window
    for before, after in zip(spans, spans[1:], strict=False):
        assert after[0] < before[-1]                                     # windows overlap
        assert before[-1] - after[0] <= 30 + 10
    assert seen == sorted(seen) and seen[-1] == 1.0

    assert enrichment["source"] == "llm" and enrichment["llm"]["windows"] == len(window_requests)
    assert enrichment["title"] == f"Episode of {len(window_requests)} parts"
    assert len(clips) == 10
    check_clip_rules(doc, clips, ClipRules(15, 60, 10, 3))
    check_chapters(enrichment["chapters"], doc["duration"])
    # the topic shift in each window's middle, and its first line only where no earlier window covers it
    titles = [c["title"] for c in enrichment["chapters"]]
    assert titles == ["From 0.0"] + [f"Shift at {times[len(times) // 2]}" for times in spans]
    assert sum("outside the episode" in n for n in enrichment["notes"]) == len(window_requests)


def test_enrich_stage_with_an_llm_stores_its_clips(server, speech_video, speech_transcript, settings):
    server.push(Reply.completion(sample_answer()))
    settings = dataclasses.replace(settings, llm=settings_for(server).llm)
    episode_id, _ = jobs.create(settings, str(speech_video))
    storage.write_text_atomic(storage.transcript_path(settings.data_dir, episode_id), json.dumps(speech_transcript))
    enrich.run(StageContext(settings, episode_id, {"min_clip_seconds": 8, "max_clip_seconds": 20}, lambda f: None))
    with db.session(settings.app_db_path) as conn:
        stored = json.loads(db.get_episode(conn, episode_id)["enrichment_json"])
        rows = db.list_clips(conn, episode_id)
    assert stored["source"] == "llm" and stored["llm"]["model"] == "test-model"
    assert [r["source"] for r in rows] == ["llm"] * 3 and rows[0]["score_detail_json"] is None


def test_cancel_between_windows_stops_the_llm_enrichment(server):
    from pipeline.errors import Cancelled
    doc = synthetic_transcript.transcript(["databases", "cycling"], seconds_per_topic=600)
    server.default = windowed_reply
    settings = settings_for(server, context_tokens=4096, max_tokens=1024)

    def progress(fraction):
        if fraction > 0:
            raise Cancelled("The job was cancelled.")
    with pytest.raises(Cancelled):
        enrich.enrich_transcript(doc, settings, progress=progress)
    assert len(server.requests) == 1


def test_silent_episode_with_an_llm_configured_makes_no_request(server):
    enrichment, clips = enrich.enrich_transcript({"segments": [], "duration": 30.0}, settings_for(server))
    assert clips == [] and "No speech" in enrichment["note"] and server.requests == []
