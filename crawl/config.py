"""The ``[crawl]`` table: a crawl spec, alone or inside a pipeline config."""

from __future__ import annotations

from dataclasses import dataclass

from webmill.settings import field


@dataclass
class CrawlConfig:
    seeds: list[str] = field([], "seed URLs, files of URLs (one a line), or sitemap URLs")
    allowed_domains: list[str] = field([], "hosts to stay within (default: the seeds' hosts)")
    max_depth: int = field(20, "link depth from the seeds", min=0)
    max_pages: int = field(100_000, "pages fetched in all (0 = no limit)", min=0)
    max_pages_per_host: int = field(0, "pages fetched per host (0 = no limit)", min=0)
    concurrency: int = field(16, "requests in flight per worker", min=1, max=1024)
    concurrency_per_host: int = field(8, "requests in flight per host", min=1, max=256)
    download_delay: float = field(0.0, "seconds between requests to one host", min=0)
    autothrottle: bool = field(False, "adapt the delay to the server's latency (scrapy AutoThrottle)")
    user_agent: str = field("webmill/0.1 (research crawler)", "User-Agent header")
    obey_robots: bool = field(True, "obey robots.txt")
    respect_opt_outs: bool = field(True, "honour X-Robots-Tag / meta robots noai, noindex, nofollow")
    max_response_bytes: int = field(10 << 20, "responses larger than this are dropped", min=1024)
    content_types: list[str] = field(["text/html", "application/xhtml+xml"], "content types stored")
    allow_private_networks: bool = field(False, "allow hosts on loopback/private/link-local addresses")
    private_hosts: list[str] = field(
        [], "IP:port pairs on private networks still allowed (an intranet server); every other private address stays refused"
    )
    recrawl_every: str | None = field(None, "recrawl period for schedules, e.g. '7d', '12h'")
    workers: int = field(1, "Ray tasks; hosts are split among them by hash", min=1, max=4096)
    timeout: float = field(30.0, "seconds per request", min=0.1)
    retries: int = field(2, "retries of 5xx and timeouts", min=0, max=20)
    max_redirects: int = field(10, "redirects followed per request", min=0, max=50)
    max_url_length: int = field(2048, "longer URLs are spider traps", min=64)
    max_repeated_segments: int = field(3, "a path segment repeated more often is a trap", min=1)
    max_query_params: int = field(8, "more query parameters is a trap", min=0)
    max_links_per_page: int = field(1000, "links taken from one page (the rest are counted, not queued)", min=1)
    max_queued_per_host: int = field(10_000, "requests waiting per host; links past it are counted, not queued", min=1)
    warc_max_bytes: int = field(1 << 30, "roll WARC files at this size", min=1 << 16)
