/* image/import_archive: libarchive's reading of an image archive. */
#include "image/import_archive.h"

#include "common/cleanup.h"
#include "common/util.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COPY_BUFFER (256 * 1024)

struct unpack
{
  const char *archive;
  const char *work;
  struct archive_link **links;
  size_t *n_links;
};

static void
add_link(struct unpack *u, const char *path, const char *target)
{
  struct archive_link *links = xrealloc(*u->links, (*u->n_links + 1) * sizeof *links);

  links[*u->n_links].path = xstrdup(path);
  links[*u->n_links].target = xstrdup(target);
  *u->links = links;
  (*u->n_links)++;
}

static char *
dir_of(const char *path)
{
  const char *slash = strrchr(path, '/');
  return slash ? xstrndup(path, slash - path) : xstrdup("");
}

static int
mkdirs_under(const char *work, const char *path, struct error *err)
{
  cleanup_free char *full = xasprintf("%s/%s", work, path);
  return mkdir_p(full, 0700, err);
}

static int
extract_file(struct unpack *u, struct archive *a, const char *path, struct error *err)
{
  cleanup_free char *parent = dir_of(path);
  cleanup_free char *full = xasprintf("%s/%s", u->work, path);
  cleanup_free char *buffer = xmalloc(COPY_BUFFER);
  cleanup_close int fd = -1;
  la_ssize_t n;

  if (parent[0] && mkdirs_under(u->work, parent, err) < 0)
    return -1;
  fd = open(full, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return error_set_errno(err, errno, "create %s", full);
  while ((n = archive_read_data(a, buffer, COPY_BUFFER)) > 0)
    {
      const char *p = buffer;
      size_t left = n;
      while (left > 0)
        {
          ssize_t w = write(fd, p, left);
          if (w < 0 && errno == EINTR)
            continue;
          if (w < 0)
            return error_set_errno(err, errno, "write %s", full);
          p += w;
          left -= w;
        }
    }
  if (n < 0)
    return error_set(err, EIO, "read %s from the archive: %s", path, archive_error_string(a));
  return 0;
}

static int
extract_entry(struct unpack *u, struct archive *a, struct archive_entry *entry, struct error *err)
{
  const char *name = archive_entry_pathname(entry);
  const char *hardlink = archive_entry_hardlink(entry);
  cleanup_free char *path = name ? archive_path_normalise("", name) : NULL;

  if (path == NULL)
    return 0; /* "./" itself, or a name that would leave the archive */
  if (hardlink)
    {
      cleanup_free char *target = archive_path_normalise("", hardlink);
      if (target)
        add_link(u, path, target);
      return 0;
    }
  switch (archive_entry_filetype(entry))
    {
    case AE_IFDIR:
      return mkdirs_under(u->work, path, err);
    case AE_IFREG:
      return extract_file(u, a, path, err);
    case AE_IFLNK:
      {
        cleanup_free char *dir = dir_of(path);
        const char *to = archive_entry_symlink(entry);
        cleanup_free char *target = to && to[0] != '/' ? archive_path_normalise(dir, to) : NULL;
        if (target)
          add_link(u, path, target);
        return 0;
      }
    default:
      return 0; /* devices and fifos have no place in an image archive */
    }
}

static int
extract(struct unpack *u, struct error *err)
{
  struct archive *a = archive_read_new();
  struct archive_entry *entry;
  int ret = 0, r;

  archive_read_support_format_tar(a);
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_zstd(a);
  if (archive_read_open_filename(a, u->archive, COPY_BUFFER) != ARCHIVE_OK)
    {
      ret = error_set(err, archive_errno(a) > 0 ? archive_errno(a) : EINVAL, "open %s: %s",
                      u->archive, archive_error_string(a));
      archive_read_free(a);
      return ret;
    }
  while ((r = archive_read_next_header(a, &entry)) != ARCHIVE_EOF)
    {
      if (r < ARCHIVE_WARN)
        {
          ret = error_set(err, EINVAL, "read %s: %s", u->archive, archive_error_string(a));
          break;
        }
      if (extract_entry(u, a, entry, err) < 0)
        {
          ret = error_wrap(err, "%s", u->archive);
          break;
        }
    }
  archive_read_free(a);
  return ret;
}

int
import_archive_unpack(const char *archive, const char *work, struct archive_link **links,
                      size_t *n_links, struct error *err)
{
  struct unpack u = { .archive = archive, .work = work, .links = links, .n_links = n_links };

  return extract(&u, err);
}
