"""Pod sandboxes: RunPodSandbox and StopPodSandbox+RemovePodSandbox latency,
30 sandboxes at once, and the memory a running pod costs.

For each runtime (crid, containerd's CRI plugin), one after the other in
the same run and through the same Python client:

  - a fresh network namespace (`ip netns add cb-<hex>`) with the daemon
    running inside it (`nsenter --net`), so the CNI plugins, the bridge,
    the veths and any iptables rules live there and nothing can leave it;
  - the same CNI conflist for both (bridge + host-local + portmap,
    cniVersion 1.0.0, ipMasq false), each with its own bridge, subnet
    10.253.<n>.0/24 and host-local dataDir in the daemon's temp dir;
  - run state on tmpfs, as /run is on a node: crid's state dir (with
    its runtimes' roots), containerd's state dir and its runtimes' roots;
    the persistent dirs stay in the temp dir (ext4 here);
  - pods under a cgroup parent of their own (/crid-bench-<hex>, cgroupfs),
    removed afterwards;
  - the same pause binary: crid runs its built-in crid-pause; containerd
    gets an image holding that static binary as /pause, built here and
    imported with `ctr images import` (its sandbox_image), so nothing is
    pulled;
  - for every OCI runtime handler (BENCH_SANDBOX_HANDLERS, default
    "crun,runc"; containerd runs both through containerd-shim-runc-v2
    with BinaryName), after 2 untimed warm-up pods:
      * 30 RunPodSandbox calls in sequence (the pods stay up), timed;
      * ~2 s later the memory (RSS, PSS) of the daemon and of every
        per-pod process (crid: crid-conmon + pause; containerd:
        containerd-shim-runc-v2 + pause), total and per pod;
      * StopPodSandbox + RemovePodSandbox of each, in sequence, timed;
      * 30 RunPodSandbox calls at once from 30 threads (one shared gRPC
        channel), wall time until the last returns; then 30 concurrent
        Stop+Remove, wall time likewise.

Every pod gets checked (READY, a distinct IP of the subnet) outside the
timed parts.  Afterwards every pod is removed, the daemon stopped by pid,
anything left from its temp dir killed by pid and unmounted, the cgroups
rmdir'd and the namespace deleted; leaks found on the way are printed as
notes.
"""

import ipaddress
import os
import secrets
import threading
import time

import benchlib

TITLE = "sandbox: RunPodSandbox / Stop+Remove latency, 30 concurrent pods, per-pod memory"

PODS = 30
WARMUP_PODS = 2
SETTLE_SECONDS = 2.0  # between the last RunPodSandbox and the memory reading
RUN_TIMEOUT = 60.0  # seconds for one Run/Stop/Remove call
READY_TIMEOUT = 20.0  # seconds for NetworkReady after start
GONE_TIMEOUT = 10.0  # seconds for pod processes to disappear after removal
PAUSE_IMAGE = "crid.invalid/bench/pause:1"  # .invalid never resolves
POD_NAMESPACE = "crid-bench"
OCI_RUNTIMES = {"crun": "/usr/bin/crun", "runc": "/usr/sbin/runc"}

TARGET_RUN_P50_MS = 35.0
TARGET_POD_RSS_MB = 1.5
TARGET_PAUSE_RSS_KB = 100

# Host paths a daemon might create despite the private config; reported
# if they appear during the run, removed again when they are empty dirs.
HOST_PATHS = ("/run/containerd", "/var/lib/containerd", "/run/crid", "/var/lib/crid",
              "/var/lib/cni", "/var/run/netns")


def handlers_from_env(variable, default):
    """The OCI runtime handlers named in $variable (comma list; default
    when unset), each checked known and installed."""
    wanted = os.environ.get(variable, default)
    names = [h.strip() for h in wanted.split(",") if h.strip()]
    for h in names:
        if h not in OCI_RUNTIMES:
            raise benchlib.BenchError("%s: unknown handler %r (known: %s)"
                                      % (variable, h, ", ".join(OCI_RUNTIMES)))
        if not os.access(OCI_RUNTIMES[h], os.X_OK):
            raise benchlib.BenchError("%s is missing" % OCI_RUNTIMES[h])
    return names


def handlers():
    return handlers_from_env("BENCH_SANDBOX_HANDLERS", "crun,runc")


def mb(v):
    return None if v is None else v / benchlib.MB


class PodWorld:
    """One daemon in its own network namespace with a pod network, a
    cgroup parent and (for containerd) the pause image."""

    def __init__(self, name, index):
        self.name = name
        self.api, _ = benchlib.cri_stubs()
        self.index = index
        self.subnet = ipaddress.ip_network("10.253.%d.0/24" % index)
        self.bridge = "cbbr%d" % index
        self.net_name = "crid-bench-%s" % name
        self.cgroup_parent = "/crid-bench-%s" % secrets.token_hex(4)
        self.notes = []
        self.netns = None
        self.daemon = None
        self.known = set()

    # -- set-up / tear-down ----------------------------------------------

    def _prepare(self, d):
        self.data_dir = os.path.join(d.dir, "cni-data")
        self.log_root = os.path.join(d.dir, "pod-logs")
        os.makedirs(self.log_root, mode=0o711)
        conflist = benchlib.bridge_conflist(self.net_name, self.bridge, self.subnet,
                                            self.data_dir)
        benchlib.write_conflist(d.cni_conf_dir, conflist)

    def start(self):
        self.netns = benchlib.Netns()
        kwargs = {"netns": self.netns.path, "on_prepare": self._prepare, "state_tmpfs": True}
        if self.name == "containerd":
            kwargs.update(
                cri_options={
                    "sandbox_image": PAUSE_IMAGE,
                    # pod netns files in its state dir, not /run/netns
                    "netns_mounts_under_state_dir": True,
                    "disable_apparmor": True,
                    # pods' oom_score_adj no lower than the daemon's own
                    # (crid clamps the same way; lowering needs
                    # CAP_SYS_RESOURCE, which a container host may lack)
                    "restrict_oom_score_adj": True,
                },
                runtimes={h: OCI_RUNTIMES[h] for h in OCI_RUNTIMES},
                default_runtime="runc",
            )
        self.daemon = benchlib.RUNTIMES[self.name](**kwargs)
        self.daemon.start()
        if self.name == "containerd":
            archive = benchlib.build_pause_archive(os.path.join(self.daemon.dir, "pause.tar"),
                                                   PAUSE_IMAGE)
            self.daemon.import_image(archive, PAUSE_IMAGE)
        self._wait_network_ready()
        return self

    def _wait_network_ready(self):
        api = self.api
        stub = self.daemon.runtime_stub()
        deadline = time.monotonic() + READY_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            res = stub.Status(api.StatusRequest(), timeout=benchlib.RPC_TIMEOUT)
            for c in res.status.conditions:
                if c.type == "NetworkReady":
                    last = c
            if last is not None and last.status:
                return
            time.sleep(0.1)
        raise benchlib.BenchError("%s: NetworkReady not true after %.0f s: %s"
                                  % (self.name, READY_TIMEOUT, last))

    def teardown(self):
        """Removes every pod the daemon lists, stops it, kills and unmounts
        what its temp dir left, removes the cgroups and the namespace."""
        try:
            if self.daemon is not None and self.daemon.proc is not None \
                    and self.daemon.proc.poll() is None:
                try:
                    left = self.list_ids()
                except Exception as e:  # noqa: BLE001
                    left = []
                    self.notes.append("%s: ListPodSandbox at teardown: %s" % (self.name, e))
                for sid in left:
                    try:
                        self.stop_remove(sid)
                    except Exception as e:  # noqa: BLE001
                        self.notes.append("%s: teardown removal of %.12s: %s"
                                          % (self.name, sid, e))
            if self.daemon is not None:
                procs = self.daemon.leftover_processes() if self.daemon.dir else {}
                if procs and self.daemon.proc is not None and self.daemon.proc.poll() is None:
                    self.notes.append("LEAK %s: processes after removing every pod: %s"
                                      % (self.name, self.describe(procs)))
                self.daemon.stop()  # also kills/unmounts leftovers of its dir
        finally:
            if self.cgroup_parent:
                stuck = benchlib.remove_cgroups(self.cgroup_parent)
                if stuck:
                    self.notes.append("%s: cgroups that could not be removed: %s"
                                      % (self.name, stuck))
            if self.netns is not None:
                self.netns.delete()

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.teardown()
            raise

    def __exit__(self, *exc):
        self.teardown()
        return False

    # -- CRI --------------------------------------------------------------

    def pod_config(self, name):
        api = self.api
        log_dir = os.path.join(self.log_root, name)
        os.makedirs(log_dir, exist_ok=True)
        return api.PodSandboxConfig(
            metadata=api.PodSandboxMetadata(name=name, namespace=POD_NAMESPACE,
                                            uid="uid-%s-%s" % (name, secrets.token_hex(4)),
                                            attempt=0),
            hostname=name,
            log_directory=log_dir,
            linux=api.LinuxPodSandboxConfig(
                cgroup_parent=self.cgroup_parent,
                security_context=api.LinuxSandboxSecurityContext(
                    namespace_options=api.NamespaceOption(network=api.POD, pid=api.CONTAINER,
                                                          ipc=api.POD))),
        )

    def run_pod(self, config, handler):
        res = self.daemon.runtime_stub().RunPodSandbox(
            self.api.RunPodSandboxRequest(config=config, runtime_handler=handler),
            timeout=RUN_TIMEOUT)
        if not res.pod_sandbox_id:
            raise benchlib.BenchError("RunPodSandbox returned an empty id")
        self.known.add(res.pod_sandbox_id)
        return res.pod_sandbox_id

    def stop_remove(self, sid):
        stub = self.daemon.runtime_stub()
        stub.StopPodSandbox(self.api.StopPodSandboxRequest(pod_sandbox_id=sid),
                            timeout=RUN_TIMEOUT)
        stub.RemovePodSandbox(self.api.RemovePodSandboxRequest(pod_sandbox_id=sid),
                              timeout=RUN_TIMEOUT)

    def list_ids(self):
        res = self.daemon.runtime_stub().ListPodSandbox(self.api.ListPodSandboxRequest(),
                                                        timeout=benchlib.RPC_TIMEOUT)
        return [item.id for item in res.items]

    def check_pods(self, ids, handler, what):
        """Outside timings: each pod READY with its own IP of the subnet."""
        api = self.api
        stub = self.daemon.runtime_stub()
        seen = {}
        problems = []
        for sid in ids:
            st = stub.PodSandboxStatus(api.PodSandboxStatusRequest(pod_sandbox_id=sid),
                                       timeout=benchlib.RPC_TIMEOUT).status
            ip = st.network.ip
            if st.state != api.SANDBOX_READY:
                problems.append("%.12s not READY" % sid)
            try:
                ok = ipaddress.ip_address(ip) in self.subnet
            except ValueError:
                ok = False
            if not ok:
                problems.append("%.12s has IP %r outside %s" % (sid, ip, self.subnet))
            elif ip in seen:
                problems.append("%.12s and %.12s share IP %s" % (sid, seen[ip], ip))
            seen[ip] = sid
        if problems:
            self.notes.append("%s/%s %s: %d pod problems: %s"
                              % (self.name, handler, what, len(problems), "; ".join(problems[:5])))
        return not problems

    # -- processes and leaks --------------------------------------------------

    def pod_processes(self):
        """{pid: kind} of every process of this daemon's pods (not the
        daemon itself)."""
        return {pid: benchlib.proc_name(pid) for pid in self.daemon.leftover_processes()}

    @staticmethod
    def describe(procs):
        return ", ".join("%d %s" % (pid, (cmd or "")[:70]) for pid, cmd in sorted(procs.items()))

    def wait_pods_gone(self, handler, what):
        """After removing every pod: no pod process, veth or lease left
        (bounded wait); a note for whatever remains."""
        deadline = time.monotonic() + GONE_TIMEOUT
        while True:
            procs = self.pod_processes()
            veths = [n for n, kind in self.netns.links().items() if kind == "veth"]
            leases = self.leases()
            if not (procs or veths or leases) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        left = self.list_ids()
        if procs or veths or leases or left:
            self.notes.append(
                "LEAK %s/%s after %s: pods %s, processes %s, veths %s, leases %s"
                % (self.name, handler, what, [s[:12] for s in left], sorted(procs.values()),
                   veths, leases))
            return False
        return True

    def leases(self):
        directory = os.path.join(self.data_dir, self.net_name)
        out = []
        if os.path.isdir(directory):
            for entry in os.listdir(directory):
                try:
                    ipaddress.ip_address(entry)
                except ValueError:
                    continue
                out.append(entry)
        return sorted(out)

    def memory(self, pods):
        """RSS/PSS of the daemon and, summed by kind, of the pod processes."""
        daemon = benchlib.memory(self.daemon.pid)
        kinds = {}
        for pid, kind in self.pod_processes().items():
            try:
                m = benchlib.memory(pid)
            except OSError:
                continue  # exited meanwhile
            k = kinds.setdefault(kind, {"n": 0, "rss": 0, "pss": 0})
            k["n"] += 1
            k["rss"] += m["rss"] or 0
            k["pss"] += m["pss"] or 0
        total = {"n": sum(k["n"] for k in kinds.values()),
                 "rss": sum(k["rss"] for k in kinds.values()),
                 "pss": sum(k["pss"] for k in kinds.values())}
        return {"daemon": daemon, "kinds": kinds, "total": total, "pods": pods}


# -------------------------------------------------------------------- phases


def timed(fn):
    t0 = time.perf_counter_ns()
    result = fn()
    return time.perf_counter_ns() - t0, result


def concurrently(fn, args):
    """Calls fn(arg) for every arg, each in its own thread, all released at
    once; returns (wall ns from the release to the last return, [(ns,
    result or None, error or None)])."""
    barrier = threading.Barrier(len(args) + 1)
    out = [None] * len(args)
    ends = [0] * len(args)

    def worker(i, arg):
        try:
            barrier.wait(timeout=30)
        except threading.BrokenBarrierError:
            out[i] = (0, None, "barrier broken")
            return
        t0 = time.perf_counter_ns()
        try:
            res, err = fn(arg), None
        except Exception as e:  # noqa: BLE001 - reported
            res, err = None, e
        ends[i] = time.perf_counter_ns()
        out[i] = (ends[i] - t0, res, err)

    threads = [threading.Thread(target=worker, args=(i, a), daemon=True)
               for i, a in enumerate(args)]
    for t in threads:
        t.start()
    barrier.wait(timeout=30)
    start = time.perf_counter_ns()
    deadline = time.monotonic() + RUN_TIMEOUT * 3
    for t in threads:
        t.join(timeout=max(0.1, deadline - time.monotonic()))
    if any(t.is_alive() for t in threads):
        raise benchlib.BenchError("concurrent calls still running after %.0f s"
                                  % (RUN_TIMEOUT * 3))
    return max(ends) - start, out


def measure(world, handler):
    """All phases for one OCI runtime handler; returns a dict of figures."""
    r = {"handler": handler}
    tag = handler

    for i in range(WARMUP_PODS):
        world.stop_remove(world.run_pod(world.pod_config("warm-%s-%d" % (tag, i)), handler))

    # Sequential: run 30 (they stay up), memory, then stop+remove each.
    ids, run_ns = [], []
    try:
        for i in range(PODS):
            ns, sid = timed(lambda i=i: world.run_pod(world.pod_config("seq-%s-%d" % (tag, i)),
                                                      handler))
            run_ns.append(ns)
            ids.append(sid)
        world.check_pods(ids, handler, "sequential run")
        time.sleep(SETTLE_SECONDS)
        r["memory"] = world.memory(len(ids))
        rm_ns = []
        while ids:
            sid = ids[0]
            ns, _ = timed(lambda sid=sid: world.stop_remove(sid))
            rm_ns.append(ns)
            ids.pop(0)
    finally:
        for sid in ids:  # only after a failure
            try:
                world.stop_remove(sid)
            except Exception:  # noqa: BLE001 - teardown tries again
                pass
    r["run"] = benchlib.summarize_ns(run_ns, percentiles=(50, 95))
    r["remove"] = benchlib.summarize_ns(rm_ns, percentiles=(50, 95))
    world.wait_pods_gone(handler, "sequential removal")

    # Concurrent: 30 at once, then remove the 30 at once.
    configs = [world.pod_config("par-%s-%d" % (tag, i)) for i in range(PODS)]
    wall, results = concurrently(lambda c: world.run_pod(c, handler), configs)
    ids = [res for _, res, err in results if err is None and res]
    errors = [str(err) for _, _, err in results if err is not None]
    r["par_run_wall"] = wall
    r["par_run"] = benchlib.summarize_ns([ns for ns, _, err in results if err is None],
                                         percentiles=(50, 95))
    r["par_ok"] = len(ids)
    if errors:
        world.notes.append("%s/%s: %d of %d concurrent RunPodSandbox failed, first: %s"
                           % (world.name, handler, len(errors), PODS, errors[0][:300]))
    world.check_pods(ids, handler, "concurrent run")
    wall, results = concurrently(world.stop_remove, ids)
    r["par_remove_wall"] = wall
    errors = [str(err) for _, _, err in results if err is not None]
    if errors:
        world.notes.append("%s/%s: %d of %d concurrent Stop+Remove failed, first: %s"
                           % (world.name, handler, len(errors), len(ids), errors[0][:300]))
    world.wait_pods_gone(handler, "concurrent removal")
    return r


def host_paths():
    return {p for p in HOST_PATHS if os.path.lexists(p)}


def remove_empty_dirs(path):
    """rmdir path and its subdirectories, deepest first, where empty."""
    for dirpath, _, _ in os.walk(path, topdown=False):
        try:
            os.rmdir(dirpath)
        except OSError:
            pass


def each_runtime(make_world, hs, measure, failures, notes, details):
    """For each runtime to compare: a world (make_world(name, index), a
    PodWorld) set up, measure(world, handler) for each handler, the world
    torn down, host paths it created reported and removed when empty.
    Yields (runtime name, a result dict per handler; {"handler": h} for
    one that could not be measured); failures, notes and details (one
    line per runtime) are appended to."""
    for index, name in enumerate(benchlib.runtime_names(), start=1):
        before = host_paths()
        world = make_world(name, index)
        results = []
        try:
            with world:
                version = world.daemon.version()
                details.append("%s: %s %s, daemon in netns %s, bridge %s, subnet %s, cgroup "
                               "parent %s" % (name, version.runtime_name,
                                              version.runtime_version, world.netns.name,
                                              world.bridge, world.subnet, world.cgroup_parent))
                for h in hs:
                    try:
                        results.append(measure(world, h))
                    except Exception as e:  # noqa: BLE001 - report, go on
                        failures.append("%s/%s: %s" % (name, h, str(e)[:500]))
                        results.append({"handler": h})
        except Exception as e:  # noqa: BLE001
            failures.append("%s: %s" % (name, str(e)[:800]))
            if world.daemon is not None and world.daemon.log_path:
                notes.append("%s log tail:\n    %s"
                             % (name, world.daemon.log_tail(10).replace("\n", "\n    ")))
        notes.extend(world.notes)
        created = host_paths() - before
        for p in sorted(created):
            if os.path.isdir(p) and not os.path.islink(p):
                remove_empty_dirs(p)
        still = {p for p in created if os.path.lexists(p)}
        if created:
            notes.append("%s created %s during the run%s"
                         % (name, ", ".join(sorted(created)),
                            "; left non-empty: %s" % ", ".join(sorted(still)) if still
                            else " (empty afterwards, removed)"))
        done = {r["handler"] for r in results}
        yield name, results + [{"handler": h} for h in hs if h not in done]


def run():
    tables = {
        "run": benchlib.Table("sandbox: RunPodSandbox latency, %d sequential pods" % PODS,
                              ["runtime", "handler", "p50 ms", "p95 ms", "min ms", "max ms",
                               "mean ms"]),
        "remove": benchlib.Table("sandbox: StopPodSandbox + RemovePodSandbox latency, %d "
                                 "sequential pods" % PODS,
                                 ["runtime", "handler", "p50 ms", "p95 ms", "min ms", "max ms",
                                  "mean ms"]),
        "par": benchlib.Table("sandbox: %d pods at once (%d threads)" % (PODS, PODS),
                              ["runtime", "handler", "ok", "run wall s", "call p50 ms",
                               "call max ms", "stop+remove wall s"]),
        "mem": benchlib.Table("sandbox: memory at %d running pods" % PODS,
                              ["runtime", "handler", "daemon RSS MB", "daemon PSS MB",
                               "pod procs", "pods RSS MB", "pods PSS MB", "RSS/pod MB",
                               "PSS/pod MB"]),
    }
    failures, notes, details = [], [], []
    hs = handlers()
    for name, results in each_runtime(PodWorld, hs, measure, failures, notes, details):
        for r in results:
            h = r["handler"]
            for key in ("run", "remove"):
                s = r.get(key, {})
                tables[key].add_row(name, h, benchlib.fmt(s.get("p50"), 1),
                                    benchlib.fmt(s.get("p95"), 1), benchlib.fmt(s.get("min"), 1),
                                    benchlib.fmt(s.get("max"), 1), benchlib.fmt(s.get("mean"), 1))
            if "par_run_wall" in r:
                tables["par"].add_row(name, h, "%d/%d" % (r["par_ok"], PODS),
                                      benchlib.fmt(r["par_run_wall"] / 1e9, 2),
                                      benchlib.fmt(r["par_run"].get("p50"), 0),
                                      benchlib.fmt(r["par_run"].get("max"), 0),
                                      benchlib.fmt(r["par_remove_wall"] / 1e9, 2))
            else:
                tables["par"].add_row(name, h, "-", "-", "-", "-", "-")
            m = r.get("memory")
            if m:
                pods = m["pods"] or 1
                t = m["total"]
                tables["mem"].add_row(name, h, mb(m["daemon"]["rss"]), mb(m["daemon"]["pss"]),
                                      str(t["n"]), mb(t["rss"]), mb(t["pss"]),
                                      benchlib.fmt(mb(t["rss"] / pods), 3),
                                      benchlib.fmt(mb(t["pss"] / pods), 3))
                tables["mem"].note("%s/%s per kind: %s" % (name, h, "; ".join(
                    "%s x%d RSS %.0f KB/proc PSS %.0f KB/proc"
                    % (k, v["n"], v["rss"] / v["n"] / 1024, v["pss"] / v["n"] / 1024)
                    for k, v in sorted(m["kinds"].items()))))
            else:
                tables["mem"].add_row(name, h, "-", "-", "-", "-", "-", "-", "-")

    tables["run"].note("target (issue): crid RunPodSandbox p50 <= %.0f ms" % TARGET_RUN_P50_MS)
    tables["run"].note("%d untimed warm-up pods per handler first; pods stay up, so the n-th "
                       "call runs next to n-1 pods" % WARMUP_PODS)
    tables["remove"].note("one StopPodSandbox + RemovePodSandbox pair per pod, timed together")
    tables["par"].note("wall: from releasing %d threads (one shared gRPC channel) to the last "
                       "return; then the %d pods stopped and removed the same way"
                       % (PODS, PODS))
    tables["mem"].note("target (issue): pause + monitor <= %.1f MB RSS per pod (crid)"
                       % TARGET_POD_RSS_MB)
    tables["mem"].note("target (issue 14): pause < %d KB RSS per pod (the same crid-pause "
                       "binary in both runtimes: see its 'pause' per-kind figure)"
                       % TARGET_PAUSE_RSS_KB)
    tables["mem"].note("pod processes: crid-conmon + pause (crid), containerd-shim-runc-v2 + "
                       "pause (containerd); read %.0f s after the %dth sequential "
                       "RunPodSandbox; per pod = total / pods. PSS splits the pages the "
                       "processes share" % (SETTLE_SECONDS, PODS))
    last = tables["mem"]
    last.close(details, notes, failures=failures)
    return [tables["run"], tables["remove"], tables["par"], tables["mem"]]
