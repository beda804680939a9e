"""The Prometheus endpoint: [crid.metrics] enable_metrics, metrics_host and
metrics_port, GET /metrics in text format 0.0.4 as `promtool check
metrics` (Debian's prometheus package) accepts it, counters that move
after calls, the build info, containers, sandboxes and monitors by state,
OOM kills, image pulls, and a port conflict that stops crid at start.

Servers listen on 127.0.0.1 only: crid's metrics listener in the test's
own network namespace where crid runs in one (requests are made from
inside it, registry.http_request), else on the host's loopback with a
free port crid picks (metrics_port = 0) and logs."""

import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

import cridtest
import netns as nsutil
import registry as regutil
from test_containers import ContainerEnv
from test_sandbox import podenv_factory  # noqa: F401  (fixture pytest must see)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import build_images as bi  # noqa: E402

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_PORT = 9537
RPC_TIMEOUT = 30.0
LISTENING_RE = re.compile(r"metrics server listening on http://127\.0\.0\.1:(\d+)/metrics")
SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

METRICS_ON = {"crid.metrics": {"enable_metrics": True, "metrics_port": 0}}


# --------------------------------------------------------------------------
# Helpers


def metrics_port(crid, timeout=10.0):
    """The port crid logged once its metrics server listened."""
    match = cridtest.wait_for(
        lambda: LISTENING_RE.search(crid.log_text()),
        timeout=timeout,
        message="the metrics server's listening line",
    )
    return int(match.group(1))


def http_get(port, netns=None, path="/metrics", method="GET"):
    """(status, lower-cased headers, body text) of one request to crid's
    metrics listener on 127.0.0.1:port (inside netns when given)."""
    status, headers, body = regutil.http_request(
        netns, f"127.0.0.1:{port}", method, path, timeout=10.0
    )
    return status, headers, body.decode()


def scrape(port, netns=None):
    status, headers, text = http_get(port, netns)
    assert status == 200, (status, text[:500])
    assert headers.get("content-type") == CONTENT_TYPE, headers
    return text


def promtool_check(text):
    """promtool's verdict on the exposition text: it must find nothing,
    not even a lint warning (exit 3)."""
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, ""), (
        f"promtool check metrics exited {result.returncode}:\n"
        f"{result.stdout}{result.stderr}\n--- input ---\n{text}"
    )


def parse(text):
    """{(name, ((label, value), ...) sorted): float} of every sample."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE_RE.match(line)
        assert match, f"not a sample line: {line!r}"
        labels = tuple(sorted(LABEL_RE.findall(match.group(2) or "")))
        samples[(match.group(1), labels)] = float(match.group(3))
    return samples


def sample(samples, name, **labels):
    """The value of one series; None when it is absent."""
    return samples.get((name, tuple(sorted(labels.items()))))


def series_of(samples, name):
    """{labels dict as tuple: value} of every series of name."""
    return {labels: value for (n, labels), value in samples.items() if n == name}


def connection_refused(port, netns):
    try:
        http_get(port, netns)
    except ConnectionRefusedError:
        return True
    return False


def listen_somewhere(netns=None):
    """A socket listening on 127.0.0.1:<free port> (the caller closes it)."""
    with regutil.netns_socket_scope(netns):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


@pytest.fixture
def ns():
    """A network namespace of the test's own (set up before, so torn down
    after, the crids that run in it)."""
    namespace = nsutil.TestNetns()
    try:
        yield namespace
    finally:
        namespace.delete()


@pytest.fixture
def metrics_crid(crid_factory):
    return crid_factory(config=METRICS_ON)


# --------------------------------------------------------------------------
# Configuration


def test_disabled_by_default_then_default_address(ns, crid_factory):
    """Without enable_metrics nothing listens (the default port stays
    closed); with it alone, crid serves 127.0.0.1:9537."""
    crid = crid_factory(netns=ns.path)
    assert "enable_metrics = false" in crid.cli("config").stdout
    assert "metrics server" not in crid.log_text()
    assert connection_refused(DEFAULT_PORT, ns.path)

    crid.stop()
    crid.write_dropin("50-metrics.conf", "[crid.metrics]\nenable_metrics = true\n")
    crid.start()
    assert metrics_port(crid) == DEFAULT_PORT
    text = scrape(DEFAULT_PORT, ns.path)
    assert "crid_build_info{" in text


def test_port_in_use_stops_crid_at_start(crid_factory):
    holder = listen_somewhere()
    try:
        port = holder.getsockname()[1]
        crid = crid_factory(
            start=False, config={"crid.metrics": {"enable_metrics": True, "metrics_port": port}}
        )
        # The gRPC socket may answer before the metrics server fails.
        try:
            crid.start(timeout=10)
        except cridtest.CridError:
            pass
        assert crid.wait(timeout=15) == 1
        assert f"metrics server: 127.0.0.1 port {port} is already in use" in crid.log_text()
    finally:
        holder.close()


# --------------------------------------------------------------------------
# Format and the daemon's own metrics


def test_exposition_passes_promtool_with_build_and_process_info(metrics_crid, pb):
    crid = metrics_crid
    port = metrics_port(crid)
    # Calls of several kinds and outcomes first, so every RPC family shows.
    crid.runtime.Version(pb.VersionRequest(), timeout=RPC_TIMEOUT)
    crid.runtime.Status(pb.StatusRequest(), timeout=RPC_TIMEOUT)
    cridtest.rpc_error(
        crid.runtime.ContainerStatus,
        pb.ContainerStatusRequest(container_id="0" * 64),
        timeout=RPC_TIMEOUT,
    )
    text = scrape(port)
    promtool_check(text)
    samples = parse(text)

    version = crid.runtime.Version(pb.VersionRequest(), timeout=RPC_TIMEOUT).runtime_version
    (labels, value), = series_of(samples, "crid_build_info").items()
    info = dict(labels)
    assert value == 1
    # Version answers "<version>+<commit>" ("<version>" alone when built without git).
    expected = info["version"]
    if info["commit"] != "unknown":
        expected += "+" + info["commit"]
    assert version == expected, (version, info)

    assert sample(samples, "process_resident_memory_bytes") > 1024 * 1024
    assert sample(samples, "process_virtual_memory_bytes") > sample(
        samples, "process_resident_memory_bytes"
    )
    assert 0 < sample(samples, "process_open_fds") <= sample(samples, "process_max_fds")
    assert sample(samples, "process_threads") >= 2
    assert sample(samples, "process_cpu_seconds_total") > 0
    assert abs(sample(samples, "process_start_time_seconds") - time.time()) < 600
    for state in ("created", "running", "exited", "unknown"):
        assert sample(samples, "crid_containers", state=state) == 0
    for state in ("ready", "notready"):
        assert sample(samples, "crid_pod_sandboxes", state=state) == 0
    assert sample(samples, "crid_monitors_running") == 0
    assert sample(samples, "crid_containers_oom_total") == 0
    assert sample(samples, "crid_image_pulls_success_total") == 0

    # HEAD is answered too; other methods and paths are not.
    assert http_get(port, method="HEAD")[0] == 200
    assert http_get(port, method="POST")[0] == 405
    assert http_get(port, path="/other")[0] == 404
    assert http_get(port, path="/metricsx")[0] == 404


def test_rpc_counters_and_latency_move(metrics_crid, pb):
    crid = metrics_crid
    port = metrics_port(crid)
    ok = {"operation": "Version", "code": "OK"}
    before = parse(scrape(port))
    for _ in range(5):
        crid.runtime.Version(pb.VersionRequest(), timeout=RPC_TIMEOUT)
    for _ in range(2):
        error = cridtest.rpc_error(
            crid.runtime.ContainerStatus,
            pb.ContainerStatusRequest(container_id="f" * 64),
            timeout=RPC_TIMEOUT,
        )
        assert error.code() == grpc.StatusCode.NOT_FOUND
    after = parse(scrape(port))

    def moved(name, **labels):
        return (sample(after, name, **labels) or 0) - (sample(before, name, **labels) or 0)

    assert moved("crid_operations_total", **ok) == 5
    assert moved("crid_operations_latency_seconds_count", **ok) == 5
    assert moved("crid_operations_latency_seconds_bucket", le="+Inf", **ok) == 5
    assert moved("crid_operations_latency_seconds_sum", **ok) > 0
    not_found = {"operation": "ContainerStatus", "code": "NOT_FOUND"}
    assert moved("crid_operations_total", **not_found) == 2
    assert moved("crid_operations_errors_total", operation="ContainerStatus") == 2
    assert sample(after, "crid_operations_errors_total", operation="Version") is None
    # Buckets are cumulative and end at the count.
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for labels, value in series_of(after, "crid_operations_latency_seconds_bucket").items()
        if dict(labels)["operation"] == "Version" and dict(labels)["code"] == "OK"
    )
    counts = [value for _, value in buckets]
    assert counts == sorted(counts) and buckets[-1][0] == float("inf")
    assert counts[-1] == sample(after, "crid_operations_latency_seconds_count", **ok)


# --------------------------------------------------------------------------
# Image pulls


def test_image_pulls_count_bytes_seconds_and_failures(ns, crid_factory, tmp_path):
    layout = bi.write_oci_layout(tmp_path / "layout", {"gzip": bi.busybox_image("gzip")})
    reg = regutil.Registry(ns.path, tmp_path / "registry", label="metrics").start()
    try:
        reg.push_skopeo(layout, "gzip", "crid/busybox")
        crid = crid_factory(
            netns=ns.path,
            config={
                **METRICS_ON,
                f'crid.image.registries."{reg.host}"': {"insecure": True},
            },
        )
        port = metrics_port(crid)
        pb = crid.api.pb
        ref = f"{reg.host}/crid/busybox:gzip"
        crid.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=ref)), timeout=60)
        cridtest.rpc_error(
            crid.image.PullImage,
            pb.PullImageRequest(image=pb.ImageSpec(image=f"{reg.host}/crid/absent:1")),
            timeout=60,
        )
        size = crid.image.ImageStatus(
            pb.ImageStatusRequest(image=pb.ImageSpec(image=ref)), timeout=RPC_TIMEOUT
        ).image.size
        text = scrape(port, ns.path)
    finally:
        reg.stop()
    promtool_check(text)
    samples = parse(text)
    assert sample(samples, "crid_image_pulls_success_total") == 1
    assert sample(samples, "crid_image_pulls_failure_total") == 1
    assert sample(samples, "crid_image_pulls_bytes_total") == size > 0
    for result in ("success", "failure"):
        assert sample(samples, "crid_image_pulls_duration_seconds_count", result=result) == 1
        assert sample(samples, "crid_image_pulls_duration_seconds_bucket", result=result,
                      le="+Inf") == 1


# --------------------------------------------------------------------------
# Containers, sandboxes, monitors, OOM kills


def test_containers_sandboxes_monitors_and_oom(podenv_factory):  # noqa: F811
    """One pod (crun) with a sleeper and a container that runs out of
    memory: the gauges follow the lifecycle and the OOM kill is counted
    once, however often it is scraped."""
    env = ContainerEnv(podenv_factory, config=METRICS_ON)
    pb, crid, netns = env.pb, env.crid, env.pod.ns.path
    port = metrics_port(crid)
    mib = 1024 * 1024

    def scraped():
        text = scrape(port, netns)
        promtool_check(text)
        return parse(text)

    sandbox_id, sandbox_config = env.run_pod("metrics", "crun")
    sleeper = env.run(sandbox_id, sandbox_config, "sleeper", ["/bin/sleep", "1000"])
    created = env.create(sandbox_id, sandbox_config,
                         env.container_config("later", ["/bin/sleep", "1000"]))
    samples = scraped()
    assert sample(samples, "crid_pod_sandboxes", state="ready") == 1
    assert sample(samples, "crid_containers", state="running") == 1
    assert sample(samples, "crid_containers", state="created") == 1
    # The pause's monitor, the sleeper's and the created container's.
    assert sample(samples, "crid_monitors_running") == 3

    limit = 20 * mib
    resources = pb.LinuxContainerResources(memory_limit_in_bytes=limit,
                                           memory_swap_limit_in_bytes=limit)
    hog = env.run(sandbox_id, sandbox_config, "hog", ["/bin/busybox", "tail", "/dev/zero"],
                  linux=pb.LinuxContainerConfig(resources=resources))
    env.wait_state(hog, pb.CONTAINER_EXITED, timeout=30)
    assert env.status(hog).status.reason == "OOMKilled"
    env.stop(sleeper)
    for _ in range(2):  # counted once, not at every scrape
        samples = scraped()
        assert sample(samples, "crid_containers_oom_total") == 1
    assert sample(samples, "crid_containers", state="exited") == 2
    assert sample(samples, "crid_containers", state="running") == 0
    cridtest.wait_for(lambda: sample(scraped(), "crid_monitors_running") == 2, timeout=10,
                      message="the monitors of the exited containers to end")

    env.remove_pod(sandbox_id)
    samples = scraped()
    assert sample(samples, "crid_pod_sandboxes", state="ready") == 0
    assert sample(samples, "crid_pod_sandboxes", state="notready") == 0
    assert sum(series_of(samples, "crid_containers").values()) == 0
    assert sample(samples, "crid_monitors_running") == 0
    assert sample(samples, "crid_containers_oom_total") == 1
    env.assert_clean()
