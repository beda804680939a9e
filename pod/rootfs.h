/* pod/rootfs: a container's root file system: an overlay of its image's
 * layer dirs (read-only lowers, top first) under an upper/ and work/ of
 * its own in <root>/containers/<id>/, mounted at <dir>/rootfs. */
#ifndef CRID_POD_ROOTFS_H
#define CRID_POD_ROOTFS_H

#include "common/error.h"

/* Mounts the overlay at <dir>/rootfs; lower_dirs top first,
 * NULL-terminated. */
int rootfs_mount(const char *dir, char *const *lower_dirs, struct error *err);
/* Unmounts <dir>/rootfs; not mounted is fine. */
int rootfs_unmount(const char *dir, struct error *err);

#endif
