"""Shared pieces of crid's benchmarks.

Benchmarks compare crid with containerd's CRI plugin (Debian's containerd
1.6) through the same Python gRPC client in the same run.  They print
figures; they never assert timings.

What lives here:
  - CRI Python stubs generated from cri-api/api.proto into a temp dir
    (cri_stubs()),
  - crid and containerd started on private temp dirs and sockets, never
    touching /etc/crid, /var/lib/{crid,containerd} or /run/{crid,containerd}
    (Crid, Containerd, start_runtime()), stopped by pid,
  - memory readings of a pid (memory()), latency percentiles
    (percentile(), summarize_ns()), and a plain text table (Table),
  - for pod benchmarks: fresh network namespaces (Netns; a daemon started
    with netns= runs inside one through `nsenter --net`), a CNI conflist
    (bridge_conflist()), the processes a daemon left (processes_of(),
    descendants()), cgroups under a private parent (remove_cgroups()) and
    a pause image archive built from crid-pause (build_pause_archive(),
    Containerd.import_image()).

Every wait is bounded and all traffic goes to local unix sockets.
BENCH_KEEP=1 keeps the daemons' temp dirs (config, log) for a look.
"""

import atexit
import hashlib
import importlib
import io
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO_DIR = os.path.join(REPO, "cri-api")
CRID_BIN = os.environ.get("CRID_BIN", os.path.join(REPO, "build", "bin", "crid"))
CONTAINERD_BIN = os.environ.get("CONTAINERD_BIN", "/usr/bin/containerd")
PROTOC = "/usr/bin/protoc"
GRPC_PYTHON_PLUGIN = "/usr/bin/grpc_python_plugin"
CNI_BIN_DIR = "/usr/lib/cni"
CRID_PAUSE_BIN = os.environ.get("CRID_PAUSE_BIN",
                                os.path.join(os.path.dirname(CRID_BIN), "crid-pause"))
CTR_BIN = os.environ.get("CTR_BIN", "/usr/bin/ctr")
NSENTER = "/usr/bin/nsenter"
NETNS_RUN_DIR = "/run/netns"
CGROUP_ROOT = "/sys/fs/cgroup"

START_TIMEOUT = 30.0  # seconds for a daemon to answer Version
STOP_TIMEOUT = 15.0  # seconds between SIGTERM and SIGKILL
RPC_TIMEOUT = 10.0  # seconds for any single benchmark RPC

MB = 1024.0 * 1024.0


class BenchError(Exception):
    """A benchmark could not run (not a slow result: those are only printed)."""


# ---------------------------------------------------------------- temp dirs

_cleanups = []


def _run_cleanups():
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - best effort at exit
            print("bench: cleanup: %s" % e, file=sys.stderr)


atexit.register(_run_cleanups)


def _mounts_under(path):
    """Mount points at or below path (they must never be rmtree'd)."""
    path = os.path.realpath(path)
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if len(fields) < 5:
                    continue
                point = fields[4].replace("\\040", " ")
                if point == path or point.startswith(path + "/"):
                    found.append(point)
    except OSError:
        pass
    return found


def mounts_under(path):
    """Mount points at or below path, as listed in /proc/self/mountinfo."""
    return _mounts_under(path)


def remove_tree(path):
    """rm -rf path, unless something is still mounted below it."""
    if not path or not os.path.isdir(path):
        return
    mounts = _mounts_under(path)
    if mounts:
        print("bench: leaving %s in place: still mounted: %s" % (path, ", ".join(mounts[:5])),
              file=sys.stderr)
        return
    shutil.rmtree(path, ignore_errors=True)


def keep_dirs():
    return bool(os.environ.get("BENCH_KEEP"))


def make_tmpdir(prefix, keepable=False, parent="/tmp"):
    """A fresh directory with a short path under /tmp (or parent; unix
    socket paths are limited to 107 bytes), removed at exit unless
    something is mounted in it (or, when keepable, BENCH_KEEP is set)."""
    path = tempfile.mkdtemp(prefix=prefix, dir=parent or "/tmp")
    os.chmod(path, 0o711)
    if keepable and keep_dirs():
        return path
    _cleanups.append(lambda: remove_tree(path))
    return path


def make_spread_dir(prefix, keepable=False):
    """make_tmpdir() with the ext4 "top of directory hierarchy" flag
    (`chattr +T`): the Orlov allocator places each directory made in it in
    a block group of its own choosing (random among the emptier ones)
    instead of next to its parent.  Daemon dirs made in it (Daemon's
    tmp_parent=) then get inodes away from those a previous run just
    deleted; on an ext4 without a journal, creating files next to inodes
    deleted in the last minutes is slow (the allocator skips every such
    inode, rescanning them at each create), which would otherwise penalise
    whichever run follows a large delete.  Returns (path, None) or (path,
    reason) when the flag could not be set (another file system)."""
    path = make_tmpdir(prefix, keepable=keepable)
    try:
        res = subprocess.run(["chattr", "+T", path], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return path, str(e)
    if res.returncode != 0:
        return path, "chattr +T %s: %s" % (path, res.stdout.strip())
    return path, None


def set_topdir(path):
    """`chattr +T path` on an existing directory (the ext4 flag of
    make_spread_dir()): directories made in it afterwards go to block
    groups of their own, away from inodes freed lately near it.  Returns
    None or the reason it could not (another file system)."""
    try:
        res = subprocess.run(["chattr", "+T", path], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    if res.returncode != 0:
        return "chattr +T %s: %s" % (path, res.stdout.strip())
    return None


# ---------------------------------------------------------------- CRI stubs

_stubs = None


def cri_stubs():
    """(api_pb2, api_pb2_grpc) generated from cri-api/api.proto into a temp
    dir once per process."""
    global _stubs
    if _stubs is not None:
        return _stubs
    for tool in (PROTOC, GRPC_PYTHON_PLUGIN):
        if not os.access(tool, os.X_OK):
            raise BenchError("%s is missing (make deps installs it)" % tool)
    out = make_tmpdir("crid-bench-pb.")
    cmd = [PROTOC, "--proto_path=" + PROTO_DIR, "--python_out=" + out, "--grpc_out=" + out,
           "--plugin=protoc-gen-grpc=" + GRPC_PYTHON_PLUGIN, "api.proto"]
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    if res.returncode != 0:
        raise BenchError("protoc failed: %s" % res.stdout.decode(errors="replace"))
    sys.path.insert(0, out)
    api_pb2 = importlib.import_module("api_pb2")
    api_pb2_grpc = importlib.import_module("api_pb2_grpc")
    _stubs = (api_pb2, api_pb2_grpc)
    return _stubs


def grpc_module():
    import grpc  # Debian's python3-grpcio

    return grpc


# ---------------------------------------------------------------- daemons


class Daemon:
    """One runtime daemon on private directories, stopped by pid.

    Use as a context manager:
        with Crid() as d:
            stub = d.runtime_stub()
            ...
    """

    name = "?"
    binary = None

    @classmethod
    def programs(cls):
        """The files the daemon runs: its binary and what it loads later
        (dlopen'ed plugins), without their shared libraries."""
        return [cls.binary]

    def __init__(self, log_level="info", netns=None, on_prepare=None, tmp_parent=None,
                 state_tmpfs=False):
        self.log_level = log_level
        # Run state (the daemon's state dir, its OCI runtimes' roots) on a
        # tmpfs of its own, as /run is on a node; persistent dirs stay on
        # the temp dir's file system.
        self.state_tmpfs = state_tmpfs
        self.tmpfs_mounts = []
        # Where the daemon's temp dir goes (default /tmp), e.g. a
        # make_spread_dir().
        self.tmp_parent = tmp_parent
        # Called as on_prepare(daemon) once the temp dir and config exist,
        # right before the daemon starts (e.g. to write a CNI conflist).
        self.on_prepare = on_prepare
        # A network namespace file (/run/netns/NAME): the daemon runs in it
        # through `nsenter --net` (only the network namespace changes), so
        # the CNI plugins it runs, their bridge and veths live there.
        self.netns = netns
        self.dir = None
        self.socket = None
        self.proc = None
        self.log_path = None
        self._log = None
        self._channel = None

    # subclasses fill these in
    def _prepare(self):
        raise NotImplementedError

    def run_dirs(self):
        """The dirs that live under /run on a node (for state_tmpfs)."""
        return []

    def _mount_run_dirs(self):
        for d in self.run_dirs():
            os.makedirs(d, mode=0o711, exist_ok=True)
            run_cmd(["mount", "-t", "tmpfs", "-o", "mode=0711,size=512m", "cb-run", d])
            self.tmpfs_mounts.append(d)

    def _unmount_run_dirs(self):
        for d in reversed(self.tmpfs_mounts):
            subprocess.run(["umount", d], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
        self.tmpfs_mounts = []

    def _command(self):
        raise NotImplementedError

    def launch_command(self):
        """_command(), inside self.netns when one is set (nsenter execs the
        daemon, so the pid is the daemon's own)."""
        if self.netns:
            return [NSENTER, "--net=" + self.netns, "--"] + self._command()
        return self._command()

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def target(self):
        return "unix:" + self.socket

    def start(self, timeout=START_TIMEOUT):
        if self.proc is not None:
            return self  # already started (start_runtime() inside `with`)
        if not self.binary or not os.access(self.binary, os.X_OK):
            raise BenchError("%s: %s is not an executable" % (self.name, self.binary))
        self.dir = make_tmpdir("cb-%s." % self.name[:4], keepable=True,
                               parent=self.tmp_parent or "/tmp")
        self._prepare()
        if self.state_tmpfs:
            self._mount_run_dirs()
        if self.on_prepare is not None:
            self.on_prepare(self)
        self.log_path = os.path.join(self.dir, "daemon.log")
        self._log = open(self.log_path, "wb")
        # Own session: a Ctrl-C in the terminal reaches only us, and the
        # daemon is stopped by pid in stop().
        self.proc = subprocess.Popen(self.launch_command(), stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=self.dir, start_new_session=True, close_fds=True)
        _cleanups.append(self.stop)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout):
        api_pb2, api_pb2_grpc = cri_stubs()
        grpc = grpc_module()
        deadline = time.monotonic() + timeout
        last = "socket %s never appeared" % self.socket
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError("%s exited with status %s during start-up:\n%s"
                                 % (self.name, self.proc.returncode, self.log_tail()))
            if os.path.exists(self.socket):
                try:
                    with grpc.insecure_channel(self.target) as ch:
                        api_pb2_grpc.RuntimeServiceStub(ch).Version(
                            api_pb2.VersionRequest(version="v1"), timeout=2.0)
                    return
                except grpc.RpcError as e:
                    last = "Version: %s %s" % (e.code(), e.details())
            time.sleep(0.05)
        raise BenchError("%s did not answer within %.0f s (%s):\n%s"
                         % (self.name, timeout, last, self.log_tail()))

    def channel(self):
        """One shared gRPC channel to the daemon (closed in stop())."""
        if self._channel is None:
            grpc = grpc_module()
            self._channel = grpc.insecure_channel(self.target, options=[
                ("grpc.max_receive_message_length", 16 * 1024 * 1024),
            ])
        return self._channel

    def runtime_stub(self):
        _, api_pb2_grpc = cri_stubs()
        return api_pb2_grpc.RuntimeServiceStub(self.channel())

    def image_stub(self):
        _, api_pb2_grpc = cri_stubs()
        return api_pb2_grpc.ImageServiceStub(self.channel())

    def version(self):
        api_pb2, _ = cri_stubs()
        return self.runtime_stub().Version(api_pb2.VersionRequest(version="v1"),
                                           timeout=RPC_TIMEOUT)

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()[-16384:].decode(errors="replace")
        except (OSError, TypeError):
            return "(no log)"
        return "\n".join(data.splitlines()[-lines:]) or "(log is empty)"

    def stop(self):
        """SIGTERM by pid, a bounded wait, then SIGKILL.  Idempotent."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                print("bench: %s (pid %d) ignored SIGTERM for %.0f s; SIGKILL"
                      % (self.name, self.proc.pid, STOP_TIMEOUT), file=sys.stderr)
                self.proc.kill()
                try:
                    self.proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    print("bench: %s (pid %d) survived SIGKILL" % (self.name, self.proc.pid),
                          file=sys.stderr)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.dir and (self.proc is None or self.proc.poll() is not None):
            self.reap_leftovers()
            if keep_dirs():
                print("bench: kept %s" % self.dir, file=sys.stderr)
            else:
                remove_tree(self.dir)
            self.dir = None

    def leftover_processes(self):
        """{pid: command line} of processes that belong to this daemon's
        temp dir (other than the daemon): pod monitors, shims and their
        pause processes."""
        if not self.dir:
            return {}
        procs = processes_of(self.dir, exclude={self.pid} if self.pid else ())
        for pid in descendants(set(procs) | ({self.pid} if self.pid else set())):
            if pid != self.pid and pid not in procs:
                procs[pid] = cmdline(pid) or "[pid %d]" % pid
        # Zombies have exited already (a shim reparented to an init that
        # reaps slowly); they hold no memory and cannot be killed.
        return {pid: line for pid, line in procs.items() if proc_state(pid) not in ("Z", None)}

    def reap_leftovers(self):
        """After the daemon exited: SIGKILL (by pid) whatever still runs
        from its temp dir, then unmount what is still mounted below it.
        Both bounded; nothing is found after a clean run."""
        if not self.dir:
            return
        for _ in range(5):
            procs = self.leftover_processes()
            if not procs:
                break
            print("bench: %s left %d processes; SIGKILL: %s"
                  % (self.name, len(procs), ", ".join("%d %s" % (p, c[:60])
                                                      for p, c in sorted(procs.items()))),
                  file=sys.stderr)
            for pid in procs:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        mounts = [m for m in _mounts_under(self.dir) if m not in self.tmpfs_mounts]
        if mounts:
            print("bench: %s left %d mounts under %s; unmounting"
                  % (self.name, len(mounts), self.dir), file=sys.stderr)
            for point in sorted(mounts, key=len, reverse=True):
                subprocess.run(["umount", point], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
            for point in sorted(_mounts_under(self.dir), key=len, reverse=True):
                if point in self.tmpfs_mounts:
                    continue
                subprocess.run(["umount", "-l", point], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        self._unmount_run_dirs()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


# <state_dir>/conmon/<64-hex id>/console must fit in a unix socket address.
CRID_STATE_DIR_MAX = 27


class Crid(Daemon):
    """build/bin/crid with its own root, state dir, socket and config file;
    --config and --config-dir point into the temp dir so /etc/crid is never
    read."""

    name = "crid"
    binary = CRID_BIN

    @classmethod
    def programs(cls):
        """build/bin/crid and the plugins it loads on first use from
        lib/crid beside its bin/ (the pull stack, the HTTP server)."""
        plugin_dir = os.path.join(os.path.dirname(os.path.dirname(cls.binary)), "lib", "crid")
        try:
            plugins = sorted(os.path.join(plugin_dir, f) for f in os.listdir(plugin_dir)
                             if f.endswith(".so"))
        except OSError:
            plugins = []
        return [cls.binary] + plugins

    def __init__(self, log_level="info", extra_config="", **kwargs):
        super().__init__(log_level, **kwargs)
        self.extra_config = extra_config

    def _prepare(self):
        self.root = os.path.join(self.dir, "root")
        self.state_dir = os.path.join(self.dir, "state")
        if len(self.state_dir) > CRID_STATE_DIR_MAX:
            # crid refuses a state dir its monitors' socket paths would not
            # fit in (a temp dir in a make_spread_dir() is that deep)
            self.state_dir = make_tmpdir("cbs.")
        self.socket = os.path.join(self.state_dir, "crid.sock")
        self.cni_conf_dir = os.path.join(self.dir, "net.d")
        self.config_dir = os.path.join(self.dir, "crid.conf.d")
        for d in (self.root, self.cni_conf_dir, self.config_dir):
            os.makedirs(d, mode=0o711)
        self.config_file = os.path.join(self.dir, "crid.conf")
        with open(self.config_file, "w") as f:
            f.write(self.config_text())

    def run_dirs(self):
        return [self.state_dir]  # runtime roots are below it

    def config_text(self):
        return (
            "# generated by tests/bench/benchlib.py\n"
            "[crid]\n"
            "root = %s\n"
            "state_dir = %s\n"
            "log_level = %s\n"
            "\n"
            "[crid.api]\n"
            "listen = %s\n"
            "stream_address = \"127.0.0.1\"\n"
            "stream_port = 0\n"
            "\n"
            "[crid.network]\n"
            "network_dir = %s\n"
            "plugin_dirs = [%s]\n"
            "\n"
            "[crid.metrics]\n"
            "enable_metrics = false\n"
            "%s"
        ) % (toml_str(self.root), toml_str(self.state_dir), toml_str(self.log_level),
             toml_str(self.socket), toml_str(self.cni_conf_dir), toml_str(CNI_BIN_DIR),
             self.extra_config)

    def _command(self):
        return [self.binary, "--config", self.config_file, "--config-dir", self.config_dir,
                "--root", self.root, "--state-dir", self.state_dir, "--listen", self.socket,
                "--log-level", self.log_level]


class Containerd(Daemon):
    """Debian's containerd 1.6 with the CRI plugin, on a generated
    config.toml: own root, state, gRPC and ttrpc sockets, opt dir and CNI
    conf dir; no debug or metrics listener, no TCP CRI service."""

    name = "containerd"
    binary = CONTAINERD_BIN

    def __init__(self, log_level="info", extra_config="", cri_options=None, runtimes=None,
                 default_runtime="runc", **kwargs):
        """extra_config is TOML appended at the end (new tables only);
        cri_options ({key: str|bool|int}) are keys of the CRI plugin's own
        table, e.g. sandbox_image; runtimes ({handler: OCI runtime binary})
        defines io.containerd.runc.v2 handlers, each with its state root
        (runc --root) in the temp dir instead of /run/containerd/runc."""
        super().__init__(log_level, **kwargs)
        self.extra_config = extra_config
        self.cri_options = dict(cri_options or {})
        self.runtimes = dict(runtimes or {})
        self.default_runtime = default_runtime

    def _prepare(self):
        self.root = os.path.join(self.dir, "root")
        self.state_dir = os.path.join(self.dir, "state")
        self.socket = os.path.join(self.dir, "containerd.sock")
        self.ttrpc_socket = os.path.join(self.dir, "containerd.sock.ttrpc")
        self.cni_conf_dir = os.path.join(self.dir, "net.d")
        self.opt_dir = os.path.join(self.dir, "opt")
        self.tmp = os.path.join(self.dir, "tmp")
        for d in (self.root, self.state_dir, self.cni_conf_dir, self.opt_dir, self.tmp):
            os.makedirs(d, mode=0o711)
        self.config_file = os.path.join(self.dir, "config.toml")
        with open(self.config_file, "w") as f:
            f.write(self.config_text())

    def run_dirs(self):
        return [self.state_dir, os.path.join(self.dir, "runtime-root")]

    def config_text(self):
        # Keys as printed by `containerd config default` of 1.6.20.
        return (
            "# generated by tests/bench/benchlib.py\n"
            "version = 2\n"
            "root = %(root)s\n"
            "state = %(state)s\n"
            "temp = %(tmp)s\n"
            "imports = []\n"
            "disabled_plugins = []\n"
            "\n"
            "[grpc]\n"
            "  address = %(sock)s\n"
            "  tcp_address = \"\"\n"
            "\n"
            "[ttrpc]\n"
            "  address = %(ttrpc)s\n"
            "\n"
            "[debug]\n"
            "  address = \"\"\n"
            "  level = %(level)s\n"
            "\n"
            "[metrics]\n"
            "  address = \"\"\n"
            "\n"
            "[plugins]\n"
            "  [plugins.\"io.containerd.internal.v1.opt\"]\n"
            "    path = %(opt)s\n"
            "  [plugins.\"io.containerd.grpc.v1.cri\"]\n"
            "    disable_tcp_service = true\n"
            "    stream_server_address = \"127.0.0.1\"\n"
            "    stream_server_port = \"0\"\n"
            "    enable_selinux = false\n"
            "%(cri_options)s"
            "    [plugins.\"io.containerd.grpc.v1.cri\".cni]\n"
            "      bin_dir = %(cnibin)s\n"
            "      conf_dir = %(cniconf)s\n"
            "%(runtimes)s"
            "%(extra)s"
        ) % {
            "root": toml_str(self.root), "state": toml_str(self.state_dir),
            "tmp": toml_str(self.tmp), "sock": toml_str(self.socket),
            "ttrpc": toml_str(self.ttrpc_socket), "level": toml_str(self.log_level),
            "opt": toml_str(self.opt_dir), "cnibin": toml_str(CNI_BIN_DIR),
            "cniconf": toml_str(self.cni_conf_dir), "extra": self.extra_config,
            "cri_options": "".join("    %s = %s\n" % (k, toml_value(v))
                                   for k, v in self.cri_options.items()),
            "runtimes": self.runtimes_text(),
        }

    def runtimes_text(self):
        if not self.runtimes:
            return ""
        cri = "plugins.\"io.containerd.grpc.v1.cri\".containerd"
        out = ["    [%s]" % cri, "      default_runtime_name = %s" % toml_str(self.default_runtime),
               "      snapshotter = \"overlayfs\""]
        for handler, binary in self.runtimes.items():
            root = os.path.join(self.dir, "runtime-root", handler)
            out += ["      [%s.runtimes.%s]" % (cri, handler),
                    "        runtime_type = \"io.containerd.runc.v2\"",
                    "        [%s.runtimes.%s.options]" % (cri, handler),
                    "          BinaryName = %s" % toml_str(binary),
                    "          Root = %s" % toml_str(root),
                    "          SystemdCgroup = false"]
        return "\n".join(out) + "\n"

    def _command(self):
        return [self.binary, "--config", self.config_file, "--log-level", self.log_level]

    def ctr(self, *args, timeout=120.0):
        """Runs `ctr -a <our socket> -n k8s.io ARGS` (the CRI namespace);
        raises BenchError on failure."""
        cmd = [CTR_BIN, "-a", self.socket, "-n", "k8s.io"] + list(args)
        res = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=timeout)
        if res.returncode != 0:
            raise BenchError("%s exited %d: %s" % (" ".join(cmd), res.returncode,
                                                   res.stdout.decode(errors="replace")))
        return res.stdout.decode(errors="replace")

    def import_image(self, archive, name, timeout=30.0):
        """Imports a docker/OCI archive into the k8s.io namespace (unpacked
        for the default snapshotter), then waits (bounded) until the CRI
        image service reports `name`."""
        self.ctr("images", "import", archive)
        api_pb2, _ = cri_stubs()
        stub = self.image_stub()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            res = stub.ImageStatus(api_pb2.ImageStatusRequest(
                image=api_pb2.ImageSpec(image=name)), timeout=RPC_TIMEOUT)
            if res.image.id:
                return res.image
            time.sleep(0.1)
        raise BenchError("containerd: %s imported but the CRI image service does not list it "
                         "after %.0f s" % (name, timeout))


RUNTIMES = {"crid": Crid, "containerd": Containerd}


def is_crid(name):
    """Whether the runtime of that name is a crid (this build or the
    baseline)."""
    return issubclass(RUNTIMES[name], Crid)


# CRID_BASELINE_BIN=<other build>/bin/crid adds "crid-baseline", another
# build of crid (its plugins in lib/crid beside that bin/), measured in the
# same run as this one: before/after figures of a change without the
# machine's drift between two runs.
if os.environ.get("CRID_BASELINE_BIN"):
    class CridBaseline(Crid):
        name = "crid-baseline"
        binary = os.environ["CRID_BASELINE_BIN"]

    RUNTIMES["crid-baseline"] = CridBaseline


def runtime_names():
    """Runtimes to compare, crid first.  BENCH_RUNTIMES=crid (comma list)
    narrows it down."""
    wanted = os.environ.get("BENCH_RUNTIMES")
    if not wanted:
        return list(RUNTIMES)
    names = [n.strip() for n in wanted.split(",") if n.strip()]
    for n in names:
        if n not in RUNTIMES:
            raise BenchError("BENCH_RUNTIMES: unknown runtime %r (known: %s)"
                             % (n, ", ".join(RUNTIMES)))
    return names


def start_runtime(name, **kwargs):
    """A started daemon by name ("crid" or "containerd"), for `with`."""
    return RUNTIMES[name](**kwargs).start()


def toml_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return toml_str(str(v))


# ---------------------------------------------------------------- pods


def run_cmd(cmd, timeout=30.0, check=True):
    """Runs cmd (a list) to completion, bounded; CompletedProcess (text)."""
    res = subprocess.run([str(c) for c in cmd], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise BenchError("%s exited %d: %s%s" % (" ".join(map(str, cmd)), res.returncode,
                                                 res.stdout, res.stderr))
    return res


class Netns:
    """A fresh named network namespace (`ip netns add cb-<hex>`) with lo
    up; deleted by delete() and at exit.  A daemon started with
    netns=ns.path runs in it: its CNI bridge, veths, leases and any
    iptables rules stay there, and the namespace has no uplink."""

    def __init__(self, prefix="cb-"):
        self.name = prefix + secrets.token_hex(4)
        self.path = os.path.join(NETNS_RUN_DIR, self.name)
        run_cmd(["ip", "netns", "add", self.name])
        self.alive = True
        _cleanups.append(self.delete)
        try:
            run_cmd(["ip", "-n", self.name, "link", "set", "lo", "up"])
        except BaseException:
            self.delete()
            raise

    def links(self):
        out = run_cmd(["ip", "-n", self.name, "-d", "-j", "link", "show"]).stdout
        return {item["ifname"]: (item.get("linkinfo") or {}).get("info_kind", "")
                for item in json.loads(out or "[]")}

    def delete(self):
        if self.alive:
            run_cmd(["ip", "netns", "delete", self.name], check=False)
            self.alive = False


def bridge_conflist(name, bridge, subnet, data_dir, portmap=True, cni_version="1.0.0"):
    """bridge + host-local (leases in data_dir, not /var/lib/cni) [+
    portmap], ipMasq off, as a dict."""
    plugins = [{
        "type": "bridge",
        "bridge": bridge,
        "isGateway": True,
        "ipMasq": False,
        "hairpinMode": True,
        "ipam": {
            "type": "host-local",
            "dataDir": str(data_dir),
            "ranges": [[{"subnet": str(subnet)}]],
            # Safe: the daemon's namespace has no uplink.
            "routes": [{"dst": "0.0.0.0/0"}],
        },
    }]
    if portmap:
        plugins.append({"type": "portmap", "snat": True, "capabilities": {"portMappings": True}})
    return {"cniVersion": cni_version, "name": name, "plugins": plugins}


def write_conflist(directory, conflist, file_name="10-bench.conflist"):
    path = os.path.join(directory, file_name)
    with open(path + ".tmp", "w") as f:
        json.dump(conflist, f, indent=2)
    os.rename(path + ".tmp", path)
    return path


def _pids():
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None


def proc_name(pid):
    """Basename of a process's executable (falls back to comm)."""
    try:
        return os.path.basename(os.readlink("/proc/%d/exe" % pid)).replace(" (deleted)", "")
    except OSError:
        pass
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


def proc_state(pid):
    """The state letter of a process (R, S, Z, ...), None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def parent_pid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def descendants(roots):
    """Every live pid below the given pids (children, grandchildren...)."""
    children = {}
    for pid in _pids():
        ppid = parent_pid(pid)
        if ppid:
            children.setdefault(ppid, []).append(pid)
    found, todo = set(), list(roots)
    while todo and len(found) < 100000:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def processes_of(directory, exclude=()):
    """{pid: command line} of processes that belong to a private temp dir:
    their command line mentions it, or their root, executable or cwd lies
    inside it."""
    directory = os.path.realpath(directory).rstrip("/")
    found = {}
    for pid in _pids():
        if pid in exclude or pid == os.getpid():
            continue
        line = cmdline(pid)
        if line is None:
            continue
        hit = directory in line
        for link in ("root", "exe", "cwd"):
            if hit:
                break
            try:
                target = os.readlink("/proc/%d/%s" % (pid, link))
            except OSError:
                continue
            hit = target == directory or target.startswith(directory + "/")
        if hit:
            found[pid] = line or "[pid %d]" % pid
    return found


def cgroup_dirs(parent):
    """Every cgroup directory at or below parent ("/crid-bench-x") in every
    mounted hierarchy, deepest first."""
    rel = parent.strip("/")
    found = []
    if not rel or not os.path.isdir(CGROUP_ROOT):
        return found
    for hierarchy in sorted(os.listdir(CGROUP_ROOT)):
        top = os.path.join(CGROUP_ROOT, hierarchy, rel)
        if os.path.isdir(top):
            for dirpath, _, _ in os.walk(top, topdown=False):
                found.append(dirpath)
    return found


def remove_cgroups(parent):
    """rmdir every (empty) cgroup at or below parent, bounded retries;
    returns those that could not be removed."""
    left = []
    for d in cgroup_dirs(parent):
        for attempt in range(20):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                if attempt == 19:
                    left.append(d)
                time.sleep(0.05)
    return left


def go_arch():
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
            "s390x": "s390x", "riscv64": "riscv64"}.get(machine, machine)


def build_pause_archive(path, name, binary=None):
    """Writes a docker-archive (`docker save` layout) at path holding one
    image `name`: a single layer with the static crid-pause binary as
    /pause, entrypoint /pause.  Needs no network; importable with
    `ctr images import`."""
    binary = binary or CRID_PAUSE_BIN
    if not os.access(binary, os.X_OK):
        raise BenchError("%s is missing (make all builds it)" % binary)
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        with open(binary, "rb") as f:
            data = f.read()
        info = tarfile.TarInfo("pause")
        info.size = len(data)
        info.mode = 0o755
        info.mtime = 0
        tar.addfile(info, io.BytesIO(data))
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = {
        "architecture": go_arch(),
        "os": "linux",
        "config": {"Entrypoint": ["/pause"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "crid benchlib: crid-pause as /pause"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_name = diff_id[len("sha256:"):] + "/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": [name], "Layers": [layer_name]}]
    with tarfile.open(path, mode="w") as tar:
        for member, payload in ((config_name, config_bytes), (layer_name, layer_bytes),
                                ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(member)
            info.size = len(payload)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(payload))
    return path


# ---------------------------------------------------------------- measuring


def memory(pid):
    """Memory of one process in bytes: rss, rss_anon, rss_file, hwm (peak
    RSS, VmHWM) and threads (from /proc/PID/status) and pss (from
    /proc/PID/smaps_rollup; None when the kernel lacks it)."""
    out = {"rss": None, "rss_anon": None, "rss_file": None, "pss": None, "threads": None,
           "hwm": None}
    keys = {"VmRSS:": "rss", "RssAnon:": "rss_anon", "RssFile:": "rss_file", "VmHWM:": "hwm"}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            fields = line.split()
            if not fields:
                continue
            if fields[0] in keys and len(fields) >= 2:
                out[keys[fields[0]]] = int(fields[1]) * 1024
            elif fields[0] == "Threads:" and len(fields) >= 2:
                out["threads"] = int(fields[1])
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                fields = line.split()
                if fields and fields[0] == "Pss:":
                    out["pss"] = int(fields[1]) * 1024
    except OSError:
        pass
    return out


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_times(pid):
    """CPU seconds of one process from /proc/PID/stat: (user, system,
    children's user, children's system); the children's part counts only
    children already waited for."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime is field 14.
    return tuple(int(fields[i]) / CLK_TCK for i in (11, 12, 13, 14))


def host_cpu_busy():
    """CPU seconds the whole machine has been busy (user, nice, system,
    irq, softirq, steal of every CPU; /proc/stat) since boot."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def kernel_threads_cpu():
    """CPU seconds used so far by the kernel's threads (kthreadd and its
    children: writeback workers, ksoftirqd, ...), summed over those alive
    now."""
    total = 0
    for pid in _pids():
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if pid == 2 or fields[1] == "2":
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def io_counters(pid):
    """{rchar, wchar, read_bytes, write_bytes, ...} of /proc/PID/io (bytes);
    {} when unreadable."""
    out = {}
    try:
        with open("/proc/%d/io" % pid) as f:
            for line in f:
                key, _, value = line.partition(":")
                out[key.strip()] = int(value)
    except (OSError, ValueError):
        pass
    return out


def net_bytes(pid, iface="lo"):
    """(rx_bytes, tx_bytes) of iface in the network namespace of pid
    (/proc/PID/net/dev), None when absent."""
    try:
        with open("/proc/%d/net/dev" % pid) as f:
            for line in f:
                name, sep, rest = line.partition(":")
                if sep and name.strip() == iface:
                    fields = rest.split()
                    return int(fields[0]), int(fields[8])
    except (OSError, ValueError, IndexError):
        pass
    return None


class PidSampler:
    """Polls one process every `interval` seconds on a thread of its own
    (a Python thread: the GIL is free while the main thread waits in a
    gRPC call): VmRSS, CPU ticks (user+system), wchar from /proc/PID/io
    and the rx bytes of `iface` in its network namespace.  samples is a
    list of (monotonic s, rss bytes, cpu s, wchar, iface rx bytes, RssAnon
    bytes).  Use as a context manager; bounded by max_seconds."""

    def __init__(self, pid, interval=0.01, iface="lo", max_seconds=900.0):
        self.pid = pid
        self.interval = interval
        self.iface = iface
        self.max_seconds = max_seconds
        self.samples = []
        self.error = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self):
        rss = anon = None
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("RssAnon:"):
                    anon = int(line.split()[1]) * 1024
                    break
        user, system, _, _ = cpu_times(self.pid)
        wchar = io_counters(self.pid).get("wchar")
        net = net_bytes(self.pid, self.iface) if self.iface else None
        return (time.monotonic(), rss, user + system, wchar, net[0] if net else None, anon)

    def _loop(self):
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                self.samples.append(self.sample())
            except (OSError, ValueError, IndexError) as e:
                self.error = e
                return
            self._stop.wait(self.interval)

    def start(self):
        self.samples.append(self.sample())
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5.0)
        try:
            self.samples.append(self.sample())
        except (OSError, ValueError, IndexError) as e:
            self.error = e
        return self.samples

    def peak_rss(self, field=1):
        """Largest sampled VmRSS (field 5: RssAnon), None without samples."""
        values = [s[field] for s in self.samples if s[field] is not None]
        return max(values) if values else None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def drop_caches():
    """sync, then drop the page cache, dentries and inodes
    (/proc/sys/vm/drop_caches = 3; needs root).  Returns None or the reason
    it could not."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError as e:
        return str(e)
    return None


def read_files(paths, chunk=1024 * 1024):
    """Reads every file once (into the page cache); returns bytes read."""
    total = 0
    for path in paths:
        try:
            with open(path, "rb", buffering=0) as f:
                while True:
                    data = f.read(chunk)
                    if not data:
                        break
                    total += len(data)
        except OSError:
            pass
    return total


def shared_libraries(binary):
    """The shared libraries ldd lists for a binary (absolute paths)."""
    try:
        res = subprocess.run(["ldd", binary], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    out = []
    for line in res.stdout.splitlines():
        for word in line.split():
            if word.startswith("/") and os.path.exists(word):
                out.append(word)
                break
    return out


def median(values):
    """Median of a list of numbers (None for an empty one)."""
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    if len(values) % 2:
        return values[mid]
    return (values[mid - 1] + values[mid]) / 2.0


def percentile(sorted_values, p):
    """The p-th percentile (0..100) of an already sorted list, linear
    interpolation between closest ranks."""
    if not sorted_values:
        return None
    if len(sorted_values) == 1:
        return sorted_values[0]
    k = (len(sorted_values) - 1) * (p / 100.0)
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def summarize_ns(samples_ns, percentiles=(50, 90, 99)):
    """{'n', 'min', 'mean', 'max', 'p50', ...} in milliseconds from
    nanosecond samples."""
    s = sorted(samples_ns)
    res = {"n": len(s)}
    if not s:
        return res
    res["min"] = s[0] / 1e6
    res["max"] = s[-1] / 1e6
    res["mean"] = sum(s) / len(s) / 1e6
    for p in percentiles:
        res["p%g" % p] = percentile(s, p) / 1e6
    return res


def env_int(name, default, minimum=0):
    """An integer knob from the environment (default when unset or
    empty); BenchError when it is not a number or below minimum."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BenchError("%s=%r is not a number" % (name, raw)) from None
    if value < minimum:
        raise BenchError("%s=%d: at least %d" % (name, value, minimum))
    return value


def wait_until(predicate, timeout, interval=0.05):
    """Calls predicate() until it returns something true or timeout
    seconds pass (bounded); returns its last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(interval)


def time_calls(fn, count):
    """Calls fn() count times in sequence; returns each call's duration in
    ns."""
    samples = [0] * count
    clock = time.perf_counter_ns
    for i in range(count):
        t0 = clock()
        fn()
        samples[i] = clock() - t0
    return samples


# ---------------------------------------------------------------- printing


def fmt(value, digits=2):
    if value is None:
        return "-"
    if isinstance(value, float):
        return "%.*f" % (digits, value)
    return str(value)


def rpc_text(e):
    """A gRPC error as "CODE details", anything else as its text."""
    code = getattr(e, "code", None)
    if callable(code):
        try:
            return "%s %s" % (e.code().name, e.details())
        except Exception:  # noqa: BLE001 - not a real RpcError
            pass
    return str(e)[:500]


class Table:
    """A titled text table, one row per runtime, plus note lines."""

    def __init__(self, title, columns):
        self.title = title
        self.columns = list(columns)
        self.rows = []
        self.notes = []
        self.failed = False

    def add_row(self, *cells):
        if len(cells) != len(self.columns):
            raise ValueError("row has %d cells, table %d columns" % (len(cells), len(self.columns)))
        self.rows.append([c if isinstance(c, str) else fmt(c) for c in cells])

    def note(self, text):
        self.notes.append(text)

    def fail(self, text):
        """Records that a part of the benchmark could not run (run.py then
        exits non-zero).  Slow figures are never failures."""
        self.failed = True
        self.notes.append("FAILED " + text)

    def close(self, *note_lists, failures=()):
        """The last table of a benchmark: every note of note_lists, then
        the failures."""
        for notes in note_lists:
            for n in notes:
                self.note(n)
        for f in failures:
            self.fail(f)

    def render(self):
        widths = [len(c) for c in self.columns]
        for row in self.rows:
            for i, cell in enumerate(row):
                widths[i] = max(widths[i], len(cell))

        def line(cells):
            parts = []
            for i, cell in enumerate(cells):
                # first column (runtime name) left, figures right
                parts.append(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]))
            return "| " + " | ".join(parts) + " |"

        out = ["== " + self.title, line(self.columns),
               "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        out += [line(r) for r in self.rows]
        out += ["  " + n for n in self.notes]
        return "\n".join(out)

    def __str__(self):
        return self.render()


def metric_table(title, cols):
    """A table with one row per figure: its name, crid's target, then a
    column per runtime measured (bench_stream, bench_stats)."""
    return Table(title, ["figure", "target (crid)"] + cols)


def add_figure(table, results, label, target, getter, digits=1):
    """One row of a metric_table: getter(result) for each (column,
    result) in results; a figure that could not be measured shows empty."""
    cells = []
    for _, r in results:
        try:
            value = getter(r)
        except (KeyError, TypeError, ZeroDivisionError):
            value = None
        cells.append(value if isinstance(value, str) else fmt(value, digits))
    table.add_row(label, target, *cells)
