"""Reusable harness for crid's integration tests.

Everything a test needs to drive a real crid over its real gRPC API:

- ``load_api(dir)`` generates the Python stubs from ``cri-api/api.proto``
  into a scratch directory (never into the repository) and imports them.
- ``Crid`` starts one crid in its own short temp dir under /tmp, with its
  own root, state dir, socket, CNI config dir and generated config file
  (``--config FILE --config-dir DIR``, so /etc/crid is never read), and
  exposes ``.runtime`` / ``.image`` stubs over ``unix://<sock>``;
  ``Crid(netns=/run/netns/<name>)`` runs it inside a network namespace
  (``netns.py`` creates those, for the pod sandbox tests).
- ``raw_call`` sends arbitrary bytes to any method path.
- ``run_crid`` runs crid's CLI (``crid config`` etc.) to completion.

Only processes this module started are ever signalled, by their pid.
Every wait is bounded.
"""

import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

REPO = Path(__file__).resolve().parents[2]
CRID_BIN = Path(os.environ.get("CRID_BIN", REPO / "build" / "bin" / "crid"))
PROTO_DIR = REPO / "cri-api"
PROTO_FILE = "api.proto"

RUNTIME_SERVICE = "runtime.v1.RuntimeService"
IMAGE_SERVICE = "runtime.v1.ImageService"

MAX_MESSAGE_SIZE = 16 * 1024 * 1024
START_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0  # crid's own shutdown grace is 10 s
LOG_TAIL_LINES = 80

# What a sane pod network config looks like; only ever read, never run.
BRIDGE_CONFLIST = {
    "cniVersion": "1.0.0",
    "name": "crid-test",
    "plugins": [
        {
            "type": "bridge",
            "bridge": "crid-test0",
            "isGateway": True,
            "ipMasq": False,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": "10.88.0.0/16"}]],
                "routes": [{"dst": "0.0.0.0/0"}],
            },
        }
    ],
}


# --------------------------------------------------------------------------
# Generated stubs


class Api:
    """The generated modules: ``pb`` (api_pb2) and ``grpc`` (api_pb2_grpc)."""

    def __init__(self, pb, pb_grpc, directory):
        self.pb = pb
        self.grpc = pb_grpc
        self.directory = directory


_API = None


def load_api(out_dir):
    """Generates api_pb2 / api_pb2_grpc into out_dir and imports them.

    Done once per process; later calls return the first result."""
    global _API
    if _API is not None:
        return _API
    out_dir = str(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    cmd = [
        "protoc",
        f"--proto_path={PROTO_DIR}",
        f"--python_out={out_dir}",
        f"--grpc_out={out_dir}",
        "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin",
        PROTO_FILE,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"protoc failed ({result.returncode}):\n{result.stderr}")
    # api_pb2_grpc does `import api_pb2`, so the directory must be on the path.
    sys.path.insert(0, out_dir)
    importlib.invalidate_caches()
    pb = importlib.import_module("api_pb2")
    pb_grpc = importlib.import_module("api_pb2_grpc")
    _API = Api(pb, pb_grpc, out_dir)
    return _API


# --------------------------------------------------------------------------
# Config files


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # JSON string escapes are valid TOML basic-string escapes.
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def toml_text(tables):
    """{"crid": {...}, "crid.api": {...}} -> TOML text, tables in order."""
    out = []
    for table, keys in tables.items():
        out.append(f"[{table}]")
        for key, value in keys.items():
            out.append(f"{key} = {toml_value(value)}")
        out.append("")
    return "\n".join(out)


def merge_tables(base, override):
    merged = {table: dict(keys) for table, keys in base.items()}
    for table, keys in (override or {}).items():
        merged.setdefault(table, {}).update(keys)
    return merged


def write_conflist(directory, name="10-crid-test.conflist", conflist=None):
    """Writes a CNI config list into directory (atomically) and returns its path."""
    path = Path(directory) / name
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(json.dumps(conflist or BRIDGE_CONFLIST, indent=2))
    os.rename(tmp, path)
    return path


# --------------------------------------------------------------------------
# gRPC helpers


def unix_channel(sock):
    return grpc.insecure_channel(
        f"unix://{sock}",
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_SIZE),
            ("grpc.max_send_message_length", MAX_MESSAGE_SIZE),
        ],
    )


def method_path(method, service=RUNTIME_SERVICE):
    """"Version" -> "/runtime.v1.RuntimeService/Version"; a full path is kept."""
    return method if method.startswith("/") else f"/{service}/{method}"


class RawResult:
    def __init__(self, code, details, response):
        self.code = code  # grpc.StatusCode
        self.details = details
        self.response = response  # bytes or None

    def __repr__(self):
        return f"RawResult({self.code}, {self.details!r}, {self.response!r})"


def raw_call(channel, method, payload, timeout=10.0, service=RUNTIME_SERVICE):
    """Sends payload (bytes, not re-encoded) to a method; never raises for a
    gRPC status, returns RawResult(code, details, response bytes)."""
    call = channel.unary_unary(
        method_path(method, service), request_serializer=None, response_deserializer=None
    )
    try:
        response = call(bytes(payload), timeout=timeout)
        return RawResult(grpc.StatusCode.OK, "", response)
    except grpc.RpcError as e:
        return RawResult(e.code(), e.details() or "", None)


def rpc_error(fn, *args, **kwargs):
    """Calls fn expecting a gRPC error; returns the RpcError (fails if OK)."""
    try:
        response = fn(*args, **kwargs)
    except grpc.RpcError as e:
        return e
    raise AssertionError(f"expected a gRPC error, got OK: {response!r}")


# --------------------------------------------------------------------------
# Waiting


def wait_for(predicate, timeout=5.0, interval=0.05, message="condition"):
    """Polls predicate until it returns a true value (returned) or timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------
# The CLI


def run_crid(args, timeout=20.0, env=None):
    """Runs build/bin/crid with args to completion; CompletedProcess (text)."""
    return subprocess.run(
        [str(CRID_BIN), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )


# --------------------------------------------------------------------------
# One crid


class CridError(AssertionError):
    pass


class Crid:
    """One crid daemon with everything of its own under a short /tmp dir.

    Layout of ``self.dir``:
        crid.conf      the generated main config (``self.config_file``)
        crid.conf.d/   drop-ins (``self.config_dir``), empty by default
        root/          [crid] root
        state/         [crid] state_dir (lock)
        crid.sock      [crid.api] listen
        net.d/         [crid.network] network_dir, empty by default
        cdi/           [crid.runtime] cdi_spec_dirs, made by crid
        crid.log       stdout + stderr of every start, appended

    ``config`` is {table: {key: value}} merged over the base tables;
    ``extra_config`` is raw TOML appended to the main file (it must not
    repeat a table already written; prefer ``config`` or ``dropins``).
    ``dropins`` is {file name: TOML text} written into crid.conf.d.
    ``state_dir`` / ``root`` / ``sock`` override the private defaults
    (to share them with another instance).  ``args`` are extra flags.
    ``netns`` (a network namespace file, e.g. /run/netns/<name>) runs the
    daemon inside that network namespace through ``nsenter --net`` (only
    the network namespace changes; the pid stays crid's own), so the CNI
    plugins it runs, their bridge, veths and iptables rules live there.
    ``env`` is {name: value} added to the harness's environment for the
    daemon (a value of None removes that variable), e.g. NOTIFY_SOCKET.
    """

    def __init__(
        self,
        api,
        config=None,
        extra_config="",
        dropins=None,
        args=(),
        state_dir=None,
        root=None,
        sock=None,
        log_level="debug",
        netns=None,
        env=None,
    ):
        self.api = api
        self.env = dict(env or {})
        self.netns = str(netns) if netns else None
        self.dir = Path(tempfile.mkdtemp(prefix="crid-", dir="/tmp"))
        self.config_file = self.dir / "crid.conf"
        self.config_dir = self.dir / "crid.conf.d"
        self.root = Path(root) if root else self.dir / "root"
        self.state_dir = Path(state_dir) if state_dir else self.dir / "state"
        self.sock = Path(sock) if sock else self.dir / "crid.sock"
        self.network_dir = self.dir / "net.d"
        self.log_path = self.dir / "crid.log"
        self.args = list(args)
        self.log_level = log_level
        self.proc = None
        self.returncode = None
        self._channel = None
        self.runtime = None
        self.image = None
        self._log_file = None

        self.config_dir.mkdir()
        self.network_dir.mkdir()
        self.config = merge_tables(self.base_config(), config)
        self.extra_config = extra_config
        self.write_config()
        for name, text in (dropins or {}).items():
            self.write_dropin(name, text)

    # -- configuration ----------------------------------------------------

    def base_config(self):
        return {
            "crid": {
                "root": str(self.root),
                "state_dir": str(self.state_dir),
                "log_level": self.log_level,
            },
            "crid.api": {"listen": str(self.sock)},
            # crid creates and watches these: never the host's /etc/cdi.
            "crid.runtime": {"cdi_spec_dirs": [str(self.dir / "cdi")]},
            "crid.network": {"network_dir": str(self.network_dir)},
        }

    def config_text(self):
        text = toml_text(self.config)
        if self.extra_config:
            text += "\n" + self.extra_config.strip("\n") + "\n"
        return text

    def write_config(self, config=None, extra_config=None):
        """(Re)writes the main config file atomically; ``config`` is merged
        into the current tables, ``extra_config`` replaces the raw tail."""
        if config:
            self.config = merge_tables(self.config, config)
        if extra_config is not None:
            self.extra_config = extra_config
        self._write_atomic(self.config_file, self.config_text())

    def write_dropin(self, name, text):
        path = self.config_dir / name
        self._write_atomic(path, text)
        return path

    def write_conflist(self, name="10-crid-test.conflist", conflist=None):
        return write_conflist(self.network_dir, name, conflist)

    @staticmethod
    def _write_atomic(path, text):
        tmp = path.with_name("." + path.name + ".tmp")
        tmp.write_text(text)
        os.rename(tmp, path)

    def command(self, *extra):
        return [
            str(CRID_BIN),
            "--config",
            str(self.config_file),
            "--config-dir",
            str(self.config_dir),
            *self.args,
            *extra,
        ]

    def launch_command(self):
        """What start() runs: command(), inside ``netns`` when one is set."""
        if self.netns:
            return ["nsenter", f"--net={self.netns}", "--", *self.command()]
        return self.command()

    def cli(self, *args, timeout=20.0):
        """Runs a crid subcommand (e.g. "config") with this instance's config."""
        return run_crid(self.command(*args)[1:], timeout=timeout)

    # -- process ----------------------------------------------------------

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, wait=True, timeout=START_TIMEOUT):
        """Starts crid; with wait, returns once Version answers (bounded),
        raising CridError with the log tail if crid exits or never answers."""
        assert not self.running(), "crid is already running"
        if not CRID_BIN.exists():
            raise CridError(f"{CRID_BIN} is missing: run `make all` first")
        self.close_channel()
        self.returncode = None
        self._log_file = open(self.log_path, "ab")
        self._log_file.write(
            f"=== harness: starting {' '.join(self.launch_command())}\n".encode()
        )
        self._log_file.flush()
        self.proc = subprocess.Popen(
            self.launch_command(),
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a ^C to pytest does not reach it
        )
        if wait:
            self.wait_ready(timeout)
        return self

    def environment(self):
        """The daemon's environment: the harness's, with ``env`` applied."""
        environment = dict(os.environ)
        for name, value in self.env.items():
            if value is None:
                environment.pop(name, None)
            else:
                environment[name] = str(value)
        return environment

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        last_error = "socket never appeared"
        while True:
            if self.proc.poll() is not None:
                self._reap()
                raise CridError(
                    f"crid exited with {self.returncode} while starting\n{self.log_tail()}"
                )
            if self.sock.exists():
                self.open_channel()
                try:
                    self.runtime.Version(self.api.pb.VersionRequest(), timeout=1.0)
                    return
                except grpc.RpcError as e:
                    last_error = f"{e.code()}: {e.details()}"
                    # A fresh channel next time: a failed one waits out its
                    # reconnect backoff (a stale socket from a crash).
                    self.close_channel()
            if time.monotonic() >= deadline:
                raise CridError(
                    f"crid did not answer Version within {timeout} s ({last_error})\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.05)

    def open_channel(self):
        if self._channel is None:
            self._channel = unix_channel(self.sock)
            self.runtime = self.api.grpc.RuntimeServiceStub(self._channel)
            self.image = self.api.grpc.ImageServiceStub(self._channel)
        return self._channel

    @property
    def channel(self):
        return self.open_channel()

    def new_channel(self):
        """A separate channel (the caller closes it)."""
        return unix_channel(self.sock)

    def close_channel(self):
        if self._channel is not None:
            self._channel.close()
        self._channel = None
        self.runtime = None
        self.image = None

    def raw_call(self, method, payload, timeout=10.0, service=RUNTIME_SERVICE):
        return raw_call(self.channel, method, payload, timeout=timeout, service=service)

    def signal(self, sig):
        """Sends sig to this crid (by its pid, only while it has not been reaped)."""
        assert self.proc is not None, "crid was never started"
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def wait(self, timeout=STOP_TIMEOUT):
        """Waits for exit (bounded); returns the exit code, None on timeout."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reap()
        return self.returncode

    def stop(self, sig=None, timeout=STOP_TIMEOUT):
        """sig (default SIGTERM), bounded wait, exit code.  If crid hangs it
        is SIGKILLed and the result is -9 (a hang is a bug the caller sees).

        The harness's own channel is closed first: an idle Python channel
        does not read the server's GOAWAY, which holds crid's shutdown for
        grpc's GOAWAY timeout (~5 s).  Tests about idle clients open their
        own channel with new_channel()."""
        if sig is None:
            sig = signal.SIGTERM
        if self.proc is None:
            return None
        self.close_channel()
        if self.proc.poll() is None:
            self.signal(sig)
            if self.wait(timeout) is None:
                self._log_note(f"crid did not exit {timeout} s after signal {sig}; SIGKILL")
                self.kill()
        self._reap()
        return self.returncode

    def kill(self):
        """SIGKILL, as a crash would: leaves the socket and state behind."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT)
        self._reap()
        return self.returncode

    def _reap(self):
        if self.proc is not None and self.proc.poll() is not None:
            self.returncode = self.proc.returncode
        if self._log_file is not None and self.returncode is not None:
            self._log_file.close()
            self._log_file = None

    def _log_note(self, text):
        with open(self.log_path, "ab") as f:
            f.write(f"=== harness: {text}\n".encode())

    # -- log --------------------------------------------------------------

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_lines(self):
        return self.log_text().splitlines()

    def log_tail(self, lines=LOG_TAIL_LINES):
        tail = self.log_lines()[-lines:]
        return f"--- crid log tail ({self.log_path}) ---\n" + "\n".join(tail) + "\n--- end ---"

    def wait_log(self, predicate, timeout=5.0, message="a log line"):
        """Waits until predicate(line) is true for some line; returns it."""

        def find():
            for line in self.log_lines():
                if predicate(line):
                    return line
            return None

        return wait_for(find, timeout=timeout, message=message)

    def reload(self, marker, timeout=10.0):
        """SIGHUP (a configuration reload), then waits for the first log
        line written after it that contains marker; returns that line."""
        seen = len(self.log_lines())
        self.signal(signal.SIGHUP)

        def find():
            return next((line for line in self.log_lines()[seen:] if marker in line), None)

        return wait_for(find, timeout=timeout, message=f"a log line with {marker!r} after SIGHUP")

    # -- teardown ---------------------------------------------------------

    def cleanup(self, keep=False):
        self.close_channel()
        if self.running():
            self.stop()
        self._reap()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


class CopiedCrid(Crid):
    """A Crid run from copies of some of the build's programs in a bin/ of
    its own (with no lib/crid beside it unless copied): what an install
    that lacks a part looks like."""

    def __init__(self, api, programs=("crid", "crid-conmon", "crid-pause"), **kwargs):
        super().__init__(api, **kwargs)
        self.bin = self.dir / "prefix" / "bin"
        self.bin.mkdir(parents=True)
        for name in programs:
            shutil.copy2(CRID_BIN.parent / name, self.bin / name)

    def command(self, *extra):
        return [str(self.bin / "crid"), *super().command(*extra)[1:]]
