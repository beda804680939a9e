#!/bin/sh
# Installs the Debian packages crid's build, run and tests need, only the
# missing ones, without questions.  Safe to run again.
set -e
PACKAGES="gcc make pkg-config clang-format clang libclang-rt-14-dev git
libgrpc-dev protobuf-compiler protobuf-c-compiler libprotobuf-c-dev protobuf-compiler-grpc
libssl-dev libcurl4-openssl-dev libarchive-dev libseccomp-dev libcap-dev libyajl-dev libmicrohttpd-dev libgnutls28-dev libyaml-dev
zlib1g-dev libzstd-dev zstd libcmocka-dev
crun runc containernetworking-plugins iproute2 iptables util-linux procps
docker-registry skopeo busybox-static apache2-utils openssl
python3-grpcio python3-protobuf python3-pytest python3-cryptography python3-websocket containerd
prometheus"

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: need root to install packages" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
