"""Container features a user sees, end to end on crun and runc: capability
sets, read-only root file systems, privileged containers, mount
propagation, cgroup resources and their updates, OOM kills, big logs,
many concurrent ExecSync calls, the ExecSync output cap, terminals and
stdin, and the command/args/env merge with the image.

Same world as test_containers.py (its ContainerEnv, one network namespace,
bridge and cgroup parent per test, the busybox image imported before crid
starts); every check looks at what a user can see: the gRPC answers, files
on disk, /proc and cgroup files, mountinfo inside the container.  Every
test removes what it made and asserts that nothing is left; the mounts a
test makes on the host are undone by the test itself.  Every loop and wait
is bounded.
"""

import concurrent.futures
import os
import re
import subprocess
import tarfile
import time
from pathlib import Path

import grpc
import pytest

import cridtest
import netns as nsutil
from test_containers import (  # noqa: F401  (fixtures pytest must see)
    ContainerEnv,
    _exec_text,
    build_images,
    handler,
    podenv_factory,
)

MiB = 1024 * 1024

# Capability numbers (linux/capability.h), as /proc/<pid>/status masks use them.
CAP_NAMES = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
    "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
    "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
    "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
    "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
    "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
]
DEFAULT_CAPS = {
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
}


@pytest.fixture
def env(podenv_factory):
    """test_containers' ContainerEnv; after a failed test its pods are
    removed through crid while crid still runs, so that no container
    outlives the test (the harness finds processes by their paths, and a
    pivoted container's paths are its own)."""
    container_env = ContainerEnv(podenv_factory)
    yield container_env
    crid = container_env.crid
    if not crid.running():
        return
    try:
        for sandbox in container_env.pod.list():
            container_env.remove_pod(sandbox.id)
    except grpc.RpcError as e:
        print(f"removing the pods after the test failed: {e}")


def cap_names(mask):
    """A capability mask -> the set of its names (unknown bits as numbers)."""
    return {CAP_NAMES[b] if b < len(CAP_NAMES) else str(b) for b in range(64) if mask >> b & 1}


def status_masks(text):
    """{"CapEff": int, ...} from /proc/<pid>/status text."""
    return {
        key: int(value, 16)
        for key, value in re.findall(r"^(Cap\w+):\s*([0-9a-f]+)$", text, re.MULTILINE)
    }


def linux_config(pb, resources=None, **security):
    return pb.LinuxContainerConfig(
        resources=resources, security_context=pb.LinuxContainerSecurityContext(**security)
    )


TIMESTAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)$")


def log_lines(path):
    """[(stream, tag, content)] of a CRI log file ("<RFC 3339 time with
    nanoseconds> <stream> <P|F> <content>" per record), split on "\\n"
    only: a terminal's "\\r" stays in the content.  A record still being
    written (no newline yet) is left out."""
    out = []
    with open(path, "rb") as f:
        data = f.read()
    for raw in data.split(b"\n")[:-1]:
        parts = raw.split(b" ", 3)
        assert len(parts) == 4 and TIMESTAMP.match(parts[0]), f"bad log record {raw[:120]!r}"
        assert parts[1] in (b"stdout", b"stderr") and parts[2] in (b"P", b"F"), raw[:120]
        out.append((parts[1].decode(), parts[2].decode(), parts[3].decode(errors="replace")))
    return out


def joined_stream(path, stream="stdout"):
    """The lines of one stream, partial (P) records joined to the full line,
    from the log of a container that has ended."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell():
            f.seek(-1, os.SEEK_END)
            assert f.read() == b"\n", f"{path} ends inside a record"
    lines, partial = [], []
    for s, tag, content in log_lines(path):
        if s != stream:
            continue
        partial.append(content)
        if tag == "F":
            lines.append("".join(partial))
            partial = []
        else:
            assert tag == "P", f"bad log tag {tag!r}"
    assert not partial, f"log ends with an unfinished partial line: {partial[-1][:80]!r}"
    return lines


def container_cgroup_dir(pid, controller):
    """/sys/fs/cgroup/<controller>/<path> of a process (cgroup v1)."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                return Path("/sys/fs/cgroup") / controller / path.lstrip("/")
    raise AssertionError(f"pid {pid} has no {controller} cgroup")


def cgroup_value(pid, controller, name):
    return (container_cgroup_dir(pid, controller) / name).read_text().strip()


def finish(env, sandbox_ids):
    for sandbox_id in sandbox_ids:
        env.remove_pod(sandbox_id)
    assert env.list() == []
    env.assert_clean()


# --------------------------------------------------------------------------
# Capabilities


def test_capabilities(env, handler):
    pb = env.pb
    sandbox_id, sandbox_config = env.run_pod("caps", handler)
    host = status_masks(Path("/proc/self/status").read_text())

    def caps_of(name, capabilities):
        security = {"capabilities": capabilities} if capabilities is not None else {}
        container_id = env.run(sandbox_id, sandbox_config, name, ["/bin/sleep", "1000"],
                               linux=linux_config(pb, **security))
        # The container's init and a process exec'd next to it.
        init = status_masks(_exec_text(env, container_id, "cat /proc/1/status"))
        exec_ = status_masks(_exec_text(env, container_id, "cat /proc/self/status"))
        assert init["CapEff"] == exec_["CapEff"], (init, exec_)
        assert init["CapBnd"] == init["CapEff"] == init["CapPrm"], init
        assert init["CapAmb"] == 0
        return cap_names(init["CapEff"])

    assert caps_of("default", None) == DEFAULT_CAPS
    assert caps_of("empty", pb.Capability()) == DEFAULT_CAPS
    added = caps_of("added", pb.Capability(add_capabilities=["NET_ADMIN", "SYS_ADMIN"]))
    assert added == DEFAULT_CAPS | {"NET_ADMIN", "SYS_ADMIN"}
    assert caps_of("dropped", pb.Capability(drop_capabilities=["CHOWN", "KILL"])) == (
        DEFAULT_CAPS - {"CHOWN", "KILL"}
    )
    only = caps_of("only", pb.Capability(drop_capabilities=["ALL"],
                                         add_capabilities=["NET_BIND_SERVICE"]))
    assert only == {"NET_BIND_SERVICE"}
    assert caps_of("all", pb.Capability(add_capabilities=["ALL"],
                                        drop_capabilities=["CAP_SYS_ADMIN"])) == (
        cap_names(host["CapBnd"]) - {"SYS_ADMIN"})

    # Any case, with or without the CAP_ prefix.
    assert caps_of("spelling", pb.Capability(add_capabilities=["cap_net_admin", "Sys_Time"],
                                             drop_capabilities=["CAP_chown"])) == (
        DEFAULT_CAPS - {"CHOWN"} | {"NET_ADMIN", "SYS_TIME"})

    # A non-root user keeps only its ambient capabilities across execve.
    user = pb.Int64Value(value=1000)
    plain_user = env.run(sandbox_id, sandbox_config, "user", ["/bin/sleep", "1000"],
                         linux=linux_config(pb, run_as_user=user))
    masks = status_masks(_exec_text(env, plain_user, "cat /proc/1/status"))
    assert (masks["CapEff"], masks["CapAmb"]) == (0, 0), masks
    assert cap_names(masks["CapBnd"]) == DEFAULT_CAPS
    ambient = env.run(sandbox_id, sandbox_config, "ambient", ["/bin/sleep", "1000"],
                      linux=linux_config(pb, run_as_user=user, capabilities=pb.Capability(
                          add_ambient_capabilities=["NET_BIND_SERVICE", "NET_ADMIN"])))
    for pid in ("1", "self"):
        masks = status_masks(_exec_text(env, ambient, f"cat /proc/{pid}/status"))
        assert cap_names(masks["CapAmb"]) == {"NET_BIND_SERVICE", "NET_ADMIN"}, masks
        assert cap_names(masks["CapEff"]) == {"NET_BIND_SERVICE", "NET_ADMIN"}, masks

    # An unknown name is the caller's error, and leaves nothing.
    before = sorted(os.listdir(env.crid.root / "containers"))
    bad = linux_config(pb, capabilities=pb.Capability(add_capabilities=["NO_SUCH_CAP"]))
    error = cridtest.rpc_error(env.create, sandbox_id, sandbox_config,
                               env.container_config("badcap", ["/bin/true"], linux=bad))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    assert "NO_SUCH_CAP" in error.details(), error.details()
    for field in ("drop_capabilities", "add_ambient_capabilities"):
        bad = linux_config(pb, capabilities=pb.Capability(**{field: ["CHOWN", "BOGUS"]}))
        error = cridtest.rpc_error(env.create, sandbox_id, sandbox_config,
                                   env.container_config("badcap", ["/bin/true"], linux=bad))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, error)
        assert "BOGUS" in error.details(), error.details()
    assert sorted(os.listdir(env.crid.root / "containers")) == before
    assert "badcap" not in {c.metadata.name for c in env.list()}
    # The name is free again.
    retry = env.run(sandbox_id, sandbox_config, "badcap", ["/bin/true"])
    env.wait_state(retry, pb.CONTAINER_EXITED)
    finish(env, [sandbox_id])


# --------------------------------------------------------------------------
# Read-only root file system


def test_readonly_rootfs(env, handler):
    pb = env.pb
    sandbox_id, sandbox_config = env.run_pod("rorootfs", handler)
    volume = env.crid.dir / "volume"
    volume.mkdir()
    container_id = env.run(
        sandbox_id, sandbox_config, "ro", ["/bin/sleep", "1000"],
        linux=linux_config(pb, readonly_rootfs=True),
        mounts=[pb.Mount(container_path="/data", host_path=str(volume))],
    )
    for path in ("/x", "/tmp/x", "/etc/x", "/etc/hostname"):
        response = env.exec_sync(container_id, ["/bin/sh", "-c", f"echo hi > {path}"], timeout=10)
        assert response.exit_code != 0, f"{path} is writable on a read-only rootfs"
        assert b"Read-only file system" in response.stderr, response.stderr
    # What is mounted writable stays writable.
    _exec_text(env, container_id,
               "echo shm > /dev/shm/f && cat /dev/shm/f && echo data > /data/f && "
               "echo dev > /dev/f && mkdir /dev/d")
    assert (volume / "f").read_text() == "data\n"
    root_options = [line.split()[5] for line in
                    _exec_text(env, container_id, "cat /proc/self/mountinfo").splitlines()
                    if line.split()[4] == "/"]
    assert root_options and root_options[-1].split(",")[0] == "ro", root_options

    # The same image without readonly_rootfs is writable.
    writable = env.run(sandbox_id, sandbox_config, "rw", ["/bin/sleep", "1000"])
    _exec_text(env, writable, "echo hi > /x && cat /x")
    finish(env, [sandbox_id])


# --------------------------------------------------------------------------
# Privileged


def _mount_options(mountinfo, mount_point):
    """Per-mount options of the last (topmost) mount at mount_point."""
    found = [line.split()[5] for line in mountinfo.splitlines() if line.split()[4] == mount_point]
    assert found, f"{mount_point} is not mounted:\n{mountinfo}"
    return found[-1].split(",")


def _super_options(mountinfo, mount_point):
    """Super block options of the last mount at mount_point."""
    found = [line.split(" - ", 1)[1].split()[2] for line in mountinfo.splitlines()
             if line.split()[4] == mount_point]
    assert found, f"{mount_point} is not mounted:\n{mountinfo}"
    return found[-1].split(",")


def test_privileged(env, handler):
    pb = env.pb
    host = status_masks(Path("/proc/self/status").read_text())
    host_devices = sorted(
        name for name in ("kmsg", "loop-control", "loop0", "vda", "mem", "fuse")
        if os.path.exists(f"/dev/{name}")
    )
    assert host_devices, "no known device on this host's /dev"

    # An ordinary pod refuses a privileged container.
    plain_id, plain_config = env.run_pod("unpriv", handler)
    error = cridtest.rpc_error(
        env.create, plain_id, plain_config,
        env.container_config("p", ["/bin/true"], linux=linux_config(pb, privileged=True)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    assert "privileged" in error.details()

    config = env.pod.pod_config("priv", uid=f"uid-priv-{handler}")
    config.linux.security_context.privileged = True
    sandbox_id = env.pod.run_pod(config, handler=handler)
    # kubelet fills a RuntimeDefault seccomp profile in; privileged wins.
    privileged = env.run(sandbox_id, config, "privileged", ["/bin/sleep", "1000"],
                         linux=linux_config(pb, privileged=True, seccomp=pb.SecurityProfile(
                             profile_type=pb.SecurityProfile.RuntimeDefault)))
    normal = env.run(sandbox_id, config, "normal", ["/bin/sleep", "1000"])

    listing = set(_exec_text(env, privileged, "ls /dev").split())
    assert set(host_devices) <= listing, (host_devices, listing)
    assert not set(host_devices) & set(_exec_text(env, normal, "ls /dev").split())

    masks = status_masks(_exec_text(env, privileged, "cat /proc/1/status"))
    assert cap_names(masks["CapEff"]) == cap_names(host["CapBnd"])
    assert masks["CapBnd"] == host["CapBnd"]
    assert cap_names(status_masks(_exec_text(env, normal, "cat /proc/1/status"))["CapEff"]) == (
        DEFAULT_CAPS
    )

    mountinfo = _exec_text(env, privileged, "cat /proc/self/mountinfo")
    assert "rw" in _mount_options(mountinfo, "/sys")
    assert "ro" in _mount_options(_exec_text(env, normal, "cat /proc/self/mountinfo"), "/sys")
    # Writable for real: sysfs has one super block per network namespace,
    # and the pod's pause mounted it first.
    assert "rw" in _super_options(mountinfo, "/sys")
    write_sysfs = "cat /sys/class/net/lo/tx_queue_len > /sys/class/net/lo/tx_queue_len"
    _exec_text(env, privileged, write_sysfs)
    response = env.exec_sync(normal, ["/bin/sh", "-c", write_sysfs], timeout=10)
    assert response.exit_code != 0 and b"Read-only file system" in response.stderr, response
    # Nothing is masked or read-only: /proc/timer_list has content (a
    # masked one is /dev/null), /proc/sys and the cgroup mount are rw.
    assert "rw" in _mount_options(mountinfo, "/sys/fs/cgroup")
    assert "/proc/sys" not in [line.split()[4] for line in mountinfo.splitlines()]
    assert int(_exec_text(env, privileged, "grep -c . /proc/timer_list")) > 0
    normal_info = _exec_text(env, normal, "cat /proc/self/mountinfo")
    assert "ro" in _mount_options(normal_info, "/proc/sys")
    response = env.exec_sync(normal, ["/bin/sh", "-c", "grep -c . /proc/timer_list"], timeout=10)
    assert response.stdout == b"0\n", response
    assert _exec_text(env, privileged, "grep ^Seccomp: /proc/1/status").split() == [
        "Seccomp:", "0"]
    # Every device is allowed: a node made for /dev/kmsg (1:11) opens
    # there, not in an ordinary container (the devices cgroup says no).
    assert _exec_text(env, privileged, "cat /sys/fs/cgroup/devices/devices.list") == (
        "a *:* rwm\n")
    open_kmsg = "mknod /tmp/kmsg c 1 11 && exec 3< /tmp/kmsg"
    _exec_text(env, privileged, open_kmsg)
    response = env.exec_sync(normal, ["/bin/sh", "-c", open_kmsg], timeout=10)
    assert response.exit_code != 0 and b"not permitted" in response.stderr, response
    finish(env, [plain_id, sandbox_id])


# --------------------------------------------------------------------------
# Mount propagation


def _run(*cmd):
    subprocess.run(cmd, check=True, capture_output=True, timeout=10)


def _optional_fields(mountinfo, mount_point):
    for line in mountinfo.splitlines():
        fields = line.split()
        if fields[4] == mount_point:
            return fields[6:fields.index("-")]
    raise AssertionError(f"{mount_point} not in the container's mountinfo:\n{mountinfo}")


def test_mount_propagation(env, handler):
    pb = env.pb
    base = env.crid.dir / "prop"
    shared = base / "shared"
    private = base / "private"
    readonly = base / "readonly"
    for directory in (shared, private, readonly):
        directory.mkdir(parents=True)
    (readonly / "f").write_text("ro\n")
    try:
        # A shared mount point of the test's own, as kubelet's plugin dirs are.
        _run("mount", "--bind", str(shared), str(shared))
        _run("mount", "--make-shared", str(shared))
        for sub in ("slave/sub", "bidi/inner", "bidi/from-host"):
            (shared / sub).mkdir(parents=True)
        sandbox_id, sandbox_config = env.run_pod("prop", handler)
        P = pb.MountPropagation
        mounts = [
            pb.Mount(container_path="/mnt/private", host_path=str(private),
                     propagation=P.Value("PROPAGATION_PRIVATE")),
            pb.Mount(container_path="/mnt/slave", host_path=str(shared / "slave"),
                     propagation=P.Value("PROPAGATION_HOST_TO_CONTAINER")),
            pb.Mount(container_path="/mnt/bidi", host_path=str(shared / "bidi"),
                     propagation=P.Value("PROPAGATION_BIDIRECTIONAL")),
            pb.Mount(container_path="/mnt/ro", host_path=str(readonly), readonly=True),
        ]
        container_id = env.run(
            sandbox_id, sandbox_config, "prop", ["/bin/sleep", "1000"], mounts=mounts,
            linux=linux_config(pb, capabilities=pb.Capability(add_capabilities=["SYS_ADMIN"])))
        mountinfo = _exec_text(env, container_id, "cat /proc/self/mountinfo")
        # A bidirectional mount makes the container's root rshared (as with
        # runc under containerd and CRI-O), so every mount inside is in a
        # peer group; only the slave follows the host's.
        assert "master:" not in " ".join(_optional_fields(mountinfo, "/mnt/private"))
        assert any(f.startswith("master:") for f in _optional_fields(mountinfo, "/mnt/slave"))
        bidi_peer = [f for f in _optional_fields(mountinfo, "/mnt/bidi") if f.startswith("shared:")]
        host_peer = _optional_fields(Path("/proc/self/mountinfo").read_text(), str(shared))
        assert bidi_peer and bidi_peer == [f for f in host_peer if f.startswith("shared:")], (
            bidi_peer, host_peer)

        # Without a bidirectional mount the root is rslave: a private mount
        # is in no peer group at all, the host-to-container one is a slave.
        slave_only = env.run(sandbox_id, sandbox_config, "slaveonly", ["/bin/sleep", "1000"],
                             mounts=mounts[:2])
        slave_info = _exec_text(env, slave_only, "cat /proc/self/mountinfo")
        assert _optional_fields(slave_info, "/mnt/private") == [], slave_info
        slave_fields = _optional_fields(slave_info, "/mnt/slave")
        assert [f.split(":")[0] for f in slave_fields] == ["master"], slave_info

        # Host to container: a mount made on the host after start shows inside.
        _run("mount", "-t", "tmpfs", "-o", "size=1m", "crid-prop", str(shared / "slave" / "sub"))
        (shared / "slave" / "sub" / "hello").write_text("from the host\n")
        for target in (container_id, slave_only):
            assert _exec_text(env, target, "cat /mnt/slave/sub/hello") == "from the host\n"
        _run("mount", "-t", "tmpfs", "-o", "size=1m", "crid-prop",
             str(shared / "bidi" / "from-host"))
        (shared / "bidi" / "from-host" / "f").write_text("host\n")
        assert _exec_text(env, container_id, "cat /mnt/bidi/from-host/f") == "host\n"

        # Bidirectional: a mount made inside shows on the host; a slave's does not.
        _exec_text(env, container_id,
                   "mount -t tmpfs -o size=1m inner /mnt/bidi/inner && "
                   "echo inside > /mnt/bidi/inner/f && "
                   "mkdir -p /mnt/slave/own && mount -t tmpfs -o size=1m own /mnt/slave/own")
        assert (shared / "bidi" / "inner" / "f").read_text() == "inside\n"
        assert str(shared / "slave" / "own") not in nsutil.mounts_under(shared)

        # Private: a host mount below it does not reach the container.
        (private / "sub").mkdir()
        _run("mount", "-t", "tmpfs", "-o", "size=1m", "crid-prop", str(private / "sub"))
        (private / "sub" / "hidden").write_text("x\n")
        for target in (container_id, slave_only):
            assert _exec_text(env, target, "ls /mnt/private/sub") == ""

        # Read-only: readable, not writable.
        assert _exec_text(env, container_id, "cat /mnt/ro/f") == "ro\n"
        response = env.exec_sync(container_id, ["/bin/sh", "-c", "echo x > /mnt/ro/g"],
                                 timeout=10)
        assert response.exit_code != 0 and b"Read-only file system" in response.stderr
        assert not (readonly / "g").exists()

        env.remove_pod(sandbox_id)
    finally:
        nsutil.unmount_all(nsutil.mounts_under(base))
    assert nsutil.mounts_under(base) == []
    assert env.list() == []
    env.assert_clean()


def test_bidirectional_needs_a_shared_source(env, handler):
    pb = env.pb
    sandbox_id, sandbox_config = env.run_pod("propfail", handler)
    source = env.crid.dir / "not-shared"
    source.mkdir()
    for value, word in (("PROPAGATION_BIDIRECTIONAL", "shared"),
                        ("PROPAGATION_HOST_TO_CONTAINER", "slave")):
        mount = pb.Mount(container_path="/mnt/x", host_path=str(source),
                         propagation=pb.MountPropagation.Value(value))
        error = cridtest.rpc_error(
            env.create, sandbox_id, sandbox_config,
            env.container_config("c", ["/bin/true"], mounts=[mount]))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
        assert word in error.details(), error.details()
    assert env.list() == []
    finish(env, [sandbox_id])


def test_recursive_read_only_mount(env, handler):
    """An rro mount makes what is mounted below its source read-only too,
    on crun as on runc: crid binds a copy of the source it made read-only
    throughout (crun 1.8 has no rro option; this used to be refused on
    crun).  rro without readonly, or with propagation, is refused."""
    pb = env.pb
    base = env.crid.dir / "rro"
    (base / "sub").mkdir(parents=True)
    sandbox_id, sandbox_config = env.run_pod("rro", handler)
    mount = pb.Mount(container_path="/mnt/rro", host_path=str(base), readonly=True,
                     recursive_read_only=True)
    config = env.container_config("rro", ["/bin/sleep", "1000"], mounts=[mount])
    try:
        _run("mount", "-t", "tmpfs", "-o", "size=1m", "crid-rro", str(base / "sub"))
        container_id = env.create(sandbox_id, sandbox_config, config)
        env.start(container_id)
        for path in ("/mnt/rro/sub/f", "/mnt/rro/f"):
            response = env.exec_sync(container_id,
                                     ["/bin/sh", "-c", f"echo x > {path}"], timeout=10)
            assert response.exit_code != 0 and b"Read-only file system" in response.stderr, path
        # The host's mount below the source stays writable, and the host
        # can take it away while the container runs (crid keeps no copy
        # of it once the runtime has bound it: critest removes it so).
        (base / "sub" / "host-file").write_text("host")
        _run("umount", "-l", str(base / "sub"))
        (base / "sub").rmdir()
        for bad in (
            pb.Mount(container_path="/mnt/x", host_path=str(base), readonly=False,
                     recursive_read_only=True),
            pb.Mount(container_path="/mnt/x", host_path=str(base), readonly=True,
                     recursive_read_only=True,
                     propagation=pb.PROPAGATION_HOST_TO_CONTAINER),
        ):
            error = cridtest.rpc_error(
                env.create, sandbox_id, sandbox_config,
                env.container_config("rro-bad", ["/bin/sleep", "1000"], mounts=[bad]),
            )
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
            assert "recursive read-only" in error.details(), error.details()
        env.remove_pod(sandbox_id)
    finally:
        nsutil.unmount_all(nsutil.mounts_under(base))
    assert env.list() == []
    env.assert_clean()


# --------------------------------------------------------------------------
# Resources


def _resources_of(status):
    r = status.resources.linux
    return {
        "cpu_shares": r.cpu_shares, "cpu_quota": r.cpu_quota, "cpu_period": r.cpu_period,
        "memory_limit_in_bytes": r.memory_limit_in_bytes,
        "memory_swap_limit_in_bytes": r.memory_swap_limit_in_bytes,
        "cpuset_cpus": r.cpuset_cpus, "cpuset_mems": r.cpuset_mems,
    }


def _cgroup_resources(pid):
    return {
        "cpu_shares": int(cgroup_value(pid, "cpu", "cpu.shares")),
        "cpu_quota": int(cgroup_value(pid, "cpu", "cpu.cfs_quota_us")),
        "cpu_period": int(cgroup_value(pid, "cpu", "cpu.cfs_period_us")),
        "memory_limit_in_bytes": int(cgroup_value(pid, "memory", "memory.limit_in_bytes")),
        "memory_swap_limit_in_bytes": int(
            cgroup_value(pid, "memory", "memory.memsw.limit_in_bytes")),
        "cpuset_cpus": cgroup_value(pid, "cpuset", "cpuset.cpus"),
        "cpuset_mems": cgroup_value(pid, "cpuset", "cpuset.mems"),
    }


def test_resources_and_update(env, handler):
    pb = env.pb
    sandbox_id, sandbox_config = env.run_pod("res", handler)
    created = {
        "cpu_shares": 512, "cpu_quota": 50000, "cpu_period": 100000,
        "memory_limit_in_bytes": 64 * MiB, "memory_swap_limit_in_bytes": 64 * MiB,
        "cpuset_cpus": "0", "cpuset_mems": "0",
    }
    container_id = env.run(sandbox_id, sandbox_config, "res", ["/bin/sleep", "1000"],
                           linux=pb.LinuxContainerConfig(
                               resources=pb.LinuxContainerResources(**created)))
    pid = env.info(container_id)["pid"]
    assert _cgroup_resources(pid) == created
    assert _resources_of(env.status(container_id).status) == created
    # Inside, the container sees its own limit too.
    assert str(64 * MiB) in _exec_text(
        env, container_id, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes")

    cpus = "0-1" if os.cpu_count() >= 2 else "0"
    updated = {
        "cpu_shares": 256, "cpu_quota": 20000, "cpu_period": 50000,
        "memory_limit_in_bytes": 128 * MiB, "memory_swap_limit_in_bytes": 128 * MiB,
        "cpuset_cpus": cpus, "cpuset_mems": "0",
    }
    env.crid.runtime.UpdateContainerResources(
        pb.UpdateContainerResourcesRequest(
            container_id=container_id, linux=pb.LinuxContainerResources(**updated)),
        timeout=30)
    assert _cgroup_resources(pid) == updated
    assert _resources_of(env.status(container_id).status) == updated

    # A partial update changes what it names and keeps the rest.
    env.crid.runtime.UpdateContainerResources(
        pb.UpdateContainerResourcesRequest(
            container_id=container_id, linux=pb.LinuxContainerResources(cpu_shares=300)),
        timeout=30)
    partial = dict(updated, cpu_shares=300)
    assert _cgroup_resources(pid) == partial
    assert _resources_of(env.status(container_id).status) == partial

    # A refused update changes nothing.
    error = cridtest.rpc_error(
        env.crid.runtime.UpdateContainerResources,
        pb.UpdateContainerResourcesRequest(
            container_id=container_id,
            linux=pb.LinuxContainerResources(cpu_shares=900, cpuset_cpus="4095")),
        timeout=30)
    assert error.code() != grpc.StatusCode.OK
    assert _resources_of(env.status(container_id).status) == partial
    assert _cgroup_resources(pid) == partial

    # A container updated before it starts runs with the update.
    early = env.create(sandbox_id, sandbox_config, env.container_config(
        "early", ["/bin/sleep", "1000"],
        linux=pb.LinuxContainerConfig(resources=pb.LinuxContainerResources(**created))))
    env.crid.runtime.UpdateContainerResources(
        pb.UpdateContainerResourcesRequest(
            container_id=early, linux=pb.LinuxContainerResources(**updated)),
        timeout=30)
    assert env.state(early) == pb.CONTAINER_CREATED
    assert _resources_of(env.status(early).status) == updated
    env.start(early)
    assert _cgroup_resources(env.info(early)["pid"]) == updated

    # Resources the runtime cannot apply fail the create, which leaves
    # nothing; hugepage limits reach their cgroup file.
    before = sorted(os.listdir(env.crid.root / "containers"))
    error = cridtest.rpc_error(env.create, sandbox_id, sandbox_config, env.container_config(
        "badcpus", ["/bin/sleep", "1000"],
        linux=pb.LinuxContainerConfig(resources=pb.LinuxContainerResources(cpuset_cpus="4095"))))
    assert error.code() != grpc.StatusCode.OK
    assert sorted(os.listdir(env.crid.root / "containers")) == before
    assert "badcpus" not in {c.metadata.name for c in env.list()}
    huge = env.run(sandbox_id, sandbox_config, "huge", ["/bin/sleep", "1000"],
                   linux=pb.LinuxContainerConfig(resources=pb.LinuxContainerResources(
                       hugepage_limits=[pb.HugepageLimit(page_size="2MB", limit=4 * MiB)])))
    assert cgroup_value(env.info(huge)["pid"], "hugetlb", "hugetlb.2MB.limit_in_bytes") == str(
        4 * MiB)
    status = env.status(huge).status
    assert [(h.page_size, h.limit) for h in status.resources.linux.hugepage_limits] == [
        ("2MB", 4 * MiB)]

    # The update is state: it survives a restart of crid.
    env.crid.stop()
    env.crid.start()
    assert _resources_of(env.status(container_id).status) == partial
    assert _cgroup_resources(pid) == partial

    # An exited container cannot be updated.
    env.stop(container_id)
    error = cridtest.rpc_error(
        env.crid.runtime.UpdateContainerResources,
        pb.UpdateContainerResourcesRequest(
            container_id=container_id, linux=pb.LinuxContainerResources(cpu_shares=100)),
        timeout=30)
    assert error.code() != grpc.StatusCode.OK
    assert _resources_of(env.status(container_id).status) == partial
    finish(env, [sandbox_id])


# --------------------------------------------------------------------------
# OOM


def test_oom_killed(env, handler):
    pb = env.pb
    sandbox_id, sandbox_config = env.run_pod("oom", handler)
    limit = 20 * MiB
    resources = pb.LinuxContainerResources(memory_limit_in_bytes=limit,
                                           memory_swap_limit_in_bytes=limit)
    # tail keeps the last ten lines of a file without any newline: all of it.
    hog = env.run(sandbox_id, sandbox_config, "hog", ["/bin/busybox", "tail", "/dev/zero"],
                  linux=pb.LinuxContainerConfig(resources=resources))
    # Below the limit nothing happens.
    modest = env.run(sandbox_id, sandbox_config, "modest",
                     ["/bin/sh", "-c", "head -c 5000000 /dev/zero | tail -c 10 >/dev/null"],
                     linux=pb.LinuxContainerConfig(resources=resources))
    # An exec'd command killed by the OOM killer: 137 for the call, and the
    # container goes on.
    sleeper = env.run(sandbox_id, sandbox_config, "sleeper", ["/bin/sleep", "1000"],
                      linux=pb.LinuxContainerConfig(resources=resources))
    response = env.exec_sync(sleeper, ["/bin/busybox", "tail", "/dev/zero"], timeout=30)
    assert response.exit_code == 137, response
    assert env.state(sleeper) == pb.CONTAINER_RUNNING
    assert _exec_text(env, sleeper, "echo alive") == "alive\n"
    env.wait_state(hog, pb.CONTAINER_EXITED, timeout=30)
    env.wait_state(modest, pb.CONTAINER_EXITED, timeout=30)
    status = env.status(hog).status
    assert (status.exit_code, status.reason) == (137, "OOMKilled"), status
    status = env.status(modest).status
    assert (status.exit_code, status.reason) == (0, "Completed"), status
    # Also after a restart of crid.
    env.crid.stop()
    env.crid.start()
    status = env.status(hog).status
    assert (status.exit_code, status.reason) == (137, "OOMKilled"), status
    finish(env, [sandbox_id])


# --------------------------------------------------------------------------
# Logs


def test_fifty_megabytes_of_log(env, handler):
    pb = env.pb
    sandbox_id, sandbox_config = env.run_pod("biglog", handler)
    count = 480000  # lines of ~108 bytes: about 50 MB
    script = ('awk \'BEGIN { f = sprintf("%100s", ""); gsub(/ /, "x", f); '
              f'for (i = 1; i <= {count}; i++) print i, f }}\'')
    container_id = env.run(sandbox_id, sandbox_config, "writer", ["/bin/sh", "-c", script])
    env.wait_state(container_id, pb.CONTAINER_EXITED, timeout=60)
    status = env.status(container_id).status
    assert status.exit_code == 0
    assert os.path.getsize(status.log_path) > 50_000_000
    lines = joined_stream(status.log_path)
    assert len(lines) == count, (len(lines), lines[:2], lines[-2:])
    filler = "x" * 100
    for number, line in enumerate(lines, 1):
        if line != f"{number} {filler}":
            raise AssertionError(f"line {number} is {line[:120]!r}")
    assert joined_stream(status.log_path, "stderr") == []

    # One line of 3 MiB, one on stderr, and a last one without a newline:
    # the long ones come as partial records, the last stays partial.
    script = ("head -c 3145728 /dev/zero | tr '\\0' a; echo; "
              "head -c 1048576 /dev/zero | tr '\\0' b >&2; echo >&2; printf end")
    long_id = env.run(sandbox_id, sandbox_config, "long", ["/bin/sh", "-c", script])
    env.wait_state(long_id, pb.CONTAINER_EXITED, timeout=30)
    path = env.status(long_id).status.log_path
    # (The order between the two streams is the monitor's reading order.)
    assert joined_stream(path, "stderr") == ["b" * 1048576]
    stdout = [r for r in log_lines(path) if r[0] == "stdout"]
    assert stdout[-1] == ("stdout", "P", "end"), stdout[-1][:2]
    assert "".join(c for _, _, c in stdout[:-1]) == "a" * 3145728
    assert [tag for _, tag, _ in stdout[:-1]][-1] == "F"
    assert len(stdout) > 2, "a 3 MiB line came in one record"
    finish(env, [sandbox_id])


# --------------------------------------------------------------------------
# ExecSync


def test_hundred_concurrent_exec_sync(env, handler):
    sandbox_id, sandbox_config = env.run_pod("manyexec", handler)
    container_id = env.run(sandbox_id, sandbox_config, "target", ["/bin/sleep", "1000"])
    init = env.info(container_id)["pid"]
    count = 100

    def one(i):
        response = env.exec_sync(container_id,
                                 ["/bin/sh", "-c", f"echo {i}; echo e{i} >&2; exit {i % 50}"],
                                 timeout=60)
        return i, response

    with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
        results = list(pool.map(one, range(count)))
    wrong = [
        (i, r.stdout, r.stderr, r.exit_code) for i, r in results
        if (r.stdout, r.stderr, r.exit_code) != (f"{i}\n".encode(), f"e{i}\n".encode(), i % 50)
    ]
    assert not wrong, f"{len(wrong)} of {count} answers are wrong: {wrong[:5]}"

    # Nothing of the execs remains: the container's cgroup holds its init
    # only, and the monitor has no other child.
    procs = container_cgroup_dir(init, "pids") / "cgroup.procs"
    cridtest.wait_for(lambda: procs.read_text().split() == [str(init)], timeout=5,
                      message=f"only {init} in {procs}")
    monitor = int((env.crid.state_dir / "conmon" / container_id / "conmon.pid").read_text())
    children = [
        pid for pid in os.listdir("/proc") if pid.isdigit() and _ppid(pid) == monitor
    ]
    assert children == [str(init)], {pid: nsutil._cmdline(int(pid)) for pid in children}
    runtimes = [cmd for cmd in nsutil.processes_of(env.crid.dir).values() if " exec " in cmd]
    assert not runtimes, runtimes
    # crid reaped every runtime it ran and removed their scratch dirs.
    zombies = [pid for pid in os.listdir("/proc")
               if pid.isdigit() and _ppid(pid) == env.crid.pid and _state(pid) == "Z"]
    assert not zombies, zombies
    scratch = [name for name in os.listdir(env.crid.state_dir / "conmon" / container_id)
               if name.startswith("exec")]
    assert not scratch, scratch
    assert env.state(container_id) == env.pb.CONTAINER_RUNNING
    finish(env, [sandbox_id])


def _state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def test_exec_sync_output_cap(env, handler):
    """Each stream is capped at 16 MiB and the reply must fit kubelet's
    16 MiB message limit: the answer is the first bytes of the output,
    just under 16 MiB, and the call succeeds."""
    sandbox_id, sandbox_config = env.run_pod("execcap", handler)
    container_id = env.run(sandbox_id, sandbox_config, "target", ["/bin/sleep", "1000"])
    # 20 MiB of numbered 64-byte lines.
    script = ('awk \'BEGIN { for (i = 0; i < 327680; i++) printf "%063d\\n", i }\'')
    response = env.exec_sync(container_id, ["/bin/sh", "-c", script], timeout=60)
    assert response.exit_code == 0
    assert response.stderr == b""
    size = len(response.stdout)
    assert 16 * MiB - 4096 <= size <= 16 * MiB, size
    lines = response.stdout.split(b"\n")
    for i, line in enumerate(lines[:-1]):
        if line != b"%063d" % i:
            raise AssertionError(f"line {i} is {line[:80]!r}")
    assert (b"%063d\n" % (len(lines) - 1)).startswith(lines[-1])
    # Both streams full: each is capped, together they still fit one reply.
    both = env.exec_sync(container_id, ["/bin/sh", "-c", f"{script} >&2; {script}"], timeout=60)
    assert both.exit_code == 0
    total = len(both.stdout) + len(both.stderr)
    assert 16 * MiB - 4096 <= total <= 16 * MiB, (len(both.stdout), len(both.stderr))
    assert response.stdout.startswith(both.stdout)
    assert response.stdout.startswith(both.stderr)
    # The container is unharmed and the next exec answers normally.
    assert _exec_text(env, container_id, "echo ok") == "ok\n"
    finish(env, [sandbox_id])


# --------------------------------------------------------------------------
# Terminal and stdin


def test_tty_and_stdin(env, handler):
    pb = env.pb
    sandbox_id, sandbox_config = env.run_pod("tty", handler)
    script = ("tty; [ -t 0 ] && [ -t 1 ] && echo ISATTY; stty size; echo ERR >&2; "
              "sleep 1000")
    tty = env.run(sandbox_id, sandbox_config, "tty", ["/bin/sh", "-c", script], tty=True)
    log_path = env.status(tty).status.log_path

    def lines():
        return [content.rstrip("\r") for _, _, content in log_lines(log_path)]

    cridtest.wait_for(lambda: "ERR" in lines(), timeout=10, message="terminal output in the log")
    out = lines()
    assert re.fullmatch(r"/dev/pts/\d+", out[0]), out
    assert "ISATTY" in out
    # A terminal has one stream: everything is logged as stdout.
    assert {stream for stream, _, _ in log_lines(log_path)} == {"stdout"}
    # ExecSync next to it has pipes of its own, and separate streams.
    response = env.exec_sync(tty, ["/bin/sh", "-c", "[ -t 1 ] || echo pipe; echo err >&2"],
                             timeout=10)
    assert (response.stdout, response.stderr, response.exit_code) == (b"pipe\n", b"err\n", 0)

    # Without a terminal: pipes.
    plain = env.run(sandbox_id, sandbox_config, "plain",
                    ["/bin/sh", "-c", "[ -t 1 ] || echo NOTTY; sleep 1000"])
    plain_log = env.status(plain).status.log_path
    cridtest.wait_for(lambda: ("stdout", "F", "NOTTY") in log_lines(plain_log), timeout=10,
                      message="NOTTY in the log")

    # stdin: with an open stdin cat waits for input; without, it sees EOF.
    waiting = env.run(sandbox_id, sandbox_config, "stdin", ["/bin/cat"], stdin=True,
                      stdin_once=True)
    closed = env.run(sandbox_id, sandbox_config, "nostdin", ["/bin/cat"])
    env.wait_state(closed, pb.CONTAINER_EXITED)
    assert env.status(closed).status.exit_code == 0
    time.sleep(0.5)
    assert env.state(waiting) == pb.CONTAINER_RUNNING
    assert os.readlink(f"/proc/{env.info(waiting)['pid']}/fd/0").startswith("pipe:")
    both = env.run(sandbox_id, sandbox_config, "both", ["/bin/sh", "-c", "[ -t 0 ] && cat"],
                   stdin=True, tty=True)
    time.sleep(0.5)
    assert env.state(both) == pb.CONTAINER_RUNNING
    finish(env, [sandbox_id])


# --------------------------------------------------------------------------
# Command, args and environment against the image


ENTRY_IMAGE = "localhost/crid-test/entry:1"
ENTRY_CONFIG = {
    "Env": ["PATH=/bin", "FROM_IMAGE=image", "OVERRIDE=image", "HOSTNAME=image-host"],
    "Entrypoint": ["/bin/echo", "entry"],
    "Cmd": ["cmd1", "cmd2"],
    "WorkingDir": "/tmp",
}


def _import_entry_image(env):
    """Adds an image with an Entrypoint and a Cmd (crid must be stopped for
    an import)."""
    image = build_images.Image([build_images.busybox_base_layer()], config=ENTRY_CONFIG)
    layout = env.crid.dir / "entry-layout"
    build_images.write_oci_layout(layout, {ENTRY_IMAGE: image})
    tarball = env.crid.dir / "entry.tar"
    with tarfile.open(tarball, "w") as tar:
        for entry in sorted(os.listdir(layout)):
            tar.add(layout / entry, arcname=entry)
    env.crid.stop()
    result = env.crid.cli("image", "import", str(tarball), timeout=60)
    assert result.returncode == 0, result.stderr
    env.crid.start()
    return image


def test_command_args_and_env_merge(env, handler):
    pb = env.pb
    image = _import_entry_image(env)
    sandbox_id, sandbox_config = env.run_pod("merge", handler)

    def output(name, command=None, args=None, **kwargs):
        config = env.container_config(name, command, image=image.id, **kwargs)
        config.args.extend(args or [])
        container_id = env.create(sandbox_id, sandbox_config, config)
        env.start(container_id)
        env.wait_state(container_id, pb.CONTAINER_EXITED)
        status = env.status(container_id).status
        assert status.exit_code == 0, status
        return joined_stream(status.log_path)

    assert output("plain") == ["entry cmd1 cmd2"]
    assert output("args", args=["a1", "a2"]) == ["entry a1 a2"]
    assert output("command", command=["/bin/echo", "own"]) == ["own"]
    assert output("both", command=["/bin/echo", "own"], args=["a1"]) == ["own a1"]
    assert output("cwd", command=["/bin/sh", "-c", "pwd"]) == ["/tmp"]
    assert output("workdir", command=["/bin/sh", "-c", "pwd"], working_dir="/home") == ["/home"]

    envs = [pb.KeyValue(key="OVERRIDE", value=b"cri"), pb.KeyValue(key="FROM_CRI", value=b"a=b c")]
    lines = output("env", command=["/bin/env"], envs=envs)
    variables = dict(line.split("=", 1) for line in lines)
    assert variables["FROM_IMAGE"] == "image"
    assert variables["OVERRIDE"] == "cri"
    assert variables["FROM_CRI"] == "a=b c"
    assert variables["PATH"] == "/bin"
    # HOSTNAME comes first, so the image could override it and did.
    assert variables["HOSTNAME"] == "image-host"
    assert len([line for line in lines if line.startswith("OVERRIDE=")]) == 1

    # The default image: no HOSTNAME of its own, so the pod's hostname.
    container_id = env.run(sandbox_id, sandbox_config, "hostenv", ["/bin/env"])
    env.wait_state(container_id, pb.CONTAINER_EXITED)
    variables = dict(line.split("=", 1)
                     for line in joined_stream(env.status(container_id).status.log_path))
    assert variables["HOSTNAME"] == sandbox_config.hostname == "merge"
    assert variables["CRID_IMAGE_ENV"] == "1"
    finish(env, [sandbox_id])
