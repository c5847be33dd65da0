"""Framing benchmark: YuNet against the old Haar cascade on the generated framing set
(tests/framing_set.py: the astronaut photo at three sizes, rotated +-30 degrees, mirrored,
partly off-frame, walking across; two people; no face), in one run.

For each case and detector it prints the share of output frames whose 9x16 crop holds the
whole face, the jitter (frames the crop moves although the face was inside the dead zone),
what ``reframe: auto`` would choose, and the detector's milliseconds per analysed frame.

    .venv/bin/python bench/framing.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import framing_set  # noqa: E402

from pipeline.media import reframe  # noqa: E402

CROP = (9 / 16) / (framing_set.WIDTH / framing_set.HEIGHT)


def main() -> None:
    print(f"{'case':12} {'detector':8} {'whole face':>10} {'jitter':>6} {'auto':>6} {'ms/frame':>8}")
    totals = {"yunet": [], "haar": []}
    with tempfile.TemporaryDirectory() as folder:
        for case in framing_set.CASES:
            video = framing_set.make(case, Path(folder))
            for detector in ("yunet", "haar"):
                began = time.perf_counter()
                samples = reframe.detect_all_faces(video, 0.0, framing_set.SECONDS, detector=detector)
                ms = (time.perf_counter() - began) * 1000 / max(1, len(samples))
                whole = jitter = "-"
                if len(case.people) == 1:
                    track = reframe.plan(reframe.main_faces(samples), CROP)
                    share = framing_set.whole_face_share(case, track, CROP)
                    totals[detector].append(share)
                    whole = f"{share:.0%}"
                    jitter = str(framing_set.jitter_frames(case, track, CROP, reframe.DEAD_ZONE))
                chosen = reframe.choose(samples)
                mark = "" if chosen == case.expected else "!"
                print(f"{case.name:12} {detector:8} {whole:>10} {jitter:>6} {chosen + mark:>6} {ms:8.1f}")
    for detector, shares in totals.items():
        print(f"{detector}: worst one-face case {min(shares):.0%}, mean {sum(shares) / len(shares):.0%}")
    print("(ms/frame includes decoding the sampled frames; '!' marks a wrong auto choice)")


if __name__ == "__main__":
    main()
