"""Fetching product pictures by URL for imports: bounded in time, size, schemes and addresses.

The host is resolved once, every address it resolves to is checked, and the connection goes to the
checked address (the URL's host still names the site: Host header, TLS SNI and certificate), so a
name that resolves to a public address for the check and to a private one for the request (DNS
rebinding) reaches nothing it should not; the addresses are tried in turn. Each connect and read
waits at most `timeout` seconds, and the whole fetch (redirects included) at most `total_timeout`: a
watchdog shuts the connection's socket down when that time is up, so a server sending its headers or
its body a byte now and then (each within the per-read timeout) does not hold the import.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import certifi
import urllib3

REDIRECTS = frozenset({301, 302, 303, 307, 308})


class FetchError(Exception):
    pass


@dataclass(frozen=True)
class FetchPolicy:
    timeout: float = 10.0  # seconds to connect, and per read
    max_bytes: int = 20 * 1024 * 1024
    schemes: tuple[str, ...] = ("https", "http")
    allow_private: bool = False  # loopback and private networks (tests, intranet catalogs)
    max_redirects: int = 3
    total_timeout: float = 60.0  # seconds for the whole fetch, redirects included


def _checked_addresses(host: str, port: int, policy: FetchPolicy) -> list[str]:
    """The addresses to connect to: `host` resolved once, every address it has checked against the policy."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"cannot resolve host {host!r}") from exc
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise FetchError(f"cannot resolve host {host!r}")
    for address in addresses:
        if not policy.allow_private and not address.is_global:
            raise FetchError(f"{host} resolves to a non-public address ({address}); refused")
    return [str(address) for address in addresses]


def _ascii_host(host: str) -> str:
    """An internationalised host name as DNS, HTTP and certificates spell it (IDNA: `xn--...`)."""
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise FetchError(f"not a valid host name: {host!r}") from exc


class _Watchdog:
    """Shuts down the socket of the fetch's current connection once its total time is up: a blocked
    read (of headers too, which urllib3 reads with the per-read timeout only) returns at once."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            expired = self.expired
        if expired:
            self._shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sock = self._sock
        if sock is not None:
            self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # closed meanwhile


def _watched(connection_class, watchdog: _Watchdog):
    class Watched(connection_class):
        def connect(self) -> None:
            super().connect()
            watchdog.watch(self.sock)

    return Watched


def _request(scheme: str, host: str, path: str, address: str, port: int, timeout: float,
             watchdog: _Watchdog) -> tuple[urllib3.HTTPConnectionPool, urllib3.BaseHTTPResponse]:
    """GET `path` from `address`, naming `host` (Host header, SNI, certificate check)."""
    limits = urllib3.Timeout(connect=timeout, read=timeout)
    if scheme == "https":
        pool = urllib3.HTTPSConnectionPool(address, port, timeout=limits, retries=False, maxsize=1,
                                           server_hostname=host, assert_hostname=host,
                                           cert_reqs="CERT_REQUIRED", ca_certs=certifi.where())
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=limits, retries=False, maxsize=1)
    pool.ConnectionCls = _watched(pool.ConnectionCls, watchdog)
    named = f"[{host}]" if ":" in host else host
    default_port = 443 if scheme == "https" else 80
    headers = {"Host": named if port == default_port else f"{named}:{port}", "Accept": "image/*",
               "User-Agent": "shop-catalog-import"}
    try:
        return pool, pool.urlopen("GET", path, headers=headers, redirect=False, retries=False,
                                  preload_content=False, assert_same_host=False)
    except BaseException:
        pool.close()
        raise


def fetch_url(url: str, *, policy: FetchPolicy) -> bytes:
    """GET a URL; every redirect hop is checked against the same policy."""
    with _Watchdog(policy.total_timeout) as watchdog:
        try:
            body = _fetch(url, policy, watchdog)
        except FetchError:
            if watchdog.expired:
                raise FetchError(f"took longer than {policy.total_timeout:g} s") from None
            raise
        if watchdog.expired:  # the socket was shut down: what was read may be cut short
            raise FetchError(f"took longer than {policy.total_timeout:g} s")
        return body


def _fetch(url: str, policy: FetchPolicy, watchdog: _Watchdog) -> bytes:
    deadline = time.monotonic() + policy.total_timeout

    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError(f"took longer than {policy.total_timeout:g} s")
        return min(policy.timeout, remaining)

    for _ in range(policy.max_redirects + 1):
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:  # a port out of range, a malformed IPv6 host
            raise FetchError(f"not a valid URL: {exc}") from exc
        if parts.scheme not in policy.schemes:
            raise FetchError(f"scheme {parts.scheme!r} not allowed (allowed: {', '.join(policy.schemes)})")
        if not parts.hostname:
            raise FetchError(f"no host in {url!r}")
        host = _ascii_host(parts.hostname)
        path = urlunsplit(("", "", parts.path or "/", parts.query, ""))
        failure = None
        for address in _checked_addresses(host, port, policy):
            try:
                pool, response = _request(parts.scheme, host, path, address, port, left(), watchdog)
                break
            except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError) as exc:
                failure = exc  # that address does not answer: the next one
            except urllib3.exceptions.HTTPError as exc:
                raise FetchError(f"request failed: {type(exc).__name__}") from exc
        else:
            raise FetchError(f"request failed: {type(failure).__name__}") from failure
        try:
            if response.status in REDIRECTS and response.headers.get("Location"):
                url = urljoin(url, response.headers["Location"])
                continue
            if response.status != 200:
                raise FetchError(f"HTTP {response.status}")
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > policy.max_bytes:
                raise FetchError(f"larger than {policy.max_bytes} bytes")
            body = bytearray()
            while chunk := response.read1(64 * 1024):
                body += chunk
                if len(body) > policy.max_bytes:
                    raise FetchError(f"larger than {policy.max_bytes} bytes")
                left()
            return bytes(body)
        except urllib3.exceptions.HTTPError as exc:
            raise FetchError(f"request failed: {type(exc).__name__}") from exc
        finally:
            response.close()
            pool.close()
    raise FetchError("too many redirects")
