"""How well chapters match true topic boundaries: recall within a tolerance, spurious boundaries, Pk, WindowDiff.

Segmentations are compared second by second (a boundary at 47.3 s falls in second 47).
Pk (Beeferman et al.) is the chance that two points ``k`` seconds apart are wrongly put in the
same or in different chapters; WindowDiff (Pevzner & Hearst) counts windows whose number of
boundaries differs. Both use ``k`` = half the mean true chapter length; 0 is perfect.
"""

from __future__ import annotations


def matched(truth: list[float], found: list[float], tolerance: float = 5.0) -> tuple[int, int]:
    """(true boundaries found within ``tolerance``, found boundaries matching none), one-to-one."""
    unused = sorted(found)
    hits = 0
    for t in sorted(truth):
        near = [f for f in unused if abs(f - t) <= tolerance]
        if near:
            unused.remove(min(near, key=lambda f: abs(f - t)))
            hits += 1
    return hits, len(unused)


def _labels(boundaries: list[float], duration: float) -> list[int]:
    cuts = sorted(int(b) for b in boundaries)
    labels, segment = [], 0
    for second in range(int(duration) + 1):
        while segment < len(cuts) and second >= cuts[segment]:
            segment += 1
        labels.append(segment)
    return labels


def pk_and_windowdiff(truth: list[float], found: list[float], duration: float) -> tuple[float, float]:
    """(Pk, WindowDiff) of ``found`` boundaries (chapter starts after 0) against ``truth``."""
    ref, hyp = _labels(truth, duration), _labels(found, duration)
    k = max(1, round(len(ref) / (len(truth) + 1) / 2))
    probes = len(ref) - k
    if probes <= 0:
        return 0.0, 0.0
    pk = sum((ref[i] == ref[i + k]) != (hyp[i] == hyp[i + k]) for i in range(probes)) / probes
    wd = sum((ref[i + k] - ref[i]) != (hyp[i + k] - hyp[i]) for i in range(probes)) / probes
    return pk, wd
