/* pod/rootfs: a container's root file system: an overlay of its image's
 * layer dirs (read-only lowers, top first) under an upper/ and work/ of
 * its own in <root>/containers/<id>/, mounted at <dir>/rootfs; and, for a
 * pod with a user namespace (pod/userns.h), the idmapped mounts that let
 * its processes see files with the owners they have on disk: the layers
 * and the CRI bind mounts (volumes), never a chown copy.
 *
 * Idmapped and recursively read-only mounts are made here, the same for
 * every runtime handler (crun 1.8 has an `idmap` option but no `rro`,
 * runc 1.1 the other way round): open_tree(OPEN_TREE_CLONE) of the
 * source, mount_setattr(MOUNT_ATTR_IDMAP with the pod's user namespace,
 * and/or MOUNT_ATTR_RDONLY, recursively), then either an overlay lower
 * given as /proc/self/fd/<n> (the detached mount lives as long as the
 * overlay) or move_mount() to <dir>/volumes/<n> for a volume, which the
 * runtime binds like any source (a bind keeps the read-only flag of every
 * mount it copies).  The upper layer stays unmapped on disk, owned by the host ids
 * of the container's root, as containerd's overlay snapshotter keeps it:
 * files a container writes carry its host ids.
 *
 * Also the read-only overlays with no upper dir of image volumes
 * (pod/image_volume.h, at <dir>/image-volumes/<n>) and of pause images
 * (pod/pause_rootfs.h). */
#ifndef CRID_POD_ROOTFS_H
#define CRID_POD_ROOTFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* Where a container's image volumes and prepared volume sources are
 * mounted, below its dir. */
#define ROOTFS_IMAGE_VOLUMES "image-volumes"
#define ROOTFS_VOLUMES "volumes"

/* What a cloned mount tree gets. */
struct rootfs_tree_attrs
{
  int userns_fd;  /* idmapped into this user namespace; -1: not */
  bool read_only; /* every mount of the tree read-only */
};

struct rootfs_idmap
{
  int userns_fd;     /* the pod's user namespace */
  uint32_t root_uid; /* host ids of the container's uid/gid 0: the owner of upper/ */
  uint32_t root_gid;
};

/* Mounts the overlay at <dir>/rootfs; lower_dirs top first,
 * NULL-terminated.  idmap: the layers idmapped into that user namespace;
 * NULL = as they are. */
int rootfs_mount(const char *dir, char *const *lower_dirs, const struct rootfs_idmap *idmap,
                 struct error *err);
/* Mounts lower_dirs (top first) read-only, nosuid and nodev, with no upper
 * dir, at <dir>/image-volumes/<index>, idmapped as the root file system
 * when idmap is given (a pod with a user namespace); *target is that path
 * (caller frees). */
int rootfs_mount_image_volume(const char *dir, size_t index, char *const *lower_dirs,
                              const struct rootfs_idmap *idmap, char **target, struct error *err);
/* Mounts lower_dirs (top first) over bottom, a dir of crid's (empty, or
 * the mount points a root needs), read-only, nosuid and nodev, at target:
 * image volumes and image pause roots. */
int rootfs_mount_layers_read_only(const char *target, char *const *lower_dirs, const char *bottom,
                                  const struct rootfs_idmap *idmap, struct error *err);
/* Unmounts (and removes the mount points of) every image volume under
 * dir, the prepared volumes of <dir>/volumes/, then <dir>/rootfs; not
 * mounted is fine.  Whoever deletes a container's dir calls it first, so
 * that the deletion never walks into a mounted image. */
int rootfs_unmount(const char *dir, struct error *err);

/* Unmounts the prepared volume sources of <dir>/volumes/ (once the
 * runtime has bound them, the container holds copies of its own). */
int rootfs_unmount_volumes(const char *dir, struct error *err);

/* A detached copy of the mount tree at path (submounts included) with
 * attrs, as an fd for move_mount() or /proc/self/fd/<n>.  EINVAL-class
 * errors name a file system that cannot be idmapped. */
int rootfs_clone_tree(const char *path, const struct rootfs_tree_attrs *attrs, int *tree_fd,
                      struct error *err);

/* A copy of a volume's source with attrs at <dir>/volumes/<index> (file
 * or directory, as the source is); *target is its path, the caller's. */
int rootfs_prepare_volume(const char *dir, size_t index, const char *source,
                          const struct rootfs_tree_attrs *attrs, char **target, struct error *err);

#endif
