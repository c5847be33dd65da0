"""Enrichment through an OpenAI-compatible LLM (a real scripted server on 127.0.0.1), and its fallbacks."""

import dataclasses
import json
import re

import pytest
import synthetic_transcript
from llm_server import FakeLLM, Reply
from test_enrich import check_chapters, check_clip_rules

from pipeline import db, jobs, storage, transcript
from pipeline.config import EnrichSettings, LLMSettings, Settings
from pipeline.enrichment import clip_rules, keywords, llm, sentences
from pipeline.enrichment.clip_rules import ClipRules
from pipeline.enrichment.sentences import Sentence
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


def runs_of(doc: dict, seconds: float = 9.0) -> list[tuple[Sentence, Sentence]]:
    """The transcript cut into consecutive runs of whole sentences, each at least ``seconds`` long,
    as (first, last) sentence pairs: moments a real LLM reading this transcript could pick."""
    sents = sentences.build(transcript.all_words(doc))
    runs, first = [], 0
    for last, sentence in enumerate(sents):
        if sentence.end - sents[first].start >= seconds:
            runs.append((sents[first], sentence))
            first = last + 1
    assert len(runs) >= 3 and all(b.end - a.start <= 20 for a, b in runs), runs
    return runs


def sample_answer(doc: dict, **overrides):
    """An answer citing this transcript's own moments, each a little off its sentence bounds (to be snapped)."""
    (a1, a2), (b1, b2), (c1, c2) = runs_of(doc)[:3]
    answer = {
        "title": "How small teams ship great software",
        "summary": "Three lessons on planning, testing and speed.",
        "keywords": ["testing", "planning", "speed"],
        "hashtags": ["#Testing", "small teams", "#Speed"],
        "chapters": [{"start": 0, "title": "Intro"}, {"start": b1.start + 0.05, "title": "Testing"},
                     {"start": 999, "title": "Invented"}],
        "clips": [
            {"start": b1.start - 0.25, "end": b2.end + 0.3, "score": 91, "title": "Why real tests matter",
             "reason": "A question answered in one breath. It also has a second sentence."},
            {"start": a1.start + 0.2, "end": a2.end - 0.2, "score": 77, "title": "Plan first", "reason": "Concrete advice"},
            {"start": 500.0, "end": 530.0, "score": 99, "title": "Invented", "reason": "Not in the episode."},
            {"start": minutes(c1.start + 0.2), "end": minutes(c2.end + 0.2), "score": 60, "title": "Speed",
             "reason": "Short and practical."},
        ],
    }
    answer.update(overrides)
    return answer


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


@pytest.mark.model
def test_llm_answer_is_validated_snapped_and_stored_as_the_llm_source(server, speech_transcript):
    server.push(Reply.completion(sample_answer(speech_transcript)))
    settings = settings_for(server)
    options = {"min_clip_seconds": 8, "max_clip_seconds": 20, "max_clips": 5}
    enrichment, clips = enrich.enrich_transcript(speech_transcript, settings, options)
    assert enrichment["source"] == "llm" and "fallback_reason" not in enrichment
    assert enrichment["title"] == "How small teams ship great software"
    assert enrichment["hashtags"] == ["#Testing", "#SmallTeams", "#Speed"]
    assert any("outside the episode" in note and "8:20" in note for note in enrichment["notes"])
    assert any("Invented" in note for note in enrichment["notes"])          # the chapter at 999 s
    assert not any("offline heuristic" in note for note in enrichment["notes"])   # 3 usable clips: no top-up
    assert [c["title"] for c in enrichment["chapters"]] == ["Intro", "Testing"]
    check_chapters(enrichment["chapters"], speech_transcript["duration"])
    (a1, a2), (b1, b2), (c1, c2) = runs_of(speech_transcript)[:3]
    # each clip snapped to the sentence bounds nearest the LLM's times
    assert [(c["title"], c["start"], c["end"]) for c in clips] == [
        ("Why real tests matter", b1.start, b2.end), ("Plan first", a1.start, a2.end), ("Speed", c1.start, c2.end)]
    check_clip_rules(speech_transcript, clips, clip_rules.rules_for(settings.enrich, options))
    best = clips[0]
    assert (best["score"], best["source"]) == (91, "llm")
    assert best["reason"] == "A question answered in one breath."
    said = sentences.text_between(sentences.build(transcript.all_words(speech_transcript)), b1.start, b2.end)
    assert best["hashtags"] == [keywords.hashtag(k) for k in ["testing", "planning", "speed"]
                                if k in said.lower()]         # the episode keywords said in the clip
    request = server.requests[0]
    assert "8 to 20 seconds" in request.prompt and "up to 5" in request.prompt
    assert all(f"[{s.start:.1f}] {s.text}" in request.prompt     # every sentence, with its start time
               for s in sentences.build(transcript.all_words(speech_transcript)))


@pytest.mark.model
@pytest.mark.parametrize("usable", [0, 1, 2])
def test_too_few_usable_llm_clips_are_topped_up_from_the_heuristic(server, speech_transcript, usable):
    picks = sample_answer(speech_transcript)["clips"]
    given = [picks[1], picks[0], picks[3]][:usable] + [picks[2]]       # the first run first, then the middle
    server.push(Reply.completion(sample_answer(speech_transcript, clips=given)))
    rules = ClipRules(8, 20)
    enrichment, clips = enrich.enrich_transcript(speech_transcript, settings_for(server),
                                                 {"min_clip_seconds": 8, "max_clip_seconds": 20})
    check_clip_rules(speech_transcript, clips, rules)
    from_llm = [(c["start"], c["end"]) for c in clips if c["source"] == "llm"]
    added = [(c["start"], c["end"]) for c in clips if c["source"] == "heuristic"]
    assert len(from_llm) == usable and len(from_llm) + len(added) == len(clips) <= rules.min_clips
    # every run of whole sentences the length rules allow (not only the heuristic's own picks)
    sents = sentences.build(transcript.all_words(speech_transcript))
    runs = [(a.start, b.end) for i, a in enumerate(sents) for b in sents[i:]
            if rules.min_seconds <= b.end - a.start <= rules.max_seconds]
    room = [r for r in runs if all(clip_rules.overlap(r, c) <= clip_rules.MAX_OVERLAP for c in from_llm)]
    if usable <= 1:
        assert room, runs                 # 40 s holds more than one clip next to a pick at the start
    assert set(added) <= set(room) and bool(added) == bool(room)      # topped up whenever something fits
    if added:
        plural = "" if usable == 1 else "s"
        assert f"The LLM suggested {usable} usable clip{plural}; added {len(added)} from the offline heuristic." \
            in enrichment["note"]
    if len(clips) < rules.min_clips:      # short of min_clips only when no run fits beside the kept clips
        assert all(any(clip_rules.overlap(r, k) > clip_rules.MAX_OVERLAP for k in from_llm + added) for r in room)


@pytest.mark.model
def test_endpoint_failing_falls_back_to_the_heuristic_and_says_why(server, speech_transcript):
    server.default = Reply(500)
    enrichment, clips = enrich.enrich_transcript(speech_transcript, settings_for(server),
                                                 {"min_clip_seconds": 8, "max_clip_seconds": 20})
    assert enrichment["source"] == "heuristic"
    assert "HTTP 500" in enrichment["fallback_reason"] and "offline enricher" in enrichment["fallback_reason"]
    assert len(server.requests) == 2            # one try + max_retries=1
    assert len(clips) >= 3 and all(c["source"] == "heuristic" for c in clips)


@pytest.mark.model
def test_garbage_twice_falls_back_but_garbage_once_is_repaired(server, speech_transcript):
    server.push(Reply.completion("```json\n{\"title\": \"Half"), Reply.completion(sample_answer(speech_transcript)))
    enrichment, _ = enrich.enrich_transcript(speech_transcript, settings_for(server))
    assert enrichment["source"] == "llm" and enrichment["llm"]["repairs"] == 1
    server.push(Reply.completion("no"), Reply.completion("still no"))
    enrichment, clips = enrich.enrich_transcript(speech_transcript, settings_for(server))
    assert enrichment["source"] == "heuristic" and "unusable" in enrichment["fallback_reason"]
    assert clips


@pytest.mark.model
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


@pytest.mark.model
def test_enrich_stage_with_an_llm_stores_its_clips(server, speech_video, speech_transcript, settings):
    server.push(Reply.completion(sample_answer(speech_transcript)))
    settings = dataclasses.replace(settings, llm=settings_for(server).llm)
    episode_id, _ = jobs.create(settings, str(speech_video))
    storage.write_text_atomic(storage.transcript_path(settings.data_dir, episode_id), json.dumps(speech_transcript))
    enrich.run(StageContext(settings, episode_id, {"min_clip_seconds": 8, "max_clip_seconds": 20}, lambda f: None))
    with db.session(settings.app_db) as conn:
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


def test_topic_changes_are_chapter_hints_and_llm_clips_across_them_are_dropped(server):
    import topic_episodes
    doc, truth = topic_episodes.transcript(["bread", "telescope", "pressing", "mortgage"], 160)
    sents = sentences.build(transcript.all_words(doc))
    change = truth[1]                                     # bread -> telescope
    before = [s for s in sents if s.end <= change]
    after = [s for s in sents if s.start >= change]
    straddler = {"start": before[-3].start, "end": after[2].end, "score": 95, "title": "Bread meets telescopes",
                 "reason": "Two subjects at once."}
    on_bread = {"start": before[0].start, "end": before[4].end, "score": 80, "title": "Slow dough",
                "reason": "Clear advice."}
    server.push(Reply.completion({"title": "Four subjects", "summary": "Bread, telescopes, football, mortgages.",
                                  "keywords": ["bread"], "hashtags": [], "chapters": [{"start": 0, "title": "Bread"}],
                                  "clips": [straddler, on_bread]}))
    enrichment, clips = enrich.enrich_transcript(doc, settings_for(server))
    prompt = server.requests[0].prompt
    hinted = [float(t) for t in re.search(r"subject changes at about ([\d., ]+) seconds", prompt).group(1).split(", ")]
    assert len(hinted) == len(truth) - 1 and all(abs(h - t) <= 5 for h, t in zip(hinted, truth[1:], strict=True))
    assert [c["title"] for c in clips if c["source"] == "llm"] == ["Slow dough"]
    assert any("runs across the change of subject" in note for note in enrichment["notes"]), enrichment["notes"]
    assert len(clips) == 3                                # topped up from the heuristic, which respects topics too
    for clip in clips:
        assert not any(clip["start"] < h < clip["end"] for h in hinted), clip
    check_clip_rules(doc, clips, ClipRules())
