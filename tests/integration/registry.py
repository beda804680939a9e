"""Local registries for crid's image tests, all inside one network namespace.

Isolation: a test module creates a ``TestNetns`` (netns.py: a fresh network
namespace with only ``lo``) and runs crid *and* every server here inside it,
so 127.0.0.1 is private to the test and a name crid should never resolve
(``registry.test``, ``docker.io``) fails at once instead of leaving the
machine.  Processes (``docker-registry``, ``skopeo``) run through
``nsenter --net``; the in-process Python servers (token server, proxy) and
Python's own HTTP requests open their sockets inside the namespace through
``netns_socket_scope`` (setns(2) on the calling thread only).

- ``Registry``: Debian's ``/usr/bin/docker-registry serve CFG`` on
  127.0.0.1:<free port>, storage in a temp dir, access log captured
  (``requests()`` parses it).  Variants: plain HTTP; TLS with a test CA
  (``TestCA``) and htpasswd Basic auth; token auth against ``TokenServer``.
- ``TokenServer``: a tiny Docker token server (GET /token, Basic
  credentials required) issuing RS256 JWTs with an ``x5c`` certificate the
  registry trusts through ``rootcertbundle``.
- ``Proxy``: an HTTP proxy in front of a registry that counts requests and
  can delay, stall (hold a blob half sent until released) or refuse.
- Pushing: ``Registry.push_skopeo(layout, tag, name)`` (skopeo copy
  --preserve-digests, so every byte stays as built) and
  ``Registry.push(image, name, tag)`` (plain distribution-API requests from
  Python: byte-exact for anything, including malformed images).

Only processes started here are signalled, by pid.  Every wait is bounded.
"""

import base64
import ctypes
import http.client
import http.server
import json
import os
import re
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))

import build_images  # noqa: E402

REGISTRY_BIN = "/usr/bin/docker-registry"
SKOPEO = "/usr/bin/skopeo"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
HTTP_TIMEOUT = 20.0

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class RegistryError(AssertionError):
    pass


# --------------------------------------------------------------------------
# Network namespace scoping for sockets made in this process


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


class netns_socket_scope:
    """``with netns_socket_scope(path):`` — sockets created in the block
    (by this thread, or by threads it starts) live in the namespace at path;
    the thread returns to its own namespace afterwards.  path None = no-op."""

    def __init__(self, netns_path):
        self.netns_path = str(netns_path) if netns_path else None
        self._own = None

    def __enter__(self):
        if self.netns_path:
            self._own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            target = os.open(self.netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(target)
            except Exception:
                os.close(self._own)
                self._own = None
                raise
            finally:
                os.close(target)
        return self

    def __exit__(self, *exc):
        if self._own is not None:
            try:
                _setns(self._own)
            finally:
                os.close(self._own)
                self._own = None
        return False


def in_netns_argv(netns_path, *cmd):
    if not netns_path:
        return [str(c) for c in cmd]
    return ["nsenter", f"--net={netns_path}", "--", *map(str, cmd)]


def free_port(netns_path=None):
    """A TCP port free on 127.0.0.1 of the namespace (bind 0, close)."""
    with netns_socket_scope(netns_path):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]


def closed_port(netns_path=None):
    """A port nothing listens on (same as free_port; named for intent)."""
    return free_port(netns_path)


def http_request(
    netns_path,
    host,
    method,
    path,
    body=None,
    headers=None,
    tls_context=None,
    timeout=HTTP_TIMEOUT,
):
    """One HTTP(S) request to host ("127.0.0.1:PORT") from inside the
    namespace; returns (status, headers dict lower-cased, body bytes)."""
    with netns_socket_scope(netns_path):
        if tls_context is not None:
            conn = http.client.HTTPSConnection(host, timeout=timeout, context=tls_context)
        else:
            conn = http.client.HTTPConnection(host, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()


def wait_http(netns_path, host, tls_context=None, timeout=START_TIMEOUT, path="/v2/"):
    """Waits until host answers any HTTP status on path; returns it."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            status, _, _ = http_request(
                netns_path, host, "GET", path, tls_context=tls_context, timeout=2.0
            )
            return status
        except (OSError, http.client.HTTPException) as e:
            last = e
        if time.monotonic() >= deadline:
            raise RegistryError(f"{host} did not answer within {timeout} s: {last}")
        time.sleep(0.05)


def _run(cmd, timeout=60.0, input=None, check=True):
    result = subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        timeout=timeout,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        raise RegistryError(
            f"{' '.join(map(str, cmd))} exited {result.returncode}\n"
            f"stdout: {result.stdout.decode(errors='replace')}\n"
            f"stderr: {result.stderr.decode(errors='replace')}"
        )
    return result


def _stop_pid(proc, timeout=STOP_TIMEOUT):
    """SIGTERM then SIGKILL, by pid, only for our own Popen."""
    if proc is None:
        return
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)


# --------------------------------------------------------------------------
# Certificates and credentials


class TestCA:
    """A throw-away CA and a server certificate for 127.0.0.1 (EC P-256).

    ``ca_dir`` holds only ca.crt (what crid's ``ca_dir`` points at)."""

    __test__ = False  # not a pytest class

    def __init__(self, directory, ips=("127.0.0.1",), dns=("localhost",)):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca_dir = self.dir / "ca"
        self.ca_dir.mkdir(exist_ok=True)
        self.ca_key = self.dir / "ca.key"
        self.ca_cert = self.ca_dir / "ca.crt"
        self.key = self.dir / "server.key"
        self.cert = self.dir / "server.crt"
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _run(
            [
                "openssl", "req", "-x509", *ec, "-keyout", self.ca_key, "-out", self.ca_cert,
                "-days", "2", "-subj", "/CN=crid test CA",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ]
        )
        csr = self.dir / "server.csr"
        _run(["openssl", "req", *ec, "-keyout", self.key, "-out", csr, "-subj", "/CN=127.0.0.1"])
        san = ",".join([f"IP:{ip}" for ip in ips] + [f"DNS:{d}" for d in dns])
        ext = self.dir / "server.ext"
        ext.write_text(
            f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        )
        _run(
            [
                "openssl", "x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
                "-CAcreateserial", "-out", self.cert, "-days", "2", "-extfile", ext,
            ]
        )

    def client_context(self):
        ctx = ssl.create_default_context(cafile=str(self.ca_cert))
        return ctx


def htpasswd_file(path, users):
    """bcrypt htpasswd (``htpasswd -Bbn``) for {user: password}."""
    lines = []
    for user, password in users.items():
        out = _run(["htpasswd", "-Bbn", user, password]).stdout.decode().strip()
        lines.append(out)
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


def basic_auth_header(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --------------------------------------------------------------------------
# Small threaded HTTP servers inside the namespace


class _ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _NetnsHttpServer:
    """An http.server in a thread whose sockets live in the namespace."""

    handler_class = None

    def __init__(self, netns_path):
        self.netns_path = str(netns_path) if netns_path else None
        self.port = None
        self._server = None
        self._thread = None

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        owner = self

        class Handler(self.handler_class):
            server_owner = owner

        with netns_socket_scope(self.netns_path):
            self._server = _ThreadingServer(("127.0.0.1", 0), Handler)
            self.port = self._server.server_address[1]
            # Started inside the scope: the thread and the handler threads
            # it spawns are in the namespace too (their upstream sockets).
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep pytest output clean
        pass


# --------------------------------------------------------------------------
# Token server


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer(_NetnsHttpServer):
    """Docker token auth: ``GET /token?service=S&scope=repository:N:A``
    with Basic credentials (``users``) answers {"token", "access_token",
    "expires_in", "issued_at"}; anything else is 401.  Every request is
    recorded in ``requests`` as a dict (path, query, user, status)."""

    service = "crid-test-registry"
    issuer = "crid-test-issuer"

    def __init__(self, netns_path, directory, users):
        super().__init__(netns_path)
        from cryptography.hazmat.primitives import serialization  # python3-cryptography

        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.users = dict(users)
        self.requests = []
        self.lock = threading.Lock()
        self.key_path = self.dir / "token.key"
        self.cert_path = self.dir / "token.crt"
        _run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                "-keyout", self.key_path, "-out", self.cert_path, "-days", "2",
                "-subj", "/CN=crid test token issuer",
            ]
        )
        self._key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        from cryptography import x509

        cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()

    @property
    def realm(self):
        return f"http://{self.host}/token"

    def make_token(self, subject, access, lifetime=300):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + lifetime,
            "nbf": now - 10,
            "iat": now,
            "jti": _b64url(os.urandom(12)),
            "access": access,
        }
        signing_input = (
            _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        )
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(signature)

    def token_requests(self):
        with self.lock:
            return list(self.requests)

    class handler_class(_QuietHandler):
        def do_GET(self):
            owner = self.server_owner
            parsed = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(parsed.query)
            user = None
            authorized = False
            header = self.headers.get("Authorization", "")
            if header.lower().startswith("basic "):
                try:
                    user, _, password = (
                        base64.b64decode(header[6:].strip()).decode().partition(":")
                    )
                    authorized = owner.users.get(user) == password
                except Exception:
                    authorized = False
            record = {"path": parsed.path, "query": query, "user": user, "status": None}
            if parsed.path != "/token":
                status, body = 404, {"error": "not found"}
            elif not authorized or query.get("service", [""])[0] != owner.service:
                status = 401
                body = {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}
            else:
                access = []
                for scope in query.get("scope", []):
                    for part in scope.split(" "):
                        kind, _, rest = part.partition(":")
                        name, _, actions = rest.rpartition(":")
                        if kind == "repository" and name:
                            access.append(
                                {"type": "repository", "name": name, "actions": actions.split(",")}
                            )
                token = owner.make_token(user, access)
                status = 200
                body = {
                    "token": token,
                    "access_token": token,
                    "expires_in": 300,
                    "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
            record["status"] = status
            with owner.lock:
                owner.requests.append(record)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)


# --------------------------------------------------------------------------
# docker-registry


ACCESS_LOG_RE = re.compile(r'"(?P<method>[A-Z]+) (?P<uri>\S+) HTTP/[0-9.]+" (?P<status>\d{3}) ')


class Registry:
    """One docker-registry on 127.0.0.1 in the namespace.

    tls: a TestCA (HTTPS with its server certificate); htpasswd: {user:
    password} (Basic auth; needs tls); token: a started TokenServer."""

    def __init__(
        self, netns_path, directory=None, tls=None, htpasswd=None, token=None, label="reg"
    ):
        self.netns_path = str(netns_path) if netns_path else None
        self.dir = Path(directory or tempfile.mkdtemp(prefix=f"crid-{label}-", dir="/tmp"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.storage = self.dir / "storage"
        self.storage.mkdir(exist_ok=True)
        self.config_path = self.dir / "config.yml"
        self.log_path = self.dir / "registry.log"
        self.tls = tls
        self.htpasswd = dict(htpasswd or {})
        self.token = token
        self.label = label
        self.port = None
        self.proc = None
        self._log = None

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    @property
    def scheme(self):
        return "https" if self.tls else "http"

    def config_text(self):
        lines = [
            "version: 0.1",
            "log:",
            "  level: info",
            "  formatter: text",
            "  accesslog:",
            "    disabled: false",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.storage}",
            "  delete:",
            "    enabled: true",
            "  maintenance:",
            "    uploadpurging:",
            "      enabled: false",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
            "  secret: crid-test-secret",
        ]
        if self.tls:
            lines += ["  tls:", f"    certificate: {self.tls.cert}", f"    key: {self.tls.key}"]
        if self.htpasswd:
            path = htpasswd_file(self.dir / "htpasswd", self.htpasswd)
            lines += ["auth:", "  htpasswd:", "    realm: crid-test-basic", f"    path: {path}"]
        elif self.token:
            lines += [
                "auth:",
                "  token:",
                f"    realm: {self.token.realm}",
                f"    service: {self.token.service}",
                f"    issuer: {self.token.issuer}",
                f"    rootcertbundle: {self.token.cert_path}",
            ]
        return "\n".join(lines) + "\n"

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.port = free_port(self.netns_path)
        self.config_path.write_text(self.config_text())
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            in_netns_argv(self.netns_path, REGISTRY_BIN, "serve", self.config_path),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        ctx = None
        if self.tls:
            ctx = self.tls.client_context()
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                if self.proc.poll() is not None:
                    raise RegistryError(
                        f"docker-registry exited {self.proc.returncode}\n{self.log_text()[-3000:]}"
                    )
                try:
                    wait_http(self.netns_path, self.host, tls_context=ctx, timeout=0.5)
                    break
                except RegistryError:
                    if time.monotonic() >= deadline:
                        raise
        except Exception:
            self.stop()
            raise
        return self

    def stop(self):
        _stop_pid(self.proc)
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- log ----------------------------------------------------------------

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_offset(self):
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def requests(self, since=0):
        """[(method, uri, status)] from the access log after byte offset since."""
        with open(self.log_path, "rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
        out = []
        for line in text.splitlines():
            m = ACCESS_LOG_RE.search(line)
            if m:
                out.append((m.group("method"), m.group("uri"), int(m.group("status"))))
        return out

    def blob_gets(self, name, since=0):
        """{digest: count} of GET /v2/<name>/blobs/<digest> after since
        (HEAD requests do not count)."""
        counts = {}
        prefix = f"/v2/{name}/blobs/"
        for method, uri, _ in self.requests(since):
            if method == "GET" and uri.startswith(prefix):
                digest = uri[len(prefix):].split("?")[0]
                counts[digest] = counts.get(digest, 0) + 1
        return counts

    # -- storage ------------------------------------------------------------

    def blob_data_path(self, digest):
        hexd = digest.split(":", 1)[1]
        return self.storage / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"

    def corrupt_blob(self, digest):
        """Flips bytes in the middle of a stored blob (same size), so the
        registry serves wrong bytes under the right digest."""
        path = self.blob_data_path(digest)
        data = bytearray(path.read_bytes())
        mid = len(data) // 2
        for i in range(mid, min(mid + 16, len(data))):
            data[i] ^= 0xFF
        path.write_bytes(bytes(data))

    # -- pushing ------------------------------------------------------------

    def _tls_context(self):
        if not self.tls:
            return None
        return self.tls.client_context()

    def _request(self, method, path, body=None, headers=None, auth=None):
        headers = dict(headers or {})
        if auth:
            headers["Authorization"] = basic_auth_header(*auth)
        return http_request(
            self.netns_path, self.host, method, path, body=body, headers=headers,
            tls_context=self._tls_context(),
        )

    def push_blob(self, name, blob, auth=None):
        status, _, _ = self._request("HEAD", f"/v2/{name}/blobs/{blob.digest}", auth=auth)
        if status == 200:
            return
        status, headers, body = self._request(
            "POST", f"/v2/{name}/blobs/uploads/", body=b"",
            headers={"Content-Length": "0"}, auth=auth,
        )
        if status != 202:
            raise RegistryError(f"start upload {name} {blob.digest}: {status} {body[:300]!r}")
        location = urllib.parse.urlsplit(headers["location"])
        query = location.query + ("&" if location.query else "") + urllib.parse.urlencode(
            {"digest": blob.digest}
        )
        status, _, body = self._request(
            "PUT", f"{location.path}?{query}", body=blob.data,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(blob.size)},
            auth=auth,
        )
        if status != 201:
            raise RegistryError(f"upload {name} {blob.digest}: {status} {body[:300]!r}")

    def push_manifest(self, name, reference, blob, auth=None):
        status, headers, body = self._request(
            "PUT", f"/v2/{name}/manifests/{reference}", body=blob.data,
            headers={"Content-Type": blob.media_type, "Content-Length": str(blob.size)},
            auth=auth,
        )
        if status != 201:
            raise RegistryError(f"put manifest {name}:{reference}: {status} {body[:500]!r}")
        got = headers.get("docker-content-digest")
        if got and got != blob.digest:
            raise RegistryError(f"registry stored {name}:{reference} as {got}, not {blob.digest}")

    def push(self, image, name, tag=None, auth=None):
        """Pushes an Image / Index byte for byte (children by digest first);
        tags it when tag is given.  Returns the manifest digest."""
        children = image.children if isinstance(image, build_images.Index) else [image]
        for child in children:
            for blob in child.blobs:
                self.push_blob(name, blob, auth=auth)
            if child is not image:
                self.push_manifest(name, child.digest, child.manifest, auth=auth)
        self.push_manifest(name, tag or image.digest, image.manifest, auth=auth)
        return image.digest

    def push_skopeo(self, layout, tag, name, dest_tag=None, creds=None, all_images=False):
        """skopeo copy --preserve-digests oci:LAYOUT:TAG docker://HOST/NAME:TAG."""
        cmd = [
            SKOPEO, "--insecure-policy", "copy", "--quiet", "--preserve-digests",
            "--dest-tls-verify=false", "--retry-times", "0",
        ]
        if all_images:
            cmd.append("--all")
        if creds:
            cmd += ["--dest-creds", f"{creds[0]}:{creds[1]}"]
        cmd += [f"oci:{layout}:{tag}", f"docker://{self.host}/{name}:{dest_tag or tag}"]
        env = dict(os.environ, HOME=str(self.dir), XDG_RUNTIME_DIR=str(self.dir))
        result = subprocess.run(
            in_netns_argv(self.netns_path, *cmd),
            capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise RegistryError(f"skopeo push {tag} -> {self.host}/{name} failed:\n{result.stderr}")

    def manifest_digest(self, name, reference, auth=None):
        """HEAD of a manifest: the Docker-Content-Digest the registry reports
        (plain or Basic-auth registries only)."""
        accept = ", ".join(
            [build_images.OCI_INDEX, build_images.OCI_MANIFEST,
             build_images.DOCKER_LIST, build_images.DOCKER_MANIFEST]
        )
        status, headers, _ = self._request(
            "HEAD", f"/v2/{name}/manifests/{reference}", headers={"Accept": accept}, auth=auth
        )
        if status != 200:
            raise RegistryError(f"HEAD manifest {name}:{reference}: {status}")
        return headers.get("docker-content-digest")


# --------------------------------------------------------------------------
# A controllable proxy


class Proxy(_NetnsHttpServer):
    """HTTP proxy to a plain registry (``upstream`` "127.0.0.1:PORT").

    - ``requests``: [(method, path, status)] of everything proxied;
    - ``delay``: seconds to wait before answering each blob GET;
    - ``stall_digests``: blob GETs of these digests send headers and
      ``stall_after`` body bytes, set ``stalled`` and wait (bounded by
      ``stall_timeout``) for ``release``; then the connection is dropped
      (``drop_after_stall``) or the rest is sent.
    """

    def __init__(self, netns_path, upstream):
        super().__init__(netns_path)
        self.upstream = upstream
        self.lock = threading.Lock()
        self.requests = []
        self.delay = 0.0
        self.stall_digests = set()
        self.stall_after = 1024 * 1024
        self.stall_timeout = 60.0
        self.drop_after_stall = True
        self.stalled = threading.Event()
        self.release = threading.Event()

    def stop(self):
        self.release.set()
        super().stop()

    def blob_gets(self, name=None):
        counts = {}
        for method, path, _ in list(self.requests):
            m = re.match(r"^/v2/(.+)/blobs/(sha256:[0-9a-f]{64})", path)
            if method == "GET" and m and (name is None or m.group(1) == name):
                counts[m.group(2)] = counts.get(m.group(2), 0) + 1
        return counts

    class handler_class(_QuietHandler):
        HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "host",
               "te", "trailer", "upgrade"}

        def do_HEAD(self):
            self._proxy(head=True)

        def do_GET(self):
            self._proxy(head=False)

        def _proxy(self, head):
            owner = self.server_owner
            m = re.match(r"^/v2/.+/blobs/(sha256:[0-9a-f]{64})", self.path)
            digest = m.group(1) if (m and not head) else None
            if digest and owner.delay:
                time.sleep(owner.delay)
            conn = http.client.HTTPConnection(owner.upstream, timeout=HTTP_TIMEOUT)
            try:
                # Header by header: repeated ones (Accept) must all arrive.
                conn.putrequest("HEAD" if head else "GET", self.path, skip_accept_encoding=True)
                for k, v in self.headers.items():
                    if k.lower() not in self.HOP:
                        conn.putheader(k, v)
                conn.endheaders()
                resp = conn.getresponse()
                with owner.lock:
                    owner.requests.append(("HEAD" if head else "GET", self.path, resp.status))
                self.send_response(resp.status)
                length = resp.getheader("Content-Length")
                for k, v in resp.getheaders():
                    if k.lower() not in self.HOP:
                        self.send_header(k, v)
                if length is None and not head:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                if head:
                    return
                sent = 0
                stall = digest is not None and digest in owner.stall_digests
                while True:
                    want = 65536
                    if stall and sent < owner.stall_after:
                        want = min(want, owner.stall_after - sent)
                    chunk = resp.read(want)
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    sent += len(chunk)
                    if stall and sent >= owner.stall_after:
                        self.wfile.flush()
                        owner.stalled.set()
                        owner.release.wait(owner.stall_timeout)
                        stall = False
                        if owner.drop_after_stall:
                            self.close_connection = True
                            return
            except (OSError, http.client.HTTPException):
                self.close_connection = True
            finally:
                conn.close()
