"""What a re-transcription changed: word alignment that ignores case and punctuation."""

from pipeline.library import transcript_changes


def doc(text: str, **about) -> dict:
    words = [{"word": f" {w}", "start": float(i), "end": i + 0.5, "probability": 0.9}
             for i, w in enumerate(text.split())]
    return {"segments": [{"start": 0.0, "end": float(len(words)), "text": text, "words": words}], **about}


def test_changes_are_the_differing_stretches_at_their_time_in_the_new_transcript():
    old = doc("We ship rate software, says marvin kaclet.", model="tiny.en", engine="faster-whisper")
    new = doc("We ship great software says Zarvinka Plootmeyer.", model="base", engine="faster-whisper",
              vocabulary=["Zarvinka Plootmeyer"])
    diff = transcript_changes.compare(old, new)
    assert diff["changes"] == [{"start": 2.0, "old": "rate", "new": "great"},
                               {"start": 5.0, "old": "marvin kaclet.", "new": "Zarvinka Plootmeyer."}]
    assert diff["words_changed"] == 3 and diff["words"] == 7
    assert diff["old"]["model"] == "tiny.en" and diff["new"]["vocabulary"] == ["Zarvinka Plootmeyer"]


def test_only_dropped_or_added_words_and_identical_transcripts():
    diff = transcript_changes.compare(doc("one two three four"), doc("one four five"))
    assert diff["changes"] == [{"start": 1.0, "old": "two three", "new": ""}, {"start": 2.0, "old": "", "new": "five"}]
    assert transcript_changes.compare(doc("Same words."), doc("same words"))["changes"] == []
