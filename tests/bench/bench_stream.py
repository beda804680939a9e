"""Streaming (the URLs Exec and PortForward return, used over SPDY/3.1 as
crictl and the kubelet use them): exec latency, port-forward throughput,
the memory an open exec session costs and what 1000 exec sessions leave
behind, crid against containerd's CRI plugin.

Same isolation as bench_container.py, whose ContainerWorld this reuses
(and with it bench_sandbox.py's PodWorld): for each runtime, one after the
other in the same run, a fresh network namespace with the daemon inside
it, the bridge conflist, run state on a tmpfs, a cgroup parent of its own,
the busybox image built from busybox-static and imported, the daemon
stopped by pid and whatever its temp dir left killed, unmounted and
removed.  Both daemons' streaming servers listen on 127.0.0.1 inside that
namespace (crid: `stream_address = "127.0.0.1"`, `stream_port = 0`;
containerd: `stream_server_address = "127.0.0.1"`, `stream_server_port =
"0"`), so every client connects from inside it: the project's own SPDY
client (tests/integration/streamclient.py, `netns=`) and crictl through
`nsenter --net`.

Per OCI runtime handler (BENCH_STREAM_HANDLERS, default "crun"), in one
pod of that handler with two containers, a sleeper (`sh` with a TERM
trap, `sleep 3600`) to exec into and a port-forward server (busybox nc,
see SERVER_SCRIPT), in this order:

  1. exec latency: 10 untimed sessions, then BENCH_STREAM_EXECS (200)
     sequential sessions of `true` (stdout + stderr, no tty, protocol
     v4.channel.k8s.io), each timed from the Exec RPC to the final status
     (stdout and stderr read to their FIN, then the error stream to its
     end, as client-go does); the client then closes the connection
     (GOAWAY + close, untimed).  Exit code 0, empty output and no protocol
     violation are checked.  Then, when /opt/lab/bin/crictl (CRICTL_BIN)
     exists, BENCH_STREAM_CRICTL_RUNS (20) runs of `crictl exec ID true`
     after 2 untimed, each timed as a whole process (start-up of nsenter
     and crictl included: what a user waits for);
  2. growth: the daemon's (and monitors') memory, threads and open fds
     read, then BENCH_STREAM_LEAK_EXECS (1000) more sequential sessions of
     `true`, the RSS sampled every 100, then (after 1 s) read again;
  3. open sessions: BENCH_STREAM_SESSIONS (50) exec sessions of `sleep
     600` opened one after the other with stdin, stdout and stderr streams
     and kept open; once every `sleep 600` runs and 1 s later, the memory
     of the daemon (RSS, RssAnon, and RSS by kind of mapping from
     /proc/PID/smaps) and of the monitors (crid: every crid-conmon of the
     pod; containerd: the pod's containerd-shim-runc-v2, which starts each
     exec and copies its stdio to FIFOs that containerd reads) compared
     with before, per session; the exec'd processes themselves are not
     counted.  Then every session is closed (GOAWAY + close, as a client
     that exits) and, for up to 10 s, the `sleep 600` processes are
     counted; the daemon's threads and fds are compared with before.
     Those still running then (containerd leaves them) are killed by pid:
     containerd's StopContainer of their container hung on them.  A
     second round of as many sessions follows, to tell memory the
     allocator kept for reuse from memory that is lost;
  4. port-forward: one forwarded connection per transfer (a fresh
     PortForward RPC and SPDY session each), BENCH_STREAM_BYTES (1 GiB)
     from the pod to the client (`busybox dd if=/dev/zero bs=1M` writing
     straight into the accepted socket), then the same amount from the
     client to the pod (`busybox dd of=/dev/null bs=1M iflag=fullblock`,
     whose record counts come back and are checked), each after an
     untimed 4 MiB one; timed from opening the streams until the last
     byte (or the answer) arrived.  The server closes its socket when
     done and the client never half-closes first (containerd 1.6 does not
     pass a half-close on; it drops the connection 1 s after one
     direction ended); when the data stream's FIN and the end of the error
     stream (client-go waits for it) come is recorded apart.  The daemon's
     CPU time and RSS (sampled every 50 ms) and the client's own CPU time
     are read alongside; the client (Python) costs the same per DATA
     frame, so the frame size is shown too.

Afterwards the containers and the pod are removed and checked gone
(processes, mounts, veths, leases); leaks are printed as notes.
"""

import os
import re
import secrets
import signal
import subprocess
import sys
import time

import benchlib
import bench_container
import bench_sandbox

sys.path.insert(0, os.path.join(benchlib.REPO, "tests", "integration"))

import streamclient as sc  # noqa: E402

TITLE = "stream: exec latency (SPDY, crictl), port-forward throughput, memory per exec session"

MIB = 1024 * 1024
KIB = 1024.0


def env_int(name, default, minimum=0):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise benchlib.BenchError("%s=%r is not a number" % (name, raw)) from None
    if value < minimum:
        raise benchlib.BenchError("%s=%d: at least %d" % (name, value, minimum))
    return value


def env_bytes(name, default):
    """A byte count: 1073741824, 512M, 1G, 64MiB (binary units)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    m = re.match(r"^\s*(\d+)\s*([kmg]?)(i?b)?\s*$", raw, re.IGNORECASE)
    if not m:
        raise benchlib.BenchError("%s=%r is not a byte count (e.g. 1G, 64M, 1048576)"
                                  % (name, raw))
    value = int(m.group(1)) * {"": 1, "k": 1024, "m": MIB, "g": 1024 * MIB}[m.group(2).lower()]
    if value < 1:
        raise benchlib.BenchError("%s: at least 1 byte" % name)
    return value


EXEC_WARMUP = 10
EXECS = env_int("BENCH_STREAM_EXECS", 200, 1)
LEAK_EXECS = env_int("BENCH_STREAM_LEAK_EXECS", 1000, 0)
LEAK_SAMPLE_EVERY = 100
SESSIONS = env_int("BENCH_STREAM_SESSIONS", 50, 1)
CRICTL_RUNS = env_int("BENCH_STREAM_CRICTL_RUNS", 20, 0)
CRICTL_WARMUP = 2
PF_BYTES = env_bytes("BENCH_STREAM_BYTES", 1024 * MIB)
PF_WARMUP_BYTES = 4 * MIB
CRICTL_BIN = os.environ.get("CRICTL_BIN", "/opt/lab/bin/crictl")

STREAM_TIMEOUT = 20.0  # seconds for one exec session's handshake and end
MAX_EXEC_ERRORS = 5  # exec sessions that raise before a phase gives up
SETTLE_SECONDS = 1.0  # before reading memory
CLOSE_WAIT = 10.0  # seconds for the exec'd processes to go after their sessions closed
LISTEN_TIMEOUT = 10.0  # seconds for the port-forward servers to listen
PF_MIN_RATE = 20 * MIB  # bytes/s below which a transfer is abandoned (bounds the wait)
PF_SAMPLE_INTERVAL = 0.05
ERROR_STREAM_WAIT = 2.0  # seconds for the error stream to end after the data FIN (and again
# after our half-close of the data stream, when it did not)

DOWN_PORT = 5001  # after "q r\n": sends q MiB of zeros, then r bytes, then closes
UP_PORT = 5002  # after "q r\n": reads q MiB, then r bytes, answers dd's counts, closes
# PID 1 is a shell with a TERM trap (see bench_container.SLEEPER); nc -ll
# forks a server per connection, -e hands it the accepted socket as stdin
# and stdout, so dd reads and writes the socket itself (no relay).
SERVER_SCRIPT = (
    "trap 'exit 0' TERM; "
    "busybox nc -ll -p %d -e /bin/sh -c 'read q r; "
    "busybox dd if=/dev/zero bs=1048576 count=$q 2>/dev/null; "
    "if [ \"$r\" -gt 0 ]; then busybox dd if=/dev/zero bs=$r count=1 2>/dev/null; fi' & "
    "busybox nc -ll -p %d -e /bin/sh -c 'read q r; "
    "{ busybox dd of=/dev/null bs=1048576 count=$q iflag=fullblock; "
    "if [ \"$r\" -gt 0 ]; then busybox dd of=/dev/null bs=$r count=1 iflag=fullblock; fi; } "
    "2>&1 | busybox grep \"records in\"' & "
    "wait" % (DOWN_PORT, UP_PORT))
SLEEPER = bench_container.SLEEPER
OPEN_CMD = ["sleep", "600"]  # the kept-open exec sessions
OPEN_CMDLINE = " ".join(OPEN_CMD)

TARGET_EXEC_P50_MS = 15.0
TARGET_SESSION_KIB = 64.0


def handlers():
    return bench_sandbox.handlers_from_env("BENCH_STREAM_HANDLERS", "crun")


# ------------------------------------------------------------------ world


class StreamWorld(bench_container.ContainerWorld):
    """A ContainerWorld with the streaming RPCs and clients that connect
    from inside the daemon's network namespace."""

    def __init__(self, name, index, image):
        super().__init__(name, index, image)
        self.urls = []  # one example URL per kind, for the notes

    def _prepare(self, d):
        super()._prepare(d)
        # crictl's own config, so /etc/crictl.yaml is never read.
        self.crictl_config = os.path.join(d.dir, "crictl.yaml")
        with open(self.crictl_config, "w") as f:
            f.write("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 10\n"
                    "debug: false\npull-image-on-create: false\n" % (d.socket, d.socket))

    def _remember(self, url):
        kind = url.split("/")[3] if url.count("/") >= 4 else url
        if not any(u.split("/")[3] == kind for u in self.urls if u.count("/") >= 4):
            self.urls.append(url)

    def exec_url(self, cid, cmd, stdin=False, stdout=True, stderr=True, tty=False):
        url = self.stub().Exec(self.api.ExecRequest(container_id=cid, cmd=cmd, tty=tty,
                                                    stdin=stdin, stdout=stdout, stderr=stderr),
                               timeout=benchlib.RPC_TIMEOUT).url
        self._remember(url)
        return url

    def portforward_url(self, sid):
        url = self.stub().PortForward(self.api.PortForwardRequest(pod_sandbox_id=sid),
                                      timeout=benchlib.RPC_TIMEOUT).url
        self._remember(url)
        return url

    def session(self, url, stdin=False):
        return sc.open_remote_command(url, stdin=stdin, stdout=True, stderr=True, tty=False,
                                      timeout=STREAM_TIMEOUT, netns=self.netns.path)

    def alive(self):
        return self.daemon.proc is not None and self.daemon.proc.poll() is None

    def check_alive(self, what):
        if not self.alive():
            raise benchlib.BenchError("%s exited (status %s) during %s; log tail:\n%s"
                                      % (self.name, self.daemon.proc.returncode, what,
                                         self.daemon.log_tail(15)))

    # -- memory -----------------------------------------------------------

    def snapshot(self, sid, cids):
        """The daemon's memory, threads and open fds; the monitors' summed
        memory (crid: every crid-conmon of the pod; containerd: the pod's
        shim)."""
        pid = self.daemon.pid
        out = {"daemon": benchlib.memory(pid), "fds": fd_count(pid), "maps": smaps_kinds(pid)}
        per_container, per_pod = self.monitors(sid, cids)
        rss = anon = n = 0
        for mpid in set(per_container) | set(per_pod):
            try:
                m = benchlib.memory(mpid)
            except OSError:
                continue
            n += 1
            rss += m["rss"] or 0
            anon += m["rss_anon"] or 0
        out["monitors"] = {"n": n, "rss": rss, "rss_anon": anon}
        return out

    def exec_processes(self, cmdline):
        """pids of this daemon's processes whose command line is cmdline."""
        return [pid for pid, line in self.daemon.leftover_processes().items()
                if line == cmdline]


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


SMALL_MAPPING = MIB + 64 * 1024  # anonymous mappings up to this: thread stacks and the like


def smaps_kinds(pid):
    """RSS in bytes of a process's mappings by kind (/proc/PID/smaps):
    "small anon" (anonymous mappings of at most ~1 MiB: pthread stacks,
    e.g. crid's 256 KiB session threads), "large anon" (bigger anonymous
    mappings: glibc's per-thread malloc arenas, big allocations, Go's
    heap and stacks), "heap" ([heap], the brk heap), "file"."""
    out = {"small anon": 0, "large anon": 0, "heap": 0, "file": 0}
    kind = None
    try:
        with open("/proc/%d/smaps" % pid) as f:
            for line in f:
                first = line.split(None, 1)[0]
                if "-" in first and not first.endswith(":"):
                    fields = line.split()
                    lo, hi = (int(x, 16) for x in fields[0].split("-"))
                    path = fields[5] if len(fields) > 5 else ""
                    if path == "[heap]":
                        kind = "heap"
                    elif path.startswith("/"):
                        kind = "file"
                    elif path and path not in ("[stack]",) and path.startswith("["):
                        kind = None  # vdso, vvar, vsyscall
                    else:
                        kind = "small anon" if hi - lo <= SMALL_MAPPING else "large anon"
                elif first == "Rss:" and kind is not None:
                    out[kind] += int(line.split()[1]) * 1024
    except OSError:
        return None
    return out


# ------------------------------------------------------------------ phases


def exec_true(world, cid):
    """One exec session of `true`: (ns from the Exec RPC to the final
    status, None or what was wrong)."""
    t0 = time.perf_counter_ns()
    url = world.exec_url(cid, ["true"])
    session = world.session(url)
    try:
        res = session.finish(STREAM_TIMEOUT)
        ns = time.perf_counter_ns() - t0
        violations = list(session.conn.violations)
    finally:
        session.close()
    if res.exit_code != 0 or res.stdout or res.stderr or violations:
        return ns, "exit %r stdout %r stderr %r status %r violations %r" % (
            res.exit_code, res.stdout[:60], res.stderr[:60], res.raw_status[:120],
            violations[:2])
    return ns, None


def exec_loop(world, cid, count, what, on_each=None):
    """count sequential exec sessions of `true`: (samples ns, problems)."""
    samples, problems, errors = [], [], []
    for i in range(count):
        try:
            ns, problem = exec_true(world, cid)
        except Exception as e:  # noqa: BLE001 - counted, a few are tolerated
            errors.append("%s: %s" % (type(e).__name__, str(e)[:300]))
            if len(errors) >= MAX_EXEC_ERRORS or not world.alive():
                world.check_alive(what)
                raise benchlib.BenchError("%d exec sessions failed during %s (%d done), "
                                          "first: %s" % (len(errors), what, i, errors[0]))
            continue
        samples.append(ns)
        if problem:
            problems.append(problem)
        if on_each is not None:
            on_each(i + 1)
    return samples, problems + errors


def phase_exec(world, handler, sid, cids, r):
    cid = cids["sleeper"]
    r["start"] = world.snapshot(sid, list(cids.values()))
    exec_loop(world, cid, EXEC_WARMUP, "the exec warm-up")
    samples, problems = exec_loop(world, cid, EXECS, "the exec latency runs")
    r["exec"] = benchlib.summarize_ns(samples, percentiles=(50, 99))
    if problems:
        world.notes.append("%s/%s: %d of %d exec sessions of `true` were wrong: %s"
                           % (world.name, handler, len(problems), EXECS, problems[0]))


def phase_crictl(world, handler, sid, cids, r):
    if not os.access(CRICTL_BIN, os.X_OK) or CRICTL_RUNS == 0:
        r["crictl"] = None
        return
    cmd = [benchlib.NSENTER, "--net=" + world.netns.path, "--", CRICTL_BIN, "--config",
           world.crictl_config, "-r", "unix://" + world.daemon.socket, "exec",
           cids["sleeper"], "true"]
    samples, problems = [], []
    for i in range(CRICTL_WARMUP + CRICTL_RUNS):
        t0 = time.perf_counter_ns()
        res = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=60)
        ns = time.perf_counter_ns() - t0
        if res.returncode != 0 or res.stdout or res.stderr:
            problems.append("exit %d stdout %r stderr %r" % (res.returncode, res.stdout[:100],
                                                             res.stderr[:200]))
        if i >= CRICTL_WARMUP:
            samples.append(ns)
    r["crictl"] = benchlib.summarize_ns(samples, percentiles=(50, 99))
    if problems:
        world.notes.append("%s/%s: %d of %d `crictl exec ID true` runs were wrong: %s"
                           % (world.name, handler, len(problems), CRICTL_WARMUP + CRICTL_RUNS,
                              problems[0]))


def phase_growth(world, handler, sid, cids, r):
    if LEAK_EXECS == 0:
        return
    ids = list(cids.values())
    time.sleep(SETTLE_SECONDS)
    before = world.snapshot(sid, ids)
    series = [before["daemon"]["rss"]]

    def sample(done):
        if done % LEAK_SAMPLE_EVERY == 0:
            series.append(benchlib.memory(world.daemon.pid)["rss"])

    samples, problems = exec_loop(world, cids["sleeper"], LEAK_EXECS, "the growth runs",
                                  on_each=sample)
    time.sleep(SETTLE_SECONDS)
    after = world.snapshot(sid, ids)
    r["growth"] = {"before": before, "after": after, "series": series,
                   "latency": benchlib.summarize_ns(samples, percentiles=(50, 99)),
                   "runs": len(samples)}
    if problems:
        world.notes.append("%s/%s: %d of %d exec sessions of `true` (growth runs) were wrong: "
                           "%s" % (world.name, handler, len(problems), LEAK_EXECS, problems[0]))


def session_round(world, handler, sid, ids, cid, out):
    """Opens SESSIONS exec sessions of OPEN_CMD, reads the memory once
    they all run, closes them, counts what is left (into out)."""
    base = len(world.exec_processes(OPEN_CMDLINE))  # 0: kill_left() ended those of a round
    sessions = []
    out["opened"] = 0
    try:
        t0 = time.perf_counter_ns()
        for _ in range(SESSIONS):
            url = world.exec_url(cid, OPEN_CMD, stdin=True)
            sessions.append(world.session(url, stdin=True))
        out["open_s"] = (time.perf_counter_ns() - t0) / 1e9
        out["opened"] = len(sessions)
        running = benchlib.wait_until(
            lambda: len(world.exec_processes(OPEN_CMDLINE)) >= base + SESSIONS, 10.0,
            interval=0.1)
        out["running"] = len(world.exec_processes(OPEN_CMDLINE)) - base
        if not running:
            world.notes.append("%s/%s: only %d of %d `%s` processes running after 10 s"
                               % (world.name, handler, out["running"], SESSIONS, OPEN_CMDLINE))
        time.sleep(SETTLE_SECONDS)
        out["during"] = world.snapshot(sid, ids)
        dead = [i for i, s in enumerate(sessions) if s.conn.closed]
        if dead:
            world.notes.append("%s/%s: %d of the %d open sessions were closed by the server "
                               "before the end" % (world.name, handler, len(dead), SESSIONS))
    finally:
        t_close = time.monotonic()
        for s in sessions:
            s.close()
    gone = benchlib.wait_until(lambda: len(world.exec_processes(OPEN_CMDLINE)) <= base,
                               CLOSE_WAIT, interval=0.1)
    out["left"] = len(world.exec_processes(OPEN_CMDLINE)) - base
    out["gone_s"] = time.monotonic() - t_close if gone else None
    time.sleep(SETTLE_SECONDS)
    out["after"] = world.snapshot(sid, ids)
    world.check_alive("the open sessions")
    out["killed"] = kill_left(world, base)


def kill_left(world, base):
    """SIGKILL (by pid) the exec'd OPEN_CMD processes a runtime left
    running after their clients went (containerd 1.6 does not end them):
    left alone, StopContainer of their container hung in containerd
    ("Kill container", then "failed to kill container: context deadline
    exceeded" after 60 s).  Returns how many were killed."""
    pids = world.exec_processes(OPEN_CMDLINE)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if pids and not benchlib.wait_until(lambda: not world.exec_processes(OPEN_CMDLINE),
                                        CLOSE_WAIT, interval=0.1):
        raise benchlib.BenchError("%d `%s` processes still there after SIGKILL"
                                  % (len(world.exec_processes(OPEN_CMDLINE)), OPEN_CMDLINE))
    return len(pids)


def phase_sessions(world, handler, sid, cids, r):
    """Two rounds: the second shows whether what the first kept after
    closing is reused (retained by the allocator) or added to (leaked)."""
    ids = list(cids.values())
    cid = cids["sleeper"]
    if world.exec_processes(OPEN_CMDLINE):
        raise benchlib.BenchError("`%s` already runs before the sessions open" % OPEN_CMDLINE)
    time.sleep(SETTLE_SECONDS)
    out = {"before": world.snapshot(sid, ids)}
    r["sessions"] = out
    session_round(world, handler, sid, ids, cid, out)
    again = {}
    out["again"] = again
    session_round(world, handler, sid, ids, cid, again)


def wait_listening(world, cid, ports):
    """Bounded: the ports listen in the pod (per /proc/net/tcp{,6} seen
    from the server container); returns those that do not."""
    wanted = {":%04X" % p: p for p in ports}
    missing = set(ports)

    def check():
        res = world.exec_sync(cid, ["cat", "/proc/net/tcp", "/proc/net/tcp6"])
        for line in res.stdout.decode(errors="replace").splitlines():
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A":
                for suffix, port in wanted.items():
                    if fields[1].endswith(suffix):
                        missing.discard(port)
        return not missing

    benchlib.wait_until(check, LISTEN_TIMEOUT, interval=0.2)
    return missing


def pf_timeout(nbytes):
    return 30.0 + nbytes / PF_MIN_RATE


def client_cpu():
    t = os.times()
    return t.user + t.system


def pf_finish(pair, res):
    """After the data stream's FIN: the error stream's text and when it
    ended.  client-go (portforward.go handleConnection) waits for the
    error stream to end once the data stream has ended, before it closes
    the local connection; it half-closes the data stream itself only once
    the local side has closed.  A server that holds the error stream open
    is recorded (error_open); then the data stream is half-closed here and
    whether the error stream ends after that is recorded too
    (error_after_half_close)."""
    t0 = time.monotonic()
    res["error_after_half_close"] = None
    try:
        res["error"] = pair.error_text(ERROR_STREAM_WAIT)
        res["error_end_s"] = time.monotonic() - t0
        res["error_open"] = False
    except sc.StreamTimeout:
        res["error_end_s"] = None
        res["error_open"] = True
        pair.data.close_write()
        try:
            res["error"] = pair.error_text(ERROR_STREAM_WAIT)
            res["error_after_half_close"] = True
        except sc.StreamTimeout:
            res["error"] = ""
            res["error_after_half_close"] = False
    return res


def pf_transfer(world, sid, nbytes, direction, finish=True):
    """nbytes over one forwarded connection: "down" from the pod's
    DOWN_PORT server to the client, "up" from the client to the pod's
    UP_PORT server (which answers dd's record counts once it has read
    them all).  Timed from opening the streams until the last byte (down)
    or the answer (up) arrived; when the data stream's FIN and the end of
    the error stream come is recorded apart: containerd 1.6 ends a
    forward only 1 s after one direction finished.  The client does not
    half-close first: containerd would not pass it on to the pod."""
    timeout = pf_timeout(nbytes)
    url = world.portforward_url(sid)
    res = {"expected": nbytes}
    with sc.PortForwardSpdy(url, timeout=timeout, netns=world.netns.path) as session:
        deadline = time.monotonic() + timeout

        def left():
            return max(0.0, deadline - time.monotonic())

        cpu0, ccpu0 = cpu_s(world.daemon.pid), client_cpu()
        t0 = time.perf_counter_ns()
        pair = session.connect(DOWN_PORT if direction == "down" else UP_PORT)
        pair.data.write(b"%d %d\n" % (nbytes // MIB, nbytes % MIB))
        if direction == "down":
            got = nonzero = 0
            while got < nbytes:
                chunk = pair.data.read(left())
                if not chunk:
                    break
                got += len(chunk)
                if chunk.strip(b"\0"):
                    nonzero += 1
            t1 = time.perf_counter_ns()
            cpu1, ccpu1 = cpu_s(world.daemon.pid), client_cpu()
            extra = pair.data.read_all(left())
            res["bytes"], res["bad_chunks"] = got + len(extra), nonzero
        else:
            block = bytes(MIB)
            sent = 0
            while sent < nbytes:
                piece = block if nbytes - sent >= len(block) else block[:nbytes - sent]
                pair.data.write(piece)
                sent += len(piece)
            lines = 2 if nbytes % MIB else 1
            reply = bytearray()
            while reply.count(b"records in") < lines:
                chunk = pair.data.read(left())
                if not chunk:
                    break
                reply += chunk
            t1 = time.perf_counter_ns()
            cpu1, ccpu1 = cpu_s(world.daemon.pid), client_cpu()
            reply += pair.data.read_all(left())
            # Debian's busybox dd prints no byte count: "F+P records in"
            # (F full blocks, P partial ones; with iflag=fullblock a
            # partial one means EOF came early), first for the MiB
            # blocks, then for the rest.
            records = [(int(f), int(p)) for f, p in
                       re.findall(rb"(\d+)\+(\d+) records in", reply)]
            sizes = [MIB, nbytes % MIB]
            if records and all(p == 0 for _, p in records) and len(records) <= 2:
                res["bytes"] = sum(f * size for (f, _), size in zip(records, sizes))
            else:
                res["bytes"] = None
            res["reply"] = bytes(reply[:300])
        res["fin_after_s"] = (time.perf_counter_ns() - t1) / 1e9
        if finish:
            pf_finish(pair, res)
        res["violations"] = list(session.conn.violations)
        frames = [f[3] for f in session.conn.frames if f[0] == "data" and f[3] > 0]
        res["frame_bytes"] = sum(frames) / len(frames) if frames else None
    ns = t1 - t0
    res.update({"s": ns / 1e9, "mib_s": nbytes / MIB / (ns / 1e9), "daemon_cpu": cpu1 - cpu0,
                "client_cpu": ccpu1 - ccpu0})
    return res


def cpu_s(pid):
    user, system, _, _ = benchlib.cpu_times(pid)
    return user + system


def phase_portforward(world, handler, sid, cids, r):
    missing = wait_listening(world, cids["server"], (DOWN_PORT, UP_PORT))
    if missing:
        raise benchlib.BenchError("port-forward servers not listening after %.0f s on %s"
                                  % (LISTEN_TIMEOUT, sorted(missing)))
    pf = {}
    r["pf"] = pf
    for direction in ("down", "up"):
        pf_transfer(world, sid, PF_WARMUP_BYTES, direction, finish=False)
        rss0 = benchlib.memory(world.daemon.pid)["rss"]
        with benchlib.PidSampler(world.daemon.pid, interval=PF_SAMPLE_INTERVAL,
                                 iface=None) as sampler:
            res = pf_transfer(world, sid, PF_BYTES, direction)
        res["rss_before"] = rss0
        res["rss_peak"] = sampler.peak_rss()
        pf[direction] = res
        wrong = []
        if res["bytes"] != res["expected"]:
            wrong.append("%s bytes arrived of %d" % (res["bytes"], res["expected"]))
        if res.get("bad_chunks"):
            wrong.append("%d chunks held something else than zeros" % res["bad_chunks"])
        if res["error"]:
            wrong.append("error stream: %r" % res["error"][:200])
        if res["violations"]:
            wrong.append("violations: %s" % res["violations"][:2])
        if res["error_open"]:
            wrong.append("the error stream was still open %.0f s after the data stream's FIN "
                         "(client-go waits for its end before it closes the local connection)"
                         "; after our half-close of the data stream it %s"
                         % (ERROR_STREAM_WAIT, "ended" if res["error_after_half_close"]
                            else "still did not end within %.0f s" % ERROR_STREAM_WAIT))
        if wrong:
            world.notes.append("%s/%s port-forward %s: %s%s"
                               % (world.name, handler, "pod->client" if direction == "down"
                                  else "client->pod", "; ".join(wrong),
                                  "; reply %r" % res["reply"] if "reply" in res else ""))
    world.check_alive("the port-forward transfers")


PHASES = (("exec", phase_exec), ("crictl", phase_crictl), ("growth", phase_growth),
          ("sessions", phase_sessions), ("port-forward", phase_portforward))


def step(what, fn, *args, **kwargs):
    """fn(*args), with what it was doing and how long it took in the
    error when it fails (an RPC error alone does not say which call)."""
    t0 = time.monotonic()
    try:
        return fn(*args, **kwargs)
    except benchlib.BenchError:
        raise
    except Exception as e:  # noqa: BLE001 - re-raised with context
        raise benchlib.BenchError("%s failed after %.1f s: %s"
                                  % (what, time.monotonic() - t0, rpc_text(e))) from e


rpc_text = benchlib.rpc_text


def measure(world, handler, failures):
    """Every phase in one pod of the handler; a phase that fails is
    reported and the next one still runs."""
    r = {"handler": handler}
    busy0, wall0, own0 = benchlib.host_cpu_busy(), time.monotonic(), client_cpu()
    pod_config = world.pod_config("stream-%s-%s" % (handler, secrets.token_hex(2)))
    sid = step("RunPodSandbox", world.run_pod, pod_config, handler)
    cids = {}
    try:
        if not world.check_pods([sid], handler, "pod for the streams"):
            raise benchlib.BenchError("the pod is not READY with an IP")
        for name, command in (("sleeper", SLEEPER),
                              ("server", ["/bin/sh", "-c", SERVER_SCRIPT])):
            cids[name] = step("CreateContainer " + name, world.create, sid, pod_config,
                              world.container_config(name, command))
            step("StartContainer " + name, world.start_container, cids[name])
        if bench_container.wait_running(world, list(cids.values())):
            raise benchlib.BenchError("containers not RUNNING after %.0f s"
                                      % bench_container.STATE_TIMEOUT)
        for what, phase in PHASES:
            try:
                phase(world, handler, sid, cids, r)
            except Exception as e:  # noqa: BLE001 - report, go on
                failures.append("%s/%s %s: %s" % (world.name, handler, what, rpc_text(e)))
                if not world.alive():
                    break
        if world.alive():
            ids = list(cids.values())
            for name in list(cids):
                step("StopContainer " + name, world.stop_container, cids[name], timeout=2)
                step("RemoveContainer " + name, world.remove_container, cids[name])
                del cids[name]
            world.check_gone(sid, ids, handler, "removing the containers")
    except Exception:
        world.notes.append("%s log tail:\n    %s"
                           % (world.name, world.daemon.log_tail(10).replace("\n", "\n    ")))
        raise
    finally:
        if world.alive():
            world.discard(list(cids.values()))  # only after a failure
            step("StopPodSandbox + RemovePodSandbox", world.stop_remove, sid)
    if world.alive():
        world.wait_pods_gone(handler, "removing the pod")
    wall = time.monotonic() - wall0
    cpus = os.cpu_count() or 1
    busy = (benchlib.host_cpu_busy() - busy0) / wall / cpus
    own = (client_cpu() - own0) / wall / cpus
    world.notes.append("%s/%s: %.0f s; the machine was busy %.0f%% of %d CPUs meanwhile (this "
                       "client %.0f%%), load average %.1f at the end: other work on the machine "
                       "disturbs the figures" % (world.name, handler, wall, 100 * busy, cpus,
                                                 100 * own, os.getloadavg()[0]))
    return r


# ------------------------------------------------------------------ tables


def kib(v):
    return None if v is None else v / KIB


def delta(a, b):
    return None if a is None or b is None else b - a


def per(v, n):
    return None if v is None or not n else v / n


def run():
    hs = handlers()
    failures, notes, details = [], [], []
    results = []  # (column name, result dict)
    urls = []
    image = bench_container.busybox_image()
    worlds = []

    def make_world(name, index):
        w = StreamWorld(name, index, image)
        worlds.append(w)
        return w

    for name, res in bench_sandbox.each_runtime(
            make_world, hs, lambda world, h: measure(world, h, failures), failures, notes,
            details):
        for r in res:
            results.append((name if len(hs) == 1 else "%s %s" % (name, r["handler"]), r))
    for w in worlds:
        if w.urls:
            urls.append("%s: %s" % (w.name, ", ".join(re.sub(r"/[^/]+$", "/TOKEN", u)
                                                      for u in w.urls)))
    cols = [c for c, _ in results]
    tables = [exec_table(results, cols), growth_table(results, cols),
              sessions_table(results, cols), pf_table(results, cols)]
    last = tables[-1]
    last.note("handler%s: %s; streaming URLs: %s" % ("s" if len(hs) > 1 else "", ", ".join(hs),
                                                    "; ".join(urls) or "-"))
    last.close(details, notes, failures=failures)
    return tables


# Tables with one row per figure and a column per runtime (benchlib).
metric_table = benchlib.metric_table
add = benchlib.add_figure


def exec_table(results, cols):
    t = metric_table("stream: exec of `true` over SPDY (stdout+stderr, no tty), from the Exec "
                     "RPC to the final status", cols)
    for key, label, n in (("p50", "p50 ms", EXECS), ("p99", "p99 ms", EXECS),
                          ("min", "min ms", EXECS), ("max", "max ms", EXECS),
                          ("mean", "mean ms", EXECS)):
        add(t, results, "streamclient %s (%d runs)" % (label, n),
            "<= %.0f" % TARGET_EXEC_P50_MS if key == "p50" else "", lambda r, k=key: r["exec"][k])
    have_crictl = os.access(CRICTL_BIN, os.X_OK) and CRICTL_RUNS > 0
    if have_crictl:
        for key in ("p50", "p99", "max"):
            add(t, results, "crictl exec %s ms (%d runs)" % (key, CRICTL_RUNS), "",
                lambda r, k=key: r["crictl"][k])
    add(t, results, "growth runs p50 ms (%d runs)" % LEAK_EXECS, "",
        lambda r: r["growth"]["latency"]["p50"])
    t.note("streamclient: tests/integration/streamclient.py (Python, one reader thread per "
           "connection), protocol v4.channel.k8s.io, socket made in the daemon's netns; %d "
           "untimed sessions first; timed from the Exec RPC until stdout and stderr ended and "
           "the error stream's status was read; the connection is then closed (GOAWAY + "
           "close), untimed. Exit 0, empty output and no SPDY violation are checked"
           % EXEC_WARMUP)
    if have_crictl:
        t.note("crictl: `nsenter --net=NETNS -- %s exec ID true` (%s), %d untimed runs first; "
               "the whole process is timed (nsenter and crictl start-up, the Exec RPC, the "
               "SPDY session)" % (CRICTL_BIN, crictl_version(), CRICTL_WARMUP))
    else:
        t.note("crictl: %s absent (or BENCH_STREAM_CRICTL_RUNS=0), not measured" % CRICTL_BIN)
    t.note("growth runs: the %d sessions of the growth table, same measurement" % LEAK_EXECS)
    return t


_crictl_version = []


def crictl_version():
    if not _crictl_version:
        try:
            res = subprocess.run([CRICTL_BIN, "--version"], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 timeout=10)
            _crictl_version.append(res.stdout.strip())
        except (OSError, subprocess.TimeoutExpired) as e:
            _crictl_version.append(str(e))
    return _crictl_version[0]


def growth_table(results, cols):
    t = metric_table("stream: daemon memory after %d sequential exec sessions of `true`"
                     % LEAK_EXECS, cols)

    def g(r):
        return r["growth"]

    add(t, results, "daemon RSS before KiB", "",
        lambda r: kib(g(r)["before"]["daemon"]["rss"]), 0)
    add(t, results, "daemon RSS after KiB", "", lambda r: kib(g(r)["after"]["daemon"]["rss"]), 0)
    add(t, results, "daemon RSS growth KiB", "~0 (noise)",
        lambda r: kib(delta(g(r)["before"]["daemon"]["rss"], g(r)["after"]["daemon"]["rss"])), 0)
    add(t, results, "daemon RssAnon growth KiB", "",
        lambda r: kib(delta(g(r)["before"]["daemon"]["rss_anon"],
                            g(r)["after"]["daemon"]["rss_anon"])), 0)
    add(t, results, "monitors RSS growth KiB", "",
        lambda r: kib(delta(g(r)["before"]["monitors"]["rss"], g(r)["after"]["monitors"]["rss"])),
        0)
    add(t, results, "daemon threads before -> after", "",
        lambda r: "%d -> %d" % (g(r)["before"]["daemon"]["threads"],
                                g(r)["after"]["daemon"]["threads"]))
    add(t, results, "daemon open fds before -> after", "",
        lambda r: "%d -> %d" % (g(r)["before"]["fds"], g(r)["after"]["fds"]))
    add(t, results, "daemon RSS at start (before any exec) KiB", "",
        lambda r: kib(r["start"]["daemon"]["rss"]), 0)
    t.note("read %.0f s after the %d exec sessions of the latency table (so first-use "
           "allocations are done) and %.0f s after the last of %d more; monitors: crid's "
           "crid-conmon of the two containers and the pause, containerd's shim of the pod"
           % (SETTLE_SECONDS, EXECS + EXEC_WARMUP, SETTLE_SECONDS, LEAK_EXECS))
    for col, r in results:
        series = (r.get("growth") or {}).get("series")
        if series:
            t.note("%s: daemon RSS KiB every %d sessions: %s"
                   % (col, LEAK_SAMPLE_EVERY, " ".join("%.0f" % kib(v) for v in series)))
    return t


def sessions_table(results, cols):
    t = metric_table("stream: memory per open exec session (%d sessions of `%s`, stdin+stdout+"
                     "stderr streams)" % (SESSIONS, OPEN_CMDLINE), cols)

    def s(r):
        return r["sessions"]

    def per_session(r, part, field="rss"):
        return kib(per(delta(s(r)["before"][part][field], s(r)["during"][part][field]),
                       s(r)["opened"]))

    def total(r):
        d = per_session(r, "daemon")
        m = per_session(r, "monitors")
        return None if d is None or m is None else d + m

    add(t, results, "sessions open / processes running", "",
        lambda r: "%d / %d" % (s(r)["opened"], s(r)["running"]))
    add(t, results, "time to open them s", "", lambda r: s(r)["open_s"], 2)
    add(t, results, "daemon RSS KiB/session", "<= %.0f" % TARGET_SESSION_KIB,
        lambda r: per_session(r, "daemon"), 1)
    add(t, results, "daemon RssAnon KiB/session", "",
        lambda r: per_session(r, "daemon", "rss_anon"), 1)
    for kind, what in (("small anon", "anon maps <= 1 MiB (thread stacks)"),
                       ("large anon", "anon maps > 1 MiB (arenas, Go heap)"),
                       ("heap", "[heap]")):
        add(t, results, "  daemon %s KiB/session" % what, "",
            lambda r, k=kind: kib(per(delta(s(r)["before"]["maps"][k],
                                            s(r)["during"]["maps"][k]), s(r)["opened"])), 1)
    add(t, results, "monitors RSS KiB/session", "", lambda r: per_session(r, "monitors"), 1)
    add(t, results, "daemon + monitors KiB/session", "", total, 1)
    add(t, results, "daemon threads before / open / closed", "",
        lambda r: "%d / %d / %d" % (s(r)["before"]["daemon"]["threads"],
                                    s(r)["during"]["daemon"]["threads"],
                                    s(r)["after"]["daemon"]["threads"]))
    add(t, results, "daemon fds before / open / closed", "",
        lambda r: "%d / %d / %d" % (s(r)["before"]["fds"], s(r)["during"]["fds"],
                                    s(r)["after"]["fds"]))
    add(t, results, "daemon RSS after closing - before KiB", "",
        lambda r: kib(delta(s(r)["before"]["daemon"]["rss"], s(r)["after"]["daemon"]["rss"])), 0)
    add(t, results, "  of it anon maps > 1 MiB KiB", "",
        lambda r: kib(delta(s(r)["before"]["maps"]["large anon"],
                            s(r)["after"]["maps"]["large anon"])), 0)
    add(t, results, "2nd round: RSS open / closed - 1st round KiB", "",
        lambda r: "%+.0f / %+.0f" % (
            kib(s(r)["again"]["during"]["daemon"]["rss"] - s(r)["during"]["daemon"]["rss"]),
            kib(s(r)["again"]["after"]["daemon"]["rss"] - s(r)["after"]["daemon"]["rss"])))
    add(t, results, "`%s` left %.0f s after closing" % (OPEN_CMDLINE, CLOSE_WAIT), "0",
        lambda r: "%d" % s(r)["left"])
    add(t, results, "... gone after s", "",
        lambda r: s(r)["gone_s"] if s(r)["gone_s"] is not None else "not gone", 2)
    add(t, results, "... left after the 2nd round", "0", lambda r: "%d" % s(r)["again"]["left"])
    add(t, results, "... killed by the benchmark", "0",
        lambda r: "%d" % (s(r)["killed"] + s(r)["again"]["killed"]))
    t.note("per session = (reading with every session open - reading before) / sessions, "
           "both %.0f s after the last change; the exec'd `sleep` processes are not counted. "
           "monitors: crid: every crid-conmon of the pod (the two containers' and the "
           "pause's); containerd: the pod's containerd-shim-runc-v2 (it starts each exec "
           "through runc and copies its stdio to FIFOs that containerd reads)" % SETTLE_SECONDS)
    t.note("closing = GOAWAY + TCP close from the client with the process still running (a "
           "client that exits); whatever is still running %.0f s later is killed by pid "
           "(SIGKILL) by the benchmark, as containerd's StopContainer hung on them. A 2nd "
           "round of %d sessions follows the same way: the same RSS as in the 1st means what "
           "the 1st kept after closing was reused (allocator retention), more means it "
           "was not" % (CLOSE_WAIT, SESSIONS))
    return t


def pf_table(results, cols):
    t = metric_table("stream: port-forward throughput, %s over one forwarded connection"
                     % size_text(PF_BYTES), cols)
    for direction, label in (("down", "pod->client"), ("up", "client->pod")):
        def p(r, d=direction):
            return r["pf"][d]

        add(t, results, "%s MiB/s" % label, ">= containerd" if direction == "down" else "",
            lambda r, p=p: p(r)["mib_s"], 0)
        add(t, results, "%s seconds" % label, "", lambda r, p=p: p(r)["s"], 2)
        add(t, results, "%s daemon CPU s" % label, "", lambda r, p=p: p(r)["daemon_cpu"], 2)
        if direction == "down":
            add(t, results, "%s DATA frame payload bytes (mean)" % label, "",
                lambda r, p=p: p(r)["frame_bytes"], 0)
        add(t, results, "%s client CPU s" % label, "", lambda r, p=p: p(r)["client_cpu"], 2)
        add(t, results, "%s daemon RSS before / peak MB" % label, "",
            lambda r, p=p: "%.1f / %.1f" % (p(r)["rss_before"] / benchlib.MB,
                                            p(r)["rss_peak"] / benchlib.MB))
        add(t, results, "%s data FIN after the last byte s" % label, "",
            lambda r, p=p: p(r)["fin_after_s"], 2)
        add(t, results, "%s error stream end after data FIN s" % label, "",
            lambda r, p=p: p(r)["error_end_s"] if not p(r)["error_open"]
            else "open > %.0f" % ERROR_STREAM_WAIT, 2)
        add(t, results, "%s bytes ok" % label, "",
            lambda r, p=p: "yes" if p(r)["bytes"] == p(r)["expected"] and not p(r).get(
                "bad_chunks") else "NO (%s)" % p(r)["bytes"])
    t.note("timed from opening the forwarded connection (error + data streams) until the last "
           "byte arrived (pod->client) or the server's answer did (client->pod); a %s "
           "transfer each way first, untimed. pod->client: the client asks for the bytes, "
           "`busybox dd if=/dev/zero bs=1M` writes them into the accepted socket (busybox "
           "nc -ll -e), every chunk checked to be zeros; client->pod: the client announces "
           "the count and writes it in 1 MiB pieces (32 KiB DATA frames), `busybox dd "
           "of=/dev/null bs=1M iflag=fullblock` reads them and answers its record counts "
           "(checked). The server then closes its socket; the client never half-closes first"
           % size_text(PF_WARMUP_BYTES))
    t.note("daemon CPU: user+system of the daemon process during the timed part (both "
           "runtimes forward inside the daemon); client CPU: this Python process (the SPDY "
           "client; its cost per DATA frame is fixed, so smaller frames cost it more); when "
           "client CPU is near the seconds, the client is the limit. RSS sampled every "
           "%.0f ms" % (PF_SAMPLE_INTERVAL * 1000))
    t.note("data FIN after the last byte: when the server ended the data stream after the "
           "pod's side closed; error stream end: how long after that the error stream "
           "ended (client-go waits for it before closing the local connection; 'open > "
           "%.0f' = it had not, see the notes)" % ERROR_STREAM_WAIT)
    return t


def size_text(n):
    if n % (1024 * MIB) == 0:
        return "%d GiB" % (n // (1024 * MIB))
    if n % MIB == 0:
        return "%d MiB" % (n // MIB)
    return "%d bytes" % n
