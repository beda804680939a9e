/* common/atomic_file: state files that are either the old or the new
 * version after a crash, never a mix: write to a temporary name in the same
 * directory, fsync, rename over the target, fsync the directory. */
#ifndef CRID_COMMON_ATOMIC_FILE_H
#define CRID_COMMON_ATOMIC_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"

int atomic_write_file(const char *path, const void *data, size_t len, mode_t mode,
                      struct error *err);

#endif
