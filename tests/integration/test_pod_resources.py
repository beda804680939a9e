"""Pod-level resources end to end on crun and runc: UpdatePodSandboxResources
(CRI 1.33) and LinuxPodSandboxConfig.overhead/resources at RunPodSandbox.

crid records these values and reports them; it does not write them to the
pod cgroup, which belongs to the kubelet (pod/pod_resources.h says why, as
containerd and CRI-O do).  So each test first makes the pod cgroup itself,
as the kubelet's cgroupfs driver would, with the pod's limits in the v1
cpu and memory hierarchies of this machine (its memory controller is on
cgroup v1), then checks that those limits are exactly what they were
after RunPodSandbox, after updates and after a restart of crid, while the
record follows every update: the file <root>/sandboxes/<id>/resources.pb
and, once crid/sandbox_service.c reports them, the verbose status info.

Same world as test_sandbox.py (a network namespace, bridge and cgroup
parent per test); every pod is removed and nothing may remain.
"""

import signal
from pathlib import Path

import grpc
import pytest

import cridtest
from test_sandbox import HANDLERS, podenv_factory  # noqa: F401  (fixture)

MiB = 1024 * 1024
CGROUP_ROOT = Path("/sys/fs/cgroup")
RPC_TIMEOUT = 30.0

# The kubelet's pod cgroup for a pod of 1.5 CPUs / 512 MiB of limits with
# an overhead of 0.25 CPU / 120 MiB: its values include the overhead.
KUBELET_LIMITS = {
    ("cpu", "cpu.shares"): "1792",
    ("cpu", "cpu.cfs_period_us"): "100000",
    ("cpu", "cpu.cfs_quota_us"): "175000",
    ("memory", "memory.limit_in_bytes"): str(632 * MiB),
}


def _resources(pb, shares, quota, memory, **extra):
    return pb.LinuxContainerResources(
        cpu_period=100000, cpu_quota=quota, cpu_shares=shares, memory_limit_in_bytes=memory,
        **extra,
    )


def _overhead(pb, memory=120 * MiB):
    return _resources(pb, 256, 25000, memory)


class PodResourcesEnv:
    """A PodEnv whose cgroup parent exists before the pod, with the
    kubelet's limits in it."""

    def __init__(self, podenv_factory):
        self.pod = podenv_factory()
        self.pb = self.pod.pb
        self.crid = self.pod.crid
        self.parent = self.pod.cgroup_parent.strip("/")
        for (controller, name), value in KUBELET_LIMITS.items():
            directory = CGROUP_ROOT / controller / self.parent
            directory.mkdir(exist_ok=True)  # the PodEnv's teardown removes it
            (directory / name).write_text(value)

    def limits(self):
        """The pod cgroup's limits now."""
        return {
            (controller, name): (CGROUP_ROOT / controller / self.parent / name).read_text().strip()
            for controller, name in KUBELET_LIMITS
        }

    def run_pod(self, name, handler, resources=None, overhead=None):
        config = self.pod.pod_config(name, uid=f"uid-{name}-{handler}")
        if resources is not None:
            config.linux.resources.CopyFrom(resources)
        if overhead is not None:
            config.linux.overhead.CopyFrom(overhead)
        return self.pod.run_pod(config, handler=handler)

    def update(self, sandbox_id, resources=None, overhead=None):
        request = self.pb.UpdatePodSandboxResourcesRequest(pod_sandbox_id=sandbox_id)
        if resources is not None:
            request.resources.CopyFrom(resources)
        if overhead is not None:
            request.overhead.CopyFrom(overhead)
        return self.crid.runtime.UpdatePodSandboxResources(request, timeout=RPC_TIMEOUT)

    def update_error(self, sandbox_id, **kwargs):
        return cridtest.rpc_error(self.update, sandbox_id, **kwargs)

    def record_path(self, sandbox_id):
        return self.pod.sandbox_dir(sandbox_id) / "resources.pb"

    def record(self, sandbox_id):
        """The values on disk, or None before the first update."""
        path = self.record_path(sandbox_id)
        if not path.exists():
            return None
        return self.pb.UpdatePodSandboxResourcesRequest.FromString(path.read_bytes())

    def state(self, sandbox_id):
        return self.pod.status(sandbox_id).status.state

    def pause_cgroup(self, sandbox_id, controller):
        pid = self.pod.info(sandbox_id)["pid"]
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                if controller in controllers.split(","):
                    return path
        raise AssertionError(f"pause {pid} has no {controller} cgroup")

    def restart_crid(self):
        self.crid.signal(signal.SIGKILL)
        assert self.crid.wait() is not None
        self.crid.start()


@pytest.fixture(params=HANDLERS)
def handler(request):
    return request.param


@pytest.fixture
def env(podenv_factory):
    return PodResourcesEnv(podenv_factory)


def _info_resources(pb_message):
    """A LinuxContainerResources as the verbose info shows it: snake_case
    names, zero fields left out (containerd's shape)."""
    out = {}
    for field, value in pb_message.ListFields():
        if field.name == "hugepage_limits":
            out[field.name] = [{"page_size": h.page_size, "limit": h.limit} for h in value]
        elif field.name == "unified":
            out[field.name] = dict(value)
        else:
            out[field.name] = value
    return {"linux": out}


# --------------------------------------------------------------------------


def test_update_is_recorded_and_the_pod_cgroup_left_to_the_kubelet(env, handler):
    pb = env.pb
    at_run = _resources(pb, 1536, 150000, 512 * MiB, cpuset_cpus="0")
    sid = env.run_pod("resize", handler, resources=at_run, overhead=_overhead(pb))
    kubelet = env.limits()
    assert kubelet == KUBELET_LIMITS
    # The pod lives in the kubelet's pod cgroup, in a cgroup of its own.
    for controller in ("cpu", "memory"):
        assert env.pause_cgroup(sid, controller).startswith(env.pod.cgroup_parent + "/")
    # RunPodSandbox's values are in the request crid keeps; no record yet.
    assert env.record(sid) is None

    # A resize: the kubelet changed the pod cgroup, then tells crid.
    bigger = _resources(pb, 3072, 300000, 1024 * MiB)
    env.update(sid, resources=bigger)
    assert env.limits() == kubelet
    record = env.record(sid)
    assert record.pod_sandbox_id == sid
    assert record.resources == bigger
    assert record.overhead == _overhead(pb)
    assert env.state(sid) == pb.SANDBOX_READY

    # By a unique id prefix, overhead only: the resources stay.
    env.update(sid[:16], overhead=_overhead(pb, memory=200 * MiB))
    record = env.record(sid)
    assert record.overhead == _overhead(pb, memory=200 * MiB)
    assert record.resources == bigger
    assert env.limits() == kubelet

    # A restart keeps the record, and the recovered pod takes updates.
    env.restart_crid()
    assert env.state(sid) == pb.SANDBOX_READY
    assert env.record(sid) == record
    smaller = _resources(pb, 512, 50000, 256 * MiB)
    env.update(sid, resources=smaller)
    assert env.record(sid).resources == smaller
    assert env.limits() == kubelet

    env.pod.stop_and_remove(sid)
    assert not env.pod.sandbox_dir(sid).exists()
    env.pod.assert_clean()


def test_update_errors(env, handler):
    pb = env.pb
    err = env.update_error("0" * 64, resources=_resources(pb, 2, 0, 0))
    assert err.code() == grpc.StatusCode.NOT_FOUND, err
    err = env.update_error("")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err

    # A pod without pod-level values takes them later.
    sid = env.run_pod("errors", handler)
    assert env.record(sid) is None
    env.update(sid, resources=_resources(pb, 1024, 100000, 128 * MiB))
    assert env.record(sid).resources.cpu_shares == 1024
    assert not env.record(sid).HasField("overhead")

    # Stopped: nothing to resize any more, and the record stays as it was.
    env.pod.stop(sid)
    before = env.record_path(sid).read_bytes()
    err = env.update_error(sid, resources=_resources(pb, 4096, 0, 0))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err
    assert "not ready" in err.details()
    assert env.record_path(sid).read_bytes() == before

    env.pod.remove(sid)
    err = env.update_error(sid, resources=_resources(pb, 4096, 0, 0))
    assert err.code() == grpc.StatusCode.NOT_FOUND, err
    assert env.limits() == KUBELET_LIMITS
    env.pod.assert_clean()


def test_verbose_status_reports_the_values_in_force(env, handler):
    pb = env.pb
    at_run = _resources(
        pb, 1536, 150000, 512 * MiB, cpuset_cpus="0",
        hugepage_limits=[pb.HugepageLimit(page_size="2MB", limit=4 * MiB)],
        unified={"memory.high": "400000000"},
    )
    sid = env.run_pod("verbose", handler, resources=at_run, overhead=_overhead(pb))
    info = env.pod.info(sid)
    assert info["resources"] == _info_resources(at_run)
    assert info["overhead"] == _info_resources(_overhead(pb))

    bigger = _resources(pb, 3072, -1, 1024 * MiB)
    env.update(sid, resources=bigger)
    info = env.pod.info(sid)
    assert info["resources"] == {"linux": {
        "cpu_period": 100000, "cpu_quota": -1, "cpu_shares": 3072,
        "memory_limit_in_bytes": 1024 * MiB,
    }}
    assert info["overhead"] == _info_resources(_overhead(pb))

    env.restart_crid()
    assert env.pod.info(sid)["resources"] == info["resources"]

    # A pod given no values shows none.
    plain = env.run_pod("plain", handler)
    assert "resources" not in env.pod.info(plain)
    assert "overhead" not in env.pod.info(plain)
    env.pod.stop_and_remove(sid)
    env.pod.stop_and_remove(plain)
    env.pod.assert_clean()
