"""Exits reported when they happen (issue 14): a container that wrote a
lot of output is EXITED, with the right finishedAt, as soon as its process
is gone, not after its log has reached the disk.

crid-conmon writes the exit file as soon as the last output is written to
the log file (page cache), with the time it reaped the container as the
file's mtime, and only then fsyncs the log (conmon/main.c, PROTOCOL, step
5).  crid reads finishedAt from that mtime.  While the container writes,
the monitor starts the log's writeback every few MiB (conmon/crilog.c),
so that fsync is short and crid's own fsync when it saves the container
as exited (same file system here) does not wait behind hundreds of MiB.

The container is a tiny static program (compiled here, bind-mounted into
the container) that writes LOG_MIB MiB of 64-byte lines to stdout, reads
CLOCK_REALTIME after its last write(2) returned, writes that time to a
file on the mount and exits: its "real end".  Both tests run on crun and
runc:

- test_exit_file_timing drives crid-conmon alone (test_conmon.py's
  harness): the exit file appears within PROMPT_NS of the real end, its
  mtime (the reap) is within MARGIN_NS after it, and the log is complete
  when it appears;
- test_container_status_finished_at goes through crid: ContainerStatus
  says EXITED within PROMPT_NS of the real end, finished_at is within
  MARGIN_NS after it, and the log is complete at EXITED.  The container
  is then removed at once (its monitor may still be syncing the log) and
  nothing may be left once the monitor has ended.

Set CRID_EXIT_TIMING_MIB to change the amount of output.
"""

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import cridtest
from test_conmon import (  # noqa: F401  (fixtures)
    conmon_bin,
    host_ready,
    make_monitor,
    rootfs,
    runtime,
    spec_template,
)
from test_containers import env, handler, podenv_factory, states  # noqa: F401

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

LOG_MIB = int(os.environ.get("CRID_EXIT_TIMING_MIB", "300"))
LINE = 64  # bytes per line, newline included: 300 MiB make a 510 MiB log
# finished_at (the reap) after the real end, at most: the old monitor's
# fsync of the 510 MiB log took 200-300 ms on the test VM.
MARGIN_NS = 100 * 1000 * 1000
# EXITED (or the exit file) seen after the real end, at most: the reap,
# the exit file, crid saving the state and one ContainerStatus.
PROMPT_NS = 200 * 1000 * 1000
POLL_S = 0.002  # between two looks while waiting for the exit
EXIT_TIMEOUT = 120.0
MONITOR_END_TIMEOUT = 30.0

# writer MIB END_FILE: MIB MiB of LINE-byte lines to stdout in 64 KiB
# writes, then CLOCK_REALTIME (ns, decimal) into END_FILE, then exit 0.
WRITER_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#define LINE %d
int main(int argc, char **argv) {
  static char buf[65536];
  long mib = atol(argv[1]);
  struct timespec ts;
  char text[32];
  int fd, len;
  for (size_t i = 0; i < sizeof(buf); i += LINE) {
    memset(buf + i, 'a' + (i / LINE) %% 26, LINE - 1);
    buf[i + LINE - 1] = '\n';
  }
  for (long n = 0; n < mib * 16; n++) {
    size_t off = 0;
    while (off < sizeof(buf)) {
      ssize_t w = write(1, buf + off, sizeof(buf) - off);
      if (w <= 0) return 1;
      off += w;
    }
  }
  clock_gettime(CLOCK_REALTIME, &ts);
  len = snprintf(text, sizeof(text), "%%lld", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
  fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write(fd, text, len) != len) return 2;
  close(fd);
  return 0;
}
""" % LINE


@pytest.fixture(scope="session")
def writer_bin():
    top = Path(tempfile.mkdtemp(prefix="cxw-", dir="/tmp"))
    try:
        (top / "writer.c").write_text(WRITER_C)
        subprocess.run(["gcc", "-O2", "-static", "-o", str(top / "writer"), str(top / "writer.c")],
                       check=True)
        yield top / "writer"
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def shared_dir(writer_bin):
    """A host directory with the writer, mounted read-write into the
    container, where the container leaves its end time."""
    d = Path(tempfile.mkdtemp(prefix="cxt-", dir="/tmp"))
    os.chmod(d, 0o755)
    shutil.copy(writer_bin, d / "writer")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def full_records(path, stream=b"stdout"):
    """How many F records of stream the CRI log holds: every line of the
    writer ends in exactly one (a read that ends inside a line makes a P
    record of the piece, then the line's rest is an F record)."""
    needle = b" " + stream + b" F "
    count, carry = 0, b""
    with open(path, "rb") as f:
        while True:
            block = f.read(8 << 20)
            if not block:
                break
            data = carry + block
            count += data.count(needle)
            # Keep a tail that could start a needle split by the block end,
            # and count nothing twice: the tail holds no whole needle.
            carry = data[-(len(needle) - 1):]
    return count


def end_ns(shared):
    return int((shared / "end").read_text())


def ms(ns):
    return ns / 1e6


def wait_monitor_gone(pid, timeout=MONITOR_END_TIMEOUT):
    """pid (not our child) is gone or a zombie."""

    def gone():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return True
        return stat.rsplit(")", 1)[1].split()[0] == "Z"

    cridtest.wait_for(gone, timeout=timeout, interval=0.01, message=f"monitor {pid} to end")


# ------------------------------------------------------------ crid-conmon


def test_exit_file_timing(make_monitor, shared_dir, capsys):
    def mount_shared(config):
        config["mounts"].append({"destination": "/tmp", "type": "bind",
                                 "source": str(shared_dir), "options": ["rbind", "rw"]})

    m = make_monitor(["/tmp/writer", str(LOG_MIB), "/tmp/end"], config_edit=mount_shared)
    m.start()
    deadline = time.monotonic() + EXIT_TIMEOUT
    while not m.exit_file.exists():
        assert time.monotonic() < deadline, "no exit file"
        time.sleep(POLL_S)
    seen = time.time_ns()
    # What the log holds now, before the monitor has synced it.
    size = m.log.stat().st_size
    t0 = time.monotonic()
    wait_monitor_gone(m.monitor_pid)
    linger = time.monotonic() - t0
    lines = LOG_MIB * 1024 * 1024 // LINE
    complete = full_records(m.log) == lines and m.log.stat().st_size == size
    status = m.exit_file.read_text()
    reaped = m.exit_file.stat().st_mtime_ns
    end = end_ns(shared_dir)
    with capsys.disabled():
        print(f"\n  {LOG_MIB} MiB then exit ({Path(m.runtime).name}): exit file seen "
              f"{ms(seen - end):.1f} ms after the end, mtime {ms(reaped - end):.1f} ms after it; "
              f"the monitor ended {linger * 1000:.0f} ms after the exit file")
    assert status == "0"
    assert complete, "the log was not complete when the exit file appeared"
    assert 0 <= reaped - end <= MARGIN_NS, f"exit file mtime {ms(reaped - end):.1f} ms after end"
    assert seen - end <= PROMPT_NS, f"exit file seen {ms(seen - end):.1f} ms after the end"


# ------------------------------------------------------------------ crid


def test_container_status_finished_at(env, handler, shared_dir, capsys):
    pb = env.pb
    _, _, EXITED = states(pb)
    sandbox_id, sandbox_config = env.run_pod("exittime", handler)
    container_id = env.run(
        sandbox_id, sandbox_config, "writer", ["/mnt/t/writer", str(LOG_MIB), "/mnt/t/end"],
        mounts=[pb.Mount(container_path="/mnt/t", host_path=str(shared_dir))],
    )
    monitor_pid = int((env.crid.state_dir / "conmon" / container_id / "conmon.pid").read_text())
    deadline = time.monotonic() + EXIT_TIMEOUT
    while True:
        asked = time.time_ns()
        status = env.status(container_id).status
        if status.state == EXITED:
            seen = time.time_ns()
            break
        assert time.monotonic() < deadline, "the container did not exit"
        time.sleep(POLL_S)
    size = os.stat(status.log_path).st_size
    # Removed at once, while the monitor may still be syncing the log.
    t0 = time.monotonic()
    env.remove(container_id)
    wait_monitor_gone(monitor_pid)
    linger = time.monotonic() - t0
    lines = LOG_MIB * 1024 * 1024 // LINE
    log_path = status.log_path
    complete = full_records(log_path) == lines and os.stat(log_path).st_size == size
    end = end_ns(shared_dir)
    finished = status.finished_at
    with capsys.disabled():
        print(f"\n  {LOG_MIB} MiB then exit ({handler}): EXITED seen {ms(seen - end):.1f} ms "
              f"after the end (by a ContainerStatus sent at {ms(asked - end):.1f} ms), "
              f"finished_at {ms(finished - end):.1f} ms after it; the monitor ended "
              f"{linger * 1000:.0f} ms after the removal began")
    assert status.exit_code == 0
    assert complete, "the log was not complete at EXITED"
    assert 0 <= finished - end <= MARGIN_NS, f"finished_at {ms(finished - end):.1f} ms after end"
    assert seen - end <= PROMPT_NS, f"EXITED seen {ms(seen - end):.1f} ms after the end"
    env.remove_pod(sandbox_id)
    env.assert_clean()
