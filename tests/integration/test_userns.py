"""User namespaces for pods (hostUsers: false) on crun and runc, through
the real socket: userns_options mode POD puts the pause and every container
of a pod in one user namespace with the request's mappings; files keep
the owners they have on disk as seen from inside (the image layers and
volumes are idmapped mounts, no chown copy); bad modes and mappings are
refused with INVALID_ARGUMENT before anything is created; stop and remove
leave nothing (mounts, pins, processes).

The image is test_containers' busybox, whose files belong to root (0:0).
"""

import os
import re

import grpc
import pytest

import cridtest

from test_container_features import env, finish  # noqa: F401
from test_containers import (  # noqa: F401  (fixtures pytest must see)
    _exec_text,
    handler,
    podenv_factory,
)

HOST_BASE = 200000
LENGTH = 65536
OTHER = 1234  # a non-root owner in a volume


def mapping(pb, container_id, host_id, length):
    return pb.IDMapping(container_id=container_id, host_id=host_id, length=length)


def userns_pod_config(env, name, handler, uids=None, gids=None, mode=None, **kwargs):
    # The pod's root is an unprivileged user on the host: it must be able
    # to reach crid's root and state dirs (crid makes them 0711; the test
    # dir holding them is a private temporary one).
    os.chmod(env.crid.dir, 0o711)
    pb = env.pb
    config = env.pod.pod_config(name, uid=f"uid-{name}-{handler}", **kwargs)
    default = [mapping(pb, 0, HOST_BASE, LENGTH)]
    options = config.linux.security_context.namespace_options
    options.userns_options.CopyFrom(
        pb.UserNamespace(
            mode=pb.POD if mode is None else mode,
            uids=default if uids is None else uids,
            gids=default if gids is None else gids,
        )
    )
    return config


def host_ids(pid):
    """(real uid, real gid) of a process as the host sees them."""
    with open(f"/proc/{pid}/status") as f:
        text = f.read()
    uid = int(re.search(r"^Uid:\s*(\d+)", text, re.MULTILINE).group(1))
    gid = int(re.search(r"^Gid:\s*(\d+)", text, re.MULTILINE).group(1))
    return uid, gid


def container_pid(env, container_id):
    return int(env.info(container_id)["pid"])


def test_status_advertises_user_namespaces(env, handler):
    response = env.crid.runtime.Status(env.pb.StatusRequest(verbose=False), timeout=10)
    features = {h.name: h.features.user_namespaces for h in response.runtime_handlers}
    assert features[handler], features


def test_pod_in_a_user_namespace(env, handler, tmp_path):
    pb = env.pb
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "by-root").write_text("root's\n")
    (volume / "by-other").write_text("other's\n")
    os.chown(volume / "by-other", OTHER, OTHER)
    config = userns_pod_config(env, "userns", handler,
                               sysctls={"net.ipv4.ip_unprivileged_port_start": "80"})
    sandbox_id = env.pod.run_pod(config, handler=handler)
    pause_pid = int(env.pod.info(sandbox_id)["pid"])
    # PodSandboxStatus echoes the pod's user namespace.
    reported = env.pod.status(sandbox_id).status.linux.namespaces.options.userns_options
    assert reported.mode == pb.POD
    assert [(m.container_id, m.host_id, m.length) for m in reported.uids] == [
        (0, HOST_BASE, LENGTH)]

    # One container with the pod's options, as the kubelet sends them, one
    # without any: both join the pod's namespace.
    security = pb.LinuxContainerSecurityContext(
        namespace_options=config.linux.security_context.namespace_options)
    with_options = env.run(
        sandbox_id, config, "with", ["/bin/sleep", "1000"],
        linux=pb.LinuxContainerConfig(security_context=security),
        mounts=[pb.Mount(container_path="/vol", host_path=str(volume))],
    )
    without = env.run(sandbox_id, config, "without", ["/bin/sleep", "1000"])

    expected_map = f"0 {HOST_BASE} {LENGTH}"
    for container_id in (with_options, without):
        for name in ("uid_map", "gid_map"):
            text = _exec_text(env, container_id, f"cat /proc/self/{name}")
            assert text.split() == expected_map.split(), (name, text)
        # The image's files belong to root, inside as on disk.
        assert _exec_text(env, container_id, "stat -c %u:%g /bin/busybox /").split() == [
            "0:0", "0:0"]
        # Root inside is the mapped id outside, with no privilege there.
        assert host_ids(container_pid(env, container_id)) == (HOST_BASE, HOST_BASE)
        assert _exec_text(env, container_id, "id -u").strip() == "0"
    # The pod's processes share one user namespace, the pause's too.
    user_ns = {os.readlink(f"/proc/{container_pid(env, c)}/ns/user")
               for c in (with_options, without)}
    assert len(user_ns) == 1 and user_ns != {os.readlink("/proc/self/ns/user")}, user_ns
    assert os.readlink(f"/proc/{pause_pid}/ns/user") in user_ns
    assert host_ids(pause_pid) == (HOST_BASE, HOST_BASE)
    # ...and its network namespace, which the user namespace owns: the
    # pod's root may configure it (loopback is up, its address settable).
    assert "127.0.0.1" in _exec_text(env, with_options, "cat /proc/net/fib_trie")
    # Hostname and sysctls are set inside the namespaces the pod owns.
    assert _exec_text(env, with_options, "hostname").strip() == "userns"
    assert _exec_text(
        env, with_options, "cat /proc/sys/net/ipv4/ip_unprivileged_port_start").strip() == "80"

    # The volume: owners as on disk, a new file written as the pod's root
    # is root's on disk too (the mount is idmapped, not the files).
    listing = _exec_text(env, with_options, "stat -c '%n %u:%g' /vol/by-root /vol/by-other")
    assert listing.split() == ["/vol/by-root", "0:0", "/vol/by-other", f"{OTHER}:{OTHER}"]
    _exec_text(env, with_options, "echo new > /vol/new && echo upper > /written")
    assert (os.stat(volume / "new").st_uid, os.stat(volume / "new").st_gid) == (0, 0)
    # The writable layer is the container's own: its files carry the host
    # ids of the pod's root, and show as root's inside.
    assert _exec_text(env, with_options, "stat -c %u:%g /written").strip() == "0:0"
    # After a restart of crid, a new container still joins the pod's
    # namespace with idmapped layers.
    env.crid.stop()
    env.crid.start()
    later = env.run(sandbox_id, config, "later", ["/bin/sleep", "1000"])
    assert _exec_text(env, later, "cat /proc/self/uid_map").split() == expected_map.split()
    assert _exec_text(env, later, "stat -c %u:%g /bin/busybox").strip() == "0:0"
    assert os.readlink(f"/proc/{container_pid(env, later)}/ns/user") in user_ns
    env.stop(later)
    env.remove(later)
    # The idmapped mounts live beside the container, and go with it.
    env.stop(with_options)
    env.remove(with_options)
    env.stop(without)
    env.remove(without)
    # The pod's user namespace is pinned beside the others until it stops.
    assert env.pod.ns_file(sandbox_id, "user").exists()
    env.pod.stop(sandbox_id)
    assert not env.pod.ns_file(sandbox_id, "user").exists()
    env.pod.assert_pod_gone(sandbox_id)
    assert not cridtest.pid_alive(pause_pid)
    env.pod.remove(sandbox_id)
    # No mount, pin (the ns dir is empty), process or directory is left.
    env.assert_clean()


def test_critest_shape_uid_map_in_logs(env, handler):
    """critest's NamespaceMode_POD spec: a container that cats its uid_map
    and exits; the log shows the mapping."""
    pb = env.pb
    uids = [mapping(pb, 0, 1000, 100000)]
    config = userns_pod_config(env, "critest", handler, uids=uids, gids=uids)
    sandbox_id = env.pod.run_pod(config, handler=handler)
    security = pb.LinuxContainerSecurityContext(
        namespace_options=config.linux.security_context.namespace_options)
    container_id = env.run(sandbox_id, config, "cat", ["cat", "/proc/self/uid_map"],
                           linux=pb.LinuxContainerConfig(security_context=security))
    env.wait_state(container_id, pb.CONTAINER_EXITED)
    log = env.status(container_id).status.log_path
    with open(log) as f:
        assert re.search(r"\s+0\s+1000\s+100000\n", f.read())
    env.remove(container_id)
    env.remove_pod(sandbox_id)
    env.assert_clean()


@pytest.mark.parametrize(
    "case",
    [
        "mode CONTAINER",
        "mode TARGET",
        "root unmapped",
        "overlapping container ids",
        "overlapping host ids",
        "too many ranges",
        "zero length",
        "overflow",
        "host root mapped",
        "no gid mappings",
        "host network",
    ],
)
def test_bad_user_namespaces_are_refused(env, handler, case):
    pb = env.pb
    m = lambda c, h, n: mapping(pb, c, h, n)  # noqa: E731
    kwargs = {}
    if case == "mode CONTAINER":
        kwargs = dict(mode=pb.CONTAINER, uids=[], gids=[])
    elif case == "mode TARGET":
        kwargs = dict(mode=pb.TARGET, uids=[], gids=[])
    elif case == "root unmapped":
        kwargs = dict(uids=[m(1, 1000, 100000)])
    elif case == "overlapping container ids":
        kwargs = dict(uids=[m(0, 1000, 100000), m(0, 200000, 100000)])
    elif case == "overlapping host ids":
        kwargs = dict(uids=[m(0, 1000, 100), m(100, 1050, 100)])
    elif case == "too many ranges":
        kwargs = dict(uids=[m(i * 10, 100000 + i * 10, 10) for i in range(6)])
    elif case == "zero length":
        kwargs = dict(uids=[m(0, 100000, 0)])
    elif case == "overflow":
        kwargs = dict(uids=[m(0, 4294967000, 1000)])
    elif case == "host root mapped":
        kwargs = dict(uids=[m(0, 0, 65536)])
    elif case == "no gid mappings":
        kwargs = dict(gids=[])
    elif case == "host network":
        kwargs = dict(host_network=True)
    config = userns_pod_config(env, "bad", handler, **kwargs)
    error = env.pod.run_error(config, handler=handler)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert "user namespace" in error.details(), error.details()
    assert env.pod.list() == []
    env.assert_clean()


@pytest.mark.parametrize("name", ["sandbox.after-namespaces", "container.after-rootfs"])
def test_crash_leaves_no_user_namespace_or_idmapped_mount(env, handler, tmp_path, name):
    """crid killed right after pinning a userns pod's namespaces, or after
    mounting a container's idmapped layers and volume: the restart rolls
    it back, leaving no pin and no mount, and the pod works again."""
    from test_crash_consistency import crash_then_restart, restart_with_failpoint

    pb = env.pb
    volume = tmp_path / "volume"
    volume.mkdir()
    config = userns_pod_config(env, "crash", handler)
    mounts = [pb.Mount(container_path="/vol", host_path=str(volume))]
    if name.startswith("sandbox."):
        plain = restart_with_failpoint(env.crid, name)
        crash_then_restart(env.crid, plain, lambda: env.pod.run_pod(config, handler=handler))
        assert env.pod.list() == []
        env.assert_clean()
        sandbox_id = env.pod.run_pod(config, handler=handler)
    else:
        sandbox_id = env.pod.run_pod(config, handler=handler)
        plain = restart_with_failpoint(env.crid, name)
        crash_then_restart(env.crid, plain, lambda: env.create(
            sandbox_id, config, env.container_config("victim", ["/bin/sleep", "100"],
                                                     mounts=mounts)))
        assert env.list() == []
    container_id = env.run(sandbox_id, config, "after", ["/bin/sleep", "100"], mounts=mounts)
    assert _exec_text(env, container_id, "stat -c %u /vol").strip() == "0"
    env.remove_pod(sandbox_id)
    env.assert_clean()


def test_mount_mappings_must_be_the_pods(env, handler, tmp_path):
    """The kubelet gives each mount of a userns pod the pod's mappings:
    accepted (the mount is idmapped into the pod's namespace); other
    mappings are refused and leave nothing."""
    pb = env.pb
    volume = tmp_path / "volume"
    volume.mkdir()
    config = userns_pod_config(env, "mountmaps", handler)
    sandbox_id = env.pod.run_pod(config, handler=handler)
    pods = config.linux.security_context.namespace_options.userns_options
    same = pb.Mount(container_path="/vol", host_path=str(volume), uidMappings=pods.uids,
                    gidMappings=pods.gids)
    container_id = env.run(sandbox_id, config, "same", ["/bin/sleep", "1000"], mounts=[same])
    assert _exec_text(env, container_id, "stat -c %u:%g /vol").strip() == "0:0"
    other = pb.Mount(container_path="/vol", host_path=str(volume),
                     uidMappings=[mapping(pb, 0, 500000, 10)], gidMappings=pods.gids)
    with pytest.raises(grpc.RpcError) as refused:
        env.create(sandbox_id, config, env.container_config("other", ["/bin/sleep", "1"],
                                                             mounts=[other]))
    assert "id-mapped mounts other than into the pod's user namespace" in refused.value.details()
    assert [c.id for c in env.list()] == [container_id]
    env.remove_pod(sandbox_id)
    env.assert_clean()
