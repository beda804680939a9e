/* common/mountinfo: the mount table of /proc/self/mountinfo, parsed once
 * for everything that asks about mounts (cgroup hierarchies, the
 * propagation of a bind mount's source, what crid left mounted).  Lines
 * read "id parent maj:min root mountpoint options [optional...] - fstype
 * source super"; mount points are unescaped (the kernel writes space,
 * tab, newline and backslash as \ooo). */
#ifndef CRID_COMMON_MOUNTINFO_H
#define CRID_COMMON_MOUNTINFO_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

#define MOUNTINFO_MAX_SIZE (16 * 1024 * 1024)

struct mount_entry
{
  char *mountpoint; /* unescaped */
  char *optional;   /* the optional fields ("shared:1 master:3"), "" when none */
  char *fstype;
};

/* In the kernel's order: a mount comes after the one it is mounted on. */
struct mount_table
{
  struct mount_entry *entries;
  size_t n;
};

/* Lines that do not parse are skipped. */
void mount_table_parse(const char *text, struct mount_table *out);
int mount_table_read(struct mount_table *out, struct error *err);
void mount_table_clear(struct mount_table *table);

/* The mount that holds path (the last of the longest mount points that
 * are path or a parent of it), or NULL. */
const struct mount_entry *mount_table_holder(const struct mount_table *table, const char *path);

/* Whether path is mount_point or below it. */
bool mount_path_within(const char *path, const char *mount_point);

#endif
