"""Which hosts a crawl may connect to.

With ``allow_private_networks = false`` a host that resolves to a loopback, private,
link-local, multicast or reserved address is refused. The check runs in the DNS
resolver scrapy connects through (so it holds after redirects too) and, for URLs
whose host is an IP literal, in a downloader middleware.
"""
from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest
from scrapy.resolver import CachingThreadedResolver


class PrivateNetworkRefused(IgnoreRequest):
    """A request to an address on a private network."""


def is_public(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    return not (addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_multicast
                or addr.is_reserved or addr.is_unspecified)


def ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


class PublicOnlyResolver(CachingThreadedResolver):
    """scrapy's resolver, refusing names that resolve to non-public addresses."""

    refused: set[str] = set()  # Twisted reports a refusal as a failed lookup; this says why

    def getHostByName(self, name, timeout=None):
        d = super().getHostByName(name, timeout)

        def check(ip):
            if not is_public(ip):
                PublicOnlyResolver.refused.add(name.lower())
                raise PrivateNetworkRefused(f"{name} resolves to non-public address {ip}")
            return ip

        return d.addCallback(check)


class NetworkGuardMiddleware:
    """Refuses non-http(s) URLs and private IP literals (before any connection)."""

    def __init__(self, allow_private: bool):
        self.allow_private = allow_private

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler.settings.getbool("WEBMILL_ALLOW_PRIVATE_NETWORKS"))

    def process_request(self, request, spider=None):
        parts = urlsplit(request.url)
        if parts.scheme not in ("http", "https"):
            raise IgnoreRequest(f"scheme {parts.scheme!r} is not crawled")
        if not self.allow_private:
            ip = ip_literal(parts.hostname or "")
            if ip and not is_public(ip):
                raise PrivateNetworkRefused(f"{parts.hostname} is a non-public address")
        return None

