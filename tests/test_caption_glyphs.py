"""Burned-in captions draw the right glyphs: accents intact, CJK from the bundled fallback font, no boxes.

A known phrase is burned by the real ffmpeg ``ass`` filter (libass, the bundled fonts dir) onto a
black frame, and its text pixels are compared with reference renders of the same phrase by the
same font file (Pillow/FreeType): the burned text must match the right reference far better than
the wrong one (accents dropped, or the font's own box glyph for a character it lacks).
"""

from pathlib import Path

import ffmpeg
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from pipeline.config import CaptionPreset
from pipeline.media import ffmpeg_exe
from pipeline.media.captions import build_ass

FONTS = Path(__file__).resolve().parents[1] / "assets" / "fonts"
WIDTH, HEIGHT = 960, 540
PLAIN = CaptionPreset(size=0.09, words_per_line=8, text_color="#FFFFFF", highlight_color="#FFFFFF", pop=1.0,
                      outline=0.0, shadow=0.0, margin_landscape=0.4)


def burned(tmp_path: Path, words: list[str]) -> np.ndarray:
    """The caption of ``words`` as libass draws it on a black frame (grey levels)."""
    timed = [{"word": f" {w}", "start": 0.1 * i, "end": 1.9} for i, w in enumerate(words)]
    ass = tmp_path / "caption.ass"
    ass.write_text(build_ass(timed, 0.0, 2.0, WIDTH, HEIGHT, PLAIN, FONTS), encoding="utf-8")
    out, _ = (ffmpeg.input(f"color=black:size={WIDTH}x{HEIGHT}:duration=2:rate=10", f="lavfi")
              .filter("ass", filename=str(ass), fontsdir=str(FONTS))
              .output("pipe:", ss=1.5, vframes=1, format="rawvideo", pix_fmt="gray")
              .run(cmd=ffmpeg_exe(), capture_stdout=True, quiet=True))
    return np.frombuffer(out, np.uint8).reshape(HEIGHT, WIDTH)


def reference(text: str, font_file: str) -> np.ndarray:
    font = ImageFont.truetype(str(FONTS / font_file), 120)
    image = Image.new("L", (int(font.getlength(text)) + 80, 260))
    ImageDraw.Draw(image).text((40, 40), text, font=font, fill=255)
    return np.asarray(image)


def _ink(pixels: np.ndarray) -> np.ndarray:
    """The text's pixels, cropped to their bounding box, as a 64 x 512 mask."""
    mask = pixels > 128
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    assert len(rows) and len(cols), "no text was drawn"
    crop = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    return np.asarray(Image.fromarray(crop.astype(np.uint8) * 255).resize((512, 64), Image.BILINEAR)) > 128


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two text masks."""
    a, b = _ink(a), _ink(b)
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_accented_words_are_burned_with_their_accents(tmp_path):
    words = ["Ärger", "über", "Été", "à", "Señor"]
    shown = burned(tmp_path, words)
    right = similarity(shown, reference(" ".join(words), "NotoSans-Bold.ttf"))
    stripped = similarity(shown, reference("Arger uber Ete a Senor", "NotoSans-Bold.ttf"))
    assert right > 0.6 and right > stripped + 0.1, (right, stripped)


@pytest.mark.parametrize("words", [["你好", "世界"], ["こんにちは", "世界"], ["안녕하세요"]])
def test_cjk_words_render_glyphs_from_the_bundled_fallback_font_not_boxes(tmp_path, words):
    shown = burned(tmp_path, words)
    text = "".join(words)   # written without spaces
    glyphs = similarity(shown, reference(text, "DroidSansFallback.ttf"))
    boxes = similarity(shown, reference(text, "NotoSans-Bold.ttf"))   # Noto Sans lacks them: its box glyph
    assert glyphs > 0.6 and glyphs > boxes + 0.2, (glyphs, boxes)
