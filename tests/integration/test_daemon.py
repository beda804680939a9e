"""The daemon itself, seen over its real gRPC API: runtime-info RPCs, error
codes for what crid does not serve, robustness against bad bytes and load,
signals, the single-instance lock, the socket, and SIGHUP reload."""

import json
import os
import random
import shutil
import signal
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

import cridtest
import netns as nsutil
from cridtest import rpc_error, wait_for

# Implemented last (if ever), so it stays UNIMPLEMENTED for a long time.
UNIMPLEMENTED_METHOD = "CheckpointContainer"


def conditions(status_response):
    return {c.type: c for c in status_response.status.conditions}


def json_strings(value):
    """Every string anywhere in a decoded JSON document."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from json_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from json_strings(v)


# --------------------------------------------------------------------------
# Runtime info


def test_version(crid, pb):
    # kubelet's first call: an empty request.
    for request in (pb.VersionRequest(), pb.VersionRequest(version="0.1.0")):
        r = crid.runtime.Version(request, timeout=5)
        assert r.version == "0.1.0"
        assert r.runtime_name == "crid"
        assert r.runtime_version != ""
        assert r.runtime_api_version == "v1"


def test_status_runtime_ready_network_not_ready_without_cni_config(crid, pb):
    r = crid.runtime.Status(pb.StatusRequest(), timeout=5)
    conds = conditions(r)
    assert len(r.status.conditions) >= 2
    assert conds["RuntimeReady"].status is True
    assert conds["NetworkReady"].status is False
    assert conds["NetworkReady"].reason == "NetworkPluginNotReady"
    # Not verbose: no info map.
    assert len(r.info) == 0


def test_status_network_ready_once_a_conflist_appears(crid, pb):
    r = crid.runtime.Status(pb.StatusRequest(), timeout=5)
    assert conditions(r)["NetworkReady"].status is False
    crid.write_conflist()

    def network_ready():
        r = crid.runtime.Status(pb.StatusRequest(), timeout=5)
        return conditions(r)["NetworkReady"].status

    wait_for(network_ready, timeout=5, message="NetworkReady after writing a conflist")
    r = crid.runtime.Status(pb.StatusRequest(), timeout=5)
    assert conditions(r)["RuntimeReady"].status is True
    assert conditions(r)["NetworkReady"].reason == ""


def test_status_network_dir_created_watched_and_read_again_once_gone(crid_factory, pb):
    """A missing CNI config dir is created at start and watched; if the
    dir itself goes away, Status reads whatever is at that path again."""
    crid = crid_factory(start=False)
    shutil.rmtree(crid.network_dir, ignore_errors=True)
    crid.start()
    assert crid.network_dir.is_dir()

    def network_ready():
        r = crid.runtime.Status(pb.StatusRequest(), timeout=5)
        return conditions(r)["NetworkReady"].status

    assert not network_ready()
    crid.write_conflist()
    wait_for(network_ready, timeout=5, message="NetworkReady after writing a conflist")
    assert "pod network ready" in crid.log_text()

    moved = crid.network_dir.with_name("net.d.moved")
    crid.network_dir.rename(moved)
    wait_for(lambda: not network_ready(), timeout=5, message="NetworkReady=false, dir gone")
    wait_for(
        lambda: "no longer watched" in crid.log_text(), timeout=5, message="the lost-watch warning"
    )
    moved.rename(crid.network_dir)
    wait_for(network_ready, timeout=5, message="NetworkReady read from the dir again")


def test_status_network_not_ready_with_only_an_invalid_conflist(crid, pb):
    (crid.network_dir / "10-broken.conflist").write_text('{"cniVersion": "1.0.0", "name": ')
    r = crid.runtime.Status(pb.StatusRequest(), timeout=5)
    assert conditions(r)["NetworkReady"].status is False
    assert conditions(r)["NetworkReady"].reason == "NetworkPluginNotReady"
    assert crid.running()


def test_status_verbose_reports_effective_config(crid, pb):
    r = crid.runtime.Status(pb.StatusRequest(verbose=True), timeout=5)
    assert "config" in r.info
    config = json.loads(r.info["config"])
    strings = set(json_strings(config))
    assert str(crid.root) in strings
    assert str(crid.state_dir) in strings
    assert str(crid.network_dir) in strings


def test_status_lists_runtime_handlers(crid, pb):
    r = crid.runtime.Status(pb.StatusRequest(), timeout=5)
    names = [h.name for h in r.runtime_handlers]
    assert "" in names
    assert "crun" in names
    assert "runc" in names
    assert len(names) == len(set(names))


def test_status_reports_recursive_read_only_for_every_handler(crid, pb):
    """crid makes recursive read-only mounts itself, so every handler has
    them, crun 1.8 too (which has no rro option of its own)."""
    r = crid.runtime.Status(pb.StatusRequest(), timeout=5)
    features = {h.name: h.features.recursive_read_only_mounts for h in r.runtime_handlers}
    assert features == {"": True, "crun": True, "runc": True}


def read_only_mounts_under(prefix):
    """{mount point: its options} of the mounts below prefix."""
    found = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4].startswith(str(prefix) + "/"):
            found[fields[4]] = fields[5].split(",")
    return found


def test_runtime_binaries_run_from_read_only_mounts(crid_factory, pb):
    """Each handler's binary is bind-mounted read-only under the state dir
    (so crun and runc skip their per-call self-copy); a clean stop removes
    the mounts, and those of a killed crid are replaced at the next start."""
    crid = crid_factory()
    pins = crid.state_dir / "runtime-bin"
    mounts = read_only_mounts_under(pins)
    assert set(mounts) == {str(pins / "crun"), str(pins / "runc")}, mounts
    assert all("ro" in options for options in mounts.values()), mounts
    assert (pins / "crun").read_bytes() == Path("/usr/bin/crun").read_bytes()
    r = crid.runtime.Version(pb.VersionRequest(), timeout=5)
    assert r.runtime_name == "crid"

    crid.stop(sig=signal.SIGKILL)
    assert read_only_mounts_under(pins)  # left behind by the kill
    crid.start()
    assert set(read_only_mounts_under(pins)) == {str(pins / "crun"), str(pins / "runc")}
    assert crid.stop() == 0
    assert read_only_mounts_under(pins) == {}
    assert not pins.exists()


def test_runtime_config_cgroupfs_by_default(crid, pb):
    r = crid.runtime.RuntimeConfig(pb.RuntimeConfigRequest(), timeout=5)
    assert r.HasField("linux")
    assert r.linux.cgroup_driver == pb.CGROUPFS


def test_runtime_config_systemd_when_configured(crid_factory, pb):
    crid = crid_factory(config={"crid.runtime": {"cgroup_manager": "systemd"}})
    r = crid.runtime.RuntimeConfig(pb.RuntimeConfigRequest(), timeout=5)
    assert r.HasField("linux")
    assert r.linux.cgroup_driver == pb.SYSTEMD


def test_update_runtime_config_accepts_pod_cidr(crid, pb):
    request = pb.UpdateRuntimeConfigRequest(
        runtime_config=pb.RuntimeConfig(
            network_config=pb.NetworkConfig(pod_cidr="10.244.0.0/24")
        )
    )
    crid.runtime.UpdateRuntimeConfig(request, timeout=5)
    # Again (kubelet repeats it), and an empty one.
    crid.runtime.UpdateRuntimeConfig(request, timeout=5)
    crid.runtime.UpdateRuntimeConfig(pb.UpdateRuntimeConfigRequest(), timeout=5)
    crid.runtime.Version(pb.VersionRequest(), timeout=5)


# --------------------------------------------------------------------------
# What crid does not serve


def test_unimplemented_method_names_itself(crid, pb):
    e = rpc_error(
        crid.runtime.CheckpointContainer,
        pb.CheckpointContainerRequest(container_id="abc", location="/tmp/x"),
        timeout=5,
    )
    assert e.code() == grpc.StatusCode.UNIMPLEMENTED
    assert UNIMPLEMENTED_METHOD in e.details()


@pytest.mark.parametrize(
    "path",
    [
        "/runtime.v1.RuntimeService/NoSuchMethod",
        "/runtime.v1alpha2.RuntimeService/Version",  # the old API: not served
        "/runtime.v1.NoSuchService/Version",
        "/grpc.health.v1.Health/Check",
    ],
)
def test_unknown_method_path_is_unimplemented(crid, pb, path):
    result = crid.raw_call(path, b"")
    assert result.code == grpc.StatusCode.UNIMPLEMENTED, result
    crid.runtime.Version(pb.VersionRequest(), timeout=5)


# --------------------------------------------------------------------------
# Bad bytes and load


def fuzz_payloads(pb, seed=0xC1D):
    rng = random.Random(seed)
    valid = [
        pb.VersionRequest(version="0.1.0").SerializeToString(),
        pb.StatusRequest(verbose=True).SerializeToString(),
        pb.UpdateRuntimeConfigRequest(
            runtime_config=pb.RuntimeConfig(
                network_config=pb.NetworkConfig(pod_cidr="10.244.0.0/24")
            )
        ).SerializeToString(),
        pb.CheckpointContainerRequest(
            container_id="a" * 64, location="/tmp/checkpoint.tar", timeout=30
        ).SerializeToString(),
    ]
    payloads = []
    # Every truncation of every valid message.
    for message in valid:
        payloads.extend(message[:n] for n in range(len(message)))
    # Bit flips of valid messages.
    for _ in range(60):
        message = bytearray(rng.choice(valid))
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(message))
            message[i] ^= 1 << rng.randrange(8)
        payloads.append(bytes(message))
    # Hand-made nasties.
    payloads += [
        b"",
        b"\x00",  # field number 0
        b"\x0a\xff\xff\xff\xff\x0f",  # length 4 GiB, no data
        b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # 64-bit length
        b"\x08" + b"\xff" * 11,  # over-long varint
        b"\x0b",  # start group, never ended
        b"\x0c",  # end group without start
        b"\x0e\x00",  # wire type 6
        b"\x0f\x00",  # wire type 7
        b"\x0a\x02\xff\xfe",  # invalid UTF-8 in a string field
        b"\x0a\x80\x80\x80\x80\x10" + b"x" * 16,  # length overflowing 32 bits
        b"\xfa\xff\xff\xff\x0f\x00",  # the largest field number, empty bytes
        b"\x0a\x03abc" * 500,  # the same field many times
        bytes(range(256)),
    ]
    # Plain random bytes.
    for _ in range(200):
        payloads.append(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300))))
    return payloads


FUZZ_METHODS = [
    "Version",
    "Status",
    "RuntimeConfig",
    "UpdateRuntimeConfig",
    UNIMPLEMENTED_METHOD,
]


def test_random_bytes_never_kill_the_daemon(crid, pb):
    allowed = {
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNIMPLEMENTED,
    }
    payloads = fuzz_payloads(pb)
    assert len(payloads) > 300
    unexpected = []
    for i, payload in enumerate(payloads):
        for method in FUZZ_METHODS:
            result = crid.raw_call(method, payload, timeout=10)
            if result.code not in allowed:
                unexpected.append((method, payload.hex(), result.code, result.details))
            if method == UNIMPLEMENTED_METHOD:
                assert result.code == grpc.StatusCode.UNIMPLEMENTED, (payload.hex(), result)
        if not crid.running():
            pytest.fail(
                f"crid died (exit {crid.proc.returncode}) after payload #{i} "
                f"{payload.hex()}"
            )
    assert not unexpected, unexpected[:10]
    assert crid.running()
    r = crid.runtime.Version(pb.VersionRequest(), timeout=5)
    assert r.runtime_name == "crid"


def test_undecodable_request_is_invalid_argument(crid, pb):
    # A length-delimited field 1 claiming more bytes than follow.
    result = crid.raw_call("Status", b"\x0a\x10abc")
    assert result.code == grpc.StatusCode.INVALID_ARGUMENT, result
    assert result.details
    crid.runtime.Version(pb.VersionRequest(), timeout=5)


def test_concurrent_version_calls(crid, pb):
    threads, per_thread = 50, 20
    start = threading.Barrier(threads, timeout=30)

    def worker(_):
        channel = crid.new_channel()
        try:
            stub = crid.api.grpc.RuntimeServiceStub(channel)
            start.wait()
            ok = 0
            for _ in range(per_thread):
                r = stub.Version(pb.VersionRequest(), timeout=30)
                if r.version == "0.1.0" and r.runtime_name == "crid":
                    ok += 1
            return ok
        finally:
            channel.close()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(worker, range(threads), timeout=120))
    assert sum(results) == threads * per_thread
    assert crid.running()


# --------------------------------------------------------------------------
# Signals, lock, socket


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_clean_exit_on_signal(crid, pb, sig):
    assert crid.sock.exists()
    crid.runtime.Version(pb.VersionRequest(), timeout=5)
    code = crid.stop(sig)
    assert code == 0
    assert not crid.sock.exists()


def test_sigterm_with_an_idle_client_connected(crid, pb):
    # kubelet keeps its connection open; crid must still exit, cleanly and
    # within its shutdown grace.
    channel = crid.new_channel()
    try:
        stub = crid.api.grpc.RuntimeServiceStub(channel)
        stub.Version(pb.VersionRequest(), timeout=5)
        started = time.monotonic()
        code = crid.stop(timeout=12)
        assert code == 0
        assert time.monotonic() - started < 12
        assert not crid.sock.exists()
    finally:
        channel.close()


def test_second_instance_with_same_state_dir_is_refused(crid_factory, pb):
    first = crid_factory()
    second = crid_factory(state_dir=first.state_dir, start=False)
    second.start(wait=False)
    code = second.wait(timeout=10)
    assert code is not None, "the second crid is still running"
    assert code != 0
    log = second.log_text().lower()
    assert "lock" in log or "another crid" in log, second.log_tail()
    assert not second.sock.exists()
    # The first one is unaffected.
    assert first.running()
    r = first.runtime.Version(pb.VersionRequest(), timeout=5)
    assert r.runtime_name == "crid"


def test_stale_socket_is_replaced(crid, pb):
    crid.kill()
    assert crid.returncode == -signal.SIGKILL
    # A crash leaves the socket file behind.
    assert stat.S_ISSOCK(os.lstat(crid.sock).st_mode)
    crid.start()
    r = crid.runtime.Version(pb.VersionRequest(), timeout=5)
    assert r.runtime_name == "crid"
    assert crid.stop() == 0
    assert not crid.sock.exists()


def test_socket_mode_is_0660(crid):
    st = os.lstat(crid.sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660


# --------------------------------------------------------------------------
# Reload


def version_debug_lines(crid):
    return [l for l in crid.log_lines() if "[Version " in l and "done in" in l]


def test_sighup_reloads_log_level(crid_factory, pb):
    crid = crid_factory(log_level="info")
    stub = crid.runtime  # the same channel before and after the reload
    stub.Version(pb.VersionRequest(), timeout=5)
    time.sleep(0.2)
    assert version_debug_lines(crid) == [], "Version logged at info level"

    crid.write_config(config={"crid": {"log_level": "debug"}})
    crid.signal(signal.SIGHUP)

    def debug_line_appears():
        stub.Version(pb.VersionRequest(), timeout=5)
        return version_debug_lines(crid)

    wait_for(debug_line_appears, timeout=5, interval=0.1, message="a debug line for Version")
    assert crid.running()
    assert stub.Version(pb.VersionRequest(), timeout=5).runtime_name == "crid"


def test_sighup_with_bad_config_keeps_running_config(crid_factory, pb):
    crid = crid_factory(log_level="info")
    stub = crid.runtime
    crid.write_config(extra_config="[crid.metrics]\nbogus_reload_key = 1\n")
    crid.signal(signal.SIGHUP)
    crid.wait_log(lambda l: "bogus_reload_key" in l, message="the reload error naming the key")
    assert crid.running()
    assert stub.Version(pb.VersionRequest(), timeout=5).runtime_name == "crid"
    # Still at info level.
    time.sleep(0.2)
    assert version_debug_lines(crid) == []
    assert crid.stop() == 0


def test_a_failed_start_leaves_no_pinned_runtime_binary(api):
    """Regression: crid pins each runtime binary (a read-only bind mount
    under <state>/runtime-bin) before recovery; a start that failed after
    that (here: crid-pause missing) left those mounts behind."""
    crid = cridtest.CopiedCrid(api, programs=("crid", "crid-conmon"))
    try:
        with pytest.raises(cridtest.CridError):
            crid.start(timeout=20)
        assert crid.returncode == 1
        assert "crid-pause" in crid.log_text()
        assert nsutil.mounts_under(crid.dir) == [], "pinned runtime binaries left mounted"
    finally:
        crid.cleanup()
