"""pause_image: every pod's pause runs from the configured image instead of
crid's built-in root: pulled with the node's registry settings the first
time a pod needs it, mounted once, pinned in ListImages and refused by
RemoveImage while configured.  Runs on crun and runc inside the pod
network namespace of test_sandbox.py, with a docker-registry there."""

import sys
from pathlib import Path

import grpc

import cridtest
import netns as nsutil
import registry as regutil
from test_sandbox import RPC_TIMEOUT, handler, podenv_factory  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import build_images  # noqa: E402

PAUSE_REPO = "crid-test/pause"
MARKER = "pause-image-marker"


def pause_image():
    """crid-pause under another name, and a file only the image has."""
    binary = (cridtest.REPO / "build" / "bin" / "crid-pause").read_bytes()
    layer = build_images.TarBuilder()
    layer.dir("bin").file("bin/image-pause", binary, mode=0o755)
    layer.file(MARKER, "from the image\n")
    return build_images.Image([layer.bytes()], config={"Entrypoint": ["/bin/image-pause"]})


def pause_of(env, sandbox_id):
    return env.info(sandbox_id)["pid"]


def test_pods_run_their_pause_from_the_configured_image(podenv_factory, tmp_path, handler, pb):
    env = podenv_factory(start=False)
    reg = regutil.Registry(env.ns.path, tmp_path / "registry").start()
    try:
        reg.push(pause_image(), PAUSE_REPO, "1")
        reference = f"{reg.host}/{PAUSE_REPO}:1"
        env.crid.write_dropin(
            "50-pause.conf",
            f'[crid.image]\npause_image = "{reference}"\n'
            f'[crid.image.registries."{reg.host}"]\ninsecure = true\n',
        )
        env.crid.start()
        # Nothing is pulled before a pod needs it.
        assert len(env.crid.image.ListImages(pb.ListImagesRequest(), timeout=RPC_TIMEOUT).images) == 0

        first = env.run_pod(env.pod_config("pause-image-a"), handler)
        second = env.run_pod(env.pod_config("pause-image-b"), handler)
        for sandbox_id in (first, second):
            pid = pause_of(env, sandbox_id)
            assert Path(f"/proc/{pid}/root/{MARKER}").read_text() == "from the image\n"
            assert Path(f"/proc/{pid}/cmdline").read_bytes() == b"/bin/image-pause\0"
        pulls = [r for r in reg.requests() if "/manifests/" in r[1] and r[0] == "GET"]
        assert len(pulls) == 1, f"the pause image was pulled more than once: {pulls}"

        images = env.crid.image.ListImages(pb.ListImagesRequest(), timeout=RPC_TIMEOUT).images
        assert [(list(i.repo_tags), i.pinned) for i in images] == [([reference], True)]
        err = cridtest.rpc_error(
            env.crid.image.RemoveImage,
            pb.RemoveImageRequest(image=pb.ImageSpec(image=reference)),
            timeout=RPC_TIMEOUT,
        )
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err

        env.stop_and_remove(first)
        env.stop_and_remove(second)
    finally:
        reg.stop()
    env.assert_clean()
    root = env.crid.root / "pause" / "images"
    assert nsutil.mounts_under(root), "the pause image is not mounted while crid runs"
    env.crid.stop()
    assert nsutil.mounts_under(env.crid.dir) == [], "crid left the pause image mounted"


def test_a_pause_image_that_cannot_be_pulled_fails_the_pod_and_leaves_nothing(
    podenv_factory, handler, pb
):
    env = podenv_factory(start=False)
    port = regutil.closed_port(env.ns.path)
    reference = f"127.0.0.1:{port}/{PAUSE_REPO}:1"
    env.crid.write_dropin(
        "50-pause.conf",
        f'[crid.image]\npause_image = "{reference}"\n'
        f'[crid.image.registries."127.0.0.1:{port}"]\ninsecure = true\n',
    )
    env.crid.start()
    err = env.run_error(env.pod_config("pause-image-missing"), handler)
    assert err.code() != grpc.StatusCode.OK
    assert "pause image" in (err.details() or ""), err.details()
    assert env.list() == []
    env.assert_clean("after a pause image pull failed")


def test_a_malformed_pause_image_is_refused_at_start(crid_factory):
    crid = crid_factory(start=False, config={"crid.image": {"pause_image": "Not A Reference!"}})
    result = crid.cli("config")
    assert result.returncode != 0
    assert "pause_image" in result.stderr and "image reference" in result.stderr, result.stderr
