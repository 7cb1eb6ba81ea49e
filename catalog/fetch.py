"""Fetching product pictures by URL for imports: bounded in time, size, schemes and addresses."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests


class FetchError(Exception):
    pass


@dataclass(frozen=True)
class FetchPolicy:
    timeout: float = 10.0
    max_bytes: int = 20 * 1024 * 1024
    schemes: tuple[str, ...] = ("https", "http")
    allow_private: bool = False  # loopback and private networks (tests, intranet catalogs)
    max_redirects: int = 3


def _check_address(host: str, port: int, policy: FetchPolicy) -> None:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise FetchError(f"cannot resolve host {host!r}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not policy.allow_private and not address.is_global:
            raise FetchError(f"{host} resolves to a non-public address ({address}); refused")


def fetch_url(url: str, *, policy: FetchPolicy) -> bytes:
    """GET a URL; every redirect hop is checked against the same policy."""
    for _ in range(policy.max_redirects + 1):
        parts = urlsplit(url)
        if parts.scheme not in policy.schemes:
            raise FetchError(f"scheme {parts.scheme!r} not allowed (allowed: {', '.join(policy.schemes)})")
        if not parts.hostname:
            raise FetchError(f"no host in {url!r}")
        _check_address(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), policy)
        try:
            response = requests.get(url, timeout=policy.timeout, stream=True, allow_redirects=False)
        except requests.RequestException as exc:
            raise FetchError(f"request failed: {type(exc).__name__}") from exc
        with response:
            if response.is_redirect:
                url = urljoin(url, response.headers.get("Location", ""))
                continue
            if response.status_code != 200:
                raise FetchError(f"HTTP {response.status_code}")
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > policy.max_bytes:
                raise FetchError(f"larger than {policy.max_bytes} bytes")
            body = bytearray()
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) > policy.max_bytes:
                    raise FetchError(f"larger than {policy.max_bytes} bytes")
            return bytes(body)
    raise FetchError("too many redirects")
