"""Outbound fetches: the one place that decides whether Clipdesk may connect to a URL.

Once other machines can submit URLs and feeds, the worker would otherwise fetch whatever they
point at: the cloud metadata service (169.254.169.254), an admin page on 127.0.0.1, a printer on
the LAN. Every outbound fetch (URL ingestion and every request yt-dlp makes, feeds, feed items,
webhooks) is checked here: only http/https, and the host's *resolved* addresses must all be
public, unless the host is listed in ``network.allowed_hosts``. Redirects are checked again
before they are followed (``get`` for requests, ``youtube_dl`` for yt-dlp's own networking).

The check resolves the name itself; the HTTP client resolves it again to connect, so a DNS
server that answers differently within a second could slip past (DNS rebinding). Exposed
deployments that worry about that should also firewall the worker's egress.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

import requests

from pipeline.config import NetworkSettings
from pipeline.errors import BadInput

MAX_REDIRECTS = 10
CLOUD_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class RefusedFetch(BadInput):
    """The URL points somewhere Clipdesk does not fetch from (scheme or address); nothing was sent."""


def check_url(url: str, network: NetworkSettings, resolve: bool = True) -> str:
    """Return ``url`` if it may be fetched; raise RefusedFetch naming the reason otherwise.

    With ``resolve=False`` a name that does not resolve passes (the fetch itself will fail);
    ``jobs.create`` uses that so an offline machine can still queue URLs.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise RefusedFetch(f"'{_short(url)}' uses the {scheme + ':' if scheme else 'no'} scheme; "
                           f"Clipdesk fetches only http:// and https:// URLs.")
    try:
        host = (parts.hostname or "").rstrip(".").lower()
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise RefusedFetch(f"'{_short(url)}' has an invalid host or port.") from None
    if not host:
        raise RefusedFetch(f"'{_short(url)}' names no host.")
    if _allowed(host, None, network):
        return url
    for address in _addresses(host, port, url, resolve):
        if _allowed(host, address, network):
            continue
        reason = _blocked_reason(address)
        if reason:
            shown = host if host == str(address) else f"{host} (resolves to {address})"
            raise RefusedFetch(f"Refused to fetch {_short(url)}: {shown} is {reason}, which Clipdesk does not "
                               f"fetch from. If this host is meant to be reachable, list it in "
                               f"network.allowed_hosts.")
    return url


def _addresses(host: str, port: int, url: str, resolve: bool) -> list:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        if not resolve:
            return []
        raise RefusedFetch(f"Could not resolve the host of {_short(url)} ({host}).") from None
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def _blocked_reason(address) -> str | None:
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address in CLOUD_METADATA:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_private:
        return "a private network address"
    if not address.is_global:
        return "a reserved (non-public) address"
    return None


def _allowed(host: str, address, network: NetworkSettings) -> bool:
    for entry in network.allowed_hosts:
        entry = entry.strip().lower().rstrip(".")
        if address is None:
            if entry == host:
                return True
            continue
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def _short(url: str) -> str:
    return url if len(url) <= 200 else url[:200] + "..."


# --- fetching with requests ---------------------------------------------------------------

def get(url: str, network: NetworkSettings, timeout: float, **kwargs) -> requests.Response:
    """``requests.get`` with every hop checked: the URL, then each redirect before it is followed."""
    with requests.Session() as session:
        session.trust_env = False   # a proxy from the environment would hide where the request goes
        for _ in range(MAX_REDIRECTS + 1):
            check_url(url, network)
            response = session.get(url, timeout=timeout, allow_redirects=False, **kwargs)
            if not response.is_redirect:
                return response
            url = urljoin(response.url, response.headers["location"])
            response.close()
    raise BadInput(f"{_short(url)} redirected more than {MAX_REDIRECTS} times.")


def post(url: str, network: NetworkSettings, **kwargs) -> requests.Response:
    """``requests.post`` to a checked URL; redirects are not followed (a receiver has one address)."""
    check_url(url, network)
    with requests.Session() as session:
        session.trust_env = False
        return session.post(url, allow_redirects=False, **kwargs)


# --- yt-dlp --------------------------------------------------------------------------------

def youtube_dl(params: dict, network: NetworkSettings):
    """A ``yt_dlp.YoutubeDL`` whose every request (extractors, downloads, redirects) is checked.

    yt-dlp sends all HTTP through ``YoutubeDL.urlopen`` and its request director; this instance
    checks the URL in ``urlopen`` and has a director with one handler, yt-dlp's requests handler,
    whose session checks each redirect target before following it (requests calls
    ``Session.get_redirect_target`` for every hop). Other handlers (urllib with file://,
    websockets, curl_cffi) are not registered, and ffmpeg is never asked to fetch a URL.
    """
    return _checked_youtube_dl_class()(params, network)


@functools.cache
def _checked_youtube_dl_class():
    """Built on first use: importing yt-dlp costs ~0.5 s, and webhooks or feeds alone do not need it."""
    import yt_dlp
    from yt_dlp.networking._requests import RequestsRH, RequestsSession
    from yt_dlp.networking.exceptions import RequestError

    def refuse(exc: RefusedFetch):
        return RequestError(str(exc), cause=exc)

    class CheckedSession(RequestsSession):
        network: NetworkSettings

        def get_redirect_target(self, resp):
            target = super().get_redirect_target(resp)
            if target:
                try:
                    check_url(urljoin(resp.url, target), self.network)
                except RefusedFetch as exc:
                    raise refuse(exc) from exc
            return target

    class CheckedRequestsRH(RequestsRH):
        network: NetworkSettings

        def _create_instance(self, cookiejar, legacy_ssl_support=None):
            session = super()._create_instance(cookiejar, legacy_ssl_support)
            session.__class__ = CheckedSession   # same object, one more check per redirect
            session.network = self.network
            return session

    class CheckedYoutubeDL(yt_dlp.YoutubeDL):
        def __init__(self, params: dict, network: NetworkSettings):
            self._network = network
            super().__init__(params)

        @functools.cached_property
        def _request_director(self):
            handler = type("CheckedRequestsRH", (CheckedRequestsRH,), {"network": self._network})
            return self.build_request_director([handler])

        def urlopen(self, req):
            url = req if isinstance(req, str) else getattr(req, "url", None) or getattr(req, "full_url", "")
            try:
                check_url(url, self._network)
            except RefusedFetch as exc:
                raise refuse(exc) from exc
            return super().urlopen(req)

    return CheckedYoutubeDL
