"""Cold image pull: PullImage of a ~100 MB, 5-layer gzip image from a local
registry into an empty store, crid against containerd's CRI plugin.

The image (built once, deterministically, cached in an OCI layout under
/tmp, see IMAGE_CACHE): 5 gzip layers (level 6) of ~83/70/58/46/32 MB
uncompressed (~290 MB in all, ~100 MB compressed), each a tree of a few
thousand files of varied sizes (log-normal, a few bytes to a few MB)
grouped by "package" like a distro layer: text (docs, sources, configs),
binary-ish data (libraries, executables: skewed bytes with short repeats),
already-compressed data (.gz, .png: incompressible) and tables (locale
catalogs, databases: very compressible), plus directories and symlinks.

One docker-registry (plain HTTP, storage in a temp dir) serves it on
127.0.0.1 inside a fresh network namespace (no uplink); the image is pushed
with `skopeo copy --preserve-digests`, and both daemons run inside the same
namespace: crid with `[crid.image.registries."127.0.0.1:PORT"] insecure =
true`, containerd with the CRI `registry.config_path` pointing at a
hosts.toml (server and host `http://127.0.0.1:PORT`, skip_verify).  Both
keep their default of 3 concurrent layer downloads.

Each run is a fresh daemon on an empty temp dir, made in a directory
flagged `chattr +T` so that the Orlov allocator puts each one in a block
group of its own (on an ext4 without a journal, as here, creating files
next to inodes deleted in the last minutes is several times slower: the
allocator skips and rescans each of them; BENCH_PULL_SPREAD=0 turns this
off).  Before each run: `sync`, a pause (BENCH_PULL_SETTLE, 3 s), the page
cache dropped (`echo 3 > /proc/sys/vm/drop_caches`), then the registry's
blobs and the daemons' programs (crid's plugins too) and libraries read back into the cache, so
every run starts with the same cold store and warm inputs.

The daemon starts and answers Version, then PullImage is timed while a
thread samples the daemon every 10 ms (VmRSS, RssAnon, CPU, wchar, and the
loopback bytes of the namespace, which are the registry's traffic).
Afterwards ImageStatus must report the image, then RemoveImage, and
ImageStatus and ListImages must find nothing; the daemon is stopped and its
whole temp dir (store included) deleted.  Runs alternate between runtimes,
BENCH_PULL_RUNS (5) each; the table shows the median and every run.  For
reference it also times `gzip -dc` of the 5 layer blobs in sequence on one
core (files in the page cache, output to /dev/null).
"""

import concurrent.futures
import datetime
import itertools
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import benchlib

sys.path.insert(0, os.path.join(benchlib.REPO, "tests", "integration"))
sys.path.insert(0, os.path.join(benchlib.REPO, "tests", "fixtures"))

import build_images  # noqa: E402
import registry as regutil  # noqa: E402

TITLE = "pull: cold PullImage of a ~100 MB 5-layer gzip image from a local registry"

GENERATOR_VERSION = 1
IMAGE_CACHE = os.environ.get("BENCH_PULL_CACHE",
                             "/tmp/crid-bench-pull-image.v%d" % GENERATOR_VERSION)
IMAGE_REPO = "bench/pull"
IMAGE_TAG = "v1"
LAYER_SIZES_MB = (80, 67, 56, 44, 31)  # uncompressed, per layer
RUNS = int(os.environ.get("BENCH_PULL_RUNS", "5"))
SETTLE_SECONDS = float(os.environ.get("BENCH_PULL_SETTLE", "3"))
SPREAD = os.environ.get("BENCH_PULL_SPREAD", "1") != "0"
PULL_TIMEOUT = 600.0
SAMPLE_INTERVAL = 0.01
GZIP_REPEATS = 3
OTHER_CPU_WARN = 0.3  # seconds of CPU used by other processes during a pull

REFERENCE = ("on this machine (issue): containerd 2.33 s, CRI-O 2.45 s, "
             "gzip -dc of the layers 1.41 s")
# gzip -dc of the layers when the targets were set (REFERENCE): this VM's
# speed drifts by a third over a day, so each run also says its medians in
# units of the gzip -dc measured in the same run.
REFERENCE_GZIP_SECONDS = 1.41
TARGET_SECONDS = 0.8
TARGET_RSS_MB = 30.0
TARGET_CPU_SECONDS = 1.2


def mb(v):
    return None if v is None else v / benchlib.MB


# ---------------------------------------------------------------- the image

# Share of each kind of content in a layer's bytes, and its file sizes
# (log-normal: mu, sigma of ln(bytes); clamped).
KINDS = {
    #         share  mu    sigma  max bytes
    "text": (0.50, 8.3, 1.5, 2 << 20),
    "bin": (0.40, 9.8, 1.9, 8 << 20),
    "packed": (0.04, 8.5, 1.6, 3 << 20),
    "table": (0.06, 9.0, 1.5, 2 << 20),
}
POOL_SIZES = {"text": 24 << 20, "bin": 24 << 20, "packed": 8 << 20, "table": 8 << 20}
LETTERS = "etaoinshrdlcumwfgypbvkjxqz_"
LETTER_WEIGHTS = [12.7, 9.1, 8.2, 7.5, 7.0, 6.7, 6.3, 6.1, 6.0, 4.3, 4.0, 2.8, 2.8, 2.4, 2.4,
                  2.2, 2.0, 2.0, 1.9, 1.5, 1.0, 0.8, 0.15, 0.15, 0.1, 0.07, 1.0]
LOCALES = ["de", "fr", "es", "it", "ja", "pt_BR", "ru", "zh_CN", "nl", "pl", "sv", "cs"]


def _word(rng, mean=1.6):
    n = min(14, max(1, int(rng.lognormvariate(mean, 0.45))))
    return "".join(rng.choices(LETTERS, LETTER_WEIGHTS, k=n))


def _text_pool(rng, size):
    """Lines of Zipf-distributed pseudo-words, indented and punctuated like
    source code and prose (gzip -6: ~3.9x)."""
    vocab = [_word(rng) for _ in range(1000)]
    weights = list(itertools.accumulate(1.0 / (i + 1) ** 1.2 for i in range(len(vocab))))
    out, total = [], 0
    while total < size:
        words = rng.choices(vocab, cum_weights=weights, k=4096)
        lines, i = [], 0
        while i < len(words):
            n = rng.randint(3, 14)
            indent = " " * rng.choice((0, 0, 0, 2, 4, 8))
            punct = rng.choice((".", ",", ";", ":", " {", "();", ")", ""))
            lines.append(indent + " ".join(words[i:i + n]) + punct)
            i += n
        chunk = ("\n".join(lines) + "\n").encode()
        out.append(chunk)
        total += len(chunk)
    return b"".join(out)[:size]


def _bin_pool(rng, size):
    """Machine-code-like bytes: Zipf-chosen short tokens of skewed bytes
    (zero and a few opcode-like values frequent) with runs of zero padding
    (gzip -6: ~2.4x)."""
    values = list(range(256))
    common = (0xFF, 0x48, 0x89, 0x8B, 0xE8, 0x0F, 0x24, 0x83, 0x01, 0x10)
    weights = [30 if b == 0 else (8 if b in common else 1) for b in values]
    tokens = [bytes(rng.choices(values, weights, k=rng.randint(1, 7))) for _ in range(1500)]
    cum = list(itertools.accumulate(1.0 / (i + 1) ** 1.2 for i in range(len(tokens))))
    out, total = [], 0
    while total < size:
        chunk = b"".join(rng.choices(tokens, cum_weights=cum, k=8192))
        out.append(chunk)
        total += len(chunk)
        if rng.random() < 0.3:
            pad = bytes(rng.randint(16, 4096))
            out.append(pad)
            total += len(pad)
    return b"".join(out)[:size]


def _table_pool(rng, size):
    """Records with few distinct values (catalogs, databases; ~10x)."""
    keys = [_word(rng, 2.0) for _ in range(40)]
    out, total, n = [], 0, 0
    while total < size:
        rows = []
        for _ in range(2048):
            n += rng.choice((1, 1, 1, 2, 7))
            rows.append(b"%08x\t%s\t%d\t%s\n" % (n, rng.choice(keys).encode(), rng.randint(0, 9),
                                                 rng.choice(keys).encode()))
        chunk = b"".join(rows)
        out.append(chunk)
        total += len(chunk)
    return b"".join(out)[:size]


def _pools():
    rng = random.Random("crid-bench-pull-pools")
    return {
        "text": _text_pool(rng, POOL_SIZES["text"]),
        "bin": _bin_pool(rng, POOL_SIZES["bin"]),
        "packed": rng.randbytes(POOL_SIZES["packed"]),
        "table": _table_pool(rng, POOL_SIZES["table"]),
    }


TEMPLATES = {
    "text": ("usr/share/doc/{pkg}/{w}.txt", "usr/lib/python3/dist-packages/{pkg}/{w}.py",
             "usr/include/{pkg}/{w}.h", "usr/share/{pkg}/{w}.conf",
             "usr/share/{pkg}/templates/{w}.html", "etc/{pkg}/conf.d/{w}.conf"),
    "bin": ("usr/lib/x86_64-linux-gnu/lib{pkg}{w}.so.{n}", "usr/bin/{pkg}-{w}",
            "usr/lib/{pkg}/{w}.so"),
    "packed": ("usr/share/doc/{pkg}/changelog.{w}.gz", "usr/share/{pkg}/icons/{w}.png"),
    "table": ("usr/share/locale/{lc}/LC_MESSAGES/{pkg}-{w}.mo", "var/lib/{pkg}/{w}.db"),
}


def _package(rng, index):
    """A package: a name and, per kind, the one or two places its files
    go (so a package fills a few directories, like a real one)."""
    return {"name": "%s%d" % (_word(rng, 1.8), index),
            "places": {k: rng.sample(v, min(len(v), rng.choice((1, 1, 2))))
                       for k, v in TEMPLATES.items()}}


def _path_for(rng, kind, pkg):
    template = rng.choice(pkg["places"][kind])
    n = "%d.%d.%d" % (rng.randint(0, 9), rng.randint(0, 30), rng.randint(0, 9))
    path = template.format(pkg=pkg["name"], w=_word(rng, 1.9), n=n, lc=rng.choice(LOCALES))
    return path, (0o755 if template.startswith("usr/bin/") else 0o644)


def _file_size(rng, kind):
    _, mu, sigma, top = KINDS[kind]
    if kind == "text" and rng.random() < 0.03:
        return 0  # __init__.py, .keep, empty configs
    return max(1, min(top, int(rng.lognormvariate(mu, sigma))))


def _layer_tar(index, target, pools):
    """One layer: packages of files until `target` bytes of content."""
    rng = random.Random("crid-bench-pull-layer-%d" % index)
    t = build_images.TarBuilder()
    dirs, paths = set(), set()
    done = {k: 0 for k in KINDS}
    stats = {"files": 0, "dirs": 0, "symlinks": 0, "content": 0}

    def ensure_dirs(path):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in dirs:
                dirs.add(d)
                t.dir(d)
                stats["dirs"] += 1

    total = 0
    while total < target:
        pkg = _package(rng, index)
        n_files = max(1, min(400, int(rng.lognormvariate(3.0, 1.0))))
        for _ in range(n_files):
            if total >= target:
                break
            # Kind by how far each lags behind its share (plus chance).
            ahead = total + 4 * 1024 * 1024
            lag = [max(1.0, KINDS[k][0] * ahead - done[k]) for k in KINDS]
            kind = rng.choices(list(KINDS), lag)[0]
            path, mode = _path_for(rng, kind, pkg)
            while path in paths:
                path += "_"
            paths.add(path)
            size = min(_file_size(rng, kind), max(1, target - total))
            pool = pools[kind]
            offset = rng.randrange(0, len(pool) - size)
            data = pool[offset:offset + size]
            if kind == "bin" and size >= 64:
                data = b"\x7fELF\x02\x01\x01\x00" + bytes(56) + data[64:]
            ensure_dirs(path)
            t.file(path, data, mode=mode)
            stats["files"] += 1
            done[kind] += size
            total += size
            if kind == "bin" and ".so." in path:
                # libfoo.so.1 -> libfoo.so.1.2.3, like a real library
                link = path.rsplit(".", 2)[0]
                if link not in paths:
                    paths.add(link)
                    t.symlink(link, os.path.basename(path))
                    stats["symlinks"] += 1
    stats["content"] = total
    stats["kinds"] = done
    return t.bytes(), stats


def _build_layer(index, target, pools, blobs_dir):
    tar, stats = _layer_tar(index, target, pools)
    diff_id = build_images.sha256_digest(tar)
    gz = build_images.compress(tar, "gzip")
    digest = build_images.sha256_digest(gz)
    path = os.path.join(blobs_dir, digest.split(":", 1)[1])
    with open(path, "wb") as f:
        f.write(gz)
    stats.update({"digest": digest, "size": len(gz), "diff_id": diff_id,
                  "uncompressed": len(tar)})
    return stats


def _write_blob(blobs_dir, data):
    digest = build_images.sha256_digest(data)
    with open(os.path.join(blobs_dir, digest.split(":", 1)[1]), "wb") as f:
        f.write(data)
    return digest


def load_cached_image(cache=IMAGE_CACHE):
    """The cached image's description (bench-image.json), or None when the
    cache is missing, stale or incomplete."""
    try:
        with open(os.path.join(cache, "bench-image.json")) as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    if info.get("generator") != GENERATOR_VERSION or \
            info.get("layer_sizes_mb") != list(LAYER_SIZES_MB):
        return None
    for layer in info["layers"]:
        path = layer_path(cache, layer["digest"])
        if not os.path.isfile(path) or os.path.getsize(path) != layer["size"]:
            return None
    return info


def layer_path(cache, digest):
    return os.path.join(cache, "blobs", "sha256", digest.split(":", 1)[1])


def build_image(cache=IMAGE_CACHE):
    """Builds the image into an OCI layout at `cache` unless a valid one is
    there; returns its description."""
    info = load_cached_image(cache)
    if info is not None:
        return info
    started = time.monotonic()
    work = "%s.tmp-%d" % (cache, os.getpid())
    shutil.rmtree(work, ignore_errors=True)
    blobs_dir = os.path.join(work, "blobs", "sha256")
    os.makedirs(blobs_dir)
    pools = _pools()
    # zlib releases the GIL while compressing: two layers at a time.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(_build_layer, i, size * 1000 * 1000, pools, blobs_dir)
                   for i, size in enumerate(LAYER_SIZES_MB)]
        layers = [f.result() for f in futures]
    del pools
    diff_ids = [layer["diff_id"] for layer in layers]
    config = {
        "created": build_images.CREATED,
        "architecture": benchlib.go_arch(),
        "os": "linux",
        "config": {"Env": [build_images.DEFAULT_PATH], "Cmd": ["/bin/sh"],
                   "Labels": {"org.crid.bench": "pull"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": build_images.CREATED, "created_by": "crid bench layer %d" % i}
                    for i in range(len(layers))],
    }
    config_bytes = build_images.canonical_json(config)
    config_digest = _write_blob(blobs_dir, config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": build_images.OCI_MANIFEST,
        "config": {"mediaType": build_images.OCI_CONFIG, "digest": config_digest,
                   "size": len(config_bytes)},
        "layers": [{"mediaType": build_images.OCI_LAYER["gzip"], "digest": layer["digest"],
                    "size": layer["size"]} for layer in layers],
    }
    manifest_bytes = build_images.canonical_json(manifest)
    manifest_digest = _write_blob(blobs_dir, manifest_bytes)
    index = {"schemaVersion": 2, "mediaType": build_images.OCI_INDEX, "manifests": [{
        "mediaType": build_images.OCI_MANIFEST, "digest": manifest_digest,
        "size": len(manifest_bytes),
        "annotations": {"org.opencontainers.image.ref.name": IMAGE_TAG}}]}
    with open(os.path.join(work, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(work, "index.json"), "wb") as f:
        f.write(build_images.canonical_json(index))
    for layer in layers:
        layer.pop("kinds", None)
    info = {
        "generator": GENERATOR_VERSION,
        "layer_sizes_mb": list(LAYER_SIZES_MB),
        "manifest": manifest_digest,
        "config": config_digest,
        "layers": layers,
        "compressed": sum(layer["size"] for layer in layers),
        "uncompressed": sum(layer["uncompressed"] for layer in layers),
        "files": sum(layer["files"] for layer in layers),
        "dirs": sum(layer["dirs"] for layer in layers),
        "symlinks": sum(layer["symlinks"] for layer in layers),
        "build_seconds": round(time.monotonic() - started, 1),
    }
    with open(os.path.join(work, "bench-image.json"), "w") as f:
        json.dump(info, f, indent=1)
    os.sync()
    shutil.rmtree(cache, ignore_errors=True)
    os.rename(work, cache)
    return info


def gzip_reference(info, cache=IMAGE_CACHE):
    """Wall seconds of `gzip -dc` over the 5 layer blobs one after the
    other (warm cache, output to /dev/null): the median of GZIP_REPEATS."""
    paths = [layer_path(cache, layer["digest"]) for layer in info["layers"]]
    benchlib.read_files(paths)
    times = []
    for _ in range(GZIP_REPEATS):
        t0 = time.monotonic()
        for path in paths:
            with open(os.devnull, "wb") as null:
                subprocess.run(["gzip", "-dc", path], stdin=subprocess.DEVNULL, stdout=null,
                               check=True, timeout=120)
        times.append(time.monotonic() - t0)
    return times


# ---------------------------------------------------------------- daemons


def crid_config(host):
    return "\n[crid.image.registries.%s]\ninsecure = true\n" % benchlib.toml_str(host)


def write_hosts_dir(directory, host):
    """containerd's registry config_path: <dir>/<host>/hosts.toml making
    `host` a plain-HTTP registry."""
    d = os.path.join(directory, host)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "hosts.toml"), "w") as f:
        f.write('server = "http://%s"\n\n[host."http://%s"]\n'
                '  capabilities = ["pull", "resolve"]\n  skip_verify = true\n' % (host, host))
    return directory


def containerd_config(hosts_dir):
    return ("    [plugins.\"io.containerd.grpc.v1.cri\".registry]\n"
            "      config_path = %s\n" % benchlib.toml_str(hosts_dir))


def warm_paths(reg, runtimes):
    """Inputs that every run reads back into the page cache after the drop:
    the registry's storage and the daemons' programs (crid's plugins
    included: the pull stack is one) and their libraries."""
    paths = []
    for root, _, files in os.walk(str(reg.storage)):
        paths += [os.path.join(root, f) for f in files]
    binaries = [regutil.REGISTRY_BIN]
    for name in runtimes:
        binaries += benchlib.RUNTIMES[name].programs()
    for binary in binaries:
        paths.append(binary)
        paths += benchlib.shared_libraries(binary)
    return paths


def prepare_run(warm):
    """sync, settle, drop the page cache, read the inputs back."""
    os.sync()
    time.sleep(SETTLE_SECONDS)
    err = benchlib.drop_caches()
    benchlib.read_files(warm)
    return err


def timeline(samples, t0, t1):
    """From the sampler: when the loopback traffic (the download) reached
    99.5% of its total, relative to t0; None without samples."""
    nets = [(x[0], x[4]) for x in samples if x[4] is not None]
    if len(nets) < 2:
        return None
    base = nets[0][1]
    total = nets[-1][1] - base
    if total <= 0:
        return None
    for t, n in nets:
        if n - base >= 0.995 * total:
            return max(0.0, min(t, t1) - t0)
    return None


def cpu_busy_after(samples, start):
    """CPU seconds the daemon used from monotonic time `start` to the last
    sample."""
    after = [s for s in samples if s[0] >= start]
    if len(after) < 2:
        return None
    return after[-1][2] - after[0][2]


CRID_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z ")
CRID_LAYER_DONE = re.compile(r": layer (sha256:[0-9a-f]+) done \(([0-9.]+) MB\)")


def crid_layer_times(log_text):
    """[(seconds after "resolving", short digest, MB)] of the "layer ...
    done" lines of crid's log, in order."""
    start, out = None, []
    for line in log_text.splitlines():
        m = CRID_LOG_TIME.match(line)
        if not m:
            continue
        when = datetime.datetime.fromisoformat(m.group(1)).timestamp()
        if start is None and ": resolving" in line:
            start = when
        done = CRID_LAYER_DONE.search(line)
        if done and start is not None:
            out.append((when - start, done.group(1)[7:15], float(done.group(2))))
    return out


def others_cpu(reg_pid):
    """(machine busy CPU s, registry CPU s, this process's CPU s, kernel
    threads' CPU s): read before and after a pull to tell how much CPU
    anything else took."""
    kernel = benchlib.kernel_threads_cpu()
    reg = benchlib.cpu_times(reg_pid)
    me = os.times()
    return benchlib.host_cpu_busy(), reg[0] + reg[1], me.user + me.system, kernel


def start_profiler(name, pid):
    """`perf record` of the daemon (all its threads) for the PullImage call
    when BENCH_PULL_PERF names an output prefix; None otherwise."""
    prefix = os.environ.get("BENCH_PULL_PERF")
    if not prefix:
        return None
    global _profiles
    _profiles += 1
    out = "%s.%s.%d" % (prefix, name, _profiles)
    proc = subprocess.Popen(["perf", "record", "-q", "-F", "4000", "-g", "-p", str(pid), "-o", out],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # perf attaches to every thread before the call starts
    print("   perf record of %s into %s" % (name, out), file=sys.stderr)
    return proc


def stop_profiler(proc):
    if proc is not None:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)


_profiles = 0


def one_pull(name, reg, image_ref, info, hosts_dir, netns, tmp_parent=None):
    """A fresh daemon, one timed PullImage, checks, RemoveImage, stop.
    Returns a dict of figures."""
    api, _ = benchlib.cri_stubs()
    grpc = benchlib.grpc_module()
    if benchlib.is_crid(name):
        daemon = benchlib.Crid(extra_config=crid_config(reg.host), netns=netns,
                               tmp_parent=tmp_parent)
    else:
        daemon = benchlib.Containerd(extra_config=containerd_config(hosts_dir), netns=netns,
                                     tmp_parent=tmp_parent)
    res = {"name": name}
    with daemon as d:
        stub = d.image_stub()
        d.version()
        time.sleep(0.5)
        before = benchlib.memory(d.pid)
        cpu0 = benchlib.cpu_times(d.pid)
        io0 = benchlib.io_counters(d.pid)
        spec = api.ImageSpec(image=image_ref)
        sampler = benchlib.PidSampler(d.pid, interval=SAMPLE_INTERVAL)
        sampler.start()
        profiler = start_profiler(name, d.pid)
        busy0 = others_cpu(reg.proc.pid)
        t0 = time.monotonic()
        try:
            reply = stub.PullImage(api.PullImageRequest(image=spec), timeout=PULL_TIMEOUT)
        except grpc.RpcError as e:
            sampler.stop()
            raise benchlib.BenchError("%s: PullImage: %s %s\n%s"
                                      % (name, e.code(), e.details(), d.log_tail()))
        t1 = time.monotonic()
        stop_profiler(profiler)
        busy1 = others_cpu(reg.proc.pid)
        samples = sampler.stop()
        after = benchlib.memory(d.pid)
        cpu1 = benchlib.cpu_times(d.pid)
        io1 = benchlib.io_counters(d.pid)
        res.update({
            "wall": t1 - t0,
            "rss_before": before["rss"],
            "anon_before": before["rss_anon"],
            "hwm": after["hwm"],
            "peak_sampled": sampler.peak_rss(),
            "peak_anon": sampler.peak_rss(field=5),
            "rss_after": after["rss"],
            "threads": after["threads"],
            "user": cpu1[0] - cpu0[0],
            "sys": cpu1[1] - cpu0[1],
            "children_cpu": (cpu1[2] + cpu1[3]) - (cpu0[2] + cpu0[3]),
            "wchar": io1.get("wchar", 0) - io0.get("wchar", 0),
            "write_bytes": io1.get("write_bytes", 0) - io0.get("write_bytes", 0),
            "download_done": timeline(samples, t0, t1),
            "registry_cpu": busy1[1] - busy0[1],
            "bench_cpu": busy1[2] - busy0[2],
            "kernel_cpu": busy1[3] - busy0[3],
            "samples": len(samples),
            "image_ref": reply.image_ref,
        })
        # Whatever else ran on the machine meanwhile: busy time minus the
        # daemon, the registry, this process (client and sampler) and the
        # kernel's threads (writeback the daemon causes works there).
        res["other_cpu"] = ((busy1[0] - busy0[0]) - (res["user"] + res["sys"])
                            - res["registry_cpu"] - res["bench_cpu"] - res["kernel_cpu"])
        dl = res["download_done"]
        res["tail_cpu"] = cpu_busy_after(samples, t0 + dl) if dl is not None else None

        status = stub.ImageStatus(api.ImageStatusRequest(image=spec), timeout=benchlib.RPC_TIMEOUT)
        res["image_id"] = status.image.id
        res["image_size"] = status.image.size
        problems = []
        if status.image.id != info["config"]:
            problems.append("ImageStatus after the pull: id %r, want %s"
                            % (status.image.id, info["config"]))
        t2 = time.monotonic()
        stub.RemoveImage(api.RemoveImageRequest(image=spec), timeout=60.0)
        res["remove"] = time.monotonic() - t2
        status = stub.ImageStatus(api.ImageStatusRequest(image=spec), timeout=benchlib.RPC_TIMEOUT)
        if status.image.id:
            problems.append("ImageStatus after RemoveImage still finds %s" % status.image.id)
        listed = stub.ListImages(api.ListImagesRequest(), timeout=benchlib.RPC_TIMEOUT)
        left = [i.id for i in listed.images if i.id == info["config"]]
        if left:
            problems.append("ListImages after RemoveImage still lists it")
        res["problems"] = problems
        res["dir"] = d.dir
        if benchlib.is_crid(name):
            try:
                with open(d.log_path, errors="replace") as f:
                    res["layers"] = crid_layer_times(f.read())
            except OSError:
                res["layers"] = []
    # Daemon stopped, temp dir (store) deleted: the next run starts empty.
    if res["dir"] and os.path.exists(res["dir"]) and not benchlib.keep_dirs():
        res["problems"].append("temp dir %s still there after stop" % res["dir"])
    return res


# ---------------------------------------------------------------- run


def run():
    table = benchlib.Table(TITLE, ["runtime", "PullImage s (median)", "each run s", "MB/s",
                                   "peak RSS MB (median)", "each run MB", "CPU s (median)"])
    detail = benchlib.Table("pull: each run (t = seconds from the PullImage call)",
                            ["run", "wall s", "download done t", "after download s",
                             "CPU user s", "CPU sys s", "CPU %", "CPU after dl s",
                             "registry CPU s", "kernel thr CPU s", "other CPU s",
                             "RSS before MB", "anon before MB", "VmHWM MB", "sampled peak MB",
                             "peak anon MB", "wchar MB", "file writes MB", "RemoveImage s"])
    names = benchlib.runtime_names()
    benchlib.cri_stubs()
    for tool in (regutil.REGISTRY_BIN, regutil.SKOPEO):
        if not os.access(tool, os.X_OK):
            raise benchlib.BenchError("%s is missing (make deps installs it)" % tool)

    t = time.monotonic()
    cached = load_cached_image() is not None
    info = build_image()
    build_note = ("image from the cache %s" % IMAGE_CACHE if cached else
                  "image built into %s in %.0f s" % (IMAGE_CACHE, time.monotonic() - t))
    compressed_mb = info["compressed"] / 1e6

    netns = benchlib.Netns()
    reg = None
    results = {n: [] for n in names}
    failures = []
    drop_err = None
    tmp_parent, spread_err = None, None
    try:
        reg = regutil.Registry(netns.path, benchlib.make_tmpdir("cb-reg."), label="bench")
        reg.start()
        reg.push_skopeo(IMAGE_CACHE, IMAGE_TAG, IMAGE_REPO)
        image_ref = "%s/%s:%s" % (reg.host, IMAGE_REPO, IMAGE_TAG)
        got = reg.manifest_digest(IMAGE_REPO, IMAGE_TAG)
        if got != info["manifest"]:
            raise benchlib.BenchError("registry serves %s as %s, not %s"
                                      % (image_ref, got, info["manifest"]))
        hosts_dir = write_hosts_dir(benchlib.make_tmpdir("cb-hosts."), reg.host)
        warm = warm_paths(reg, names)
        if SPREAD:
            tmp_parent, spread_err = benchlib.make_spread_dir("cb-pull.", keepable=True)

        for i in range(RUNS):
            for name in names:
                drop_err = prepare_run(warm) or drop_err
                try:
                    r = one_pull(name, reg, image_ref, info, hosts_dir, netns.path,
                                 tmp_parent=tmp_parent)
                except Exception as e:  # noqa: BLE001 - report, go on with the others
                    failures.append("%s run %d: %s" % (name, i + 1, e))
                    continue
                r["run"] = i + 1
                results[name].append(r)
                for p in r["problems"]:
                    failures.append("%s run %d: %s" % (name, i + 1, p))
                print("   %s run %d: %.2f s, VmHWM %.1f MB"
                      % (name, i + 1, r["wall"], mb(r["hwm"])), file=sys.stderr, flush=True)

        gz_times = gzip_reference(info)
    finally:
        if reg is not None:
            reg.stop()
        netns.delete()

    for name in names:
        runs = results[name]
        if not runs:
            table.add_row(name, "-", "-", "-", "-", "-", "-")
            continue
        walls = [r["wall"] for r in runs]
        med = benchlib.median(walls)
        table.add_row(name, benchlib.fmt(med, 2), " ".join("%.2f" % w for w in walls),
                      benchlib.fmt(compressed_mb / med, 1),
                      benchlib.fmt(mb(benchlib.median([r["hwm"] for r in runs])), 1),
                      " ".join("%.1f" % mb(r["hwm"]) for r in runs),
                      benchlib.fmt(benchlib.median([r["user"] + r["sys"] for r in runs]), 2))
        for r in runs:
            dl = r["download_done"]
            cpu = r["user"] + r["sys"]
            detail.add_row("%s #%d" % (name, r["run"]), benchlib.fmt(r["wall"], 2),
                           benchlib.fmt(dl, 2),
                           benchlib.fmt(None if dl is None else r["wall"] - dl, 2),
                           benchlib.fmt(r["user"], 2), benchlib.fmt(r["sys"], 2),
                           "%.0f" % (100.0 * cpu / r["wall"]),
                           benchlib.fmt(r["tail_cpu"], 2),
                           benchlib.fmt(r["registry_cpu"], 2), benchlib.fmt(r["kernel_cpu"], 2),
                           benchlib.fmt(r["other_cpu"], 2),
                           benchlib.fmt(mb(r["rss_before"]), 1),
                           benchlib.fmt(mb(r["anon_before"]), 1), benchlib.fmt(mb(r["hwm"]), 1),
                           benchlib.fmt(mb(r["peak_sampled"]), 1),
                           benchlib.fmt(mb(r["peak_anon"]), 1),
                           "%.0f" % (r["wchar"] / 1e6), "%.0f" % (r["write_bytes"] / 1e6),
                           benchlib.fmt(r["remove"], 2))

    gz = benchlib.median(gz_times)
    table.note("image: %d gzip layers, %.1f MB compressed, %.1f MB uncompressed (%.2fx), "
               "%d files, %d dirs, %d symlinks; %s"
               % (len(info["layers"]), compressed_mb, info["uncompressed"] / 1e6,
                  info["uncompressed"] / info["compressed"], info["files"], info["dirs"],
                  info["symlinks"], build_note))
    table.note("layers (compressed/uncompressed MB): %s"
               % ", ".join("%.1f/%.1f" % (layer["size"] / 1e6, layer["uncompressed"] / 1e6)
                           for layer in info["layers"]))
    table.note("gzip -dc of the %d layers in sequence, one core, warm cache: %.2f s median "
               "(%s), %.0f MB/s compressed"
               % (len(info["layers"]), gz, " ".join("%.2f" % x for x in gz_times),
                  compressed_mb / gz))
    if gz:
        table.note("in units of that gzip -dc (this VM's speed drifts): %s; the target %.1f s "
                   "was set at %.2f s of gzip -dc: %.2f"
                   % (", ".join("%s %.2f" % (name, benchlib.median([r["wall"] for r in
                                                                   results[name]]) / gz)
                                for name in names if results[name]),
                      TARGET_SECONDS, REFERENCE_GZIP_SECONDS,
                      TARGET_SECONDS / REFERENCE_GZIP_SECONDS))
    table.note("MB/s = compressed MB / PullImage wall time; peak RSS = VmHWM of the daemon "
               "(fresh per run, so start-up included); CPU = user+sys of the daemon during "
               "the call")
    table.note("each run: fresh daemon on an empty temp dir, %d runs per runtime alternating; "
               "before each: sync, %.0f s pause, page cache dropped, registry blobs and "
               "daemon programs (crid: with its plugins) and their libraries read back; "
               "max_concurrent_downloads 3 (both defaults)"
               % (RUNS, SETTLE_SECONDS))
    table.note("reference %s; targets for crid (issue 14): <= %.1f s, peak RSS < %.0f MB, "
               "CPU <= %.1f s" % (REFERENCE, TARGET_SECONDS, TARGET_RSS_MB, TARGET_CPU_SECONDS))
    if SPREAD and not spread_err:
        table.note("daemon temp dirs are made in %s (chattr +T: each lands in a block group "
                   "of its own, away from the inodes the previous run deleted; "
                   "BENCH_PULL_SPREAD=0 turns this off)" % tmp_parent)
    elif spread_err:
        table.note("could not spread the daemon dirs over block groups: %s" % spread_err)
    else:
        table.note("BENCH_PULL_SPREAD=0: daemon temp dirs directly in /tmp")
    if drop_err:
        table.note("could not drop the page cache: %s" % drop_err)
    detail.note("download done t: when the namespace's loopback traffic (registry <-> "
                "daemon) reached 99.5%% of its total (sampled every %.0f ms); after "
                "download = wall - that; CPU after dl = daemon CPU s from then to the end; "
                "wchar = bytes passed to write(2) and friends (pipes included), file writes "
                "= write_bytes of /proc/PID/io (file data dirtied for the disk)"
                % (SAMPLE_INTERVAL * 1000))
    busy = ["%s #%d (%.2f s)" % (r["name"], r["run"], r["other_cpu"])
            for rs in results.values() for r in rs if r["other_cpu"] > OTHER_CPU_WARN]
    detail.note("kernel thr CPU s = CPU of kernel threads during the call (writeback, "
                "unwritten-extent conversion: crid fsyncs each blob and syncfs()es each "
                "layer before publishing it); other CPU s = CPU the whole machine used "
                "minus the daemon, the registry, this benchmark process and kernel threads")
    if busy:
        table.note("WARNING: something else used CPU during: %s; those wall times are not "
                   "comparable (the CPU s are)" % ", ".join(busy))
    for r in results.get("crid", []):
        if r.get("layers"):
            detail.note("crid #%d layers done at (s after resolving, from its log): %s"
                        % (r["run"], ", ".join("%.2f %s (%.1f MB)" % x for x in r["layers"])))
    children = [r for rs in results.values() for r in rs if r["children_cpu"] > 0]
    if children:
        detail.note("child processes used CPU in: %s" % ", ".join(
            "%s #%d (%.2f s)" % (r["name"], r["run"], r["children_cpu"]) for r in children))
    for f in failures:
        table.fail(f)
    return [table, detail]


if __name__ == "__main__":
    # Builds (or checks) the cached image and prints its description.
    print(json.dumps(build_image(), indent=1))
