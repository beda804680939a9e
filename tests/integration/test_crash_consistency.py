"""Crash consistency: crid killed (SIGKILL) at every named failpoint of
RunPodSandbox, CreateContainer and StartContainer (common/failpoint.h:
CRID_FAILPOINT=<name> makes crid kill itself there), then restarted.  The
listed state must be true, the workflow must be finishable (remove), and
nothing may be left: mounts, network namespaces, IP leases, veths,
cgroups, runtime state, processes, files (the leak checks of
test_sandbox/test_containers).  Before intent records, a crash during
RunPodSandbox left the pause, its monitor, the namespaces and the IP
lease of a pod crid no longer listed.

Every failpoint in the sources must be walked here (those of PullImage and
RemoveImage in test_images, beside the registries): the list is read from
the sources, so a new failpoint without a workflow fails the test."""

import re
from pathlib import Path

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
from test_images import IMAGE_FAILPOINTS

REPO = Path(__file__).resolve().parents[2]
FAILPOINT_RE = re.compile(r'failpoint\("([a-z0-9.-]+)"\)')


def failpoints_in_sources():
    names = set()
    for source in (REPO / "pod").glob("*.c"):
        names |= set(FAILPOINT_RE.findall(source.read_text()))
    for area in ("crid", "image", "common"):
        for source in (REPO / area).glob("*.c"):
            names |= set(FAILPOINT_RE.findall(source.read_text()))
    return sorted(names)


# What a restart must show after a crash at each failpoint: the object
# gone (rolled back) or listed in a state.
EXPECTED = {
    "sandbox.after-record": None,
    "sandbox.after-namespaces": None,
    "sandbox.after-shm": None,
    "sandbox.after-network-add": None,
    "sandbox.after-pause": None,
    "sandbox.after-ready": "SANDBOX_READY",
    "container.after-record": None,
    "container.after-rootfs": None,
    "container.after-monitor": None,
    "container.after-created": "CONTAINER_CREATED",
    "container.after-start": "CONTAINER_RUNNING",
}

# Failpoints of the calls that take things down: after the crash and a
# restart, the call is simply made again (the kubelet retries) and must
# finish; what the listing shows meanwhile is checked loosely (the object
# is still there, in a state that does not lie).
TEARDOWN = {
    "container.stop-after-kill": "StopContainer",
    "container.remove-after-runtime-delete": "RemoveContainer",
    "container.remove-after-unmount": "RemoveContainer",
    "sandbox.stop-after-network-and-pause": "StopPodSandbox",
    "sandbox.remove-after-containers": "RemovePodSandbox",
}


def test_every_failpoint_has_a_crash_test():
    assert failpoints_in_sources() == sorted([*EXPECTED, *TEARDOWN, *IMAGE_FAILPOINTS])


def restart_with_failpoint(crid, name):
    plain = crid.launch_command
    crid.stop()
    crid.launch_command = lambda: ["env", f"CRID_FAILPOINT={name}", *plain()]
    crid.start()
    return plain


def crash_then_restart(crid, plain, action):
    with pytest.raises(grpc.RpcError):
        action()
    assert crid.wait(timeout=20) is not None, "crid did not die at its failpoint"
    assert crid.returncode == -9
    crid.launch_command = plain
    crid.start()


@pytest.mark.parametrize("name", [n for n in EXPECTED if n.startswith("sandbox.")])
def test_crash_during_run_pod_sandbox(env, handler, name):
    pb = env.pb
    config = env.pod.pod_config("crash", uid=f"uid-crash-{handler}")
    plain = restart_with_failpoint(env.crid, name)
    crash_then_restart(env.crid, plain, lambda: env.pod.run_pod(config, handler=handler))
    pods = env.pod.list()
    expected = EXPECTED[name]
    if expected is None:
        assert pods == [], f"a pod half-made at {name} is listed"
        env.assert_clean()
        # The name is free again: the kubelet's retry works.
        sandbox_id = env.pod.run_pod(config, handler=handler)
    else:
        assert [p.state for p in pods] == [getattr(pb, expected)]
        sandbox_id = pods[0].id
    container_id = env.run(sandbox_id, config, "after", ["/bin/sleep", "100"])
    assert env.state(container_id) == pb.CONTAINER_RUNNING
    env.remove_pod(sandbox_id)
    env.assert_clean()


@pytest.mark.parametrize("name", [n for n in EXPECTED if n.startswith("container.")])
def test_crash_during_create_or_start_container(env, handler, name):
    pb = env.pb
    sandbox_id, sandbox_config = env.run_pod("crashc", handler)
    config = env.container_config("victim", ["/bin/sleep", "100"])

    def create_and_start():
        container_id = env.create(sandbox_id, sandbox_config, config)
        env.start(container_id)

    plain = restart_with_failpoint(env.crid, name)
    crash_then_restart(env.crid, plain, create_and_start)
    containers = env.list()
    expected = EXPECTED[name]
    if expected is None:
        assert containers == [], f"a container half-made at {name} is listed"
        container_id = env.create(sandbox_id, sandbox_config, config)
        env.start(container_id)
    else:
        assert [c.state for c in containers] == [getattr(pb, expected)]
        container_id = containers[0].id
        env.container_ids.add(container_id)
        if expected == "CONTAINER_CREATED":
            env.start(container_id)
        else:
            assert env.info(container_id)["pid"] > 0
    assert env.state(container_id) == pb.CONTAINER_RUNNING
    # It works: ExecSync reaches it.
    result = env.exec_sync(container_id, ["/bin/echo", "alive"])
    assert result.stdout == b"alive\n"
    env.remove_pod(sandbox_id)
    env.assert_clean()


def test_damaged_container_record_is_cleaned_not_forgotten(env, handler):
    """A truncated state.json made the container vanish from the API while
    its process ran on: now what it may have left is removed."""
    sandbox_id, sandbox_config = env.run_pod("damaged", handler)
    container_id = env.run(sandbox_id, sandbox_config, "victim", ["/bin/sleep", "100"])
    pid = env.info(container_id)["pid"]
    env.crid.kill()
    state = env.crid.root / "containers" / container_id / "state.json"
    state.write_bytes(state.read_bytes()[:20])
    env.crid.start()
    assert env.list() == []
    cridtest.wait_for(lambda: not cridtest.pid_alive(pid), timeout=10,
                      message="the container's process to be gone")
    assert "recovery: removing what container" in env.crid.log_text()
    env.remove_pod(sandbox_id)
    env.assert_clean()


def test_damaged_sandbox_record_is_cleaned_not_forgotten(env, handler):
    """An empty request.pb: the pod, its containers, pause, IP lease,
    namespaces and mounts are removed, loudly, instead of left running
    unlisted."""
    sandbox_id, sandbox_config = env.run_pod("damagedpod", handler)
    env.run(sandbox_id, sandbox_config, "victim", ["/bin/sleep", "100"])
    env.crid.kill()
    (env.crid.root / "sandboxes" / sandbox_id / "request.pb").write_bytes(b"")
    env.crid.start()
    assert env.pod.list() == [] and env.list() == []
    log = env.crid.log_text()
    assert "recovery: removing what sandbox" in log
    assert "belongs to sandbox" in log
    env.assert_clean()


def test_killed_monitor_keeps_the_exit_code(env, handler):
    """With its crid-conmon killed, a container's exit code was lost
    (reported 255) though crid, the subreaper, reaped the container: crid
    now records the status it reaps."""
    import os
    import signal

    sandbox_id, sandbox_config = env.run_pod("orphan", handler)
    container_id = env.run(sandbox_id, sandbox_config, "c",
                           ["/bin/sh", "-c", "sleep 2; exit 7"])
    monitor_pid = int((env.crid.state_dir / "conmon" / container_id / "conmon.pid").read_text())
    os.kill(monitor_pid, signal.SIGKILL)
    env.wait_state(container_id, env.pb.CONTAINER_EXITED, timeout=15)
    assert env.status(container_id).status.exit_code == 7
    env.remove_pod(sandbox_id)
    env.assert_clean()


def _pids_running(marker):
    import os
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker in f.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


def test_exec_of_a_crashed_crid_is_killed_at_restart(env, handler):
    """An ExecSync whose crid died: the exec'd process outlived its
    timeout until the pod went.  crid records each exec'd process and
    kills those a crash left at its next start."""
    import threading

    sandbox_id, sandbox_config = env.run_pod("execcrash", handler)
    container_id = env.run(sandbox_id, sandbox_config, "c", ["/bin/sleep", "1000"])
    marker = f"{4000 + (hash(handler) % 1000)}.5"
    caller = threading.Thread(target=lambda: _ignore_errors(
        env.exec_sync, container_id, ["/bin/sleep", marker], timeout=60), daemon=True)
    caller.start()
    cridtest.wait_for(lambda: _pids_running(marker.encode()), timeout=10,
                      message="the exec'd sleep")
    env.crid.kill()
    caller.join(10)
    assert _pids_running(marker.encode()), "the exec'd process died with crid (test is moot)"
    env.crid.start()
    cridtest.wait_for(lambda: not _pids_running(marker.encode()), timeout=10,
                      message="the exec'd process of the crashed crid to be killed")
    assert env.exec_sync(container_id, ["/bin/echo", "ok"]).stdout == b"ok\n"
    env.remove_pod(sandbox_id)
    env.assert_clean()


def _ignore_errors(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except Exception:
        pass


@pytest.mark.parametrize("name", sorted(TEARDOWN))
def test_crash_during_stop_or_remove(env, handler, name):
    pb = env.pb
    call = TEARDOWN[name]
    sandbox_id, sandbox_config = env.run_pod("teardown", handler)
    container_id = env.run(sandbox_id, sandbox_config, "c", ["/bin/sleep", "1000"])
    actions = {
        "StopContainer": lambda: env.stop(container_id, timeout=0),
        "RemoveContainer": lambda: (env.stop(container_id, timeout=0), env.remove(container_id)),
        "StopPodSandbox": lambda: env.pod.stop(sandbox_id),
        "RemovePodSandbox": lambda: env.remove_pod(sandbox_id),
    }
    if call == "RemoveContainer":
        env.stop(container_id, timeout=0)
    plain = restart_with_failpoint(env.crid, name)
    crash_then_restart(env.crid, plain, actions[call])
    pods = env.pod.list()
    assert [p.id for p in pods] == [sandbox_id], f"the pod vanished after a crash at {name}"
    if call in ("StopPodSandbox", "RemovePodSandbox"):
        assert pods[0].state == pb.SANDBOX_NOTREADY or call == "RemovePodSandbox"
    containers = env.list()
    if call in ("StopContainer", "RemoveContainer", "StopPodSandbox"):
        assert [c.id for c in containers] == [container_id]
        env.wait_state(container_id, pb.CONTAINER_EXITED, timeout=15)
    # Finishing the workflow works and leaves nothing.
    env.remove_pod(sandbox_id)
    assert env.pod.list() == [] and env.list() == []
    env.assert_clean()


def test_runtime_state_of_nothing_listed_is_removed_at_start(env, handler):
    """A container the runtime keeps but no record names (its directory
    lost while crid was down) is killed and deleted at the next start."""
    import subprocess

    sandbox_id, sandbox_config = env.run_pod("unknown", handler)
    container_id = env.run(sandbox_id, sandbox_config, "c", ["/bin/sleep", "1000"])
    pid = env.info(container_id)["pid"]
    env.crid.kill()
    directory = env.crid.root / "containers" / container_id
    subprocess.run(["umount", str(directory / "rootfs")], check=True)
    subprocess.run(["rm", "-rf", str(directory)], check=True)
    env.crid.start()
    assert env.list() == []
    cridtest.wait_for(lambda: not cridtest.pid_alive(pid), timeout=10,
                      message="the unknown container's process to be gone")
    assert "belongs to nothing crid knows" in env.crid.log_text()
    env.remove_pod(sandbox_id)
    env.assert_clean()


KILL_ROUNDS = 8


def test_kills_at_random_instants_leave_nothing(env, handler):
    """A second net behind the failpoints: crid is killed (SIGKILL) at a
    random instant of a whole pod workflow (run, create, start, exec,
    stop, remove), restarted, and what it lists is taken down the way the
    kubelet would; after each round nothing may be left.  The seed is in
    the test's output, so a failing round can be replayed."""
    import concurrent.futures
    import random
    import time

    seed = random.randrange(1 << 30)
    print(f"random kill seed {seed}")
    rng = random.Random(seed)
    pb = env.pb

    def workflow(round_index):
        sandbox_id, sandbox_config = env.run_pod(f"kill{round_index}", handler)
        container_id = env.run(sandbox_id, sandbox_config, "c", ["/bin/sleep", "100"])
        env.exec_sync(container_id, ["/bin/true"])
        env.stop(container_id)
        env.remove(container_id)
        env.remove_pod(sandbox_id)

    for round_index in range(KILL_ROUNDS):
        delay = rng.uniform(0, 0.4)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            done = pool.submit(workflow, round_index)
            time.sleep(delay)
            env.crid.kill()
            try:
                done.result(timeout=60)
            except grpc.RpcError:
                pass
        env.crid.start()
        # What is listed must be true, and removable as the kubelet would.
        for container in env.list():
            assert container.state in (pb.CONTAINER_CREATED, pb.CONTAINER_RUNNING,
                                       pb.CONTAINER_EXITED)
            env.stop(container.id)
            env.remove(container.id)
        for pod in env.pod.list():
            env.remove_pod(pod.id)
        assert env.pod.list() == [] and env.list() == []
        found = env.leaks()
        assert not found, (f"round {round_index} (seed {seed}, kill after {delay:.3f} s) "
                           "left:\n  " + "\n  ".join(found))


def test_pod_whose_record_is_lost_leaves_nothing_at_start(env, handler):
    """A pod whose record vanished while crid was down (a disk that lost
    it, a crash before it was written) used to keep its pinned
    namespaces, shm mount, IP lease, veth and cgroups for good: nothing
    listed named them.  The sweep at start finds them (by the pod's id
    under crid's state directories, in the runtime, in the network's
    leases) and removes them, with the pod's containers."""
    import shutil

    sandbox_id, sandbox_config = env.run_pod("lostpod", handler)
    container_id = env.run(sandbox_id, sandbox_config, "c", ["/bin/sleep", "1000"])
    pid = env.info(container_id)["pid"]
    assert env.pod.leases(), "the pod holds no lease to lose"
    env.crid.kill()
    shutil.rmtree(env.crid.root / "sandboxes" / sandbox_id)
    env.crid.start()
    assert env.pod.list() == [] and env.list() == []
    cridtest.wait_for(lambda: not cridtest.pid_alive(pid), timeout=10,
                      message="the lost pod's container to be gone")
    log = env.crid.log_text()
    assert f"pod {sandbox_id[:12]} left" in log and "belongs to nothing crid knows" in log
    env.assert_clean()


def test_stray_state_of_an_unknown_id_is_removed_at_start(env, handler):
    """Monitor files, exit files and state directories of an id nothing
    lists (left by a crash between their steps) are removed at start, and
    a monitor process of such an id is killed."""
    import subprocess

    stray = "ab" * 32
    env.crid.stop()
    for path in (
        env.crid.state_dir / "conmon" / stray,
        env.crid.state_dir / "ns" / stray,
        env.crid.state_dir / "sandboxes" / stray,
    ):
        path.mkdir(parents=True)
    (env.crid.state_dir / "exits").mkdir(exist_ok=True)
    (env.crid.state_dir / "exits" / stray).write_text("0")
    # A monitor of that id whose files are gone as well: found by its
    # command line.
    other = "cd" * 32
    monitor = subprocess.Popen(
        ["/usr/bin/python3", "-c", "import time; time.sleep(300)",
         "--socket-dir", str(env.crid.state_dir / "conmon" / other)]
    )
    try:
        env.crid.start()
        assert monitor.wait(timeout=20) == -9, "the unknown monitor was not killed"
    finally:
        if monitor.poll() is None:
            monitor.kill()
            monitor.wait()
    for path in (
        env.crid.state_dir / "conmon" / stray,
        env.crid.state_dir / "ns" / stray,
        env.crid.state_dir / "sandboxes" / stray,
        env.crid.state_dir / "exits" / stray,
    ):
        assert not path.exists(), f"{path} survived the start"
    assert "belongs to nothing crid knows" in env.crid.log_text()
    env.assert_clean()


def test_removed_container_files_go_in_the_background_and_survive_a_crash(env, handler):
    """RemoveContainer moves the container's directory into <root>/trash
    and returns; a background thread deletes it, and what a crash leaves
    there is deleted at the next start."""
    sandbox_id, sandbox_config = env.run_pod("trash", handler)
    container_id = env.run(sandbox_id, sandbox_config, "c", [
        "/bin/sh", "-c", "mkdir /many && cd /many && for i in $(seq 2000); do : > f$i; done"])
    env.wait_state(container_id, env.pb.CONTAINER_EXITED, timeout=30)
    env.remove(container_id)
    env.container_ids.discard(container_id)
    trash = env.crid.root / "trash"
    assert not (env.crid.root / "containers" / container_id).exists()
    cridtest.wait_for(lambda: not any(trash.iterdir()), timeout=20,
                      message="the trash to be emptied")
    # A crash with something in the trash: the next start empties it.
    env.crid.kill()
    leftover = trash / "left-by-a-crash"
    (leftover / "deep" / "er").mkdir(parents=True)
    (leftover / "deep" / "er" / "file").write_text("x")
    env.crid.start()
    cridtest.wait_for(lambda: not leftover.exists(), timeout=20,
                      message="the crash's leftovers in the trash to be deleted")
    env.remove_pod(sandbox_id)
    env.assert_clean()
