"""The offline heuristic enricher and the enrich stage, on the real speech sample and long synthetic transcripts."""

import json
import math
import re
from collections import Counter
from itertools import combinations

import ffmpeg
import pytest
import synthetic_transcript

from pipeline import db, jobs, media, storage, transcript
from pipeline.config import EnrichSettings, Settings
from pipeline.enrichment import clip_rules, heuristic, keywords, loudness, sentences
from pipeline.enrichment.clip_rules import ClipRules
from pipeline.enrichment.sentences import Sentence
from pipeline.stages import enrich
from pipeline.stages.context import StageContext


def check_clip_rules(doc, clips, rules: ClipRules):
    """Every rule a clip must obey, checked against the transcript's own words and sentences."""
    words = transcript.all_words(doc)
    sents = sentences.build(words)
    starts, ends = {s.start for s in sents}, {s.end for s in sents}
    word_starts = {round(w["start"], 3) for w in words}
    word_ends = {round(w["end"], 3) for w in words}
    duration = doc["duration"]
    for clip in clips:
        assert clip["start"] in starts and clip["end"] in ends, clip
        assert clip["start"] in word_starts and clip["end"] in word_ends
        assert rules.min_seconds <= clip["end"] - clip["start"] <= rules.max_seconds
        assert 0 <= clip["start"] < clip["end"] <= duration
        assert 0 <= clip["score"] <= 100
        assert clip["title"] and clip["reason"].endswith(".")
    for a in clips:
        for b in clips:
            if a is not b:
                assert clip_rules.overlap((a["start"], a["end"]), (b["start"], b["end"])) <= clip_rules.MAX_OVERLAP
    assert [c["score"] for c in clips] == sorted((c["score"] for c in clips), reverse=True)


def check_reasons(doc, clips, top):
    """Each clip's reason claims only what its own sentences show (opening, topics, length)."""
    sents = sentences.build(transcript.all_words(doc))
    for clip in clips:
        inside = [s for s in sents if clip["start"] <= s.start and s.end <= clip["end"]]
        text, reason, first = " ".join(s.text for s in inside).lower(), clip["reason"], inside[0]
        if reason.startswith("Opens with a question"):
            assert first.is_question and (len(inside) > 1) == ("and answers it" in reason), (reason, first)
        if reason.startswith("Opens with a strong framing line"):
            assert first.text.lower().startswith(heuristic.FRAMING_OPENERS), (reason, first)
        number = re.match(r'Opens with a number \("([^"]+)"\)', reason)
        if number:
            assert heuristic.NUMBER.search(first.text).group(0) == number.group(1), (reason, first)
        topics = re.search(r"episode's keywords \(([^)]+)\)", reason)
        if topics:
            assert all(t in top and t.lower() in text for t in topics.group(1).split(", ")), (reason, text)
        if "asks a question and answers it" in reason:
            assert any(s.is_question for s in inside[:-1]), (reason, text)
        if ", ending on a statement" in reason:
            assert not inside[-1].is_question, (reason, inside[-1])
        seconds = re.search(r"(\d+) s of whole sentences on one topic", reason)
        assert seconds and abs(int(seconds.group(1)) - (clip["end"] - clip["start"])) <= 0.5, reason


def most_clips_that_fit(doc, rules: ClipRules, up_to: int) -> int:
    """How many runs of whole sentences within the rules can coexist (<= MAX_OVERLAP), by brute force."""
    sents = sentences.build(transcript.all_words(doc))
    runs = [(a.start, b.end) for i, a in enumerate(sents) for b in sents[i:]
            if rules.min_seconds <= b.end - a.start <= rules.max_seconds]
    for n in range(up_to, 0, -1):
        if any(all(clip_rules.overlap(x, y) <= clip_rules.MAX_OVERLAP for x, y in combinations(group, 2))
               for group in combinations(runs, n)):
            return n
    return 0


def check_chapters(chapters, duration):
    assert chapters and chapters[0]["start"] == 0.0
    assert [c["start"] for c in chapters] == sorted({c["start"] for c in chapters})
    assert all(0 <= c["start"] < duration and c["title"] for c in chapters)


@pytest.mark.model
def test_sample_clips_obey_every_rule_with_the_jobs_clip_lengths(speech_transcript):
    settings = Settings()
    options = {"min_clip_seconds": 8, "max_clip_seconds": 20, "max_clips": 5}
    enrichment, clips = enrich.enrich_transcript(speech_transcript, settings, options)
    rules = clip_rules.rules_for(settings.enrich, options)
    assert rules == ClipRules(8, 20, 5, 3)
    assert 3 <= len(clips) <= 5
    check_clip_rules(speech_transcript, clips, rules)
    check_chapters(enrichment["chapters"], speech_transcript["duration"])
    assert enrichment["source"] == "heuristic" and "fallback_reason" not in enrichment
    assert all(c["source"] == "heuristic" and set(c["score_detail"]) == {"hook", "substance", "shape", "delivery"}
               for c in clips)
    assert all(abs(sum(c["score_detail"].values()) - c["score"]) < 0.5 for c in clips)
    check_reasons(speech_transcript, clips, enrichment["keywords"])
    best = clips[0]       # chosen for what it says, not only for its length, and not the show's greeting
    assert best["reason"].startswith("Opens with") or "episode's keywords" in best["reason"], best["reason"]
    opening = next(s for s in sentences.build(transcript.all_words(speech_transcript)) if s.start == best["start"])
    assert not heuristic.SCAFFOLD.search(opening.text), opening


@pytest.mark.model
def test_sample_enrichment_has_topic_keywords_title_summary_and_hashtags(speech_transcript):
    enrichment, _ = enrich.enrich_transcript(speech_transcript, Settings())
    sents = sentences.build(transcript.all_words(speech_transcript))
    spoken = " ".join(s.text for s in sents)
    top = [k.lower() for k in enrichment["keywords"]]
    assert len(top) >= 5 and all(k in spoken.lower() for k in top)     # every keyword is said in the episode
    said = Counter(keywords.tokens(spoken))        # topic words and how often this transcript says them
    first, second = keywords.stem(top[0]), keywords.stem(top[1])
    assert said[first] == max(said.values()) and said[first] >= 2, (top, said.most_common(5))
    assert said[second] == max(n for word, n in said.items() if word != first), (top, said.most_common(5))
    assert not {"welcome", "listening", "show", "back", "today", "thanks"} & set(top)
    # the title is the topic the host announces in the opening ("... talking about <title>")
    assert any(f"about {enrichment['title'].lower()}" in s.text.lower() for s in sents[:3]), enrichment["title"]
    summary = enrichment["summary"]
    parts = re.split(r"(?<=[.?!]) ", summary)
    assert len(parts) >= 3 and all(part in spoken for part in parts), summary     # whole sentences said in it
    assert sents[0].text not in summary and sents[-1].text not in summary          # not the greeting or sign-off
    assert not heuristic.SCAFFOLD.search(summary)
    assert enrichment["hashtags"][:2] == [keywords.hashtag(k) for k in enrichment["keywords"][:2]]


@pytest.mark.model
def test_forty_second_sample_holds_fewer_than_three_default_clips_and_says_so(speech_transcript):
    enrichment, clips = enrich.enrich_transcript(speech_transcript, Settings())
    fit = most_clips_that_fit(speech_transcript, ClipRules(), up_to=3)
    assert 1 <= fit < 3         # 40 s of sentences cannot hold three of >= 15 s overlapping <= 20%
    assert len(clips) == fit
    check_clip_rules(speech_transcript, clips, ClipRules())
    assert "fit this 40-second episode" in enrichment["note"]


def test_long_episode_gets_chapters_at_topic_shifts_and_clips_spread_over_them():
    topics = ["databases", "cycling", "baking"]
    doc = synthetic_transcript.transcript(topics, seconds_per_topic=600)
    settings = Settings(enrich=EnrichSettings(chapter_seconds=600))
    enrichment, clips = enrich.enrich_transcript(doc, settings, {"max_clips": 8})
    chapters = enrichment["chapters"]
    check_chapters(chapters, doc["duration"])
    assert len(chapters) == 3
    for chapter, true_start, topic in zip(chapters, synthetic_transcript.topic_starts(doc, topics), topics,
                                          strict=True):
        assert abs(chapter["start"] - true_start) <= 60
        assert set(chapter["title"].lower().replace(",", "").split()) & {w.lower() for w in
                                                                      synthetic_transcript.TOPICS[topic]}
    assert len(clips) == 8
    check_clip_rules(doc, clips, ClipRules(15, 60, 8, 3))
    bounds = [c["start"] for c in chapters] + [math.inf]
    per_chapter = [sum(1 for c in clips if a <= c["start"] < b) for a, b in zip(bounds, bounds[1:], strict=False)]
    assert sorted(per_chapter) == [2, 3, 3]          # each topic gets its share of the 8 clips


def test_two_hour_episode_gets_ten_clips_and_one_chapter_per_topic():
    topics = ["databases", "cycling", "baking", "astronomy"] * 3
    doc = synthetic_transcript.transcript(topics, seconds_per_topic=600)
    assert doc["duration"] > 7200
    enrichment, clips = enrich.enrich_transcript(doc, Settings(), {"max_clips": 10})
    assert len(clips) == 10
    check_clip_rules(doc, clips, ClipRules(15, 60, 10, 3))
    check_chapters(enrichment["chapters"], doc["duration"])
    # chapter_seconds (300) is a preference, not a quota: twelve 10-minute topics are twelve chapters
    starts = [c["start"] for c in enrichment["chapters"]]
    truth = synthetic_transcript.topic_starts(doc, topics)
    assert len(starts) == len(truth) and all(abs(a - b) <= 5 for a, b in zip(starts, truth, strict=True))
    assert len({round(c["start"] // 1800) for c in clips}) >= 3    # spread over the episode, not piled at the start


def test_question_opening_outscores_a_flat_one_and_a_dangling_one():
    def score(first):
        sents = [Sentence(0, 5, first, len(first.split())),
                 Sentence(5.5, 25, "Users notice when things break and rarely return to the product.", 11)]
        feats = heuristic.sentence_features(sents, ["testing"], None)
        return heuristic.Scorer(sents, feats, ClipRules(15, 60), ["testing"]).parts(0, 1)["hook"]
    asked = score("Why does testing matter so much?")
    flat = score("There was a time we looked at some of the ideas again for a while.")
    dangling = score("And that was when it all went wrong for everyone in the room.")
    assert asked > flat > dangling


def test_keywords_group_word_forms_and_skip_show_scaffolding():
    texts = ["Welcome back to the show, thanks for listening.", "Testing the parser is hard.",
             "We keep tests small.", "Every test runs on the parser.", "Thanks for listening, see you next week."]
    top = keywords.extract(texts, limit=3)
    assert len(top) == 2 and keywords.stem(top[0]) == "test" and top[1] == "parser"   # test x3 beats parser x2
    assert keywords.stem("testing") == keywords.stem("tests") == "test"
    assert keywords.hashtag("real data") == "#RealData"


def test_louder_sentences_score_higher_delivery(tmp_path):
    wav = tmp_path / "audio.wav"
    quiet_then_loud = (ffmpeg.input("sine=frequency=300:duration=40:sample_rate=16000", f="lavfi")
                       .filter("volume", volume="if(lt(t,20),0.05,0.8)", eval="frame")
                       .output(str(wav), ac=1, ar=16000, acodec="pcm_s16le"))
    media.run(quiet_then_loud, 40.0)
    sents = [Sentence(float(t), t + 4.5, f"Sentence number {t} about the parser.", 6) for t in range(0, 40, 5)]
    levels = loudness.sentence_levels(wav, sents)
    assert levels[-1] - levels[0] > 20      # ~24 dB apart, measured from the real file
    feats = heuristic.sentence_features(sents, ["parser"], levels)
    scorer = heuristic.Scorer(sents, feats, ClipRules(15, 60), ["parser"])
    loud, quiet = scorer.parts(4, 7), scorer.parts(0, 3)
    assert loud["delivery"] > quiet["delivery"]
    louder = re.search(r"(\d+) dB louder than the episode's median", scorer.reason(4, 7, loud))   # what was measured
    assert louder and int(louder.group(1)) >= 6 and "louder" not in scorer.reason(0, 3, quiet)


def test_no_speech_means_no_clips_no_chapters_and_a_note():
    enrichment, clips = enrich.enrich_transcript({"segments": [], "duration": 12.0}, Settings())
    assert clips == [] and enrichment["chapters"] == [] and enrichment["keywords"] == []
    assert "No speech" in enrichment["note"]


def test_sentences_also_break_at_long_pauses_when_there_is_no_punctuation():
    words = [{"word": w, "start": s, "end": s + 0.3} for w, s in
             [("so", 0.0), ("we", 0.4), ("shipped", 0.8), ("it", 1.2), ("then", 4.0), ("nothing", 4.4)]]
    built = sentences.build(words)
    assert [(s.start, s.end, s.text) for s in built] == [(0.0, 1.5, "so we shipped it"), (4.0, 4.7, "then nothing")]


def test_a_run_on_sentence_is_cut_at_a_comma_once_it_is_long():
    words = [{"word": f"word{n}," if n % 10 == 9 else f"word{n}", "start": n * 0.5, "end": n * 0.5 + 0.4}
             for n in range(120)]     # 60 s of speech, a comma every 5 s, no full stop
    built = sentences.build(words)
    assert [s.word_count for s in built] == [70, 50]          # cut at the first comma after 30 s
    assert built[0].text.endswith("word69,") and built[1].start == 35.0


@pytest.mark.model
def test_enrich_stage_stores_enrichment_and_clips(settings, speech_video, speech_transcript):
    episode_id, job_id = jobs.create(settings, str(speech_video))
    storage.write_text_atomic(storage.transcript_path(settings.data_dir, episode_id),
                              json.dumps(speech_transcript))
    stale = storage.clip_dir(settings.data_dir, episode_id, "old") / "clean_9x16.mp4"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old render")
    seen = []
    options = {"min_clip_seconds": 8, "max_clip_seconds": 20}
    ctx = StageContext(settings, episode_id, options, seen.append)
    enrich.run(ctx)
    expected, expected_clips = enrich.enrich_transcript(speech_transcript, settings, options)   # no audio.wav here
    with db.session(settings.app_db) as conn:
        episode = db.get_episode(conn, episode_id)
        rows = db.list_clips(conn, episode_id)
    stored = json.loads(episode["enrichment_json"])
    assert stored["source"] == "heuristic" and stored["keywords"] == expected["keywords"]
    assert episode["title"] == stored["title"] == expected["title"]
    assert [(r["start"], r["end"], r["score"]) for r in rows] == [(c["start"], c["end"], c["score"])
                                                                   for c in expected_clips]
    assert len(rows) >= 3 and all(r["status"] == "suggested" and r["source"] == "heuristic" for r in rows)
    assert all(json.loads(r["score_detail_json"])["hook"] >= 0 for r in rows)
    assert any(json.loads(r["hashtags_json"]) for r in rows)
    assert not stale.exists()
    assert seen[-1] == 1.0 and seen == sorted(seen)


def test_job_clip_lengths_that_cannot_work_are_bad_input():
    from pipeline.errors import BadInput
    with pytest.raises(BadInput, match="min_clip_seconds"):
        clip_rules.rules_for(Settings().enrich, {"min_clip_seconds": 50, "max_clip_seconds": 20})
