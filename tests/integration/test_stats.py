"""Statistics end to end on crun and runc: ContainerStats,
ListContainerStats, PodSandboxStats, ListPodSandboxStats,
ListMetricDescriptors, ListPodSandboxMetrics and ImageFsInfo's container
file system, against real containers doing real work.

Same world as test_containers.py (its ContainerEnv: a network namespace,
bridge and cgroup parent per test, the busybox image imported before crid
starts), with the stats collector's period at 1 s so the writable layer
is re-measured quickly.  What is checked is what a kubelet would see:

- a container spinning on a CPU shows about one core in usage_nano_cores
  (two samples 1.5 s apart), a sleeping one about none;
- 50 MiB written to the pod's /dev/shm tmpfs show in working_set_bytes
  (tmpfs pages are shared memory: charged to the writer's memory cgroup,
  kept on the anonymous LRU lists, never "inactive file", so they count in
  the working set for as long as the file exists, unlike page cache of a
  file on disk, which the kernel may count as inactive and reclaim), and
  available_bytes is the limit minus the working set;
- 10 MiB written into the root file system show in the writable layer
  (and in ImageFsInfo's container file system) within the period;
- ping traffic between two pods shows in both pods' eth0 counters;
- the filters (id, prefix, pod, labels), NOT_FOUND for unknown ids;
- created and exited containers are listed with their attributes and
  writable layer but no CPU or memory (as containerd lists them; critest
  only checks running ones);
- pod stats: the kubelet's pod cgroup (a parent per pod) and the sum of
  the pod's cgroups without one, the process count, each container's
  stats, no network for hostNetwork pods, not-ready pods left out;
- the metrics: cAdvisor's names, label values matching the descriptors.

Every test removes what it made and asserts that nothing is left.  Every
wait is bounded.
"""

import time

import grpc
import pytest

import cridtest
import netns as nsutil
from test_containers import (  # noqa: F401  (fixtures pytest must see)
    ContainerEnv,
    _exec_text,
    handler,
    podenv_factory,
)

MiB = 1024 * 1024
RPC_TIMEOUT = 30.0
PERIOD = 1  # [crid.stats] collection_period for these tests
SPIN = ["/bin/sh", "-c", "while :; do :; done"]
# A rate is taken over the last two kept samples (the calls' and the
# collector's, 1 s apart or more): a container measured this long after
# its start has been spinning over the whole interval.
WARM_UP = 2.5
SLEEP = ["/bin/busybox", "sleep", "1000"]


@pytest.fixture
def env(podenv_factory):
    """ContainerEnv with a 1 s stats period; after a failed test its pods
    are removed through crid while crid still runs."""

    container_env = ContainerEnv(
        podenv_factory, config={"crid.stats": {"collection_period": PERIOD}}
    )
    yield container_env
    if not container_env.crid.running():
        return
    try:
        for sandbox in container_env.pod.list():
            container_env.remove_pod(sandbox.id)
    except grpc.RpcError as e:
        print(f"removing the pods after the test failed: {e}")


# --------------------------------------------------------------------------
# Helpers


def container_stats(env, container_id):
    return env.crid.runtime.ContainerStats(
        env.pb.ContainerStatsRequest(container_id=container_id), timeout=RPC_TIMEOUT
    ).stats


def list_container_stats(env, **fields):
    pb = env.pb
    request = pb.ListContainerStatsRequest()
    if fields:
        request.filter.CopyFrom(pb.ContainerStatsFilter())
        request.filter.id = fields.get("id", "")
        request.filter.pod_sandbox_id = fields.get("pod_sandbox_id", "")
        for key, value in fields.get("labels", {}).items():
            request.filter.label_selector[key] = value
    return list(env.crid.runtime.ListContainerStats(request, timeout=RPC_TIMEOUT).stats)


def pod_stats(env, sandbox_id):
    return env.crid.runtime.PodSandboxStats(
        env.pb.PodSandboxStatsRequest(pod_sandbox_id=sandbox_id), timeout=RPC_TIMEOUT
    ).stats


def list_pod_stats(env, **fields):
    pb = env.pb
    request = pb.ListPodSandboxStatsRequest()
    if fields:
        request.filter.CopyFrom(pb.PodSandboxStatsFilter())
        request.filter.id = fields.get("id", "")
        for key, value in fields.get("labels", {}).items():
            request.filter.label_selector[key] = value
    return list(env.crid.runtime.ListPodSandboxStats(request, timeout=RPC_TIMEOUT).stats)


def ids(stats):
    return {s.attributes.id for s in stats}


def run_pod(env, name, handler, cgroup_parent=None, host_network=False, labels=None):
    """A pod (cgroup_parent: its own, as the kubelet gives each pod)."""
    config = env.pod.pod_config(name, uid=f"uid-{name}-{handler}", host_network=host_network,
                                labels=labels)
    if cgroup_parent is not None:
        config.linux.cgroup_parent = cgroup_parent
    return env.pod.run_pod(config, handler=handler), config


def wait_stats(env, container_id, predicate, timeout=15.0, message="stats"):
    """ContainerStats until predicate(stats) holds; the last stats."""
    last = {}

    def check():
        last["stats"] = container_stats(env, container_id)
        return predicate(last["stats"])

    cridtest.wait_for(check, timeout=timeout, interval=0.2, message=message)
    return last["stats"]


def finish(env, sandbox_ids, pod_parents=()):
    for sandbox_id in sandbox_ids:
        env.remove_pod(sandbox_id)
    assert env.list() == []
    for parent in pod_parents:
        # The kubelet removes a pod's cgroup; here the test does.
        nsutil.remove_cgroups(parent)
    env.assert_clean()


def assert_timestamps_recent(*timestamps):
    now = time.time_ns()
    for t in timestamps:
        assert 0 < t <= now + 10**9 and now - t < 120 * 10**9, (t, now)


def nano_cores_between(env, container_id, seconds=1.5):
    """usage_nano_cores of a reading taken `seconds` after another."""
    first = wait_stats(env, container_id, lambda s: s.HasField("cpu"), message="cpu stats")
    time.sleep(seconds)
    second = container_stats(env, container_id)
    assert second.cpu.timestamp > first.cpu.timestamp
    assert (second.cpu.usage_core_nano_seconds.value
            >= first.cpu.usage_core_nano_seconds.value)
    assert second.cpu.HasField("usage_nano_cores"), second.cpu
    return second.cpu.usage_nano_cores.value


# --------------------------------------------------------------------------
# CPU and memory


def test_cpu_usage_nano_cores(env, handler):
    sandbox_id, sandbox_config = run_pod(env, "cpu", handler)
    spinner = env.run(sandbox_id, sandbox_config, "spinner", SPIN)
    sleeper = env.run(sandbox_id, sandbox_config, "sleeper", SLEEP)
    time.sleep(WARM_UP)

    cores = nano_cores_between(env, spinner) / 1e9
    # About one core; the lower bound leaves room for a small machine
    # shared with other work (two spinners and the test run on 2 cores).
    assert 0.25 <= cores <= 1.5, f"a spinning container used {cores:.2f} cores"
    idle = nano_cores_between(env, sleeper) / 1e9
    assert idle < 0.1, f"a sleeping container used {idle:.2f} cores"

    stats = container_stats(env, spinner)
    assert stats.attributes.id == spinner
    assert stats.attributes.metadata.name == "spinner"
    assert_timestamps_recent(stats.cpu.timestamp, stats.memory.timestamp)
    assert stats.cpu.usage_core_nano_seconds.value > 0
    # The same numbers through the list, by id.
    (listed,) = list_container_stats(env, id=spinner)
    assert listed.attributes.id == spinner and listed.HasField("cpu")
    finish(env, [sandbox_id])


def test_memory_working_set(env, handler):
    pb = env.pb
    sandbox_id, sandbox_config = run_pod(env, "memory", handler)
    limit = 200 * MiB
    resources = pb.LinuxContainerResources(memory_limit_in_bytes=limit)
    script = "head -c 52428800 /dev/zero > /dev/shm/fill && touch /tmp/filled; sleep 1000"
    filler = env.run(sandbox_id, sandbox_config, "filler", ["/bin/sh", "-c", script],
                     linux=pb.LinuxContainerConfig(resources=resources))
    cridtest.wait_for(
        lambda: env.exec_sync(filler, ["/bin/busybox", "test", "-e", "/tmp/filled"]).exit_code
        == 0,
        timeout=30, interval=0.2, message="50 MiB written to /dev/shm",
    )
    # A reading less than a second old may be reused: wait for a new one.
    memory = wait_stats(env, filler, lambda s: s.memory.working_set_bytes.value >= 50 * MiB,
                        timeout=10, message="a working set of 50 MiB").memory
    assert memory.working_set_bytes.value >= 50 * MiB, memory
    assert memory.usage_bytes.value >= memory.working_set_bytes.value
    assert memory.working_set_bytes.value < limit
    assert memory.available_bytes.value == limit - memory.working_set_bytes.value
    assert memory.HasField("rss_bytes") and memory.HasField("page_faults")
    assert memory.HasField("major_page_faults")
    assert memory.page_faults.value > 0
    assert_timestamps_recent(memory.timestamp)
    finish(env, [sandbox_id])


# --------------------------------------------------------------------------
# Writable layer


def test_writable_layer(env, handler):
    sandbox_id, sandbox_config = run_pod(env, "layer", handler)
    container_id = env.run(sandbox_id, sandbox_config, "writer", SLEEP)
    before = wait_stats(env, container_id, lambda s: s.HasField("writable_layer"),
                        message="a first writable layer measurement").writable_layer
    assert before.fs_id.mountpoint == str(env.crid.root / "containers")
    assert_timestamps_recent(before.timestamp)

    _exec_text(env, container_id, "dd if=/dev/zero of=/data bs=1M count=10 2>/dev/null; sync")
    after = wait_stats(
        env, container_id,
        lambda s: s.writable_layer.used_bytes.value >= before.used_bytes.value + 10 * MiB,
        timeout=10 * PERIOD + 10, message="10 MiB more in the writable layer",
    ).writable_layer
    assert after.inodes_used.value >= before.inodes_used.value + 1
    assert after.timestamp > before.timestamp
    assert after.used_bytes.value < before.used_bytes.value + 12 * MiB

    # ImageFsInfo: where writable layers live, and what they hold.
    info = env.crid.image.ImageFsInfo(env.pb.ImageFsInfoRequest(), timeout=RPC_TIMEOUT)
    (containers_fs,) = info.container_filesystems
    assert containers_fs.fs_id.mountpoint == str(env.crid.root / "containers")
    assert containers_fs.used_bytes.value >= 10 * MiB
    assert containers_fs.inodes_used.value >= after.inodes_used.value
    assert_timestamps_recent(containers_fs.timestamp)
    assert len(info.image_filesystems) == 1
    finish(env, [sandbox_id])


# --------------------------------------------------------------------------
# Created and exited containers, filters


def test_created_and_exited_containers(env, handler):
    pb = env.pb
    sandbox_id, sandbox_config = run_pod(env, "states", handler)
    created = env.create(sandbox_id, sandbox_config, env.container_config("created", SLEEP))
    exited = env.run(sandbox_id, sandbox_config, "exited", ["/bin/busybox", "true"])
    running = env.run(sandbox_id, sandbox_config, "running", SLEEP)
    env.wait_state(exited, pb.CONTAINER_EXITED, timeout=15)

    listed = {s.attributes.id: s for s in list_container_stats(env)}
    assert set(listed) == {created, exited, running}
    for container_id in (created, exited):
        stats = listed[container_id]
        assert not stats.HasField("cpu") and not stats.HasField("memory"), stats
        assert not stats.HasField("swap")
        assert stats.attributes.metadata.name in ("created", "exited")
    assert listed[running].HasField("cpu") and listed[running].HasField("memory")
    # Their writable layers are measured too (once: they cannot change).
    for container_id in (created, exited, running):
        stats = wait_stats(env, container_id, lambda s: s.HasField("writable_layer"),
                           message=f"writable layer of {container_id[:12]}")
        assert stats.writable_layer.inodes_used.value >= 1
    finish(env, [sandbox_id])


def test_filters_and_not_found(env, handler):
    sandbox_a, config_a = run_pod(env, "filter-a", handler, labels={"pod": "a"})
    sandbox_b, config_b = run_pod(env, "filter-b", handler, labels={"pod": "b"})
    one = env.run(sandbox_a, config_a, "one", SLEEP, labels={"app": "x", "tier": "web"})
    two = env.run(sandbox_a, config_a, "two", SLEEP, labels={"app": "x"})
    three = env.run(sandbox_b, config_b, "three", SLEEP, labels={"app": "y"},
                    annotations={"note": "kept"})

    assert ids(list_container_stats(env)) == {one, two, three}
    assert ids(list_container_stats(env, id=one)) == {one}
    assert ids(list_container_stats(env, id=two[:13])) == {two}
    assert ids(list_container_stats(env, pod_sandbox_id=sandbox_a)) == {one, two}
    assert ids(list_container_stats(env, pod_sandbox_id=sandbox_b[:12])) == {three}
    assert ids(list_container_stats(env, labels={"app": "x"})) == {one, two}
    assert ids(list_container_stats(env, labels={"app": "x", "tier": "web"})) == {one}
    assert ids(list_container_stats(env, labels={"app": "z"})) == set()
    assert ids(list_container_stats(env, pod_sandbox_id=sandbox_a, labels={"app": "y"})) == set()
    (stats,) = list_container_stats(env, id=three)
    assert dict(stats.attributes.labels) == {"app": "y"}
    assert dict(stats.attributes.annotations) == {"note": "kept"}

    assert ids(list_pod_stats(env)) == {sandbox_a, sandbox_b}
    assert ids(list_pod_stats(env, id=sandbox_a)) == {sandbox_a}
    assert ids(list_pod_stats(env, id=sandbox_b[:10])) == {sandbox_b}
    assert ids(list_pod_stats(env, labels={"pod": "b"})) == {sandbox_b}
    assert ids(list_pod_stats(env, labels={"pod": "c"})) == set()
    (pod,) = list_pod_stats(env, labels={"pod": "a"})
    assert pod.attributes.metadata.name == "filter-a"
    assert dict(pod.attributes.labels) == {"pod": "a"}

    for call, request in (
        (env.crid.runtime.ContainerStats, env.pb.ContainerStatsRequest(container_id="0" * 64)),
        (env.crid.runtime.PodSandboxStats, env.pb.PodSandboxStatsRequest(pod_sandbox_id="0" * 64)),
    ):
        error = cridtest.rpc_error(call, request, timeout=RPC_TIMEOUT)
        assert error.code() == grpc.StatusCode.NOT_FOUND, error
    finish(env, [sandbox_a, sandbox_b])


# --------------------------------------------------------------------------
# Pods


def test_pod_stats(env, handler):
    pb = env.pb
    parent = f"{env.pod.cgroup_parent}/pod-stats"
    sandbox_id, sandbox_config = run_pod(env, "podstats", handler, cgroup_parent=parent)
    spinner = env.run(sandbox_id, sandbox_config, "spinner", SPIN)
    sleeper = env.run(sandbox_id, sandbox_config, "sleeper", SLEEP)
    # A pod without a cgroup parent (crictl): the sum of its cgroups.
    summed_id, summed_config = run_pod(env, "summed", handler, cgroup_parent="")
    summed_spinner = env.run(summed_id, summed_config, "spinner", SPIN)
    time.sleep(WARM_UP)

    def pod_cores(pod_id):
        cridtest.wait_for(lambda: pod_stats(env, pod_id).linux.HasField("cpu"), timeout=10,
                          message="pod cpu stats")
        time.sleep(1.5)
        cpu = pod_stats(env, pod_id).linux.cpu
        assert cpu.HasField("usage_nano_cores"), cpu
        return cpu.usage_nano_cores.value / 1e9

    for pod_id in (sandbox_id, summed_id):
        cores = pod_cores(pod_id)
        assert 0.25 <= cores <= 1.6, f"pod {pod_id[:12]} used {cores:.2f} cores"

    stats = pod_stats(env, sandbox_id)
    assert stats.attributes.id == sandbox_id
    assert stats.attributes.metadata.name == "podstats"
    linux = stats.linux
    assert {c.attributes.id for c in linux.containers} == {spinner, sleeper}
    # The pod cgroup holds its containers' (readings may be up to a second
    # apart: one reused, one new; this host has two CPUs).
    pod_usage = linux.cpu.usage_core_nano_seconds.value
    newest = max(c.cpu.timestamp for c in linux.containers)
    slack = max(0, newest - linux.cpu.timestamp) * 2 + 50_000_000
    assert pod_usage + slack >= sum(c.cpu.usage_core_nano_seconds.value for c in linux.containers)
    assert linux.memory.working_set_bytes.value > 0
    # pause, the shell and sleep: tasks in the pod cgroup's pids.current.
    assert linux.process.process_count.value >= 3, linux.process
    assert_timestamps_recent(linux.cpu.timestamp, linux.memory.timestamp, linux.process.timestamp)
    summed = pod_stats(env, summed_id).linux
    assert summed.process.process_count.value >= 2
    assert {c.attributes.id for c in summed.containers} == {summed_spinner}

    # A stopped pod is not ready: not listed, and its stats unavailable.
    env.pod.stop(summed_id)
    assert ids(list_pod_stats(env)) == {sandbox_id}
    error = cridtest.rpc_error(env.crid.runtime.PodSandboxStats,
                               pb.PodSandboxStatsRequest(pod_sandbox_id=summed_id),
                               timeout=RPC_TIMEOUT)
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error
    finish(env, [sandbox_id, summed_id], pod_parents=[parent])


def interface(network, name):
    for usage in network.interfaces:
        if usage.name == name:
            return usage
    raise AssertionError(f"no interface {name} in {network}")


def test_network_between_pods(env, handler):
    sandbox_a, config_a = run_pod(env, "net-a", handler)
    sandbox_b, config_b = run_pod(env, "net-b", handler)
    host_id, host_config = run_pod(env, "net-host", handler, host_network=True)
    pinger = env.run(sandbox_a, config_a, "pinger", SLEEP)
    env.run(sandbox_b, config_b, "target", SLEEP)
    ip_b = env.pod.status(sandbox_b).status.network.ip
    assert ip_b

    before = {pod: pod_stats(env, pod).linux.network for pod in (sandbox_a, sandbox_b)}
    for network in before.values():
        assert network.default_interface.name == "eth0"
        assert [i.name for i in network.interfaces] == ["eth0"]  # lo is left out
    count, size = 20, 1000
    _exec_text(env, pinger, f"/bin/busybox ping -c {count} -i 0.05 -s {size} -q {ip_b}")
    after = {pod: pod_stats(env, pod).linux.network for pod in (sandbox_a, sandbox_b)}
    least = count * size
    for pod in (sandbox_a, sandbox_b):
        old, new = interface(before[pod], "eth0"), interface(after[pod], "eth0")
        assert new.rx_bytes.value - old.rx_bytes.value >= least, (pod, old, new)
        assert new.tx_bytes.value - old.tx_bytes.value >= least, (pod, old, new)
        assert new.rx_errors.value == old.rx_errors.value
        assert new.tx_errors.value == old.tx_errors.value
        assert after[pod].timestamp > before[pod].timestamp
        assert after[pod].default_interface.rx_bytes.value == new.rx_bytes.value

    # hostNetwork: the node's interfaces are not the pod's; none reported.
    host = pod_stats(env, host_id).linux
    assert not host.HasField("network"), host.network
    assert host.HasField("cpu") and host.HasField("memory")
    finish(env, [sandbox_a, sandbox_b, host_id])


# --------------------------------------------------------------------------
# Metrics


REQUIRED_METRICS = {
    "container_cpu_usage_seconds_total",
    "container_cpu_user_seconds_total",
    "container_cpu_system_seconds_total",
    "container_memory_working_set_bytes",
    "container_memory_usage_bytes",
    "container_memory_rss",
    "container_network_receive_bytes_total",
    "container_network_transmit_bytes_total",
    "container_network_receive_errors_total",
    "container_network_transmit_errors_total",
    "container_threads",
    "container_last_seen",
}


def test_metrics(env, handler):
    descriptors = env.crid.runtime.ListMetricDescriptors(
        env.pb.ListMetricDescriptorsRequest(), timeout=RPC_TIMEOUT
    ).descriptors
    keys = {d.name: list(d.label_keys) for d in descriptors}
    assert len(keys) == len(descriptors), "a descriptor name appears twice"
    assert REQUIRED_METRICS <= set(keys)
    for name, label_keys in keys.items():
        assert label_keys[:6] == ["container", "id", "image", "name", "namespace", "pod"], name
    assert keys["container_network_receive_bytes_total"][6:] == ["interface"]
    assert keys["container_cpu_usage_seconds_total"][6:] == ["cpu"]

    sandbox_id, sandbox_config = run_pod(env, "metrics", handler)
    spinner = env.run(sandbox_id, sandbox_config, "spinner", SPIN)

    def pod_metrics():
        (pod,) = env.crid.runtime.ListPodSandboxMetrics(
            env.pb.ListPodSandboxMetricsRequest(), timeout=RPC_TIMEOUT
        ).pod_metrics
        return pod

    def one_cpu_second():
        pod = pod_metrics()
        return any(m.name == "container_cpu_usage_seconds_total" and m.value.value >= 1
                   for c in pod.container_metrics for m in c.metrics) and pod

    pod = cridtest.wait_for(one_cpu_second, timeout=10, interval=0.2,
                            message="a whole second of CPU in the metrics")
    assert pod.pod_sandbox_id == sandbox_id
    every = list(pod.metrics) + [m for c in pod.container_metrics for m in c.metrics]
    for metric in every:
        assert metric.name in keys, metric.name
        assert len(metric.label_values) == len(keys[metric.name]), metric
        assert metric.timestamp > 0
    pod_level = {(m.name, tuple(m.label_values[6:])): m for m in pod.metrics}
    assert ("container_network_receive_bytes_total", ("eth0",)) in pod_level
    received = pod_level[("container_network_receive_bytes_total", ("eth0",))]
    assert received.label_values[0] == ""  # the pod's own cgroup, as cAdvisor labels it
    assert received.label_values[4:6] == ["crid-test", "metrics"]
    assert received.metric_type == env.pb.COUNTER

    (container,) = pod.container_metrics
    assert container.container_id == spinner
    by_name = {m.name: m for m in container.metrics}
    for name in ("container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
                 "container_memory_usage_bytes", "container_memory_rss", "container_threads",
                 "container_last_seen"):
        assert name in by_name, name
    cpu = by_name["container_cpu_usage_seconds_total"]
    assert cpu.label_values[:6] == ["spinner", cpu.label_values[1], "localhost/crid-test/busybox:1",
                                    spinner, "crid-test", "metrics"]
    assert cpu.label_values[1].endswith(spinner)  # the cgroup directory
    assert cpu.label_values[6] == "total"
    assert cpu.metric_type == env.pb.COUNTER and cpu.value.value >= 1
    working_set = by_name["container_memory_working_set_bytes"]
    assert working_set.metric_type == env.pb.GAUGE and working_set.value.value > 0
    stats = container_stats(env, spinner)
    assert abs(working_set.value.value - stats.memory.working_set_bytes.value) < 8 * MiB
    finish(env, [sandbox_id])
