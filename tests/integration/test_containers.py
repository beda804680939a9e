"""Containers end to end: CreateContainer, StartContainer, StopContainer,
RemoveContainer, ContainerStatus, ListContainers, ExecSync,
ReopenContainerLog, against real crun and runc, crid-conmon and the pod
sandboxes of test_sandbox.py (same isolation: a network namespace per
test, a private bridge, a cgroup parent of its own).

The image is built in the test from busybox-static
(tests/fixtures/build_images.py), written as an OCI layout tarball and
imported with `crid image import` before crid starts: no registry needed.

After each test every container and sandbox is removed and nothing may
remain: no container process, overlay mount, cgroup, runtime state,
monitor files or exit files.
"""

import json
import os
import re
import signal
import sys
import tarfile
import time
from pathlib import Path

import grpc
import pytest

import cridtest
import netns as nsutil
from test_sandbox import HANDLERS, PodEnv

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import build_images  # noqa: E402

RPC_TIMEOUT = 30.0
IMAGE_NAME = "localhost/crid-test/busybox:1"
IMAGE_CONFIG = {
    "Env": ["PATH=/bin", "CRID_IMAGE_ENV=1"],
    "Cmd": ["/bin/sh", "-c", "echo image default"],
    "WorkingDir": "/",
}


def build_image_tarball(directory, extra_images=None):
    """The busybox image and extra_images ({tag: Image}) in one tarball."""
    image = build_images.Image([build_images.busybox_base_layer()], config=IMAGE_CONFIG)
    layout = Path(directory) / "layout"
    build_images.write_oci_layout(layout, {IMAGE_NAME: image, **(extra_images or {})})
    tarball = Path(directory) / "busybox.tar"
    with tarfile.open(tarball, "w") as tar:
        for entry in sorted(os.listdir(layout)):
            tar.add(layout / entry, arcname=entry)
    return image, tarball


class ContainerEnv:
    """A PodEnv with the busybox image (and extra_images) imported, and
    container helpers."""

    def __init__(self, podenv_factory, extra_images=None, config=None):
        self.pod = podenv_factory(start=False, **({"config": config} if config else {}))
        self.crid = self.pod.crid
        self.pb = self.pod.pb
        self.image, tarball = build_image_tarball(self.crid.dir, extra_images)
        result = self.crid.cli("image", "import", str(tarball), timeout=60)
        assert result.returncode == 0, f"import failed: {result.stderr}"
        self.crid.start()
        self.container_ids = set()

    # -- requests ---------------------------------------------------------

    def run_pod(self, name, handler):
        config = self.pod.pod_config(name, uid=f"uid-{name}-{handler}")
        sandbox_id = self.pod.run_pod(config, handler=handler)
        return sandbox_id, config

    def container_config(self, name, command=None, attempt=0, labels=None, annotations=None,
                         image=None, **kwargs):
        pb = self.pb
        config = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name, attempt=attempt),
            image=pb.ImageSpec(image=image or self.image.id, user_specified_image=IMAGE_NAME),
            command=command or [],
            log_path=f"{name}/{attempt}.log",
            **kwargs,
        )
        for key, value in (labels or {}).items():
            config.labels[key] = value
        for key, value in (annotations or {}).items():
            config.annotations[key] = value
        return config

    def create(self, sandbox_id, sandbox_config, config):
        response = self.crid.runtime.CreateContainer(
            self.pb.CreateContainerRequest(
                pod_sandbox_id=sandbox_id, config=config, sandbox_config=sandbox_config
            ),
            timeout=RPC_TIMEOUT,
        )
        assert response.container_id
        self.container_ids.add(response.container_id)
        return response.container_id

    def start(self, container_id):
        self.crid.runtime.StartContainer(
            self.pb.StartContainerRequest(container_id=container_id), timeout=RPC_TIMEOUT
        )

    def run(self, sandbox_id, sandbox_config, name, command, **kwargs):
        container_id = self.create(
            sandbox_id, sandbox_config, self.container_config(name, command, **kwargs)
        )
        self.start(container_id)
        return container_id

    def stop(self, container_id, timeout=0):
        self.crid.runtime.StopContainer(
            self.pb.StopContainerRequest(container_id=container_id, timeout=timeout),
            timeout=RPC_TIMEOUT + timeout,
        )

    def remove(self, container_id):
        self.crid.runtime.RemoveContainer(
            self.pb.RemoveContainerRequest(container_id=container_id), timeout=RPC_TIMEOUT
        )

    def status(self, container_id, verbose=False):
        return self.crid.runtime.ContainerStatus(
            self.pb.ContainerStatusRequest(container_id=container_id, verbose=verbose),
            timeout=RPC_TIMEOUT,
        )

    def state(self, container_id):
        return self.status(container_id).status.state

    def wait_state(self, container_id, state, timeout=10.0):
        return cridtest.wait_for(
            lambda: self.state(container_id) == state,
            timeout=timeout,
            message=f"container {container_id[:12]} to reach state {state}",
        )

    def exec_sync(self, container_id, cmd, timeout=0):
        return self.crid.runtime.ExecSync(
            self.pb.ExecSyncRequest(container_id=container_id, cmd=cmd, timeout=timeout),
            timeout=RPC_TIMEOUT + timeout,
        )

    def list(self, **filter_fields):
        pb = self.pb
        request = pb.ListContainersRequest()
        if filter_fields:
            request.filter.CopyFrom(pb.ContainerFilter())
            if "id" in filter_fields:
                request.filter.id = filter_fields["id"]
            if "pod_sandbox_id" in filter_fields:
                request.filter.pod_sandbox_id = filter_fields["pod_sandbox_id"]
            if "state" in filter_fields:
                request.filter.state.CopyFrom(pb.ContainerStateValue(state=filter_fields["state"]))
            for key, value in filter_fields.get("labels", {}).items():
                request.filter.label_selector[key] = value
        return list(self.crid.runtime.ListContainers(request, timeout=RPC_TIMEOUT).containers)

    def info(self, container_id):
        return json.loads(self.status(container_id, verbose=True).info["info"])

    # -- leaks ------------------------------------------------------------

    def leaks(self):
        found = self.pod.leaks()
        for directory in (
            self.crid.root / "containers",
            self.crid.state_dir / "conmon",
            self.crid.state_dir / "exits",
        ):
            if directory.is_dir() and any(directory.iterdir()):
                found.append(f"{directory} not empty: {sorted(os.listdir(directory))}")
        cgroups = nsutil.cgroups_naming(self.container_ids)
        if cgroups:
            found.append(f"container cgroups: {cgroups}")
        return found

    def assert_clean(self):
        found = self.leaks()
        assert not found, "leaks after removal:\n  " + "\n  ".join(found)

    def remove_pod(self, sandbox_id):
        self.pod.stop_and_remove(sandbox_id)


@pytest.fixture(params=HANDLERS)
def handler(request):
    return request.param


@pytest.fixture
def env(podenv_factory):
    return ContainerEnv(podenv_factory)


# Re-exported so pytest finds the fixture PodEnv's factory needs.
from test_sandbox import podenv_factory  # noqa: E402,F401



def states(pb):
    return (
        pb.CONTAINER_CREATED,
        pb.CONTAINER_RUNNING,
        pb.CONTAINER_EXITED,
    )


def log_records(path):
    """[(stream, tag, content)] of a CRI log file."""
    out = []
    for line in Path(path).read_text().splitlines():
        timestamp, stream, tag, *content = line.split(" ", 3)
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}[+-]\d\d:\d\d$", timestamp), line
        out.append((stream, tag, content[0] if content else ""))
    return out


# --------------------------------------------------------------------------


def test_lifecycle_and_exit_codes(env, handler):
    pb = env.pb
    CREATED, RUNNING, EXITED = states(pb)
    sandbox_id, sandbox_config = env.run_pod("life", handler)
    labels = {"io.kubernetes.container.name": "ok", "tier": "x\u00e9"}
    annotations = {"note": "b y t e s \u2603", "empty": ""}
    host_dir = env.crid.dir / "hostdir"
    host_dir.mkdir()
    (host_dir / "file").write_text("from host\n")
    config = env.container_config(
        "ok",
        ["/bin/sh", "-c", "cat /mnt/host/file; sleep 1; exit 0"],
        labels=labels,
        annotations=annotations,
        mounts=[pb.Mount(container_path="/mnt/host", host_path=str(host_dir), readonly=True)],
    )
    ok = env.create(sandbox_id, sandbox_config, config)
    status = env.status(ok).status
    assert status.state == CREATED
    assert status.created_at > 0 and status.started_at == 0
    assert status.image.image == IMAGE_NAME
    assert status.image_ref == env.image.id and status.image_id == env.image.id
    assert dict(status.labels) == labels and dict(status.annotations) == annotations
    assert status.log_path == str(env.pod.log_root / f"crid-test_life_0" / "ok" / "0.log")
    assert [(m.container_path, m.host_path, m.readonly) for m in status.mounts] == [
        ("/mnt/host", str(host_dir), True)
    ]

    env.start(ok)
    assert env.state(ok) == RUNNING
    info = env.info(ok)
    assert info["pid"] > 0 and info["runtimeSpec"]["process"]["args"][0] == "/bin/sh"
    env.wait_state(ok, EXITED)
    status = env.status(ok).status
    assert status.exit_code == 0 and status.reason == "Completed"
    assert status.started_at >= status.created_at and status.finished_at >= status.started_at
    assert ("stdout", "F", "from host") in log_records(status.log_path)

    failing = env.run(sandbox_id, sandbox_config, "fail", ["/bin/sh", "-c", "exit 1"])
    # The container's init cannot SIGKILL itself (pid 1 of its namespace):
    # the signal comes from the host, as from the OOM killer.
    killed = env.run(sandbox_id, sandbox_config, "killed", ["/bin/sleep", "1000"])
    os.kill(env.info(killed)["pid"], signal.SIGKILL)
    running = env.run(sandbox_id, sandbox_config, "sleeper", ["/bin/sleep", "1000"],
                      labels={"tier": "sleep"})
    env.wait_state(failing, EXITED)
    env.wait_state(killed, EXITED)
    assert (env.status(failing).status.exit_code, env.status(failing).status.reason) == (1, "Error")
    assert env.status(killed).status.exit_code == 137

    # Starting twice is an error; only CREATED starts.
    assert cridtest.rpc_error(env.start, ok).code() != grpc.StatusCode.OK

    # List and its filters.
    ids = {c.id for c in env.list()}
    assert {ok, failing, killed, running} <= ids
    assert [c.id for c in env.list(state=RUNNING)] == [running]
    assert [c.id for c in env.list(id=running[:10])] == [running]
    assert [c.id for c in env.list(labels={"tier": "sleep"})] == [running]
    assert {c.id for c in env.list(pod_sandbox_id=sandbox_id)} == {ok, failing, killed, running}
    item = [c for c in env.list() if c.id == ok][0]
    assert item.image.image == IMAGE_NAME and item.image_ref == env.image.id
    assert dict(item.labels) == labels and dict(item.annotations) == annotations

    # The image is in use.
    error = cridtest.rpc_error(
        env.crid.image.RemoveImage,
        pb.RemoveImageRequest(image=pb.ImageSpec(image=env.image.id)),
        timeout=RPC_TIMEOUT,
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION

    # Name reservation per (pod, name, attempt).
    error = cridtest.rpc_error(
        env.create, sandbox_id, sandbox_config, env.container_config("ok", ["/bin/true"])
    )
    assert "reserved" in error.details()

    # Stop is idempotent, remove too, and unknown ids are fine for both.
    env.stop(running, timeout=0)
    assert env.status(running).status.exit_code == 137
    env.stop(running, timeout=0)
    for container_id in (ok, failing, killed, running):
        env.remove(container_id)
        env.remove(container_id)
    env.stop("0" * 64)
    env.remove("0" * 64)
    assert cridtest.rpc_error(env.status, ok).code() == grpc.StatusCode.NOT_FOUND
    env.remove_pod(sandbox_id)
    env.assert_clean()


def test_runtime_error_surfaces(env, handler):
    sandbox_id, sandbox_config = env.run_pod("rterr", handler)
    config = env.container_config("bad", ["/does/not/exist"])
    try:
        container_id = env.create(sandbox_id, sandbox_config, config)
    except grpc.RpcError as e:
        assert "/does/not/exist" in e.details() or "no such file" in e.details().lower(), e
    else:
        error = cridtest.rpc_error(env.start, container_id)
        assert "exist" in error.details() or "no such file" in error.details().lower(), error
        env.remove(container_id)
    env.remove_pod(sandbox_id)
    env.assert_clean()


def test_logs_partial_lines_and_reopen(env, handler):
    pb = env.pb
    _, RUNNING, EXITED = states(pb)
    sandbox_id, sandbox_config = env.run_pod("logs", handler)
    script = "echo out; echo err >&2; printf partial; sleep 1; echo; sleep 1000"
    container_id = env.run(sandbox_id, sandbox_config, "logger", ["/bin/sh", "-c", script])
    log_path = env.status(container_id).status.log_path
    cridtest.wait_for(
        lambda: ("stdout", "F", "") in log_records(log_path), timeout=10, message="log lines"
    )
    records = log_records(log_path)
    assert ("stdout", "F", "out") in records
    assert ("stderr", "F", "err") in records
    assert ("stdout", "P", "partial") in records

    # Rotation as kubelet does it: rename, then ReopenContainerLog.
    os.rename(log_path, log_path + ".1")
    env.crid.runtime.ReopenContainerLog(
        pb.ReopenContainerLogRequest(container_id=container_id), timeout=RPC_TIMEOUT
    )
    assert os.path.exists(log_path)
    env.stop(container_id, timeout=0)
    error = cridtest.rpc_error(
        env.crid.runtime.ReopenContainerLog,
        pb.ReopenContainerLogRequest(container_id=container_id),
        timeout=RPC_TIMEOUT,
    )
    assert error.code() != grpc.StatusCode.OK
    env.remove(container_id)
    env.remove_pod(sandbox_id)
    env.assert_clean()


def test_exec_sync(env, handler):
    pb = env.pb
    sandbox_id, sandbox_config = env.run_pod("exec", handler)
    container_id = env.run(sandbox_id, sandbox_config, "target", ["/bin/sleep", "1000"],
                           envs=[pb.KeyValue(key="FROM_CRI", value=b"yes")])
    response = env.exec_sync(
        container_id, ["/bin/sh", "-c", "echo $FROM_CRI $CRID_IMAGE_ENV; echo oops >&2; exit 3"]
    )
    assert response.stdout == b"yes 1\n"
    assert response.stderr == b"oops\n"
    assert response.exit_code == 3

    started = time.monotonic()
    response = env.exec_sync(container_id, ["/bin/sleep", "10"], timeout=1)
    elapsed = time.monotonic() - started
    assert elapsed < 2.5, f"ExecSync with timeout 1 took {elapsed:.1f} s"
    assert response.exit_code == -1 and b"timed out" in response.stderr
    # No sleep 10 left anywhere (neither running nor a zombie).
    time.sleep(0.2)
    leftovers = [
        pid for pid in nsutil.processes_of(env.crid.dir)
        if nsutil._cmdline(pid).startswith("/bin/sleep 10") or nsutil._cmdline(pid) == "sleep 10"
    ]
    assert not leftovers, leftovers
    sleeps = [p for p in os.listdir("/proc") if p.isdigit() and _cmd(p) == "/bin/sleep\x0010"]
    assert not sleeps, sleeps

    # Big output is capped, not an error.
    response = env.exec_sync(
        container_id, ["/bin/sh", "-c", "cat /bin/busybox /bin/busybox /bin/busybox >/dev/null; "
                       "i=0; while [ $i -lt 20 ]; do cat /bin/busybox; i=$((i+1)); done"]
    )
    assert response.exit_code == 0 and len(response.stdout) <= 16 * 1024 * 1024

    assert cridtest.rpc_error(env.exec_sync, "f" * 64, ["/bin/true"]).code() == (
        grpc.StatusCode.NOT_FOUND
    )
    env.stop(container_id, timeout=0)
    assert cridtest.rpc_error(env.exec_sync, container_id, ["/bin/true"]).code() != (
        grpc.StatusCode.OK
    )
    env.remove(container_id)
    env.remove_pod(sandbox_id)
    env.assert_clean()


def _cmd(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().rstrip(b"\0").decode(errors="replace")
    except OSError:
        return ""


def test_stop_signal_timeout_and_pod_stop(env, handler):
    pb = env.pb
    _, RUNNING, EXITED = states(pb)
    sandbox_id, sandbox_config = env.run_pod("stop", handler)
    polite = env.run(sandbox_id, sandbox_config, "polite",
                     ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"])
    stubborn = env.run(sandbox_id, sandbox_config, "stubborn",
                       ["/bin/sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"])
    usr1 = env.run(sandbox_id, sandbox_config, "usr1",
                   ["/bin/sh", "-c", "trap 'exit 5' USR1; while true; do sleep 0.1; done"],
                   stop_signal=pb.SIGUSR1)
    time.sleep(0.5)
    started = time.monotonic()
    env.stop(polite, timeout=10)
    assert time.monotonic() - started < 5
    assert env.status(polite).status.exit_code == 0

    env.stop(usr1, timeout=10)
    assert env.status(usr1).status.exit_code == 5

    started = time.monotonic()
    env.stop(stubborn, timeout=2)
    elapsed = time.monotonic() - started
    assert 1.8 <= elapsed < 8, elapsed
    assert env.status(stubborn).status.exit_code == 137

    # Stopping the pod stops what still runs in it.
    last = env.run(sandbox_id, sandbox_config, "last", ["/bin/sleep", "1000"])
    pid = env.info(last)["pid"]
    env.pod.stop(sandbox_id)
    assert env.state(last) == EXITED
    assert not cridtest.pid_alive(pid) or _cmd(pid) == ""
    env.pod.remove(sandbox_id)
    assert env.list() == []
    env.assert_clean()


def test_stop_right_after_start_reaches_a_late_handler(env, handler):
    """critest's "removing stopped container" flaked: a stop sent before
    the container's init (pid 1 of its pid namespace) installed its
    SIGTERM handler was dropped by the kernel, and the stop waited out its
    whole grace period.  crid sends the signal again once the handler is
    there."""
    sandbox_id, sandbox_config = env.run_pod("late", handler)
    late = env.run(sandbox_id, sandbox_config, "late",
                   ["/bin/sh", "-c", "sleep 1; trap 'exit 0' TERM; while true; do sleep 0.1; done"])
    started = time.monotonic()
    env.stop(late, timeout=30)
    assert time.monotonic() - started < 10
    assert env.status(late).status.exit_code == 0
    env.remove_pod(sandbox_id)
    env.assert_clean()


def test_restart_keeps_state_and_exits(env, handler):
    pb = env.pb
    _, RUNNING, EXITED = states(pb)
    sandbox_id, sandbox_config = env.run_pod("restart", handler)
    short = env.run(sandbox_id, sandbox_config, "short", ["/bin/sh", "-c", "sleep 2; exit 7"])
    long = env.run(sandbox_id, sandbox_config, "long", ["/bin/sleep", "1000"],
                   labels={"k": "v"})
    env.crid.signal(signal.SIGKILL)
    assert env.crid.wait() is not None
    time.sleep(3)  # "short" exits while crid is away
    env.crid.start()
    status = env.status(short).status
    assert status.state == EXITED and status.exit_code == 7 and status.reason == "Error"
    status = env.status(long).status
    assert status.state == RUNNING and dict(status.labels) == {"k": "v"}
    response = env.exec_sync(long, ["/bin/echo", "still here"])
    assert response.stdout == b"still here\n"
    env.stop(long, timeout=0)
    assert env.status(long).status.exit_code == 137
    env.remove_pod(sandbox_id)
    assert env.list() == []
    env.assert_clean()


def _exec_text(env, container_id, script):
    response = env.exec_sync(container_id, ["/bin/sh", "-c", script], timeout=10)
    assert response.exit_code == 0, response.stderr
    return response.stdout.decode()


def test_user_names_resolve_in_the_image(env, handler):
    pb = env.pb
    sandbox_id, sandbox_config = env.run_pod("users", handler)
    context = pb.LinuxContainerSecurityContext(run_as_username="app",
                                               supplemental_groups=[4242])
    container_id = env.run(sandbox_id, sandbox_config, "named", ["/bin/sleep", "1000"],
                           linux=pb.LinuxContainerConfig(security_context=context))
    assert _exec_text(env, container_id, "id -u; id -g").split() == ["1000", "1000"]
    assert "4242" in _exec_text(env, container_id, "id -G").split()

    unknown = pb.LinuxContainerSecurityContext(run_as_username="nosuchuser")
    with pytest.raises(grpc.RpcError) as error:
        env.create(sandbox_id, sandbox_config,
                   env.container_config("unknown", ["/bin/true"],
                                        linux=pb.LinuxContainerConfig(security_context=unknown)))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "nosuchuser" in error.value.details()
    env.remove_pod(sandbox_id)
    env.assert_clean()


def test_seccomp_runtime_default_and_unconfined(env, handler):
    pb = env.pb
    sandbox_id, sandbox_config = env.run_pod("seccomp", handler)
    runtime_default = pb.LinuxContainerSecurityContext(
        seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault),
        capabilities=pb.Capability(add_capabilities=["SYS_ADMIN"]))
    unconfined = pb.LinuxContainerSecurityContext(
        seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.Unconfined))
    filtered = env.run(sandbox_id, sandbox_config, "filtered", ["/bin/sleep", "1000"],
                       linux=pb.LinuxContainerConfig(security_context=runtime_default))
    free = env.run(sandbox_id, sandbox_config, "free", ["/bin/sleep", "1000"],
                   linux=pb.LinuxContainerConfig(security_context=unconfined))
    seccomp_line = "grep '^Seccomp:' /proc/self/status"
    assert _exec_text(env, filtered, seccomp_line).split() == ["Seccomp:", "2"]
    assert _exec_text(env, free, seccomp_line).split() == ["Seccomp:", "0"]
    env.remove_pod(sandbox_id)
    env.assert_clean()


SECCOMP_LINE = "grep '^Seccomp:' /proc/self/status"
BLOCK_SETHOSTNAME = ('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["sethostname"],'
                     '"action":"SCMP_ACT_ERRNO"}]}')
BLOCK_CHMOD = ('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod","fchmodat"],'
               '"action":"SCMP_ACT_ERRNO"}]}')


def _seccomp_state(env, container_id):
    return _exec_text(env, container_id, SECCOMP_LINE).split()[1]


def test_nil_seccomp_profile_is_unconfined(env, handler):
    """No profile at all is Unconfined, as the CRI defines it (critest
    v1.32 "should support nil profile, which is unconfined")."""
    sandbox_id, sandbox_config = env.run_pod("nilseccomp", handler)
    plain = env.run(sandbox_id, sandbox_config, "plain", ["/bin/sleep", "1000"])
    assert _seccomp_state(env, plain) == "0"
    env.remove_pod(sandbox_id)
    env.assert_clean()


def test_seccomp_use_default_when_empty(env, handler):
    """CRI-O's seccomp_use_default_when_empty = true: no profile at all is
    RuntimeDefault (filtered) for the pause and the containers; a profile
    named Unconfined stays unconfined."""
    pb = env.pb
    env.crid.stop()
    env.crid.write_config({"crid.runtime": {"seccomp_use_default_when_empty": True}})
    env.crid.start()
    sandbox_id, sandbox_config = env.run_pod("defaultseccomp", handler)
    plain = env.run(sandbox_id, sandbox_config, "plain", ["/bin/sleep", "1000"])
    assert _seccomp_state(env, plain) == "2"
    pause_pid = env.pod.info(sandbox_id)["pid"]
    with open(f"/proc/{pause_pid}/status") as f:
        assert re.search(r"^Seccomp:\s*2$", f.read(), re.MULTILINE)
    unconfined = pb.LinuxContainerSecurityContext(
        seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.Unconfined))
    free = env.run(sandbox_id, sandbox_config, "free", ["/bin/sleep", "1000"],
                   linux=pb.LinuxContainerConfig(security_context=unconfined))
    assert _seccomp_state(env, free) == "0"
    env.remove_pod(sandbox_id)
    env.assert_clean()


def test_legacy_seccomp_profile_path_is_honoured(env, handler, tmp_path):
    """The deprecated seccomp_profile_path (older kubelets, critest v1.26)
    names runtime/default, docker/default, unconfined or localhost/<path>;
    anything else is refused."""
    pb = env.pb
    profile = tmp_path / "block-chmod.json"
    profile.write_text(BLOCK_CHMOD)
    sandbox_id, sandbox_config = env.run_pod("legacyseccomp", handler)

    def run(name, path):
        sc = pb.LinuxContainerSecurityContext(seccomp_profile_path=path)
        return env.run(sandbox_id, sandbox_config, name, ["/bin/sleep", "1000"],
                       linux=pb.LinuxContainerConfig(security_context=sc))

    assert _seccomp_state(env, run("default", "runtime/default")) == "2"
    assert _seccomp_state(env, run("docker", "docker/default")) == "2"
    assert _seccomp_state(env, run("free", "unconfined")) == "0"
    local = run("local", f"localhost/{profile}")
    # busybox itself: a missing applet link would fail for another reason.
    result = env.exec_sync(local, ["/bin/busybox", "chmod", "400", "/"])
    assert result.exit_code != 0 and b"Operation not permitted" in result.stderr, result
    unconfined = run("unconfinedchmod", "unconfined")
    assert env.exec_sync(unconfined, ["/bin/busybox", "chmod", "755", "/"]).exit_code == 0
    with pytest.raises(grpc.RpcError) as refused:
        run("bogus", str(profile))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown seccomp profile" in refused.value.details()
    env.remove_pod(sandbox_id)
    env.assert_clean()


def test_privileged_container_runs_without_seccomp_filter(env, handler, tmp_path):
    """critest v1.32 "should ignore a seccomp profile that blocks setting
    hostname when privileged": a privileged container gets no filter,
    whatever profile it names."""
    pb = env.pb
    profile = tmp_path / "block-sethostname.json"
    profile.write_text(BLOCK_SETHOSTNAME)
    sandbox_config = env.pod.pod_config("privseccomp", uid=f"uid-privseccomp-{handler}")
    sandbox_config.linux.security_context.privileged = True
    sandbox_id = env.pod.run_pod(sandbox_config, handler=handler)
    sc = pb.LinuxContainerSecurityContext(
        privileged=True,
        seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.Localhost,
                                   localhost_ref=str(profile)),
        namespace_options=pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD))
    container_id = env.run(sandbox_id, sandbox_config, "priv", ["/bin/sleep", "1000"],
                           linux=pb.LinuxContainerConfig(security_context=sc))
    assert _seccomp_state(env, container_id) == "0"
    result = env.exec_sync(container_id, ["/bin/busybox", "hostname", "renamed-by-test"])
    assert result.exit_code == 0, result
    env.remove_pod(sandbox_id)
    env.assert_clean()


def test_an_ended_container_is_released_before_its_removal(env, handler):
    """As containerd's shim does at exit, an ended container's runtime
    state, cgroup and root file system mount go in the background as soon
    as its exit is known, so RemoveContainer only hands its directory to
    the trash (issue 14: RemoveContainer p50 4.2 -> 0.6 ms).  Its status,
    exit code and logs stay until the removal."""
    from test_sandbox import RUNTIME_PATHS

    pb = env.pb
    sandbox_id, sandbox_config = env.run_pod("released", handler)
    container_id = env.run(sandbox_id, sandbox_config, "ends",
                           ["/bin/sh", "-c", "echo bye; exit 3"])
    env.wait_state(container_id, pb.CONTAINER_EXITED)
    rootfs = env.crid.root / "containers" / container_id / "rootfs"
    root = env.crid.state_dir / "runtimes" / handler
    cridtest.wait_for(
        lambda: not nsutil.mounts_under(rootfs.parent)
        and container_id not in nsutil.runtime_containers(RUNTIME_PATHS[handler], root),
        timeout=10, message="the ended container's mounts and runtime state to go",
    )
    status = env.status(container_id).status
    assert status.state == pb.CONTAINER_EXITED and status.exit_code == 3
    assert b"bye" in Path(status.log_path).read_bytes()
    env.remove(container_id)
    env.remove_pod(sandbox_id)
    env.assert_clean()
