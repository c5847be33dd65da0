from pipeline import enrich, transcript
from pipeline.config import EnrichSettings


def sentence_bounds(doc):
    sents = enrich.sentences(transcript.all_words(doc))
    return {round(s.start, 3) for s in sents}, {round(s.end, 3) for s in sents}


def test_clips_obey_duration_sentence_and_overlap_rules(speech_transcript):
    rules = EnrichSettings(min_clip_seconds=8, max_clip_seconds=20, max_clips=5)
    enrichment, clips = enrich.heuristic(speech_transcript, rules)
    starts, ends = sentence_bounds(speech_transcript)
    assert 2 <= len(clips) <= 5
    for clip in clips:
        assert 8 <= clip["end"] - clip["start"] <= 20
        assert clip["start"] in starts and clip["end"] in ends
        assert 0 <= clip["score"] <= 100
        assert clip["reason"].endswith(".") and clip["title"]
    for a in clips:
        for b in clips:
            assert a is b or a["end"] <= b["start"] or b["end"] <= a["start"]
    assert [c["score"] for c in clips] == sorted((c["score"] for c in clips), reverse=True)


def test_enrichment_has_title_summary_keywords_and_chapters(speech_transcript):
    enrichment, _ = enrich.heuristic(speech_transcript, EnrichSettings())
    assert enrichment["source"] == "heuristic"
    assert enrichment["title"] and enrichment["summary"]
    assert "lesson" in enrichment["keywords"]
    assert not set(enrichment["keywords"]) & enrich.STOPWORDS
    assert enrichment["chapters"][0]["start"] == 0.0


def test_default_rules_give_a_15_to_60_second_clip_from_the_sample(speech_transcript):
    _, clips = enrich.heuristic(speech_transcript, EnrichSettings())
    assert clips and all(15 <= c["end"] - c["start"] <= 60 for c in clips)


def test_question_opening_scores_higher_than_flat_opening():
    def window(first):
        return [enrich.Sentence(0, 5, first, len(first.split())),
                enrich.Sentence(5, 25, "Because users notice when things break and rarely return.", 9)]
    asked, _ = enrich.score_window(window("Why does testing matter so much?"), ["testing"])
    flat, _ = enrich.score_window(window("There is a thing we did once at some point."), ["testing"])
    assert asked > flat


def test_no_speech_means_no_clips_and_a_note():
    enrichment, clips = enrich.heuristic({"segments": []}, EnrichSettings())
    assert clips == [] and enrichment["chapters"] == []
    assert "No speech" in enrichment["note"]
