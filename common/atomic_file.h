/* common/atomic_file: files that readers see either whole in their old
 * or whole in their new version, never a mix: write to a temporary name in
 * the same directory, rename over the target.  State files also survive a
 * crash of the machine (fsync of the file and of the directory). */
#ifndef CRID_COMMON_ATOMIC_FILE_H
#define CRID_COMMON_ATOMIC_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"

/* For state files. */
int atomic_write_file(const char *path, const void *data, size_t len, mode_t mode,
                      struct error *err);

/* For files derived from state and written again when needed (OCI
 * bundles, a pod's hostname and resolv.conf): no fsync, which costs a
 * millisecond or more per file on the pod start path.  After a machine
 * crash such a file may be empty, and the container using it is gone. */
int replace_file(const char *path, const void *data, size_t len, mode_t mode, struct error *err);

#endif
