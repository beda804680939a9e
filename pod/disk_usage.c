/* The bounded `du` of a directory tree; see disk_usage.h. */
#include "pod/disk_usage.h"
#include "common/util.h"

#include <errno.h>
#include <fts.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Inodes with more than one link, counted once at the end. */
struct linked
{
  dev_t dev;
  ino_t ino;
  uint64_t bytes;
};

struct walk
{
  struct disk_usage usage;
  struct linked *linked;
  size_t n_linked;
};

static int
compare_linked(const void *a, const void *b)
{
  const struct linked *x = a, *y = b;

  if (x->dev != y->dev)
    return x->dev < y->dev ? -1 : 1;
  if (x->ino != y->ino)
    return x->ino < y->ino ? -1 : 1;
  return 0;
}

static void
count(struct walk *walk, const struct stat *st)
{
  uint64_t bytes = (uint64_t)st->st_blocks * 512;

  if (st->st_nlink > 1 && !S_ISDIR(st->st_mode))
    {
      walk->linked = xrealloc(walk->linked, (walk->n_linked + 1) * sizeof *walk->linked);
      walk->linked[walk->n_linked++] = (struct linked){ st->st_dev, st->st_ino, bytes };
      return;
    }
  walk->usage.used_bytes += bytes;
  walk->usage.inodes_used++;
}

static void
count_linked(struct walk *walk)
{
  if (walk->n_linked == 0)
    return;
  qsort(walk->linked, walk->n_linked, sizeof *walk->linked, compare_linked);
  for (size_t i = 0; i < walk->n_linked; i++)
    if (i == 0 || compare_linked(&walk->linked[i - 1], &walk->linked[i]) != 0)
      {
        walk->usage.used_bytes += walk->linked[i].bytes;
        walk->usage.inodes_used++;
      }
}

/* One entry of the walk: false once the walk must end. */
static bool
visit(FTS *fts, FTSENT *entry, struct walk *walk, int *root_errno)
{
  switch (entry->fts_info)
    {
    case FTS_DP: /* a directory again, after its contents */
      return true;
    case FTS_NS:
    case FTS_ERR:
      if (entry->fts_level == 0)
        {
          *root_errno = entry->fts_errno ? entry->fts_errno : EIO;
          return false;
        }
      walk->usage.partial = true;
      return true;
    case FTS_DNR: /* counted, but its contents are unknown */
      walk->usage.partial = true;
      break;
    default:
      break;
    }
  if (entry->fts_info == FTS_D && entry->fts_level >= DISK_USAGE_MAX_DEPTH)
    {
      fts_set(fts, entry, FTS_SKIP);
      walk->usage.partial = true;
    }
  count(walk, entry->fts_statp);
  return true;
}

int
disk_usage_measure(const char *dir, size_t max_entries, const atomic_bool *stop,
                   struct disk_usage *out, struct error *err)
{
  char *paths[] = { (char *)dir, NULL };
  struct walk walk = { 0 };
  size_t entries = 0;
  int root_errno = 0;
  FTSENT *entry;
  FTS *fts = fts_open(paths, FTS_PHYSICAL | FTS_NOCHDIR | FTS_XDEV, NULL);

  if (fts == NULL)
    return error_set_errno(err, errno, "measure %s", dir);
  errno = 0;
  while ((entry = fts_read(fts)) != NULL)
    {
      if (!visit(fts, entry, &walk, &root_errno))
        break;
      if (++entries >= max_entries || (stop && atomic_load(stop)))
        {
          walk.usage.partial = true;
          break;
        }
    }
  if (entry == NULL && errno != 0)
    walk.usage.partial = true;
  fts_close(fts);
  count_linked(&walk);
  free(walk.linked);
  if (root_errno)
    return error_set_errno(err, root_errno, "measure %s", dir);
  *out = walk.usage;
  return 0;
}
