"""The crawl as a pipeline stage (``webmill.stage``): seeds → WARC files and a log of every URL tried."""

from __future__ import annotations

from webmill.config import Config
from webmill.errors import UserError
from webmill.progress import Progress
from webmill.shards import layout
from webmill.shards.root import CorpusRoot
from webmill.stage import Chain, RayFn


def crawl_progress_line(p: dict, elapsed: float) -> str:
    """The live line of a crawl: pages stored and their rate, bytes, URLs not stored."""
    c = p["counts"]
    stored = c.get("stored", 0)
    errors = sum(v for k, v in c.items() if k not in ("stored", "handoff", "not_modified", "sitemap"))
    return (
        f"crawl: {stored:,} pages stored, {stored / max(elapsed, 1e-9):,.1f} pages/s, "
        f"{p['bytes'] / 1e6:,.1f} MB, {errors:,} not stored, {elapsed:,.0f}s"
    )


class CrawlStage:
    """Crawl ``spec`` as job ``crawl_id`` of the root's catalog; with no spec, ``crawl_id`` names a
    crawl already in the root, which the stages after it read as it is."""

    name = "crawl"

    def __init__(self, crawl_id: str, spec: dict | None, *, catalog=None, claim_from: tuple[str, ...] | None = None):
        self.crawl_id, self.spec, self.catalog, self.claim_from = crawl_id, spec, catalog, claim_from

    @classmethod
    def following(cls, chain: Chain) -> CrawlStage:
        if chain.config.run.crawl:
            return cls(chain.config.run.crawl, None)
        if not chain.crawl_spec or not chain.crawl_spec.get("seeds"):
            raise UserError("[crawl] seeds is empty: nothing to crawl (or set [run] crawl to an existing crawl id)")
        return cls("run-" + chain.fingerprint(cls.name, chain.crawl_spec)[:12], chain.crawl_spec)

    def settings(self, config: Config) -> dict:
        return self.spec or {"existing": self.crawl_id}

    def reads(self) -> list[str]:
        return list(self.spec["seeds"]) if self.spec else [layout.crawl_warcs(self.crawl_id)]

    def writes(self, summary: dict) -> list[str]:
        if summary.get("existing"):
            return [layout.crawl_warcs(summary["crawl_id"])]
        return [f"{layout.crawl_log(summary['crawl_id'])}/_manifest.json"]

    def run(self, root: CorpusRoot, ray: RayFn, config: Config, progress: Progress) -> dict:
        if self.spec is None:
            if not root.is_dir(layout.crawl_warcs(self.crawl_id)):
                raise UserError(f"[run] crawl = {self.crawl_id!r}: no such crawl in {root.display(layout.CRAWL)}")
            return {"crawl_id": self.crawl_id, "existing": True, "pages_stored": None}
        from webmill.crawl.catalog import Catalog
        from webmill.crawl.run import run_catalogued

        catalog = self.catalog or Catalog.open(root)
        if self.catalog is None:  # webmill run's own job: recorded in the catalog on first run
            try:
                catalog.job(self.crawl_id)
            except UserError:
                catalog.add_job(self.crawl_id, self.spec, state="running")

        def show(p: dict, elapsed: float) -> None:
            progress.update(crawl_progress_line(p, elapsed))

        return run_catalogued(root, ray(), self.crawl_id, self.spec, catalog, on_progress=show, claim_from=self.claim_from)

    def brief(self, s: dict) -> str:
        return f"crawl {s['crawl_id']}" + ("" if s.get("existing") else f": {s['pages_stored']:,} pages stored")
