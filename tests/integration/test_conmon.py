"""crid-conmon driven directly, without crid, against crun and runc.

Each test builds an OCI bundle over a shared read-only busybox root
filesystem, starts crid-conmon the way crid does (sync pipe in
_OCI_SYNCPIPE, double fork, runtime root in the test's temp dir), starts
the container with `<runtime> start`, and checks what the monitor
promises in the protocol comment of conmon/main.c: the sync message, the
CRI log, the exit file, the attach socket, the control fifo and the oom
file.  After every test the container is deleted (`<runtime> delete -f`),
the monitor is gone and the container's cgroup is removed.

Needs root, crun, runc, busybox-static and a host prepared by
scripts/host-setup.sh (run here when crun would refuse the host).
Set CRID_CONMON_BENCH_MIB to change the size of the throughput run.
"""

import json
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONMON = REPO / "build" / "bin" / "crid-conmon"
RUNTIMES = {"crun": shutil.which("crun"), "runc": shutil.which("runc")}
BUSYBOX = Path("/bin/busybox")
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}[+-]\d\d:\d\d$")
READ_SIZE = 64 * 1024  # CM_READ_SIZE: the longest record content

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def conmon_bin():
    subprocess.run(["make", "-s", "-C", str(REPO), "build/bin/crid-conmon"], check=True)
    return str(CONMON)


@pytest.fixture(scope="session")
def host_ready():
    unified = Path("/sys/fs/cgroup/unified/cgroup.controllers")
    if unified.exists() and unified.read_text().strip():
        subprocess.run([str(REPO / "scripts" / "host-setup.sh")], check=True)


@pytest.fixture(scope="session")
def rootfs():
    """A read-only root filesystem: static busybox, its applets, and a
    tiny static writer for the throughput run."""
    if not BUSYBOX.exists():
        pytest.skip("busybox-static is not installed")
    top = Path(tempfile.mkdtemp(prefix="cmr-", dir="/tmp"))
    root = top / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True).stdout
    for name in applets.split():
        if name != "busybox":
            (root / "bin" / name).symlink_to("busybox")
    for d in ("proc", "dev", "sys", "tmp", "etc"):
        (root / d).mkdir()
    writer = top / "writer.c"
    writer.write_text(WRITER_C)
    subprocess.run(["gcc", "-O2", "-static", "-o", str(root / "bin" / "writer"), str(writer)],
                   check=True)
    yield root
    shutil.rmtree(top, ignore_errors=True)


# Writes N MiB of 64-byte lines to stdout in 64 KiB writes: a writer that
# costs nothing, so the run measures the monitor.  "writer 0 N" writes one
# line of N bytes with a single write().
WRITER_C = r"""
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
  static char buf[65536];
  long mib = argc > 1 ? atol(argv[1]) : 200;
  if (argc > 2) { /* "writer line N": one line of N bytes in one write() */
    long n = atol(argv[2]), off = 0;
    char *line = malloc(n + 1);
    memset(line, 'x', n);
    line[n] = '\n';
    while (off <= n) {
      ssize_t w = write(1, line + off, n + 1 - off);
      if (w <= 0) return 1;
      off += w;
    }
    return 0;
  }
  for (size_t i = 0; i < sizeof(buf); i += 64) {
    memset(buf + i, 'a' + (i / 64) % 26, 63);
    buf[i + 63] = '\n';
  }
  for (long n = 0; n < mib * 16; n++) {
    size_t off = 0;
    while (off < sizeof(buf)) {
      ssize_t w = write(1, buf + off, sizeof(buf) - off);
      if (w <= 0) return 1;
      off += w;
    }
  }
  return 0;
}
"""


@pytest.fixture(scope="session")
def spec_template():
    d = tempfile.mkdtemp(prefix="cms-", dir="/tmp")
    try:
        subprocess.run([RUNTIMES["crun"] or "crun", "spec"], cwd=d, check=True)
        return json.loads(Path(d, "config.json").read_text())
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(params=["crun", "runc"])
def runtime(request, host_ready):
    path = RUNTIMES[request.param]
    if path is None:
        pytest.skip(f"{request.param} is not installed")
    return path


@pytest.fixture
def make_monitor(conmon_bin, rootfs, spec_template, runtime):
    monitors = []

    def make(args, **kwargs):
        m = Monitor(conmon_bin, runtime, rootfs, spec_template, args, **kwargs)
        monitors.append(m)
        return m

    yield make
    for m in monitors:
        m.cleanup()


# ------------------------------------------------------------------ helpers


def pid_alive(pid):
    """True while pid exists and is not a zombie (this machine's PID 1
    reaps orphans only every few seconds)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def cpu_ticks(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def memory_kib(pid):
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        parts = line.split()
        if parts[0] in ("Rss:", "Pss:"):
            out[parts[0][:-1]] = int(parts[1])
    return out


class Monitor:
    """One container under crid-conmon, in its own short temp dir."""

    def __init__(self, conmon_bin, runtime, rootfs, template, args, terminal=False, stdin=False,
                 stdin_once=False, memory_limit=None, log_size_max=None, config_edit=None):
        self.runtime = runtime
        self.dir = Path(tempfile.mkdtemp(prefix="cm-", dir="/tmp"))
        self.cid = "c" + uuid.uuid4().hex[:12]
        self.bundle = self.dir / "b"
        self.exits = self.dir / "x"
        self.sockdir = self.dir / "s"
        self.log = self.dir / "ctr.log"
        self.rtroot = self.dir / "rt"
        self.cgroup = f"/crid-cmtest-{self.cid}"
        self.monitor_pid = None
        self.container_pid = None
        self.bundle.mkdir()
        self.exits.mkdir()

        config = json.loads(json.dumps(template))
        config["root"] = {"path": str(rootfs), "readonly": True}
        config["process"]["args"] = args
        config["process"]["terminal"] = terminal
        config["linux"]["cgroupsPath"] = self.cgroup
        if memory_limit:
            config["linux"].setdefault("resources", {})["memory"] = {"limit": memory_limit}
        if config_edit:
            config_edit(config)
        (self.bundle / "config.json").write_text(json.dumps(config, indent=1))

        self.argv = [
            conmon_bin, "--cid", self.cid, "--bundle", str(self.bundle),
            "--runtime", runtime, "--runtime-arg", f"--root={self.rtroot}",
            "--exit-dir", str(self.exits), "--socket-dir", str(self.sockdir),
            "--container-pidfile", str(self.dir / "pid"),
            "--conmon-pidfile", str(self.dir / "conmon.pid"),
            "--log-path", str(self.log), "--log-level", "debug",
        ]
        if terminal:
            self.argv.append("--terminal")
        if stdin:
            self.argv.append("--stdin")
        if stdin_once:
            self.argv.append("--stdin-once")
        if log_size_max:
            self.argv += ["--log-size-max", str(log_size_max)]

    def create(self, timeout=30):
        """Runs crid-conmon like crid: returns the parsed sync message."""
        r, w = os.pipe()
        try:
            env = dict(os.environ, _OCI_SYNCPIPE=str(w))
            first = subprocess.Popen(self.argv, env=env, pass_fds=(w,))
            os.close(w)
            w = -1
            # The first process exits at once (double fork) ...
            assert first.wait(timeout=5) == 0
            # ... and has written the monitor's pid by then.
            self.monitor_pid = int((self.dir / "conmon.pid").read_text())
            line = b""
            deadline = time.monotonic() + timeout
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                assert left > 0, "no sync message"
                if not select.select([r], [], [], left)[0]:
                    continue
                chunk = os.read(r, 4096)
                if not chunk:
                    break
                line += chunk
            # One line, then EOF: the monitor closed the pipe.
            assert os.read(r, 4096) == b""
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
        msg = json.loads(line)
        if msg["pid"] > 0:
            self.container_pid = msg["pid"]
        return msg

    def rt(self, *args, check=True):
        return subprocess.run([self.runtime, f"--root={self.rtroot}", *args],
                              capture_output=True, text=True, check=check)

    def start(self):
        msg = self.create()
        assert msg["pid"] > 0, msg
        self.rt("start", self.cid)
        return msg

    @property
    def exit_file(self):
        return self.exits / self.cid

    def wait_exit(self, timeout=20):
        wait_for(self.exit_file.exists, timeout, "the exit file")
        return self.exit_file.read_text()

    def records(self, path=None):
        """The log as (stream, tag, content) with content's newline for F."""
        out = []
        data = Path(path or self.log).read_bytes()
        for line in data.split(b"\n")[:-1]:
            stamp, stream, tag, content = line.split(b" ", 3)
            assert STAMP.match(stamp.decode()), stamp
            assert stream in (b"stdout", b"stderr"), line
            assert tag in (b"F", b"P"), line
            out.append((stream.decode(), tag.decode(), content + (b"\n" if tag == b"F" else b"")))
        return out

    def stream_text(self, stream, path=None):
        return b"".join(c for s, _, c in self.records(path) if s == stream)

    def ctl(self, line):
        fd = os.open(self.sockdir / "ctl", os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def attach(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(str(self.sockdir / "attach"))
        return s

    def cleanup(self):
        if self.container_pid or self.monitor_pid:
            self.rt("delete", "-f", self.cid, check=False)
        if self.monitor_pid:
            try:
                wait_for(lambda: not pid_alive(self.monitor_pid), 10, "the monitor to exit")
            finally:
                if pid_alive(self.monitor_pid):
                    os.kill(self.monitor_pid, 9)
        if self.container_pid:
            assert not pid_alive(self.container_pid), "container process left behind"
        leftovers = [c for c in ("memory", "pids", "cpu")
                     if Path(f"/sys/fs/cgroup/{c}{self.cgroup}").exists()]
        for c in leftovers:
            os.rmdir(f"/sys/fs/cgroup/{c}{self.cgroup}")
        shutil.rmtree(self.dir, ignore_errors=True)
        assert not leftovers, f"cgroups left behind: {leftovers}"


# -------------------------------------------------------------------- tests


def host_pid_namespace(config):
    config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"]
                                     if n["type"] != "pid"]


# The init of a pid namespace cannot SIGKILL itself: the signal case runs
# in the host pid namespace.
# Each script waits a little first, so the sockets can be seen before the
# container ends and the monitor removes them (else a race under load).
@pytest.mark.parametrize("script,status,edit", [("sleep 0.5; exit 0", "0", None),
                                                ("sleep 0.5; exit 1", "1", None),
                                                ("sleep 0.5; kill -9 $$", "137",
                                                 host_pid_namespace)])
def test_sync_pid_and_exit_status(make_monitor, script, status, edit):
    m = make_monitor(["/bin/sh", "-c", script], config_edit=edit)
    msg = m.start()
    assert msg == {"pid": int((m.dir / "pid").read_text())}
    assert (m.sockdir / "attach").exists() and (m.sockdir / "ctl").exists()
    assert m.wait_exit() == status
    # Written by rename: no temp file left, and the sockets are gone.
    assert os.listdir(m.exits) == [m.cid]
    assert not (m.sockdir / "attach").exists() and not (m.sockdir / "ctl").exists()
    assert not (m.sockdir / "oom").exists()
    wait_for(lambda: not pid_alive(m.monitor_pid), 5, "the monitor to exit")


def test_no_pivot_is_passed(make_monitor):
    m = make_monitor(["/bin/sh", "-c", "echo pivot-less"])
    m.argv.append("--no-pivot")
    m.start()
    assert m.wait_exit() == "0"
    assert m.stream_text("stdout") == b"pivot-less\n"


def test_runtime_kill_reports_137(make_monitor):
    m = make_monitor(["/bin/sleep", "100"])
    m.start()
    time.sleep(0.2)
    m.rt("kill", m.cid, "KILL")
    assert m.wait_exit() == "137"


def test_log_records(make_monitor):
    script = ("echo out1; echo err1 >&2; printf part; sleep 0.2; echo ial; "
              "printf 'no newline at all' >&2; sleep 0.2; writer 0 200000; echo last")
    m = make_monitor(["/bin/sh", "-c", script])
    m.start()
    assert m.wait_exit() == "0"
    recs = m.records()
    out = m.stream_text("stdout")
    err = m.stream_text("stderr")
    assert out == b"out1\npartial\n" + b"x" * 200000 + b"\nlast\n"
    assert err == b"err1\nno newline at all"
    assert ("stdout", "F", b"out1\n") in recs
    assert ("stderr", "F", b"err1\n") in recs
    # printf without newline, then the rest after a pause: P then F.
    assert ("stdout", "P", b"part") in recs
    assert ("stdout", "F", b"ial\n") in recs
    assert ("stderr", "P", b"no newline at all") in recs
    # The line longer than a read: P records of at most one read, then F.
    first = next(i for i, r in enumerate(recs) if r[2].startswith(b"x"))
    last = next(i for i, r in enumerate(recs) if i >= first and r[1] == "F")
    long = recs[first:last + 1]
    assert len(long) >= 4
    assert all(s == "stdout" and t == "P" and 0 < len(c) <= READ_SIZE for s, t, c in long[:-1])
    assert long[-1][2].endswith(b"x\n")


def test_runtime_error_missing_binary(make_monitor):
    m = make_monitor(["/bin/no-such-binary"])
    msg = m.create()
    assert msg["pid"] == -1
    assert "no-such-binary" in msg["message"], msg
    assert msg["message"] == msg["message"].strip()
    wait_for(lambda: not pid_alive(m.monitor_pid), 5, "the monitor to exit")
    assert not m.exit_file.exists()
    assert not (m.sockdir / "attach").exists() and not (m.sockdir / "ctl").exists()


def test_runtime_error_bad_config(make_monitor):
    def bad(config):
        config["process"]["rlimits"] = [{"type": "RLIMIT_BOGUS", "hard": 1, "soft": 1}]

    m = make_monitor(["/bin/true"], config_edit=bad)
    msg = m.create()
    assert msg["pid"] == -1
    assert msg["message"], msg
    wait_for(lambda: not pid_alive(m.monitor_pid), 5, "the monitor to exit")


def test_bad_command_line_is_reported(conmon_bin):
    r, w = os.pipe()
    try:
        p = subprocess.run([conmon_bin, "--cid", "x", "--bogus"], pass_fds=(w,),
                           env=dict(os.environ, _OCI_SYNCPIPE=str(w)), capture_output=True)
        os.close(w)
        w = -1
        assert p.returncode == 1
        msg = json.loads(os.read(r, 4096))
        assert msg["pid"] == -1 and "--bogus" in msg["message"]
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_start_pipe_holds_the_monitor(make_monitor):
    m = make_monitor(["/bin/true"])
    sr, sw = os.pipe()
    r, w = os.pipe()
    try:
        env = dict(os.environ, _OCI_SYNCPIPE=str(w), _OCI_STARTPIPE=str(sr))
        first = subprocess.Popen(m.argv, env=env, pass_fds=(w, sr))
        os.close(w)
        os.close(sr)
        time.sleep(0.3)
        # Nothing happened yet: the first process still waits for the go.
        assert first.poll() is None
        assert not (m.dir / "conmon.pid").exists()
        os.write(sw, b"x")
        assert first.wait(timeout=5) == 0
        m.monitor_pid = int((m.dir / "conmon.pid").read_text())
        msg = json.loads(os.read(r, 4096))
        m.container_pid = msg["pid"]
        assert msg["pid"] > 0
    finally:
        os.close(sw)
        os.close(r)


def test_reopen_log_after_rename(make_monitor):
    script = "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.02; done"
    m = make_monitor(["/bin/sh", "-c", script])
    m.start()
    wait_for(lambda: m.log.exists() and m.log.stat().st_size > 0, 5, "first lines")
    rotated = m.dir / "ctr.log.20240101-000000"
    m.log.rename(rotated)
    m.ctl("2 0 0\n")
    wait_for(m.log.exists, 2, "the log to be recreated")
    wait_for(lambda: m.log.stat().st_size > 0, 5, "lines in the new log")
    size = rotated.stat().st_size
    time.sleep(0.3)
    assert rotated.stat().st_size == size, "the rotated file still grows"
    new = m.stream_text("stdout").split()
    old = m.stream_text("stdout", rotated).split()
    # Nothing lost, nothing twice, across the reopen.
    assert int(new[0][4:]) == int(old[-1][4:]) + 1
    m.rt("kill", m.cid, "KILL")
    assert m.wait_exit() == "137"


def test_log_size_max_truncates(make_monitor):
    script = "for i in $(seq 1 200); do echo line$i-padding-padding-padding; done"
    m = make_monitor(["/bin/sh", "-c", script], log_size_max=4096)
    m.start()
    assert m.wait_exit() == "0"
    assert m.log.stat().st_size <= 4096
    assert m.stream_text("stdout").endswith(b"line200-padding-padding-padding\n")


def recv_until_eof(sock, timeout=20):
    packets = []
    sock.settimeout(timeout)
    while True:
        p = sock.recv(65536)
        if not p:
            return packets
        packets.append(p)


def test_attach_receives_output(make_monitor):
    m = make_monitor(["/bin/sh", "-c", "sleep 0.3; echo out; echo err >&2; echo out2"])
    msg = m.create()
    assert msg["pid"] > 0
    a, b = m.attach(), m.attach()
    m.rt("start", m.cid)
    for s in (a, b):
        packets = recv_until_eof(s)
        assert all(len(p) <= 8193 for p in packets)
        assert b"".join(p[1:] for p in packets if p[0] == 2) == b"out\nout2\n"
        assert b"".join(p[1:] for p in packets if p[0] == 3) == b"err\n"
        s.close()
    assert m.wait_exit() == "0"


def test_attach_stdin_once(make_monitor):
    m = make_monitor(["/bin/cat"], stdin=True, stdin_once=True)
    m.start()
    s = m.attach()
    s.send(b"hello\n")
    s.send(b"world\n")
    # Half-close: stdin ends, cat exits, output still arrives.
    s.shutdown(socket.SHUT_WR)
    packets = recv_until_eof(s)
    s.close()
    assert b"".join(p[1:] for p in packets if p[0] == 2) == b"hello\nworld\n"
    assert m.wait_exit() == "0"
    assert m.stream_text("stdout") == b"hello\nworld\n"


def test_stdin_stays_open_without_stdin_once(make_monitor):
    m = make_monitor(["/bin/cat"], stdin=True)
    m.start()
    s = m.attach()
    s.send(b"one\n")
    s.close()
    wait_for(lambda: m.log.exists() and b"one" in m.log.read_bytes(), 5, "echo of stdin")
    time.sleep(0.3)
    assert not m.exit_file.exists()  # cat still waits for more input
    s = m.attach()
    s.send(b"two\n")
    wait_for(lambda: b"two" in m.log.read_bytes(), 5, "second attach's input")
    s.close()
    m.rt("kill", m.cid, "KILL")
    assert m.wait_exit() == "137"


def test_terminal_and_resize(make_monitor):
    m = make_monitor(["/bin/sh", "-c", "sleep 0.5; stty size; echo done"], terminal=True)
    m.start()
    m.ctl("1 40 100\n")
    assert m.wait_exit() == "0"
    out = m.stream_text("stdout")
    assert b"40 100\r\n" in out and b"done\r\n" in out
    assert m.stream_text("stderr") == b""


def test_terminal_stdin(make_monitor):
    m = make_monitor(["/bin/sh", "-c", "read line; echo got:$line"], terminal=True, stdin=True)
    m.start()
    s = m.attach()
    s.send(b"abc\n")
    packets = recv_until_eof(s)
    s.close()
    assert m.wait_exit() == "0"
    # A terminal is one stream: stdout, with the echo and ONLCR's \r\n.
    assert {p[0] for p in packets} == {2}
    assert b"got:abc\r\n" in b"".join(p[1:] for p in packets)
    assert b"got:abc\r\n" in m.stream_text("stdout")


def test_missing_runtime_binary(conmon_bin, rootfs, spec_template):
    m = Monitor(conmon_bin, "/nonexistent/runtime", rootfs, spec_template, ["/bin/true"])
    try:
        msg = m.create()
        assert msg["pid"] == -1
        assert msg["message"] == "exec /nonexistent/runtime: No such file or directory"
        wait_for(lambda: not pid_alive(m.monitor_pid), 5, "the monitor to exit")
    finally:
        shutil.rmtree(m.dir, ignore_errors=True)


def test_unwritable_exit_dir_fails_create(make_monitor):
    m = make_monitor(["/bin/true"])
    m.exits.rmdir()
    msg = m.create()
    assert msg["pid"] == -1 and "exit dir" in msg["message"], msg
    assert m.container_pid is None


def test_oom_kill_writes_oom_file(make_monitor):
    m = make_monitor(["/bin/sh", "-c", "cat /dev/zero | tail"], memory_limit=16 << 20)
    m.start()
    assert m.wait_exit(timeout=60) == "137"
    assert (m.sockdir / "oom").exists()


def test_idle_monitor_uses_no_cpu(make_monitor, capsys):
    m = make_monitor(["/bin/sh", "-c", "echo started; echo on stderr >&2; exec sleep 60"])
    m.start()
    wait_for(lambda: m.log.exists() and m.log.read_bytes().count(b"\n") == 2, 5, "output")
    a = m.attach()  # an attached client costs nothing either
    time.sleep(1.5)  # quiet for a second: the monitor trims its memory
    before = cpu_ticks(m.monitor_pid)
    time.sleep(2)
    assert cpu_ticks(m.monitor_pid) == before
    mem = memory_kib(m.monitor_pid)
    with capsys.disabled():
        print(f"\n  idle crid-conmon ({Path(m.runtime).name}): "
              f"RSS {mem['Rss']} KiB, PSS {mem['Pss']} KiB")
    a.close()
    assert mem["Rss"] <= 1024
    assert mem["Pss"] <= 300


def test_log_throughput(make_monitor, capsys):
    mib = int(os.environ.get("CRID_CONMON_BENCH_MIB", "200"))
    m = make_monitor(["/bin/writer", str(mib)])
    m.create()
    t0 = time.monotonic()
    m.rt("start", m.cid)
    assert m.wait_exit(timeout=120) == "0"
    elapsed = time.monotonic() - t0
    size = m.log.stat().st_size
    lines = mib * 16 * 1024
    # Every 64-byte line is one F record (a read ends on a line boundary
    # because the writer writes whole 64 KiB blocks).
    assert size >= lines * (64 + 45)
    with capsys.disabled():
        print(f"\n  {mib} MiB of 64-byte lines through crid-conmon "
              f"({Path(m.runtime).name}): {elapsed:.2f}s, {mib / elapsed:.0f} MiB/s, "
              f"log {size >> 20} MiB")
    assert mib / elapsed >= 100
