"""Fetching media and feed listings from URLs with yt-dlp (used as a library, never a shell).

yt-dlp knows YouTube, Vimeo, podcast pages, direct media links and RSS feeds (its generic
extractor); feeds it does not read (Atom, or RSS too broken for its XML parser) are fetched
here and parsed by feedparser. Its many failure modes are
mapped to our errors: a link that can never work (404, private, removed, geo-blocked,
unsupported) is ``BadInput`` with a sentence; a network hiccup or a 5xx is ``TransientError``,
which the runner retries with back-off. ``source_key`` normalises URLs so the same video
pasted twice is recognised.
"""

from __future__ import annotations

import calendar
import io
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import defusedxml
import defusedxml.ElementTree
import feedparser
import requests
from yt_dlp.networking.exceptions import HTTPError, RequestError, TransportError
from yt_dlp.utils import (
    ContentTooShortError,
    DownloadError,
    GeoRestrictedError,
    UnsupportedError,
    parse_bytes,
    unsmuggle_url,
)

from pipeline import db, media, storage
from pipeline.config import PROJECT_ROOT, DownloadSettings, Settings
from pipeline.errors import BadInput, DuplicateSource, PipelineError, TransientError
from pipeline.security import network

log = logging.getLogger("clipdesk.download")

HTTP_URL = re.compile(r"^https?://[^/\s]+", re.IGNORECASE)
# Query parameters that only track where a link was shared; they never change the media.
_TRACKING = re.compile(r"^(utm_\w+|fbclid|gclid|si|feature|ref|ref_src|igshid|mc_[a-z]+)$", re.IGNORECASE)
_YOUTUBE_HOSTS = ("youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com", "youtu.be")
MAX_FEED_ENTRIES = 100

ProgressHook = Callable[[dict], None]


# --- URLs and duplicates --------------------------------------------------------------------

def require_http_url(url: str) -> str:
    url = url.strip()
    if not HTTP_URL.match(url):
        raise BadInput(f"'{url}' is not an http:// or https:// URL; only those are accepted.")
    return url


def source_key(url: str) -> str:
    """The URL reduced to what identifies the media: scheme, case, default port, fragment,
    tracking parameters and parameter order do not matter; YouTube links become the video id."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    port = f":{parts.port}" if parts.port and parts.port not in (80, 443) else ""
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)]
    if host in _YOUTUBE_HOSTS:
        video = (parts.path.strip("/") if host == "youtu.be" else
                 dict(query).get("v") or _youtube_path_id(parts.path))
        if video:
            return f"youtube:{video}"
    path = parts.path.rstrip("/") or "/"
    return urlunsplit(("", host + port, path, urlencode(sorted(query)), "")).lstrip("/")


def _youtube_path_id(path: str) -> str | None:
    match = re.match(r"^/(?:shorts|live|embed|v)/([\w-]{6,})", path)
    return match.group(1) if match else None


def check_not_duplicate(conn, url: str) -> str:
    """Raise DuplicateSource if a live episode already came from this URL; return its source key."""
    key = source_key(url)
    existing = db.find_episode_by_source_key(conn, key)
    if existing is not None:
        raise DuplicateSource(
            f"This URL was already added as episode {existing['id']}. To process it again, reprocess that "
            f"episode (python -m pipeline reprocess {existing['id']} --from ingest, or Reprocess on its page), "
            f"or enqueue with --allow-duplicate for a separate copy.", existing["id"])
    return key


# --- downloading one media URL --------------------------------------------------------------

def download(url: str, folder: Path, settings: Settings, on_progress: ProgressHook) -> tuple[Path, dict]:
    """Download the media at ``url`` into ``folder``; return (file, metadata).

    ``on_progress`` receives yt-dlp's progress dicts (downloaded_bytes, total_bytes, eta...);
    if it raises (Cancelled) the download stops at once. A partial file left in ``folder``
    is resumed by the next attempt. Every request is checked by ``security.network``; the
    download stops past ``download.max_filesize_mb`` and when the disk cannot hold what is announced.
    """
    folder.mkdir(parents=True, exist_ok=True)
    guard = _SizeGuard(settings, folder, url)
    params = _params(settings.download) | {
        "outtmpl": {"default": str(folder / "media.%(ext)s")},
        "format": _format(settings.download),
        "noplaylist": True,
        "playlistend": 1,   # should a redirect still lead to a playlist, never fetch a whole channel
        "max_filesize": guard.limit,   # yt-dlp skips formats announced larger, stops a transfer announced larger
        "progress_hooks": [guard, on_progress],
    }
    not_single = BadInput(f"{url} is a playlist, channel or feed, not a single episode. Follow it as a feed "
                          f"(python -m pipeline feeds add URL) or paste the URL of one episode.")
    try:
        with network.youtube_dl(params, settings.network) as ydl:
            info = ydl.extract_info(url, download=False, process=False)
            if info.get("_type") in ("playlist", "multi_video"):
                raise not_single
            info = ydl.process_ie_result(info, download=True)
    except (DownloadError, RequestError) as exc:   # RequestError: security.network refused a request
        raise explain(exc, url) from None
    if info.get("_type") in ("playlist", "multi_video"):
        raise not_single
    files = [Path(d["filepath"]) for d in info.get("requested_downloads") or () if d.get("filepath")]
    files = [f for f in files if f.exists()]
    if not files:
        if params["logger"].refused_size or (info.get("filesize") or info.get("filesize_approx") or 0) > guard.limit:
            raise guard.too_large()
        raise PipelineError(f"yt-dlp reported success for {url} but wrote no file.")
    if files[0].stat().st_size > guard.limit:   # whatever the server announced, check what arrived
        raise guard.too_large()
    return files[0], metadata(info, url)


class _SizeGuard:
    """yt-dlp progress hook: stop past ``download.max_filesize_mb`` (a server may announce no size,
    or a wrong one, and stream forever), and before the disk cannot hold the announced size
    plus ``worker.min_free_mb``."""

    def __init__(self, settings: Settings, folder: Path, url: str):
        self.limit = settings.download.max_filesize_mb * (1 << 20)
        self.reserve = settings.worker.min_free_mb * (1 << 20)
        self.folder, self.url, self.disk_checked = folder, url, False

    def too_large(self) -> BadInput:
        return BadInput(f"{self.url} is larger than the download limit of {self.limit >> 20} MB "
                        f"(download.max_filesize_mb); nothing was kept.")

    def __call__(self, status: dict) -> None:
        downloaded = status.get("downloaded_bytes") or 0
        if downloaded > self.limit:
            raise self.too_large()
        expected = status.get("total_bytes") or status.get("total_bytes_estimate")
        if expected and not self.disk_checked and status.get("status") == "downloading":
            self.disk_checked = True
            if expected > self.limit:
                raise self.too_large()
            free = storage.free_bytes(self.folder)
            if free - max(0, expected - downloaded) < self.reserve:
                raise TransientError(f"Not enough free disk for {self.url}: it needs {expected >> 20} MB and "
                                     f"{free >> 20} MB are free (worker.min_free_mb = {self.reserve >> 20} "
                                     f"must remain); it will be retried.")


def _params(settings: DownloadSettings) -> dict:
    params = {
        "quiet": True, "no_warnings": True, "noprogress": True, "logger": _YtdlpLog(),
        "socket_timeout": settings.socket_timeout, "retries": settings.retries,
        "fragment_retries": settings.retries, "extractor_retries": min(settings.retries, 3),
        "ffmpeg_location": media.ffmpeg_exe(), "cachedir": False, "color": {"stderr": "never", "stdout": "never"},
        # yt-dlp's own downloaders only: ffmpeg would fetch HLS/DASH URLs itself, past security.network.
        "external_downloader": {"default": "native"}, "match_filter": _refuse_live,
    }
    if settings.cookies_file:
        cookies = Path(settings.cookies_file).expanduser()
        cookies = cookies if cookies.is_absolute() else PROJECT_ROOT / cookies
        if not cookies.is_file():
            raise BadInput(f"download.cookies_file {cookies} does not exist; fix the path or set it to \"\".")
        params["cookiefile"] = str(cookies)
    if settings.rate_limit:
        params["ratelimit"] = parse_bytes(settings.rate_limit)
    return params


def _refuse_live(info: dict, incomplete: bool = False) -> str | None:
    """A live stream never ends and yt-dlp hands it to ffmpeg, which fetches past our checks."""
    if info.get("is_live"):
        return "live streams are not supported; paste the recording once the stream has ended"
    return None


def _format(settings: DownloadSettings) -> str:
    if settings.audio_only:
        return "bestaudio/best"
    h = settings.max_height
    # Separate best video and audio up to the height, else the best single file up to it, else anything.
    return f"bv*[height<=?{h}]+ba/b[height<=?{h}]/b"


def metadata(info: dict, url: str) -> dict:
    """What we keep about a downloaded item (shown on the episode page, sent in webhooks)."""
    upload_date = info.get("upload_date")
    if upload_date and re.fullmatch(r"\d{8}", upload_date):
        upload_date = f"{upload_date[:4]}-{upload_date[4:6]}-{upload_date[6:]}"
    elif info.get("timestamp"):
        upload_date = datetime.fromtimestamp(info["timestamp"], UTC).date().isoformat()
    return {
        "title": info.get("title") or "",
        "uploader": info.get("uploader") or info.get("channel") or "",
        "channel": info.get("channel") or "",
        "upload_date": upload_date or "",
        "description": info.get("description") or "",
        "duration": info.get("duration"),
        "original_url": url,
        "webpage_url": info.get("webpage_url") or url,
        "thumbnail": info.get("thumbnail") or "",
        "extractor": info.get("extractor_key") or "",
        "media_id": str(info.get("id") or ""),
    }


def progress_fraction(status: dict, parts_done: int) -> float | None:
    """0..1 from a yt-dlp progress dict; several parts (video + audio) share the range."""
    parts = len(status.get("info_dict", {}).get("requested_formats") or ()) or 1
    downloaded, total = status.get("downloaded_bytes"), status.get("total_bytes")
    if status.get("status") == "finished":
        current = 1.0
    elif total and downloaded is not None:
        current = min(1.0, downloaded / total)
    elif status.get("fragment_count"):   # HLS/DASH: fragments are steadier than the size estimate
        current = min(1.0, (status.get("fragment_index") or 0) / status["fragment_count"])
    elif status.get("total_bytes_estimate") and downloaded is not None:
        current = min(1.0, downloaded / status["total_bytes_estimate"])
    else:
        return None
    return min(1.0, (min(parts_done, parts - 1) + current) / parts)


# --- feed listings --------------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    entry_id: str          # guid / video id / url: stable across checks
    url: str
    title: str = ""
    published_at: float | None = None


@dataclass(frozen=True)
class Listing:
    title: str
    kind: str
    entries: list[Entry] = field(default_factory=list)   # newest first


def list_entries(url: str, settings: Settings) -> Listing:
    """The entries of a channel, playlist, RSS or Atom feed (flat: nothing is downloaded)."""
    params = _params(settings.download) | {"extract_flat": "in_playlist", "playlistend": MAX_FEED_ENTRIES}
    try:
        with network.youtube_dl(params, settings.network) as ydl:
            info = ydl.extract_info(url, download=False)
            raw_entries = [raw for raw in info.get("entries") or () if raw]
            tabs = [raw for raw in raw_entries if raw.get("ie_key") and raw["ie_key"] == info.get("extractor_key")]
            for tab in tabs[:5]:   # a YouTube channel lists its tabs (videos, shorts, streams): list each one
                raw_entries.remove(tab)
                raw_entries += [raw for raw in ydl.extract_info(tab["url"], download=False).get("entries") or ()
                                if raw]
    except (DownloadError, RequestError) as exc:
        error = explain(exc, url)
        if isinstance(error, BadInput) and _is_unsupported(exc):
            return _feed_listing(url, settings, error)
        raise error from None
    if info.get("_type") != "playlist":
        raise BadInput(f"{url} is a single item, not a channel, playlist or feed; enqueue it as an episode instead.")
    entries = [entry for raw in raw_entries if (entry := _entry(raw))]
    kind = "rss" if info.get("extractor_key") == "Generic" else (info.get("extractor") or "").lower()
    return Listing(info.get("title") or "", kind, _newest_first(entries))


def _entry(raw: dict) -> Entry | None:
    link, smuggled = unsmuggle_url(raw.get("url") or raw.get("webpage_url") or "", {})
    if not link:
        return None
    entry_id = smuggled.get("force_videoid") or raw.get("id") or link
    published = raw.get("timestamp") or raw.get("release_timestamp")
    return Entry(str(entry_id), link, raw.get("title") or "", float(published) if published else None)


def _newest_first(entries: list[Entry]) -> list[Entry]:
    """Feeds list newest first by convention; when every entry is dated, trust the dates."""
    if entries and all(e.published_at for e in entries):
        return sorted(entries, key=lambda e: e.published_at, reverse=True)
    return entries


def _feed_listing(url: str, settings: Settings, unsupported: BadInput) -> Listing:
    """A feed yt-dlp does not read (Atom, or RSS too broken for it), parsed by feedparser.

    feedparser gets the bytes fetched here, wrapped in a stream, so it never opens a URL or
    a file itself; anything that is not RSS or Atom raises ``unsupported``.
    """
    try:
        response = network.get(url, settings.network, timeout=settings.download.socket_timeout)
    except requests.RequestException as exc:
        raise TransientError(f"Could not fetch {url}: {exc}.") from None
    _refuse_xml_entities(url, response.content)
    headers = {"content-type": response.headers["content-type"]} if response.headers.get("content-type") else {}
    # No content-location: feedparser would resolve relative entry ids too, and ids must stay as written.
    parsed = feedparser.parse(io.BytesIO(response.content), response_headers=headers)
    if not parsed.get("version"):
        raise unsupported
    entries = [entry for item in parsed.entries if (entry := _feed_entry(item, response.url or url))]
    kind = "atom" if parsed.version.startswith("atom") else "rss"
    return Listing((parsed.feed.get("title") or "").strip(), kind, _newest_first(entries))


def _feed_entry(item: dict, base_url: str) -> Entry | None:
    """An entry's media (enclosure, then audio/video media:content), else the page it links to.

    A media:content of another type (YouTube's feeds point it at a Flash player) is no media
    to download. Only real links count (feedparser also copies an Atom id or RSS guid into ``link``); a
    relative one is resolved against the feed's URL. The id is the entry's id (or guid) as
    written, else the link.
    """
    links = item.get("links", ())
    candidates = [*(link.get("href") for link in links if link.get("rel") == "enclosure"),
                  *(content.get("url") for content in item.get("media_content", ()) if _is_media(content)),
                  *(link.get("href") for link in links if link.get("rel") == "alternate")]
    link = next((urljoin(base_url, found.strip()) for found in candidates if found and found.strip()), None)
    if not link:
        return None
    published = item.get("published_parsed") or item.get("updated_parsed")   # UTC struct_time
    return Entry((item.get("id") or link).strip(), link, (item.get("title") or "").strip(),
                 float(calendar.timegm(published)) if published else None)


def _is_media(content: dict) -> bool:
    return (content.get("type") or "").startswith(("audio/", "video/")) or content.get("medium") in ("audio", "video")


def _refuse_xml_entities(url: str, content: bytes) -> None:
    """Refuse a document that declares XML entities or external references (defusedxml checks).

    Feeds never need them, and they are how entity-expansion bombs ("billion laughs") and
    local-file reads work. A document that is not well-formed XML passes on: feedparser's
    lenient parser decides whether it is a feed, and expands no declared entity.
    """
    parser = defusedxml.ElementTree.XMLParser(target=object())   # a target without handlers: no tree is built
    try:
        parser.feed(content)
        parser.close()
    except defusedxml.DefusedXmlException:
        raise BadInput(f"{url} declares XML entities or external references, which feeds never use; "
                       f"it is refused as unsafe.") from None
    except defusedxml.ElementTree.ParseError:
        pass


# --- errors ---------------------------------------------------------------------------------

def explain(exc: BaseException, url: str) -> PipelineError:
    """Map a yt-dlp failure to BadInput (will never work) or TransientError (try again later)."""
    host = urlsplit(url).hostname or url
    for cause in _causes(exc):
        if isinstance(cause, PipelineError):
            return cause
        if isinstance(cause, GeoRestrictedError):
            return BadInput(f"{url} is not available from this server's country (geo-blocked).")
        if isinstance(cause, UnsupportedError):
            return BadInput(f"{url} is not a page or media file that can be downloaded (unsupported URL).")
        if isinstance(cause, HTTPError):
            return _http_error(cause.status, url, host)
        if isinstance(cause, (TransportError, ContentTooShortError, TimeoutError, ConnectionError)):
            return TransientError(f"Could not download from {host}: {_clean(str(cause))}.")
    text = _clean(str(exc))
    lower = text.lower()
    if "private" in lower:
        return BadInput(f"{url} is private; give download.cookies_file of an account that can see it.")
    if re.search(r"sign in|log ?in|members[- ]only|age[- ]restricted|confirm your age", lower):
        return BadInput(f"{url} needs a signed-in account ({text}); set download.cookies_file.")
    if re.search(r"removed|deleted|terminated|no longer available|unavailable|does not exist", lower):
        return BadInput(f"{url} has been removed or is unavailable ({text}).")
    # Download-phase failures after yt-dlp's own retries arrive as bare messages ("Got error: N bytes read...").
    if re.search(r"timed? ?out|temporar|connection|bytes read|more expected|got error|unable to download video", lower):
        return TransientError(f"Could not download from {host}: {text}.")
    return PipelineError(f"Download of {url} failed: {text}.")


def _http_error(status: int, url: str, host: str) -> PipelineError:
    if status in (404, 410):
        return BadInput(f"{url} was not found (HTTP {status}): the link is wrong or the media was removed.")
    if status in (401, 403):
        return BadInput(f"{url} refused access (HTTP {status}): it may be private or need a login "
                        f"(set download.cookies_file).")
    if status in (408, 425, 429) or status >= 500:
        return TransientError(f"{host} answered HTTP {status}; the download will be retried later.")
    return BadInput(f"{url} answered HTTP {status}; there is nothing to download there.")


def _causes(exc: BaseException):
    seen, todo = set(), [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        exc_info = getattr(current, "exc_info", None)
        todo += [exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None,
                 getattr(current, "cause", None) if isinstance(getattr(current, "cause", None), BaseException)
                 else None, current.__cause__, current.__context__]


def _is_unsupported(exc: BaseException) -> bool:
    return any(isinstance(cause, UnsupportedError) for cause in _causes(exc))


def _clean(message: str) -> str:
    """yt-dlp's message without its 'ERROR: [extractor] id:' prefix and '(caused by ...)' tail."""
    message = re.sub(r"^(ERROR:\s*)?(\[[\w:]+\]\s*[^:]*:\s*)?", "", message.strip())
    return re.sub(r"\s*\(caused by .*\)$", "", message).rstrip(".")


class _YtdlpLog:
    """Route yt-dlp's output to our logging instead of the worker's stderr."""

    def __init__(self):
        self.refused_size = False   # yt-dlp's HTTP downloader only *says* it aborted over max_filesize

    def debug(self, msg: str) -> None:
        self.refused_size = self.refused_size or "larger than max-filesize" in msg
        log.debug(msg)

    def info(self, msg: str) -> None:
        log.debug(msg)

    def warning(self, msg: str) -> None:
        log.info(msg)

    def error(self, msg: str) -> None:
        log.info(msg)
