"""Pod sandboxes end to end: RunPodSandbox, PodSandboxStatus, ListPodSandbox,
StopPodSandbox and RemovePodSandbox against real crun and runc, crid-conmon
and Debian's CNI plugins (bridge, host-local, portmap).

Isolation: each test creates its own network namespace (``crid-t-<hex>``)
and runs crid inside it (``nsenter --net``), so the CNI bridge, the veths,
the portmap iptables rules and the host-local leases (dataDir in the test's
temp dir) all live there; the namespace is deleted afterwards.  Pods use a
private bridge ``crtbr<n>`` and subnet 10.250.<n>.0/24 with ipMasq off.
Traffic only flows between pods and that namespace.  Every loop and wait
is bounded.

After each test every sandbox is removed and nothing may remain: no veth,
no lease, no netns/ipc/uts file, no mount under the test dir, no cgroup
under the test's cgroup parent, no container in the runtime's list, no
process of the test dir.  The fixture then cleans up whatever a failing
crid left, by pid and by path, so later tests start clean.
"""

import concurrent.futures
import ipaddress
import json
import os
import re
import secrets
import time

import grpc
import pytest

import cridtest
import netns as nsutil

RUN_TIMEOUT = 60.0
RPC_TIMEOUT = 30.0
HANDLERS = ["crun", "runc"]
RUNTIME_PATHS = {"crun": "/usr/bin/crun", "runc": "/usr/sbin/runc"}
NS_KINDS = ("net", "ipc", "uts")


# --------------------------------------------------------------------------
# One test's world: a network namespace, a crid inside it, a pod network


class PodEnv:
    """A TestNetns, a crid running in it with a bridge conflist of its own,
    a cgroup parent of its own, and helpers to build requests and to find
    leaks."""

    def __init__(
        self,
        api,
        crid_factory,
        conflist=True,
        extra_plugins=(),
        plugin_dirs=(),
        config=None,
        start=True,
    ):
        self.api = api
        self.pb = api.pb
        self.crid = None
        self.ns = nsutil.TestNetns()
        self.index = nsutil.next_subnet_index()
        self.subnet = ipaddress.ip_network(f"10.250.{self.index}.0/24")
        self.gateway = str(self.subnet[1])
        self.bridge = f"crtbr{self.index}"
        self.net_name = "crid-t-net-" + self.ns.name[len("crid-t-") :]
        self.cgroup_parent = f"/crid-test-{secrets.token_hex(4)}"
        self.extra_runtimes = {}
        self.known_ids = set()  # every sandbox id this env has seen
        base = {
            "crid.network": {"plugin_dirs": [*map(str, plugin_dirs), nsutil.CNI_BIN_DIR]},
            "crid.runtime": {"cgroup_manager": "cgroupfs"},
        }
        for table, keys in (config or {}).items():
            base.setdefault(table, {}).update(keys)
        try:
            self.crid = crid_factory(start=False, netns=self.ns.path, config=base)
            self.data_dir = self.crid.dir / "cni-data"
            self.log_root = self.crid.dir / "logs"
            self.log_root.mkdir()
            self.conflist = nsutil.bridge_conflist(
                self.net_name,
                self.bridge,
                self.subnet,
                self.data_dir,
                extra_plugins=extra_plugins,
            )
            if conflist:
                self.crid.write_conflist(conflist=self.conflist)
            if start:
                self.crid.start()
        except BaseException:
            self.teardown()
            raise

    # -- requests ---------------------------------------------------------

    def pod_config(
        self,
        name,
        namespace="crid-test",
        uid=None,
        attempt=0,
        hostname=None,
        dns=None,
        port_mappings=(),
        host_network=False,
        sysctls=None,
        labels=None,
        annotations=None,
    ):
        pb = self.pb
        log_dir = self.log_root / f"{namespace}_{name}_{attempt}"
        log_dir.mkdir(exist_ok=True)
        config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(
                name=name, namespace=namespace, uid=uid or f"uid-{name}", attempt=attempt
            ),
            hostname=name if hostname is None else hostname,
            log_directory=str(log_dir),
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent=self.cgroup_parent,
                security_context=pb.LinuxSandboxSecurityContext(
                    namespace_options=pb.NamespaceOption(
                        network=pb.NODE if host_network else pb.POD,
                        pid=pb.CONTAINER,
                        ipc=pb.POD,
                    )
                ),
            ),
        )
        if dns:
            config.dns_config.CopyFrom(pb.DNSConfig(**dns))
        for mapping in port_mappings:
            config.port_mappings.add(**mapping)
        for key, value in (sysctls or {}).items():
            config.linux.sysctls[key] = value
        for key, value in (labels or {}).items():
            config.labels[key] = value
        for key, value in (annotations or {}).items():
            config.annotations[key] = value
        return config

    def run_pod(self, config, handler=""):
        response = self.crid.runtime.RunPodSandbox(
            self.pb.RunPodSandboxRequest(config=config, runtime_handler=handler),
            timeout=RUN_TIMEOUT,
        )
        assert response.pod_sandbox_id, "RunPodSandbox returned an empty id"
        self.known_ids.add(response.pod_sandbox_id)
        return response.pod_sandbox_id

    def run_error(self, config, handler=""):
        """RunPodSandbox expected to fail: the RpcError."""
        return cridtest.rpc_error(
            self.crid.runtime.RunPodSandbox,
            self.pb.RunPodSandboxRequest(config=config, runtime_handler=handler),
            timeout=RUN_TIMEOUT,
        )

    def status(self, sandbox_id, verbose=False):
        return self.crid.runtime.PodSandboxStatus(
            self.pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id, verbose=verbose),
            timeout=RPC_TIMEOUT,
        )

    def info(self, sandbox_id):
        response = self.status(sandbox_id, verbose=True)
        assert "info" in response.info, f"verbose status has no info key: {dict(response.info)}"
        return json.loads(response.info["info"])

    def stop(self, sandbox_id):
        self.crid.runtime.StopPodSandbox(
            self.pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id), timeout=RUN_TIMEOUT
        )

    def remove(self, sandbox_id):
        self.crid.runtime.RemovePodSandbox(
            self.pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id), timeout=RUN_TIMEOUT
        )

    def stop_and_remove(self, sandbox_id):
        self.stop(sandbox_id)
        self.remove(sandbox_id)

    def list(self, **filter_fields):
        pb = self.pb
        request = pb.ListPodSandboxRequest()
        if filter_fields:
            request.filter.CopyFrom(pb.PodSandboxFilter())
            if "id" in filter_fields:
                request.filter.id = filter_fields["id"]
            if "state" in filter_fields:
                request.filter.state.CopyFrom(pb.PodSandboxStateValue(state=filter_fields["state"]))
            for key, value in filter_fields.get("labels", {}).items():
                request.filter.label_selector[key] = value
        return list(self.crid.runtime.ListPodSandbox(request, timeout=RPC_TIMEOUT).items)

    def network_status(self):
        response = self.crid.runtime.Status(self.pb.StatusRequest(), timeout=RPC_TIMEOUT)
        for condition in response.status.conditions:
            if condition.type == "NetworkReady":
                return condition
        raise AssertionError(f"no NetworkReady condition in {response}")

    # -- paths ------------------------------------------------------------

    def ns_file(self, sandbox_id, kind="net"):
        return self.crid.state_dir / "ns" / sandbox_id / kind

    def sandbox_dir(self, sandbox_id):
        return self.crid.root / "sandboxes" / sandbox_id

    def shm_path(self, sandbox_id):
        return self.crid.state_dir / "sandboxes" / sandbox_id / "shm"

    def runtime_roots(self):
        roots = {name: self.crid.state_dir / "runtimes" / name for name in RUNTIME_PATHS}
        for name in self.extra_runtimes:
            roots[name] = self.crid.state_dir / "runtimes" / name
        return roots

    def leases(self):
        return nsutil.host_local_leases(self.data_dir, self.net_name)

    def nat_rules_mentioning(self, text):
        out = self.ns.run("iptables", "-t", "nat", "-S", check=False).stdout
        return [line for line in out.splitlines() if text in line]

    # -- leaks ------------------------------------------------------------

    def leaks(self):
        """Everything a removed sandbox may not leave, as readable lines."""
        found = []
        crid_pid = {self.crid.pid} if self.crid and self.crid.running() else set()
        veths = self.ns.veths()
        if veths:
            found.append(f"veths in {self.ns.name}: {veths}")
        if self.leases():
            found.append(f"host-local leases in {self.data_dir / self.net_name}: {self.leases()}")
        if (nsutil.HOST_CNI_DATA_DIR / self.net_name).exists():
            found.append(f"{nsutil.HOST_CNI_DATA_DIR / self.net_name} exists")
        dnat = self.nat_rules_mentioning("CNI-DN-")
        if dnat:
            found.append(f"portmap DNAT rules in {self.ns.name}: {dnat}")
        mounts = nsutil.leaked_mounts_under(self.crid.dir)
        if mounts:
            found.append(f"mounts under {self.crid.dir}: {mounts}")
        for directory in (
            self.crid.state_dir / "ns",
            self.crid.root / "sandboxes",
            self.crid.state_dir / "sandboxes",
        ):
            if directory.is_dir() and any(directory.iterdir()):
                found.append(f"{directory} not empty: {sorted(os.listdir(directory))}")
        for name, root in self.runtime_roots().items():
            binary = RUNTIME_PATHS.get(name) or self.extra_runtimes[name]
            ids = nsutil.runtime_containers(binary, root)
            if ids:
                found.append(f"{name} still lists containers under {root}: {ids}")
        cgroups = nsutil.cgroup_children(self.cgroup_parent)
        # Ids of failed runs appear only in crid's log.
        ids = self.known_ids | set(re.findall(r"\b[0-9a-f]{64}\b", self.crid.log_text()))
        cgroups += [d for d in nsutil.cgroups_naming(ids) if d not in cgroups]
        if cgroups:
            found.append(f"cgroups under {self.cgroup_parent}: {cgroups}")
        procs = nsutil.processes_of(self.crid.dir, exclude=crid_pid)
        if procs:
            found.append(f"processes of {self.crid.dir}: {procs}")
        in_ns = self.ns.processes(exclude=crid_pid)
        if in_ns:
            found.append(
                f"processes in {self.ns.name}: "
                f"{ {pid: nsutil._cmdline(pid) for pid in in_ns} }"
            )
        return found

    def assert_clean(self, what="after removal"):
        found = self.leaks()
        assert not found, f"leaks {what}:\n  " + "\n  ".join(found)

    def assert_pod_gone(self, sandbox_id):
        for kind in NS_KINDS:
            assert not self.ns_file(sandbox_id, kind).exists(), f"{kind} ns file remains"
        assert not nsutil.mounts_under(self.shm_path(sandbox_id)), "shm still mounted"

    # -- teardown ---------------------------------------------------------

    def teardown(self):
        """Stops crid, then removes whatever it left: processes of this test
        (by pid), mounts under its dir, cgroups under its parent, and the
        network namespace."""
        try:
            if self.crid is not None:
                self.crid.stop()
                for _ in range(3):
                    pids = set(nsutil.processes_of(self.crid.dir))
                    pids |= set(self.ns.processes())
                    pids |= nsutil.cgroup_processes(self.cgroup_parent)
                    if not pids:
                        break
                    nsutil.kill_pids(pids)
                    time.sleep(0.2)
                nsutil.unmount_all(nsutil.mounts_under(self.crid.dir))
        finally:
            nsutil.remove_cgroups(self.cgroup_parent)
            self.ns.delete()


@pytest.fixture
def podenv_factory(api, crid_factory):
    envs = []

    def make(**kwargs):
        env = PodEnv(api, crid_factory, **kwargs)
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.teardown()


@pytest.fixture
def podenv(podenv_factory):
    return podenv_factory()


@pytest.fixture(params=HANDLERS)
def handler(request):
    return request.param


def wait_gone(pid, timeout=10.0):
    cridtest.wait_for(
        lambda: not cridtest.pid_alive(pid) or _zombie(pid),
        timeout=timeout,
        message=f"pid {pid} to exit",
    )


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def labels_of(message):
    return dict(message.labels), dict(message.annotations)


# --------------------------------------------------------------------------
# The whole life of one pod, with both runtimes


def test_sandbox_lifecycle(podenv, handler, pb):
    env = podenv
    labels = {"app": "web", "io.kubernetes.pod.name": "lifecycle", "empty": "", "ünï": "cødé ✓"}
    annotations = {"note": "a\nmulti-line\tvalue", "io.kubernetes.pod.terminationGracePeriod": "30"}
    sysctls = {
        "net.ipv4.ip_unprivileged_port_start": "100",
        "net.ipv4.ping_group_range": "100 200",
        "kernel.shm_rmid_forced": "1",
    }
    dns = {
        "servers": ["10.250.200.53", "10.250.200.54"],
        "searches": ["svc.crid.test", "crid.test"],
        "options": ["ndots:5", "timeout:2"],
    }
    config = env.pod_config(
        "lifecycle",
        uid="uid-lifecycle-1",
        attempt=3,
        hostname="crt-pod-a",
        dns=dns,
        sysctls=sysctls,
        labels=labels,
        annotations=annotations,
    )
    before = time.time_ns()
    sid = env.run_pod(config, handler)
    after = time.time_ns()

    # Status echoes the request.
    response = env.status(sid)
    status = response.status
    assert status.id == sid
    assert status.state == pb.SANDBOX_READY
    assert (status.metadata.name, status.metadata.namespace) == ("lifecycle", "crid-test")
    assert (status.metadata.uid, status.metadata.attempt) == ("uid-lifecycle-1", 3)
    assert before <= status.created_at <= after, (before, status.created_at, after)
    assert labels_of(status) == (labels, annotations)
    assert status.runtime_handler == handler
    assert status.linux.namespaces.options.network == pb.POD
    assert response.timestamp > 0

    # The IP: bare, from the test subnet, leased by host-local.
    ip = status.network.ip
    assert ip and "/" not in ip, f"pod IP {ip!r} is not a bare address"
    assert ipaddress.ip_address(ip) in env.subnet
    assert ip != env.gateway
    assert list(status.network.additional_ips) == []
    assert env.leases() == [ip]

    # Verbose info: pid and netns; the pause process is in the pinned namespaces.
    info = env.info(sid)
    pid = info.get("pid")
    assert isinstance(pid, int) and pid > 0 and cridtest.pid_alive(pid), info
    assert info.get("netns") == str(env.ns_file(sid)), info
    for kind in NS_KINDS:
        pinned = env.ns_file(sid, kind)
        assert pinned.exists(), f"{pinned} missing"
        assert nsutil.ns_inode(pinned) == nsutil.ns_inode(f"/proc/{pid}/ns/{kind}"), (
            f"pause is not in the pinned {kind} namespace"
        )
        assert nsutil.ns_inode(pinned) != nsutil.ns_inode(f"/proc/self/ns/{kind}")
    assert nsutil.ns_inode(f"/proc/{pid}/ns/net") != env.ns.inode

    # Inside the pod's network namespace: lo and eth0 up, eth0 has the IP.
    netns = env.ns_file(sid)
    links = nsutil.links(netns)
    assert "UP" in links["lo"]["flags"], links
    assert "UP" in links["eth0"]["flags"], links
    assert f"{ip}/{env.subnet.prefixlen}" in nsutil.ipv4_addresses(netns, "eth0")
    assert "127.0.0.1/8" in nsutil.ipv4_addresses(netns, "lo")
    # ...and on the node side, one veth on the test bridge.
    node_links = env.ns.links()
    assert node_links.get(env.bridge, {}).get("kind") == "bridge", node_links
    assert len(env.ns.veths()) == 1, node_links

    # Hostname, DNS, sysctls as asked.
    uts = env.ns_file(sid, "uts")
    hostname = nsutil.run(["nsenter", f"--uts={uts}", "hostname"]).stdout.strip()
    assert hostname == "crt-pod-a"
    assert (env.sandbox_dir(sid) / "hostname").read_text() == "crt-pod-a\n"
    resolv = (env.sandbox_dir(sid) / "resolv.conf").read_text().splitlines()
    assert [line for line in resolv if line.startswith("nameserver")] == [
        "nameserver 10.250.200.53",
        "nameserver 10.250.200.54",
    ], resolv
    assert "search svc.crid.test crid.test" in resolv, resolv
    assert "options ndots:5 timeout:2" in resolv, resolv

    def netns_sysctl(key):
        path = "/proc/sys/" + key.replace(".", "/")
        return nsutil.run(nsutil.in_netns(netns, "cat", path)).stdout.split()

    assert netns_sysctl("net.ipv4.ip_unprivileged_port_start") == ["100"]
    assert netns_sysctl("net.ipv4.ping_group_range") == ["100", "200"]
    ipc = env.ns_file(sid, "ipc")
    shm_rmid = nsutil.run(["nsenter", f"--ipc={ipc}", "cat", "/proc/sys/kernel/shm_rmid_forced"])
    assert shm_rmid.stdout.strip() == "1"
    # The node's own values are untouched.
    node_port_start = env.ns.run("cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start")
    assert node_port_start.stdout.strip() != "100"

    # shm is a tmpfs of its own; the pause process sits under the cgroup parent.
    assert nsutil.mounts_under(env.shm_path(sid)) == [str(env.shm_path(sid))]
    with open(f"/proc/{pid}/cgroup") as f:
        cgroup_lines = f.read()
    assert env.cgroup_parent + "/" in cgroup_lines, cgroup_lines
    root = env.runtime_roots()[handler]
    assert sid in nsutil.runtime_containers(RUNTIME_PATHS[handler], root)

    # The leak detector sees a live pod (so its silence later means something).
    live = "\n".join(env.leaks())
    for part in ("veths", "host-local leases", "mounts under", "not empty", "still lists",
                 "cgroups under", "processes of"):
        assert part in live, f"leak check misses {part!r} of a running pod:\n{live}"

    # Stop: pause gone, network torn down, namespaces and shm released.
    env.stop(sid)
    status = env.status(sid).status
    assert status.state == pb.SANDBOX_NOTREADY
    assert labels_of(status) == (labels, annotations)
    wait_gone(pid)
    assert env.ns.veths() == []
    assert env.leases() == []
    env.assert_pod_gone(sid)
    assert [s.id for s in env.list()] == [sid]

    # Idempotent: stop twice, remove twice, stop after remove, unknown ids.
    env.stop(sid)
    env.remove(sid)
    env.remove(sid)
    env.stop(sid)
    env.remove("0" * 64)
    env.stop("0" * 64)
    err = cridtest.rpc_error(env.status, sid)
    assert err.code() == grpc.StatusCode.NOT_FOUND, err
    assert env.list() == []
    env.assert_clean()


def test_remove_without_stop(podenv, handler, pb):
    """RemovePodSandbox on a READY sandbox stops it first."""
    env = podenv
    sid = env.run_pod(env.pod_config("direct-remove"), handler)
    pid = env.info(sid)["pid"]
    env.remove(sid)
    wait_gone(pid)
    assert env.list() == []
    env.assert_clean()


# --------------------------------------------------------------------------
# Networking


def test_two_pods_reach_each_other_over_tcp(podenv, handler):
    env = podenv
    a = env.run_pod(env.pod_config("tcp-a"), handler)
    b = env.run_pod(env.pod_config("tcp-b"), handler)
    ip_a = env.status(a).status.network.ip
    ip_b = env.status(b).status.network.ip
    assert ip_a != ip_b
    assert len(env.ns.veths()) == 2

    server = nsutil.TcpServer(env.ns_file(a), 8080)
    try:
        code, reply, err = nsutil.tcp_request(env.ns_file(b), ip_a, 8080, "ping from b")
        assert code == 0, f"connect {ip_a}:8080 from pod b failed: {err}"
        assert reply == "pong ping from b\n"
        assert server.result() == f"peer {ip_b}"
    finally:
        server.stop()

    for sid in (a, b):
        env.stop_and_remove(sid)
    env.assert_clean()


def test_host_port_reaches_pod(podenv, handler, pb):
    env = podenv
    node_ip = f"10.251.{env.index}.1"
    env.ns.dummy("crtnode0", f"{node_ip}/32")
    config = env.pod_config(
        "hostport",
        port_mappings=[
            {"protocol": pb.TCP, "container_port": 8080, "host_port": 18080},
            {"protocol": pb.TCP, "container_port": 9090},  # no host port: no rule
        ],
    )
    sid = env.run_pod(config, handler)
    ip = env.status(sid).status.network.ip
    assert env.nat_rules_mentioning("CNI-DN-"), "portmap installed no DNAT rule"
    assert not any("9090" in rule for rule in env.nat_rules_mentioning("CNI-DN-"))

    for target in (node_ip, env.gateway):
        server = nsutil.TcpServer(env.ns_file(sid), 8080)
        try:
            code, reply, err = nsutil.tcp_request(env.ns.path, target, 18080, "via hostport")
            assert code == 0, f"connect {target}:18080 from the node failed: {err}"
            assert reply == "pong via hostport\n"
            assert server.result().startswith("peer ")
        finally:
            server.stop()
    assert ipaddress.ip_address(ip) in env.subnet

    env.stop(sid)
    assert env.nat_rules_mentioning("CNI-DN-") == [], "portmap rules survive StopPodSandbox"
    env.remove(sid)
    env.assert_clean()


def test_host_network_pod_sees_the_node(podenv, handler, pb):
    env = podenv
    env.ns.dummy("crtnode0", f"10.251.{env.index}.1/32")
    config = env.pod_config("hostnet", hostname="", host_network=True)
    sid = env.run_pod(config, handler)
    status = env.status(sid).status
    assert status.state == pb.SANDBOX_READY
    assert status.network.ip == ""
    assert status.linux.namespaces.options.network == pb.NODE

    info = env.info(sid)
    pid = info["pid"]
    assert info.get("netns", "") == "", info
    assert nsutil.ns_inode(f"/proc/{pid}/ns/net") == env.ns.inode
    assert "crtnode0" in nsutil.links(f"/proc/{pid}/ns/net")
    # The node's UTS namespace and hostname; no pod network at all.
    assert nsutil.ns_inode(f"/proc/{pid}/ns/uts") == nsutil.ns_inode("/proc/self/ns/uts")
    assert (env.sandbox_dir(sid) / "hostname").read_text().strip() == os.uname().nodename
    assert not env.ns_file(sid, "net").exists()
    assert not env.ns_file(sid, "uts").exists()
    assert env.ns.veths() == []
    assert env.leases() == []
    assert pid in env.ns.processes(), "the host-network pause is not in the node namespace"

    env.stop_and_remove(sid)
    wait_gone(pid)
    env.assert_clean()


# --------------------------------------------------------------------------
# Listing


def test_list_filters(podenv, pb):
    env = podenv
    a = env.run_pod(env.pod_config("list-a", labels={"app": "a", "tier": "x"}))
    b = env.run_pod(env.pod_config("list-b", labels={"app": "b", "tier": "x"}))
    env.stop(b)

    def ids(**f):
        return sorted(item.id for item in env.list(**f))

    assert ids() == sorted([a, b])
    assert ids(id=a) == [a]
    assert ids(id=a[:12]) == [a]
    assert ids(id="f" * 64) == []
    assert ids(state=pb.SANDBOX_READY) == [a]
    assert ids(state=pb.SANDBOX_NOTREADY) == [b]
    assert ids(labels={"tier": "x"}) == sorted([a, b])
    assert ids(labels={"app": "a"}) == [a]
    assert ids(labels={"app": "a", "tier": "y"}) == []
    assert ids(labels={"app": "b"}, state=pb.SANDBOX_READY) == []
    assert ids(id=b, state=pb.SANDBOX_NOTREADY, labels={"app": "b"}) == [b]

    items = {item.id: item for item in env.list()}
    assert items[a].metadata.name == "list-a"
    assert items[a].state == pb.SANDBOX_READY and items[b].state == pb.SANDBOX_NOTREADY
    assert dict(items[a].labels) == {"app": "a", "tier": "x"}
    assert items[a].created_at > 0
    assert items[a].runtime_handler == ""

    for sid in (a, b):
        env.stop_and_remove(sid)
    env.assert_clean()


# --------------------------------------------------------------------------
# Refusals and injected failures: nothing may remain, a retry succeeds


def test_unknown_runtime_handler_is_invalid_argument(podenv, pb):
    env = podenv
    config = env.pod_config("badhandler")
    err = env.run_error(config, "no-such-handler")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
    assert "no-such-handler" in (err.details() or "")
    env.assert_clean("after a refused handler")
    sid = env.run_pod(config)
    assert env.status(sid).status.state == pb.SANDBOX_READY
    env.stop_and_remove(sid)
    env.assert_clean()


def test_same_name_is_reserved_until_removed(podenv, pb):
    env = podenv
    config = env.pod_config("reserved", uid="uid-reserved")
    first = env.run_pod(config)
    err = env.run_error(config)
    assert err.code() != grpc.StatusCode.OK
    assert len(env.list()) == 1
    assert env.leases() == [env.status(first).status.network.ip]
    # Another attempt is another name.
    config.metadata.attempt = 1
    second = env.run_pod(config)
    env.stop_and_remove(first)
    env.stop_and_remove(second)
    config.metadata.attempt = 0
    third = env.run_pod(config)
    env.stop_and_remove(third)
    env.assert_clean()


def test_cni_plugin_failure_leaves_nothing(podenv_factory, tmp_path, pb):
    plugin_dir = tmp_path / "cni-plugins"
    _, fail_flag, calls = nsutil.write_failing_plugin(plugin_dir)
    env = podenv_factory(plugin_dirs=[plugin_dir], extra_plugins=[{"type": "crtfail"}])
    config = env.pod_config(
        "cnifail",
        port_mappings=[{"protocol": pb.TCP, "container_port": 80, "host_port": 18081}],
    )
    err = env.run_error(config)
    assert err.code() != grpc.StatusCode.OK
    assert "injected ADD failure" in (err.details() or ""), err.details()
    log = calls.read_text().split("\n")
    commands = [line.split()[0] for line in log if line]
    assert "ADD" in commands and "DEL" in commands[commands.index("ADD") :], log
    env.assert_clean("after a failed CNI ADD")
    assert env.list() == []

    fail_flag.unlink()
    sid = env.run_pod(config)
    assert env.status(sid).status.state == pb.SANDBOX_READY
    assert len(env.leases()) == 1
    env.stop_and_remove(sid)
    env.assert_clean()


def test_status_and_list_answer_while_cni_holds_a_pod(podenv_factory, tmp_path, pb):
    """Regression: a pod's one lock was held through RunPodSandbox and
    StopPodSandbox, CNI included, so PodSandboxStatus and ListPodSandbox
    waited for a slow plugin (and the kubelet's relist with them).  Reads
    now take a snapshot under a lock held for moments only."""
    hold, held = nsutil.write_holding_plugin(tmp_path / "cni-plugins")
    env = podenv_factory(plugin_dirs=[hold.parent], extra_plugins=[{"type": "crthold"}])
    ready = env.run_pod(env.pod_config("held-ready"))

    def wait_held(command):
        cridtest.wait_for(
            lambda: held.exists() and command in held.read_text().split(),
            timeout=20,
            message=f"CNI {command} waiting",
        )

    def reads_answer(expect_ids, *expect_states):
        listed = env.crid.runtime.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=5)
        assert sorted(item.id for item in listed.items) == sorted(expect_ids)
        status = env.crid.runtime.PodSandboxStatus(
            pb.PodSandboxStatusRequest(pod_sandbox_id=ready, verbose=True), timeout=5
        )
        assert status.status.state in expect_states

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        hold.touch()
        try:
            # A pod whose ADD waits is not listed yet; the other answers.
            starting = pool.submit(env.run_pod, env.pod_config("held-starting"))
            wait_held("ADD")
            reads_answer([ready], pb.SANDBOX_READY)
        finally:
            hold.unlink()
        second = starting.result(timeout=RUN_TIMEOUT)
        reads_answer([ready, second], pb.SANDBOX_READY)

        # A pod whose stop waits in DEL is still answered for (its pause
        # is stopped beside the DEL: ready or not, as it happens).
        held.unlink()
        hold.touch()
        try:
            stopping = pool.submit(env.stop, ready)
            wait_held("DEL")
            reads_answer([ready, second], pb.SANDBOX_READY, pb.SANDBOX_NOTREADY)
        finally:
            hold.unlink()
        stopping.result(timeout=RUN_TIMEOUT)
    assert env.status(ready).status.state == pb.SANDBOX_NOTREADY
    env.remove(ready)
    env.stop_and_remove(second)
    env.assert_clean()


@pytest.mark.parametrize("mode", ["create", "create-after", "start"])
def test_runtime_failure_leaves_nothing(podenv_factory, tmp_path, handler, mode, pb):
    script, mode_file, calls = nsutil.write_failing_runtime(
        tmp_path / "runtime", RUNTIME_PATHS[handler]
    )
    env = podenv_factory(
        config={f"crid.runtime.runtimes.{script.name}": {"runtime_path": str(script)}}
    )
    env.extra_runtimes[script.name] = RUNTIME_PATHS[handler]
    config = env.pod_config("rtfail", uid=f"uid-rtfail-{mode}")
    mode_file.write_text(mode)
    err = env.run_error(config, script.name)
    assert err.code() != grpc.StatusCode.OK
    assert "injected" in (err.details() or ""), err.details()
    # The pause is created and started by one `run`.
    assert any(
        line.startswith((mode.split("-")[0] + " ", "run ")) for line in calls.read_text().splitlines()
    )
    env.assert_clean(f"after the runtime failed {mode}")
    assert env.list() == []

    mode_file.write_text("")
    sid = env.run_pod(config, script.name)
    assert env.status(sid).status.state == pb.SANDBOX_READY
    env.stop_and_remove(sid)
    env.assert_clean()


def test_network_ready_follows_the_config_dir(podenv_factory, pb):
    env = podenv_factory(conflist=False)
    condition = env.network_status()
    assert condition.status is False and condition.reason

    config = env.pod_config("nonet")
    err = env.run_error(config)
    assert err.code() != grpc.StatusCode.OK
    env.assert_clean("after RunPodSandbox without a network config")

    path = env.crid.write_conflist(conflist=env.conflist)
    cridtest.wait_for(lambda: env.network_status().status, timeout=5, message="NetworkReady")
    sid = env.run_pod(config)
    assert len(env.leases()) == 1

    # The config goes away; the pod keeps running and is still torn down
    # with the configuration it was set up with.
    path.unlink()
    cridtest.wait_for(
        lambda: not env.network_status().status, timeout=5, message="NetworkReady=false"
    )
    assert env.status(sid).status.state == pb.SANDBOX_READY
    env.stop_and_remove(sid)
    env.assert_clean()


# --------------------------------------------------------------------------
# Many at once


def test_fifty_concurrent_sandboxes(podenv, pb):
    env = podenv
    count = 50
    configs = [
        env.pod_config(f"many-{i}", labels={"batch": "many", "i": str(i)}) for i in range(count)
    ]
    with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
        results = list(pool.map(lambda c: _attempt(env.run_pod, c), configs))
    failures = [r for r in results if isinstance(r, Exception)]
    ids = [r for r in results if not isinstance(r, Exception)]
    try:
        assert not failures, f"{len(failures)} of {count} RunPodSandbox failed: {failures[:3]}"
        assert len(set(ids)) == count
        items = env.list(labels={"batch": "many"})
        assert len(items) == count
        assert all(item.state == pb.SANDBOX_READY for item in items)
        ips = {env.status(sid).status.network.ip for sid in ids}
        assert len(ips) == count and all(ipaddress.ip_address(ip) in env.subnet for ip in ips)
        assert len(env.leases()) == count
        assert len(env.ns.veths()) == count
    finally:
        with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
            removed = list(pool.map(lambda sid: _attempt(env.stop_and_remove, sid), ids))
    errors = [r for r in removed if isinstance(r, Exception)]
    assert not errors, f"{len(errors)} stop/remove failed: {errors[:3]}"
    assert env.list() == []
    env.assert_clean()


def _attempt(fn, *args):
    try:
        return fn(*args)
    except Exception as e:  # collected and reported by the caller
        return e


def test_crun_gets_the_seccomp_filter_it_would_compile(podenv_factory, pb):
    """crid hands crun the RuntimeDefault filter already compiled
    (run.oci.seccomp_bpf_data): the program crun loads must be the very
    one crun compiles itself from linux.seccomp."""
    env = podenv_factory(
        config={
            "crid.runtime.runtimes.crun-compiles": {
                "runtime_path": RUNTIME_PATHS["crun"],
                "seccomp_precompile": "never",
            }
        }
    )
    env.extra_runtimes["crun-compiles"] = RUNTIME_PATHS["crun"]
    programs = {}
    for handler in ("crun", "crun-compiles"):
        config = env.pod_config(f"bpf-{handler}")
        # As the kubelet asks for it (no profile at all is Unconfined).
        config.linux.security_context.seccomp.profile_type = pb.SecurityProfile.RuntimeDefault
        sid = env.run_pod(config, handler)
        spec = json.loads((env.sandbox_dir(sid) / "bundle" / "config.json").read_text())
        assert "seccomp" in spec["linux"]
        has_program = "run.oci.seccomp_bpf_data" in spec.get("annotations", {})
        assert has_program == (handler == "crun"), spec.get("annotations")
        # crun keeps the program it loaded in its state dir.
        programs[handler] = (env.runtime_roots()[handler] / sid / "seccomp.bpf").read_bytes()
        assert env.status(sid).status.state == pb.SANDBOX_READY
    assert len(programs["crun"]) > 0
    assert programs["crun"] == programs["crun-compiles"]
    for sid in [sandbox.id for sandbox in env.list()]:
        env.stop_and_remove(sid)
    env.assert_clean()
