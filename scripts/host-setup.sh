#!/bin/sh
# Prepares this host for running containers, and says what it changed.
#
# On a hybrid cgroup host (v1 controllers plus a cgroup2 mount at
# /sys/fs/cgroup/unified), crun refuses to run while any controller sits on
# the cgroup2 mount.  A controller that no v2 cgroup uses can be moved to
# a v1 hierarchy of its own, which is what a systemd host in hybrid mode
# does anyway.
set -e
unified=/sys/fs/cgroup/unified
[ -f "$unified/cgroup.controllers" ] || exit 0
for controller in $(cat "$unified/cgroup.controllers"); do
    target=/sys/fs/cgroup/$controller
    if grep -qw "$controller" "$unified/cgroup.subtree_control" 2>/dev/null; then
        echo "host-setup: controller $controller is enabled in $unified; crun may refuse hybrid cgroups" >&2
        continue
    fi
    mkdir -p "$target"
    mount -t cgroup -o "$controller" cgroup "$target"
    echo "host-setup: moved the $controller controller from the cgroup2 mount to a v1 hierarchy at $target"
done
