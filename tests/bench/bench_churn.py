"""Memory under churn: the daemon's RSS and RssAnon after each of 20 bursts
of 30 pods, each pod with one container.

Same isolation as bench_container.py, whose ContainerWorld this reuses
(daemon in its own network namespace, bridge conflist, run state on a
tmpfs, cgroup parent of its own, the busybox image imported, nothing
pulled), for each runtime (crid, containerd's CRI plugin) one after the
other in the same run, through the same Python client.

For one OCI runtime handler (BENCH_CHURN_HANDLERS, default "crun"), 20
bursts (BENCH_CHURN_BURSTS) of 30 pods (BENCH_CHURN_PODS); a burst is:
  - 30 threads released at once, each RunPodSandbox, CreateContainer (the
    sleeper of bench_container.py: CreateContainer reads the image's
    /etc/passwd and /etc/group) and StartContainer;
  - every pod checked READY;
  - 30 threads at once, each StopPodSandbox + RemovePodSandbox (which
    stops and removes its container);
  - a bounded wait until no pod process, veth or lease is left, 1 s of
    rest (BENCH_CHURN_SETTLE), then the daemon's VmRSS, RssAnon and
    threads from /proc/PID/status.
Then 10 s without calls (BENCH_CHURN_IDLE) and one more reading: what the
daemon keeps once idle.  A daemon whose memory is flat under churn shows
the same figures from the 2nd burst on (the 1st pays for first-use
caches).
"""

import os
import time

import benchlib
import bench_container
import bench_sandbox

TITLE = "churn: daemon memory after each burst of pods with a container"

BURSTS = int(os.environ.get("BENCH_CHURN_BURSTS", "20"))
PODS = int(os.environ.get("BENCH_CHURN_PODS", "30"))
SETTLE_SECONDS = float(os.environ.get("BENCH_CHURN_SETTLE", "1"))
IDLE_SECONDS = float(os.environ.get("BENCH_CHURN_IDLE", "10"))
TARGET_GROWTH_MB = 1.0  # the last burst within this of the 2nd


def handlers():
    return bench_sandbox.handlers_from_env("BENCH_CHURN_HANDLERS", "crun")


def mb(v):
    return None if v is None else v / benchlib.MB


def pod_up(world, handler, name):
    """RunPodSandbox + CreateContainer + StartContainer; returns the pod id."""
    config = world.pod_config(name)
    sid = world.run_pod(config, handler)
    cid = world.create(sid, config, world.container_config("c", bench_container.SLEEPER))
    world.start_container(cid)
    return sid


def burst(world, handler, index):
    names = ["churn-%s-%d-%d" % (handler, index, i) for i in range(PODS)]
    wall_up, results = bench_sandbox.concurrently(lambda n: pod_up(world, handler, n), names)
    ids = [res for _, res, err in results if err is None and res]
    errors = [str(err) for _, _, err in results if err is not None]
    if errors:
        world.notes.append("%s/%s burst %d: %d of %d pods failed, first: %s"
                           % (world.name, handler, index, len(errors), PODS, errors[0][:300]))
    world.check_pods(ids, handler, "burst %d" % index)
    wall_down, results = bench_sandbox.concurrently(world.stop_remove, world.list_ids())
    errors = [str(err) for _, _, err in results if err is not None]
    if errors:
        world.notes.append("%s/%s burst %d: %d Stop+Remove failed, first: %s"
                           % (world.name, handler, index, len(errors), errors[0][:300]))
    world.wait_pods_gone(handler, "burst %d" % index)
    time.sleep(SETTLE_SECONDS)
    m = benchlib.memory(world.daemon.pid)
    m.update(ok=len(ids), up=wall_up / 1e9, down=wall_down / 1e9)
    return m


def measure(world, handler):
    r = {"handler": handler, "bursts": []}
    r["start"] = benchlib.memory(world.daemon.pid)
    for i in range(1, BURSTS + 1):
        r["bursts"].append(burst(world, handler, i))
    time.sleep(IDLE_SECONDS)
    r["idle"] = benchlib.memory(world.daemon.pid)
    return r


def run():
    table = benchlib.Table("churn: daemon memory after each burst of %d pods (1 container "
                           "each, all at once) and their removal" % PODS,
                           ["runtime", "handler", "burst", "ok", "up s", "down s", "RSS MB",
                            "RssAnon MB", "threads"])
    failures, notes, details = [], [], []
    image = bench_container.busybox_image()
    for name, results in bench_sandbox.each_runtime(
            lambda name, index: bench_container.ContainerWorld(name, index, image), handlers(),
            measure, failures, notes, details):
        for r in results:
            h = r["handler"]
            if not r.get("bursts"):
                table.add_row(name, h, "-", "-", "-", "-", "-", "-", "-")
                continue
            s = r["start"]
            table.add_row(name, h, "start", "-", "-", "-", mb(s["rss"]), mb(s["rss_anon"]),
                          str(s["threads"]))
            for i, m in enumerate(r["bursts"], start=1):
                table.add_row(name, h, str(i), "%d/%d" % (m["ok"], PODS),
                              benchlib.fmt(m["up"], 2), benchlib.fmt(m["down"], 2),
                              mb(m["rss"]), mb(m["rss_anon"]), str(m["threads"]))
            idle = r["idle"]
            table.add_row(name, h, "idle", "-", "-", "-", mb(idle["rss"]), mb(idle["rss_anon"]),
                          str(idle["threads"]))
            b = r["bursts"]
            if len(b) >= 2:
                table.note("%s/%s: burst %d - burst 2: RSS %+.2f MB, RssAnon %+.2f MB"
                           % (name, h, len(b), mb(b[-1]["rss"] - b[1]["rss"]),
                              mb(b[-1]["rss_anon"] - b[1]["rss_anon"])))
    table.note("target (issue): crid's figures after the last burst within %.0f MB of the "
               "2nd's; read %.0f s after each burst's pods were gone, 'idle' %.0f s after "
               "the last" % (TARGET_GROWTH_MB, SETTLE_SECONDS, IDLE_SECONDS))
    for d in details + notes:
        table.note(d)
    for f in failures:
        table.fail(f)
    return table
