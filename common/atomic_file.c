#include "common/atomic_file.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int
fsync_directory_of(const char *path, struct error *err)
{
  cleanup_free char *copy = xstrdup(path);
  const char *dir = dirname(copy);
  cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return error_set_errno(err, errno, "open directory %s", dir);
  if (fsync(fd) < 0)
    return error_set_errno(err, errno, "fsync directory %s", dir);
  return 0;
}

static int
write_and_rename(const char *path, const void *data, size_t len, mode_t mode, bool durable,
                 struct error *err)
{
  cleanup_free char *temporary = xasprintf("%s.tmp.%d", path, (int)gettid());
  cleanup_close int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

  if (fd < 0)
    return error_set_errno(err, errno, "create %s", temporary);
  if (write_all(fd, data, len) < 0 || (durable && fsync(fd) < 0))
    {
      int saved = errno;
      unlink(temporary);
      return error_set_errno(err, saved, "write %s", temporary);
    }
  if (close(steal_fd(&fd)) < 0 || rename(temporary, path) < 0)
    {
      int saved = errno;
      unlink(temporary);
      return error_set_errno(err, saved, "replace %s", path);
    }
  return durable ? fsync_directory_of(path, err) : 0;
}

int
atomic_write_file(const char *path, const void *data, size_t len, mode_t mode, struct error *err)
{
  return write_and_rename(path, data, len, mode, true, err);
}

int
replace_file(const char *path, const void *data, size_t len, mode_t mode, struct error *err)
{
  return write_and_rename(path, data, len, mode, false, err);
}
