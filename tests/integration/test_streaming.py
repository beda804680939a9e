"""Streaming end to end: Exec, Attach and PortForward return URLs of
crid's own streaming server; these tests use those URLs as crictl,
critest and the kubelet do (SPDY/3.1, streamclient.py) and over
WebSocket, against real crun and runc containers (test_containers'
ContainerEnv: a network namespace per test with crid running inside it,
a private bridge and cgroup parent, the busybox image imported).

crid's streaming server listens on 127.0.0.1 inside the test's network
namespace, so every client socket is created there (``netns=env.netns``).
Port-forward targets are busybox nc/httpd inside the pods, or for the
hostNetwork pod, busybox httpd on 127.0.0.1 of the test's namespace.

Every wait is bounded; the only processes signalled are those of the
test's own pods, through crid.  After each test every pod is removed and
nothing may remain (ContainerEnv.assert_clean).
"""

import concurrent.futures
import re
import socket
import ssl
import struct
import subprocess
import threading
import time

import grpc
import pytest
import websocket

import cridtest
import netns as nsutil
import registry as regutil
import streamclient as sc
from test_containers import (  # noqa: F401  (fixtures pytest must see)
    RPC_TIMEOUT,
    ContainerEnv,
    handler,
    podenv_factory,
)

STREAM_TIMEOUT = 20.0
URL_RE = re.compile(r"^http://127\.0\.0\.1:(\d+)/(exec|attach|portforward)/([A-Za-z0-9_-]+)$")
MiB = 1024 * 1024

ECHO_PORT = 8080      # busybox nc -ll -e cat, all addresses (dual stack)
HTTP6_PORT = 8081     # busybox httpd on [::1] only
HTTP4_PORT = 8082     # busybox httpd on 127.0.0.1 only
BANNER_PORT = 8083    # busybox nc -ll -e echo: writes a line first, then closes
CLOSED_PORT = 8099    # nothing listens
HTTP_BODY = b"hello-http\n"
BANNER = b"banner-first\n"
LOOPBACK6_HEX = "00000000000000000000000000000001"

SERVERS_SCRIPT = (
    "mkdir -p /tmp/www && echo hello-http > /tmp/www/index.html; "
    f"httpd -f -p 127.0.0.1:{HTTP4_PORT} -h /tmp/www & "
    f"if grep -q {LOOPBACK6_HEX} /proc/net/if_inet6 2>/dev/null; "
    f"then httpd -f -p '[::1]:{HTTP6_PORT}' -h /tmp/www & fi; "
    f"nc -ll -p {BANNER_PORT} -e /bin/echo banner-first & "
    f"exec nc -ll -p {ECHO_PORT} -e /bin/cat"
)


class StreamEnv(ContainerEnv):
    """ContainerEnv plus the streaming RPCs and clients bound to the
    test's network namespace."""

    def __init__(self, podenv_factory):
        super().__init__(podenv_factory)
        self.netns = str(self.pod.ns.path)
        self.sandbox_configs = {}

    def run_pod(self, name, handler):
        sandbox_id, config = super().run_pod(name, handler)
        self.sandbox_configs[sandbox_id] = config
        return sandbox_id, config

    # -- RPCs -------------------------------------------------------------

    def exec_request(self, container_id, cmd, tty=False, stdin=False, stdout=True, stderr=None):
        if stderr is None:
            stderr = not tty
        return self.crid.runtime.Exec(
            self.pb.ExecRequest(container_id=container_id, cmd=cmd, tty=tty, stdin=stdin,
                                stdout=stdout, stderr=stderr),
            timeout=RPC_TIMEOUT,
        )

    def exec_url(self, container_id, cmd, **kwargs):
        url = self.exec_request(container_id, cmd, **kwargs).url
        assert URL_RE.match(url), url
        return url

    def attach_url(self, container_id, stdin=False, tty=False, stdout=True, stderr=None):
        if stderr is None:
            stderr = not tty
        url = self.crid.runtime.Attach(
            self.pb.AttachRequest(container_id=container_id, stdin=stdin, tty=tty,
                                  stdout=stdout, stderr=stderr),
            timeout=RPC_TIMEOUT,
        ).url
        assert URL_RE.match(url), url
        return url

    def portforward_url(self, sandbox_id, ports=()):
        url = self.crid.runtime.PortForward(
            self.pb.PortForwardRequest(pod_sandbox_id=sandbox_id, port=list(ports)),
            timeout=RPC_TIMEOUT,
        ).url
        assert URL_RE.match(url), url
        return url

    # -- clients ----------------------------------------------------------

    def exec_spdy(self, container_id, cmd, stdin=None, tty=False, resize=None,
                  protocols=sc.V4_FIRST, timeout=STREAM_TIMEOUT):
        url = self.exec_url(container_id, cmd, tty=tty, stdin=stdin is not None)
        return sc.exec_spdy(url, stdin=stdin, tty=tty, resize=resize, protocols=protocols,
                            timeout=timeout, netns=self.netns)

    def session(self, url, stdin=False, stdout=True, stderr=True, tty=False,
                timeout=STREAM_TIMEOUT):
        return sc.open_remote_command(url, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty,
                                      timeout=timeout, netns=self.netns)

    def port_forward(self, sandbox_id):
        return sc.PortForwardSpdy(self.portforward_url(sandbox_id), STREAM_TIMEOUT, self.netns)

    # -- pods -------------------------------------------------------------

    def sleeper(self, handler, name="stream"):
        """A pod with one running `sleep 1000` container: (sandbox, container)."""
        sandbox_id, sandbox_config = self.run_pod(name, handler)
        container_id = self.run(sandbox_id, sandbox_config, "target", ["/bin/sleep", "1000"])
        return sandbox_id, container_id

    def servers_pod(self, handler, name="pf"):
        """A pod whose container runs the port-forward targets; returns
        (sandbox, container, has ::1) once they listen."""
        sandbox_id, sandbox_config = self.run_pod(name, handler)
        container_id = self.run(sandbox_id, sandbox_config, "servers",
                                ["/bin/sh", "-c", SERVERS_SCRIPT])
        has_ipv6 = LOOPBACK6_HEX in self.exec_text(container_id, "cat /proc/net/if_inet6 || true")
        ports = {ECHO_PORT, HTTP4_PORT, BANNER_PORT} | ({HTTP6_PORT} if has_ipv6 else set())
        self.wait_listening(container_id, ports)
        return sandbox_id, container_id, has_ipv6

    def exec_text(self, container_id, script):
        response = self.exec_sync(container_id, ["/bin/sh", "-c", script], timeout=10)
        assert response.exit_code == 0, response.stderr
        return response.stdout.decode()

    def wait_listening(self, container_id, ports, timeout=10.0):
        def listening():
            text = self.exec_text(container_id, "netstat -ltn")
            found = {int(p) for p in re.findall(r":(\d+)\s", text)}
            return set(ports) <= found

        cridtest.wait_for(listening, timeout=timeout, interval=0.2,
                          message=f"ports {sorted(ports)} to listen")

    def container_processes(self, needle):
        """{pid: cmdline} of processes in the test's cgroups whose command
        line contains needle (exec'd processes join their container's)."""
        found = {}
        for pid in nsutil.cgroup_processes(self.pod.cgroup_parent):
            cmdline = nsutil._cmdline(pid)
            if cmdline and needle in cmdline:
                found[pid] = cmdline
        return found

    def crid_rss_kib(self):
        with open(f"/proc/{self.crid.pid}/status") as f:
            return int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1))

    def assert_crid_answers(self):
        assert self.crid.running(), "crid exited"
        self.crid.runtime.Version(self.pb.VersionRequest(), timeout=5)


@pytest.fixture
def env(podenv_factory):
    """A StreamEnv; after a failed test its pods are removed through crid
    while crid still runs (as in test_container_features)."""
    stream_env = StreamEnv(podenv_factory)
    yield stream_env
    if not stream_env.crid.running():
        return
    try:
        for sandbox in stream_env.pod.list():
            stream_env.remove_pod(sandbox.id)
    except grpc.RpcError as e:
        print(f"removing the pods after the test failed: {e}")


def remove_and_check(env, sandbox_id):
    env.remove_pod(sandbox_id)
    env.assert_clean()


def http_get(pair, timeout=10.0):
    """An HTTP/1.0 request over a forwarded connection; busybox httpd
    answers and closes, so the data stream must end with FIN."""
    pair.data.write(b"GET /index.html HTTP/1.0\r\n\r\n")
    return pair.data.read_all(timeout)


def assert_pair_done(pair, timeout=5.0):
    """Once the target closed, the server closes the error stream too
    (the kubelet library closes both streams when the forward returns;
    client-go waits for the error stream's end before it lets go of the
    local connection)."""
    assert pair.error.wait_ended(timeout), (
        f"error stream of port {pair.port} still open {timeout} s after the data stream ended")
    assert pair.error_text(1) == ""


def with_token(url, token):
    return url.rsplit("/", 1)[0] + "/" + token


# --------------------------------------------------------------------------
# Exec over SPDY


def test_exec_echo_hello(env, handler):
    sandbox_id, container_id = env.sleeper(handler)
    url = env.exec_url(container_id, ["echo", "hello"])
    result = sc.exec_spdy(url, timeout=STREAM_TIMEOUT, netns=env.netns)
    assert result.protocol == "v4.channel.k8s.io"
    assert result.stdout == b"hello\n", result
    assert result.stderr == b"", result
    assert result.status["status"] == "Success" and result.exit_code == 0, result
    assert not result.violations, result.violations
    remove_and_check(env, sandbox_id)


def test_http_server_is_loaded_by_the_first_stream(env):
    """An idle crid maps no HTTP stack: its streaming port is bound from the
    start, and crid-http.so (libmicrohttpd, gnutls) is loaded by the first
    Exec, which it then serves."""
    sandbox_id, container_id = env.sleeper("crun")
    maps = f"/proc/{env.crid.pid}/maps"
    with open(maps) as f:
        before = f.read()
    for library in ("crid-http.so", "libmicrohttpd", "libgnutls"):
        assert library not in before, f"{library} mapped before any stream"
    url = env.exec_url(container_id, ["echo", "first"])
    with open(maps) as f:
        assert "crid-http.so" in f.read()
    result = sc.exec_spdy(url, timeout=STREAM_TIMEOUT, netns=env.netns)
    assert result.stdout == b"first\n" and result.exit_code == 0, result
    remove_and_check(env, sandbox_id)


def test_exec_tokens_are_single_use_and_unknown_ones_404(env, handler):
    sandbox_id, container_id = env.sleeper(handler)
    url = env.exec_url(container_id, ["echo", "hello"])
    assert sc.exec_spdy(url, timeout=STREAM_TIMEOUT, netns=env.netns).stdout == b"hello\n"
    status, _ = sc.spdy_upgrade_raw(url, sc.V4_FIRST, netns=env.netns)
    assert status == 404, "a used token was accepted again"
    with pytest.raises(sc.UpgradeRefused) as refused:
        sc.SpdyConnection(url, timeout=STREAM_TIMEOUT, netns=env.netns)
    assert refused.value.status == 404

    fresh = env.exec_url(container_id, ["echo", "hello"])
    for bogus in ("AAAAAAAA", "x", "A" * 200):
        assert sc.spdy_upgrade_raw(with_token(fresh, bogus), sc.V4_FIRST,
                                   netns=env.netns)[0] == 404, bogus
    # An unknown token over WebSocket (GET) too.
    with pytest.raises(websocket.WebSocketBadStatusException) as refused_ws:
        sc.ws_connect(with_token(fresh, "AAAAAAAA"), "v4.channel.k8s.io", 10, env.netns)
    assert refused_ws.value.status_code == 404
    # The bogus tries did not spend the real one.
    assert sc.exec_spdy(fresh, timeout=STREAM_TIMEOUT, netns=env.netns).stdout == b"hello\n"
    remove_and_check(env, sandbox_id)


def test_exec_exit_codes(env, handler):
    sandbox_id, container_id = env.sleeper(handler)
    for script, code in (("exit 0", 0), ("exit 1", 1), ("kill -9 $$", 137)):
        result = env.exec_spdy(container_id, ["/bin/sh", "-c", script])
        assert result.exit_code == code, (script, result)
        if code:
            assert result.status["status"] == "Failure", result
            assert result.status["reason"] == "NonZeroExitCode", result
    remove_and_check(env, sandbox_id)


def test_exec_stdout_and_stderr_are_separate(env, handler):
    sandbox_id, container_id = env.sleeper(handler)
    result = env.exec_spdy(container_id,
                           ["/bin/sh", "-c", "echo out; echo err >&2; echo out2; exit 4"])
    assert result.stdout == b"out\nout2\n", result
    assert result.stderr == b"err\n", result
    assert result.exit_code == 4
    remove_and_check(env, sandbox_id)


def test_exec_stdin_reaches_cat_and_eof_ends_it(env, handler):
    sandbox_id, container_id = env.sleeper(handler)
    small = env.exec_spdy(container_id, ["/bin/cat"], stdin=b"hello stdin\n")
    assert small.stdout == b"hello stdin\n" and small.exit_code == 0, small
    # More than one DATA frame and more than a pipe buffer.
    data = bytes(range(256)) * 1024 + b"end\n"
    big = env.exec_spdy(container_id, ["/bin/cat"], stdin=data)
    assert len(big.stdout) == len(data) and big.stdout == data
    assert big.exit_code == 0 and not big.violations
    empty = env.exec_spdy(container_id, ["/bin/cat"], stdin=b"")
    assert empty.stdout == b"" and empty.exit_code == 0, empty
    remove_and_check(env, sandbox_id)


def test_exec_interactive_stdin_and_ping(env, handler):
    sandbox_id, container_id = env.sleeper(handler)
    url = env.exec_url(container_id, ["/bin/cat"], stdin=True)
    session = env.session(url, stdin=True)
    try:
        session.stdin.write(b"one\n")
        assert session.stdout.read_until(b"one\n", 5) == b"one\n"
        assert session.conn.ping(5) < 5
        session.stdin.write(b"two\n")
        assert session.stdout.read_until(b"two\n", 5) == b"two\n"
        session.stdin.close_write()
        result = session.finish(10)
    finally:
        session.close()
    assert result.stdout == b"" and result.exit_code == 0, result
    remove_and_check(env, sandbox_id)


def test_exec_tty(env, handler):
    sandbox_id, container_id = env.sleeper(handler)
    result = env.exec_spdy(container_id, ["/bin/sh", "-c", "tty; [ -t 1 ] && echo ISATTY"],
                           tty=True)
    assert b"/dev/pts/" in result.stdout and b"ISATTY" in result.stdout, result
    assert result.stderr == b"" and result.exit_code == 0, result

    # The size arrives on the resize stream, maybe after the command
    # started: poll (bounded) until the terminal has it.
    script = ('i=0; while [ $i -lt 50 ]; do s=$(stty size); [ "$s" = "45 123" ] && break; '
              'i=$((i+1)); sleep 0.1; done; echo "size=$s"')
    result = env.exec_spdy(container_id, ["/bin/sh", "-c", script], tty=True,
                           resize=[(123, 45)])
    assert b"size=45 123" in result.stdout, result
    # stderr goes to the terminal too.
    result = env.exec_spdy(container_id, ["/bin/sh", "-c", "echo err >&2"], tty=True)
    assert b"err" in result.stdout and result.stderr == b"", result
    remove_and_check(env, sandbox_id)


def test_exec_older_protocols(env, handler):
    sandbox_id, container_id = env.sleeper(handler)
    for protocol in ("v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"):
        result = env.exec_spdy(container_id, ["echo", "hello"], protocols=[protocol])
        assert result.protocol == protocol
        assert result.stdout == b"hello\n" and result.stderr == b"", result
        assert result.status == "" and result.exit_code == 0, result
    # Before v4 a failure is plain text on the error stream.
    result = env.exec_spdy(container_id, ["/bin/sh", "-c", "exit 1"],
                           protocols=["v3.channel.k8s.io"])
    assert result.status != "" and result.exit_code is None, result
    # tty: v3 adds a resize stream, v2 has none; a miscount would hang.
    for protocol in ("v3.channel.k8s.io", "v2.channel.k8s.io"):
        result = env.exec_spdy(container_id, ["echo", "tty"], tty=True, protocols=[protocol],
                               timeout=10)
        assert result.protocol == protocol and b"tty" in result.stdout, result
    remove_and_check(env, sandbox_id)


def test_exec_protocol_negotiation_refusals(env, handler):
    sandbox_id, container_id = env.sleeper(handler)
    url = env.exec_url(container_id, ["echo", "hello"])
    status, headers = sc.spdy_upgrade_raw(url, ["v9.channel.k8s.io"], netns=env.netns)
    assert status == 403
    accepted = headers.get("x-accepted-stream-protocol-versions", [])
    assert "v4.channel.k8s.io" in ",".join(accepted), headers
    # The token went with that first hit.
    assert sc.spdy_upgrade_raw(url, sc.V4_FIRST, netns=env.netns)[0] == 404

    url = env.exec_url(container_id, ["echo", "hello"])
    assert sc.spdy_upgrade_raw(url, None, netns=env.netns)[0] == 400
    # Several protocols in one comma-separated line are split.
    url = env.exec_url(container_id, ["echo", "hello"])
    with sc.SpdyConnection(url, ["v9.channel.k8s.io, v3.channel.k8s.io"], STREAM_TIMEOUT,
                           env.netns) as conn:
        assert conn.protocol == "v3.channel.k8s.io"
        result = sc.RemoteCommand(conn).finish(STREAM_TIMEOUT)
    assert result.stdout == b"hello\n"
    remove_and_check(env, sandbox_id)


def test_exec_request_validation(env, handler):
    pb = env.pb
    sandbox_id, container_id = env.sleeper(handler)
    created = env.create(sandbox_id, env.sandbox_configs[sandbox_id],
                         env.container_config("created", ["/bin/sleep", "1000"]))

    error = cridtest.rpc_error(env.exec_request, created, ["echo", "x"])
    assert error.code() in (grpc.StatusCode.FAILED_PRECONDITION,
                            grpc.StatusCode.INVALID_ARGUMENT), error
    error = cridtest.rpc_error(env.exec_request, container_id, ["echo", "x"], tty=True,
                               stderr=True)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    error = cridtest.rpc_error(env.exec_request, container_id, ["echo", "x"], stdout=False,
                               stderr=False)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    error = cridtest.rpc_error(env.exec_request, "f" * 64, ["echo", "x"])
    assert error.code() == grpc.StatusCode.NOT_FOUND, error

    error = cridtest.rpc_error(env.crid.runtime.Attach,
                               pb.AttachRequest(container_id="f" * 64, stdout=True),
                               timeout=RPC_TIMEOUT)
    assert error.code() != grpc.StatusCode.OK
    error = cridtest.rpc_error(env.crid.runtime.PortForward,
                               pb.PortForwardRequest(pod_sandbox_id="f" * 64),
                               timeout=RPC_TIMEOUT)
    assert error.code() != grpc.StatusCode.OK
    env.remove(created)
    remove_and_check(env, sandbox_id)


def test_exec_token_expires_after_a_minute(env):
    sandbox_id, container_id = env.sleeper("crun")
    url = env.exec_url(container_id, ["echo", "hello"])
    time.sleep(65)  # the token TTL is one minute
    assert sc.spdy_upgrade_raw(url, sc.V4_FIRST, netns=env.netns)[0] == 404
    remove_and_check(env, sandbox_id)


# --------------------------------------------------------------------------
# Attach


def test_attach_to_sh(env, handler):
    sandbox_id, sandbox_config = env.run_pod("attach", handler)
    container_id = env.run(sandbox_id, sandbox_config, "shell", ["/bin/sh"],
                           stdin=True, stdin_once=False, tty=False)
    env.wait_state(container_id, env.pb.CONTAINER_RUNNING)

    url = env.attach_url(container_id, stdin=True, stdout=True, stderr=True)
    session = env.session(url, stdin=True, stdout=True, stderr=True)
    try:
        session.stdin.write(b"echo hello\n")
        assert session.stdout.read_until(b"hello\n", 5) == b"hello\n"
        # Exactly that, and nothing on stderr (critest watches 3 s).
        with pytest.raises(sc.StreamTimeout):
            session.stdout.read(2.0)
        with pytest.raises(sc.StreamTimeout):
            session.stderr.read(0.5)
        session.stdin.close_write()
    finally:
        session.close()

    # stdin_once=false: the end of a session leaves the shell's stdin open.
    time.sleep(0.5)
    assert env.state(container_id) == env.pb.CONTAINER_RUNNING

    session = env.session(env.attach_url(container_id, stdin=True, stdout=True, stderr=True),
                          stdin=True, stdout=True, stderr=True)
    try:
        session.stdin.write(b"echo again >&2\n")
        assert session.stderr.read_until(b"again\n", 5) == b"again\n"
        session.stdin.write(b"exit 3\n")
        # The container's end ends the session.
        result = session.finish(10)
    finally:
        session.close()
    assert result.stdout == b"" and not result.violations, result
    env.wait_state(container_id, env.pb.CONTAINER_EXITED)
    assert env.status(container_id).status.exit_code == 3
    remove_and_check(env, sandbox_id)


# --------------------------------------------------------------------------
# Port forward over SPDY


def test_port_forward_echo(env, handler):
    sandbox_id, _, _ = env.servers_pod(handler)
    with env.port_forward(sandbox_id) as session:
        pair = session.connect(ECHO_PORT)
        assert pair.request_id == 0
        assert pair.exchange(b"ping\n", 5) == b"ping\n"
        payload = bytes(range(256)) * 512  # 128 KiB, several DATA frames
        assert pair.exchange(payload, 10) == payload
        # Our FIN reaches cat as EOF; its exit ends the data stream.
        pair.data.close_write()
        assert pair.data.read_all(10) == b""
        assert pair.error_text(10) == ""

        # Half-close right after writing: the echo still comes back whole.
        pair = session.connect(ECHO_PORT)
        assert pair.request_id == 1
        pair.data.write(b"tail\n")
        pair.data.close_write()
        assert pair.data.read_all(10) == b"tail\n"
        assert not session.conn.violations, session.conn.violations
    remove_and_check(env, sandbox_id)


def test_port_forward_parallel_connections(env, handler):
    sandbox_id, _, _ = env.servers_pod(handler)
    with env.port_forward(sandbox_id) as session:
        pairs = [session.connect(ECHO_PORT) for _ in range(8)]
        assert [p.request_id for p in pairs] == list(range(8))
        payloads = [(b"conn-%d " % i) * (1000 * (i + 1)) for i in range(len(pairs))]
        results = [None] * len(pairs)

        def one(i):
            results[i] = pairs[i].exchange(payloads[i], 15)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(pairs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results == payloads, [len(r or b"") for r in results]
        # An HTTP request in the same session meanwhile.
        response = http_get(session.connect(HTTP4_PORT))
        assert response.startswith(b"HTTP/1.") and response.endswith(HTTP_BODY), response
        for pair in pairs:
            pair.data.close_write()
            assert pair.data.read_all(10) == b""
        assert not session.conn.violations, session.conn.violations
    remove_and_check(env, sandbox_id)


def test_port_forward_to_ipv4_only_listener(env, handler):
    sandbox_id, _, _ = env.servers_pod(handler)
    with env.port_forward(sandbox_id) as session:
        pair = session.connect(HTTP4_PORT)
        response = http_get(pair)
        assert b" 200 " in response.split(b"\r\n", 1)[0], response
        assert response.endswith(HTTP_BODY), response
        assert_pair_done(pair)
    remove_and_check(env, sandbox_id)


def test_port_forward_to_ipv6_only_listener(env, handler):
    sandbox_id, _, has_ipv6 = env.servers_pod(handler)
    if not has_ipv6:
        remove_and_check(env, sandbox_id)
        pytest.skip("the pod's loopback has no ::1")
    with env.port_forward(sandbox_id) as session:
        pair = session.connect(HTTP6_PORT)
        response = http_get(pair)
        assert b" 200 " in response.split(b"\r\n", 1)[0], response
        assert response.endswith(HTTP_BODY), response
        assert_pair_done(pair)
    remove_and_check(env, sandbox_id)


def test_port_forward_server_speaks_first(env, handler):
    """Nothing is written by the client: the target's greeting must still
    come (a lazy connect on first client data would hang SSH, SMTP...)."""
    sandbox_id, _, _ = env.servers_pod(handler)
    with env.port_forward(sandbox_id) as session:
        pair = session.connect(BANNER_PORT)
        assert pair.data.read_all(10) == BANNER
        assert_pair_done(pair)
    remove_and_check(env, sandbox_id)


def test_port_forward_refused_port_reports_error(env, handler):
    sandbox_id, _, _ = env.servers_pod(handler)
    with env.port_forward(sandbox_id) as session:
        pair = session.connect(CLOSED_PORT)
        text = pair.error_text(10)
        assert text.strip(), "no error text for a port nothing listens on"
        assert pair.data.wait_ended(10), "the data stream of a refused port did not end"
        # The session survives: another connection works.
        assert session.connect(ECHO_PORT).exchange(b"still\n", 5) == b"still\n"
    remove_and_check(env, sandbox_id)


def test_port_forward_host_network_pod(env, handler):
    config = env.pod.pod_config("pf-host", uid=f"uid-pf-host-{handler}", hostname="",
                                host_network=True)
    sandbox_id = env.pod.run_pod(config, handler=handler)
    # A port free in the test's namespace, where crid's own streaming
    # server also listens (a fixed port once met it there).
    port = regutil.free_port(env.pod.ns.path)
    script = ("mkdir -p /tmp/www && echo hello-http > /tmp/www/index.html && "
              f"exec httpd -f -p 127.0.0.1:{port} -h /tmp/www")
    container_id = env.run(sandbox_id, config, "httpd", ["/bin/sh", "-c", script])
    env.wait_listening(container_id, {port})
    # It listens in the node's (the test's) namespace.
    listeners = env.pod.ns.run("ss", "-Hltn").stdout
    assert f"127.0.0.1:{port}" in listeners, listeners
    with env.port_forward(sandbox_id) as session:
        response = http_get(session.connect(port))
        assert response.endswith(HTTP_BODY), response
    remove_and_check(env, sandbox_id)


# --------------------------------------------------------------------------
# WebSocket


@pytest.mark.parametrize("protocol", ["v4.channel.k8s.io", "v4.base64.channel.k8s.io",
                                      "channel.k8s.io"])
def test_exec_websocket(env, handler, protocol):
    sandbox_id, container_id = env.sleeper(handler)
    url = env.exec_url(container_id, ["/bin/sh", "-c", "echo out; echo err >&2; exit 2"])
    result = sc.exec_ws(url, protocol, timeout=STREAM_TIMEOUT, netns=env.netns)
    assert result.stdout == b"out\n" and result.stderr == b"err\n", result
    if protocol.startswith("v4."):
        assert result.exit_code == 2, result
    else:
        assert result.status != "", result  # plain text
    url = env.exec_url(container_id, ["echo", "hello"])
    result = sc.exec_ws(url, protocol, timeout=STREAM_TIMEOUT, netns=env.netns)
    assert result.stdout == b"hello\n" and result.exit_code == 0, result
    remove_and_check(env, sandbox_id)


def test_exec_websocket_v5_closes_stdin(env, handler):
    sandbox_id, container_id = env.sleeper(handler)
    url = env.exec_url(container_id, ["/bin/cat"], stdin=True)
    data = b"over websocket\n" * 1000
    result = sc.exec_ws(url, "v5.channel.k8s.io", stdin=data, timeout=STREAM_TIMEOUT,
                        netns=env.netns)
    assert result.stdout == data and result.exit_code == 0, result
    remove_and_check(env, sandbox_id)


def test_port_forward_websocket(env, handler):
    sandbox_id, _, _ = env.servers_pod(handler)
    url = env.portforward_url(sandbox_id, ports=[ECHO_PORT])
    with sc.portforward_ws(url, "v4.channel.k8s.io", STREAM_TIMEOUT, env.netns) as forward:
        assert forward.ports() == (ECHO_PORT, ECHO_PORT)
        forward.send(b"ws-ping\n")
        assert forward.read(8, timeout=5) == b"ws-ping\n"
        payload = b"0123456789abcdef" * 4096
        forward.send(payload)
        assert forward.read(len(payload), timeout=10) == payload
    remove_and_check(env, sandbox_id)


def test_port_forward_websocket_two_ports_and_banner(env, handler):
    """Ports [echo, banner]: channels 0/1 and 2/3; the port prefixes come
    first on all four, and the banner arrives with nothing sent."""
    sandbox_id, _, _ = env.servers_pod(handler)
    url = env.portforward_url(sandbox_id, ports=[ECHO_PORT, BANNER_PORT])
    with sc.portforward_ws(url, "v4.channel.k8s.io", STREAM_TIMEOUT, env.netns) as forward:
        assert forward.ports(0) == (ECHO_PORT, ECHO_PORT)
        assert forward.ports(1) == (BANNER_PORT, BANNER_PORT)
        assert forward.read(len(BANNER), index=1, timeout=10) == BANNER
        forward.send(b"second\n", index=0)
        assert forward.read(7, index=0, timeout=5) == b"second\n"
    remove_and_check(env, sandbox_id)


# --------------------------------------------------------------------------
# Robustness


def test_fifty_concurrent_execs(env, handler):
    sandbox_id, container_id = env.sleeper(handler)
    count = 50
    urls = [env.exec_url(container_id, ["/bin/sh", "-c", f"echo {i}; echo e{i} >&2"])
            for i in range(count)]

    def run(url):
        try:
            return sc.exec_spdy(url, timeout=60, netns=env.netns)
        except Exception as e:  # reported below
            return e

    with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
        results = list(pool.map(run, urls))
    failures = [(i, r) for i, r in enumerate(results)
                if isinstance(r, Exception) or r.stdout != f"{i}\n".encode()
                or r.stderr != f"e{i}\n".encode() or r.exit_code != 0]
    assert not failures, f"{len(failures)} of {count} failed: {failures[:3]}"
    env.assert_crid_answers()
    remove_and_check(env, sandbox_id)


def test_client_disconnect_ends_exec_processes(env, handler):
    sandbox_id, container_id = env.sleeper(handler)

    # A command that never reads or writes: only crid can end it.
    url = env.exec_url(container_id, ["/bin/sh", "-c", "sleep 1001; echo never"])
    session = env.session(url)
    cridtest.wait_for(lambda: env.container_processes("sleep 1001"), timeout=10,
                      message="the exec'd sleep to run")
    session.conn.abort()
    cridtest.wait_for(lambda: not env.container_processes("sleep 1001"), timeout=10,
                      message="the exec'd sleep to go after the client left")

    # cat with stdin open, dropped with a TCP reset this time.
    url = env.exec_url(container_id, ["/bin/sh", "-c", "cat; echo 1002"], stdin=True)
    session = env.session(url, stdin=True)
    session.stdin.write(b"x\n")
    assert session.stdout.read_until(b"x\n", 5) == b"x\n"
    assert env.container_processes("1002")
    session.conn.abort(rst=True)
    cridtest.wait_for(lambda: not env.container_processes("1002"), timeout=10,
                      message="the exec'd cat to go after the client left")
    env.assert_crid_answers()
    remove_and_check(env, sandbox_id)


def test_unread_output_does_not_grow_crid(env, handler):
    sandbox_id, container_id = env.sleeper(handler)
    before = env.crid_rss_kib()
    url = env.exec_url(container_id, ["/bin/sh", "-c", "head -c 500000000 /dev/zero"])
    session = env.session(url)
    try:
        session.conn.pause_reading()
        time.sleep(4)  # the command could write hundreds of MiB meanwhile
        during = env.crid_rss_kib()
        env.assert_crid_answers()
        assert during - before < 8 * 1024, f"crid RSS {before} -> {during} KiB"
        # The stream still works once the client reads again.
        session.conn.resume_reading()
        got = 0
        while got < 4 * MiB:
            chunk = session.stdout.read(10)
            assert chunk, "stdout ended early"
            got += len(chunk)
    finally:
        session.conn.abort()
    cridtest.wait_for(lambda: not env.container_processes("head -c 500000000"), timeout=10,
                      message="head to end after the client left")
    after = env.crid_rss_kib()
    assert after - before < 8 * 1024, f"crid RSS {before} -> {after} KiB"
    remove_and_check(env, sandbox_id)


def _garbage_cases():
    """{name: (bytes sent after the upgrade, whether crid must close)}.
    Frames that break the connection (SPDY/3 §2.4.1 session errors: bad
    version, a header block that does not inflate, a control frame over
    crid's limit or shorter than its type needs) must close it; other junk
    may leave crid waiting for the rest of a frame, so for those only
    survival is checked."""
    not_zlib = struct.pack(">IIBB", 1, 0, 0, 0) + b"\x00\x01 this is not zlib at all" * 4
    return {
        "control frame too long": (
            sc.control_frame(sc.SYN_STREAM, 0, b"")[:5] + b"\xff\xff\xff", True),
        "header block not zlib": (sc.control_frame(sc.SYN_STREAM, 0, not_zlib), True),
        "spdy version 2": (struct.pack(">HHI", 0x8002, sc.SYN_STREAM, 10) + b"\x00" * 10, True),
        "SYN_STREAM too short": (sc.control_frame(sc.SYN_STREAM, 0, b"\xff" * 4), True),
        "random bytes": (bytes((i * 131 + 7) % 256 for i in range(4096)), False),
        "http again": (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 4, False),
        "even stream id": (
            sc.control_frame(sc.SYN_STREAM, 0, struct.pack(">IIBB", 2, 0, 0, 0)), False),
    }


def test_garbage_after_upgrade_is_survived(env, handler):
    sandbox_id, container_id = env.sleeper(handler)
    for name, (garbage, must_close) in _garbage_cases().items():
        url = env.exec_url(container_id, ["echo", "hello"])
        conn = sc.SpdyConnection(url, timeout=STREAM_TIMEOUT, netns=env.netns)
        try:
            try:
                conn.send_raw(garbage)
            except OSError:
                pass  # already closed by crid: fine
            if must_close:
                assert conn.wait_closed(15), f"{name}: crid kept the connection open"
            else:
                conn.wait_closed(1)
        finally:
            conn.abort()
        env.assert_crid_answers()

    # Garbage instead of an HTTP request, and a WebSocket sending junk.
    url = env.exec_url(container_id, ["echo", "hello"])
    sock = sc.open_socket(url, 10, env.netns)
    try:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\xee" * 500 + b"\r\n\r\n")
        answer = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(4096)
            except socket.timeout:
                break
            if not chunk:
                break
            answer += chunk
        assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer[:200]
    finally:
        sock.close()
    ws = sc.ws_connect(env.exec_url(container_id, ["/bin/sleep", "30"]), "v4.channel.k8s.io",
                       10, env.netns)
    try:
        ws.sock.sendall(b"\x82\x7f" + b"\xff" * 8 + b"junk")  # unmasked, 2^64-1 bytes
        chan = sc.WsChannels(ws, "v4.channel.k8s.io")
        deadline = time.monotonic() + 15
        while not chan.connection_closed and time.monotonic() < deadline:
            try:
                chan.receive(deadline - time.monotonic())
            except (sc.StreamTimeout, sc.StreamError, websocket.WebSocketException):
                break
        assert chan.connection_closed, "crid kept a WebSocket open after a bad frame"
    finally:
        ws.shutdown()
    env.assert_crid_answers()

    # Still serving.
    assert env.exec_spdy(container_id, ["echo", "hello"]).stdout == b"hello\n"
    remove_and_check(env, sandbox_id)


# --------------------------------------------------------------------------
# TLS


def make_certificates(directory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate
    it signed, made with the openssl command."""
    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    d = str(directory)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{d}/ca.key",
            "-out", f"{d}/ca.crt", "-days", "2", "-subj", "/CN=crid-test-ca")
    with open(f"{d}/san.ext", "w") as ext:
        ext.write("subjectAltName=IP:127.0.0.1\n")
    for name, extra in (("server", ["-extfile", f"{d}/san.ext"]), ("client", [])):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{d}/{name}.key",
                "-out", f"{d}/{name}.csr", "-subj", f"/CN={name}")
        openssl("x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/ca.crt", "-CAkey",
                f"{d}/ca.key", "-CAcreateserial", "-out", f"{d}/{name}.crt", "-days", "2",
                *extra)
    return d


def test_tls_streaming_with_client_certificates(env):
    """stream_tls_cert/key make the URLs https; with stream_tls_ca a client
    must present a certificate the CA signed (403 otherwise)."""
    d = make_certificates(env.crid.dir)
    env.crid.stop()
    env.crid.write_dropin("50-stream-tls.conf",
                          f'[crid.api]\nstream_tls_cert = "{d}/server.crt"\n'
                          f'stream_tls_key = "{d}/server.key"\nstream_tls_ca = "{d}/ca.crt"\n')
    env.crid.start()
    sandbox_id, container_id = env.sleeper("crun")
    trusted = ssl.create_default_context(cafile=f"{d}/ca.crt")
    trusted.load_cert_chain(f"{d}/client.crt", f"{d}/client.key")
    anonymous = ssl.create_default_context(cafile=f"{d}/ca.crt")

    url = env.exec_request(container_id, ["echo", "over-tls"]).url
    assert url.startswith("https://127.0.0.1:"), url
    result = sc.exec_spdy(url, timeout=STREAM_TIMEOUT, netns=env.netns, tls=trusted)
    assert result.stdout == b"over-tls\n" and result.exit_code == 0, result

    url = env.exec_request(container_id, ["echo", "over-tls"]).url
    with pytest.raises(sc.UpgradeRefused) as refused:
        sc.exec_spdy(url, timeout=STREAM_TIMEOUT, netns=env.netns, tls=anonymous)
    assert refused.value.status == 403
    remove_and_check(env, sandbox_id)


def test_tls_key_without_certificate_is_refused(crid_factory):
    """A half TLS configuration stops crid at start with a clear message."""
    crid = crid_factory(start=False)
    crid.write_dropin("50-stream-tls.conf", '[crid.api]\nstream_tls_key = "/nonexistent.key"\n')
    with pytest.raises(cridtest.CridError):
        crid.start(timeout=10)
    assert "stream_tls_cert and stream_tls_key go together" in crid.log_text()
