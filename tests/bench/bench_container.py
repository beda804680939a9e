"""Containers: CreateContainer+StartContainer, StopContainer and
RemoveContainer latency, ExecSync latency, log throughput, and the memory
of the per-container monitors at 30 running containers.

Same isolation as bench_sandbox.py, whose PodWorld this reuses: for each
runtime (crid, containerd's CRI plugin), one after the other in the same
run and through the same Python client, a fresh network namespace with
the daemon inside it, the same bridge conflist (own bridge, subnet and
host-local dataDir), run state on a tmpfs of its own, pods under a cgroup
parent of their own (/crid-bench-<hex>), the daemon stopped by pid and
whatever its temp dir left killed by pid, unmounted and removed.  The
daemon's temp dir and root are flagged as ext4 top directories (`chattr
+T`, as make_spread_dir() does), so what each daemon creates there does
not land next to inodes freed lately in /tmp (slow on this VM's ext4).

One image for both, built here from busybox-static with the pieces of
tests/fixtures/build_images.py (busybox, its applet links, passwd and
group, in one uncompressed layer without hard links) and
imported before the runs: crid gets it as an OCI layout tarball through
`crid image import` before the daemon starts (the store is locked while
crid runs), containerd the same layer and config as a docker archive
through `ctr -n k8s.io images import` (as bench_sandbox.py imports its
pause image).  Nothing is pulled; the image name is under .invalid.

For each OCI runtime handler (BENCH_CONTAINER_HANDLERS, default
"crun,runc"; containerd runs both through containerd-shim-runc-v2 with
BinaryName), in one pod of that handler:
  - 2 untimed warm-up containers, then 30 containers created and started
    in sequence, each CreateContainer + StartContainer pair timed (the
    containers stay up); they run
    `sh -c "trap 'exit 0' TERM; sleep 3600 & wait"`: a shell as PID 1 of
    its PID namespace ignores a SIGTERM it has no handler for, the trap
    makes it exit 0 at once;
  - ~2 s later, every container checked RUNNING, the memory (RSS, PSS from
    /proc/PID/smaps_rollup) of the daemon and of the monitors: crid's
    crid-conmon of each container (the pause's own monitor is shown
    apart), containerd's containerd-shim-runc-v2 of the pod (one per pod,
    so divided by the containers it serves);
  - StopContainer (timeout 10 s) of each, timed, exit code 0 checked;
    then RemoveContainer of each, timed; then no container left listed,
    no process or mount of a removed container;
  - ExecSync of `true` in a running container of the pod: 5 untimed, then
    200 timed in sequence (p50, p99);
  - log throughput: a container writing 200 MiB of 64-byte lines (63
    characters + newline) to stdout, `busybox yes LINE | busybox dd
    bs=65536 iflag=fullblock count=3200` (dd hands on whole 64 KiB blocks
    as a program writing through large buffers does; `yes | head -c`
    writes ~2 KiB pieces and tops out near 130 MiB/s on this VM with no
    monitor at all, below the target), timed from StartContainer until
    ContainerStatus says EXITED (polled every 10 ms); then, untimed,
    every record of the CRI log file is checked (`<RFC3339Nano> stdout
    F|P <text>`, P records joined) and each line compared; lost lines are
    printed (and, if some are missing at EXITED, how many turned up
    within 5 s more); and how long after the log file's last write
    (its mtime: the writer's end) ContainerStatus said EXITED and what
    finishedAt it reported.

Afterwards the pod is removed and checked gone (processes, veths,
leases).  Leaks found on the way are printed as notes.
"""

import io
import json
import os
import re
import secrets
import sys
import tarfile
import time
from pathlib import Path

import benchlib
import bench_sandbox

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import build_images  # noqa: E402

TITLE = "container: create+start / stop / remove latency, ExecSync, log throughput, monitor memory"

CONTAINERS = 30
WARMUP_CONTAINERS = 2
EXECS = 200
EXEC_WARMUP = 5
SETTLE_SECONDS = 2.0  # between the last StartContainer and the memory reading
STOP_TIMEOUT_S = 10  # StopContainer's grace period
LOG_BYTES = 200 * 1024 * 1024
LOG_BLOCK = 65536
LINE = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"  # 63 characters
LOG_TIMEOUT = 180.0  # seconds for the log writer to finish
LOG_POLL = 0.01  # seconds between ContainerStatus calls while it runs
LOG_LATE_WAIT = 5.0  # seconds to wait for lines missing at EXITED
RUN_TIMEOUT = bench_sandbox.RUN_TIMEOUT
GONE_TIMEOUT = bench_sandbox.GONE_TIMEOUT
STATE_TIMEOUT = 10.0  # seconds for a started container to be RUNNING
IMAGE = "crid.invalid/bench/busybox:1"  # .invalid never resolves
IMAGE_CONFIG = {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "WorkingDir": "/"}
SLEEPER = ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
LOG_WRITER = ["/bin/sh", "-c", "busybox yes %s | busybox dd bs=%d count=%d iflag=fullblock "
              "2>/dev/null" % (LINE, LOG_BLOCK, LOG_BYTES // LOG_BLOCK)]
CONTAINER_PROCESS = "busybox"  # what every process of these containers runs

TARGET_CREATE_START_P50_MS = 20.0
TARGET_STOP_P50_MS = 15.0
TARGET_EXEC_P50_MS = 15.0
TARGET_LOG_MIB_S = 150.0
TARGET_MONITOR_RSS_KB = 1024.0
TARGET_MONITOR_PSS_KB = 300.0

MIB = 1024 * 1024
KB = 1024.0
TIMESTAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)\Z")


def handlers():
    return bench_sandbox.handlers_from_env("BENCH_CONTAINER_HANDLERS", "crun,runc")


# ------------------------------------------------------------------ image


def busybox_image():
    """One uncompressed layer made with build_images' pieces: busybox, its
    applet links, /etc/passwd and /etc/group, /tmp.  Unlike
    build_images.busybox_base_layer() it has no hard link: containerd
    applies a hard link entry's mode (0644 there) to the file it links
    to, which would leave its busybox not executable."""
    if not os.access(build_images.BUSYBOX, os.X_OK):
        raise benchlib.BenchError("%s is missing (Debian's busybox-static; make deps installs "
                                  "it)" % build_images.BUSYBOX)
    t = build_images.TarBuilder()
    t.dir("bin").file("bin/busybox", build_images.read_busybox(), mode=0o755)
    for applet in build_images.BUSYBOX_APPLETS:
        t.symlink("bin/%s" % applet, "busybox")
    t.dir("etc").file("etc/passwd", build_images.PASSWD).file("etc/group", build_images.GROUP)
    t.dir("tmp", mode=0o1777)
    return build_images.Image([t.bytes()], compression="none", config=IMAGE_CONFIG)


def write_oci_archive(path, image):
    """An OCI image layout tarball (for `crid image import`)."""
    layout = Path(str(path) + ".layout")
    build_images.write_oci_layout(layout, {IMAGE: image})
    with tarfile.open(path, "w") as tar:
        for entry in sorted(os.listdir(layout)):
            tar.add(layout / entry, arcname=entry)
    benchlib.remove_tree(str(layout))
    return path


def write_docker_archive(path, image):
    """The same layers and config as `docker save` lays them out (for
    `ctr images import`)."""
    members = [("config.json", image.config.data)]
    layers = []
    for i, layer in enumerate(image.layer_tars):
        name = "layer%d/layer.tar" % i
        members.append((name, layer))
        layers.append(name)
    manifest = [{"Config": "config.json", "RepoTags": [IMAGE], "Layers": layers}]
    members.append(("manifest.json", json.dumps(manifest).encode()))
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


# ------------------------------------------------------------------ world


class ContainerWorld(bench_sandbox.PodWorld):
    """A PodWorld (daemon in its own netns, conflist, cgroup parent) with
    the busybox image in its daemon's store."""

    def __init__(self, name, index, image):
        super().__init__(name, index)
        self.image = image

    def _prepare(self, d):
        # The daemon's temp dir (pod logs) and root (images, containers'
        # bundles and upper dirs, snapshots) as ext4 "top directories":
        # what the daemon makes in them lands in block groups of their
        # own, away from the inodes other runs freed lately in /tmp.  On
        # this VM's journal-less ext4, creating files near such inodes is
        # slow (see make_spread_dir), which doubled CreateContainer for
        # both runtimes, depending on what ran before.  make_spread_dir()
        # itself cannot be used: one more path level makes crid's monitor
        # socket paths too long.
        for path in (d.dir, d.root):
            why = benchlib.set_topdir(path)
            if why:
                self.notes.append("%s: %s (file creation may be slower)" % (self.name, why))
        super()._prepare(d)
        if benchlib.is_crid(self.name):
            # The image store is locked while crid runs: import first,
            # with the daemon's own config and dirs.
            archive = write_oci_archive(os.path.join(d.dir, "busybox.tar"), self.image)
            benchlib.run_cmd([d.binary, "--config", d.config_file, "--config-dir", d.config_dir,
                              "--root", d.root, "--state-dir", d.state_dir, "image", "import",
                              archive], timeout=120)
            os.unlink(archive)

    def start(self):
        super().start()
        if self.name == "containerd":
            archive = write_docker_archive(os.path.join(self.daemon.dir, "busybox.tar"),
                                           self.image)
            self.daemon.import_image(archive, IMAGE)
            os.unlink(archive)
        return self

    # -- CRI --------------------------------------------------------------

    def stub(self):
        return self.daemon.runtime_stub()

    def container_config(self, name, command, log_path=None):
        api = self.api
        return api.ContainerConfig(
            metadata=api.ContainerMetadata(name=name, attempt=0),
            image=api.ImageSpec(image=IMAGE),
            command=command,
            log_path=log_path or "%s.log" % name,
            linux=api.LinuxContainerConfig(),
        )

    def create(self, sid, pod_config, config):
        res = self.stub().CreateContainer(
            self.api.CreateContainerRequest(pod_sandbox_id=sid, config=config,
                                            sandbox_config=pod_config), timeout=RUN_TIMEOUT)
        if not res.container_id:
            raise benchlib.BenchError("CreateContainer returned an empty id")
        return res.container_id

    def start_container(self, cid):
        self.stub().StartContainer(self.api.StartContainerRequest(container_id=cid),
                                   timeout=RUN_TIMEOUT)

    def stop_container(self, cid, timeout=STOP_TIMEOUT_S):
        self.stub().StopContainer(self.api.StopContainerRequest(container_id=cid,
                                                                timeout=timeout),
                                  timeout=RUN_TIMEOUT + timeout)

    def remove_container(self, cid):
        self.stub().RemoveContainer(self.api.RemoveContainerRequest(container_id=cid),
                                    timeout=RUN_TIMEOUT)

    def status(self, cid):
        return self.stub().ContainerStatus(self.api.ContainerStatusRequest(container_id=cid),
                                           timeout=RUN_TIMEOUT).status

    def exec_sync(self, cid, cmd):
        return self.stub().ExecSync(self.api.ExecSyncRequest(container_id=cid, cmd=cmd,
                                                             timeout=10),
                                    timeout=RUN_TIMEOUT)

    def container_ids(self, sid):
        api = self.api
        res = self.stub().ListContainers(api.ListContainersRequest(
            filter=api.ContainerFilter(pod_sandbox_id=sid)), timeout=benchlib.RPC_TIMEOUT)
        return [c.id for c in res.containers]

    def discard(self, cids):
        """Best-effort stop (no grace) and removal, after a failure."""
        for cid in list(cids):
            try:
                self.stop_container(cid, timeout=0)
            except Exception:  # noqa: BLE001 - RemoveContainer or the pod removal gets it
                pass
            try:
                self.remove_container(cid)
                cids.remove(cid)
            except Exception:  # noqa: BLE001 - the pod removal gets it
                pass

    # -- processes, mounts, memory ---------------------------------------

    def monitors(self, sid, cids):
        """({pid: cid} of the per-container monitors, {pid: what} of the
        pod-level ones).  crid: one crid-conmon per container (--cid ID),
        one for the pause; containerd: one containerd-shim-runc-v2 for the
        pod (-id SANDBOX), none per container."""
        per_container, per_pod = {}, {}
        cids = set(cids)
        for pid in self.daemon.leftover_processes():
            kind = benchlib.proc_name(pid)
            args = (benchlib.cmdline(pid) or "").split()
            if benchlib.is_crid(self.name) and kind == "crid-conmon" and "--cid" in args:
                i = args.index("--cid")
                ident = args[i + 1] if i + 1 < len(args) else ""
                if ident in cids:
                    per_container[pid] = ident
                elif ident == sid:
                    per_pod[pid] = "crid-conmon (pause)"
            elif self.name == "containerd" and kind == "containerd-shim-runc-v2" \
                    and "-id" in args:
                i = args.index("-id")
                if i + 1 < len(args) and args[i + 1] == sid:
                    per_pod[pid] = kind
        return per_container, per_pod

    def monitor_memory(self, sid, cids):
        per_container, per_pod = self.monitors(sid, cids)

        def total(pids):
            rss = pss = n = 0
            for pid in pids:
                try:
                    m = benchlib.memory(pid)
                except OSError:
                    continue  # exited meanwhile
                n += 1
                rss += m["rss"] or 0
                pss += m["pss"] or 0
            return {"n": n, "rss": rss, "pss": pss}

        out = {"daemon": benchlib.memory(self.daemon.pid), "containers": len(cids),
               "monitored": len(set(per_container.values()))}
        if benchlib.is_crid(self.name):
            out["kind"] = "crid-conmon"
            out["monitors"] = total(per_container)
            out["pod_level"] = total(per_pod)
        else:
            # the shim serves the whole pod: its cost is what the
            # containers cost
            out["kind"] = "containerd-shim-runc-v2"
            out["monitors"] = total(per_pod)
            out["pod_level"] = None
        return out

    def traces_of(self, cids):
        """Processes and mounts still tied to the given containers: a
        process whose command line names one (crid-conmon --cid), a
        container process (busybox) of this daemon's pods, a mount point
        whose path holds one (overlay root filesystems)."""
        cids = set(cids)
        procs = {}
        for pid, line in self.daemon.leftover_processes().items():
            if benchlib.proc_name(pid) == CONTAINER_PROCESS or any(c in line for c in cids):
                procs[pid] = line
        mounts = [m for m in benchlib.mounts_under(self.daemon.dir)
                  if any(c in m for c in cids)]
        return procs, mounts

    def check_gone(self, sid, cids, handler, what):
        """After removing containers: none listed, and (bounded wait) no
        process or mount of theirs; a LEAK note otherwise."""
        found = {}

        def clean():
            procs, mounts = self.traces_of(cids)
            found["procs"], found["mounts"] = procs, mounts
            return not procs and not mounts

        benchlib.wait_until(clean, GONE_TIMEOUT, interval=0.1)
        listed = [c for c in self.container_ids(sid) if c in set(cids)]
        if listed or found["procs"] or found["mounts"]:
            self.notes.append("LEAK %s/%s after %s: containers listed %s, processes %s, "
                              "mounts %s" % (self.name, handler, what,
                                             [c[:12] for c in listed],
                                             self.describe(found["procs"])[:300],
                                             found["mounts"][:5]))
            return False
        return True


# ------------------------------------------------------------------ log check


def check_log(path, expected_lines):
    """Reads a CRI log file that should hold LINE expected_lines times:
    {good, lost, extra, bad_records, bad_lines, partial_records, examples}.
    Records are `<RFC3339Nano> stdout F|P <text>`; P records are joined
    with what follows up to the next F record."""
    want = LINE.encode()
    res = {"good": 0, "bad_records": 0, "bad_lines": 0, "partial_records": 0, "examples": []}
    pending = None
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                res["bad_records"] += 1  # only the last one can be
                res["examples"].append("last record has no newline: %r" % raw[:80])
                continue
            raw = raw[:-1]
            parts = raw.split(b" ", 3)
            if len(parts) != 4 or parts[1] != b"stdout" or parts[2] not in (b"F", b"P") \
                    or not TIMESTAMP.match(parts[0]):
                res["bad_records"] += 1
                if len(res["examples"]) < 5:
                    res["examples"].append("bad record %r" % raw[:100])
                pending = None
                continue
            if parts[2] == b"P":
                res["partial_records"] += 1
                pending = parts[3] if pending is None else pending + parts[3]
                continue
            text = parts[3] if pending is None else pending + parts[3]
            pending = None
            if text == want:
                res["good"] += 1
            else:
                res["bad_lines"] += 1
                if len(res["examples"]) < 5:
                    res["examples"].append("line %r" % text[:100])
    if pending is not None:
        res["bad_lines"] += 1
        res["examples"].append("P records with no closing F at the end: %r" % pending[:80])
    res["lost"] = max(0, expected_lines - res["good"])
    res["extra"] = max(0, res["good"] - expected_lines)
    return res


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return -1


# ------------------------------------------------------------------ phases


def timed(fn):
    t0 = time.perf_counter_ns()
    result = fn()
    return time.perf_counter_ns() - t0, result


def wait_running(world, cids):
    """Bounded: every container RUNNING; returns those that are not."""
    api = world.api
    pending = list(cids)

    def done():
        pending[:] = [c for c in pending if world.status(c).state != api.CONTAINER_RUNNING]
        return not pending

    benchlib.wait_until(done, STATE_TIMEOUT, interval=0.1)
    return pending


def phase_lifecycle(world, handler, sid, pod_config, r):
    """Warm-up, 30 create+start, memory, 30 stop, 30 remove."""
    ids = []
    try:
        for i in range(WARMUP_CONTAINERS):
            cid = world.create(sid, pod_config, world.container_config("warm%d" % i, SLEEPER))
            ids.append(cid)
            world.start_container(cid)
            world.stop_container(cid)
            world.remove_container(cid)
            ids.remove(cid)
        create_start, create, start = [], [], []
        for i in range(CONTAINERS):
            cfg = world.container_config("c%d" % i, SLEEPER)
            t0 = time.perf_counter_ns()
            cid = world.create(sid, pod_config, cfg)
            t1 = time.perf_counter_ns()
            ids.append(cid)
            world.start_container(cid)
            t2 = time.perf_counter_ns()
            create_start.append(t2 - t0)
            create.append(t1 - t0)
            start.append(t2 - t1)
        r["create_start"] = benchlib.summarize_ns(create_start, percentiles=(50, 95))
        r["create"] = benchlib.summarize_ns(create, percentiles=(50, 95))
        r["start"] = benchlib.summarize_ns(start, percentiles=(50, 95))
        time.sleep(SETTLE_SECONDS)
        not_running = wait_running(world, ids)
        if not_running:
            world.notes.append("%s/%s: %d of %d containers not RUNNING after %.0f s"
                               % (world.name, handler, len(not_running), len(ids),
                                  SETTLE_SECONDS + STATE_TIMEOUT))
        r["memory"] = world.monitor_memory(sid, ids)

        stop, odd = [], []
        for cid in ids:
            ns, _ = timed(lambda cid=cid: world.stop_container(cid))
            stop.append(ns)
            st = world.status(cid)
            if st.state != world.api.CONTAINER_EXITED or st.exit_code != 0:
                odd.append("%.12s state %d exit %d reason %r"
                           % (cid, st.state, st.exit_code, st.reason))
        r["stop"] = benchlib.summarize_ns(stop, percentiles=(50, 95))
        if odd:
            world.notes.append("%s/%s: %d containers not EXITED with code 0 after "
                               "StopContainer (SIGTERM ignored?): %s"
                               % (world.name, handler, len(odd), "; ".join(odd[:3])))
        slow = sum(1 for ns in stop if ns >= STOP_TIMEOUT_S * 1e9)
        if slow:
            world.notes.append("%s/%s: %d StopContainer calls took the whole %d s grace period"
                               % (world.name, handler, slow, STOP_TIMEOUT_S))

        removed = list(ids)
        remove = []
        for cid in removed:
            ns, _ = timed(lambda cid=cid: world.remove_container(cid))
            remove.append(ns)
            ids.remove(cid)
        r["remove"] = benchlib.summarize_ns(remove, percentiles=(50, 95))
        world.check_gone(sid, removed, handler, "removing %d containers" % len(removed))
    finally:
        world.discard(ids)  # only after a failure


def phase_exec(world, handler, sid, pod_config, r):
    ids = [world.create(sid, pod_config, world.container_config("exec", SLEEPER))]
    try:
        cid = ids[0]
        world.start_container(cid)
        if wait_running(world, ids):
            raise benchlib.BenchError("exec container not RUNNING after %.0f s" % STATE_TIMEOUT)
        for _ in range(EXEC_WARMUP):
            world.exec_sync(cid, ["true"])
        samples, failed = [], []
        for _ in range(EXECS):
            ns, res = timed(lambda: world.exec_sync(cid, ["true"]))
            samples.append(ns)
            if res.exit_code != 0 or res.stdout or res.stderr:
                failed.append("exit %d stdout %r stderr %r"
                              % (res.exit_code, res.stdout[:60], res.stderr[:60]))
        if failed:
            world.notes.append("%s/%s: %d ExecSync calls of `true` did not exit 0 silently: %s"
                               % (world.name, handler, len(failed), failed[0]))
        r["exec"] = benchlib.summarize_ns(samples, percentiles=(50, 99))
        world.stop_container(cid)
        world.remove_container(cid)
        ids.remove(cid)
    finally:
        world.discard(ids)


def phase_log(world, handler, sid, pod_config, r):
    api = world.api
    log_name = "log-writer.log"
    path = os.path.join(pod_config.log_directory, log_name)
    expected = LOG_BYTES // (len(LINE) + 1)
    ids = [world.create(sid, pod_config, world.container_config("logw", LOG_WRITER,
                                                                log_path=log_name))]
    cid = ids[0]
    try:
        polls = 0
        t0 = time.perf_counter_ns()
        world.start_container(cid)
        deadline = time.monotonic() + LOG_TIMEOUT
        while True:
            st = world.status(cid)
            polls += 1
            if st.state == api.CONTAINER_EXITED:
                exited_ns = time.time_ns()
                break
            if time.monotonic() > deadline:
                raise benchlib.BenchError("log writer still running after %.0f s"
                                          % LOG_TIMEOUT)
            time.sleep(LOG_POLL)
        elapsed = (time.perf_counter_ns() - t0) / 1e9
        # untimed from here; the log's mtime is its last record: the writer's end
        last_write_ns = os.stat(path).st_mtime_ns
        log = {"seconds": elapsed, "mib_s": LOG_BYTES / MIB / elapsed, "exit": st.exit_code,
               "process_s": (st.finished_at - st.started_at) / 1e9
               if st.finished_at and st.started_at else None, "polls": polls,
               "exited_ms": (exited_ns - last_write_ns) / 1e6,
               "finished_ms": (st.finished_at - last_write_ns) / 1e6 if st.finished_at else None}
        if st.exit_code != 0:
            world.notes.append("%s/%s: the log writer exited %d (%s)"
                               % (world.name, handler, st.exit_code, st.reason))
        check = check_log(path, expected)
        log["late"] = 0
        if check["lost"]:
            # Missing at EXITED: see whether they arrive late.
            size = [file_size(path)]

            def settled():
                time.sleep(0.5)
                now = file_size(path)
                same = now == size[0]
                size[0] = now
                return same

            benchlib.wait_until(settled, LOG_LATE_WAIT, interval=0)
            again = check_log(path, expected)
            log["late"] = again["good"] - check["good"]
            check = again
        log.update(check)
        log["file_mib"] = file_size(path) / MIB
        r["log"] = log
        if check["lost"] or check["extra"] or check["bad_records"] or check["bad_lines"]:
            world.notes.append("%s/%s log check: %d of %d lines lost, %d extra, %d bad "
                               "records, %d wrong lines%s; e.g. %s"
                               % (world.name, handler, check["lost"], expected, check["extra"],
                                  check["bad_records"], check["bad_lines"],
                                  ", %d of them only after EXITED" % log["late"]
                                  if log["late"] else "", "; ".join(check["examples"][:3])))
        world.remove_container(cid)
        ids.remove(cid)
    finally:
        world.discard(ids)
        try:
            os.unlink(path)  # 300+ MiB; its directory goes with the daemon's temp dir
        except OSError:
            pass


PHASES = (("lifecycle", phase_lifecycle), ("exec", phase_exec), ("log", phase_log))


def phases():
    """The phases BENCH_CONTAINER_PHASES names (comma list), default all."""
    wanted = os.environ.get("BENCH_CONTAINER_PHASES", ",".join(name for name, _ in PHASES))
    known = dict(PHASES)
    out = []
    for name in (w.strip() for w in wanted.split(",") if w.strip()):
        if name not in known:
            raise benchlib.BenchError("BENCH_CONTAINER_PHASES: unknown phase %r (known: %s)"
                                      % (name, ", ".join(known)))
        out.append((name, known[name]))
    return out


def measure(world, handler, failures):
    """Every phase for one OCI runtime handler in one pod; a phase that
    fails is reported and the next one still runs."""
    r = {"handler": handler}
    pod_config = world.pod_config("ctr-%s-%s" % (handler, secrets.token_hex(2)))
    sid = world.run_pod(pod_config, handler)
    try:
        if not world.check_pods([sid], handler, "pod for the containers"):
            raise benchlib.BenchError("the pod is not READY with an IP")
        for what, phase in phases():
            try:
                phase(world, handler, sid, pod_config, r)
            except Exception as e:  # noqa: BLE001 - report, go on
                failures.append("%s/%s %s: %s" % (world.name, handler, what, str(e)[:500]))
    finally:
        world.stop_remove(sid)
    world.wait_pods_gone(handler, "removing the pod")
    return r


# ------------------------------------------------------------------ tables


def latency_table(title):
    return benchlib.Table(title, ["runtime", "handler", "p50 ms", "p95 ms", "min ms", "max ms",
                                  "mean ms"])


def run():
    tables = {
        "create_start": latency_table("container: CreateContainer + StartContainer latency, %d "
                                      "sequential containers in one pod" % CONTAINERS),
        "stop": latency_table("container: StopContainer latency (process exits on SIGTERM), "
                              "%d sequential" % CONTAINERS),
        "remove": latency_table("container: RemoveContainer latency, %d sequential"
                                % CONTAINERS),
        "exec": benchlib.Table("container: ExecSync of `true`, %d sequential" % EXECS,
                               ["runtime", "handler", "p50 ms", "p99 ms", "min ms", "max ms",
                                "mean ms"]),
        "log": benchlib.Table("container: log throughput, %d MiB of %d-byte lines to stdout"
                              % (LOG_BYTES // MIB, len(LINE) + 1),
                              ["runtime", "handler", "start->EXITED s", "MiB/s",
                               "process s", "lines ok", "lines lost", "P records",
                               "log file MiB"]),
        "exit": benchlib.Table("container: exit reported after the last output of the log "
                               "writer (%d MiB)" % (LOG_BYTES // MIB),
                               ["runtime", "handler", "EXITED after ms", "finishedAt after ms"]),
        "mem": benchlib.Table("container: monitor memory at %d running containers" % CONTAINERS,
                              ["runtime", "handler", "daemon RSS MB", "daemon PSS MB",
                               "monitor procs", "monitors RSS MB", "monitors PSS MB",
                               "RSS/container KB", "PSS/container KB"]),
    }
    failures, notes, details = [], [], []
    hs = handlers()
    image = busybox_image()
    for name, results in bench_sandbox.each_runtime(
            lambda name, index: ContainerWorld(name, index, image), hs,
            lambda world, h: measure(world, h, failures), failures, notes, details):
        for r in results:
            add_rows(tables, name, r)

    tables["create_start"].note(
        "target (issue): crid p50 <= %.0f ms; %d untimed warm-up containers first; the "
        "containers stay up, so the n-th call runs next to n-1 containers"
        % (TARGET_CREATE_START_P50_MS, WARMUP_CONTAINERS))
    tables["stop"].note("target (issue): crid p50 <= %.0f ms; grace period %d s; PID 1 is "
                        "`sh` with a TERM trap (exit 0)" % (TARGET_STOP_P50_MS, STOP_TIMEOUT_S))
    tables["remove"].note("RemoveContainer of each stopped container, timed apart from the stop")
    tables["exec"].note("target (issue): crid p50 <= %.0f ms; %d untimed calls first"
                        % (TARGET_EXEC_P50_MS, EXEC_WARMUP))
    tables["log"].note("target (issue): crid >= %.0f MiB/s; timed from StartContainer until "
                       "ContainerStatus says EXITED (polled every %.0f ms); process s = "
                       "finished_at - started_at as the runtime reports them; then every "
                       "line is checked in the CRI log file, untimed"
                       % (TARGET_LOG_MIB_S, LOG_POLL * 1000))
    tables["log"].note("writer: `busybox yes <63 chars> | busybox dd bs=%d iflag=fullblock "
                       "count=%d` (%d lines)" % (LOG_BLOCK, LOG_BYTES // LOG_BLOCK,
                                                 LOG_BYTES // (len(LINE) + 1)))
    tables["exit"].note("both after the log file's mtime (its last record: the writer's end); "
                        "EXITED: the first ContainerStatus (polled every %.0f ms) that says so; "
                        "finishedAt: as ContainerStatus reports it" % (LOG_POLL * 1000))
    tables["mem"].note("target (issue): crid monitor <= %.0f KB RSS and <= %.0f KB PSS per "
                       "container" % (TARGET_MONITOR_RSS_KB, TARGET_MONITOR_PSS_KB))
    tables["mem"].note("monitors: crid's crid-conmon of each container (the pause's own "
                       "monitor not counted, shown below); containerd's "
                       "containerd-shim-runc-v2, one per pod, serving the pause and every "
                       "container; per container = monitors / %d containers; read %.0f s "
                       "after the last StartContainer. PSS splits the pages the processes "
                       "share" % (CONTAINERS, SETTLE_SECONDS))
    last = tables["mem"]
    last.close(details, notes, failures=failures)
    return [tables[k] for k in ("create_start", "stop", "remove", "exec", "log", "exit", "mem")]


def add_rows(tables, name, r):
    h = r["handler"]
    for key in ("create_start", "stop", "remove", "exec"):
        s = r.get(key, {})
        high = "p99" if key == "exec" else "p95"
        tables[key].add_row(name, h, benchlib.fmt(s.get("p50"), 1), benchlib.fmt(s.get(high), 1),
                            benchlib.fmt(s.get("min"), 1), benchlib.fmt(s.get("max"), 1),
                            benchlib.fmt(s.get("mean"), 1))
    if r.get("create") and r.get("start"):
        tables["create_start"].note(
            "%s/%s: CreateContainer p50 %.1f ms p95 %.1f ms, StartContainer p50 %.1f ms p95 "
            "%.1f ms" % (name, h, r["create"]["p50"], r["create"]["p95"], r["start"]["p50"],
                         r["start"]["p95"]))
    log = r.get("log")
    if log:
        tables["log"].add_row(name, h, benchlib.fmt(log["seconds"], 2),
                              benchlib.fmt(log["mib_s"], 0), benchlib.fmt(log["process_s"], 2),
                              str(log["good"]), str(log["lost"]), str(log["partial_records"]),
                              benchlib.fmt(log["file_mib"], 0))
        tables["exit"].add_row(name, h, benchlib.fmt(log["exited_ms"], 1),
                               benchlib.fmt(log["finished_ms"], 1))
    else:
        tables["log"].add_row(name, h, "-", "-", "-", "-", "-", "-", "-")
        tables["exit"].add_row(name, h, "-", "-")
    m = r.get("memory")
    if m:
        n = m["containers"] or 1
        mon = m["monitors"]
        mb = benchlib.MB
        tables["mem"].add_row(name, h, benchlib.fmt(m["daemon"]["rss"] / mb, 1),
                              benchlib.fmt((m["daemon"]["pss"] or 0) / mb, 1),
                              "%d %s" % (mon["n"], m["kind"]),
                              benchlib.fmt(mon["rss"] / mb, 2), benchlib.fmt(mon["pss"] / mb, 2),
                              benchlib.fmt(mon["rss"] / n / KB, 0),
                              benchlib.fmt(mon["pss"] / n / KB, 0))
        if m["kind"] == "crid-conmon" and m["monitored"] != m["containers"]:
            tables["mem"].note("%s/%s: %d of %d containers have a crid-conmon"
                               % (name, h, m["monitored"], m["containers"]))
        pod = m.get("pod_level")
        if pod and pod["n"]:
            tables["mem"].note("%s/%s per pod, not counted above: %d crid-conmon of the pause, "
                               "RSS %.0f KB, PSS %.0f KB"
                               % (name, h, pod["n"], pod["rss"] / KB, pod["pss"] / KB))
    else:
        tables["mem"].add_row(name, h, "-", "-", "-", "-", "-", "-", "-")
