/* image/import_archive: an image archive's tarball (plain, gzip or zstd)
 * unpacked into a work directory, for image/import.  Built into
 * crid-pull.so (libarchive), reached through image/pull_plugin.h.
 *
 * Only directories and regular files are created, every name resolved
 * inside the work directory; symlinks and hardlinks are not created but
 * returned as links between archive paths, for image/import to follow by
 * name, so nothing in the archive can point outside of it.  Devices and
 * fifos are skipped. */
#ifndef CRID_IMAGE_IMPORT_ARCHIVE_H
#define CRID_IMAGE_IMPORT_ARCHIVE_H

#include <stddef.h>

#include "common/error.h"

struct archive_link
{
  char *path;   /* normalised archive path of the link */
  char *target; /* normalised archive path it stands for */
};

/* base (a directory, "" for the top) joined with path, "." and ".."
 * resolved; NULL when it would leave the archive or is empty.  (In
 * image/import.c.) */
char *archive_path_normalise(const char *base, const char *path);

/* Unpacks archive into work (exists); the links found are appended to
 * *links (*n_links long), also when it fails: the caller frees them. */
int import_archive_unpack(const char *archive, const char *work, struct archive_link **links,
                          size_t *n_links, struct error *err);

#endif
