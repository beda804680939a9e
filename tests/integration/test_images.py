"""ImageService end to end: PullImage, ImageStatus, ListImages, RemoveImage
and ImageFsInfo against local docker-registry instances.

Isolation: one network namespace per module (``crid-t-<hex>``, only lo);
every registry, the token server, the proxies and every crid run inside it,
so nothing a test does can reach another machine: a name crid must not
resolve (``registry.test``, ``docker.io``) fails there at once.  Images are
built by tests/fixtures/build_images.py from /bin/busybox and pushed with
skopeo (--preserve-digests) or, where bytes must be exact or malformed,
with plain distribution-API requests.

Module-scoped (built once): the namespace, a plain HTTP registry holding
every image, an empty mirror, a TLS + htpasswd registry with a test CA and
a token-auth registry with its token server.  Each test starts its own crid
(own root, state dir, socket).  Every wait is bounded.

Image ids are compared as the config digest; both ``sha256:<hex>`` and the
bare hex are accepted (the facts leave the form open), but
``PullImageResponse.image_ref`` must equal ``Image.id`` (CRI 1.36 rule).
"""

import base64
import concurrent.futures
import hashlib
import io
import json
import os
import platform
import re
import secrets
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import grpc
import pytest

import cridtest
import netns as nsutil
import registry as regutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))

import build_images as bi  # noqa: E402

PULL_TIMEOUT = 60.0
RPC_TIMEOUT = 10.0
REPO = "crid/busybox"

BASIC_USER, BASIC_PASSWORD = "alice", "Al1ce-basic-pw-7f3e"
WRONG_PASSWORD = "Wr0ng-pw-xyzzy-91c2"
TOKEN_USER, TOKEN_PASSWORD = "bob", "B0b-token-pw-4d1a"

GO_ARCH = {"x86_64": ("amd64", None), "aarch64": ("arm64", None), "armv7l": ("arm", "v7")}


def host_platform():
    return GO_ARCH.get(platform.machine(), (platform.machine(), None))


# --------------------------------------------------------------------------
# Module fixtures: namespace, images, registries


@pytest.fixture(scope="module")
def net():
    ns = nsutil.TestNetns()
    try:
        yield ns
        # Every registry, proxy and crid of the module has stopped by now.
        left = ns.processes(exclude=(os.getpid(),))
        assert left == [], f"processes left in {ns.name}: {left}"
    finally:
        ns.delete()


@pytest.fixture(scope="module")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="crid-imgtest-", dir="/tmp"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def images():
    imgs = bi.standard_images()
    imgs["docker-list"] = bi.multiarch_index(docker=True)
    imgs["concurrent"] = bi.busybox_image("gzip", variant="concurrent")
    imgs["short"] = bi.busybox_image("gzip", variant="short-name")
    imgs["big"] = bi.big_image()
    imgs["sizes"] = bi.sized_layers_image()
    return imgs


@pytest.fixture(scope="module")
def layout(images, workdir):
    oci = {k: v for k, v in images.items() if k != "docker-list"}
    return bi.write_oci_layout(workdir / "layout", oci)


@pytest.fixture(scope="module")
def sentinel():
    """A directory outside every store; hostile layers aim at it."""
    d = Path(tempfile.mkdtemp(prefix="crid-sentinel-", dir="/tmp"))
    (d / "target").write_text("sentinel\n")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def hostile(sentinel):
    return bi.hostile_images(sentinel)


@pytest.fixture(scope="module")
def reg(net, workdir, images, layout, hostile):
    """Plain HTTP registry with every test image."""
    r = regutil.Registry(net.path, workdir / "reg-plain", label="plain").start()
    try:
        for tag in ["gzip", "zstd", "uncompressed", "named-user", "whiteout"]:
            r.push_skopeo(layout, tag, REPO)
        r.push_skopeo(layout, "multiarch", "crid/multiarch", dest_tag="latest", all_images=True)
        r.push_skopeo(layout, "concurrent", "crid/concurrent", dest_tag="1")
        r.push_skopeo(layout, "short", "library/busybox", dest_tag="crid-test")
        r.push(images["docker-list"], "crid/multiarch-docker", "latest")
        r.push(images["big"], "crid/big", "1")
        r.push(images["sizes"], "crid/sizes", "1")
        for case, (image, _) in hostile.items():
            r.push(image, "crid/hostile", case)
        assert r.manifest_digest(REPO, "gzip") == images["gzip"].digest
        assert r.manifest_digest("crid/multiarch", "latest") == images["multiarch"].digest
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def empty_mirror(net, workdir):
    r = regutil.Registry(net.path, workdir / "reg-empty", label="empty").start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def tls_ca(workdir):
    return regutil.TestCA(workdir / "ca")


@pytest.fixture(scope="module")
def tls_reg(net, workdir, layout, tls_ca):
    """HTTPS (test CA) + htpasswd Basic auth."""
    r = regutil.Registry(
        net.path,
        workdir / "reg-tls",
        tls=tls_ca,
        htpasswd={BASIC_USER: BASIC_PASSWORD},
        label="tls",
    ).start()
    try:
        r.push_skopeo(layout, "gzip", REPO, creds=(BASIC_USER, BASIC_PASSWORD))
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def token_server(net, workdir):
    t = regutil.TokenServer(net.path, workdir / "token", {TOKEN_USER: TOKEN_PASSWORD}).start()
    try:
        yield t
    finally:
        t.stop()


@pytest.fixture(scope="module")
def token_reg(net, workdir, layout, token_server):
    r = regutil.Registry(net.path, workdir / "reg-token", token=token_server, label="token").start()
    try:
        r.push_skopeo(layout, "gzip", REPO, creds=(TOKEN_USER, TOKEN_PASSWORD))
        yield r
    finally:
        r.stop()


@pytest.fixture
def proxy(net, reg):
    p = regutil.Proxy(net.path, reg.host).start()
    try:
        yield p
    finally:
        p.stop()


# --------------------------------------------------------------------------
# crid helpers


def registries_config(entries):
    """{prefix: {key: value}} -> Crid config tables."""
    return {f'crid.image.registries."{prefix}"': dict(keys) for prefix, keys in entries.items()}


@pytest.fixture
def make_crid(crid_factory, net):
    def make(registries=None, image=None, start=True):
        config = registries_config(registries or {})
        if image:
            config["crid.image"] = dict(image)
        return crid_factory(netns=net.path, config=config, start=start)

    return make


@pytest.fixture
def crid_plain(make_crid, reg):
    """A crid that may talk plain HTTP to the main registry."""
    return make_crid({reg.host: {"insecure": True}})


def pull(crid, ref, auth=None, timeout=PULL_TIMEOUT, channel_stub=None):
    pb = crid.api.pb
    req = pb.PullImageRequest(image=pb.ImageSpec(image=ref))
    if auth is not None:
        req.auth.CopyFrom(auth)
    stub = channel_stub or crid.image
    return stub.PullImage(req, timeout=timeout)


def pull_error(crid, ref, auth=None, timeout=PULL_TIMEOUT):
    try:
        resp = pull(crid, ref, auth=auth, timeout=timeout)
    except grpc.RpcError as e:
        print(f"pull {ref!r}: {e.code()}: {e.details()}")  # shown with -s or on failure
        return e
    raise AssertionError(f"pull of {ref} succeeded ({resp.image_ref}); expected an error")


def status(crid, ref):
    pb = crid.api.pb
    resp = crid.image.ImageStatus(
        pb.ImageStatusRequest(image=pb.ImageSpec(image=ref)), timeout=RPC_TIMEOUT
    )
    return resp.image if resp.HasField("image") else None


def list_images(crid, ref=None):
    pb = crid.api.pb
    req = pb.ListImagesRequest()
    if ref is not None:
        req.filter.image.image = ref
    return list(crid.image.ListImages(req, timeout=RPC_TIMEOUT).images)


def remove(crid, ref):
    pb = crid.api.pb
    crid.image.RemoveImage(
        pb.RemoveImageRequest(image=pb.ImageSpec(image=ref)), timeout=RPC_TIMEOUT
    )


def id_hex(image_id):
    return image_id.split(":", 1)[1] if image_id.startswith("sha256:") else image_id


def hexof(digest):
    return digest.split(":", 1)[1]


def images_dir(crid):
    return Path(crid.root) / "images"


def layer_dirs(crid):
    """{chain hex: layer dir} of every extracted layer in the store."""
    out = {}
    base = images_dir(crid) / "layers"
    if not base.is_dir():
        return out
    for entry in base.iterdir():
        m = re.search(r"[0-9a-f]{64}", entry.name)
        if m and entry.is_dir():
            out[m.group(0)] = entry
    return out


def diff_dir(crid, chain_id):
    dirs = layer_dirs(crid)
    layer = dirs.get(hexof(chain_id))
    assert layer is not None, (
        f"no layer dir for chain id {chain_id} under {images_dir(crid) / 'layers'}: "
        f"{sorted(dirs)}"
    )
    diff = layer / "diff"
    assert diff.is_dir(), f"{layer} has no diff/: {sorted(os.listdir(layer))}"
    return diff


def unverified_blobs(crid):
    """Blob files whose content does not hash to their name."""
    bad = []
    base = images_dir(crid) / "blobs" / "sha256"
    if not base.is_dir():
        return bad
    for entry in base.iterdir():
        if not re.fullmatch(r"[0-9a-f]{64}", entry.name):
            continue  # temp files are judged by store_leftovers
        h = hashlib.sha256()
        with open(entry, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != entry.name:
            bad.append(entry.name)
    return bad


METADATA_NAMES = re.compile(r"^(images\.json|.*\.lock|lock)$")


def store_leftovers(crid):
    """Every file (not directory) under <root>/images other than the image
    metadata file and lock files: after a failed first pull there should be
    none."""
    found = []
    base = images_dir(crid)
    for dirpath, dirnames, filenames in os.walk(base):
        for name in filenames:
            if not METADATA_NAMES.match(name):
                found.append(os.path.relpath(os.path.join(dirpath, name), base))
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                found.append(os.path.relpath(path, base))
    return sorted(found)


def assert_same_image(a, b, what):
    assert a is not None, f"ImageStatus by {what} returned no image"
    assert a == b, f"ImageStatus by {what} differs:\n{a}\nvs\n{b}"


def assert_error_text_clean(message, crid, secrets_=()):
    for s in secrets_:
        assert s not in message, f"the error message leaks a credential: {message!r}"
        assert s not in crid.log_text(), "crid's log leaks a credential"


def checked_pull(crid, ref, image, **kw):
    """Pulls ref, checks image_ref == Image.id == the config digest."""
    resp = pull(crid, ref, **kw)
    assert resp.image_ref, "empty image_ref"
    img = status(crid, ref)
    assert img is not None, f"ImageStatus({ref}) after pull returned no image"
    assert resp.image_ref == img.id, f"image_ref {resp.image_ref} != Image.id {img.id}"
    assert id_hex(img.id) == hexof(image.id), f"image id {img.id} is not config {image.id}"
    assert img.size > 0
    return img


# --------------------------------------------------------------------------
# Pull, status, list


def test_pull_by_tag(crid_plain, reg, images):
    crid = crid_plain
    image = images["gzip"]
    name = f"{reg.host}/{REPO}"
    ref = f"{name}:gzip"
    img = checked_pull(crid, ref, image)
    assert list(img.repo_tags) == [ref]
    assert list(img.repo_digests) == [f"{name}@{image.digest}"]
    assert img.HasField("uid") and img.uid.value == 1000, f"uid from User 1000:1000: {img}"
    assert img.username == ""

    by_id = status(crid, img.id)
    assert_same_image(by_id, img, "id")
    assert_same_image(status(crid, f"{name}@{image.digest}"), img, "digest")
    listed = list_images(crid)
    assert [i.id for i in listed] == [img.id]
    assert listed[0] == img


def mapped_files(crid):
    with open(f"/proc/{crid.pid}/maps") as f:
        return f.read()


def test_pull_stack_is_loaded_by_the_first_pull(crid_plain, reg, images):
    """An idle crid maps neither libcurl nor libarchive: crid-pull.so brings
    them at the first pull."""
    crid = crid_plain
    before = mapped_files(crid)
    for library in ("crid-pull.so", "libcurl", "libarchive"):
        assert library not in before, f"{library} mapped before any pull"
    checked_pull(crid, f"{reg.host}/{REPO}:gzip", images["gzip"])
    after = mapped_files(crid)
    assert "crid-pull.so" in after and "libcurl" in after, after


def test_pull_without_the_pull_plugin_fails_clearly(api, net, reg, images):
    """Without lib/crid/crid-pull.so a pull fails with the path it looked
    for, stores nothing, and the daemon keeps serving."""
    config = registries_config({reg.host: {"insecure": True}})
    crid = cridtest.CopiedCrid(api, netns=net.path, config=config)
    try:
        crid.start()
        ref = f"{reg.host}/{REPO}:gzip"
        err = pull_error(crid, ref)
        # Not NOT_FOUND: the image may well exist; a part of crid is missing.
        assert err.code() == grpc.StatusCode.UNKNOWN, err
        assert f"{crid.dir}/prefix/lib/crid/crid-pull.so" in err.details(), err.details()
        assert list_images(crid) == []
        assert status(crid, ref) is None
        crid.runtime.Version(crid.api.pb.VersionRequest(), timeout=RPC_TIMEOUT)
    finally:
        print(crid.log_tail())  # shown on failure
        crid.cleanup()


def test_pull_by_digest_then_tag(crid_plain, reg, images):
    crid = crid_plain
    image = images["zstd"]
    name = f"{reg.host}/{REPO}"
    by_digest = f"{name}@{image.digest}"
    img = checked_pull(crid, by_digest, image)
    assert list(img.repo_tags) == []
    assert list(img.repo_digests) == [by_digest]

    # The same image by tag gains the tag; the digest stays (once).
    img2 = checked_pull(crid, f"{name}:zstd", image)
    assert img2.id == img.id
    assert list(img2.repo_tags) == [f"{name}:zstd"]
    assert list(img2.repo_digests) == [by_digest]
    assert len(list_images(crid)) == 1


def test_named_user(crid_plain, reg, images):
    img = checked_pull(crid_plain, f"{reg.host}/{REPO}:named-user", images["named-user"])
    assert img.username == "app"
    assert not img.HasField("uid") or img.uid.value == 0, f"uid set for a named user: {img.uid}"


def test_image_status_missing(crid_plain, reg):
    crid = crid_plain
    assert status(crid, f"{reg.host}/{REPO}:not-pulled") is None
    assert status(crid, "sha256:" + "ab" * 32) is None
    assert status(crid, "ab" * 32) is None
    assert list_images(crid) == []


def test_list_images_filter(crid_plain, reg, images):
    crid = crid_plain
    name = f"{reg.host}/{REPO}"
    a = checked_pull(crid, f"{name}:gzip", images["gzip"])
    b = checked_pull(crid, f"{name}:uncompressed", images["uncompressed"])
    assert sorted(i.id for i in list_images(crid)) == sorted([a.id, b.id])
    only_b = list_images(crid, f"{name}:uncompressed")
    assert [i.id for i in only_b] == [b.id]
    assert [i.id for i in list_images(crid, a.id)] == [a.id]
    assert list_images(crid, f"{name}:not-pulled") == []


def test_short_name_via_docker_io_location(make_crid, reg, images):
    """docker.io mapped to the local registry: short names normalise to
    docker.io/library/NAME and resolve in ImageStatus."""
    crid = make_crid({"docker.io": {"location": reg.host, "insecure": True}})
    image = images["short"]
    since = reg.log_offset()
    img = checked_pull(crid, "busybox:crid-test", image)
    assert list(img.repo_tags) == ["docker.io/library/busybox:crid-test"]
    assert list(img.repo_digests) == [f"docker.io/library/busybox@{image.digest}"]
    for ref in [
        img.id,
        "busybox:crid-test",
        "library/busybox:crid-test",
        "docker.io/library/busybox:crid-test",
        f"busybox@{image.digest}",
        f"docker.io/library/busybox@{image.digest}",
    ]:
        assert_same_image(status(crid, ref), img, ref)
    assert any(
        m == "GET" and u == "/v2/library/busybox/manifests/crid-test"
        for m, u, _ in reg.requests(since)
    ), "the registry at location never served the manifest"


# --------------------------------------------------------------------------
# Index / manifest list


@pytest.mark.parametrize("kind", ["oci-index", "docker-list"])
def test_multiarch_picks_host_platform(crid_plain, reg, images, kind):
    crid = crid_plain
    index = images["multiarch" if kind == "oci-index" else "docker-list"]
    repo = "crid/multiarch" if kind == "oci-index" else "crid/multiarch-docker"
    arch, variant = host_platform()
    try:
        child = index.child(arch, variant)
    except KeyError:
        pytest.skip(f"no test image for host platform {arch}/{variant}")
    name = f"{reg.host}/{repo}"
    img = checked_pull(crid, f"{name}:latest", child)
    assert list(img.repo_tags) == [f"{name}:latest"]
    assert f"{name}@{index.digest}" in list(img.repo_digests), (
        f"repo_digests {list(img.repo_digests)} lack the index digest {index.digest}"
    )
    # Only the host child's layer was extracted, and it is the right one.
    assert set(layer_dirs(crid)) == {hexof(c) for c in child.chain_ids}
    marker = diff_dir(crid, child.chain_ids[0]) / "arch"
    expected = arch + (f"/{child.platform['variant']}" if child.platform.get("variant") else "")
    assert marker.read_text() == expected + "\n"

    # By the index digest: exactly that digest, no tag.
    remove(crid, img.id)
    by_digest = f"{name}@{index.digest}"
    img2 = checked_pull(crid, by_digest, child)
    assert list(img2.repo_tags) == []
    assert list(img2.repo_digests) == [by_digest]


# --------------------------------------------------------------------------
# Layers


@pytest.mark.parametrize("variant", ["gzip", "zstd", "uncompressed"])
def test_layer_compression(crid_plain, reg, images, variant):
    crid = crid_plain
    image = images[variant]
    checked_pull(crid, f"{reg.host}/{REPO}:{variant}", image)
    assert unverified_blobs(crid) == []
    base = diff_dir(crid, image.chain_ids[0])
    with open(bi.BUSYBOX, "rb") as f:
        want = hashlib.sha256(f.read()).hexdigest()
    with open(base / "bin/busybox", "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == want, "bin/busybox differs"
    st = os.lstat(base / "bin/busybox")
    assert stat.S_IMODE(st.st_mode) == 0o755
    assert os.lstat(base / "bin/bb").st_ino == st.st_ino, "hardlink bin/bb not kept"
    assert os.readlink(base / "bin/sh") == "busybox"
    assert stat.S_IMODE(os.lstat(base / "tmp").st_mode) == 0o1777
    home = os.lstat(base / "home/app")
    assert (home.st_uid, home.st_gid) == (1000, 1000)

    top = diff_dir(crid, image.chain_ids[1])
    assert (top / "etc/crid-image").read_text() == f"busybox {variant}\n"
    hello = os.lstat(top / "home/app/hello.txt")
    assert (hello.st_uid, hello.st_gid, stat.S_IMODE(hello.st_mode)) == (1000, 1000, 0o640)
    suid = os.lstat(top / "usr/bin/suid-test")
    assert stat.S_IMODE(suid.st_mode) == 0o4755, oct(suid.st_mode)


def merged_tree(root):
    """{relative path: content or None for directories} of a tree."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = None
        for f in filenames:
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                out[rel] = Path(path).read_text()
            else:
                out[rel] = f"<mode {oct(st.st_mode)}>"
    return out


def test_whiteouts_on_overlay(crid_plain, reg, images):
    crid = crid_plain
    image = images["whiteout"]
    checked_pull(crid, f"{reg.host}/{REPO}:whiteout", image)
    lowers = [str(diff_dir(crid, c)) for c in reversed(image.chain_ids)]  # top first
    mnt = crid.dir / "merged"
    mnt.mkdir()
    subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", "lowerdir=" + ":".join(lowers), str(mnt)],
        check=True, capture_output=True, timeout=10,
    )
    try:
        tree = merged_tree(mnt)
    finally:
        subprocess.run(["umount", str(mnt)], check=True, capture_output=True, timeout=10)
    assert tree == bi.WHITEOUT_MERGED
    assert nsutil.leaked_mounts_under(crid.dir) == []


# --------------------------------------------------------------------------
# Registries: auth, TLS, mirrors, location


def test_basic_auth_over_tls(make_crid, tls_reg, tls_ca, images, pb):
    crid = make_crid({tls_reg.host: {"ca_dir": str(tls_ca.ca_dir)}})
    image = images["gzip"]
    ref = f"{tls_reg.host}/{REPO}:gzip"
    creds = pb.AuthConfig(username=BASIC_USER, password=BASIC_PASSWORD)
    img = checked_pull(crid, ref, image, auth=creds)
    assert list(img.repo_tags) == [ref]
    remove(crid, ref)
    assert list_images(crid) == []
    # The pre-encoded form of the same credentials.
    encoded = base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()
    checked_pull(crid, ref, image, auth=pb.AuthConfig(auth=encoded))
    assert_error_text_clean("", crid, [BASIC_PASSWORD, encoded])


def test_basic_auth_wrong_password(make_crid, tls_reg, tls_ca, pb):
    crid = make_crid({tls_reg.host: {"ca_dir": str(tls_ca.ca_dir)}})
    ref = f"{tls_reg.host}/{REPO}:gzip"
    err = pull_error(crid, ref, auth=pb.AuthConfig(username=BASIC_USER, password=WRONG_PASSWORD))
    message = err.details() or ""
    assert err.code() != grpc.StatusCode.OK
    assert re.search(r"401|unauthori[sz]ed|authenticat", message, re.I), message
    assert_error_text_clean(message, crid, [WRONG_PASSWORD])
    # No credentials at all: same kind of failure.
    err = pull_error(crid, ref)
    assert re.search(r"401|unauthori[sz]ed|authenticat", err.details() or "", re.I), err.details()
    assert list_images(crid) == []


def test_tls_needs_the_ca(make_crid, tls_reg, pb):
    """Without ca_dir the test CA is unknown: the pull fails (no silent
    downgrade to plain HTTP or to no verification)."""
    crid = make_crid()
    err = pull_error(
        crid,
        f"{tls_reg.host}/{REPO}:gzip",
        auth=pb.AuthConfig(username=BASIC_USER, password=BASIC_PASSWORD),
    )
    assert re.search(r"certificate|ssl|tls|verif", err.details() or "", re.I), err.details()
    assert list_images(crid) == []


def test_token_auth(make_crid, token_reg, token_server, images, pb):
    crid = make_crid({token_reg.host: {"insecure": True}})
    ref = f"{token_reg.host}/{REPO}:gzip"
    seen = len(token_server.token_requests())
    img = checked_pull(
        crid, ref, images["gzip"], auth=pb.AuthConfig(username=TOKEN_USER, password=TOKEN_PASSWORD)
    )
    assert list(img.repo_tags) == [ref]
    issued = [r for r in token_server.token_requests()[seen:] if r["status"] == 200]
    assert issued, f"crid never got a token: {token_server.token_requests()[seen:]}"
    scopes = [s for r in issued for s in r["query"].get("scope", [])]
    assert any(
        s.startswith(f"repository:{REPO}:") and "pull" in s.split(":")[-1].split(",")
        for s in scopes
    ), scopes
    assert all(r["user"] == TOKEN_USER for r in issued)
    assert_error_text_clean("", crid, [TOKEN_PASSWORD])


def test_token_auth_refused(make_crid, token_reg, pb):
    crid = make_crid({token_reg.host: {"insecure": True}})
    ref = f"{token_reg.host}/{REPO}:gzip"
    err = pull_error(crid, ref)  # anonymous: the token server says 401
    refused = r"401|unauthori[sz]ed|authenticat|denied"
    assert re.search(refused, err.details() or "", re.I), err.details()
    err = pull_error(crid, ref, auth=pb.AuthConfig(username=TOKEN_USER, password=WRONG_PASSWORD))
    message = err.details() or ""
    assert re.search(r"401|unauthori[sz]ed|authenticat|denied", message, re.I), message
    assert_error_text_clean(message, crid, [WRONG_PASSWORD])
    assert list_images(crid) == []


def test_mirror_fallback(make_crid, net, reg, empty_mirror, images):
    closed = regutil.closed_port(net.path)
    closed_host = f"127.0.0.1:{closed}"
    crid = make_crid(
        {
            reg.host: {"insecure": True, "mirrors": [closed_host, empty_mirror.host]},
            closed_host: {"insecure": True},
            empty_mirror.host: {"insecure": True},
        }
    )
    since = empty_mirror.log_offset()
    ref = f"{reg.host}/{REPO}:gzip"
    img = checked_pull(crid, ref, images["gzip"])
    assert list(img.repo_tags) == [ref]
    asked = [u for m, u, _ in empty_mirror.requests(since) if "/manifests/" in u]
    assert any(u.startswith(f"/v2/{REPO}/manifests/") for u in asked), (
        f"the empty mirror was never asked: {empty_mirror.requests(since)}"
    )


def test_mirror_serves_unreachable_registry(make_crid, reg, images):
    """The registry's own host never resolves; its mirror has the image."""
    fake = "mirror-only.test:5000"
    crid = make_crid(
        {fake: {"insecure": True, "mirrors": [reg.host]}, reg.host: {"insecure": True}}
    )
    ref = f"{fake}/{REPO}:gzip"
    img = checked_pull(crid, ref, images["gzip"])
    assert list(img.repo_tags) == [ref]
    assert list(img.repo_digests) == [f"{fake}/{REPO}@{images['gzip'].digest}"]


def test_location_redirect(make_crid, reg, images):
    fake = "registry.test:5000"
    crid = make_crid({fake: {"location": reg.host, "insecure": True}})
    since = reg.log_offset()
    ref = f"{fake}/{REPO}:uncompressed"
    img = checked_pull(crid, ref, images["uncompressed"])
    assert list(img.repo_tags) == [ref]
    assert list(img.repo_digests) == [f"{fake}/{REPO}@{images['uncompressed'].digest}"]
    assert any(
        m == "GET" and u == f"/v2/{REPO}/manifests/uncompressed" for m, u, _ in reg.requests(since)
    )
    assert_same_image(status(crid, ref), img, "tag")


# --------------------------------------------------------------------------
# Bad content


def test_blob_with_wrong_digest(make_crid, net, workdir):
    r = regutil.Registry(net.path, workdir / f"reg-corrupt-{secrets.token_hex(3)}", label="corrupt")
    r.start()
    try:
        image = bi.unique_image("corrupt-" + secrets.token_hex(4))
        r.push(image, "crid/corrupt", "1")
        r.corrupt_blob(image.layers[0].digest)
        crid = make_crid({r.host: {"insecure": True}})
        err = pull_error(crid, f"{r.host}/crid/corrupt:1")
        assert re.search(r"digest|sha256|mismatch|verif", err.details() or "", re.I), err.details()
        assert list_images(crid) == []
        assert status(crid, f"{r.host}/crid/corrupt:1") is None
        assert layer_dirs(crid) == {}
        assert store_leftovers(crid) == [], "a failed pull left files in the store"
        assert crid.running()
    finally:
        r.stop()


def sentinel_state(sentinel):
    target = sentinel / "target"
    st = os.lstat(target)
    return sorted(os.listdir(sentinel)), target.read_bytes(), st.st_nlink, st.st_mode


def escapes_under(directory):
    found = []
    for dirpath, dirnames, filenames in os.walk(directory):
        for n in dirnames + filenames:
            if n.startswith("crid-escape"):
                found.append(os.path.join(dirpath, n))
    return found


HOSTILE_CASES = list(bi.hostile_layers("/tmp/x").keys())


@pytest.mark.parametrize("case", HOSTILE_CASES)
def test_hostile_layer(crid_plain, reg, hostile, sentinel, case):
    crid = crid_plain
    image, must_fail = hostile[case]
    before = sentinel_state(sentinel)
    ref = f"{reg.host}/crid/hostile:{case}"
    try:
        resp = pull(crid, ref)
        error = None
    except grpc.RpcError as e:
        resp, error = None, e
    print(f"hostile {case}: " + (f"refused: {error.details()}" if error else "unpacked"))
    assert crid.running(), "crid died on a hostile layer"
    assert sentinel_state(sentinel) == before, "a hostile layer changed the sentinel dir"
    assert list(Path("/tmp").glob("crid-escape*")) == []
    if must_fail:
        assert error is not None, f"hostile layer {case} was accepted ({resp.image_ref})"
        assert error.code() != grpc.StatusCode.OK
        assert list_images(crid) == []
        assert hexof(image.chain_ids[0]) not in layer_dirs(crid), "rejected layer left its dir"
        assert escapes_under(crid.dir) == []
    else:
        if error is None:
            diff = diff_dir(crid, image.chain_ids[0])
            contained = {
                "absolute": diff / str(sentinel).strip("/") / "crid-escape-absolute",
                "symlink-then-dir": diff / "d" / "crid-escape-symlink-then-dir",
            }
            if case in contained:
                # Unpacked inside the layer, where the name points there.
                assert contained[case].is_file(), f"{case}: payload not inside the layer"
                assert not (diff / "d").is_symlink()
            else:
                payload = diff / ("f" if case == "symlink-then-file" else "h")
                assert payload.read_text().startswith("crid-escape-"), "later entry did not win"
                assert escapes_under(crid.dir) == []
    # crid still serves.
    crid.runtime.Version(crid.api.pb.VersionRequest(), timeout=RPC_TIMEOUT)


# --------------------------------------------------------------------------
# Crash, concurrency, timeouts


def test_kill_during_pull_then_restart(make_crid, reg, proxy, images):
    image = images["big"]
    big = image.layers[1]
    proxy.stall_digests = {big.digest}
    proxy.stall_after = 1024 * 1024
    crid = make_crid({proxy.host: {"insecure": True}})
    ref = f"{proxy.host}/crid/big:1"
    outcome = {}

    def run():
        try:
            outcome["resp"] = pull(crid, ref, timeout=60)
        except grpc.RpcError as e:
            outcome["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert proxy.stalled.wait(30), f"crid never fetched the big layer\n{crid.log_tail()}"
    time.sleep(0.3)  # let crid write what it got
    crid.kill()
    proxy.release.set()
    t.join(timeout=30)
    assert not t.is_alive()
    assert "resp" not in outcome, "the pull succeeded while crid was killed mid-way"

    proxy.stall_digests = set()
    crid.start()
    assert list_images(crid) == [], "a half-pulled image is listed after the crash"
    assert status(crid, ref) is None
    assert unverified_blobs(crid) == [], "a blob that fails its digest is in the store"

    img = checked_pull(crid, ref, image)
    assert list(img.repo_tags) == [ref]
    data = diff_dir(crid, image.chain_ids[1]) / "data/big.bin"
    with open(data, "rb") as f:
        got = hashlib.sha256(f.read()).hexdigest()
    assert data.stat().st_size == 4 * 1024 * 1024
    tar = tarfile.open(fileobj=io.BytesIO(image.layer_tars[1]))
    member = tar.extractfile("data/big.bin").read()
    assert got == hashlib.sha256(member).hexdigest()
    assert unverified_blobs(crid) == []


def test_concurrent_pulls_share_downloads(make_crid, reg, proxy, images):
    image = images["concurrent"]
    proxy.delay = 0.5  # every blob GET takes a while: the pulls overlap
    crid = make_crid({proxy.host: {"insecure": True}})
    ref = f"{proxy.host}/crid/concurrent:1"
    since = reg.log_offset()
    channels = [crid.new_channel() for _ in range(10)]
    try:
        stubs = [crid.api.grpc.ImageServiceStub(c) for c in channels]
        with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
            futures = [pool.submit(pull, crid, ref, None, PULL_TIMEOUT, s) for s in stubs]
            refs = [f.result(timeout=PULL_TIMEOUT + 5).image_ref for f in futures]
    finally:
        for c in channels:
            c.close()
    assert len(set(refs)) == 1 and refs[0], refs
    assert id_hex(refs[0]) == hexof(image.id)
    counts = reg.blob_gets("crid/concurrent", since)
    want = {b.digest: 1 for b in image.blobs}
    assert counts == want, f"blob GETs per digest: {counts}"
    assert len(list_images(crid)) == 1


def test_largest_layer_downloads_first(make_crid, reg, proxy, images):
    """With one download slot, the layers waiting for it get it largest
    first (whichever layer took the slot first: the others were not known
    yet), so a pull does not end with its largest layer alone."""
    image = images["sizes"]
    proxy.delay = 0.3  # each layer holds the slot a while: the rest queue up
    crid = make_crid({proxy.host: {"insecure": True}}, image={"max_concurrent_downloads": 1})
    checked_pull(crid, f"{proxy.host}/crid/sizes:1", image)
    sizes = {layer.digest: layer.size for layer in image.layers}
    order = []
    for method, path, _ in list(proxy.requests):
        m = re.match(r"^/v2/crid/sizes/blobs/(sha256:[0-9a-f]{64})", path)
        if method == "GET" and m and m.group(1) in sizes:
            order.append(m.group(1))
    assert sorted(order) == sorted(sizes), f"layer GETs: {order}"
    after_first = [sizes[d] for d in order[1:]]
    assert after_first == sorted(after_first, reverse=True), (
        f"layer sizes in the order downloaded: {[sizes[d] for d in order]}")


def test_pull_progress_timeout(make_crid, reg, proxy, images):
    image = images["big"]
    proxy.stall_digests = {image.layers[1].digest}
    proxy.stall_after = 64 * 1024
    proxy.stall_timeout = 30.0
    crid = make_crid({proxy.host: {"insecure": True}}, image={"pull_progress_timeout": 2})
    start = time.monotonic()
    err = pull_error(crid, f"{proxy.host}/crid/big:1", timeout=40)
    elapsed = time.monotonic() - start
    proxy.release.set()
    assert elapsed < 20, f"a stalled pull took {elapsed:.1f} s with pull_progress_timeout = 2"
    assert err.code() != grpc.StatusCode.OK
    assert list_images(crid) == []


# --------------------------------------------------------------------------
# Remove, fs info, bad references


def test_remove_image(crid_plain, reg, images):
    crid = crid_plain
    name = f"{reg.host}/{REPO}"
    image = images["gzip"]
    # Missing images: OK.
    remove(crid, f"{name}:never-pulled")
    remove(crid, "sha256:" + "cd" * 32)

    checked_pull(crid, f"{name}@{image.digest}", image)
    img = checked_pull(crid, f"{name}:gzip", image)
    assert list(img.repo_tags) and list(img.repo_digests)
    remove(crid, f"{name}:gzip")  # by one tag: the image and all its names go
    assert list_images(crid) == []
    assert status(crid, img.id) is None
    assert status(crid, f"{name}@{image.digest}") is None
    remove(crid, f"{name}:gzip")  # again: OK

    img = checked_pull(crid, f"{name}:gzip", image)
    remove(crid, img.id)  # by id
    assert list_images(crid) == []


def wait_store_settled(crid):
    """Until the image store's trash and tmp/ are empty (the background
    deletion of removed layers is done)."""
    def settled():
        return not any(any(d.iterdir()) for d in (images_dir(crid) / "trash",
                                                   images_dir(crid) / "tmp") if d.is_dir())
    cridtest.wait_for(settled, timeout=30, message="the image store's trash and tmp/ to empty")


def assert_store_holds(crid, image=None):
    """The store holds exactly image (or nothing): its layer dirs, its
    blobs (and manifest), images.json; no stray layer, blob, temp file or
    trash entry once the background deletion is done."""
    wait_store_settled(crid)
    assert unverified_blobs(crid) == [], "a blob that fails its digest is in the store"
    if image is None:
        assert list_images(crid) == []
        assert layer_dirs(crid) == {}
        assert store_leftovers(crid) == [], "files left in an empty store"
        return
    assert [id_hex(i.id) for i in list_images(crid)] == [hexof(image.id)]
    assert set(layer_dirs(crid)) == {hexof(c) for c in image.chain_ids}
    for chain_id in image.chain_ids:
        assert any(diff_dir(crid, chain_id).iterdir()), f"layer {chain_id} is empty"
    blobs = {p.name for p in (images_dir(crid) / "blobs" / "sha256").iterdir()}
    assert blobs == {hexof(b.digest) for b in [*image.blobs, image.manifest]}


def test_remove_image_returns_before_the_layers_are_deleted(crid_plain, reg, images):
    """RemoveImage renames the layer dirs into images/trash and returns; a
    background thread deletes them, and what a crash leaves in the trash
    is deleted at the next start."""
    crid = crid_plain
    image = images["big"]
    ref = f"{reg.host}/crid/big:1"
    checked_pull(crid, ref, image)
    remove(crid, ref)
    assert list_images(crid) == [] and status(crid, ref) is None
    assert layer_dirs(crid) == {}, "RemoveImage left layer dirs in layers/"
    assert "image store: removing unused layer" in crid.log_text()
    assert_store_holds(crid, None)
    crid.kill()
    leftover = images_dir(crid) / "trash" / "left-by-a-crash"
    (leftover / "deep" / "er").mkdir(parents=True)
    (leftover / "deep" / "er" / "file").write_text("x")
    crid.start()
    cridtest.wait_for(lambda: not leftover.exists(), timeout=20,
                      message="the crash's leftovers in the trash to be deleted")
    assert_store_holds(crid, None)


# Failpoints of PullImage and RemoveImage (common/failpoint.h): crid kills
# itself there.  test_crash_consistency checks that each failpoint in the
# sources is walked by a test; these are walked here, where the registries
# are.
PULL_FAILPOINTS = [
    "image.pull-after-manifest",
    "image.pull-after-config",
    "image.pull-after-layer-unpacked",
    "image.pull-after-layer-blob",
    "image.pull-after-layer-commit",
    "image.pull-after-metadata",
]
REMOVE_FAILPOINTS = ["image.remove-after-metadata", "image.remove-after-trash"]
IMAGE_FAILPOINTS = PULL_FAILPOINTS + REMOVE_FAILPOINTS


def crash_at_failpoint(crid, name, action):
    """Restarts crid armed with failpoint name, runs action (which must
    fail: crid dies), then starts crid again unarmed."""
    plain = crid.launch_command
    crid.stop()
    crid.launch_command = lambda: ["env", f"CRID_FAILPOINT={name}", *plain()]
    crid.start()
    try:
        with pytest.raises(grpc.RpcError):
            action()
        assert crid.wait(timeout=20) is not None, f"crid did not die at {name}"
        assert crid.returncode == -9
    finally:
        crid.launch_command = plain
    crid.start()


@pytest.mark.parametrize("name", PULL_FAILPOINTS)
def test_crash_during_pull(crid_plain, reg, images, name):
    """Killed after each side effect of a pull: after a restart the image
    is listed and whole (only after its record was written) or absent with
    nothing of it left; the retried pull works, and removing the image
    leaves an empty store."""
    crid = crid_plain
    image = images["big"]
    ref = f"{reg.host}/crid/big:1"
    crash_at_failpoint(crid, name, lambda: pull(crid, ref))
    if name == "image.pull-after-metadata":
        img = status(crid, ref)
        assert img is not None and id_hex(img.id) == hexof(image.id)
        assert_store_holds(crid, image)
    else:
        assert status(crid, ref) is None, f"a half-pulled image is listed after a crash at {name}"
        assert_store_holds(crid, None)
    img = checked_pull(crid, ref, image)
    assert list(img.repo_tags) == [ref]
    assert_store_holds(crid, image)
    remove(crid, ref)
    assert_store_holds(crid, None)


@pytest.mark.parametrize("name", REMOVE_FAILPOINTS)
def test_crash_during_remove_image(crid_plain, reg, images, name):
    """Killed after each side effect of RemoveImage: after a restart the
    image is gone (its record was rewritten first) and its layers and
    blobs are deleted; removing it again is fine, and so is pulling it
    again."""
    crid = crid_plain
    image = images["big"]
    ref = f"{reg.host}/crid/big:1"
    checked_pull(crid, ref, image)
    crash_at_failpoint(crid, name, lambda: remove(crid, ref))
    assert status(crid, ref) is None, f"the image is listed after a crash at {name}"
    assert_store_holds(crid, None)
    remove(crid, ref)
    checked_pull(crid, ref, image)
    assert_store_holds(crid, image)
    remove(crid, ref)
    assert_store_holds(crid, None)


def test_image_fs_info(crid_plain, reg, images, pb):
    crid = crid_plain
    before = crid.image.ImageFsInfo(pb.ImageFsInfoRequest(), timeout=RPC_TIMEOUT)
    assert len(before.image_filesystems) >= 1
    checked_pull(crid, f"{reg.host}/{REPO}:gzip", images["gzip"])
    after = crid.image.ImageFsInfo(pb.ImageFsInfoRequest(), timeout=RPC_TIMEOUT)
    assert len(after.image_filesystems) >= 1
    fs = after.image_filesystems[0]
    assert fs.timestamp > 0
    assert fs.fs_id.mountpoint, fs
    assert fs.used_bytes.value > 0
    assert fs.used_bytes.value > before.image_filesystems[0].used_bytes.value
    assert fs.inodes_used.value > 0


INVALID_REFS = [
    "",
    "UPPERCASE",
    "busybox:tag:extra",
    "busybox@sha256:1234",
    "busybox@sha256:" + "Z" * 64,
    "a//b:1",
    "-leading/x:1",
    "127.0.0.1:5000/Bad/Name:1",
    "busybox:" + "a" * 129,
    ":tag",
    "busybox name",
]


def test_invalid_reference(make_crid):
    crid = make_crid()
    for ref in INVALID_REFS:
        err = pull_error(crid, ref, timeout=RPC_TIMEOUT)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (ref, err.code(), err.details())
    assert crid.running()


# --------------------------------------------------------------------------
# Registry settings reloaded on SIGHUP


def status_registries(crid):
    """The registry tables of the running configuration (Status verbose)."""
    pb = crid.api.pb
    info = crid.runtime.Status(pb.StatusRequest(verbose=True), timeout=RPC_TIMEOUT).info
    return json.loads(info["config"])["crid"]["image"]["registries"]


def test_reload_insecure_registry_dropin(make_crid, reg, images):
    """A node operator adds an insecure registry while crid runs: the
    drop-in and a SIGHUP make plain-HTTP pulls from it work, no restart.
    A reload that fails keeps the registry settings crid runs with."""
    crid = make_crid()
    ref = f"{reg.host}/{REPO}:gzip"
    pull_error(crid, ref)  # HTTPS to a plain-HTTP registry
    assert reg.host not in status_registries(crid)

    dropin = crid.write_dropin(
        "50-insecure.conf", f'[crid.image.registries."{reg.host}"]\ninsecure = true\n'
    )
    line = crid.reload(f'registry "{reg.host}" added')
    assert "after a restart" not in line, line
    img = checked_pull(crid, ref, images["gzip"])
    assert list(img.repo_tags) == [ref]
    assert status_registries(crid)[reg.host]["insecure"] is True

    # The drop-in goes and a broken one comes: the reload fails, and
    # the registry stays insecure.
    dropin.unlink()
    broken = crid.write_dropin("60-broken.conf", "[crid.image]\nmax_concurrent_downloads = \n")
    line = crid.reload("reload: keeping the running configuration")
    assert f"{broken}:2" in line, line
    checked_pull(crid, f"{reg.host}/{REPO}:zstd", images["zstd"])
    assert reg.host in status_registries(crid)

    # Fixed: now the registry's removal applies.
    broken.unlink()
    crid.reload(f'registry "{reg.host}" removed')
    pull_error(crid, f"{reg.host}/{REPO}:uncompressed")
    assert reg.host not in status_registries(crid)
    assert crid.running()


def test_reload_pull_progress_timeout(make_crid, reg, proxy, images):
    """pull_progress_timeout set by a reload applies to the next pull."""
    image = images["big"]
    proxy.stall_digests = {image.layers[1].digest}
    proxy.stall_after = 64 * 1024
    proxy.stall_timeout = 30.0
    crid = make_crid({proxy.host: {"insecure": True}})
    crid.write_config(config={"crid.image": {"pull_progress_timeout": 2}})
    line = crid.reload("pull_progress_timeout 60 -> 2")
    assert "after a restart" not in line, line
    start = time.monotonic()
    err = pull_error(crid, f"{proxy.host}/crid/big:1", timeout=40)
    elapsed = time.monotonic() - start
    proxy.release.set()
    assert elapsed < 20, f"a stalled pull took {elapsed:.1f} s after pull_progress_timeout = 2"
    assert err.code() != grpc.StatusCode.OK
    assert list_images(crid) == []
