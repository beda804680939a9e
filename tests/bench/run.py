#!/usr/bin/python3
"""Runs crid's benchmarks and prints their tables.

usage: run.py [--list] [NAME ...]

Without names, runs every tests/bench/bench_*.py module in name order;
NAME is a module name with or without the bench_ prefix and .py suffix
("daemon", "bench_daemon", "bench_daemon.py").

A benchmark module has TITLE, a docstring, and run() returning a
benchlib.Table or a list of them.  Benchmarks print figures and never
assert timings; the exit status is non-zero only when a benchmark could
not run.  Environment: BENCH_RUNTIMES=crid,containerd narrows the
runtimes, BENCH_KEEP=1 keeps the daemons' temp dirs, CRID_BIN and
CONTAINERD_BIN override the binaries, BENCH_SANDBOX_HANDLERS and
BENCH_CONTAINER_HANDLERS (default crun,runc) pick the OCI runtime
handlers of the sandbox and container benchmarks, BENCH_STREAM_HANDLERS
(default crun) that of the streaming benchmark, whose sizes are
BENCH_STREAM_BYTES (port-forward, default 1G), BENCH_STREAM_EXECS (200),
BENCH_STREAM_LEAK_EXECS (1000), BENCH_STREAM_SESSIONS (50) and
BENCH_STREAM_CRICTL_RUNS (20; CRICTL_BIN, default /opt/lab/bin/crictl).
The stats benchmark takes BENCH_STATS_HANDLERS (default crun),
BENCH_STATS_CONTAINERS (running containers, 10 per pod; default 100),
BENCH_STATS_COLD_CALLS (8), BENCH_STATS_WARM_CALLS (100),
BENCH_STATS_IDLE_SECONDS (10), BENCH_STATS_CPU_SECONDS (the polled
window, 60) and BENCH_STATS_SUBSCRIBERS (GetContainerEvents calls, 50).
"""

import glob
import importlib
import os
import sys
import time
import traceback

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import benchlib  # noqa: E402


def available():
    return sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(HERE, "bench_*.py")))


def resolve(names):
    known = available()
    out = []
    for n in names:
        base = os.path.basename(n)
        if base.endswith(".py"):
            base = base[:-3]
        if not base.startswith("bench_"):
            base = "bench_" + base
        if base not in known:
            raise SystemExit("run.py: no benchmark %r (known: %s)"
                             % (n, ", ".join(k[len("bench_"):] for k in known)))
        out.append(base)
    return out


def main(argv):
    args = argv[1:]
    if args and args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if args and args[0] in ("-l", "--list"):
        for name in available():
            mod = importlib.import_module(name)
            print("%-16s %s" % (name[len("bench_"):], getattr(mod, "TITLE", "")))
        return 0
    modules = resolve(args) if args else available()
    if not modules:
        print("run.py: no benchmarks found in %s" % HERE)
        return 1

    failed = []
    for name in modules:
        started = time.monotonic()
        print("-- %s" % name, flush=True)
        try:
            mod = importlib.import_module(name)
            result = mod.run()
            tables = result if isinstance(result, (list, tuple)) else [result]
            for t in tables:
                print(t.render(), flush=True)
                if t.failed:
                    failed.append(name)
        except KeyboardInterrupt:
            print("run.py: interrupted", file=sys.stderr)
            return 130
        except benchlib.BenchError as e:
            print("FAILED %s: %s" % (name, e), flush=True)
            failed.append(name)
        except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others
            print("FAILED %s:\n%s" % (name, traceback.format_exc()), flush=True)
            failed.append(name)
        print("(%s: %.1f s)\n" % (name, time.monotonic() - started), flush=True)

    if failed:
        print("benchmarks that could not run: %s" % ", ".join(sorted(set(failed))))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
