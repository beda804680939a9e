"""Network namespaces, CNI configs, pod-side probes and leak checks for
crid's pod sandbox tests.

Isolation rule: every interface, address, bridge, veth, host-local lease
and iptables rule a test causes lives inside a network namespace the test
created (``TestNetns``; crid itself runs inside it, so CNI plugins run
there too).  Traffic only ever goes between addresses inside such
namespaces.  Every wait and every loop is bounded; only processes started
here (or, in cleanup, processes that provably belong to one test's private
temp dir) are signalled, each by its pid.
"""

import ipaddress
import json
import os
import secrets
import selectors
import signal
import subprocess
import time
from pathlib import Path

PYTHON = "/usr/bin/python3"
NETNS_RUN_DIR = Path("/run/netns")
CGROUP_ROOT = Path("/sys/fs/cgroup")
CNI_BIN_DIR = "/usr/lib/cni"
HOST_CNI_DATA_DIR = Path("/var/lib/cni/networks")
CMD_TIMEOUT = 10.0


class NetnsError(AssertionError):
    pass


def run(cmd, timeout=CMD_TIMEOUT, check=True, input=None):
    """Runs cmd (a list) to completion, bounded; CompletedProcess (text)."""
    result = subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        raise NetnsError(
            f"{' '.join(map(str, cmd))} exited {result.returncode}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}"
        )
    return result


def in_netns(netns_path, *cmd):
    """argv running cmd in the network namespace at netns_path (only the
    network namespace changes: mounts, pids and the rest stay the test's)."""
    return ["nsenter", f"--net={netns_path}", "--", *map(str, cmd)]


def ns_inode(path):
    """Identity of a namespace: the inode of its nsfs file (a pinned bind
    mount or /proc/<pid>/ns/<kind>)."""
    return os.stat(path).st_ino


# --------------------------------------------------------------------------
# The test's own network namespace (the "node")


class TestNetns:
    """A fresh named network namespace ``crid-t-<hex>`` with lo up.

    ``path`` is its /run/netns file; ``dummy(name, cidr)`` adds a dummy
    interface (a stand-in for the node's own address)."""

    def __init__(self, prefix="crid-t-"):
        self.name = prefix + secrets.token_hex(4)
        self.path = NETNS_RUN_DIR / self.name
        run(["ip", "netns", "add", self.name])
        self.alive = True
        try:
            run(["ip", "-n", self.name, "link", "set", "lo", "up"])
            self.inode = ns_inode(self.path)
        except Exception:
            self.delete()
            raise

    def run(self, *cmd, timeout=CMD_TIMEOUT, check=True, input=None):
        return run(in_netns(self.path, *cmd), timeout=timeout, check=check, input=input)

    def ip(self, *args, check=True):
        return run(["ip", "-n", self.name, *args], check=check)

    def dummy(self, name, cidr):
        """An interface holding cidr: a dummy, or where the kernel has no
        dummy driver, a bridge without ports (its address is just as local)."""
        if self.ip("link", "add", name, "type", "dummy", check=False).returncode != 0:
            self.ip("link", "add", name, "type", "bridge")
        self.ip("addr", "add", cidr, "dev", name)
        self.ip("link", "set", name, "up")

    def links(self):
        return links(self.path)

    def veths(self):
        return [name for name, info in self.links().items() if info["kind"] == "veth"]

    def processes(self, exclude=()):
        """pids (other than exclude) whose network namespace is this one."""
        return processes_in_netns(self.inode, exclude)

    def delete(self):
        if self.alive:
            run(["ip", "netns", "delete", self.name], check=False)
            self.alive = False


def links(netns_path):
    """{ifname: {"flags": set, "kind": str, "state": str}} of a namespace."""
    out = run(in_netns(netns_path, "ip", "-d", "-j", "link", "show")).stdout
    result = {}
    for item in json.loads(out or "[]"):
        kind = (item.get("linkinfo") or {}).get("info_kind", "")
        result[item["ifname"]] = {
            "flags": set(item.get("flags", [])),
            "kind": kind,
            "state": item.get("operstate", ""),
        }
    return result


def ipv4_addresses(netns_path, dev=None):
    """["10.250.1.2/24", ...] on dev (or every interface) of a namespace."""
    cmd = ["ip", "-j", "-4", "addr", "show"] + (["dev", dev] if dev else [])
    out = run(in_netns(netns_path, *cmd)).stdout
    addrs = []
    for item in json.loads(out or "[]"):
        for a in item.get("addr_info", []):
            addrs.append(f"{a['local']}/{a['prefixlen']}")
    return addrs


# --------------------------------------------------------------------------
# CNI configuration

_subnet_counter = 0


def next_subnet_index():
    """A small number for 10.250.<n>.0/24 and crtbr<n>; distinct within a
    run (each test has its own namespace anyway, so reuse is harmless)."""
    global _subnet_counter
    _subnet_counter = _subnet_counter % 200 + 1
    return _subnet_counter


def bridge_conflist(
    name, bridge, subnet, data_dir, portmap=True, extra_plugins=(), cni_version="1.0.0"
):
    """bridge + host-local (leases in data_dir, not /var/lib/cni) [+ portmap]
    [+ extra plugins], ipMasq off."""
    plugins = [
        {
            "type": "bridge",
            "bridge": bridge,
            "isGateway": True,
            "ipMasq": False,
            "hairpinMode": True,
            "ipam": {
                "type": "host-local",
                "dataDir": str(data_dir),
                "ranges": [[{"subnet": str(subnet)}]],
                # A default route via the bridge is safe: the test's
                # namespace has no uplink, so nothing can leave it.
                "routes": [{"dst": "0.0.0.0/0"}],
            },
        }
    ]
    if portmap:
        plugins.append(
            {"type": "portmap", "snat": True, "capabilities": {"portMappings": True}}
        )
    plugins.extend(extra_plugins)
    return {"cniVersion": cni_version, "name": name, "plugins": plugins}


def host_local_leases(data_dir, network):
    """Addresses host-local holds for network in data_dir (file names that
    are IP addresses; lock and last_reserved_ip.* are bookkeeping)."""
    leases = []
    directory = Path(data_dir) / network
    if not directory.is_dir():
        return leases
    for entry in directory.iterdir():
        try:
            ipaddress.ip_address(entry.name)
        except ValueError:
            continue
        leases.append(entry.name)
    return sorted(leases)


TEST_PLUGIN = """#!/bin/sh
# crid test CNI plugin: passes prevResult through.  Every call is logged
# to {log}.  While {flag} exists, ADD fails.  While {hold} exists, ADD and
# DEL first say so in {held} and wait (at most 60 s) for it to go.
echo "$CNI_COMMAND $CNI_CONTAINERID $CNI_IFNAME" >> {log}
case "$CNI_COMMAND" in
VERSION)
    cat >/dev/null
    echo '{{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}}'
    ;;
ADD|DEL)
    input=$(cat)
    if [ -e {hold} ]; then
        echo "$CNI_COMMAND" >> {held}
        i=0
        while [ -e {hold} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    fi
    if [ "$CNI_COMMAND" = ADD ] && [ -e {flag} ]; then
        echo '{{"cniVersion":"1.0.0","code":100,"msg":"crid-test: injected ADD failure"}}'
        exit 1
    fi
    if [ "$CNI_COMMAND" = ADD ]; then
        printf '%s' "$input" | {python} -c 'import json, sys
c = json.load(sys.stdin)
r = c.get("prevResult") or {{}}
r["cniVersion"] = c["cniVersion"]
print(json.dumps(r))'
    fi
    ;;
*)
    cat >/dev/null
    ;;
esac
exit 0
"""


def write_test_plugin(directory, plugin_type):
    """Writes TEST_PLUGIN into directory; returns its path and its files:
    flag (fail ADD while it exists), hold (wait while it exists), held
    (waits logged) and log (every call)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = {name: directory / f"{plugin_type}.{name}" for name in ("fail", "hold", "held", "log")}
    path = directory / plugin_type
    path.write_text(
        TEST_PLUGIN.format(
            flag=files["fail"], hold=files["hold"], held=files["held"], log=files["log"],
            python=PYTHON,
        )
    )
    path.chmod(0o755)
    return path, files


def write_failing_plugin(directory, plugin_type="crtfail"):
    """Returns (path, flag file, log file).  The flag file is created: the
    plugin fails ADD until it is removed."""
    path, files = write_test_plugin(directory, plugin_type)
    files["fail"].touch()
    return path, files["fail"], files["log"]


def write_holding_plugin(directory, plugin_type="crthold"):
    """Returns (hold file, held log).  Creating the hold file makes the
    next ADD or DEL wait until it is removed; each wait is first logged to
    the held log."""
    _, files = write_test_plugin(directory, plugin_type)
    return files["hold"], files["held"]


FAILING_RUNTIME = """#!/bin/sh
# crid test OCI runtime: {real} with an injected failure chosen by the
# first word of {mode_file}: "create" fails before creating anything,
# "create-after" creates and then reports failure, "start" fails start.
# `run` (create and start in one, used for the pause) fails before
# anything in "create" mode, and after running the container otherwise.
mode=$(cat {mode_file} 2>/dev/null)
cmd=
for a in "$@"; do
    case "$a" in
    create|start|kill|delete|state|list|run|exec|update|pause|resume|ps|features) cmd=$a; break ;;
    esac
done
echo "$cmd $*" >> {log}
case "$mode:$cmd" in
create:create|create:run|start:start)
    echo "crid-test: injected $cmd failure" >&2
    exit 1
    ;;
create-after:create|create-after:run|start:run)
    {real} "$@" || exit $?
    echo "crid-test: injected failure after create" >&2
    exit 1
    ;;
esac
exec {real} "$@"
"""


def write_failing_runtime(directory, real_runtime, name="failrt"):
    """A wrapper around real_runtime; returns (path, mode file, log file).
    Mode starts empty (no failure)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    mode_file = directory / f"{name}.mode"
    log = directory / f"{name}.log"
    path = directory / name
    path.write_text(FAILING_RUNTIME.format(real=real_runtime, mode_file=mode_file, log=log))
    path.chmod(0o755)
    mode_file.write_text("")
    return path, mode_file, log


# --------------------------------------------------------------------------
# Probes run inside a pod's network namespace

TCP_SERVER = r"""
import socket, sys
port, timeout = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
s.listen(8)
s.settimeout(timeout)
print("ready", flush=True)
c, addr = s.accept()
c.settimeout(timeout)
data = b""
while not data.endswith(b"\n") and len(data) < 4096:
    chunk = c.recv(4096)
    if not chunk:
        break
    data += chunk
c.sendall(b"pong " + data)
c.close()
print("peer " + addr[0], flush=True)
"""

TCP_CLIENT = r"""
import socket, sys
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.create_connection((host, port), timeout=timeout)
s.settimeout(timeout)
s.sendall(sys.argv[4].encode() + b"\n")
reply = b""
while len(reply) < 4096:
    chunk = s.recv(4096)
    if not chunk:
        break
    reply += chunk
sys.stdout.write(reply.decode())
"""


class TcpServer:
    """A one-shot TCP server in a network namespace: accepts one
    connection, answers "pong <line>", exits.  Started by pid, bounded."""

    def __init__(self, netns_path, port, timeout=10.0):
        self.proc = subprocess.Popen(
            in_netns(netns_path, PYTHON, "-c", TCP_SERVER, port, timeout),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self._readline(timeout=10.0)
        if line.strip() != "ready":
            err = self.stop()
            raise NetnsError(f"TCP server in {netns_path} did not start: {line!r} {err}")

    def _readline(self, timeout):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            if not sel.select(timeout):
                return ""
            return self.proc.stdout.readline()
        finally:
            sel.close()

    def result(self, timeout=10.0):
        """The "peer <ip>" line once the exchange is done ("" if none)."""
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return ""
        return out.strip()

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        try:
            _, err = self.proc.communicate(timeout=5)
        except (subprocess.TimeoutExpired, ValueError):
            err = ""
        return err


def tcp_request(netns_path, host, port, message="ping", timeout=5.0):
    """Connects from netns_path to host:port, sends a line; returns
    (returncode, reply, stderr)."""
    result = run(
        in_netns(netns_path, PYTHON, "-c", TCP_CLIENT, host, port, timeout, message),
        timeout=timeout + 10,
        check=False,
    )
    return result.returncode, result.stdout, result.stderr


# --------------------------------------------------------------------------
# Leak detection


def mounts_under(prefix):
    """Mount points in this mount namespace at or below prefix."""
    prefix = str(prefix).rstrip("/")
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mount_point = line.split()[4].encode().decode("unicode_escape")
            if mount_point == prefix or mount_point.startswith(prefix + "/"):
                found.append(mount_point)
    return found


def leaked_mounts_under(prefix):
    """mounts_under(prefix) but for what a running crid keeps mounted that
    is no pod's: its read-only runtime binaries (<state>/runtime-bin/) and
    the roots of pause images (<root>/pause/images/)."""
    return [
        m for m in mounts_under(prefix) if "/runtime-bin/" not in m and "/pause/images/" not in m
    ]


def _proc_pids():
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None


def processes_in_netns(inode, exclude=()):
    found = []
    for pid in _proc_pids():
        if pid in exclude or pid == os.getpid():
            continue
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino == inode:
                found.append(pid)
        except OSError:
            continue
    return found


def processes_of(directory, exclude=()):
    """{pid: description} of processes that belong to a test's private dir:
    their command line mentions it, or their root directory or executable is
    inside it (the pause process runs from <root>/pause/rootfs)."""
    directory = str(directory).rstrip("/")
    found = {}
    for pid in _proc_pids():
        if pid in exclude or pid == os.getpid():
            continue
        cmdline = _cmdline(pid)
        if cmdline is None:
            continue
        hit = directory in cmdline
        for link in ("root", "exe", "cwd"):
            try:
                target = os.readlink(f"/proc/{pid}/{link}")
            except OSError:
                continue
            if target == directory or target.startswith(directory + "/"):
                hit = True
        if hit:
            found[pid] = cmdline or f"[pid {pid}]"
    return found


def cgroup_dirs(cgroup_parent):
    """Every cgroup directory at or below cgroup_parent ("/crid-test-x") in
    every mounted hierarchy, deepest first."""
    rel = cgroup_parent.strip("/")
    found = []
    if not rel:
        return found
    for hierarchy in sorted(CGROUP_ROOT.iterdir()):
        top = hierarchy / rel
        if not top.is_dir():
            continue
        for dirpath, dirnames, _ in os.walk(top, topdown=False):
            found.append(dirpath)
    return found


def cgroup_processes(cgroup_parent):
    """pids in any cgroup at or below cgroup_parent: a test's own parent,
    so they are its containers' processes (found even when they pivoted
    into a root that no longer names the test dir)."""
    pids = set()
    for d in cgroup_dirs(cgroup_parent):
        try:
            text = Path(d, "cgroup.procs").read_text()
        except OSError:
            continue
        pids.update(int(line) for line in text.split())
    return pids


def cgroup_children(cgroup_parent):
    """cgroups strictly below cgroup_parent (what a pod leaves behind)."""
    rel = cgroup_parent.strip("/")
    return [d for d in cgroup_dirs(cgroup_parent) if not d.rstrip("/").endswith("/" + rel)]


def cgroups_naming(words, limit=20000):
    """cgroup directories anywhere under /sys/fs/cgroup whose path contains
    one of words (sandbox ids); the walk stops after limit directories."""
    words = [w for w in words if w]
    found = []
    if not words:
        return found
    seen = 0
    for dirpath, _, _ in os.walk(CGROUP_ROOT):
        seen += 1
        if seen > limit:
            break
        if any(w in dirpath for w in words):
            found.append(dirpath)
    return found


def remove_cgroups(cgroup_parent):
    """rmdir every (empty) cgroup at or below cgroup_parent; bounded."""
    for d in cgroup_dirs(cgroup_parent):
        for _ in range(20):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)


def runtime_containers(runtime_path, root):
    """ids the OCI runtime lists under root ([] if root does not exist)."""
    if not Path(root).is_dir():
        return []
    result = run([runtime_path, "--root", root, "list", "-q"], check=False)
    if result.returncode != 0:
        return [f"<{runtime_path} list failed: {result.stderr.strip()}>"]
    return [line for line in result.stdout.split() if line]


def kill_pids(pids):
    """SIGKILL each pid (only pids the caller proved belong to its test)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def unmount_all(mount_points):
    for mount_point in sorted(mount_points, key=len, reverse=True):
        run(["umount", "-l", mount_point], check=False)
