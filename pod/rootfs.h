/* pod/rootfs: the overlay mounts of a container's image layers: its root
 * file system (the image's layer dirs as read-only lowers, top first,
 * under an upper/ and work/ of its own in <root>/containers/<id>/,
 * mounted at <dir>/rootfs) and its image volumes (pod/image_volume.h:
 * read-only overlays with no upper dir at <dir>/image-volumes/<n>), and
 * the same read-only overlays for pause images (pod/pause_rootfs.h). */
#ifndef CRID_POD_ROOTFS_H
#define CRID_POD_ROOTFS_H

#include <stddef.h>

#include "common/error.h"

/* Where a container's image volumes are mounted, below its dir. */
#define ROOTFS_IMAGE_VOLUMES "image-volumes"

/* Mounts the overlay at <dir>/rootfs; lower_dirs top first,
 * NULL-terminated. */
int rootfs_mount(const char *dir, char *const *lower_dirs, struct error *err);
/* Mounts lower_dirs (top first) read-only, nosuid and nodev, with no upper
 * dir, at <dir>/image-volumes/<index>; *target is that path (caller
 * frees). */
int rootfs_mount_image_volume(const char *dir, size_t index, char *const *lower_dirs, char **target,
                              struct error *err);
/* Mounts lower_dirs (top first) over bottom, a dir of crid's (empty, or
 * the mount points a root needs), read-only, nosuid and nodev, at target:
 * image volumes and image pause roots. */
int rootfs_mount_layers_read_only(const char *target, char *const *lower_dirs, const char *bottom,
                                  struct error *err);
/* Unmounts (and removes the mount points of) every image volume under
 * dir, then <dir>/rootfs; not mounted is fine.  Whoever deletes a
 * container's dir calls it first, so that the deletion never walks into a
 * mounted image. */
int rootfs_unmount(const char *dir, struct error *err);

#endif
