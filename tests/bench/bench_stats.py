"""Stats: ListContainerStats and ListPodSandboxStats latency with 100
running containers, the daemon's CPU time while polled once a second,
and the memory a GetContainerEvents subscriber costs, crid against
containerd's CRI plugin.

Same isolation as bench_container.py, whose ContainerWorld this reuses
(and with it bench_sandbox.py's PodWorld): for each runtime, one after the
other in the same run, a fresh network namespace with the daemon inside
it, the bridge conflist, run state on a tmpfs, the busybox image built
from busybox-static and imported, the daemon stopped by pid and whatever
its temp dir left killed, unmounted and removed.  Each pod gets a cgroup
parent of its own below the world's (/crid-bench-<hex>/podN), as the
kubelet gives every pod its pod cgroup: both runtimes read a pod's own
numbers (ListPodSandboxStats) from there.

With the handler BENCH_STATS_HANDLERS (default "crun"):
  1. set-up: BENCH_STATS_CONTAINERS (100) containers, 10 per pod (so 10
     pods), each `sh -c "trap 'exit 0' TERM; sleep 3600 & wait"`
     (bench_container.SLEEPER), created and started in sequence and
     checked RUNNING; then 2 untimed calls of each list (CPU samples
     exist, first-use allocations are done) and a check of what the lists
     hold (every container with CPU and memory numbers, usage_nano_cores,
     working set, writable layer; every pod with its containers);
  2. cold latency: BENCH_STATS_COLD_CALLS (8) calls of each list,
     ListContainerStats, ListPodSandboxStats and Version in turn, every
     call COLD_GAP (1.2) seconds after the end of the one before: the
     kubelet polls every 10-15 s, so whatever a runtime keeps from one
     call to the next for a second or less does not help it.  (crid
     serves the readings its background collector takes every collection
     period, 10 s, and reads at the call only what is older: this is what
     a kubelet gets from it.  containerd reads every cgroup at each call
     through the pods' shims.)  Version, which does nothing, is the floor
     of a call after a pause: on this VM an idle vCPU takes milliseconds
     to wake, which every cold figure includes, more so when the machine
     is otherwise idle;
  3. back-to-back latency: BENCH_STATS_WARM_CALLS (100) calls of
     ListContainerStats in a row (or as many as fit in 5 s), then as
     many of ListPodSandboxStats (what a second client polling at the
     same time, or a scrape right after the kubelet, costs);
  4. idle CPU: the daemon's CPU time (utime + stime of /proc/PID/stat)
     over BENCH_STATS_IDLE_SECONDS (10) without any call (crid's stats
     collector runs in the background every 10 s);
  5. polled CPU: ListContainerStats once a second (on a fixed 1 s grid)
     for BENCH_STATS_CPU_SECONDS (60) seconds; the daemon's CPU time over
     that minute as % of one core, the latency of those calls, and the
     CPU of the per-pod processes (crid: every crid-conmon; containerd:
     the containerd-shim-runc-v2 of each pod, which reads the cgroups for
     containerd: its share of the work is there);
  6. events subscribers: BENCH_STATS_SUBSCRIBERS (50) GetContainerEvents
     calls opened and read on a thread each, first all on one shared
     channel (streams of one HTTP/2 connection, as several watchers in
     one client), then each on a channel of its own (separate
     connections, as separate clients: `crictl events`, agents); an
     event is caused (a container created and started in the first pod)
     and every subscriber must receive it; the daemon's RSS, threads and
     fds are read before, with them all open (1 s after the event) and
     1 s after they were cancelled; per subscriber = (open - before) / N.

Afterwards the containers and pods are removed and checked gone.  Calls
are timed in this Python client (one shared gRPC channel, the default 16
MiB message limit raised as benchlib does), so its cost is in every
figure, the same for both runtimes.  Nothing is asserted: the tables
print what was measured, a note says how busy the machine was.
"""

import math
import os
import secrets
import threading
import time

import benchlib
import bench_container
import bench_sandbox

TITLE = "stats: List{Container,PodSandbox}Stats latency, CPU while polled, memory per events subscriber"

CONTAINERS = benchlib.env_int("BENCH_STATS_CONTAINERS", 100, 1)
PER_POD = 10
PODS = int(math.ceil(CONTAINERS / float(PER_POD)))
COLD_CALLS = benchlib.env_int("BENCH_STATS_COLD_CALLS", 8, 1)
COLD_GAP = 1.2  # seconds between the end of a cold call and the start of the next
WARM_CALLS = benchlib.env_int("BENCH_STATS_WARM_CALLS", 100, 1)
WARM_MAX_SECONDS = 5.0  # per list: containerd's ListPodSandboxStats takes ~0.8 s a call
WARMUP_CALLS = 2
IDLE_SECONDS = benchlib.env_int("BENCH_STATS_IDLE_SECONDS", 10, 0)
CPU_SECONDS = benchlib.env_int("BENCH_STATS_CPU_SECONDS", 60, 1)
POLL_PERIOD = 1.0
SUBSCRIBERS = benchlib.env_int("BENCH_STATS_SUBSCRIBERS", 50, 0)
SETTLE_SECONDS = 1.0  # before a memory reading
EVENT_TIMEOUT = 10.0  # seconds for every subscriber to receive the event
STATS_TIMEOUT = 30.0  # seconds for one list call
SLEEPER = bench_container.SLEEPER

TARGET_LIST_P50_MS = 5.0
TARGET_CPU_PERCENT = 1.0

KIB = 1024.0


def handlers():
    return bench_sandbox.handlers_from_env("BENCH_STATS_HANDLERS", "crun")


# ------------------------------------------------------------------ world


class StatsWorld(bench_container.ContainerWorld):
    """A ContainerWorld whose pods each get a cgroup parent of their own
    below the world's (removed with it), and the stats calls."""

    def pod_config(self, name, index=0):
        config = super().pod_config(name)
        config.linux.cgroup_parent = "%s/pod%d" % (self.cgroup_parent, index)
        return config

    def list_container_stats(self):
        return self.stub().ListContainerStats(self.api.ListContainerStatsRequest(),
                                              timeout=STATS_TIMEOUT).stats

    def list_pod_stats(self):
        return self.stub().ListPodSandboxStats(self.api.ListPodSandboxStatsRequest(),
                                               timeout=STATS_TIMEOUT).stats

    def alive(self):
        return self.daemon.proc is not None and self.daemon.proc.poll() is None

    def pod_process_cpu(self):
        """CPU seconds (user + system) of the per-pod processes that serve
        the stats calls: crid's crid-conmon of each container and pause,
        containerd's containerd-shim-runc-v2 of each pod; with how many."""
        kinds = ("crid-conmon", "containerd-shim-runc-v2")
        total = n = 0
        for pid, kind in self.pod_processes().items():
            if kind not in kinds:
                continue
            try:
                user, system, _, _ = benchlib.cpu_times(pid)
            except (OSError, ValueError, IndexError):
                continue
            total += user + system
            n += 1
        return total, n


def daemon_cpu(pid):
    """(own user + system, reaped children's user + system) in seconds."""
    user, system, cuser, csystem = benchlib.cpu_times(pid)
    return user + system, cuser + csystem


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


rpc_text = benchlib.rpc_text


# ------------------------------------------------------------------ phases


def phase_setup(world, handler, r):
    """PODS pods of PER_POD sleeping containers each, all RUNNING."""
    pods = []  # (sid, pod_config, [cids])
    r["pods"] = pods
    t0 = time.monotonic()
    left = CONTAINERS
    for p in range(PODS):
        config = world.pod_config("stats-%s-%d-%s" % (handler, p, secrets.token_hex(2)), p)
        sid = world.run_pod(config, handler)
        entry = (sid, config, [])
        pods.append(entry)
        for c in range(min(PER_POD, left)):
            cid = world.create(sid, config, world.container_config("sleep%d" % c, SLEEPER))
            entry[2].append(cid)
            world.start_container(cid)
        left -= len(entry[2])
    r["setup_s"] = time.monotonic() - t0
    if not world.check_pods([p[0] for p in pods], handler, "pods for the stats"):
        raise benchlib.BenchError("pods not READY with an IP")
    ids = [c for p in pods for c in p[2]]
    not_running = bench_container.wait_running(world, ids)
    if not_running:
        raise benchlib.BenchError("%d of %d containers not RUNNING after %.0f s"
                                  % (len(not_running), len(ids), bench_container.STATE_TIMEOUT))
    r["ids"] = set(ids)


def check_lists(world, handler, r):
    """What the lists hold, once (untimed): counts of containers and of
    the fields the kubelet reads."""
    ids = r["ids"]
    stats = [s for s in world.list_container_stats() if s.attributes.id in ids]
    c = {"listed": len(stats), "cpu": 0, "nano_cores": 0, "working_set": 0, "layer": 0}
    for s in stats:
        if s.HasField("cpu") and s.cpu.HasField("usage_core_nano_seconds"):
            c["cpu"] += 1
        if s.HasField("cpu") and s.cpu.HasField("usage_nano_cores"):
            c["nano_cores"] += 1
        if s.HasField("memory") and s.memory.HasField("working_set_bytes"):
            c["working_set"] += 1
        if s.HasField("writable_layer") and s.writable_layer.HasField("used_bytes"):
            c["layer"] += 1
    sids = {p[0] for p in r["pods"]}
    pods = [p for p in world.list_pod_stats() if p.attributes.id in sids]
    c["pods"] = len(pods)
    c["pod_cpu"] = sum(1 for p in pods if p.linux.HasField("cpu"))
    c["pod_net"] = sum(1 for p in pods if p.linux.HasField("network"))
    c["pod_containers"] = sum(len(p.linux.containers) for p in pods)
    r["content"] = c
    if c["listed"] != len(ids) or c["nano_cores"] != len(ids) or c["working_set"] != len(ids) \
            or c["pods"] != len(sids) or c["pod_containers"] != len(ids):
        world.notes.append("%s/%s: the lists hold %d of %d containers (CPU %d, usage_nano_cores "
                           "%d, working set %d, writable layer %d), %d of %d pods (CPU %d, "
                           "network %d) with %d containers"
                           % (world.name, handler, c["listed"], len(ids), c["cpu"],
                              c["nano_cores"], c["working_set"], c["layer"], c["pods"],
                              len(sids), c["pod_cpu"], c["pod_net"], c["pod_containers"]))


def phase_warmup(world, handler, r):
    for _ in range(WARMUP_CALLS):
        world.list_container_stats()
        world.list_pod_stats()
    time.sleep(COLD_GAP)
    check_lists(world, handler, r)


def timed(fn):
    t0 = time.perf_counter_ns()
    fn()
    return time.perf_counter_ns() - t0


def phase_cold(world, handler, r):
    lcs, lpss, version = [], [], []
    time.sleep(COLD_GAP)
    for _ in range(COLD_CALLS):
        for samples, fn in ((lcs, world.list_container_stats), (lpss, world.list_pod_stats),
                            (version, world.daemon.version)):
            samples.append(timed(fn))
            time.sleep(COLD_GAP)
    r["cold_lcs"] = benchlib.summarize_ns(lcs, percentiles=(50, 99))
    r["cold_lpss"] = benchlib.summarize_ns(lpss, percentiles=(50, 99))
    r["cold_version"] = benchlib.summarize_ns(version, percentiles=(50, 99))


def back_to_back(fn):
    """Up to WARM_CALLS calls in a row, for at most WARM_MAX_SECONDS."""
    samples = []
    end = time.monotonic() + WARM_MAX_SECONDS
    while len(samples) < WARM_CALLS and (not samples or time.monotonic() < end):
        samples.append(timed(fn))
    return benchlib.summarize_ns(samples, percentiles=(50, 99))


def phase_warm(world, handler, r):
    r["warm_lcs"] = back_to_back(world.list_container_stats)
    r["warm_lpss"] = back_to_back(world.list_pod_stats)


def cpu_window(world, seconds, poll):
    """The daemon's and the pod processes' CPU over `seconds` of wall
    time, calling ListContainerStats on a 1 s grid when poll is set."""
    pid = world.daemon.pid
    samples = []
    own0, kids0 = daemon_cpu(pid)
    pods0, n_pod_procs = world.pod_process_cpu()
    busy0 = benchlib.host_cpu_busy()
    t0 = time.monotonic()
    end = t0 + seconds
    k = 0
    while poll:
        tick = t0 + k * POLL_PERIOD
        if tick >= end:
            break
        delay = tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        samples.append(timed(world.list_container_stats))
        k += 1
    delay = end - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    wall = time.monotonic() - t0
    own1, kids1 = daemon_cpu(pid)
    pods1, _ = world.pod_process_cpu()
    busy = benchlib.host_cpu_busy() - busy0
    return {"wall": wall, "daemon_pct": 100.0 * (own1 - own0) / wall,
            "children_pct": 100.0 * (kids1 - kids0) / wall,
            "pods_pct": 100.0 * (pods1 - pods0) / wall, "pod_procs": n_pod_procs,
            "calls": len(samples), "host_pct": 100.0 * busy / wall / (os.cpu_count() or 1),
            "latency": benchlib.summarize_ns(samples, percentiles=(50, 99)) if samples else None}


def phase_idle(world, handler, r):
    if IDLE_SECONDS > 0:
        time.sleep(SETTLE_SECONDS)
        r["idle"] = cpu_window(world, IDLE_SECONDS, poll=False)


def phase_polled(world, handler, r):
    time.sleep(SETTLE_SECONDS)
    r["polled"] = cpu_window(world, CPU_SECONDS, poll=True)
    if r["polled"]["wall"] > CPU_SECONDS + 5:
        world.notes.append("%s/%s: the polled minute took %.0f s (calls slower than the "
                           "period?)" % (world.name, handler, r["polled"]["wall"]))


class Subscriber:
    """One GetContainerEvents call read on a thread until cancelled."""

    def __init__(self, world, channel=None):
        stub = world.stub()
        if channel is not None:
            _, api_grpc = benchlib.cri_stubs()
            stub = api_grpc.RuntimeServiceStub(channel)
        self.call = stub.GetContainerEvents(world.api.GetEventsRequest(), timeout=600)
        self.events = []
        self.error = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        grpc = benchlib.grpc_module()
        try:
            for event in self.call:
                self.events.append(event.container_event_type)
        except grpc.RpcError as e:
            self.error = e

    def got(self, kind):
        return kind in self.events

    def cancel(self):
        self.call.cancel()

    def join(self, timeout):
        self.thread.join(timeout)
        return not self.thread.is_alive()


def subscriber_snapshot(world):
    pid = world.daemon.pid
    return {"daemon": benchlib.memory(pid), "fds": fd_count(pid)}


def subscriber_round(world, handler, r, sid, pod_config, own_channels, index):
    """SUBSCRIBERS subscribers (on one shared channel or each on its own),
    an event every one must receive, memory before / open / closed."""
    grpc = benchlib.grpc_module()
    api = world.api
    out = {"n": SUBSCRIBERS}
    time.sleep(SETTLE_SECONDS)
    out["before"] = subscriber_snapshot(world)
    channels, subs, cids = [], [], []
    try:
        for _ in range(SUBSCRIBERS):
            channel = None
            if own_channels:
                # A local subchannel pool: otherwise gRPC shares one
                # connection between channels to the same target.
                channel = grpc.insecure_channel(world.daemon.target, options=[
                    ("grpc.use_local_subchannel_pool", 1)])
                channels.append(channel)
            subs.append(Subscriber(world, channel))
        # The event: a container created and started in the first pod.
        cid = world.create(sid, pod_config, world.container_config("ev%d" % index, SLEEPER))
        cids.append(cid)
        world.start_container(cid)
        benchlib.wait_until(lambda: all(s.got(api.CONTAINER_STARTED_EVENT) or s.error
                                        for s in subs), EVENT_TIMEOUT, interval=0.05)
        errors = [s.error for s in subs if s.error is not None]
        out["receiving"] = sum(1 for s in subs if s.got(api.CONTAINER_STARTED_EVENT))
        if errors:
            out["error"] = rpc_text(errors[0])
            world.notes.append("%s/%s: %d of %d GetContainerEvents calls failed: %s"
                               % (world.name, handler, len(errors), len(subs), out["error"]))
        elif out["receiving"] < len(subs):
            world.notes.append("%s/%s: only %d of %d subscribers received the STARTED event "
                               "within %.0f s" % (world.name, handler, out["receiving"],
                                                  len(subs), EVENT_TIMEOUT))
        time.sleep(SETTLE_SECONDS)
        out["open"] = subscriber_snapshot(world)
    finally:
        for s in subs:
            s.cancel()
        stuck = sum(1 for s in subs if not s.join(5.0))
        if stuck:
            world.notes.append("%s/%s: %d subscriber threads did not end after cancel"
                               % (world.name, handler, stuck))
        for ch in channels:
            ch.close()
        for cid in list(cids):
            world.stop_container(cid, timeout=2)
            world.remove_container(cid)
            cids.remove(cid)
    time.sleep(SETTLE_SECONDS)
    out["closed"] = subscriber_snapshot(world)
    return out


def phase_subscribers(world, handler, r):
    if SUBSCRIBERS == 0:
        return
    sid, pod_config, _ = r["pods"][0]
    # One untimed subscriber first: what a daemon sets up at the first
    # subscription (a delivery thread, buffers) is not per subscriber.
    warm = Subscriber(world)
    time.sleep(0.2)
    warm.cancel()
    warm.join(5.0)
    if warm.error is not None and warm.error.code().name != "CANCELLED":
        r["subs_error"] = rpc_text(warm.error)
        world.notes.append("%s/%s: GetContainerEvents: %s" % (world.name, handler,
                                                              r["subs_error"]))
        return
    r["subs_shared"] = subscriber_round(world, handler, r, sid, pod_config, False, 0)
    r["subs_own"] = subscriber_round(world, handler, r, sid, pod_config, True, 1)


PHASES = (("set-up", phase_setup), ("warm-up", phase_warmup), ("cold", phase_cold),
          ("back-to-back", phase_warm), ("idle CPU", phase_idle), ("polled CPU", phase_polled),
          ("subscribers", phase_subscribers))


def measure(world, handler, failures):
    """Every phase for one handler; a phase that fails is reported and the
    next one still runs (the set-up failing ends the run)."""
    r = {"handler": handler}
    busy0, wall0 = benchlib.host_cpu_busy(), time.monotonic()
    try:
        for what, phase in PHASES:
            try:
                phase(world, handler, r)
            except Exception as e:  # noqa: BLE001 - report, go on
                failures.append("%s/%s %s: %s" % (world.name, handler, what, rpc_text(e)))
                if what == "set-up" or not world.alive():
                    break
    finally:
        if world.alive():
            # StopPodSandbox stops the pod's containers, RemovePodSandbox
            # removes them (both runtimes).
            for sid, _, _ in r.get("pods", []):
                world.stop_remove(sid)
    if world.alive():
        world.wait_pods_gone(handler, "removing the pods")
    wall = time.monotonic() - wall0
    cpus = os.cpu_count() or 1
    busy = (benchlib.host_cpu_busy() - busy0) / wall / cpus
    world.notes.append("%s/%s: %.0f s (set-up of %d pods and %d containers %.0f s); the machine "
                       "was busy %.0f%% of %d CPUs meanwhile, load average %.1f at the end: "
                       "other work on the machine disturbs the figures"
                       % (world.name, handler, wall, PODS, CONTAINERS, r.get("setup_s", 0),
                          100 * busy, cpus, os.getloadavg()[0]))
    r.pop("pods", None)
    return r


# ------------------------------------------------------------------ tables


def run():
    hs = handlers()
    failures, notes, details = [], [], []
    results = []  # (column name, result dict)
    image = bench_container.busybox_image()
    for name, res in bench_sandbox.each_runtime(
            lambda name, index: StatsWorld(name, index, image), hs,
            lambda world, h: measure(world, h, failures), failures, notes, details):
        for r in res:
            results.append((name if len(hs) == 1 else "%s %s" % (name, r["handler"]), r))
    cols = [c for c, _ in results]
    tables = [latency_table(results, cols), cpu_table(results, cols),
              subscribers_table(results, cols)]
    last = tables[-1]
    last.note("handler%s: %s" % ("s" if len(hs) > 1 else "", ", ".join(hs)))
    last.close(details, notes, failures=failures)
    return tables


# Tables with one row per figure and a column per runtime (benchlib).
metric_table = benchlib.metric_table
add = benchlib.add_figure


def containerd_value(results, getter):
    for col, r in results:
        if col.startswith("containerd"):
            try:
                return getter(r)
            except (KeyError, TypeError):
                return None
    return None


def latency_table(results, cols):
    t = metric_table("stats: list latency, %d running containers in %d pods"
                     % (CONTAINERS, PODS), cols)
    for key, call in (("lcs", "ListContainerStats"), ("lpss", "ListPodSandboxStats")):
        for kind, what in (("cold", "cold (%.1f s apart)" % COLD_GAP),
                           ("warm", "back-to-back")):
            for p in ("p50", "p99"):
                target = ""
                if key == "lcs" and kind == "cold" and p == "p50":
                    target = "<= %.0f, <= containerd/2" % TARGET_LIST_P50_MS
                add(t, results, "%s %s %s ms" % (call, what, p), target,
                    lambda r, k="%s_%s" % (kind, key), p=p: r[k][p], 2)
            add(t, results, "  calls", "", lambda r, k="%s_%s" % (kind, key): "%d" % r[k]["n"])
        if key == "lcs":
            for p in ("p50", "p99"):
                add(t, results, "%s polled every %.0f s %s ms (%d s)"
                    % (call, POLL_PERIOD, p, CPU_SECONDS), "",
                    lambda r, p=p: r["polled"]["latency"][p], 2)
    for p in ("p50", "p99"):
        add(t, results, "Version cold (%.1f s apart) %s ms: the floor" % (COLD_GAP, p), "",
            lambda r, p=p: r["cold_version"][p], 2)
    add(t, results, "ListContainerStats cold p50 - Version cold p50 ms", "",
        lambda r: r["cold_lcs"]["p50"] - r["cold_version"]["p50"], 2)
    ref = containerd_value(results, lambda r: r["cold_lcs"]["p50"])
    add(t, results, "ListContainerStats cold p50 / containerd's", "<= 0.5",
        lambda r: r["cold_lcs"]["p50"] / ref if ref else None, 2)
    add(t, results, "containers listed (CPU, usage_nano_cores, working set, writable layer)", "",
        lambda r: "%d (%d, %d, %d, %d)" % tuple(r["content"][k] for k in (
            "listed", "cpu", "nano_cores", "working_set", "layer")))
    add(t, results, "pods listed (CPU, network) / their containers", "",
        lambda r: "%d (%d, %d) / %d" % tuple(r["content"][k] for k in (
            "pods", "pod_cpu", "pod_net", "pod_containers")))
    t.note("target (issue): crid's ListContainerStats p50 at %d containers <= %.0f ms and <= half "
           "of containerd's. cold: the two lists and Version take turns, each call %.1f s after "
           "the end of the one before (the kubelet polls every 10-15 s; crid serves the readings "
           "its collector takes every collection period, 10 s, and reads older ones at the call; "
           "containerd reads every cgroup at each call); back-to-back: up to %d calls of one "
           "list in a row, for at most %.0f s; polled: the calls of the CPU table, once a second "
           "on a fixed grid" % (CONTAINERS, TARGET_LIST_P50_MS, COLD_GAP, WARM_CALLS,
                                WARM_MAX_SECONDS))
    t.note("timed in this Python client from the call to the parsed response (one shared "
           "channel); %d untimed calls of each list first. Containers: `sh` + `sleep 3600`, %d "
           "per pod, every pod with its own cgroup parent" % (WARMUP_CALLS, PER_POD))
    t.note("Version, between the cold list calls and as far apart, does nothing: it is what any "
           "call costs after a pause (client, gRPC, and on this VM the wake-up of idle vCPUs, "
           "which takes milliseconds and is larger when the machine is otherwise idle)")
    return t


def cpu_table(results, cols):
    t = metric_table("stats: daemon CPU, %% of one core, %d running containers" % CONTAINERS,
                     cols)
    add(t, results, "daemon, polled once a second (%d s)" % CPU_SECONDS,
        "< %.0f" % TARGET_CPU_PERCENT, lambda r: r["polled"]["daemon_pct"], 2)
    add(t, results, "daemon, idle (%d s, no calls)" % IDLE_SECONDS, "",
        lambda r: r["idle"]["daemon_pct"], 2)
    add(t, results, "daemon, polled - idle", "",
        lambda r: r["polled"]["daemon_pct"] - r["idle"]["daemon_pct"], 2)
    add(t, results, "per-pod processes, polled", "", lambda r: r["polled"]["pods_pct"], 2)
    add(t, results, "per-pod processes, idle", "", lambda r: r["idle"]["pods_pct"], 2)
    add(t, results, "daemon + per-pod processes, polled", "",
        lambda r: r["polled"]["daemon_pct"] + r["polled"]["pods_pct"], 2)
    add(t, results, "per-pod processes counted", "",
        lambda r: "%d" % r["polled"]["pod_procs"])
    add(t, results, "daemon's reaped children, polled", "",
        lambda r: r["polled"]["children_pct"], 2)
    add(t, results, "calls / wall s", "",
        lambda r: "%d / %.1f" % (r["polled"]["calls"], r["polled"]["wall"]))
    add(t, results, "machine busy, polled (% of all CPUs)", "",
        lambda r: r["polled"]["host_pct"], 1)
    t.note("target (issue): polling costs crid < %.0f%% of one core. CPU = user + system time "
           "of /proc/PID/stat over the window / its wall time. polled: ListContainerStats once "
           "a second (what the kubelet's CRI stats provider calls, there every 10-15 s); "
           "idle: the same daemon with no call (crid's collector still samples every 10 s). "
           "Per-pod processes: crid's crid-conmon of every container and pause (no part in "
           "stats), containerd's containerd-shim-runc-v2 of every pod (it reads the cgroups "
           "for containerd's stats calls)" % TARGET_CPU_PERCENT)
    return t


def subscribers_table(results, cols):
    t = metric_table("stats: memory per GetContainerEvents subscriber (%d subscribers that "
                     "read)" % SUBSCRIBERS, cols)

    def per(r, key, field="rss"):
        s = r[key]
        return (s["open"]["daemon"][field] - s["before"]["daemon"][field]) / s["n"] / KIB

    for key, what in (("subs_shared", "one shared channel"), ("subs_own", "a channel each")):
        add(t, results, "%s: receiving / opened" % what, "",
            lambda r, k=key: "%d / %d" % (r[k]["receiving"], r[k]["n"]))
        add(t, results, "%s: daemon RSS KiB/subscriber" % what, "",
            lambda r, k=key: per(r, k), 1)
        add(t, results, "%s: daemon RssAnon KiB/subscriber" % what, "",
            lambda r, k=key: per(r, k, "rss_anon"), 1)
        add(t, results, "%s: threads before / open / closed" % what, "",
            lambda r, k=key: "%d / %d / %d" % tuple(r[k][s]["daemon"]["threads"]
                                                    for s in ("before", "open", "closed")))
        add(t, results, "%s: fds before / open / closed" % what, "",
            lambda r, k=key: "%d / %d / %d" % tuple(r[k][s]["fds"]
                                                    for s in ("before", "open", "closed")))
        add(t, results, "%s: RSS closed - before KiB" % what, "",
            lambda r, k=key: (r[k]["closed"]["daemon"]["rss"]
                              - r[k]["before"]["daemon"]["rss"]) / KIB, 0)
    t.note("per subscriber = (daemon RSS with every subscriber open, %.0f s after they all "
           "received a STARTED event - RSS before) / subscribers; closed: %.0f s after the calls "
           "were cancelled. One untimed subscriber first. A channel each: separate HTTP/2 "
           "connections (a local subchannel pool), so their cost is in the figure"
           % (SETTLE_SECONDS, SETTLE_SECONDS))
    return t
