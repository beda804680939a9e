"""Idle daemon footprint and Version round-trip latency.

For each runtime, one after the other in the same run, through the same
Python client: start the daemon on private dirs, make a few Version calls
to warm up, stay idle ~2 s, read RSS / RssAnon / PSS of the daemon
process, then time 10,000 sequential Version calls on one channel.
"""

import time

import benchlib

TITLE = "daemon: idle memory and Version latency"

WARMUP_CALLS = 5
IDLE_SECONDS = 2.0
LATENCY_CALLS = 10000
LATENCY_WARMUP = 200  # untimed calls right before the timed ones


def measure(name):
    api_pb2, _ = benchlib.cri_stubs()
    with benchlib.start_runtime(name, log_level="info") as d:
        stub = d.runtime_stub()
        req = api_pb2.VersionRequest(version="v1")
        for _ in range(WARMUP_CALLS):
            stub.Version(req, timeout=benchlib.RPC_TIMEOUT)
        time.sleep(IDLE_SECONDS)
        mem = benchlib.memory(d.pid)

        for _ in range(LATENCY_WARMUP):
            stub.Version(req, timeout=benchlib.RPC_TIMEOUT)
        samples = benchlib.time_calls(lambda: stub.Version(req, timeout=benchlib.RPC_TIMEOUT),
                                      LATENCY_CALLS)
        lat = benchlib.summarize_ns(samples)
        after = benchlib.memory(d.pid)
        version = stub.Version(req, timeout=benchlib.RPC_TIMEOUT)
    return {"mem": mem, "lat": lat, "after": after,
            "version": "%s %s" % (version.runtime_name, version.runtime_version)}


def run():
    table = benchlib.Table(TITLE, ["runtime", "RSS MB", "RssAnon MB", "PSS MB",
                                   "Version p50 ms", "p99 ms"])
    failures = []
    details = []
    for name in benchlib.runtime_names():
        try:
            r = measure(name)
        except Exception as e:  # noqa: BLE001 - report, continue with the others
            failures.append("%s: %s" % (name, e))
            table.add_row(name, "-", "-", "-", "-", "-")
            continue
        m, lat = r["mem"], r["lat"]

        def mb(v):
            return None if v is None else v / benchlib.MB

        table.add_row(name, mb(m["rss"]), mb(m["rss_anon"]), mb(m["pss"]),
                      benchlib.fmt(lat.get("p50"), 3), benchlib.fmt(lat.get("p99"), 3))
        details.append("%s: %s, %s threads idle; after %d calls RSS %.2f MB, anon %.2f MB; "
                       "latency mean %.3f ms, max %.3f ms"
                       % (name, r["version"], m["threads"], lat["n"], mb(r["after"]["rss"]),
                          mb(r["after"]["rss_anon"]), lat["mean"], lat["max"]))
    table.note("memory: daemon process only, after %d Version calls and %.0f s idle; "
               "latency: %d sequential Version calls on one channel (Python grpcio client)"
               % (WARMUP_CALLS, IDLE_SECONDS, LATENCY_CALLS))
    table.note("targets (issue): crid idle RSS <= 15 MB, RssAnon <= 4 MB")
    table.close(details, failures=failures)
    return table
