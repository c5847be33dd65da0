"""The bundled multilingual ``base`` model: joined from its two packages, hash-checked, offline on both engines."""

import json
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

from pipeline.stages import bundled_models

# Runs in a child process with no network: in its own empty network namespace when the
# machine allows it (``unshare -n``), and with every socket connection refused by an audit
# hook either way, so a download attempt fails the load instead of passing unnoticed.
OFFLINE_CHILD = r"""
import json, sys
def refuse(event, args):
    if event in ("socket.connect", "socket.getaddrinfo"):
        raise OSError(f"network is unavailable in this test ({event} {args[1:2]})")
sys.addaudithook(refuse)
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/tests"]
from pathlib import Path
import mediagen
from conftest import word_error_rate
from pipeline.config import TranscribeSettings
from pipeline.stages import transcribe, whisper_checkpoint
cache = Path(sys.argv[2])
doc = transcribe.transcribe_file(mediagen.SPEECH, TranscribeSettings(model="base"), 0, cache=cache)
checkpoint = transcribe.openai_checkpoint("base", cache)
model = whisper_checkpoint.load(checkpoint)
print(json.dumps({"language": doc["language"], "model": doc["model"],
                  "wer": word_error_rate(mediagen.SPEECH_TEXT, " ".join(s["text"] for s in doc["segments"])),
                  "checkpoint": str(checkpoint), "multilingual": model.is_multilingual,
                  "layers": model.dims.n_text_layer}))
"""


def _offline_prefix() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


@pytest.mark.model
@pytest.mark.slow
def test_base_is_joined_checked_and_loads_on_both_engines_with_the_network_unavailable(tmp_path):
    cache = tmp_path / "models"
    done = subprocess.run([*_offline_prefix(), sys.executable, "-c", OFFLINE_CHILD, str(ROOT), str(cache)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    joined = cache / "bundled" / "base"
    assert (joined / "model.bin").stat().st_size == bundled_models.BASE_SIZE
    assert sorted(p.name for p in joined.iterdir()) == ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"]
    assert result["language"] == "en" and result["model"] == "base"   # detected: base is multilingual
    assert result["wer"] < 0.15, result
    assert result["multilingual"] and result["layers"] == 6   # Whisper base: 6 decoder layers, 99 languages
    assert result["checkpoint"] == str(cache / "openai-whisper" / "base.pt")


def test_parts_that_do_not_join_into_the_expected_file_are_refused_and_leave_nothing(tmp_path):
    """Two real packages of the wrong content shadow the installed ones in a child process."""
    for i, package in enumerate(bundled_models.BASE_PARTS, start=1):
        data = tmp_path / "site" / package / "data"
        data.mkdir(parents=True)
        (data.parent / "__init__.py").write_text("")
        (data / f"model.bin.part{i}").write_bytes(b"not a model half" * 100)
        for name in bundled_models.BASE_FILES if i == 1 else ():
            (data / name).write_text("{}")
    child = ("import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
             "from pipeline.stages import bundled_models\n"
             "from pipeline.errors import BadInput\n"
             "try:\n    bundled_models.location('base', sys.argv[3])\n"
             "except BadInput as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", child, str(tmp_path / "site"), str(ROOT), str(tmp_path / "models")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "do not join into the expected file" in done.stdout and "install requirements.txt again" in done.stdout
    joined = tmp_path / "models" / "bundled" / "base"
    assert not (joined / "model.bin").exists() and not list(joined.glob("*.partial"))
