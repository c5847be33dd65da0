"""Media tools: the one place that runs ffmpeg.

- ``ffmpeg_tools`` (re-exported here): the bundled ffmpeg, probing, running a graph with progress, stopping it.
- ``render_graph``: one ffmpeg-python graph per clip: decode once, split, every variant encoded at once.
- ``reframe``: where the 9x16 crop looks (centre, fit, following a face).
- ``captions``: ASS subtitles with word-by-word highlighting, burned in by libass.
"""

from pipeline.media.ffmpeg_tools import MediaInfo, extract_frame, ffmpeg_exe, ffmpeg_query, probe, run, stop, stop_all

__all__ = ["MediaInfo", "extract_frame", "ffmpeg_exe", "ffmpeg_query", "probe", "run", "stop", "stop_all"]
