"""Containers: CreateContainer+StartContainer, StopContainer and
RemoveContainer latency, ExecSync latency, log throughput, and the memory
of the per-container monitors at 30 running containers.

Same isolation as bench_sandbox.py (whose PodWorld this reuses): each
daemon in a network namespace of its own with the same bridge conflist,
run state on a tmpfs of its own, pods under a cgroup parent of their own,
everything stopped by pid and removed afterwards.  One image for both
runtimes, built here from busybox-static (tests/fixtures/build_images.py:
busybox plus a few applet links), imported before the runs (crid: `crid
image import` of an OCI layout; containerd: `ctr images import` of the
same layer as a docker archive); nothing is pulled.

For each OCI runtime handler (BENCH_CONTAINER_HANDLERS, default
"crun,runc"; containerd runs both through containerd-shim-runc-v2 with
BinaryName), in one pod per handler:
  - 2 untimed warm-up containers, then 30 containers created and started
    in sequence, each CreateContainer + StartContainer pair timed; they
    run `sh -c "trap 'exit 0' TERM; sleep 3600 & wait"`, so SIGTERM ends
    them at once;
  - ~2 s later the memory (RSS, PSS) of the daemon and of the monitors:
    crid's crid-conmon (one per container), containerd's shim (one per
    pod, so its figure is divided by the containers it serves);
  - StopContainer (timeout 10 s) of each, timed, then RemoveContainer of
    each, timed;
  - ExecSync of `true` in one running container: 5 untimed, then 200
    timed in sequence (p50, p99);
  - log throughput: a container writing 200 MiB of 64-byte lines (63
    characters + newline, `busybox yes | busybox head -c`) to stdout:
    from StartContainer until ContainerStatus says EXITED (polled every
    5 ms), then, untimed, every line of the CRI log file is checked (the
    format, the stream, partial records joined, the line count).
"""

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
SETTLE_SECONDS = 2.0
STOP_TIMEOUT_S = 10
LOG_BYTES = 200 * 1024 * 1024
LINE = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"  # 63 characters
LOG_TIMEOUT = 120.0  # seconds for the log writer to finish
RUN_TIMEOUT = bench_sandbox.RUN_TIMEOUT
IMAGE = "crid.invalid/bench/busybox:1"  # .invalid never resolves
SLEEPER = ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]

TARGET_CREATE_START_P50_MS = 20.0
TARGET_STOP_P50_MS = 15.0
TARGET_EXEC_P50_MS = 15.0
TARGET_LOG_MIB_S = 150.0
TARGET_MONITOR_RSS_MB = 1.0
TARGET_MONITOR_PSS_MB = 0.3

LOG_RECORD = re.compile(rb"^(\S+) (stdout|stderr) ([PF]) (.*)$")


def handlers():
    wanted = os.environ.get("BENCH_CONTAINER_HANDLERS", "crun,runc")
    names = [h.strip() for h in wanted.split(",") if h.strip()]
    for h in names:
        if h not in bench_sandbox.OCI_RUNTIMES:
            raise benchlib.BenchError("BENCH_CONTAINER_HANDLERS: unknown handler %r (known: %s)"
                                      % (h, ", ".join(bench_sandbox.OCI_RUNTIMES)))
    return names


def busybox_image():
    """busybox and its applet links, no hard links (containerd applies a
    hard link entry's mode to the file it links to)."""
    t = build_images.TarBuilder()
    t.dir("bin").file("bin/busybox", build_images.read_busybox(), mode=0o755)
    for applet in build_images.BUSYBOX_APPLETS:
        t.symlink("bin/%s" % applet, "busybox")
    t.dir("tmp", mode=0o1777)
    return build_images.Image([t.bytes()], compression="none",
                              config={"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]})


def write_oci_archive(path, image):
    layout = Path(str(path) + ".layout")
    build_images.write_oci_layout(layout, {IMAGE: image})
    with tarfile.open(path, "w") as tar:
        for entry in sorted(os.listdir(layout)):
            tar.add(layout / entry, arcname=entry)
    return path


def write_docker_archive(path, image):
    """The same layer and config as `docker save` writes them."""
    import io
    import json

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


class ContainerWorld(bench_sandbox.PodWorld):
    """A PodWorld with the busybox image in its daemon."""

    def __init__(self, name, index):
        super().__init__(name, index)
        self.image = busybox_image()

    def _prepare(self, d):
        super()._prepare(d)
        if self.name == "crid":
            # The store is locked while crid runs: import first.
            archive = write_oci_archive(os.path.join(d.dir, "busybox.tar"), self.image)
            benchlib.run_cmd([d.binary, "--config", d.config_file, "--config-dir", d.config_dir,
                              "--root", d.root, "--state-dir", d.state_dir, "image", "import",
                              archive], timeout=120)

    def start(self):
        super().start()
        if self.name == "containerd":
            archive = write_docker_archive(os.path.join(self.daemon.dir, "busybox.tar"),
                                           self.image)
            self.daemon.import_image(archive, IMAGE)
        return self

    # -- CRI --------------------------------------------------------------

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
        res = self.daemon.runtime_stub().CreateContainer(
            self.api.CreateContainerRequest(pod_sandbox_id=sid, config=config,
                                            sandbox_config=pod_config), timeout=RUN_TIMEOUT)
        return res.container_id

    def start_container(self, cid):
        self.daemon.runtime_stub().StartContainer(
            self.api.StartContainerRequest(container_id=cid), timeout=RUN_TIMEOUT)

    def stop_container(self, cid):
        self.daemon.runtime_stub().StopContainer(
            self.api.StopContainerRequest(container_id=cid, timeout=STOP_TIMEOUT_S),
            timeout=RUN_TIMEOUT + STOP_TIMEOUT_S)

    def remove_container(self, cid):
        self.daemon.runtime_stub().RemoveContainer(
            self.api.RemoveContainerRequest(container_id=cid), timeout=RUN_TIMEOUT)

    def status(self, cid):
        return self.daemon.runtime_stub().ContainerStatus(
            self.api.ContainerStatusRequest(container_id=cid), timeout=RUN_TIMEOUT).status

    def exec_sync(self, cid, cmd):
        return self.daemon.runtime_stub().ExecSync(
            self.api.ExecSyncRequest(container_id=cid, cmd=cmd, timeout=10), timeout=RUN_TIMEOUT)

    def monitor_memory(self, containers):
        """Monitors' RSS/PSS per container, and the daemon's."""
        kind = "crid-conmon" if self.name == "crid" else "containerd-shim-runc-v2"
        rss = pss = count = 0
        for pid in self.pod_processes():
            if benchlib.proc_name(pid) != kind:
                continue
            try:
                m = benchlib.memory(pid)
            except OSError:
                continue
            count += 1
            rss += m["rss"] or 0
            pss += m["pss"] or 0
        return {"daemon": benchlib.memory(self.daemon.pid), "kind": kind, "procs": count,
                "rss": rss, "pss": pss, "containers": containers}


def check_log(path, expected_lines):
    """(lines found in order, problems) of a CRI log holding LINE repeated."""
    problems = []
    lines = 0
    partial = b""
    want = LINE.encode()
    with open(path, "rb") as f:
        for raw in f:
            m = LOG_RECORD.match(raw.rstrip(b"\n"))
            if not m:
                problems.append("bad record %r" % raw[:80])
                break
            if m.group(2) != b"stdout":
                problems.append("unexpected stream %r" % m.group(2))
                break
            partial += m.group(4)
            if m.group(3) == b"P":
                continue
            if partial != want:
                problems.append("line %d is %r" % (lines + 1, partial[:80]))
                break
            lines += 1
            partial = b""
    if not problems and lines != expected_lines:
        problems.append("%d lines, expected %d" % (lines, expected_lines))
    return lines, problems


def timed(fn):
    t0 = time.perf_counter_ns()
    result = fn()
    return time.perf_counter_ns() - t0, result


def phase_lifecycle(world, handler, r):
    tag = handler
    config = world.pod_config("ctr-%s-%s" % (tag, secrets.token_hex(2)))
    sid = world.run_pod(config, handler)
    ids = []
    try:
        for i in range(WARMUP_CONTAINERS):
            cid = world.create(sid, config, world.container_config("warm%d" % i, SLEEPER))
            world.start_container(cid)
            world.stop_container(cid)
            world.remove_container(cid)
        create_start = []
        for i in range(CONTAINERS):
            cfg = world.container_config("c%d" % i, SLEEPER)
            t0 = time.perf_counter_ns()
            cid = world.create(sid, config, cfg)
            world.start_container(cid)
            create_start.append(time.perf_counter_ns() - t0)
            ids.append(cid)
        time.sleep(SETTLE_SECONDS)
        running = sum(1 for cid in ids if world.status(cid).state == world.api.CONTAINER_RUNNING)
        if running != len(ids):
            world.notes.append("%s/%s: %d of %d containers running before the stops"
                               % (world.name, handler, running, len(ids)))
        r["memory"] = world.monitor_memory(len(ids))
        stop, remove = [], []
        for cid in ids:
            ns, _ = timed(lambda cid=cid: world.stop_container(cid))
            stop.append(ns)
            st = world.status(cid)
            if st.exit_code != 0:
                world.notes.append("%s/%s: container %.12s exited %d after StopContainer"
                                   % (world.name, handler, cid, st.exit_code))
        for cid in list(ids):
            ns, _ = timed(lambda cid=cid: world.remove_container(cid))
            remove.append(ns)
            ids.remove(cid)
        r["create_start"] = benchlib.summarize_ns(create_start, percentiles=(50, 95))
        r["stop"] = benchlib.summarize_ns(stop, percentiles=(50, 95))
        r["remove"] = benchlib.summarize_ns(remove, percentiles=(50, 95))
        phase_exec(world, sid, config, r)
        phase_log(world, handler, sid, config, r)
    finally:
        for cid in ids:  # only after a failure
            try:
                world.stop_container(cid)
                world.remove_container(cid)
            except Exception:  # noqa: BLE001 - the pod removal gets them
                pass
        world.stop_remove(sid)


def phase_exec(world, sid, config, r):
    cid = world.create(sid, config, world.container_config("exec", SLEEPER))
    try:
        world.start_container(cid)
        for _ in range(EXEC_WARMUP):
            world.exec_sync(cid, ["true"])
        samples, failed = [], 0
        for _ in range(EXECS):
            ns, res = timed(lambda: world.exec_sync(cid, ["true"]))
            samples.append(ns)
            failed += res.exit_code != 0
        if failed:
            world.notes.append("%s: %d ExecSync calls of `true` did not exit 0"
                               % (world.name, failed))
        r["exec"] = benchlib.summarize_ns(samples, percentiles=(50, 99))
    finally:
        world.stop_container(cid)
        world.remove_container(cid)


def phase_log(world, handler, sid, config, r):
    # dd hands on whole 64 KiB blocks (each 1024 lines), as a program
    # writing its output in large buffers does.
    script = ("busybox yes %s | busybox dd bs=65536 count=%d iflag=fullblock 2>/dev/null"
              % (LINE, LOG_BYTES // 65536))
    log_name = "log-writer.log"
    cid = world.create(sid, config, world.container_config("logw", ["/bin/sh", "-c", script],
                                                           log_path=log_name))
    api = world.api
    try:
        t0 = time.perf_counter_ns()
        world.start_container(cid)
        deadline = time.monotonic() + LOG_TIMEOUT
        while world.status(cid).state != api.CONTAINER_EXITED:
            if time.monotonic() > deadline:
                raise benchlib.BenchError("log writer still running after %.0f s" % LOG_TIMEOUT)
            time.sleep(0.005)
        elapsed = (time.perf_counter_ns() - t0) / 1e9
        st = world.status(cid)
        path = os.path.join(config.log_directory, log_name)
        lines, problems = check_log(path, LOG_BYTES // (len(LINE) + 1))
        r["log"] = {"seconds": elapsed, "mib_s": LOG_BYTES / (1024 * 1024) / elapsed,
                    "lines": lines, "exit": st.exit_code,
                    "file_mib": os.path.getsize(path) / (1024 * 1024)}
        if problems:
            world.notes.append("%s/%s log check: %s" % (world.name, handler, "; ".join(problems)))
            r["log"]["lost"] = True
    finally:
        world.remove_container(cid)


def measure(world, handler):
    r = {"handler": handler}
    phase_lifecycle(world, handler, r)
    world.wait_pods_gone(handler, "removing the pod")
    return r


def run():
    tables = {
        "life": benchlib.Table(
            "container: latency in one pod, %d containers in sequence" % CONTAINERS,
            ["runtime", "handler", "create+start p50 ms", "p95 ms", "stop p50 ms", "p95 ms",
             "remove p50 ms", "p95 ms"]),
        "exec": benchlib.Table("container: ExecSync of `true`, %d in sequence" % EXECS,
                               ["runtime", "handler", "p50 ms", "p99 ms", "min ms", "max ms"]),
        "log": benchlib.Table("container: log throughput, %d MiB of %d-byte lines to stdout"
                              % (LOG_BYTES // (1024 * 1024), len(LINE) + 1),
                              ["runtime", "handler", "seconds", "MiB/s", "lines checked",
                               "log file MiB"]),
        "mem": benchlib.Table("container: monitor memory at %d running containers" % CONTAINERS,
                              ["runtime", "handler", "daemon RSS MB", "monitor procs",
                               "monitors RSS MB", "monitors PSS MB", "RSS/container MB",
                               "PSS/container MB"]),
    }
    failures, notes, details = [], [], []
    hs = handlers()
    for index, name in enumerate(benchlib.runtime_names(), start=1):
        world = ContainerWorld(name, index)
        results = []
        try:
            with world:
                version = world.daemon.version()
                details.append("%s: %s %s, daemon in netns %s, cgroup parent %s"
                               % (name, version.runtime_name, version.runtime_version,
                                  world.netns.name, world.cgroup_parent))
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
        for r in results or [{"handler": h} for h in hs]:
            add_rows(tables, name, r)
    tables["life"].note("targets (issue): crid create+start p50 <= %.0f ms, stop p50 <= %.0f ms"
                        % (TARGET_CREATE_START_P50_MS, TARGET_STOP_P50_MS))
    tables["life"].note("%d untimed warm-up containers first; containers stay up until the "
                        "stops, so the n-th create runs next to n-1 containers; the process "
                        "exits on SIGTERM" % WARMUP_CONTAINERS)
    tables["exec"].note("target (issue): crid ExecSync p50 <= %.0f ms; %d untimed calls first"
                        % (TARGET_EXEC_P50_MS, EXEC_WARMUP))
    tables["log"].note("target (issue): crid >= %.0f MiB/s; from StartContainer to EXITED "
                       "(ContainerStatus polled every 5 ms); every line then checked in the "
                       "CRI log file" % TARGET_LOG_MIB_S)
    tables["mem"].note("target (issue): crid monitor <= %.1f MB RSS and <= %.1f MB PSS per "
                       "container" % (TARGET_MONITOR_RSS_MB, TARGET_MONITOR_PSS_MB))
    tables["mem"].note("monitors: crid-conmon, one per container and one for the pause; "
                       "containerd-shim-runc-v2, one per pod; per container = all monitors "
                       "of the pod / containers")
    last = tables["mem"]
    for d in details:
        last.note(d)
    for n in notes:
        last.note(n)
    for f in failures:
        last.fail(f)
    return [tables["life"], tables["exec"], tables["log"], tables["mem"]]


def add_rows(tables, name, r):
    h = r["handler"]
    life = [r.get(k, {}) for k in ("create_start", "stop", "remove")]
    cells = []
    for s in life:
        cells += [benchlib.fmt(s.get("p50"), 1), benchlib.fmt(s.get("p95"), 1)]
    tables["life"].add_row(name, h, *cells)
    e = r.get("exec", {})
    tables["exec"].add_row(name, h, benchlib.fmt(e.get("p50"), 1), benchlib.fmt(e.get("p99"), 1),
                           benchlib.fmt(e.get("min"), 1), benchlib.fmt(e.get("max"), 1))
    log = r.get("log")
    if log:
        tables["log"].add_row(name, h, benchlib.fmt(log["seconds"], 2),
                              benchlib.fmt(log["mib_s"], 0),
                              "%d%s" % (log["lines"], " (LOST)" if log.get("lost") else ""),
                              benchlib.fmt(log["file_mib"], 0))
    else:
        tables["log"].add_row(name, h, "-", "-", "-", "-")
    m = r.get("memory")
    if m:
        n = m["containers"] or 1
        mb = benchlib.MB
        tables["mem"].add_row(name, h, benchlib.fmt(m["daemon"]["rss"] / mb, 1),
                              "%d %s" % (m["procs"], m["kind"]),
                              benchlib.fmt(m["rss"] / mb, 2), benchlib.fmt(m["pss"] / mb, 2),
                              benchlib.fmt(m["rss"] / n / mb, 3),
                              benchlib.fmt(m["pss"] / n / mb, 3))
    else:
        tables["mem"].add_row(name, h, "-", "-", "-", "-", "-", "-")
