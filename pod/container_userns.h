/* pod/container_userns: what a container of a pod with a user namespace
 * (pod/userns.h) gets from it: the pod's pinned namespace opened, its
 * request's user namespace options checked against the pod's, the idmap
 * its root file system is mounted with (pod/rootfs.c makes it; its
 * volumes are prepared by pod/volume_sources.h).  For a pod without one, all of it
 * is a no-op. */
#ifndef CRID_POD_CONTAINER_USERNS_H
#define CRID_POD_CONTAINER_USERNS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "pod/rootfs.h"
#include "pod/userns.h"
#include "api.pb-c.h"

struct pod_manager;
struct sandbox;

struct container_userns
{
  struct pod_userns pod;
  char *path; /* <state>/ns/<sandbox-id>/user */
  int fd;     /* open on path; -1 without */
  struct rootfs_idmap idmap;
};

#define CONTAINER_USERNS_INIT                                                                      \
  {                                                                                                \
    .fd = -1                                                                                       \
  }

/* Reads the pod's user namespace and checks config against it; opens the
 * pinned namespace when the pod has one. */
int container_userns_open(const struct pod_manager *manager, const struct sandbox *sandbox,
                          const Runtime__V1__ContainerConfig *config, struct container_userns *out,
                          struct error *err);

/* The idmap for rootfs_mount(); NULL when the pod has no user namespace. */
const struct rootfs_idmap *container_userns_idmap(const struct container_userns *userns);

/* Gives dir (the container's, 0700) to the pod's root, so the runtime
 * can reach the root file system in it. */
int container_userns_own_dir(const struct container_userns *userns, const char *dir,
                             struct error *err);

void container_userns_clear(struct container_userns *userns);

#endif
