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


# IPv6 ranges that carry an IPv4 address in their low 32 bits (NAT64, RFC 6052 / 8215): the
# IPv4 inside is what a translator connects to
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def embedded_ipv4(addr: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to: IPv4-mapped, 6to4 (2002::/16), Teredo
    (server and client) and NAT64."""
    out = [a for a in (addr.ipv4_mapped, addr.sixtofour) if a is not None]
    if addr.teredo:
        out += list(addr.teredo)
    if any(addr in net for net in _NAT64):
        out.append(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    return out


def is_public(ip: str) -> bool:
    """Whether an address is on the public internet: globally routable by IANA's special-purpose
    registries (``is_global``: not private, loopback, link-local, carrier-grade NAT 100.64/10,
    documentation, benchmarking, reserved), not multicast, and every IPv4 address it embeds
    public too. An address that does not parse is not public."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])  # a zone index (fe80::1%eth0) is link-local anyway
    except ValueError:
        return False
    if not addr.is_global or addr.is_multicast or addr.is_unspecified:
        return False
    if isinstance(addr, ipaddress.IPv6Address):
        return all(is_public(str(v4)) for v4 in embedded_ipv4(addr))
    return True


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

    def __init__(self, allow_private: bool, private_hosts=()):
        self.allow_private = allow_private
        self.private_hosts = {h.lower() for h in private_hosts}

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler.settings.getbool("WEBMILL_ALLOW_PRIVATE_NETWORKS"), crawler.settings.getlist("WEBMILL_PRIVATE_HOSTS"))

    def process_request(self, request, spider=None):
        parts = urlsplit(request.url)
        if parts.scheme not in ("http", "https"):
            raise IgnoreRequest(f"scheme {parts.scheme!r} is not crawled")
        if self.allow_private:
            return None
        host = parts.hostname or ""
        ip = ip_literal(host)
        if ip:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            if not is_public(ip) and f"{host}:{port}".lower() not in self.private_hosts:
                raise PrivateNetworkRefused(f"{host} is a non-public address")
            return None
        if behind_proxy(request, parts.scheme, host):
            # the connection goes to the proxy, so the resolver sees only the proxy's name: the
            # target is resolved here, off the reactor thread, and refused like any other
            from twisted.internet.threads import deferToThread

            return deferToThread(check_resolves_public, host)
        return None


def behind_proxy(request, scheme: str, host: str) -> bool:
    """Whether scrapy's HttpProxyMiddleware will send this request through a proxy."""
    import urllib.request

    if request.meta.get("proxy"):
        return True
    return bool(urllib.request.getproxies().get(scheme)) and not urllib.request.proxy_bypass(host)


def check_resolves_public(host: str) -> None:
    """Every address ``host`` resolves to must be public (PrivateNetworkRefused otherwise)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return None  # the proxy reports the failed lookup
    for info in infos:
        if not is_public(info[4][0]):
            PublicOnlyResolver.refused.add(host.lower())
            raise PrivateNetworkRefused(f"{host} resolves to non-public address {info[4][0]}")
    return None


def resolver_setting() -> str:
    """The scrapy setting that installs a resolver: TWISTED_DNS_RESOLVER since scrapy 2.19
    (DNS_RESOLVER is deprecated there), DNS_RESOLVER before."""
    from scrapy.settings import default_settings

    return "TWISTED_DNS_RESOLVER" if hasattr(default_settings, "TWISTED_DNS_RESOLVER") else "DNS_RESOLVER"
