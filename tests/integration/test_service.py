"""crid as a node's service: the systemd notification protocol, seen through
a fake notify socket, live reload on SIGHUP, and the error a kubelet gets
when the node's network is not configured.

The fake notify socket is what systemd gives a Type=notify service: an
AF_UNIX datagram socket named by $NOTIFY_SOCKET (a path, or "@name" in the
abstract namespace).  The test binds it, with SO_PASSCRED so every message
carries its sender's pid as systemd sees it (NotifyAccess=main accepts only
the main pid), and reads it from a thread of its own.  Every wait is
bounded; only processes the harness started are signalled.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import struct
import tempfile
import threading
import time
from pathlib import Path

import grpc
import pytest

from test_sandbox import podenv_factory  # noqa: F401  (a fixture, used by name)

RPC_TIMEOUT = 10.0
NOTIFY_TIMEOUT = 15.0


class NotifySocket:
    """A fake systemd notify socket.  ``messages``: [(pid, {key: value},
    monotonic seconds)] in arrival order."""

    def __init__(self, abstract=False):
        self.dir = Path(tempfile.mkdtemp(prefix="crid-notify-", dir="/tmp"))
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        if abstract:
            name = f"crid-test-notify-{secrets.token_hex(6)}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            path = self.dir / "notify.sock"
            self.sock.bind(str(path))
            self.address = str(path)
        self.sock.settimeout(0.2)
        self.messages = []
        self.cond = threading.Condition()
        self.stopping = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        ucred = struct.calcsize("3i")
        while not self.stopping:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(ucred))
            except socket.timeout:
                continue
            except OSError:
                return
            pid = None
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", payload[:ucred])[0]
            fields = {}
            for line in data.decode(errors="replace").split("\n"):
                if "=" in line:
                    key, value = line.split("=", 1)
                    fields[key] = value
            with self.cond:
                self.messages.append((pid, fields, time.monotonic()))
                self.cond.notify_all()

    def wait(self, predicate, since=0, timeout=NOTIFY_TIMEOUT, what="a notification"):
        """The index of the first message from index since on for which
        predicate(fields) holds."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(since, len(self.messages)):
                    if predicate(self.messages[i][1]):
                        return i
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out after {timeout} s waiting for {what}; "
                        f"got {[m[1] for m in self.messages]}"
                    )
                self.cond.wait(left)

    def count(self):
        with self.cond:
            return len(self.messages)

    def fields(self, since=0):
        with self.cond:
            return [m[1] for m in self.messages[since:]]

    def close(self):
        self.stopping = True
        self.thread.join(timeout=5)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def notify():
    sockets = []

    def make(abstract=False):
        s = NotifySocket(abstract=abstract)
        sockets.append(s)
        return s

    yield make
    for s in sockets:
        s.close()


def start_notified(crid_factory, notify_socket, env=None, **kwargs):
    """A crid with NOTIFY_SOCKET set, started without waiting for Version."""
    environment = {
        "NOTIFY_SOCKET": notify_socket.address,
        "WATCHDOG_USEC": None,
        "WATCHDOG_PID": None,
    }
    environment.update(env or {})
    crid = crid_factory(start=False, env=environment, **kwargs)
    crid.start(wait=False)
    return crid


def is_ready(fields):
    return fields.get("READY") == "1"


def status_config(crid):
    pb = crid.api.pb
    info = crid.runtime.Status(pb.StatusRequest(verbose=True), timeout=RPC_TIMEOUT).info
    return json.loads(info["config"])


# --------------------------------------------------------------------------
# Readiness


def test_ready_once_the_socket_serves_and_recovery_is_done(crid_factory, notify, pb):
    n = notify()
    crid = start_notified(crid_factory, n)
    ready = n.wait(is_ready, what="READY=1")
    # At READY=1 a kubelet may call at once: the socket exists and calls
    # that need recovered state answer (no UNAVAILABLE).
    channel = crid.new_channel()
    try:
        stub = crid.api.grpc.RuntimeServiceStub(channel)
        assert stub.Version(pb.VersionRequest(), timeout=RPC_TIMEOUT).runtime_name == "crid"
        pods = stub.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=RPC_TIMEOUT)
        assert list(pods.items) == []
    finally:
        channel.close()
    fields = n.fields()
    assert str(crid.sock) in fields[ready].get("STATUS", ""), fields[ready]
    # Progress before it, in STATUS= lines.
    assert any("STATUS" in f for f in fields[:ready]), fields
    # Every message comes from crid's own process (NotifyAccess=main).
    with n.cond:
        pids = {pid for pid, _, _ in n.messages}
    assert pids == {crid.pid}, pids
    time.sleep(0.3)
    assert sum(1 for f in n.fields() if is_ready(f)) == 1, n.fields()
    assert crid.stop() == 0


def test_abstract_notify_socket(crid_factory, notify):
    n = notify(abstract=True)
    crid = start_notified(crid_factory, n)
    n.wait(is_ready, what="READY=1 on an abstract socket")
    crid.wait_ready()
    assert crid.stop() == 0


def test_stopping_on_sigterm(crid_factory, notify):
    n = notify()
    crid = start_notified(crid_factory, n)
    ready = n.wait(is_ready, what="READY=1")
    crid.wait_ready()
    assert crid.stop() == 0
    stopping = n.wait(lambda f: f.get("STOPPING") == "1", since=ready, what="STOPPING=1")
    assert stopping > ready


def test_unusable_notify_socket_is_not_fatal(crid_factory):
    crid = crid_factory(env={"NOTIFY_SOCKET": "relative/notify.sock"})
    crid.wait_log(lambda l: "NOTIFY_SOCKET" in l, message="a warning about NOTIFY_SOCKET")
    assert crid.running()
    assert crid.stop() == 0


def test_sighup_notifies_reloading_then_ready(crid_factory, notify):
    n = notify()
    crid = start_notified(crid_factory, n)
    n.wait(is_ready, what="READY=1")
    crid.wait_ready()

    since = n.count()
    before = time.monotonic_ns() // 1000
    crid.signal(signal.SIGHUP)
    reloading = n.wait(lambda f: f.get("RELOADING") == "1", since=since, what="RELOADING=1")
    after = time.monotonic_ns() // 1000
    fields = n.fields()[reloading]
    # systemd (253+) matches MONOTONIC_USEC against the time it sent the
    # signal: CLOCK_MONOTONIC, in microseconds.
    assert before <= int(fields["MONOTONIC_USEC"]) <= after, (before, fields, after)
    ready = n.wait(is_ready, since=reloading, what="READY=1 after the reload")
    assert "reloaded" in n.fields()[ready].get("STATUS", ""), n.fields()[ready]

    # A reload that fails still ends with READY=1, its STATUS says why.
    broken = crid.write_dropin("90-broken.conf", "[crid\n")
    since = n.count()
    crid.signal(signal.SIGHUP)
    reloading = n.wait(lambda f: f.get("RELOADING") == "1", since=since, what="RELOADING=1")
    ready = n.wait(is_ready, since=reloading, what="READY=1 after a failed reload")
    status = n.fields()[ready].get("STATUS", "")
    assert "reload failed" in status and f"{broken}:1" in status, status
    assert crid.running()
    assert crid.stop() == 0


def test_watchdog_pings_at_half_the_interval(crid_factory, notify):
    n = notify()
    crid = start_notified(crid_factory, n, env={"WATCHDOG_USEC": "200000"})
    n.wait(is_ready, what="READY=1")
    time.sleep(1.0)
    with n.cond:
        pings = [t for _, f, t in n.messages if f.get("WATCHDOG") == "1"]
    # Every 100 ms: some 10 in the second after READY, none far apart
    # (the bound leaves room for a loaded test machine).
    assert len(pings) >= 6, pings
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert max(gaps) < 0.5, gaps
    assert crid.stop() == 0


def test_watchdog_of_another_process_is_ignored(crid_factory, notify):
    n = notify()
    crid = start_notified(
        crid_factory, n, env={"WATCHDOG_USEC": "100000", "WATCHDOG_PID": str(os.getpid())}
    )
    n.wait(is_ready, what="READY=1")
    time.sleep(0.6)
    assert not any(f.get("WATCHDOG") for f in n.fields()), n.fields()
    assert crid.stop() == 0


# --------------------------------------------------------------------------
# Live reload


def handler_names(crid):
    pb = crid.api.pb
    status = crid.runtime.Status(pb.StatusRequest(), timeout=RPC_TIMEOUT)
    return [h.name for h in status.runtime_handlers]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_reload_names_keys_that_need_a_restart(crid_factory):
    crid = crid_factory(log_level="info")
    port = free_port()
    before = status_config(crid)
    handlers = handler_names(crid)
    runtime = shutil.which("crun") or shutil.which("runc")
    crid.write_config(
        config={
            "crid.api": {"stream_port": port},
            "crid.stats": {"collection_period": 7},
            "crid.runtime.runtimes.extra": {"runtime_path": runtime},
        }
    )
    line = crid.reload("stream_port changed")
    assert "reload: stream_port changed; takes effect after a restart" in line, line
    crid.wait_log(lambda l: "reload: collection_period changed; takes effect after a restart" in l)
    crid.wait_log(
        lambda l: 'reload: runtime handler "extra" added; takes effect after a restart' in l
    )
    # The running configuration is what runs: unchanged.
    after = status_config(crid)
    assert after["crid"]["api"]["stream_port"] == before["crid"]["api"]["stream_port"]
    assert after["crid"]["stats"] == before["crid"]["stats"]
    assert "extra" not in after["crid"]["runtime"]["runtimes"]
    assert handler_names(crid) == handlers
    assert crid.running()

    # After a restart they apply.
    assert crid.stop() == 0
    crid.start()
    restarted = status_config(crid)
    assert restarted["crid"]["api"]["stream_port"] == port
    assert "extra" in restarted["crid"]["runtime"]["runtimes"]
    assert crid.stop() == 0


def test_reload_applies_image_settings(crid_factory):
    crid = crid_factory(log_level="info")
    crid.write_dropin(
        "20-images.conf",
        "[crid.image]\nmax_concurrent_downloads = 7\npull_progress_timeout = 45\n\n"
        '[crid.image.registries."registry.example:5000"]\n'
        'location = "127.0.0.1:5999"\ninsecure = true\nmirrors = ["127.0.0.1:5998"]\n',
    )
    line = crid.reload("max_concurrent_downloads 3 -> 7")
    assert "pull_progress_timeout 60 -> 45" in line, line
    crid.wait_log(lambda l: 'reload: registry "registry.example:5000" added' in l)
    image = status_config(crid)["crid"]["image"]
    assert image["max_concurrent_downloads"] == 7
    assert image["pull_progress_timeout"] == 45
    assert image["registries"]["registry.example:5000"] == {
        "location": "127.0.0.1:5999",
        "insecure": True,
        "ca_dir": "",
        "mirrors": ["127.0.0.1:5998"],
    }
    assert not any("after a restart" in l for l in crid.log_lines()), crid.log_tail()

    # Log level too, and nothing changed is said as such.
    crid.write_config(config={"crid": {"log_level": "debug"}})
    crid.reload("reload: log level info -> debug")
    crid.reload("nothing changed")
    assert crid.stop() == 0


def test_reload_with_a_broken_file_keeps_everything(crid_factory):
    """One broken drop-in: no key of any file applies, the log names the
    file and line."""
    crid = crid_factory(log_level="info")
    crid.write_config(config={"crid.image": {"pull_progress_timeout": 30}})
    broken = crid.write_dropin("50-broken.conf", '[crid.image]\npull_progress_timeout = "soon"\n')
    line = crid.reload("reload: keeping the running configuration")
    assert f"{broken}:2" in line and "pull_progress_timeout" in line, line
    assert status_config(crid)["crid"]["image"]["pull_progress_timeout"] == 60
    assert crid.running()

    broken.unlink()
    crid.reload("pull_progress_timeout 60 -> 30")
    assert status_config(crid)["crid"]["image"]["pull_progress_timeout"] == 30
    assert crid.stop() == 0


# --------------------------------------------------------------------------
# Error codes a kubelet acts on


def test_run_pod_sandbox_without_cni_config_is_failed_precondition(podenv_factory):
    """Until a network configuration exists the node is not ready: the
    kubelet reads FAILED_PRECONDITION as such (not UNKNOWN), and the
    failed call leaves nothing behind."""
    env = podenv_factory(conflist=False)
    err = env.run_error(env.pod_config("nocni"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, (err.code(), err.details())
    assert "CNI" in (err.details() or ""), err.details()
    env.assert_clean("after RunPodSandbox without a network config")
    assert env.list() == []
