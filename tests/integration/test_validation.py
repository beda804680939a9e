"""Bounded, well-formed input (issue 15), over the real gRPC API: every
request passes crid/validate.c where it enters, so a bad one is refused
with INVALID_ARGUMENT naming the field before anything exists, and nothing
is left behind.

- strings the CRI declares `string` are valid UTF-8 (state files can
  always be read back: an invalid log_path written raw into state.json
  made a container vanish after a restart);
- labels plus annotations of one object at most 256 KiB;
- error messages quote at most a few hundred bytes of input;
- timeouts clamp instead of overflowing (ExecSync, StopContainer);
- relative mount host paths are refused before the filesystem is touched;
- UpdateContainerResources checks `unified` keys as CreateContainer does;
- hugepage sizes, oom_score_adj, cpu_shares and port mappings are
  range-checked;
- "a..b.log" is a valid log name;
- a state_dir too long for the monitors' sockets stops crid at start;
- finished_at is never earlier than started_at.

Same world as test_containers.py (ContainerEnv: a network namespace,
bridge and cgroup parent per test, the busybox image imported before crid
starts).  Invalid UTF-8 cannot be put into a Python protobuf string, so
those requests are serialized with a marker of the same length that is
then replaced by invalid bytes.
"""

import os
import time
from pathlib import Path

import grpc
import pytest

import cridtest
from test_containers import (  # noqa: F401  (fixtures pytest must see)
    ContainerEnv,
    handler,
    podenv_factory,
)

RPC_TIMEOUT = 30.0
KiB = 1024
INVALID = grpc.StatusCode.INVALID_ARGUMENT

# A marker and invalid UTF-8 of the same length: a lone continuation byte,
# an overlong NUL, a surrogate, a byte never in UTF-8.
MARK = "ZZ-BAD-UTF8-ZZ"
BAD = (b"\x80\xc0\x80\xed\xa0\x80\xff" + b"x" * 16)[: len(MARK)]
assert len(BAD) == len(MARK.encode())


@pytest.fixture
def env(podenv_factory):
    """ContainerEnv; after a failed test its pods are removed through crid
    while it still runs, so that no container outlives the test."""
    container_env = ContainerEnv(podenv_factory)
    yield container_env
    if not container_env.crid.running():
        return
    try:
        for sandbox in container_env.pod.list():
            container_env.remove_pod(sandbox.id)
    except grpc.RpcError as e:
        print(f"removing the pods after the test failed: {e}")


def with_invalid_utf8(message):
    """message serialized, with its one MARK replaced by invalid UTF-8."""
    data = message.SerializeToString()
    assert data.count(MARK.encode()) == 1, "the marker must appear exactly once"
    return data.replace(MARK.encode(), BAD)


def assert_invalid(result, *fragments):
    assert result.code == INVALID, result
    for fragment in fragments:
        assert fragment in result.details, f"{fragment!r} not in {result.details!r}"


def assert_rpc_invalid(error, *fragments):
    assert error.code() == INVALID, error
    for fragment in fragments:
        assert fragment in error.details(), f"{fragment!r} not in {error.details()!r}"


def create_request(env, sandbox_id, sandbox_config, config):
    return env.pb.CreateContainerRequest(
        pod_sandbox_id=sandbox_id, config=config, sandbox_config=sandbox_config
    )


def create_error(env, sandbox_id, sandbox_config, config):
    return cridtest.rpc_error(env.create, sandbox_id, sandbox_config, config)


def assert_no_containers(env):
    assert env.list() == []
    containers = env.crid.root / "containers"
    assert not containers.is_dir() or not any(containers.iterdir()), sorted(
        os.listdir(containers))


def finish(env, sandbox_ids):
    for sandbox_id in sandbox_ids:
        env.remove_pod(sandbox_id)
    assert env.list() == []
    assert env.pod.list() == []
    env.assert_clean()


# --------------------------------------------------------------------------
# Strings are UTF-8


def test_strings_are_utf8(env):
    pb = env.pb
    crid = env.crid

    # RunPodSandbox: nothing is made for any of them.
    def pod_with(**changes):
        config = env.pod.pod_config("utf8pod")
        for key, value in changes.get("labels", {}).items():
            config.labels[key] = value
        for key, value in changes.get("annotations", {}).items():
            config.annotations[key] = value
        if "name" in changes:
            config.metadata.name = changes["name"]
        if "hostname" in changes:
            config.hostname = changes["hostname"]
        if "log_directory" in changes:
            config.log_directory = changes["log_directory"]
        if "sysctls" in changes:
            config.linux.sysctls.update(changes["sysctls"])
        return pb.RunPodSandboxRequest(config=config)

    for request, field in (
        (pod_with(name=MARK), "config.metadata.name"),
        (pod_with(labels={"app": MARK}), 'config.labels["app"]'),
        (pod_with(labels={MARK: "v"}), "config.labels["),
        (pod_with(annotations={"note": MARK}), 'config.annotations["note"]'),
        (pod_with(hostname=MARK), "config.hostname"),
        (pod_with(log_directory="/var/log/" + MARK), "config.log_directory"),
        (pod_with(sysctls={"net.core.somaxconn": MARK}),
         'config.linux.sysctls["net.core.somaxconn"]'),
    ):
        assert_invalid(crid.raw_call("RunPodSandbox", with_invalid_utf8(request), timeout=30),
                       field, "UTF-8")
    assert env.pod.list() == []
    env.assert_clean()

    # CreateContainer: the log path is what once made a container vanish
    # after a restart (written raw into state.json).
    sandbox_id, sandbox_config = env.run_pod("utf8", "")

    def container_with(**changes):
        config = env.container_config("c", ["/bin/sleep", "1000"])
        for key, value in changes.items():
            if key == "labels":
                config.labels.update(value)
            elif key == "mount":
                config.mounts.add(container_path="/mnt", host_path=value)
            elif key == "env":
                config.envs.add(key=value, value=b"v")
            elif key == "image":
                config.image.image = value
            elif isinstance(value, list):
                del getattr(config, key)[:]
                getattr(config, key).extend(value)
            else:
                setattr(config, key, value)
        return create_request(env, sandbox_id, sandbox_config, config)

    for request, field in (
        (container_with(log_path=f"c/{MARK}.log"), "config.log_path"),
        (container_with(command=["/bin/sh", MARK]), "config.command[1]"),
        (container_with(args=[MARK]), "config.args[0]"),
        (container_with(working_dir="/" + MARK), "config.working_dir"),
        (container_with(env=MARK), "config.envs[0].key"),
        (container_with(mount="/tmp/" + MARK), "config.mounts[0].host_path"),
        (container_with(image=MARK), "config.image.image"),
        (container_with(labels={"tier": MARK}), 'config.labels["tier"]'),
    ):
        assert_invalid(crid.raw_call("CreateContainer", with_invalid_utf8(request), timeout=30),
                       field, "UTF-8")
    assert_no_containers(env)
    # An env value is `bytes` in this CRI release: not UTF-8 is fine there,
    # and reaches the container as U+FFFD, as with containerd (config.json
    # is JSON: raw bytes made crun refuse it).
    binary_env = env.container_config("binenv",
                                      ["/bin/sh", "-c", 'printf %s "$X" | od -An -tx1'])
    binary_env.envs.add(key="X", value=b"\xff\xfe")
    container_id = env.create(sandbox_id, sandbox_config, binary_env)
    env.start(container_id)
    env.wait_state(container_id, pb.CONTAINER_EXITED)
    status = env.status(container_id).status
    assert status.exit_code == 0
    assert "ef bf bd ef bf bd" in Path(status.log_path).read_text()
    env.remove(container_id)

    # Every other call that takes a string checks it too, before any lookup.
    for method, request, field, service in (
        ("ExecSync", pb.ExecSyncRequest(container_id="0" * 64, cmd=["/bin/true", MARK]),
         "cmd[1]", cridtest.RUNTIME_SERVICE),
        ("Exec", pb.ExecRequest(container_id="0" * 64, cmd=[MARK], stdout=True), "cmd[0]",
         cridtest.RUNTIME_SERVICE),
        ("Attach", pb.AttachRequest(container_id=MARK, stdout=True), "container_id",
         cridtest.RUNTIME_SERVICE),
        ("PortForward", pb.PortForwardRequest(pod_sandbox_id=MARK, port=[80]), "pod_sandbox_id",
         cridtest.RUNTIME_SERVICE),
        ("UpdateContainerResources",
         pb.UpdateContainerResourcesRequest(
             container_id="0" * 64,
             linux=pb.LinuxContainerResources(unified={"memory.high": MARK})),
         'linux.unified["memory.high"]', cridtest.RUNTIME_SERVICE),
        ("StopContainer", pb.StopContainerRequest(container_id=MARK), "container_id",
         cridtest.RUNTIME_SERVICE),
        ("ListContainers",
         pb.ListContainersRequest(filter=pb.ContainerFilter(label_selector={"a": MARK})),
         'filter.label_selector["a"]', cridtest.RUNTIME_SERVICE),
        ("PullImage", pb.PullImageRequest(image=pb.ImageSpec(image="localhost/" + MARK)),
         "image.image", cridtest.IMAGE_SERVICE),
        ("PullImage",
         pb.PullImageRequest(image=pb.ImageSpec(image="busybox"),
                             auth=pb.AuthConfig(username="u", password=MARK)),
         "auth.password", cridtest.IMAGE_SERVICE),
        ("ImageStatus", pb.ImageStatusRequest(image=pb.ImageSpec(image=MARK)), "image.image",
         cridtest.IMAGE_SERVICE),
        ("RemoveImage", pb.RemoveImageRequest(image=pb.ImageSpec(image=MARK)), "image.image",
         cridtest.IMAGE_SERVICE),
    ):
        result = crid.raw_call(method, with_invalid_utf8(request), service=service)
        assert_invalid(result, field, "UTF-8")

    # What exists can be read back after a restart.
    crid.stop()
    crid.start()
    assert [s.id for s in env.pod.list()] == [sandbox_id]
    assert env.list() == []
    finish(env, [sandbox_id])


# --------------------------------------------------------------------------
# Bounded input


def test_labels_and_annotations_at_most_256_KiB(env):
    pb = env.pb
    limit = 256 * KiB

    # One byte over, between labels and annotations: refused, nothing made.
    config = env.pod.pod_config("big", labels={"l": "v" * (200 * KiB)},
                                annotations={"a": "w" * (limit - 200 * KiB - 2 + 1)})
    error = env.pod.run_error(config)
    assert_rpc_invalid(error, "config: labels and annotations take 262145 bytes", "262144")
    assert env.pod.list() == []
    env.assert_clean()

    # At the limit: fine, and listed whole.
    config = env.pod.pod_config("big", labels={"l": "v" * (200 * KiB)},
                                annotations={"a": "w" * (limit - 200 * KiB - 2)})
    sandbox_id = env.pod.run_pod(config)
    (item,) = env.pod.list()
    assert len(item.labels["l"]) + len(item.annotations["a"]) == limit - 2

    # A container counts its own.
    container = env.container_config("c", ["/bin/true"],
                                     annotations={"x": "y" * (limit + 1)})
    assert_rpc_invalid(create_error(env, sandbox_id, config, container),
                       "config: labels and annotations take")
    assert_no_containers(env)
    finish(env, [sandbox_id])


def test_error_messages_quote_little_of_the_input(env):
    pb = env.pb
    huge = "x" * (1024 * KiB)

    # Lookups of huge ids: NOT_FOUND, with a short message (a megabyte
    # of status details also breaks the client's metadata limit).
    error = cridtest.rpc_error(env.crid.runtime.ContainerStatus,
                               pb.ContainerStatusRequest(container_id=huge), timeout=RPC_TIMEOUT)
    assert error.code() == grpc.StatusCode.NOT_FOUND, error
    assert len(error.details()) < 512
    error = cridtest.rpc_error(env.crid.runtime.PodSandboxStatus,
                               pb.PodSandboxStatusRequest(pod_sandbox_id=huge),
                               timeout=RPC_TIMEOUT)
    assert error.code() == grpc.StatusCode.NOT_FOUND, error
    assert len(error.details()) < 512
    error = cridtest.rpc_error(env.crid.runtime.ExecSync,
                               pb.ExecSyncRequest(container_id=huge, cmd=["/bin/true"]),
                               timeout=RPC_TIMEOUT)
    assert error.code() == grpc.StatusCode.NOT_FOUND, error
    assert len(error.details()) < 512

    # A huge invalid string: named, partly quoted.
    sandbox_id, sandbox_config = env.run_pod("quote", "")
    config = env.container_config("c", ["/bin/true"])
    config.log_path = huge[: -len(MARK)] + MARK
    result = env.crid.raw_call(
        "CreateContainer",
        with_invalid_utf8(create_request(env, sandbox_id, sandbox_config, config)), timeout=30)
    assert_invalid(result, "config.log_path", "...")
    assert len(result.details) < 512

    # Huge paths and keys in refused mounts and resources.
    config = env.container_config("c", ["/bin/true"])
    config.mounts.add(container_path="/mnt", host_path=huge)
    error = create_error(env, sandbox_id, sandbox_config, config)
    assert_rpc_invalid(error, "config.mounts[0]", "not absolute")
    assert len(error.details()) < 1024
    config = env.container_config("c", ["/bin/true"])
    config.linux.resources.unified["../" + huge] = "1"
    error = create_error(env, sandbox_id, sandbox_config, config)
    assert_rpc_invalid(error, "invalid unified cgroup key")
    assert len(error.details()) < 1024
    assert_no_containers(env)
    finish(env, [sandbox_id])


def test_error_messages_quote_little_of_names_in_create_calls(env):
    """The messages of pod/sandbox.c and pod/container.c's own checks."""
    pb = env.pb
    huge = "y" * (1024 * KiB)
    config = env.pod.pod_config("quotepod", hostname="-" + huge)
    error = env.pod.run_error(config)
    assert error.code() == INVALID, error
    assert len(error.details()) < 1024
    sandbox_id, sandbox_config = env.run_pod("quote2", "")
    for config in (
        env.container_config("bad_" + huge, ["/bin/true"]),
        env.container_config("c", ["/bin/true"], image="localhost/" + huge[:200 * KiB]),
    ):
        error = create_error(env, sandbox_id, sandbox_config, config)
        assert error.code() != grpc.StatusCode.OK
        assert len(error.details()) < 1024, error.details()[:300]
    assert_no_containers(env)
    finish(env, [sandbox_id])


def test_timeouts_clamp_instead_of_overflowing(env, handler):
    pb = env.pb
    sandbox_id, sandbox_config = env.run_pod("clamp", handler)
    sleeper = env.run(sandbox_id, sandbox_config, "sleeper", ["/bin/sleep", "1000"])
    # timeout * 1e9 overflowed into a deadline in the past: the command
    # was killed at once ("command timed out", exit code -1).
    for timeout in (2**62, 2**63 - 1, 10**12):
        response = env.crid.runtime.ExecSync(
            pb.ExecSyncRequest(container_id=sleeper, cmd=["/bin/sh", "-c", "sleep 1; echo done"],
                               timeout=timeout),
            timeout=RPC_TIMEOUT)
        assert (response.exit_code, response.stdout) == (0, b"done\n"), response
    # A stop with a huge grace period still ends a container that obeys
    # its stop signal, at once.
    obeys = env.run(sandbox_id, sandbox_config, "obeys",
                    ["/bin/sh", "-c", "trap 'exit 3' TERM; while :; do sleep 0.1; done"])
    time.sleep(0.3)  # the trap is set
    started = time.monotonic()
    env.crid.runtime.StopContainer(pb.StopContainerRequest(container_id=obeys, timeout=2**62),
                                   timeout=RPC_TIMEOUT)
    assert time.monotonic() - started < 10
    assert env.status(obeys).status.exit_code == 3
    finish(env, [sandbox_id])


def test_relative_mount_host_path_is_refused(env):
    pb = env.pb
    sandbox_id, sandbox_config = env.run_pod("relmount", "")
    cwd = Path(os.readlink(f"/proc/{env.crid.pid}/cwd"))
    name = "crid-validation-relative-source"
    assert not (cwd / name).exists()
    config = env.container_config("c", ["/bin/true"], mounts=[
        pb.Mount(container_path="/ok", host_path=str(env.crid.dir / "not-yet")),
        pb.Mount(container_path="/mnt", host_path=f"{name}/sub"),
    ])
    error = create_error(env, sandbox_id, sandbox_config, config)
    assert_rpc_invalid(error, "config.mounts[1]", f'host path "{name}/sub" is not absolute')
    # Nothing touched the filesystem: not the relative source (it used to
    # be made relative to crid's working directory), not the other one.
    assert not (cwd / name).exists()
    assert not (env.crid.dir / "not-yet").exists()
    assert_no_containers(env)
    finish(env, [sandbox_id])


def test_update_container_resources_validates_unified_keys(env, handler):
    pb = env.pb
    sandbox_id, sandbox_config = env.run_pod("unified", handler)
    container_id = env.run(sandbox_id, sandbox_config, "c", ["/bin/sleep", "1000"],
                           linux=pb.LinuxContainerConfig(
                               resources=pb.LinuxContainerResources(cpu_shares=512)))
    before = env.status(container_id).status.resources
    for key in ("../../../escape", "memory.high/../../x", "a..b", ""):
        error = cridtest.rpc_error(
            env.crid.runtime.UpdateContainerResources,
            pb.UpdateContainerResourcesRequest(
                container_id=container_id,
                linux=pb.LinuxContainerResources(cpu_shares=256, unified={key: "1"})),
            timeout=RPC_TIMEOUT)
        assert_rpc_invalid(error, "linux: invalid unified cgroup key")
    assert env.status(container_id).status.resources == before
    assert env.state(container_id) == pb.CONTAINER_RUNNING
    # As CreateContainer does.
    error = create_error(env, sandbox_id, sandbox_config, env.container_config(
        "c2", ["/bin/true"], linux=pb.LinuxContainerConfig(
            resources=pb.LinuxContainerResources(unified={"../x": "1"}))))
    assert_rpc_invalid(error, "config.linux.resources: invalid unified cgroup key")
    finish(env, [sandbox_id])


def test_resources_and_port_mappings_are_range_checked(env):
    pb = env.pb

    def resources(**fields):
        return pb.LinuxContainerConfig(resources=pb.LinuxContainerResources(**fields))

    # The pod's own resources and port mappings: no sandbox, no veth, no
    # lease, no DNAT rule.
    config = env.pod.pod_config("ranges")
    config.linux.resources.oom_score_adj = 5000
    assert_rpc_invalid(env.pod.run_error(config), "config.linux.resources: oom_score_adj 5000")
    for mapping, fragment in (
        (dict(container_port=80, host_port=70000), "host_port 70000 is outside"),
        (dict(container_port=80, host_port=-1), "host_port -1"),
        (dict(container_port=0, host_port=8080), "container_port 0 is outside [1, 65535]"),
        (dict(container_port=65536, host_port=8080), "container_port 65536"),
        (dict(container_port=80, host_port=8080, protocol=7), "protocol 7"),
        (dict(container_port=80, host_port=8080, host_ip="not-an-ip"),
         'host_ip "not-an-ip" is not an IPv4 or IPv6 address'),
        (dict(container_port=80, host_port=8080, host_ip="10.0.0.300"), "host_ip"),
    ):
        config = env.pod.pod_config("ranges", port_mappings=[mapping])
        assert_rpc_invalid(env.pod.run_error(config), "config.port_mappings[0]", fragment)
    assert env.pod.list() == []
    env.assert_clean()

    sandbox_id, sandbox_config = env.run_pod("ranges2", "")
    for linux, fragment in (
        (resources(oom_score_adj=1001), "oom_score_adj 1001 is outside [-1000, 1000]"),
        (resources(oom_score_adj=-1001), "oom_score_adj -1001"),
        (resources(cpu_shares=262145), "cpu_shares 262145 is outside [0, 262144]"),
        (resources(cpu_shares=-2), "cpu_shares -2"),
        (resources(hugepage_limits=[pb.HugepageLimit(page_size="3MB", limit=1)]),
         'hugepage_limits[0]: page size "3MB"'),
        (resources(hugepage_limits=[pb.HugepageLimit(page_size="2MB/../../x", limit=1)]),
         "page size"),
        (resources(hugepage_limits=[pb.HugepageLimit(page_size="2mb", limit=1)]), "page size"),
        (resources(hugepage_limits=[pb.HugepageLimit(page_size="2MB", limit=2**63)]),
         "hugepage_limits[0]: limit"),
    ):
        error = create_error(env, sandbox_id, sandbox_config,
                             env.container_config("c", ["/bin/true"], linux=linux))
        assert_rpc_invalid(error, "config.linux.resources", fragment)
    # Updates too, before the container is even looked up.
    error = cridtest.rpc_error(
        env.crid.runtime.UpdateContainerResources,
        pb.UpdateContainerResourcesRequest(
            container_id="0" * 64, linux=pb.LinuxContainerResources(cpu_shares=10**6)),
        timeout=RPC_TIMEOUT)
    assert_rpc_invalid(error, "linux: cpu_shares 1000000")
    assert_no_containers(env)
    finish(env, [sandbox_id])


def test_log_name_with_two_dots_is_valid(env):
    pb = env.pb
    sandbox_id, sandbox_config = env.run_pod("dots", "")
    config = env.container_config("c", ["/bin/sh", "-c", "echo two dots"])
    config.log_path = "c/a..b.log"
    container_id = env.create(sandbox_id, sandbox_config, config)
    env.start(container_id)
    env.wait_state(container_id, pb.CONTAINER_EXITED)
    status = env.status(container_id).status
    assert status.log_path.endswith("/c/a..b.log")
    assert "two dots" in Path(status.log_path).read_text()
    # A ".." component stays refused.
    for log_path in ("../escape.log", "c/../../escape.log", ".."):
        config = env.container_config("d", ["/bin/true"])
        config.log_path = log_path
        assert_rpc_invalid(create_error(env, sandbox_id, sandbox_config, config),
                           "config: log_path", '".." component')
    finish(env, [sandbox_id])


def test_state_dir_too_long_for_monitor_sockets_is_refused_at_start(crid_factory):
    long_dir = "/tmp/crid-validation-" + "d" * 20 + "/state"
    instance = crid_factory(state_dir=long_dir, start=False)
    instance.start(wait=False)
    code = instance.wait(timeout=10)
    assert code == 1, instance.log_tail()
    log = instance.log_text()
    assert "crid.state_dir" in log and "at most 27 fit" in log, instance.log_tail()
    assert not Path(long_dir).exists()
    assert not instance.sock.exists()


def test_finished_at_is_never_before_started_at(env, handler):
    pb = env.pb
    sandbox_id, sandbox_config = env.run_pod("times", handler)
    ids = [env.run(sandbox_id, sandbox_config, f"quick{i}", ["/bin/true"]) for i in range(8)]
    for container_id in ids:
        env.wait_state(container_id, pb.CONTAINER_EXITED)
    for attempt in ("before", "after a restart"):
        for container_id in ids:
            status = env.status(container_id).status
            assert status.created_at <= status.started_at <= status.finished_at, (
                attempt, status.created_at, status.started_at, status.finished_at)
        if attempt == "before":
            env.crid.stop()
            env.crid.start()
    finish(env, [sandbox_id])
