"""The Debian package: `make deb` builds crid_<version>_<arch>.deb; it is
installed with dpkg into a scratch root (`dpkg --root`, so the machine's
own /usr, /etc and package database are not touched while other tests
run), crid is started from the installed binaries and configuration (with
its own root, state dir and socket) and answers Version, and removing then
purging it leaves nothing of it behind.
"""

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

import cridtest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import build_images  # noqa: E402

REPO = cridtest.REPO


def _version():
    for line in (REPO / "Makefile").read_text().splitlines():
        if line.startswith("CRID_VERSION :="):
            return line.split(":=", 1)[1].strip()
    raise AssertionError("CRID_VERSION missing in the Makefile")


def _run(*args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, args))}:\n{result.stdout}{result.stderr}"
    return result.stdout


class ScratchRoot:
    """An empty root with a dpkg database of its own."""

    def __init__(self):
        self.path = Path(tempfile.mkdtemp(prefix="crid-deb-", dir="/tmp"))
        self.admindir = self.path / "var/lib/dpkg"
        for sub in ("info", "updates", "triggers"):
            (self.admindir / sub).mkdir(parents=True)
        (self.admindir / "status").touch()
        self.log = self.path.parent / (self.path.name + ".log")
        self.baseline = self.files()

    def dpkg(self, *args):
        # The scratch root has no shell: maintainer scripts run from the
        # host (they do nothing when DPKG_ROOT is set); the dependencies
        # live in the host's database, not in this one.
        return _run("dpkg", f"--root={self.path}", f"--log={self.log}", "--force-depends",
                    "--force-script-chrootless", "--force-unsafe-io", *args)

    def query(self, field, package="crid"):
        return _run("dpkg-query", f"--admindir={self.admindir}", "-W", f"-f=${{{field}}}",
                    package)

    def files(self):
        """Every path under the root, outside dpkg's own database."""
        out = set()
        for directory, dirs, names in os.walk(self.path):
            rel = Path(directory).relative_to(self.path)
            if rel.parts[:3] == ("var", "lib", "dpkg"):
                continue
            out.update(str(rel / name) for name in dirs + names)
        return {p for p in out if not p.startswith("var/lib/dpkg")}

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)
        if self.log.exists():
            self.log.unlink()


class InstalledCrid(cridtest.Crid):
    """crid run from a scratch root: its binary, crid-conmon and crid-pause
    beside it, and its /etc/crid/crid.conf; a drop-in of the test's own
    keeps every path (root, state, socket, CNI dir) in the temp dir."""

    def __init__(self, api, scratch):
        self.scratch = scratch
        super().__init__(api)
        self.write_dropin("99-test-paths.conf", cridtest.toml_text(self.base_config()))

    def command(self, *extra):
        return [
            str(self.scratch.path / "usr/bin/crid"),
            "--config",
            str(self.scratch.path / "etc/crid/crid.conf"),
            "--config-dir",
            str(self.config_dir),
            *self.args,
            *extra,
        ]


@pytest.fixture(scope="module")
def deb():
    path = Path(_run("make", "-C", str(REPO), "--no-print-directory", "-s", "deb")
                .strip().splitlines()[-1])
    if not path.is_absolute():
        path = REPO / path
    assert path.name == f"crid_{_version()}_{_run('dpkg', '--print-architecture').strip()}.deb"
    return path


@pytest.fixture
def scratch():
    root = ScratchRoot()
    yield root
    root.cleanup()


def _depends_groups(deb):
    depends = _run("dpkg-deb", "-f", str(deb), "Depends").strip()
    return [[alt.strip().split(" ")[0] for alt in group.split("|")]
            for group in depends.split(",")]


def test_package_declares_what_crid_needs(deb):
    groups = _depends_groups(deb)
    names = {name for group in groups for name in group}
    # The libraries the binaries and plugins link (dpkg-shlibdeps) and the
    # programs crid runs.
    for library in ("libgrpc29", "libprotobuf-c1", "libcurl4", "libarchive13",
                    "libmicrohttpd12", "libseccomp2", "libyajl2"):
        assert library in names, groups
    assert ["crun", "runc"] in groups, groups
    assert ["containernetworking-plugins"] in groups, groups
    # This node runs crid, so every dependency is satisfied here.
    installed = set(_run("dpkg-query", "-W", "-f=${Package} ${Status}\n").splitlines())
    installed = {line.split(" ")[0] for line in installed if line.endswith("install ok installed")}
    for group in groups:
        assert installed & set(group), f"none of {group} is installed"

    listed = set(_run("sh", "-c", f"dpkg-deb --ctrl-tarfile {deb} | tar -xO ./conffiles")
                 .split())
    assert listed == {"/etc/crid/crid.conf", "/etc/crictl.yaml",
                      "/etc/cni/net.d/10-crid-bridge.conflist"}, listed


def test_installed_package_runs_and_is_removed_cleanly(deb, scratch, api, pb):
    scratch.dpkg("-i", str(deb))
    assert scratch.query("Status") == "install ok installed"
    assert scratch.query("Version") == _version()
    root = scratch.path
    for binary in ("usr/bin/crid", "usr/bin/crid-conmon", "usr/bin/crid-pause",
                   "usr/libexec/crid/host-setup"):
        assert os.access(root / binary, os.X_OK), binary
    # The unit prepares the host before every start, from the installed copy.
    unit = (root / "usr/lib/systemd/system/crid.service").read_text().splitlines()
    assert "ExecStartPre=/usr/libexec/crid/host-setup" in unit, unit
    assert "ExecStart=/usr/bin/crid" in unit, unit
    # The installed crid.conf is the defaults crid prints.
    assert (root / "etc/crid/crid.conf").read_text() == (REPO / "contrib/crid.conf").read_text()
    # The pull stack and the HTTP server are plugins beside the binary's
    # bin/, which the binary itself does not link.
    for plugin in ("usr/lib/crid/crid-pull.so", "usr/lib/crid/crid-http.so"):
        assert (root / plugin).is_file(), plugin
    linked = _run("ldd", str(root / "usr/bin/crid"))
    assert "libcurl" not in linked and "libmicrohttpd" not in linked, linked

    crid = InstalledCrid(api, scratch)
    try:
        crid.start()
        version = crid.runtime.Version(pb.VersionRequest(), timeout=10)
        assert version.runtime_name == "crid"
        assert version.runtime_version.split("+")[0] == _version(), version
        # Its pause is the installed one, beside the binary.
        pause = crid.root / "pause/rootfs/pause"
        assert pause.read_bytes() == (root / "usr/bin/crid-pause").read_bytes()
        crid.stop()
        assert crid.returncode == 0, crid.log_tail()
        _import_with(crid, root)
    finally:
        crid.cleanup()

    # Removed: the configuration stays, as dpkg keeps conffiles...
    (root / "etc/crid/crid.conf").write_text("# changed by the operator\n")
    scratch.dpkg("--remove", "crid")
    left = scratch.files() - scratch.baseline
    assert "etc/crid/crid.conf" in left and not any(p.startswith("usr/") for p in left), left
    # ...purged: nothing at all.
    scratch.dpkg("--purge", "crid")
    assert scratch.files() == scratch.baseline, scratch.files() - scratch.baseline
    query = subprocess.run(["dpkg-query", f"--admindir={scratch.admindir}", "-W", "crid"],
                           capture_output=True, text=True)
    assert query.returncode != 0 or query.stdout.strip() == "crid", query.stdout


def _import_with(crid, root):
    """`crid image import` of the installed binary: it loads the installed
    pull plugin (libarchive) and the image is listed afterwards."""
    name = "localhost/package-test:1"
    layout = crid.dir / "import-layout"
    build_images.write_oci_layout(layout, {name: build_images.Image(
        [build_images.busybox_base_layer()])})
    tarball = crid.dir / "import.tar"
    with tarfile.open(tarball, "w") as tar:
        for entry in sorted(os.listdir(layout)):
            tar.add(layout / entry, arcname=entry)
    result = subprocess.run(crid.command("image", "import", str(tarball)), capture_output=True,
                            text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert f"loaded {root}/usr/lib/crid/crid-pull.so" in result.stderr, result.stderr
    listed = subprocess.run(crid.command("image", "list"), capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert name in listed.stdout, listed.stdout + listed.stderr


def test_make_uninstall_removes_what_install_put_there(tmp_path):
    dest = tmp_path / "dest"

    def make(target):
        return _run("make", "-C", str(REPO), "--no-print-directory", "-s", target,
                    f"DESTDIR={dest}", "PREFIX=/usr")

    make("install")
    assert os.access(dest / "usr/libexec/crid/host-setup", os.X_OK)
    # An operator's change survives a new install (the default goes beside
    # it) and the uninstall (named in the output).
    changed = dest / "etc/crictl.yaml"
    changed.write_text("runtime-endpoint: unix:///run/other.sock\n")
    assert "kept" in make("install")
    assert (dest / "etc/crictl.yaml.default").exists()
    out = make("uninstall")
    assert "kept" in out and "crictl.yaml" in out, out
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if not p.is_dir())
    assert files == ["etc/crictl.yaml"], files
    assert not (dest / "etc/crid").exists() and not (dest / "usr/libexec/crid").exists()
    assert not (dest / "usr/lib/crid").exists()
