"""``webmill crawl …`` and ``webmill scheduler``: a user's first daily verb."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone

import click

from webmill.cli import finish, json_option, pass_ctx
from webmill.config import load_config
from webmill.settings import override
from webmill.shards import layout


def _spec(ctx, spec_file: str | None, **flags) -> dict:
    from webmill.crawl.run import spec_dict

    cfg = load_config(spec_file).crawl if spec_file else ctx.config.crawl
    cfg = override(cfg, section="crawl", **flags)
    return spec_dict(cfg, base_dir=os.path.dirname(os.path.abspath(spec_file)) if spec_file else None)


def network_policy(ctx, allow_private_networks: bool | None) -> dict:
    """What the process that runs a crawl allows: its own flag, else its own config's [crawl] table.
    A spec stored in the root (a queued job, a schedule, a crawl to resume) was written by whoever
    can write the root; it never opens private networks (a cloud's metadata endpoint, an intranet)
    to the machine that runs it."""
    cfg = ctx.config.crawl
    return {
        "allow_private_networks": bool(allow_private_networks or cfg.allow_private_networks),
        "private_hosts": list(cfg.private_hosts or []),
    }


def private_option(f):
    return click.option(
        "--allow-private-networks",
        is_flag=True,
        default=None,
        help="let the crawls this process runs reach loopback/private addresses (stored specs never can)",
    )(f)


def _when(ts) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _crawl_id(ctx, param, value):
    from webmill.names import check_name

    return check_name(value, "crawl id")


def execute(ctx, crawl_id: str, spec: dict, as_json: bool, catalog, report: bool = True, claim_from: tuple[str, ...] | None = None) -> dict:
    from webmill.crawl.run import CrawlCancelled
    from webmill.crawl.stage import CrawlStage
    from webmill.progress import Progress

    root = ctx.root()
    try:
        with Progress("crawling…", quiet=ctx.verbosity < 0) as progress:
            summary = CrawlStage(crawl_id, spec, catalog=catalog, claim_from=claim_from).run(root, ctx.ray, ctx.config, progress)
    except CrawlCancelled:
        raise click.ClickException(f"crawl {crawl_id} was cancelled") from None
    o = summary["outcomes"]
    lines = [
        f"crawl {crawl_id}: {summary['pages_stored']:,} pages stored of {summary['urls_attempted']:,} URLs "
        f"attempted in {summary['seconds']:.1f}s ({summary['pages_stored'] / max(summary['seconds'], 1e-9):.1f} pages/s)",
        "  outcomes: " + ", ".join(f"{k} {v:,}" for k, v in sorted(o.items(), key=lambda kv: -kv[1])),
        f"  WARC: {root.display(layout.crawl_warcs(crawl_id))} ({len(summary['warc_files'])} files)",
        f"  log:  {root.display(summary['log'])}",
    ]
    if report:
        finish(as_json, summary, lines)
    return summary


def _new_job(ctx, spec_file, state: str, **flags):
    """(catalog, crawl id, spec) of a job just added to the catalog."""
    from webmill.crawl.catalog import Catalog
    from webmill.crawl.warc import new_crawl_id

    spec = _spec(ctx, spec_file, **flags)
    catalog = Catalog.open(ctx.root())
    crawl_id = new_crawl_id()
    catalog.add_job(crawl_id, spec, state=state)
    return catalog, crawl_id, spec


def crawl_options(f):
    for opt in reversed(
        [
            click.option("--workers", type=int, default=None, help="Ray tasks (hosts are split among them)"),
            click.option("--max-pages", type=int, default=None),
            click.option("--max-depth", type=int, default=None),
            click.option(
                "--allow-private-networks",
                is_flag=True,
                default=None,
                help="allow hosts on loopback/private addresses (e.g. a site served on 127.0.0.1)",
            ),
        ]
    ):
        f = opt(f)
    return f


@click.group("crawl")
def crawl():
    """Schedule and run crawls: seeds → WARC files + a crawl log, in the corpus root."""


@crawl.command("run")
@click.argument("spec_file", required=False, type=click.Path(dir_okay=False))
@crawl_options
@json_option
@pass_ctx
def crawl_run(ctx, spec_file, workers, max_pages, max_depth, allow_private_networks, as_json):
    """Crawl now, in the foreground, with progress (SPEC_FILE: TOML with a [crawl] table)."""
    catalog, crawl_id, spec = _new_job(
        ctx, spec_file, "running", workers=workers, max_pages=max_pages, max_depth=max_depth, allow_private_networks=allow_private_networks
    )
    ctx.say(f"crawl {crawl_id}: {len(spec['seeds'])} seeds, {spec['workers']} worker(s)")
    execute(ctx, crawl_id, spec, as_json, catalog)


@crawl.command("resume")
@click.argument("crawl_id", callback=_crawl_id)
@private_option
@json_option
@pass_ctx
def crawl_resume(ctx, crawl_id, allow_private_networks, as_json):
    """Continue a crawl that was killed or failed: nothing stored is fetched again."""
    from webmill.crawl.catalog import Catalog

    catalog = Catalog.open(ctx.root())
    job = catalog.job(crawl_id)
    execute(ctx, crawl_id, {**job["spec"], **network_policy(ctx, allow_private_networks)}, as_json, catalog)


@crawl.command("submit")
@click.argument("spec_file", type=click.Path(dir_okay=False))
@crawl_options
@json_option
@pass_ctx
def crawl_submit(ctx, spec_file, workers, max_pages, max_depth, allow_private_networks, as_json):
    """Queue a crawl for the scheduler."""
    _, crawl_id, _ = _new_job(
        ctx, spec_file, "queued", workers=workers, max_pages=max_pages, max_depth=max_depth, allow_private_networks=allow_private_networks
    )
    finish(as_json, {"crawl_id": crawl_id, "state": "queued"}, [f"crawl {crawl_id}: queued"])


@crawl.command("schedule")
@click.argument("spec_file", type=click.Path(dir_okay=False))
@click.option("--every", default=None, help="period, e.g. 7d, 12h (default: [crawl] recrawl_every)")
@crawl_options
@json_option
@pass_ctx
def crawl_schedule(ctx, spec_file, every, workers, max_pages, max_depth, allow_private_networks, as_json):
    """Crawl SPEC_FILE now and then every period (the scheduler launches it)."""
    from webmill.crawl.catalog import Catalog, parse_period
    from webmill.errors import UserError

    spec = _spec(ctx, spec_file, workers=workers, max_pages=max_pages, max_depth=max_depth, allow_private_networks=allow_private_networks)
    period = every or spec.get("recrawl_every")
    if not period:
        raise UserError("crawl schedule: give --every or set [crawl] recrawl_every")
    seconds = parse_period(period)
    sid = Catalog.open(ctx.root()).add_schedule(spec, seconds)
    finish(as_json, {"schedule_id": sid, "every_s": seconds}, [f"schedule {sid}: every {period}, first run due now"])


@crawl.command("list")
@json_option
@pass_ctx
def crawl_list(ctx, as_json):
    """Crawl jobs and schedules."""
    from webmill.crawl.catalog import Catalog

    cat = Catalog.open(ctx.root(create=False))
    jobs, scheds = cat.jobs(), cat.schedules()
    lines = [f"{'id':28} {'state':10} {'created':20} {'stored':>8}"]
    lines += [f"{j['id']:28} {j['state']:10} {_when(j['created']):20} {j['counts'].get('stored', 0):>8,}" for j in jobs]
    lines += [
        f"schedule {s['id']}: every {s['every_s']:.0f}s, next due {_when(s['next_due'])}, seeds {s['spec']['seeds'][:3]}" for s in scheds
    ]
    finish(
        as_json,
        {
            "jobs": [{k: j[k] for k in ("id", "state", "created", "started", "ended", "counts")} for j in jobs],
            "schedules": [{k: s[k] for k in ("id", "every_s", "next_due")} for s in scheds],
        },
        lines,
    )


@crawl.command("status")
@click.argument("crawl_id", callback=_crawl_id)
@json_option
@pass_ctx
def crawl_status(ctx, crawl_id, as_json):
    """State, counts by outcome, start and end of one crawl."""
    from webmill.crawl.catalog import Catalog

    j = Catalog.open(ctx.root(create=False)).job(crawl_id)
    lines = [
        f"crawl {j['id']}: {j['state']}",
        f"  created {_when(j['created'])}, started {_when(j['started'])}, ended {_when(j['ended'])}",
        "  outcomes: " + (", ".join(f"{k} {v:,}" for k, v in j["counts"].items()) or "-"),
    ]
    if j.get("error"):
        lines.append(f"  error: {j['error']}")
    finish(as_json, {k: j[k] for k in ("id", "state", "created", "started", "ended", "counts", "error")}, lines)


@crawl.command("cancel")
@click.argument("crawl_id", callback=_crawl_id)
@json_option
@pass_ctx
def crawl_cancel(ctx, crawl_id, as_json):
    """Cancel a queued or running crawl."""
    from webmill.crawl.catalog import Catalog

    cat = Catalog.open(ctx.root(create=False))
    j = cat.job(crawl_id)
    if j["state"] in ("done", "failed", "cancelled"):
        finish(as_json, {"id": crawl_id, "state": j["state"]}, [f"crawl {crawl_id}: already {j['state']}"])
        return
    cat.set_state(crawl_id, "cancelled", ended=time.time())
    finish(as_json, {"id": crawl_id, "state": "cancelled"}, [f"crawl {crawl_id}: cancelled"])


@click.command("scheduler")
@click.option("--once", is_flag=True, help="run what is due, then exit (for cron)")
@click.option("--interval", type=float, default=30.0, show_default=True, help="seconds between checks")
@private_option
@json_option
@pass_ctx
def scheduler(ctx, once, interval, allow_private_networks, as_json):
    """Launch due and queued crawl jobs on the Ray cluster. The jobs' specs live in the root: their
    own allow_private_networks and private_hosts are ignored; this process's flag and config decide."""
    from webmill.crawl.catalog import Catalog
    from webmill.crawl.run import NotClaimed
    from webmill.crawl.warc import new_crawl_id
    from webmill.errors import first_line

    cat = Catalog.open(ctx.root())
    policy = network_policy(ctx, allow_private_networks)
    ran: list[dict] = []
    while True:
        now = time.time()
        for s in cat.due_schedules(now):
            cat.add_job(new_crawl_id(), s["spec"], state="queued", schedule_id=s["id"])
            cat.advance_schedule(s["id"], now)
        for j in cat.jobs("queued"):
            try:
                ctx.say(f"scheduler: starting crawl {j['id']}")
                summary = execute(ctx, j["id"], {**j["spec"], **policy}, False, cat, report=not as_json, claim_from=("queued",))
                ran.append({"id": j["id"], "state": "done", "pages_stored": summary["pages_stored"]})
            except NotClaimed:
                ctx.say(f"scheduler: crawl {j['id']} is no longer queued (cancelled, or started elsewhere); skipped")
            except click.ClickException as e:
                ran.append({"id": j["id"], "state": "cancelled", "error": e.message})
            except Exception as e:  # one failed job is logged and recorded; the scheduler goes on
                click.echo(f"scheduler: crawl {j['id']} failed: {first_line(e)}", err=True)
                ran.append({"id": j["id"], "state": "failed", "error": first_line(e)})
        if once:
            break
        time.sleep(interval)
    finish(as_json, {"ran": ran}, [f"scheduler: ran {len(ran)} crawl(s)"])
