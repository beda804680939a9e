/* pod/volume_sources: the bind mount sources crid prepares itself before
 * the runtime sees a container's mounts, the same way for every runtime
 * handler: for a pod with a user namespace an idmapped copy of every
 * volume, for a recursive read-only mount a copy whose every mount is
 * read-only (crun 1.8 has no `rro` option), both at once where both
 * apply.  The copies are detached mount trees moved to
 * <dir>/volumes/<n> (pod/rootfs.h), which the runtime binds like any
 * source; rootfs_unmount(dir) undoes them. */
#ifndef CRID_POD_VOLUME_SOURCES_H
#define CRID_POD_VOLUME_SOURCES_H

#include <stddef.h>

#include "common/error.h"
#include "api.pb-c.h"

struct volume_sources
{
  char **paths; /* per config->mounts[i]: the copy to bind, or NULL: its host_path */
  size_t n;
};

/* userns_fd: the pod's user namespace, -1 without.  A missing source is
 * made a directory first, as for any bind source. */
int volume_sources_prepare(const char *dir, const Runtime__V1__ContainerConfig *config,
                           int userns_fd, struct volume_sources *out, struct error *err);
void volume_sources_clear(struct volume_sources *sources);

#endif
