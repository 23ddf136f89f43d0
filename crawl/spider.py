"""The scrapy spider: follow links within the allowed hosts, record every outcome.

Scrapy does the fetching, robots.txt (protego), retries, redirects, size caps,
depth limits and politeness; this spider adds what scrapy lacks: canonical URLs,
host ownership (one worker per host), trap guards, robots opt-outs (noindex, noai,
nofollow), content-type filtering and the per-URL outcome each fetch gets.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable
from urllib.parse import urljoin, urlsplit

import scrapy
from scrapy.exceptions import CloseSpider, IgnoreRequest
from w3lib.url import canonicalize_url

from webmill.crawl.safety import PrivateNetworkRefused, PublicOnlyResolver
from webmill.crawl.traps import TrapGuard

# applied to one bounded <meta ...> tag at a time (see meta_tags): page content never meets a
# pattern that can backtrack across the page
_ROBOTS_NAME = re.compile(rb"name\s*=\s*[\"']?(?:robots|webmill|ai)(?:[\"'\s/>]|$)", re.I)
_CONTENT = re.compile(rb"content\s*=\s*[\"']([^\"']*)[\"']", re.I)
_META_OPEN = re.compile(rb"<meta[\s/]", re.I)
MAX_TAG = 4096


def canonical(url: str) -> str:
    return canonicalize_url(url, keep_fragments=False)


def host_of(url: str) -> str:
    return (urlsplit(url).netloc or "").lower()


def robots_directives(headers: list[tuple[str, str]], body: bytes) -> set[str]:
    """noindex / nofollow / noai / none from X-Robots-Tag and <meta name=robots>."""
    found: set[str] = set()
    for k, v in headers:
        if k.lower() == "x-robots-tag":
            found.update(t.strip().lower() for t in v.split(":")[-1].split(","))
    for tag in meta_tags(body[:200_000]):
        c = _CONTENT.search(tag) if _ROBOTS_NAME.search(tag) else None
        if c:
            found.update(t.strip().lower() for t in c.group(1).decode("ascii", "ignore").split(","))
    if "none" in found:
        found.update({"noindex", "nofollow"})
    return found


def meta_tags(body: bytes):
    """Each ``<meta ...>`` tag of a page, in one left-to-right pass: a tag ends at the next
    '>', tags longer than MAX_TAG are skipped, and the scan resumes after each tag's end."""
    pos = 0
    while True:
        m = _META_OPEN.search(body, pos)
        if m is None:
            return
        end = body.find(b">", m.end())
        if end == -1:
            return  # no tag after this one can close either
        if end - m.start() <= MAX_TAG:
            yield body[m.start() : end + 1]
        pos = end + 1


class SiteSpider(scrapy.Spider):
    name = "webmill"

    def __init__(
        self,
        *,
        job: dict,
        owns: Callable[[str], bool],
        record: "Callable[[dict], None]",
        start: Iterable[dict],
        seen: set[str],
        stored_count: dict[str, int],
        open_blob=None,
        **kw,
    ):
        super().__init__(**kw)
        spec = job["spec"]
        self.job = job
        self.spec = spec
        self.owns = owns
        self.record = record
        self.start_points = list(start)
        self.seen = seen
        self.allowed = {h.lower() for h in job["allowed_hosts"]}
        self.allowed_domains = sorted({h.split(":")[0] for h in self.allowed})
        self.content_types = [c.lower() for c in spec["content_types"]]
        self.respect_opt_outs = spec["respect_opt_outs"]
        self.max_pages = job["page_budget"]
        self.max_per_host = spec["max_pages_per_host"]
        self.stored_count = stored_count
        self.stored_total = sum(stored_count.values())
        self.conditional = job.get("conditional", {})
        self.open_blob = open_blob or (lambda path: open(path, "rb"))
        self.max_links = spec.get("max_links_per_page", 1000)
        self.max_queued = spec.get("max_queued_per_host", 10_000)
        self.pending: dict[str, int] = {}  # requests queued or in flight, per host
        self.pending_total = 0
        self.links_dropped = 0  # past max_links_per_page or max_queued_per_host: counted, never queued
        self.traps = TrapGuard(spec["max_url_length"], spec["max_repeated_segments"], spec["max_query_params"])

    # requests -------------------------------------------------------------
    def _request(self, url: str, depth: int, referrer: str | None) -> scrapy.Request:
        headers = {}
        if referrer:
            headers["Referer"] = referrer
        cond = self.conditional.get(url)
        if cond:
            if cond.get("etag"):
                headers["If-None-Match"] = cond["etag"]
            if cond.get("last_modified"):
                headers["If-Modified-Since"] = cond["last_modified"]
        return scrapy.Request(
            url,
            callback=self.parse,
            errback=self.failed,
            headers=headers,
            meta={"depth": depth, "wm_url": url, "wm_referrer": referrer, "wm_pending": True},
            dont_filter=True,
        )

    async def start(self):  # scrapy >= 2.13
        for item in self.start_requests():
            yield item

    def start_requests(self):
        for s in self.start_points:
            req = self._consider(s["url"], s.get("depth", 0), s.get("referrer"))
            if isinstance(req, scrapy.Request):
                yield req

    def _consider(self, url: str, depth: int, referrer: str | None):
        """A request for a link, or None after recording why it is not fetched."""
        if not url.lower().startswith(("http://", "https://")):
            return None
        url = canonical(url)
        if url in self.seen:
            return None
        host = host_of(url)
        if host not in self.allowed:
            return None  # outside the crawl: never requested, not logged
        if not self.owns(host):
            self.seen.add(url)
            self.record({"kind": "handoff", "url": url, "depth": depth, "referrer": referrer})
            return None
        self.seen.add(url)
        if depth > self.spec["max_depth"]:
            self.seen.discard(url)
            return None
        trap = self.traps.check(url)
        if trap:
            self.record({"kind": "event", "url": url, "depth": depth, "referrer": referrer, "outcome": trap})
            return None
        # requests count against the page budget: no more are queued than could still be stored
        if self.max_pages and self.stored_total + self.pending_total >= self.max_pages:
            self.seen.discard(url)
            return None
        if self.max_per_host and self.stored_count.get(host, 0) >= self.max_per_host:
            self.record({"kind": "event", "url": url, "depth": depth, "referrer": referrer, "outcome": "host_budget"})
            return None
        if self.pending.get(host, 0) >= self.max_queued:
            self.seen.discard(url)
            self.links_dropped += 1
            return None
        self.pending[host] = self.pending.get(host, 0) + 1
        self.pending_total += 1
        return self._request(url, depth, referrer)

    def _answered(self, meta: dict) -> None:
        """A request got its response or its failure: it no longer waits in the queue."""
        if meta.pop("wm_pending", None):
            host = host_of(meta["wm_url"])
            self.pending[host] = max(0, self.pending.get(host, 0) - 1)
            self.pending_total = max(0, self.pending_total - 1)

    # responses ------------------------------------------------------------
    def parse(self, response):
        meta = response.meta
        self._answered(meta)
        url, depth, referrer = meta["wm_url"], meta.get("depth", 0), meta.get("wm_referrer")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, vs in response.headers.items() for v in vs]
        ctype = (response.headers.get(b"Content-Type") or b"").decode("latin-1")
        base = {
            "url": url,
            "final_url": response.url,
            "depth": depth,
            "referrer": referrer,
            "status": response.status,
            "bytes": len(response.body),
            "content_type": ctype,
            "etag": (response.headers.get(b"ETag") or b"").decode("latin-1") or None,
            "last_modified": (response.headers.get(b"Last-Modified") or b"").decode("latin-1") or None,
        }
        if response.status == 304:
            self.record({"kind": "event", **base, "outcome": "not_modified"})
            # unchanged since the last crawl: follow the links of the copy stored then
            yield from self._follow(previous_links(self.conditional.get(url), self.open_blob), depth, url)
            return
        if _is_sitemap(url, ctype, response.body):
            self.record({"kind": "event", **base, "outcome": "sitemap"})
            yield from self._follow(sitemap_urls(response.body), depth - 1, url)
            return
        if response.status >= 400:
            self.record({"kind": "event", **base, "outcome": "http_error"})
            return
        if not any(ctype.lower().startswith(c) for c in self.content_types):
            self.record({"kind": "event", **base, "outcome": "content_type"})
            return
        if self.max_pages and self.stored_total >= self.max_pages:
            self.record({"kind": "event", **base, "outcome": "page_budget"})
            raise CloseSpider("max_pages reached")
        directives = robots_directives(headers, response.body) if self.respect_opt_outs else set()
        if "noai" in directives or "noindex" in directives:
            self.record({"kind": "event", **base, "outcome": "opt_out_" + ("noai" if "noai" in directives else "noindex")})
        else:
            host = host_of(url)
            self.stored_count[host] = self.stored_count.get(host, 0) + 1
            self.stored_total += 1
            self.record({"kind": "stored", **base, "response": response, "headers": headers})
        if "nofollow" in directives:
            return
        final = canonical(response.url)
        if final != url and host_of(final) in self.allowed:
            self.seen.add(final)  # a redirect target is fetched once
        hrefs = response.xpath("//a/@href").getall()
        if len(hrefs) > self.max_links:
            self.links_dropped += len(hrefs) - self.max_links
            hrefs = hrefs[: self.max_links]
        yield from self._follow((urljoin(response.url, h.strip()) for h in hrefs), depth, url)

    def _follow(self, links, depth: int, referrer: str):
        for link in links:
            req = self._consider(link, depth + 1, referrer)
            if req is not None:
                yield req

    def closed(self, reason):
        if self.links_dropped and hasattr(self.record, "count"):
            self.record.count("links_dropped", self.links_dropped)

    def failed(self, failure):
        request = failure.request
        meta = request.meta
        if "wm_url" in meta:
            self._answered(meta)
        base = {"url": meta.get("wm_url", request.url), "depth": meta.get("depth", 0), "referrer": meta.get("wm_referrer")}
        self.record({"kind": "event", **base, "outcome": classify_failure(failure), "error": _short(failure.value)})


def _is_sitemap(url: str, ctype: str, body: bytes) -> bool:
    head = body[:1000].lstrip()
    return ("xml" in ctype.lower() or url.endswith(".xml")) and (b"<urlset" in head or b"<sitemapindex" in head)


def sitemap_urls(body: bytes) -> list[str]:
    from scrapy.utils.sitemap import Sitemap

    try:
        return [entry["loc"] for entry in Sitemap(body) if entry.get("loc")]
    except Exception:
        return []


def previous_links(cond: dict | None, open_blob) -> list[str]:
    """Links of the copy of a page stored by the previous crawl (for a 304); ``open_blob(path)``
    opens that crawl's WARC file (root-relative) for reading."""
    if not cond or not cond.get("warc"):
        return []
    import lxml.html
    from warcio.archiveiterator import ArchiveIterator

    try:
        with open_blob(cond["warc"]) as f:
            f.seek(cond["offset"])
            record = next(iter(ArchiveIterator(f)))
            base = record.rec_headers.get_header("WARC-Target-URI")
            tree = lxml.html.fromstring(record.content_stream().read())
        return [urljoin(base, h.strip()) for h in tree.xpath("//a/@href")]
    except Exception:
        return []


_KINDS = {  # scrapy >= 2.19 raises its own exception types; older ones raise Twisted's
    "DownloadTimeoutError": "timeout",
    "TimeoutError": "timeout",
    "TCPTimedOutError": "timeout",
    "DownloadConnectionRefusedError": "connection_refused",
    "ConnectionRefusedError": "connection_refused",
    "CannotResolveHostError": "dns",
    "DNSLookupError": "dns",
    "ResponseDataLossError": "connection_dropped",
    "ResponseFailed": "connection_dropped",
    "ResponseNeverReceived": "connection_dropped",
    "ConnectionLost": "connection_dropped",
    "ConnectionDone": "connection_dropped",
    "DownloadFailedError": "connection_dropped",
    "UnsupportedURLSchemeError": "scheme",
}


def classify_failure(failure) -> str:
    """The outcome of a request that got no usable response."""
    err = failure.value
    text = f"{type(err).__name__} {err}".lower()
    if isinstance(err, PrivateNetworkRefused) or "non-public address" in text:
        return "private_network"
    if "max size" in text or "maxsize" in text:  # scrapy ignores a body inflating past it (a gzip bomb)
        return "too_large"
    if isinstance(err, IgnoreRequest):
        if "robots.txt" in text:
            return "robots"
        if "redirect" in text:
            return "redirect_loop"
        if "scheme" in text:
            return "scheme"
        return "ignored"
    kind = next((_KINDS[c.__name__] for c in type(err).__mro__ if c.__name__ in _KINDS), None)
    if kind == "dns" and (urlsplit(failure.request.url).hostname or "").lower() in PublicOnlyResolver.refused:
        return "private_network"
    if kind:
        return kind
    if "took longer than" in text or "timed out" in text:
        return "timeout"
    return "error"


def _short(e) -> str:
    s = str(e) or type(e).__name__
    return s.splitlines()[0][:300]
