#!/bin/sh
# Installs the Debian packages (bookworm) crid needs, only the missing ones,
# without questions.  Safe to run again.
#
#   scripts/deps.sh [--list] [GROUP...]     no GROUP: every group
#
# Groups, so a node gets what running crid takes and nothing of the tests:
#   run      what crid runs or needs beside it on a node: the OCI runtimes,
#            the CNI plugins and the tools they call; these are also the
#            run-time dependencies of the Debian package (make deb)
#   build    compiler and -dev libraries (which bring the shared libraries
#            crid links); make run installs run + build
#   package  building the Debian package: dpkg-shlibdeps declares the
#            libraries the binaries link
#   test     what make test needs on top: the formatter, clang for the
#            fuzzers, cmocka, Python with gRPC for the integration tests,
#            a local registry, skopeo, busybox for test images, promtool
#   bench    make bench: containerd, measured beside crid
# --list prints the packages of the groups instead of installing them.
set -e

group_packages() {
    case "$1" in
    run) echo "crun runc containernetworking-plugins iproute2 iptables util-linux procps" ;;
    build) echo "gcc make pkg-config git protobuf-c-compiler libprotobuf-c-dev libgrpc-dev
libssl-dev libcurl4-openssl-dev libarchive-dev libseccomp-dev libcap-dev libyajl-dev
libmicrohttpd-dev libgnutls28-dev libyaml-dev zlib1g-dev libisal-dev libzstd-dev" ;;
    package) echo "dpkg-dev binutils" ;;
    test) echo "clang-format clang libclang-rt-14-dev libcmocka-dev protobuf-compiler
protobuf-compiler-grpc python3-grpcio python3-protobuf python3-pytest python3-cryptography
python3-websocket docker-registry skopeo busybox-static apache2-utils openssl zstd prometheus" ;;
    bench) echo "containerd" ;;
    *)
        echo "deps: unknown group '$1' (run, build, package, test, bench)" >&2
        return 1
        ;;
    esac
}

list=false
if [ "$1" = "--list" ]; then
    list=true
    shift
fi
[ $# -gt 0 ] || set -- run build package test bench

packages=""
for group in "$@"; do
    packages="$packages $(group_packages "$group")"
done
if $list; then
    # shellcheck disable=SC2086
    printf '%s\n' $packages
    exit 0
fi

missing=""
for p in $packages; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
    *"install ok installed"*) ;;
    *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0
echo "deps ($*): installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: need root to install packages" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
