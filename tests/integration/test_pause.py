"""crid-pause, the infra process of every pod: it exits 0 on SIGTERM and
SIGINT (also as the init of a PID namespace, where signals without a
handler are dropped), reaps the orphans of a shared PID namespace, answers
--version, and stays small: no C library, a few pages resident.

The binary is checked on its own (as the runtime runs it: the init of a
PID namespace of its own), and in a pod whose containers share the pod's
PID namespace, through the CRI.
"""

import os
import signal
import subprocess

import pytest

import cridtest
from test_containers import ContainerEnv, HANDLERS
from test_sandbox import podenv_factory, wait_gone  # noqa: F401  (fixture)

PAUSE = cridtest.CRID_BIN.parent / "crid-pause"
MAX_FILE_BYTES = 16 * 1024
MAX_RSS_KB = 100


def _status_field(pid, name):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].split()
    raise AssertionError(f"{name} missing in /proc/{pid}/status")


def _handles_stop_signals(pid):
    """Whether pid has its SIGTERM and SIGINT handlers installed (it sets
    up one handler after the other: any caught signal is not enough)."""
    caught = int(_status_field(pid, "SigCgt")[0], 16)
    wanted = (1 << (signal.SIGTERM - 1)) | (1 << (signal.SIGINT - 1))
    return caught & wanted == wanted


def _children(pid):
    """{pid: (comm, state)} of the children of pid."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid:
            out[int(entry)] = (comm, state)
    return out


class PidNamespaceInit:
    """crid-pause as the init of a new PID namespace, as a runtime runs it."""

    def __init__(self):
        self.outer = subprocess.Popen(["unshare", "--pid", "--fork", str(PAUSE)])
        self.pid = cridtest.wait_for(
            lambda: next(iter(_children(self.outer.pid)), None),
            message="the pause under unshare",
        )
        cridtest.wait_for(
            lambda: _handles_stop_signals(self.pid),
            message="the pause's signal handlers",
        )

    def run_inside(self, script):
        subprocess.run(["nsenter", "-t", str(self.pid), "-p", "sh", "-c", script], check=True)

    def stop(self, sig=signal.SIGTERM):
        os.kill(self.pid, sig)
        return self.outer.wait(timeout=10)

    def close(self):
        if self.outer.poll() is None:
            self.outer.kill()
            self.outer.wait()


@pytest.fixture
def pidns_pause():
    pause = PidNamespaceInit()
    yield pause
    pause.close()


def test_pause_is_a_few_kb_without_libc():
    assert PAUSE.stat().st_size <= MAX_FILE_BYTES, PAUSE.stat().st_size
    header = subprocess.run(["readelf", "-lW", str(PAUSE)], capture_output=True, text=True,
                            check=True).stdout
    assert "INTERP" not in header and "DYNAMIC" not in header, header
    result = subprocess.run([str(PAUSE), "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.startswith("crid-pause "), result.stdout
    assert subprocess.run([str(PAUSE), "-v"], capture_output=True).returncode == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signals_end_the_pause_with_0(pidns_pause, sig):
    # unshare --fork exits with its child's status.
    assert pidns_pause.stop(sig) == 0


def test_stop_signal_outside_a_pid_namespace():
    pause = subprocess.Popen([str(PAUSE)])
    try:
        cridtest.wait_for(lambda: _handles_stop_signals(pause.pid),
                          message="the pause's signal handlers")
        pause.send_signal(signal.SIGTERM)
        assert pause.wait(timeout=10) == 0
    finally:
        if pause.poll() is None:
            pause.kill()
            pause.wait()


def test_pause_reaps_orphans_and_stays_small(pidns_pause):
    # Three orphans: their shell exits at once, so they become children of
    # the namespace's init, which must reap them when they end.
    pidns_pause.run_inside("for i in 1 2 3; do sleep 1 & done; exit 0")
    # (A child may still be the forked shell until it has exec'd sleep.)
    cridtest.wait_for(
        lambda: sorted(comm for comm, _ in _children(pidns_pause.pid).values()) == ["sleep"] * 3,
        message="three orphaned sleeps under the pause",
    )
    cridtest.wait_for(lambda: _children(pidns_pause.pid) == {}, timeout=10,
                      message="the orphans to be reaped")
    rss_kb = int(_status_field(pidns_pause.pid, "VmRSS")[0])
    assert rss_kb < MAX_RSS_KB, f"pause RSS {rss_kb} kB"
    assert pidns_pause.stop() == 0


@pytest.fixture(params=HANDLERS)
def handler(request):
    return request.param


@pytest.fixture
def env(podenv_factory):  # noqa: F811
    return ContainerEnv(podenv_factory)


def test_shared_pid_pod_pause_reaps_orphans(env, handler):
    """A pod with a shared PID namespace and the default seccomp profile:
    the pause is its init, adopts the orphans a container leaves and reaps
    them; StopPodSandbox ends it."""
    pb = env.pb
    sandbox_config = env.pod.pod_config("sharedpid", uid=f"uid-sharedpid-{handler}")
    sandbox_config.linux.security_context.namespace_options.pid = pb.POD
    # The pod's seccomp profile applies to the pause: its system calls
    # (handlers returning through rt_sigreturn included) pass the default.
    sandbox_config.linux.security_context.seccomp.profile_type = pb.SecurityProfile.RuntimeDefault
    sandbox_id = env.pod.run_pod(sandbox_config, handler=handler)
    pause_pid = env.pod.info(sandbox_id)["pid"]
    assert _status_field(pause_pid, "Seccomp") == ["2"], "the pause runs without a filter"

    config = env.container_config(
        "orphans",
        ["/bin/sh", "-c", "(sleep 2 &); (sleep 2 &); exec sleep 3600"],
        linux=pb.LinuxContainerConfig(
            security_context=pb.LinuxContainerSecurityContext(
                namespace_options=pb.NamespaceOption(network=pb.POD, ipc=pb.POD, pid=pb.POD)
            )
        ),
    )
    container_id = env.create(sandbox_id, sandbox_config, config)
    env.start(container_id)
    env.wait_state(container_id, pb.CONTAINER_RUNNING)
    pid = env.info(container_id)["pid"]
    assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{pause_pid}/ns/pid")

    adopted = cridtest.wait_for(
        lambda: [p for p, (comm, _) in _children(pause_pid).items() if comm == "sleep"],
        message="the orphaned sleeps to become the pause's children",
    )
    assert adopted
    # The orphans sleep 2 s; once they end nothing of theirs stays.
    cridtest.wait_for(
        lambda: not any(comm == "sleep" for comm, _ in _children(pause_pid).values()),
        timeout=10,
        message="the pause to reap its orphans (no zombie left)",
    )
    assert int(_status_field(pause_pid, "VmRSS")[0]) < MAX_RSS_KB

    env.stop(container_id)
    env.remove(container_id)
    env.remove_pod(sandbox_id)
    wait_gone(pause_pid)
    env.assert_clean()
