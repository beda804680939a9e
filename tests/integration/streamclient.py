"""Clients for crid's streaming server (the URLs Exec, Attach and
PortForward return), written to behave like the Kubernetes clients that
use it: client-go over moby/spdystream (crictl, critest, the kubelet's
proxy) for SPDY/3.1, and the channel protocols over WebSocket.

No SPDY library exists for Debian's python3, so the framing is here,
written from the SPDY/3 draft and the wire facts in
/work/shared/docs/facts/streaming.md.  Only stdlib, zlib and websocket-
client are used.  Every wait is bounded; no loop waits forever.

The servers under test listen on a loopback address, and in the
integration tests crid runs inside a test network namespace: each entry
point takes ``netns`` (a namespace file such as /run/netns/<name>) and
then creates its socket inside that namespace (see socket_in_netns).

Public API
----------
SPDY:
    SpdyConnection(url, protocols=V4_FIRST, timeout=30, netns=None,
                   method="POST", extra_headers=None)
        .protocol, .response_headers, .goaway_received, .violations,
        .closed, open_stream(headers, timeout=None), ping(timeout=None),
        send_raw(data), pause_reading(), resume_reading(),
        wait_closed(timeout), wait_goaway(timeout), close(goaway=True),
        abort()
    SpdyStream: .id, .headers, .reply_headers, .reset_status,
        write(data), close_write(), reset(status=RST_CANCEL),
        read(timeout=None), read_all(timeout=None),
        read_until(needle, timeout=None), ended, wait_ended(timeout)
    spdy_upgrade_raw(url, protocols, method="POST", extra_headers=None,
                     timeout=10, netns=None) -> (status, headers)
    RemoteCommand(conn, stdin=False, stdout=True, stderr=True, tty=False)
        .error/.stdin/.stdout/.stderr/.resize streams,
        send_resize(width, height), finish(timeout=None) -> ExecResult
    open_remote_command(url, stdin=False, stdout=True, stderr=True,
                        tty=False, protocols=V4_FIRST, timeout=30,
                        netns=None) -> RemoteCommand (the interactive way)
    exec_spdy(url, stdin=None, tty=False, stdout=True, stderr=True,
              resize=None, protocols=V4_FIRST, timeout=30, netns=None)
        -> ExecResult (.stdout, .stderr, .status, .raw_status,
           .exit_code, .protocol, .goaway, .violations)
    attach_spdy(...) -- the same
    PortForwardSpdy(url, timeout=30, netns=None)
        .connect(port) -> PortForwardStreams(.data, .error, .port,
        .request_id, exchange(payload, timeout), error_text(timeout))
    forward_once(url, port, payload, timeout=30, netns=None)
        -> (data received until FIN, error text)
WebSocket:
    ws_connect(url, protocol, timeout=30, netns=None) -> websocket
    exec_ws(url, protocol, stdin=None, resize=None, timeout=30,
            netns=None) -> ExecResult
    portforward_ws(url, protocol="v4.channel.k8s.io", ports=None,
                   timeout=30, netns=None) -> PortForwardWs
Frame builders (for hand-made bad input): control_frame, data_frame,
    encode_header_block, parse_header_block, SPDY_DICTIONARY.
"""

import base64
import collections
import ctypes
import json
import os
import socket
import struct
import threading
import time
import urllib.parse
import zlib

import websocket

DEFAULT_TIMEOUT = 30.0
LOOPBACK = ("127.0.0.1", "::1")

# Offered in client-go's order (preference first).
V4_FIRST = ("v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io")
PORTFORWARD_PROTOCOL = "portforward.k8s.io"
PROTOCOL_VERSIONS = {
    "v5.channel.k8s.io": 5,
    "v4.channel.k8s.io": 4,
    "v4.base64.channel.k8s.io": 4,
    "v3.channel.k8s.io": 3,
    "v2.channel.k8s.io": 2,
    "channel.k8s.io": 1,
    "base64.channel.k8s.io": 1,
}
BASE64_PROTOCOLS = ("base64.channel.k8s.io", "v4.base64.channel.k8s.io")

# SPDY/3 control frame types, flags and status codes.
SPDY_VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = (
    1, 2, 3, 4, 6, 7, 8, 9)
FLAG_FIN = 0x01
RST_PROTOCOL_ERROR = 1
RST_INVALID_STREAM = 2
RST_REFUSED_STREAM = 3
RST_CANCEL = 5
GOAWAY_OK = 0
MAX_DATA_CHUNK = 32 * 1024  # what we put in one DATA frame (the field allows 16 MiB - 1)
MAX_HTTP_HEAD = 64 * 1024

# Remote command WebSocket channels.
CH_STDIN, CH_STDOUT, CH_STDERR, CH_ERROR, CH_RESIZE = 0, 1, 2, 3, 4
WS_CLOSE_CHANNEL = 255  # v5: [255, channel] half-closes channel


# --------------------------------------------------------------------------
# The SPDY/3 header dictionary (draft 3, section 2.6.10.1): 65 words each
# preceded by its 32-bit length, then a run of plain text.  zlib's DICTID
# (Adler-32) of the 1423 bytes is 0xe3c6a7c2; a wrong byte here would make
# every header block undecodable by the peer.

_DICTIONARY_WORDS = (
    b"options", b"head", b"post", b"put", b"delete", b"trace", b"accept",
    b"accept-charset", b"accept-encoding", b"accept-language", b"accept-ranges",
    b"age", b"allow", b"authorization", b"cache-control", b"connection",
    b"content-base", b"content-encoding", b"content-language", b"content-length",
    b"content-location", b"content-md5", b"content-range", b"content-type", b"date",
    b"etag", b"expect", b"expires", b"from", b"host", b"if-match",
    b"if-modified-since", b"if-none-match", b"if-range", b"if-unmodified-since",
    b"last-modified", b"location", b"max-forwards", b"pragma", b"proxy-authenticate",
    b"proxy-authorization", b"range", b"referer", b"retry-after", b"server", b"te",
    b"trailer", b"transfer-encoding", b"upgrade", b"user-agent", b"vary", b"via",
    b"warning", b"www-authenticate", b"method", b"get", b"status", b"200 OK",
    b"version", b"HTTP/1.1", b"url", b"public", b"set-cookie", b"keep-alive",
    b"origin",
)
_DICTIONARY_TEXT = (
    b"100101201202205206300302303304305306307402405406407408409410411412413414"
    b"415416417502504505203 Non-Authoritative Information204 No Content"
    b"301 Moved Permanently400 Bad Request401 Unauthorized403 Forbidden"
    b"404 Not Found500 Internal Server Error501 Not Implemented"
    b"503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec"
    b" 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,"
    b"image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,"
    b"text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdch"
    b"charset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
SPDY_DICTIONARY = (
    b"".join(struct.pack(">I", len(word)) + word for word in _DICTIONARY_WORDS)
    + _DICTIONARY_TEXT
)
assert len(SPDY_DICTIONARY) == 1423, len(SPDY_DICTIONARY)
assert zlib.adler32(SPDY_DICTIONARY) == 0xE3C6A7C2, hex(zlib.adler32(SPDY_DICTIONARY))


# --------------------------------------------------------------------------
# Errors


class StreamError(Exception):
    """Anything the streaming server did that a real client would fail on."""


class UpgradeRefused(StreamError):
    """The HTTP upgrade was answered with something else than 101."""

    def __init__(self, status, headers, body=b""):
        super().__init__(f"upgrade refused: HTTP {status} {body[:200]!r}")
        self.status = status
        self.headers = headers
        self.body = body


class StreamReset(StreamError):
    def __init__(self, stream_id, status):
        super().__init__(f"stream {stream_id} reset by the server (status {status})")
        self.stream_id = stream_id
        self.status = status


class StreamTimeout(StreamError, TimeoutError):
    """A bounded wait ran out; ``partial`` holds what had arrived."""

    def __init__(self, message, partial=b""):
        super().__init__(f"{message} (got {len(partial)} bytes: {bytes(partial[-200:])!r})")
        self.partial = bytes(partial)


# --------------------------------------------------------------------------
# Sockets, optionally inside a network namespace

_CLONE_NEWNET = 0x40000000
_libc = None


def _setns(fd):
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def socket_in_netns(family, netns=None):
    """A TCP socket created in the network namespace ``netns`` (a file
    such as /run/netns/<name>), or in ours when netns is None.

    A socket belongs to the namespace it was created in, whichever thread
    uses it later; so a short-lived thread enters the namespace (setns
    changes only the calling thread), creates the socket and goes back.
    Python 3.11 has no os.setns, hence ctypes."""
    if netns is None:
        return socket.socket(family, socket.SOCK_STREAM)
    box = {}

    def work():
        try:
            own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                target = os.open(str(netns), os.O_RDONLY | os.O_CLOEXEC)
                try:
                    _setns(target)
                    try:
                        box["sock"] = socket.socket(family, socket.SOCK_STREAM)
                    finally:
                        _setns(own)
                finally:
                    os.close(target)
            finally:
                os.close(own)
        except BaseException as e:  # handed to the caller
            box["error"] = e

    thread = threading.Thread(target=work, name="setns-socket", daemon=True)
    thread.start()
    thread.join(10.0)
    if "error" in box:
        if "sock" in box:
            box["sock"].close()
        raise box["error"]
    if "sock" not in box:
        raise StreamError(f"could not create a socket in {netns}")
    return box["sock"]


def parse_url(url):
    """(host, port, path with query) of an http/ws URL on a loopback
    address; anything else is refused (tests only talk to loopback)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "ws", "https"):
        raise ValueError(f"unsupported scheme in {url!r}")
    host = parts.hostname
    if host not in LOOPBACK:
        raise ValueError(f"refusing a non-loopback address: {url!r}")
    port = parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return host, port, path


def open_socket(url, timeout=DEFAULT_TIMEOUT, netns=None, tls=None):
    """A TCP connection to the URL's loopback host:port (in netns); for an
    https URL wrapped in TLS with the ssl.SSLContext tls."""
    host, port, _ = parse_url(url)
    if url.startswith("https:") and tls is None:
        raise ValueError(f"an https URL needs a TLS context: {url!r}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket_in_netns(family, netns)
    try:
        sock.settimeout(timeout)
        sock.connect((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if url.startswith("https:"):
            sock = tls.wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise
    return sock


# --------------------------------------------------------------------------
# HTTP/1.1 upgrade


def _host_header(url):
    return urllib.parse.urlsplit(url).netloc


def _upgrade_request(url, method, protocols, extra_headers):
    """The request client-go's SPDY round tripper sends: one
    X-Stream-Protocol-Version line per protocol, in preference order."""
    _, _, path = parse_url(url)
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {_host_header(url)}",
        "User-Agent: crid-streamclient",
        "Connection: Upgrade",
        "Upgrade: SPDY/3.1",
    ]
    lines += [f"X-Stream-Protocol-Version: {p}" for p in (protocols or ())]
    for name, value in (extra_headers or {}).items():
        lines.append(f"{name}: {value}")
    if method == "POST":
        lines.append("Content-Length: 0")  # as Go's client sends for a nil body
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_http_response(sock, timeout=DEFAULT_TIMEOUT):
    """Reads a response head from sock; returns (status, headers, rest):
    headers maps lower-case names to lists of values, rest holds the bytes
    after the head (with an upgrade: the first bytes of the new protocol,
    which must not be lost)."""
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\r\n\r\n" not in buf:
        if len(buf) > MAX_HTTP_HEAD:
            raise StreamError(f"response head over {MAX_HTTP_HEAD} bytes: {buf[:200]!r}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise StreamTimeout("no complete HTTP response head", buf)
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            continue
        if not chunk:
            raise StreamError(f"connection closed before the response head ended: {buf!r}")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise StreamError(f"bad status line {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise StreamError(f"bad header line {line!r}")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(parts[1]), headers, rest


def _read_body(sock, headers, rest, timeout):
    """The body of a non-101 answer, when it has a Content-Length (else
    whatever came with the head): only for messages in assertions."""
    try:
        length = int((headers.get("content-length") or ["0"])[0])
    except ValueError:
        return rest
    length = min(length, MAX_HTTP_HEAD)
    deadline = time.monotonic() + timeout
    body = rest
    while len(body) < length and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(4096)
        except (socket.timeout, OSError):
            break
        if not chunk:
            break
        body += chunk
    return body[:length] if length else body


def _header_contains(headers, name, word):
    return any(word in v.lower() for v in headers.get(name, []))


def spdy_upgrade_raw(url, protocols, method="POST", extra_headers=None, timeout=10.0,
                     netns=None):
    """Sends a SPDY upgrade request and returns (status, headers) without
    speaking SPDY afterwards: for the refusals (400 no protocol header,
    403 no common protocol, 404 unknown or used token).  protocols None
    or empty sends no X-Stream-Protocol-Version header at all."""
    sock = open_socket(url, timeout, netns)
    try:
        sock.sendall(_upgrade_request(url, method, protocols, extra_headers))
        status, headers, _ = read_http_response(sock, timeout)
        return status, headers
    finally:
        sock.close()


# --------------------------------------------------------------------------
# SPDY frames


def control_frame(frame_type, flags, payload):
    """80 03 | type(16) | flags(8) | length(24) | payload."""
    return struct.pack(">HHI", 0x8000 | SPDY_VERSION, frame_type,
                       (flags << 24) | len(payload)) + payload


def data_frame(stream_id, flags, payload):
    """stream id (31 bits, top bit 0) | flags(8) | length(24) | payload."""
    if len(payload) > 0xFFFFFF:
        raise ValueError("DATA payload over 16 MiB - 1")
    return struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(payload)) + payload


def encode_header_block(headers):
    """The uncompressed name/value block: 32-bit count, then per pair a
    32-bit length and the bytes of name and value.  Names go lower-case
    (SPDY requires it; client-go's "streamType" is "streamtype" on the
    wire); a list value is joined with NULs."""
    out = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        if isinstance(value, (list, tuple)):
            value = "\0".join(str(v) for v in value)
        name_b = str(name).lower().encode()
        value_b = value if isinstance(value, bytes) else str(value).encode()
        out.append(struct.pack(">I", len(name_b)) + name_b)
        out.append(struct.pack(">I", len(value_b)) + value_b)
    return b"".join(out)


def parse_header_block(raw):
    """Inverse of encode_header_block: {name: value} (values as str, a
    multi-valued header keeps its NULs).  Raises ValueError on a malformed
    block, an upper-case, empty or duplicate name (spdystream's reader
    rejects those too)."""
    if len(raw) < 4:
        raise ValueError(f"header block of {len(raw)} bytes")
    (count,), pos = struct.unpack_from(">I", raw, 0), 4
    headers = {}
    for _ in range(count):
        fields = []
        for _ in range(2):
            if pos + 4 > len(raw):
                raise ValueError("header block truncated")
            (length,) = struct.unpack_from(">I", raw, pos)
            pos += 4
            if pos + length > len(raw):
                raise ValueError("header block truncated")
            fields.append(raw[pos:pos + length].decode("latin-1"))
            pos += length
        name, value = fields
        if not name or name != name.lower() or name in headers:
            raise ValueError(f"bad header name {name!r}")
        headers[name] = value
    if pos != len(raw):
        raise ValueError(f"{len(raw) - pos} bytes after the header block")
    return headers


# --------------------------------------------------------------------------
# SPDY connection and streams


class SpdyStream:
    """One client-initiated stream.  Incoming data is queued by the
    connection's reader thread; reads wait on the connection's condition."""

    def __init__(self, conn, stream_id, headers):
        self.conn = conn
        self.id = stream_id
        self.headers = dict(headers)
        self.reply_headers = None
        self.extra_headers = {}
        self.replied = False
        self.remote_fin = False
        self.reset_status = None  # the server's RST_STREAM status
        self.local_reset = False
        self.local_fin = False
        self.bytes_received = 0
        self._chunks = collections.deque()

    def __repr__(self):
        return (f"SpdyStream({self.id}, {self.headers}, replied={self.replied}, "
                f"fin={self.remote_fin}, reset={self.reset_status})")

    @property
    def ended(self):
        """No more data will come: FIN, RST (either side) or connection gone."""
        return (self.remote_fin or self.reset_status is not None or self.local_reset
                or self.conn.closed)

    def wait_reply(self, timeout=None):
        """Waits for SYN_REPLY as client-go does before using a stream."""
        timeout = self.conn.timeout if timeout is None else timeout

        def done():
            return self.replied or self.reset_status is not None or self.conn.closed

        if not self.conn._wait(done, timeout):
            raise StreamTimeout(f"no SYN_REPLY for stream {self.id} {self.headers} "
                                f"within {timeout} s")
        if self.replied:
            return self.reply_headers
        if self.reset_status is not None:
            raise StreamReset(self.id, self.reset_status)
        raise StreamError(f"connection closed before SYN_REPLY for stream {self.id}")

    def write(self, data):
        """Sends data in DATA frames of at most MAX_DATA_CHUNK bytes."""
        if self.local_fin or self.local_reset:
            raise StreamError(f"stream {self.id} is closed for writing")
        data = bytes(data)
        for offset in range(0, len(data), MAX_DATA_CHUNK):
            self.conn.send_raw(data_frame(self.id, 0, data[offset:offset + MAX_DATA_CHUNK]))

    def close_write(self):
        """Half-close: an empty DATA frame with FIN (spdystream's Close)."""
        if self.local_fin or self.local_reset:
            return
        self.local_fin = True
        self.conn.send_raw(data_frame(self.id, FLAG_FIN, b""))

    def reset(self, status=RST_CANCEL):
        """RST_STREAM (client-go's Reset sends CANCEL)."""
        if self.local_reset:
            return
        self.local_reset = True
        self.conn.send_raw(control_frame(RST_STREAM, 0, struct.pack(">II", self.id, status)))
        self.conn._notify()

    def read(self, timeout=None):
        """The next chunk of data; b"" once the stream ended.  Raises
        StreamTimeout if nothing arrives within timeout."""
        timeout = self.conn.timeout if timeout is None else timeout
        if not self.conn._wait(lambda: self._chunks or self.ended, timeout):
            raise StreamTimeout(f"nothing on stream {self.id} {self.headers} within {timeout} s")
        with self.conn._cond:
            if self._chunks:
                return self._chunks.popleft()
            return b""

    def read_all(self, timeout=None):
        """Everything until the stream ends (FIN or RST); StreamTimeout
        (with .partial) if it does not end within timeout."""
        timeout = self.conn.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        out = bytearray()
        while True:
            remaining = deadline - time.monotonic()
            try:
                chunk = self.read(max(0.0, remaining))
            except StreamTimeout:
                raise StreamTimeout(f"stream {self.id} {self.headers} did not end "
                                    f"within {timeout} s", out) from None
            if not chunk:
                return bytes(out)
            out += chunk

    def read_until(self, needle, timeout=None):
        """Reads until needle appears in what was read; returns all of it
        (possibly more than needle).  StreamTimeout (with .partial) when it
        does not come in time, StreamError when the stream ends first."""
        timeout = self.conn.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        out = bytearray()
        while needle not in out:
            remaining = deadline - time.monotonic()
            try:
                chunk = self.read(max(0.0, remaining))
            except StreamTimeout:
                raise StreamTimeout(f"{needle!r} not seen on stream {self.id}", out) from None
            if not chunk:
                raise StreamError(f"stream {self.id} ended before {needle!r}: {bytes(out)!r}")
            out += chunk
        return bytes(out)

    def wait_ended(self, timeout=None):
        """True once the stream ended (data still queued stays readable)."""
        timeout = self.conn.timeout if timeout is None else timeout
        return self.conn._wait(lambda: self.ended, timeout)


class SpdyConnection:
    """A SPDY/3.1 session over an upgraded HTTP/1.1 connection, client
    side, as spdystream runs it for client-go:

    - the upgrade: POST, Connection: Upgrade, Upgrade: SPDY/3.1, one
      X-Stream-Protocol-Version line per offered protocol; 101 expected
      with Connection/Upgrade echoed; ``protocol`` is the server's choice;
    - streams: odd ids from 1, SYN_STREAM (priority 0, no FIN), then a
      wait for SYN_REPLY; header blocks compressed with one persistent
      zlib stream per direction with the SPDY/3 dictionary, each ending
      with a SYNC_FLUSH;
    - a reader thread parses every frame; server PINGs are echoed,
      SETTINGS and WINDOW_UPDATE ignored (spdystream does no flow
      control), GOAWAY recorded in ``goaway_received`` as
      (last good stream id, status).

    Whatever a real client would choke on (data before SYN_REPLY, data
    after FIN, unknown stream ids, bad lengths or header blocks) is
    appended to ``violations``: tests assert it stays empty."""

    def __init__(self, url, protocols=V4_FIRST, timeout=DEFAULT_TIMEOUT, netns=None,
                 method="POST", extra_headers=None, tls=None):
        self.url = url
        self.timeout = timeout
        self.sock = open_socket(url, timeout, netns, tls)
        try:
            self.sock.sendall(_upgrade_request(url, method, protocols, extra_headers))
            status, headers, rest = read_http_response(self.sock, timeout)
            if status != 101:
                raise UpgradeRefused(status, headers,
                                     _read_body(self.sock, headers, rest, min(timeout, 2.0)))
            if not _header_contains(headers, "connection", "upgrade") or \
                    not _header_contains(headers, "upgrade", "spdy/3.1"):
                raise StreamError(f"101 without the SPDY/3.1 upgrade headers: {headers}")
        except BaseException:
            self.sock.close()
            raise
        self.sock.settimeout(timeout)  # bounds sends; the reader retries on timeouts
        self.response_headers = headers
        self.protocol = (headers.get("x-stream-protocol-version") or [None])[0]
        self.goaway_received = None
        self.violations = []
        self.closed = False  # the reader saw EOF or an error
        self.reader_error = None
        self.server_streams = []  # SYN_STREAMs the server sent (refused)
        self.frames = collections.deque(maxlen=256)  # (kind, stream id, flags, length)
        self._inbuf = bytearray(rest)
        self._deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY,
                                         zdict=SPDY_DICTIONARY)
        self._inflate = zlib.decompressobj(zdict=SPDY_DICTIONARY)
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()
        self._streams = {}
        self._next_stream_id = 1
        self._next_ping_id = 1
        self._pongs = set()
        self._closing = False
        self._reading = threading.Event()
        self._reading.set()
        self._reader = threading.Thread(target=self._read_loop, name="spdy-reader",
                                        daemon=True)
        self._reader.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- waiting ----------------------------------------------------------

    def _wait(self, predicate, timeout):
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def _notify(self):
        with self._cond:
            self._cond.notify_all()

    def _violation(self, text):
        with self._cond:
            self.violations.append(text)

    # -- sending ----------------------------------------------------------

    def send_raw(self, data):
        """Writes bytes as they are (frames, or garbage for robustness
        tests); serialised with every other write."""
        with self._send_lock:
            self.sock.sendall(data)

    def _compress(self, headers):
        # Callers hold _send_lock: the deflate stream's order must be the
        # order of the frames on the wire.
        raw = encode_header_block(headers)
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def open_stream(self, headers, timeout=None, wait_reply=True):
        """SYN_STREAM with headers (names lower-cased), then (by default)
        waits for the SYN_REPLY, as client-go's CreateStream does."""
        headers = {str(k).lower(): v for k, v in headers.items()}
        with self._send_lock:
            stream_id = self._next_stream_id
            self._next_stream_id += 2
            stream = SpdyStream(self, stream_id, headers)
            with self._cond:
                self._streams[stream_id] = stream
            payload = struct.pack(">IIBB", stream_id, 0, 0, 0) + self._compress(headers)
            self.sock.sendall(control_frame(SYN_STREAM, 0, payload))
        if wait_reply:
            stream.wait_reply(timeout)
        return stream

    def ping(self, timeout=None):
        """PING with our next odd id; returns the round trip in seconds."""
        timeout = self.timeout if timeout is None else timeout
        with self._send_lock:
            ping_id = self._next_ping_id
            self._next_ping_id += 2
            started = time.monotonic()
            self.sock.sendall(control_frame(PING, 0, struct.pack(">I", ping_id)))
        if not self._wait(lambda: ping_id in self._pongs or self.closed, timeout):
            raise StreamTimeout(f"no answer to PING {ping_id} within {timeout} s")
        if ping_id not in self._pongs:
            raise StreamError("connection closed before the PING answer")
        return time.monotonic() - started

    def send_goaway(self, status=GOAWAY_OK):
        # The server creates no streams, so the last good id is 0.
        self.send_raw(control_frame(GOAWAY, 0, struct.pack(">II", 0, status)))

    # -- reading ----------------------------------------------------------

    def pause_reading(self):
        """Stops taking bytes off the socket, so the server meets TCP
        back-pressure (as from a client that does not read)."""
        self._reading.clear()

    def resume_reading(self):
        self._reading.set()

    def _take(self, n):
        """n bytes from the socket (buffered), None at EOF/close."""
        while len(self._inbuf) < n:
            if self._closing:
                return None
            if not self._reading.wait(0.2):
                continue
            try:
                chunk = self.sock.recv(256 * 1024)
            except socket.timeout:
                continue
            except OSError:
                return None
            if not chunk:
                return None
            self._inbuf += chunk
        data = bytes(self._inbuf[:n])
        del self._inbuf[:n]
        return data

    def _read_loop(self):
        try:
            while True:
                head = self._take(8)
                if head is None:
                    break
                word0, word1 = struct.unpack(">II", head)
                flags, length = word1 >> 24, word1 & 0xFFFFFF
                payload = self._take(length)
                if payload is None:
                    if not self._closing:
                        self._violation(f"connection ended inside a frame {head.hex()}")
                    break
                if word0 & 0x80000000:
                    version, frame_type = (word0 >> 16) & 0x7FFF, word0 & 0xFFFF
                    self.frames.append((frame_type, None, flags, length))
                    if version != SPDY_VERSION:
                        self._violation(f"control frame of SPDY version {version}")
                        break
                    self._on_control(frame_type, flags, payload)
                else:
                    self.frames.append(("data", word0, flags, length))
                    self._on_data(word0, flags, payload)
        except (ValueError, zlib.error, struct.error) as e:
            self.reader_error = e
            self._violation(f"unparsable frame: {e!r}")
        except OSError as e:
            if not self._closing:
                self.reader_error = e
        finally:
            with self._cond:
                self.closed = True
                self._cond.notify_all()

    def _decode_headers(self, block):
        """Every header block goes through the one inflate stream, even
        when ignored, or the next one would not decode."""
        if not block:
            return {}
        return parse_header_block(self._inflate.decompress(block))

    def _stream_id(self, payload, frame_name):
        if len(payload) < 4:
            raise ValueError(f"{frame_name} of {len(payload)} bytes")
        return struct.unpack_from(">I", payload)[0] & 0x7FFFFFFF

    def _on_control(self, frame_type, flags, payload):
        if frame_type == SYN_REPLY:
            stream_id = self._stream_id(payload, "SYN_REPLY")
            headers = self._decode_headers(payload[4:])
            with self._cond:
                stream = self._streams.get(stream_id)
                if stream is None:
                    self.violations.append(f"SYN_REPLY for unknown stream {stream_id}")
                elif stream.replied:
                    self.violations.append(f"second SYN_REPLY for stream {stream_id}")
                else:
                    stream.replied = True
                    stream.reply_headers = headers
                    if flags & FLAG_FIN:
                        stream.remote_fin = True
                self._cond.notify_all()
        elif frame_type == SYN_STREAM:
            if len(payload) < 10:
                raise ValueError(f"SYN_STREAM of {len(payload)} bytes")
            stream_id = self._stream_id(payload, "SYN_STREAM")
            headers = self._decode_headers(payload[10:])
            with self._cond:
                self.server_streams.append((stream_id, headers))
            # No Kubernetes server opens streams; refuse it.
            self.send_raw(control_frame(RST_STREAM, 0,
                                        struct.pack(">II", stream_id, RST_REFUSED_STREAM)))
        elif frame_type == RST_STREAM:
            if len(payload) != 8:
                self._violation(f"RST_STREAM of {len(payload)} bytes")
                return
            stream_id, status = struct.unpack(">II", payload)
            stream_id &= 0x7FFFFFFF
            with self._cond:
                stream = self._streams.get(stream_id)
                if stream is not None:
                    stream.reset_status = status
                self._cond.notify_all()
        elif frame_type == PING:
            if len(payload) != 4 or flags:
                self._violation(f"PING of {len(payload)} bytes, flags {flags}")
                return
            (ping_id,) = struct.unpack(">I", payload)
            if ping_id % 2 == 1:  # our own, answered
                with self._cond:
                    self._pongs.add(ping_id)
                    self._cond.notify_all()
            else:
                self.send_raw(control_frame(PING, 0, payload))
        elif frame_type == GOAWAY:
            if len(payload) != 8:
                self._violation(f"GOAWAY of {len(payload)} bytes")
                return
            last_good, status = struct.unpack(">II", payload)
            with self._cond:
                self.goaway_received = (last_good & 0x7FFFFFFF, status)
                self._cond.notify_all()
        elif frame_type == HEADERS:
            stream_id = self._stream_id(payload, "HEADERS")
            headers = self._decode_headers(payload[4:])
            with self._cond:
                stream = self._streams.get(stream_id)
                if stream is not None:
                    stream.extra_headers.update(headers)
        # SETTINGS, WINDOW_UPDATE and unknown types: ignored, as spdystream does.

    def _on_data(self, stream_id, flags, payload):
        with self._cond:
            stream = self._streams.get(stream_id)
            if stream is None:
                self.violations.append(f"DATA for unknown stream {stream_id}")
                return
            if not stream.replied:
                self.violations.append(f"DATA on stream {stream_id} before its SYN_REPLY")
            if stream.remote_fin:
                self.violations.append(f"DATA on stream {stream_id} after its FIN")
            if payload:
                stream._chunks.append(payload)
                stream.bytes_received += len(payload)
            if flags & FLAG_FIN:
                stream.remote_fin = True
            self._cond.notify_all()

    # -- the end ----------------------------------------------------------

    def wait_goaway(self, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        self._wait(lambda: self.goaway_received is not None or self.closed, timeout)
        return self.goaway_received

    def wait_closed(self, timeout=None):
        """True once the server closed the connection (reader saw EOF)."""
        timeout = self.timeout if timeout is None else timeout
        return self._wait(lambda: self.closed, timeout)

    def close(self, goaway=True):
        """GOAWAY (as spdystream's Close), then the TCP connection."""
        if self._closing:
            return
        if goaway and not self.closed:
            try:
                self.send_goaway()
            except OSError:
                pass
        self._shutdown()

    def abort(self, rst=False):
        """Drops the connection without GOAWAY, as a killed client would;
        rst sends a TCP RST instead of a FIN."""
        if self._closing:
            return
        if rst:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     struct.pack("ii", 1, 0))
            except OSError:
                pass
        self._shutdown()

    def _shutdown(self):
        self._closing = True
        self._reading.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._reader.join(5.0)
        self.sock.close()
        self._notify()


# --------------------------------------------------------------------------
# Exec and attach over SPDY


class ExecResult:
    """What a remote command produced.  ``status``: the v4+ metav1.Status
    dict (None if the error stream stayed empty), or the raw text for
    older protocols.  ``exit_code``: 0 for success (as client-go: v4 with
    status Success or an empty error stream; v1-v3 with an empty error
    stream), the number of a NonZeroExitCode status, None otherwise."""

    def __init__(self, stdout, stderr, raw_status, protocol, goaway=None, violations=()):
        self.stdout = bytes(stdout)
        self.stderr = bytes(stderr)
        self.raw_status = bytes(raw_status)
        self.protocol = protocol
        self.goaway = goaway
        self.violations = list(violations)
        self.status, self.exit_code = decode_status(self.raw_status, protocol)

    def __repr__(self):
        return (f"ExecResult(protocol={self.protocol!r}, exit_code={self.exit_code!r}, "
                f"stdout={self.stdout[:300]!r}, stderr={self.stderr[:300]!r}, "
                f"status={self.status!r}, violations={self.violations[:5]!r})")


def terminal_size(width, height):
    """A TerminalSize as Go's encoding/json writes it: compact, in field
    order (the SPDY resize stream adds the encoder's newline)."""
    return json.dumps({"Width": width, "Height": height}, separators=(",", ":")).encode()


def protocol_version(protocol):
    """4 for v4.channel.k8s.io etc.; 1 for channel.k8s.io or none."""
    return PROTOCOL_VERSIONS.get(protocol or "", 1)


def decode_status(raw, protocol):
    """(status, exit code) from the error stream/channel, as client-go's
    error decoders read it (v4: a metav1.Status JSON whose
    details.causes[] entry with reason ExitCode carries the code)."""
    if protocol_version(protocol) >= 4:
        if not raw:
            return None, 0
        try:
            status = json.loads(raw)
        except ValueError:
            raise StreamError(f"the v4 status is not JSON: {raw[:300]!r}") from None
        if status.get("status") == "Success":
            return status, 0
        if status.get("reason") == "NonZeroExitCode":
            for cause in (status.get("details") or {}).get("causes") or []:
                if cause.get("reason") == "ExitCode":
                    try:
                        return status, int(cause.get("message", ""), 10)
                    except ValueError:
                        break
        return status, None
    text = raw.decode(errors="replace")
    return text, (0 if not raw else None)


class RemoteCommand:
    """The streams of one exec or attach session, created one at a time in
    client-go's order (each waits for its SYN_REPLY): error, stdin (if
    asked), stdout (if asked), stderr (if asked and no tty), resize (tty
    and protocol v3 or later).  The server counts on exactly these.

    For interactive use: write to ``stdin``, read ``stdout`` with
    read_until, then ``stdin.close_write()`` / ``finish()`` / conn.close()."""

    def __init__(self, conn, stdin=False, stdout=True, stderr=True, tty=False, timeout=None):
        self.conn = conn
        self.tty = tty
        self.version = protocol_version(conn.protocol)
        self.stdin = self.stdout = self.stderr = self.resize = None
        self.error = conn.open_stream({"streamtype": "error"}, timeout)
        if stdin:
            self.stdin = conn.open_stream({"streamtype": "stdin"}, timeout)
        if stdout:
            self.stdout = conn.open_stream({"streamtype": "stdout"}, timeout)
        if stderr and not tty:
            self.stderr = conn.open_stream({"streamtype": "stderr"}, timeout)
        if tty and self.version >= 3:
            self.resize = conn.open_stream({"streamtype": "resize"}, timeout)

    def send_resize(self, width, height):
        """One TerminalSize as Go's json.Encoder writes it (with \\n)."""
        if self.resize is None:
            raise StreamError("no resize stream (needs tty and protocol >= v3)")
        self.resize.write(terminal_size(width, height) + b"\n")

    def finish(self, timeout=None):
        """As client-go: stdout and stderr until FIN, then the error stream
        to its end; one deadline for all of it."""
        timeout = self.conn.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout

        def left():
            return max(0.0, deadline - time.monotonic())

        stdout = self.stdout.read_all(left()) if self.stdout else b""
        stderr = self.stderr.read_all(left()) if self.stderr else b""
        raw_status = self.error.read_all(left())
        return ExecResult(stdout, stderr, raw_status, self.conn.protocol,
                          self.conn.goaway_received, self.conn.violations)

    def close(self):
        self.conn.close()


def open_remote_command(url, stdin=False, stdout=True, stderr=True, tty=False,
                        protocols=V4_FIRST, timeout=DEFAULT_TIMEOUT, netns=None, tls=None):
    """Upgrades and creates the streams; the caller drives the session
    and must close it (RemoteCommand.close)."""
    conn = SpdyConnection(url, protocols, timeout, netns, tls=tls)
    try:
        return RemoteCommand(conn, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty)
    except BaseException:
        conn.close()
        raise


def exec_spdy(url, stdin=None, tty=False, stdout=True, stderr=True, resize=None,
              protocols=V4_FIRST, timeout=DEFAULT_TIMEOUT, netns=None, tls=None):
    """Runs one remote command session to its end.  stdin (bytes) is sent
    and then half-closed (client-go closes remote stdin when its source
    ends); resize is a list of (width, height) sent first."""
    session = open_remote_command(url, stdin=stdin is not None, stdout=stdout,
                                  stderr=stderr, tty=tty, protocols=protocols,
                                  timeout=timeout, netns=netns, tls=tls)
    try:
        for width, height in resize or ():
            session.send_resize(width, height)
        if stdin is not None:
            session.stdin.write(stdin)
            session.stdin.close_write()
        result = session.finish(timeout)
        session.conn.wait_goaway(min(2.0, timeout))
        result.goaway = session.conn.goaway_received
        result.violations = list(session.conn.violations)
        return result
    finally:
        session.close()


attach_spdy = exec_spdy  # the same streams; only the URL differs


# --------------------------------------------------------------------------
# Port forward over SPDY


class PortForwardStreams:
    """The stream pair of one forwarded connection."""

    def __init__(self, port, request_id, data, error):
        self.port = port
        self.request_id = request_id
        self.data = data
        self.error = error

    def exchange(self, payload, timeout=10.0):
        """Writes payload and reads until as many bytes came back (for
        echo servers); returns what was read."""
        self.data.write(payload)
        deadline = time.monotonic() + timeout
        out = bytearray()
        while len(out) < len(payload):
            try:
                chunk = self.data.read(max(0.0, deadline - time.monotonic()))
            except StreamTimeout:
                raise StreamTimeout(f"echo of port {self.port} incomplete", out) from None
            if not chunk:
                break
            out += chunk
        return bytes(out)

    def error_text(self, timeout=10.0):
        """The error stream's text up to its end ("" when it ended empty)."""
        return self.error.read_all(timeout).decode(errors="replace")


class PortForwardSpdy:
    """A portforward.k8s.io session.  Per forwarded connection client-go
    opens an error stream (and half-closes it at once: it never writes
    to it), then a data stream, both with headers port and requestid (a
    per-session counter from 0)."""

    def __init__(self, url, timeout=DEFAULT_TIMEOUT, netns=None):
        self.conn = SpdyConnection(url, [PORTFORWARD_PROTOCOL], timeout, netns)
        if self.conn.protocol != PORTFORWARD_PROTOCOL:
            self.conn.close()
            raise StreamError(f"negotiated {self.conn.protocol!r}, not {PORTFORWARD_PROTOCOL}")
        self._lock = threading.Lock()
        self._next_request_id = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def connect(self, port, timeout=None):
        with self._lock:
            request_id = self._next_request_id
            self._next_request_id += 1
        headers = {"streamtype": "error", "port": str(port), "requestid": str(request_id)}
        error = self.conn.open_stream(headers, timeout)
        error.close_write()
        headers["streamtype"] = "data"
        data = self.conn.open_stream(headers, timeout)
        return PortForwardStreams(port, request_id, data, error)

    def close(self):
        self.conn.close()


def forward_once(url, port, payload, timeout=DEFAULT_TIMEOUT, netns=None):
    """One forwarded connection: sends payload, half-closes, reads the
    data stream to its end; returns (data, error text)."""
    with PortForwardSpdy(url, timeout, netns) as session:
        pair = session.connect(port)
        if payload:
            pair.data.write(payload)
        pair.data.close_write()
        data = pair.data.read_all(timeout)
        return data, pair.error_text(timeout)


# --------------------------------------------------------------------------
# WebSocket


def ws_connect(url, protocol, timeout=DEFAULT_TIMEOUT, netns=None, header=None):
    """A websocket-client WebSocket over our own loopback socket (made in
    netns, so no proxy settings or name lookups get involved); protocol
    None offers no subprotocol.  A refusal raises
    websocket.WebSocketBadStatusException (its .status_code)."""
    host, port, path = parse_url(url)
    sock = open_socket(url, timeout, netns)
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    options = {"socket": sock, "timeout": timeout}
    if protocol:
        options["subprotocols"] = [protocol]
    if header:
        options["header"] = header
    try:
        return websocket.create_connection(f"ws://{netloc}{path}", **options)
    except BaseException:
        sock.close()
        raise


class WsChannels:
    """Channel framing of the k8s WebSocket protocols: binary messages
    with a leading channel byte, or for the base64 variants text
    messages "<'0'+channel><base64 payload>"."""

    def __init__(self, ws, protocol):
        self.ws = ws
        self.protocol = protocol
        self.base64 = protocol in BASE64_PROTOCOLS
        self.messages = []  # (channel, payload length), in arrival order
        self.closed_channels = set()  # v5 CLOSE messages from the server
        self.connection_closed = False
        self.close_status = None

    def send(self, channel, payload):
        if self.base64:
            self.ws.send(chr(ord("0") + channel) + base64.b64encode(payload).decode())
        else:
            self.ws.send(bytes([channel]) + bytes(payload), opcode=websocket.ABNF.OPCODE_BINARY)

    def send_close(self, channel):
        """v5 half-close of one channel (binary CLOSE message)."""
        self.ws.send(bytes([WS_CLOSE_CHANNEL, channel]), opcode=websocket.ABNF.OPCODE_BINARY)

    def receive(self, timeout):
        """(channel, payload) of the next message; None once the
        connection closed; StreamTimeout when nothing came in time."""
        if self.connection_closed:
            return None
        self.ws.settimeout(max(0.01, timeout))
        try:
            opcode, data = self.ws.recv_data()
        except websocket.WebSocketTimeoutException:
            raise StreamTimeout(f"no WebSocket message within {timeout:.1f} s") from None
        except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
            self.connection_closed = True
            return None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            self.connection_closed = True
            if len(data) >= 2:
                self.close_status = struct.unpack(">H", data[:2])[0]
            return None
        if isinstance(data, str):
            data = data.encode()
        if not data:
            raise StreamError("empty WebSocket message (no channel byte)")
        if self.base64:
            if opcode != websocket.ABNF.OPCODE_TEXT:
                raise StreamError(f"binary message under {self.protocol}: {data[:50]!r}")
            channel, payload = data[0] - ord("0"), base64.b64decode(data[1:])
        else:
            channel, payload = data[0], data[1:]
        if channel == WS_CLOSE_CHANNEL and not self.base64:
            if payload:
                self.closed_channels.add(payload[0])
            self.messages.append((channel, len(payload)))
            return channel, b""
        self.messages.append((channel, len(payload)))
        return channel, payload

    def close(self):
        try:
            self.ws.close(timeout=1)
        except Exception:  # already gone: nothing to tell the server
            pass
        try:
            self.ws.shutdown()
        except Exception:
            pass


def exec_ws(url, protocol, stdin=None, resize=None, timeout=DEFAULT_TIMEOUT, netns=None):
    """One remote command session over WebSocket: optional resize
    messages, stdin (then, with v5, CLOSE of channel 0), then every
    message until the server closes; stdout, stderr and the status are
    gathered from channels 1, 2 and 3."""
    ws = ws_connect(url, protocol, timeout, netns)
    chan = WsChannels(ws, protocol)
    deadline = time.monotonic() + timeout
    out = {CH_STDOUT: bytearray(), CH_STDERR: bytearray(), CH_ERROR: bytearray()}
    try:
        for width, height in resize or ():
            chan.send(CH_RESIZE, terminal_size(width, height))
        if stdin is not None:
            if stdin:
                chan.send(CH_STDIN, stdin)
            if protocol == "v5.channel.k8s.io":
                chan.send_close(CH_STDIN)
        while True:
            try:
                message = chan.receive(deadline - time.monotonic())
            except StreamTimeout:
                raise StreamTimeout(f"WebSocket exec did not end within {timeout} s; "
                                    f"got {dict((k, bytes(v)) for k, v in out.items())}",
                                    out[CH_STDOUT]) from None
            if message is None:
                break
            channel, payload = message
            if channel in out:
                out[channel] += payload
    finally:
        chan.close()
    result = ExecResult(out[CH_STDOUT], out[CH_STDERR], out[CH_ERROR], protocol)
    result.messages = chan.messages
    return result


class PortForwardWs:
    """Port forward over WebSocket: for the i-th requested port channel
    2i carries data both ways and 2i+1 errors; the server first sends
    the port (uint16 little-endian) on each of the two."""

    def __init__(self, url, protocol="v4.channel.k8s.io", timeout=DEFAULT_TIMEOUT, netns=None):
        self.timeout = timeout
        self.chan = WsChannels(ws_connect(url, protocol, timeout, netns), protocol)
        self.buffers = collections.defaultdict(bytearray)
        self.prefix = {}  # channel -> the 2 port bytes
        self.first_message_len = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _pump(self, timeout):
        """Takes one message into the buffers; False once closed."""
        message = self.chan.receive(timeout)
        if message is None:
            return False
        channel, payload = message
        self.first_message_len.setdefault(channel, len(payload))
        if channel not in self.prefix:
            need = 2 - len(self.buffers[channel])
            self.buffers[channel] += payload[:need]
            payload = payload[need:]
            if len(self.buffers[channel]) == 2:
                self.prefix[channel] = bytes(self.buffers[channel])
                self.buffers[channel] = bytearray()
        self.buffers[channel] += payload
        return True

    def _pump_until(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StreamTimeout(f"{what} within {timeout} s")
            if not self._pump(remaining):
                return predicate()
        return True

    def ports(self, index=0, timeout=None):
        """(port on the data channel, port on the error channel)."""
        timeout = self.timeout if timeout is None else timeout
        data, error = 2 * index, 2 * index + 1
        self._pump_until(lambda: data in self.prefix and error in self.prefix, timeout,
                         f"no port prefix on channels {data}/{error}")
        return tuple(struct.unpack("<H", self.prefix[c])[0] if c in self.prefix else None
                     for c in (data, error))

    def send(self, data, index=0):
        self.chan.send(2 * index, data)

    def read(self, nbytes, index=0, timeout=None):
        """Waits for nbytes of data on port index; returns (and consumes) them."""
        timeout = self.timeout if timeout is None else timeout
        channel = 2 * index
        got = self._pump_until(lambda: len(self.buffers[channel]) >= nbytes, timeout,
                               f"{nbytes} bytes on channel {channel}")
        data = bytes(self.buffers[channel][:nbytes])
        del self.buffers[channel][:nbytes]
        if not got and len(data) < nbytes:
            raise StreamError(f"connection closed after {data!r} on channel {channel}")
        return data

    def read_until_closed(self, timeout=None):
        """Pumps until the server closes; returns {channel: bytes}."""
        timeout = self.timeout if timeout is None else timeout
        self._pump_until(lambda: self.chan.connection_closed, timeout, "no close")
        return {c: bytes(b) for c, b in self.buffers.items()}

    def close(self):
        self.chan.close()


def portforward_ws(url, protocol="v4.channel.k8s.io", timeout=DEFAULT_TIMEOUT, netns=None):
    return PortForwardWs(url, protocol, timeout, netns)
