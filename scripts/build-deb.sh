#!/bin/sh
# Builds crid_<version>_<arch>.deb from the built tree with dpkg-deb (no
# debhelper): the files are what `make install PREFIX=/usr` installs, the
# configuration files are conffiles (dpkg keeps an operator's changes),
# and the dependencies are the shared libraries the binaries link
# (dpkg-shlibdeps) plus the programs crid runs (scripts/deps.sh run).
#
#   scripts/build-deb.sh VERSION OUTPUT_DIR        (run by `make deb`)
set -e
version=$1
out=$2
if [ -z "$version" ] || [ -z "$out" ]; then
    echo "usage: $0 VERSION OUTPUT_DIR" >&2
    exit 2
fi
command -v dpkg-shlibdeps >/dev/null || {
    echo "build-deb: dpkg-shlibdeps is missing: scripts/deps.sh package" >&2
    exit 1
}
here=$(cd "$(dirname "$0")/.." && pwd)
arch=$(dpkg --print-architecture)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/crid

make -C "$here" --no-print-directory install DESTDIR="$stage" PREFIX=/usr >/dev/null
# Without debug information, as Debian ships binaries.
strip --strip-unneeded "$stage/usr/bin/crid" "$stage/usr/bin/crid-conmon" \
    "$stage"/usr/lib/crid/*.so
install -d "$stage/DEBIAN"

# dpkg-shlibdeps reads the package list of a debian/control in its
# working directory; a minimal one is enough.
install -d "$work/debian"
printf 'Source: crid\n\nPackage: crid\nArchitecture: any\n' >"$work/debian/control"
# The plugins (usr/lib/crid/*.so) bring the pull stack's and the HTTP
# server's libraries: theirs count as much as the binaries'.
shlibs=$(cd "$work" && dpkg-shlibdeps -O -e"$stage/usr/bin/crid" -e"$stage/usr/bin/crid-conmon" \
    -e"$stage/usr/bin/crid-pause" -e"$stage/usr/lib/crid/crid-pull.so" \
    -e"$stage/usr/lib/crid/crid-http.so" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
# One OCI runtime is enough: crun (the default handler) or runc.
programs=""
for p in $("$here/scripts/deps.sh" --list run); do
    case "$p" in
    runc) ;;
    crun) programs="$programs, crun | runc" ;;
    *) programs="$programs, $p" ;;
    esac
done
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)

cat >"$stage/DEBIAN/control" <<EOF
Package: crid
Version: $version
Architecture: $arch
Maintainer: crid developers <crid@localhost>
Installed-Size: $size
Depends: $shlibs$programs
Section: admin
Priority: optional
Homepage: https://kubernetes.io/docs/setup/production-environment/container-runtimes/
Description: Kubernetes CRI runtime in C
 crid serves the Kubernetes Container Runtime Interface (runtime.v1) over
 gRPC on /run/crid/crid.sock: pod sandboxes around a tiny pause process,
 images pulled from registries, containers run by crun or runc, each
 watched by crid-conmon, so containers outlive restarts of the daemon.
EOF
(cd "$stage" && find etc -type f | sed 's|^|/|' | sort) >"$stage/DEBIAN/conffiles"
for script in postinst prerm postrm; do
    install -m 0755 "$here/contrib/deb/$script" "$stage/DEBIAN/$script"
done

mkdir -p "$out"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$out/crid_${version}_${arch}.deb" >/dev/null
echo "$out/crid_${version}_${arch}.deb"
