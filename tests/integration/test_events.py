"""GetContainerEvents and the CRI 1.36 Stream* lists: server-streaming
calls over the real socket, on crun and runc (the ContainerEnv of
test_containers: a network namespace, bridge and cgroup parent per test,
the busybox image imported)."""

import threading
import time

import grpc
import pytest

import cridtest
from test_containers import (  # noqa: F401  (fixtures pytest must see)
    RPC_TIMEOUT,
    ContainerEnv,
    env,
    handler,
    podenv_factory,
)

CREATED, STARTED, STOPPED, DELETED = range(4)


class EventCollector:
    """Reads a GetContainerEvents stream on a thread until cancelled."""

    def __init__(self, env):
        self.call = env.crid.runtime.GetContainerEvents(env.pb.GetEventsRequest(), timeout=120)
        self.events = []
        self.error = None
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for event in self.call:
                with self.lock:
                    self.events.append(event)
        except grpc.RpcError as error:
            self.error = error

    def of(self, object_id):
        with self.lock:
            return [(e.container_event_type, e) for e in self.events if e.container_id == object_id]

    def wait_kinds(self, object_id, kinds, timeout=10.0):
        cridtest.wait_for(lambda: [k for k, _ in self.of(object_id)] == kinds, timeout=timeout,
                          message=f"events {kinds} for {object_id[:12]}, got "
                                  f"{[k for k, _ in self.of(object_id)]}")

    def cancel(self):
        self.call.cancel()
        self.thread.join(10)
        assert not self.thread.is_alive()
        assert self.error is not None and self.error.code() == grpc.StatusCode.CANCELLED


def test_events_of_a_pod_lifecycle_arrive_in_order(env, handler):
    events = EventCollector(env)
    time.sleep(0.2)  # subscribed before anything happens
    sandbox_id, sandbox_config = env.run_pod("events", handler)
    container_id = env.run(sandbox_id, sandbox_config, "c", ["/bin/sh", "-c", "sleep 0.5"])
    env.wait_state(container_id, env.pb.CONTAINER_EXITED)
    env.remove(container_id)
    env.remove_pod(sandbox_id)

    events.wait_kinds(container_id, [CREATED, STARTED, STOPPED, DELETED])
    events.wait_kinds(sandbox_id, [CREATED, STARTED, STOPPED, DELETED])
    container_events = dict(events.of(container_id))
    created = container_events[CREATED]
    assert created.pod_sandbox_status.id == sandbox_id
    assert [s.id for s in created.containers_statuses] == [container_id]
    assert created.containers_statuses[0].state == env.pb.CONTAINER_CREATED
    assert container_events[STARTED].containers_statuses[0].state == env.pb.CONTAINER_RUNNING
    stopped = container_events[STOPPED].containers_statuses[0]
    assert stopped.state == env.pb.CONTAINER_EXITED and stopped.exit_code == 0
    assert list(container_events[DELETED].containers_statuses) == []
    times = [e.created_at for _, e in events.of(container_id)]
    assert times == sorted(times) and times[0] > 0
    sandbox_events = dict(events.of(sandbox_id))
    assert sandbox_events[STARTED].pod_sandbox_status.state == env.pb.SANDBOX_READY
    assert sandbox_events[STOPPED].pod_sandbox_status.state == env.pb.SANDBOX_NOTREADY
    events.cancel()
    env.assert_clean()


def test_events_start_at_subscription_and_reach_every_subscriber(env, handler):
    before, _ = env.run_pod("before", handler)
    first, second = EventCollector(env), EventCollector(env)
    time.sleep(0.2)
    sandbox_id, _ = env.run_pod("after", handler)
    first.wait_kinds(sandbox_id, [CREATED, STARTED])
    second.wait_kinds(sandbox_id, [CREATED, STARTED])
    assert first.of(before) == [] and second.of(before) == []
    first.cancel()
    # The other subscriber goes on after one left.
    env.remove_pod(before)
    second.wait_kinds(before, [STOPPED, DELETED])
    second.cancel()
    env.remove_pod(sandbox_id)
    env.assert_clean()


def test_a_subscriber_that_never_reads_does_not_slow_calls(env, handler):
    """A client that subscribes and never reads: the calls that publish go
    on at their usual pace (events queue in crid, bounded)."""
    channel = env.crid.new_channel()
    stub = env.crid.api.grpc.RuntimeServiceStub(channel)
    stalled = stub.GetContainerEvents(env.pb.GetEventsRequest(), timeout=120)
    started = time.monotonic()
    sandboxes = [env.run_pod(f"busy{i}", handler)[0] for i in range(5)]
    for sandbox_id in sandboxes:
        env.remove_pod(sandbox_id)
    assert time.monotonic() - started < 30
    stalled.cancel()
    channel.close()
    assert env.crid.runtime.Version(env.pb.VersionRequest(), timeout=5).runtime_name
    env.assert_clean()


def test_stop_of_crid_ends_event_streams(env):
    events = EventCollector(env)
    time.sleep(0.2)
    started = time.monotonic()
    env.crid.stop()
    events.thread.join(10)
    assert not events.thread.is_alive()
    assert time.monotonic() - started < 8, "a stream held crid's stop"


def test_stream_lists_match_the_unary_lists(env, handler):
    sandbox_id, sandbox_config = env.run_pod("lists", handler)
    container_id = env.run(sandbox_id, sandbox_config, "c", ["/bin/sleep", "100"])
    rt, pb = env.crid.runtime, env.pb

    pods = [p for r in rt.StreamPodSandboxes(pb.StreamPodSandboxesRequest(), timeout=10)
            for p in r.pod_sandboxes]
    assert [p.id for p in pods] == [p.id for p in rt.ListPodSandbox(
        pb.ListPodSandboxRequest(), timeout=10).items]
    filtered = [c for r in rt.StreamContainers(pb.StreamContainersRequest(
        filter=pb.ContainerFilter(id=container_id)), timeout=10) for c in r.containers]
    assert [c.id for c in filtered] == [container_id]
    none = list(rt.StreamContainers(pb.StreamContainersRequest(
        filter=pb.ContainerFilter(id="0" * 64)), timeout=10))
    assert sum(len(r.containers) for r in none) == 0
    images = [i for r in env.crid.image.StreamImages(pb.StreamImagesRequest(), timeout=10)
              for i in r.images]
    assert env.image.id in [i.id for i in images]
    env.remove_pod(sandbox_id)
    env.assert_clean()


def test_stream_list_larger_than_a_grpc_message(env, handler):
    """72 containers with 250 KiB of annotations each (the most an object
    may carry is 256 KiB): ListContainers is over the 16 MiB message
    limit, StreamContainers sends it in pieces."""
    sandbox_id, sandbox_config = env.run_pod("big", handler)
    blob = "x" * (250 * 1024)
    ids = [env.create(sandbox_id, sandbox_config,
                      env.container_config(f"c{i}", ["/bin/true"], annotations={"blob": blob}))
           for i in range(72)]
    rt, pb = env.crid.runtime, env.pb
    with pytest.raises(grpc.RpcError) as too_big:
        rt.ListContainers(pb.ListContainersRequest(), timeout=30)
    assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    chunks = list(rt.StreamContainers(pb.StreamContainersRequest(), timeout=60))
    assert len(chunks) > 1
    assert sorted(c.id for r in chunks for c in r.containers) == sorted(ids)
    assert all(c.annotations["blob"] == blob for r in chunks for c in r.containers)
    env.remove_pod(sandbox_id)
    env.assert_clean()


def test_stream_stats_lists_match_the_unary_lists(env, handler):
    sandbox_id, sandbox_config = env.run_pod("statslists", handler)
    container_id = env.run(sandbox_id, sandbox_config, "c", ["/bin/sleep", "100"])
    rt, pb = env.crid.runtime, env.pb
    streamed = [s.attributes.id for r in rt.StreamContainerStats(
        pb.StreamContainerStatsRequest(), timeout=10) for s in r.container_stats]
    listed = [s.attributes.id for s in rt.ListContainerStats(
        pb.ListContainerStatsRequest(), timeout=10).stats]
    assert sorted(streamed) == sorted(listed) and container_id in streamed
    pods = [s.attributes.id for r in rt.StreamPodSandboxStats(
        pb.StreamPodSandboxStatsRequest(), timeout=10) for s in r.pod_sandbox_stats]
    assert pods == [sandbox_id]
    metrics = [m.pod_sandbox_id for r in rt.StreamPodSandboxMetrics(
        pb.StreamPodSandboxMetricsRequest(), timeout=10) for m in r.pod_sandbox_metrics]
    assert metrics == [m.pod_sandbox_id for m in rt.ListPodSandboxMetrics(
        pb.ListPodSandboxMetricsRequest(), timeout=10).pod_metrics]
    env.remove_pod(sandbox_id)
    env.assert_clean()


def test_a_subscriber_that_never_reads_is_dropped(env, handler):
    """Each subscriber may have at most 1000 events waiting; one that
    never reads is ended with RESOURCE_EXHAUSTED, and the others and the
    calls go on."""
    if handler != "crun":
        pytest.skip("one handler is enough: the bound is crid's, not the runtime's")
    # A small, fixed flow-control window: gRPC itself buffers little.
    channel = grpc.insecure_channel(
        f"unix://{env.crid.sock}",
        options=[("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 16384)])
    stub = env.crid.api.grpc.RuntimeServiceStub(channel)
    stalled = stub.GetContainerEvents(env.pb.GetEventsRequest(), timeout=300)
    reader = EventCollector(env)
    time.sleep(0.2)
    sandbox_id, sandbox_config = env.run_pod("flood", handler)
    dropped = False
    for i in range(600):
        container_id = env.create(sandbox_id, sandbox_config,
                                  env.container_config(f"c{i}", ["/bin/true"]))
        env.start(container_id)
        env.wait_state(container_id, env.pb.CONTAINER_EXITED)
        env.remove(container_id)
        env.container_ids.discard(container_id)
        if i % 50 == 49 and "events subscriber dropped" in env.crid.log_text():
            dropped = True
            break
    assert dropped, "the subscriber that never reads was never dropped"
    with pytest.raises(grpc.RpcError) as ended:
        for _ in stalled:
            pass
    assert ended.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # The reading subscriber saw everything and goes on.
    assert len(reader.events) >= 4 * 250
    reader.cancel()
    channel.close()
    env.remove_pod(sandbox_id)
    env.assert_clean()
