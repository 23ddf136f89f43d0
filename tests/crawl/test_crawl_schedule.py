"""Scheduling: submit, schedule, the scheduler, list/status/cancel, incremental recrawls; workers by host."""

from faultserver import fault_server
from helpers import crawl_log, last_json, webmill, write_spec
from sites import SMALL_SITE, real_site

from webmill.crawl.worker import owner_of


def test_submit_scheduler_once_and_recrawl_is_conditional(site, tmp_path):
    root = tmp_path / "root"
    spec = write_spec(tmp_path / "spec.toml", seeds=[site.url(f"{SMALL_SITE[0]}/{SMALL_SITE[1][0]}")], allow_private_networks=True)
    queued = last_json(webmill("--root", root, "crawl", "submit", spec, "--json"))
    assert queued["state"] == "queued"
    ran = last_json(webmill("--root", root, "scheduler", "--once", "--allow-private-networks", "--json"))["ran"]
    assert [r["id"] for r in ran] == [queued["crawl_id"]] and ran[0]["pages_stored"] > 50
    first = last_json(webmill("--root", root, "crawl", "status", queued["crawl_id"], "--json"))
    assert first["state"] == "done" and first["counts"]["stored"] == ran[0]["pages_stored"]

    sched = last_json(webmill("--root", root, "crawl", "schedule", spec, "--every", "7d", "--json"))
    assert sched["every_s"] == 7 * 86400
    ran = last_json(webmill("--root", root, "scheduler", "--once", "--allow-private-networks", "--json"))["ran"]
    assert len(ran) == 1  # due now; the next run is a week away
    assert last_json(webmill("--root", root, "scheduler", "--once", "--allow-private-networks", "--json"))["ran"] == []
    # the recrawl asked with If-Modified-Since: unchanged pages are 304s, logged and not stored again
    log = crawl_log(root, ran[0]["id"])
    outcomes = {r["outcome"] for r in log}
    assert "not_modified" in outcomes and ran[0]["pages_stored"] == 0
    listing = last_json(webmill("--root", root, "crawl", "list", "--json"))
    assert len(listing["jobs"]) == 2 and len(listing["schedules"]) == 1


def test_cancel_a_queued_crawl(tmp_path, fault_site):
    root = tmp_path / "root"
    spec = write_spec(tmp_path / "spec.toml", seeds=[fault_site.url("index.html")], allow_private_networks=True)
    job = last_json(webmill("--root", root, "crawl", "submit", spec, "--json"))
    assert last_json(webmill("--root", root, "crawl", "cancel", job["crawl_id"], "--json"))["state"] == "cancelled"
    assert last_json(webmill("--root", root, "scheduler", "--once", "--allow-private-networks", "--json"))["ran"] == []
    out = webmill("--root", root, "crawl", "status", "no-such-id", check=False)
    assert out.returncode == 2 and "no such crawl" in out.stderr


def test_hosts_split_over_ray_workers_with_handoffs(tmp_path):
    # two hosts of over 50 pages each: the manual's versions 11 and 12, or the offline reference topics twice
    folder = real_site("libstdcxx-manual")
    first, second = (folder / "11", folder / "12") if (folder / "11").is_dir() else (real_site("sqlite-3"),) * 2
    with fault_server(first) as a, fault_server(second) as b:
        hosts = [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"]
        if owner_of(hosts[0], 2) == owner_of(hosts[1], 2):
            b2 = fault_server(second).start()  # find a port whose host lands on the other worker
            for _ in range(50):
                if owner_of(f"127.0.0.1:{b2.port}", 2) != owner_of(hosts[0], 2):
                    break
                b2.stop()
                b2 = fault_server(second).start()
            b.stop()
            b = b2
            hosts[1] = f"127.0.0.1:{b.port}"
        # only host A is seeded; host B is reached through a link, handed to its owner
        spec = write_spec(
            tmp_path / "spec.toml",
            seeds=[a.url("index.html"), a.url(f"_fault/link-to?u={b.url('index.html')}")],
            allowed_domains=hosts,
            allow_private_networks=True,
            workers=2,
        )
        summary = last_json(webmill("--root", tmp_path / "root", "crawl", "run", spec, "--json"))
        b.stop()
    assert summary["rounds"] == 2 and summary["workers"] == 2
    log = [r for r in crawl_log(tmp_path / "root", summary["crawl_id"]) if r["outcome"] == "stored"]
    by_host = {}
    for r in log:
        by_host.setdefault(r["host"], set()).add(r["worker"])
    assert set(by_host) == set(hosts)
    assert all(len(w) == 1 for w in by_host.values()), "each host is crawled by exactly one worker"
    assert by_host[hosts[0]] != by_host[hosts[1]]
    assert sum(r["host"] == hosts[1] for r in log) > 50
