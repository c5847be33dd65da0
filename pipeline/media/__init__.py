"""Media tools: the one place that runs ffmpeg.

- ``ffmpeg_tools`` (re-exported here): the bundled ffmpeg, probing, running a graph with progress, stopping it.
- ``render_graph``: one ffmpeg-python graph per clip: decode once, split, every variant encoded at once.
- ``reframe``: where the 9x16 crop looks (centre, fit, following a face with YuNet, two people split, auto).
- ``captions``: ASS subtitles with word-by-word highlighting (and the hook title), burned in by libass.
- ``speech_envelope``: where a clip's audio is sound or silence; snaps caption words onto the voice.
- ``jump_cuts``: the spans of a clip kept when its long pauses (and filler words) are cut.
"""

from pipeline.media.ffmpeg_tools import MediaInfo, extract_frame, ffmpeg_exe, ffmpeg_query, probe, run, stop, stop_all

__all__ = ["MediaInfo", "extract_frame", "ffmpeg_exe", "ffmpeg_query", "probe", "run", "stop", "stop_all"]
