"""CDI devices end to end, on crun and runc: spec files (JSON and YAML)
made by the test in the directories of `cdi_spec_dirs`, devices asked for
through ContainerConfig.CDI_devices and cdi.k8s.io/ annotations, and what
the container then has: a device node (the host's /dev/null under another
path), an environment variable, a mount, extra groups, and a hook that
writes a file on the host.  Unknown devices, conflicting edits and a
malformed spec file give clear errors and leave nothing behind; a spec
file added while crid runs is used without a restart.

Same world as test_containers.py (its ContainerEnv: a network namespace,
bridge and cgroup parent per test, the busybox image imported).
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

import grpc
import pytest

import cridtest
from test_containers import (  # noqa: F401  (fixtures pytest must see)
    ContainerEnv,
    handler,
    podenv_factory,
)

KIND = "crid.test/dev"


@pytest.fixture
def cdi_dirs():
    """Two spec directories (low and high priority) and a scratch dir."""
    base = Path(tempfile.mkdtemp(prefix="crid-cdi-", dir="/tmp"))
    dirs = (base / "etc-cdi", base / "run-cdi", base / "scratch")
    for d in dirs:
        d.mkdir()
    yield dirs
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def env(podenv_factory, cdi_dirs):
    low, high, _ = cdi_dirs
    container_env = ContainerEnv(
        podenv_factory, config={"crid.runtime": {"cdi_spec_dirs": [str(low), str(high)]}}
    )
    yield container_env
    crid = container_env.crid
    if crid.running():
        try:
            for sandbox in container_env.pod.list():
                container_env.remove_pod(sandbox.id)
        except grpc.RpcError as e:
            print(f"removing the pods after the test failed: {e}")


def write_atomic(path, text):
    tmp = path.parent / f".{path.name}.tmp"
    tmp.write_text(text)
    os.rename(tmp, path)


def main_spec_yaml(scratch):
    """A YAML spec: spec-level env, a device node from /dev/null, a mount,
    a createRuntime hook that writes a file on the host, extra groups."""
    hook_file = scratch / "hook-ran"
    return f"""---
cdiVersion: "0.7.0"
kind: {KIND}
containerEdits:
  env: ["CDI_SPEC_LEVEL=1"]
devices:
- name: "null"
  containerEdits:
    env: ["CDI_DEVICE=null"]
    deviceNodes:
    - path: /dev/crid-cdi-null
      hostPath: /dev/null
      permissions: rw
    mounts:
    - hostPath: {scratch}/share
      containerPath: /mnt/cdi
      options: [ro, rbind]
    hooks:
    - hookName: createRuntime
      path: /bin/sh
      args: ["sh", "-c", "cat >/dev/null; echo ran > {hook_file}"]
    additionalGids: [4242]
- name: "0"
  containerEdits:
    env: ["CDI_DEVICE=zero", "CDI_OTHER=x"]
"""


def annotated_spec_json():
    return json.dumps(
        {
            "cdiVersion": "0.6.0",
            "kind": "crid.test/annotated",
            "devices": [{"name": "a1", "containerEdits": {"env": ["CDI_ANNOTATED=yes"]}}],
        }
    )


def cdi_info(env):
    info = env.crid.runtime.Status(env.pb.StatusRequest(verbose=True), timeout=30).info
    return json.loads(info["cdi"])


def exec_out(env, container_id, cmd):
    result = env.exec_sync(container_id, cmd)
    assert result.exit_code == 0, (cmd, result.stderr)
    return result.stdout.decode()


def assert_no_container_left(env):
    assert env.list() == []
    containers = env.crid.root / "containers"
    assert not containers.is_dir() or not any(containers.iterdir()), sorted(
        os.listdir(containers)
    )


# --------------------------------------------------------------------------


def test_cdi_devices_reach_the_container(env, handler, cdi_dirs):
    pb = env.pb
    low, high, scratch = cdi_dirs
    (scratch / "share").mkdir()
    (scratch / "share" / "file").write_text("from the host\n")
    write_atomic(low / "main.yaml", main_spec_yaml(scratch))
    write_atomic(high / "annotated.json", annotated_spec_json())
    cridtest.wait_for(
        lambda: {f"{KIND}=null", "crid.test/annotated=a1"} <= set(cdi_info(env)["devices"]),
        timeout=10,
        message="the spec files in Status",
    )

    sandbox_id, sandbox_config = env.run_pod("cdi", handler)
    config = env.container_config(
        "cdi",
        ["/bin/sh", "-c", "sleep 300"],
        annotations={"cdi.k8s.io/test_plugin": "crid.test/annotated=a1"},
        CDI_devices=[pb.CDIDevice(name=f"{KIND}=null"), pb.CDIDevice(name=f"{KIND}=null")],
    )
    container_id = env.create(sandbox_id, sandbox_config, config)
    # createRuntime ran on the host during create.
    assert (scratch / "hook-ran").read_text() == "ran\n"
    spec = json.loads((env.crid.root / "containers" / container_id / "config.json").read_text())
    rules = spec["linux"]["resources"]["devices"]
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"} in rules
    env.start(container_id)

    environment = exec_out(env, container_id, ["env"]).split("\n")
    assert "CDI_SPEC_LEVEL=1" in environment
    assert "CDI_DEVICE=null" in environment
    assert "CDI_ANNOTATED=yes" in environment
    listing = exec_out(env, container_id, ["ls", "-l", "/dev/crid-cdi-null"])
    assert listing.startswith("c") and "1,   3" in listing, listing
    assert exec_out(env, container_id, ["sh", "-c", "echo x > /dev/crid-cdi-null && echo ok"]) == (
        "ok\n"
    )
    assert exec_out(env, container_id, ["cat", "/mnt/cdi/file"]) == "from the host\n"
    write = env.exec_sync(container_id, ["sh", "-c", "echo x > /mnt/cdi/new"])
    assert write.exit_code != 0, "the CDI mount is read-only"
    groups = exec_out(env, container_id, ["id", "-G"]).split()
    assert "4242" in groups

    env.stop(container_id)
    env.remove(container_id)
    env.remove_pod(sandbox_id)
    env.assert_clean()


def test_cdi_bad_input_leaves_nothing(env, handler, cdi_dirs):
    pb = env.pb
    low, high, scratch = cdi_dirs
    (scratch / "share").mkdir()
    write_atomic(low / "main.yaml", main_spec_yaml(scratch))
    # Another device that sets CDI_DEVICE differently from "null", and a
    # malformed spec file beside the good ones.
    write_atomic(
        high / "other.json",
        json.dumps(
            {
                "cdiVersion": "0.6.0",
                "kind": "crid.test/other",
                "devices": [{"name": "clash", "containerEdits": {"env": ["CDI_DEVICE=other"]}}],
            }
        ),
    )
    write_atomic(high / "broken.yaml", "cdiVersion: 0.6.0\nkind: nokind\ndevices: [\n")
    info = cridtest.wait_for(
        lambda: (lambda i: i if any("broken.yaml" in e["file"] for e in i["errors"]) else None)(
            cdi_info(env)
        ),
        timeout=10,
        message="the malformed spec in Status",
    )
    broken = [e for e in info["errors"] if e["file"].endswith("broken.yaml")][0]
    assert "YAML" in broken["error"], broken
    assert "crid.test/other=clash" in info["devices"]
    assert env.crid.wait_log(lambda line: "broken.yaml" in line, message="the bad spec logged")

    sandbox_id, sandbox_config = env.run_pod("cdibad", handler)
    cases = [
        (
            [pb.CDIDevice(name=f"{KIND}=nope")],
            {},
            grpc.StatusCode.NOT_FOUND,
            [f"unknown CDI device {KIND}=nope", str(low)],
        ),
        (
            [pb.CDIDevice(name=f"{KIND}=null")],
            {"cdi.k8s.io/clash": "crid.test/other=clash"},
            grpc.StatusCode.INVALID_ARGUMENT,
            [f"{KIND}=null", "crid.test/other=clash", "main.yaml", "other.json", "CDI_DEVICE"],
        ),
        (
            [],
            {"cdi.k8s.io/bad": "not-qualified"},
            grpc.StatusCode.INVALID_ARGUMENT,
            ["cdi.k8s.io/bad", "not fully qualified"],
        ),
    ]
    for devices, annotations, code, words in cases:
        config = env.container_config(
            "bad", ["/bin/true"], annotations=annotations, CDI_devices=devices
        )
        error = cridtest.rpc_error(
            env.crid.runtime.CreateContainer,
            pb.CreateContainerRequest(
                pod_sandbox_id=sandbox_id, config=config, sandbox_config=sandbox_config
            ),
            timeout=30,
        )
        assert error.code() == code, error.details()
        for word in words:
            assert word in error.details(), (word, error.details())
        assert_no_container_left(env)
    assert not (scratch / "hook-ran").exists()

    # The malformed file does not stop the others: "0" (a YAML device name
    # that looks like a number) still works.
    container_id = env.run(
        sandbox_id, sandbox_config, "good", ["/bin/sh", "-c", "sleep 300"],
        CDI_devices=[pb.CDIDevice(name=f"{KIND}=0")],
    )
    assert "CDI_DEVICE=zero" in exec_out(env, container_id, ["env"]).split("\n")
    env.stop(container_id)
    env.remove(container_id)
    env.remove_pod(sandbox_id)
    env.assert_clean()


def test_cdi_spec_added_while_running(env, cdi_dirs):
    pb = env.pb
    low, high, scratch = cdi_dirs
    sandbox_id, sandbox_config = env.run_pod("cdilate", "crun")
    config = env.container_config(
        "late", ["/bin/sh", "-c", "sleep 300"], CDI_devices=[pb.CDIDevice(name="crid.test/late=x")]
    )
    error = cridtest.rpc_error(
        env.crid.runtime.CreateContainer,
        pb.CreateContainerRequest(
            pod_sandbox_id=sandbox_id, config=config, sandbox_config=sandbox_config
        ),
        timeout=30,
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND, error.details()

    write_atomic(
        high / "late.json",
        json.dumps(
            {
                "cdiVersion": "1.1.0",
                "kind": "crid.test/late",
                "devices": [{"name": "x", "containerEdits": {"env": ["CDI_LATE=1"]}}],
            }
        ),
    )
    cridtest.wait_for(
        lambda: "crid.test/late=x" in cdi_info(env)["devices"],
        timeout=10,
        message="the new spec file picked up",
    )
    container_id = env.create(sandbox_id, sandbox_config, config)
    env.start(container_id)
    assert "CDI_LATE=1" in exec_out(env, container_id, ["env"]).split("\n")
    env.stop(container_id)
    env.remove(container_id)

    # Removed again: unknown again, without a restart.
    (high / "late.json").unlink()
    cridtest.wait_for(
        lambda: "crid.test/late=x" not in cdi_info(env)["devices"],
        timeout=10,
        message="the removed spec file dropped",
    )
    env.remove_pod(sandbox_id)
    env.assert_clean()
