/* common/cleanup: scope-bound release of memory, fds, DIR* and FILE*.
 *
 * Declare `cleanup_free char *p = NULL;` and p is freed when it leaves
 * scope.  Ownership leaves such a variable only through steal_pointer()
 * or steal_fd(), so every transfer is visible at the call site. */
#ifndef CRID_COMMON_CLEANUP_H
#define CRID_COMMON_CLEANUP_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>

static inline void
cleanup_free_function(void *p)
{
  free(*(void **)p);
}

static inline void
cleanup_close_function(int *fd)
{
  if (*fd >= 0)
    {
      int saved = errno;
      close(*fd);
      errno = saved;
    }
}

static inline void
cleanup_dir_function(DIR **dir)
{
  if (*dir)
    closedir(*dir);
}

static inline void
cleanup_file_function(FILE **file)
{
  if (*file)
    fclose(*file);
}

/* Frees a NULL-terminated array of strings and the array itself. */
static inline void
cleanup_strv_function(char ***strv)
{
  if (*strv)
    {
      for (char **s = *strv; *s; s++)
        free(*s);
      free(*strv);
    }
}

/* Frees a string that held a credential after wiping it, so the secret
 * does not linger in freed memory. */
static inline void
cleanup_secret_function(char **p)
{
  if (*p)
    {
      explicit_bzero(*p, strlen(*p));
      free(*p);
    }
}

#define cleanup_free __attribute__((cleanup(cleanup_free_function)))
#define cleanup_secret __attribute__((cleanup(cleanup_secret_function)))
#define cleanup_close __attribute__((cleanup(cleanup_close_function)))
#define cleanup_dir __attribute__((cleanup(cleanup_dir_function)))
#define cleanup_file __attribute__((cleanup(cleanup_file_function)))
#define cleanup_strv __attribute__((cleanup(cleanup_strv_function)))

static inline void *
steal_pointer_function(void *pp)
{
  void **p = (void **)pp;
  void *value = *p;
  *p = NULL;
  return value;
}

#define steal_pointer(pp) ((__typeof__(*(pp)))steal_pointer_function(pp))

static inline int
steal_fd(int *fd)
{
  int value = *fd;
  *fd = -1;
  return value;
}

#endif
