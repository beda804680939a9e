/* pod/disk_usage: how much of its file system a directory tree holds, as
 * `du` counts it: the blocks allocated to every inode below it (st_blocks,
 * so sparse files count what they really use, and a hard-linked inode
 * once) and the number of inodes.  Used for a container's writable layer
 * (its overlay upper directory).
 *
 * The walk is bounded: it never follows symbolic links or crosses into
 * another file system, descends at most DISK_USAGE_MAX_DEPTH levels,
 * stops after max_entries entries and as soon as *stop turns true; a cut
 * walk says so (partial) and its numbers are a lower bound. */
#ifndef CRID_POD_DISK_USAGE_H
#define CRID_POD_DISK_USAGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define DISK_USAGE_MAX_DEPTH 256

struct disk_usage
{
  uint64_t used_bytes;  /* st_blocks * 512 of each inode, once */
  uint64_t inodes_used; /* distinct inodes, the top directory included */
  bool partial;         /* cut short: a bound, a stop, or unreadable parts */
};

/* The usage of the tree at dir.  ENOENT when dir does not exist; an
 * entry that vanishes or cannot be read during the walk only makes the
 * result partial.  stop may be NULL. */
int disk_usage_measure(const char *dir, size_t max_entries, const atomic_bool *stop,
                       struct disk_usage *out, struct error *err);

#endif
