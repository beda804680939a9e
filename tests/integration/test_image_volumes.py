"""Image volumes (KEP-4639): a CRI Mount with `image` set mounts that
image's root file system read-only into the container, or only its
`image_sub_path`; the image stays in use (RemoveImage refuses it) while a
container mounts it, and the mount goes with the container, also across a
crid restart.

The images are built in the test (tests/fixtures/build_images.py) and
imported with `crid image import` before crid starts, like
test_containers.py: no registry.  Every test runs on crun and runc and
ends with nothing left: no mount under crid's dirs, no container dir.
"""

import signal

import grpc
import pytest

import cridtest
from test_containers import ContainerEnv, build_images, states
from test_sandbox import HANDLERS, podenv_factory  # noqa: F401

RPC_TIMEOUT = 30.0
VOLUME_NAME = "localhost/crid-test/tools:1"
SINGLE_NAME = "localhost/crid-test/single:1"


def volume_image():
    """Two layers, so that the volume is a real overlay: the upper one
    replaces a file of the lower one and deletes another."""
    lower = build_images.TarBuilder()
    lower.dir("data").file("data/version", "1\n").file("data/gone", "lower\n")
    lower.dir("data/sub").file("data/sub/inner", "inner file\n")
    upper = build_images.TarBuilder()
    upper.dir("data").file("data/version", "2\n").whiteout("data/gone")
    upper.file("data/tool.sh", "#!/bin/sh\necho tool ran\n", mode=0o755)
    upper.symlink("data/inside", "sub")
    upper.symlink("data/up", "../../..")
    upper.symlink("data/abs", "/etc")
    upper.symlink("data/loop", "loop")
    return build_images.Image([lower.bytes(), upper.bytes()], config={})


def single_layer_image():
    t = build_images.TarBuilder()
    t.dir("only").file("only/one", "single layer\n")
    return build_images.Image([t.bytes()], config={})


class VolumeEnv(ContainerEnv):
    """ContainerEnv with the volume images imported beside busybox."""

    def __init__(self, podenv_factory):  # noqa: F811
        self.volume = volume_image()
        self.single = single_layer_image()
        super().__init__(podenv_factory, {VOLUME_NAME: self.volume, SINGLE_NAME: self.single})

    def image_mount(self, container_path, image, sub_path="", **kwargs):
        return self.pb.Mount(
            container_path=container_path,
            image=self.pb.ImageSpec(image=image),
            image_sub_path=sub_path,
            **kwargs,
        )

    def remove_image(self, image):
        self.crid.image.RemoveImage(
            self.pb.RemoveImageRequest(image=self.pb.ImageSpec(image=image)), timeout=RPC_TIMEOUT
        )

    def has_image(self, image):
        response = self.crid.image.ImageStatus(
            self.pb.ImageStatusRequest(image=self.pb.ImageSpec(image=image)), timeout=RPC_TIMEOUT
        )
        return response.HasField("image")

    def sh(self, container_id, script):
        response = self.exec_sync(container_id, ["/bin/sh", "-c", script], timeout=10)
        return response.exit_code, response.stdout.decode(), response.stderr.decode()

    def volume_mounts(self):
        return [m for m in mount_points() if "/image-volumes/" in m]


def mount_points():
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f]


@pytest.fixture(params=HANDLERS)
def handler(request):
    return request.param


@pytest.fixture
def env(podenv_factory):  # noqa: F811
    return VolumeEnv(podenv_factory)


def refused(env, sandbox_id, sandbox_config, mounts, name="bad"):
    config = env.container_config(name, ["/bin/sleep", "1000"], mounts=mounts)
    return cridtest.rpc_error(env.create, sandbox_id, sandbox_config, config)


def assert_no_trace(env):
    assert env.list() == []
    assert env.volume_mounts() == []
    containers = env.crid.root / "containers"
    assert not containers.is_dir() or not any(containers.iterdir())


# --------------------------------------------------------------------------


def test_image_volume_read_only_with_sub_path(env, handler):
    pb = env.pb
    _, RUNNING, _ = states(pb)
    sandbox_id, sandbox_config = env.run_pod("vol", handler)
    mounts = [
        env.image_mount("/tools", VOLUME_NAME),
        env.image_mount("/inner", env.volume.id, sub_path="data/sub"),
        env.image_mount("/linked", VOLUME_NAME, sub_path="data/inside"),
        env.image_mount("/one", SINGLE_NAME, sub_path="only/one"),
    ]
    container_id = env.run(sandbox_id, sandbox_config, "reader", ["/bin/sleep", "1000"],
                           mounts=mounts)
    assert env.state(container_id) == RUNNING

    # The layers merged: the upper's file wins, the whiteout hides.
    assert env.sh(container_id, "cat /tools/data/version")[1] == "2\n"
    assert env.sh(container_id, "test -e /tools/data/gone")[0] != 0
    assert env.sh(container_id, "/tools/data/tool.sh")[1] == "tool ran\n"
    # Sub paths: a directory, one through a symlink that stays inside, a file.
    assert env.sh(container_id, "cat /inner/inner")[1] == "inner file\n"
    assert env.sh(container_id, "ls /inner")[1].split() == ["inner"]
    assert env.sh(container_id, "cat /linked/inner")[1] == "inner file\n"
    assert env.sh(container_id, "cat /one")[1] == "single layer\n"
    # Read-only, whatever the request said.
    for path in ("/tools/data/new", "/tools/data/version", "/inner/x", "/one"):
        code, _, err = env.sh(container_id, f"echo x > {path}")
        assert code != 0 and "Read-only file system" in err, (path, err)

    status = env.status(container_id).status
    shown = {m.container_path: m for m in status.mounts}
    assert shown["/tools"].image.image == VOLUME_NAME
    assert shown["/tools"].image.image_ref == env.volume.id
    assert shown["/inner"].image_sub_path == "data/sub"
    assert shown["/inner"].image.image_ref == env.volume.id
    assert shown["/one"].image.image_ref == env.single.id

    # In use while mounted, by any name of the image.
    for name in (VOLUME_NAME, env.volume.id):
        error = cridtest.rpc_error(env.remove_image, name)
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
    assert env.has_image(VOLUME_NAME)

    env.stop(container_id)
    # Exited but not removed: still in use.
    assert cridtest.rpc_error(env.remove_image, SINGLE_NAME).code() == (
        grpc.StatusCode.FAILED_PRECONDITION
    )
    env.remove(container_id)
    assert env.volume_mounts() == []
    env.remove_image(VOLUME_NAME)
    env.remove_image(SINGLE_NAME)
    assert not env.has_image(env.volume.id) and not env.has_image(SINGLE_NAME)
    env.remove_pod(sandbox_id)
    env.assert_clean()


def test_bad_image_volumes_leave_no_trace(env, handler):
    sandbox_id, sandbox_config = env.run_pod("badvol", handler)
    cases = [
        (env.image_mount("/v", "localhost/crid-test/absent:1"), grpc.StatusCode.NOT_FOUND,
         "absent"),
        (env.image_mount("/v", VOLUME_NAME, sub_path="data/../../etc"),
         grpc.StatusCode.INVALID_ARGUMENT, '".."'),
        (env.image_mount("/v", VOLUME_NAME, sub_path="/data"), grpc.StatusCode.INVALID_ARGUMENT,
         "relative"),
        (env.image_mount("/v", VOLUME_NAME, sub_path="data/up"),
         grpc.StatusCode.INVALID_ARGUMENT, "leads out of the image"),
        (env.image_mount("/v", VOLUME_NAME, sub_path="data/abs"),
         grpc.StatusCode.INVALID_ARGUMENT, "leads out of the image"),
        (env.image_mount("/v", VOLUME_NAME, sub_path="data/loop"),
         grpc.StatusCode.INVALID_ARGUMENT, "symbolic links"),
        (env.image_mount("/v", VOLUME_NAME, sub_path="data/missing"),
         grpc.StatusCode.INVALID_ARGUMENT, "does not exist in the image"),
        (env.pb.Mount(container_path="/v", host_path=str(env.crid.dir),
                      image=env.pb.ImageSpec(image=VOLUME_NAME)),
         grpc.StatusCode.INVALID_ARGUMENT, "both a host path and an image"),
    ]
    for mount, code, text in cases:
        # A good volume first: what it mounted must go too.
        error = refused(env, sandbox_id, sandbox_config,
                        [env.image_mount("/good", VOLUME_NAME), mount])
        assert error.code() == code, (mount, error)
        assert text in error.details(), (mount, error.details())
        assert "/v" in error.details(), error.details()
        assert_no_trace(env)
    # Nothing holds the image after the refusals.
    env.remove_image(SINGLE_NAME)
    env.remove_pod(sandbox_id)
    env.assert_clean()


def test_image_volume_survives_restart(env, handler):
    pb = env.pb
    _, RUNNING, _ = states(pb)
    sandbox_id, sandbox_config = env.run_pod("volrestart", handler)
    container_id = env.run(sandbox_id, sandbox_config, "keeper", ["/bin/sleep", "1000"],
                           mounts=[env.image_mount("/tools", VOLUME_NAME, sub_path="data")])
    before = env.volume_mounts()
    assert len(before) == 1
    env.crid.signal(signal.SIGKILL)
    assert env.crid.wait() is not None
    env.crid.start()
    assert env.state(container_id) == RUNNING
    assert env.volume_mounts() == before
    assert env.sh(container_id, "cat /tools/version")[1] == "2\n"
    status = env.status(container_id).status
    assert status.mounts[0].image.image_ref == env.volume.id
    error = cridtest.rpc_error(env.remove_image, VOLUME_NAME)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
    env.stop(container_id)
    env.remove(container_id)
    assert env.volume_mounts() == []
    env.remove_image(VOLUME_NAME)
    env.remove_pod(sandbox_id)
    env.assert_clean()


@pytest.mark.parametrize("name", ["container.after-rootfs", "container.remove-after-runtime-delete"])
def test_crash_with_image_volume_leaves_nothing(env, handler, name):
    """crid killed with the volume mounted (create half done, or remove
    half done): after the restart (and the kubelet's retried remove)
    nothing holds the mount or the image."""
    from test_crash_consistency import crash_then_restart, restart_with_failpoint

    sandbox_id, sandbox_config = env.run_pod("volcrash", handler)
    config = env.container_config("victim", ["/bin/sleep", "1000"],
                                  mounts=[env.image_mount("/tools", VOLUME_NAME)])
    if name == "container.after-rootfs":
        plain = restart_with_failpoint(env.crid, name)
        crash_then_restart(env.crid, plain, lambda: env.create(sandbox_id, sandbox_config, config))
        assert env.list() == []
    else:
        container_id = env.create(sandbox_id, sandbox_config, config)
        env.start(container_id)
        assert len(env.volume_mounts()) == 1
        plain = restart_with_failpoint(env.crid, name)
        crash_then_restart(env.crid, plain, lambda: env.remove(container_id))
        env.remove(container_id)
    assert_no_trace(env)
    env.remove_image(VOLUME_NAME)
    env.remove_pod(sandbox_id)
    env.assert_clean()


def test_image_volume_in_a_user_namespace_keeps_its_owners(env, handler):
    """In a pod with a user namespace, an image volume is idmapped like the
    root file system: the image's root-owned files show as root inside,
    not as the overflow id; it stays read-only."""
    from test_userns import userns_pod_config

    config = userns_pod_config(env, "vol-userns", handler)
    sandbox_id = env.pod.run_pod(config, handler=handler)
    container_id = env.run(sandbox_id, config, "reader", ["/bin/sleep", "1000"],
                           mounts=[env.image_mount("/tools", VOLUME_NAME)])
    code, owners, _ = env.sh(container_id, "stat -c '%u:%g' /tools/data/version /etc/passwd")
    assert code == 0 and owners.split() == ["0:0", "0:0"], owners
    assert env.sh(container_id, "echo x > /tools/data/new")[0] != 0
    env.remove_pod(sandbox_id)
    assert_no_trace(env)
