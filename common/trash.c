#include "common/trash.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* ---- removing trees ---------------------------------------------------- */

/* Entering a mount point while removing would delete the mounted files (a
 * leftover bind mount of a host directory, a container's root), so a
 * mount point is refused instead. */
static int
check_not_mount_point(int fd, const dev_t *parent_dev, const char *what, struct error *err)
{
  struct statx stx;

  if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_TYPE, &stx) < 0)
    return error_set_errno(err, errno, "remove %s: statx", what);
  if (((stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)
       && (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
      || (parent_dev && makedev(stx.stx_dev_major, stx.stx_dev_minor) != *parent_dev))
    return error_set(err, EBUSY, "remove %s: a mount point is in the way", what);
  return 0;
}

/* Removes the entries of the directory fd that are not non-empty
 * directories; *subdir gets the name of the first non-empty directory met
 * (NULL when fd is empty now). */
static int
clear_dir_level(int fd, char **subdir, const char *what, struct error *err)
{
  /* a fresh open file description: reading starts at the beginning */
  int dup_fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  cleanup_dir DIR *dir = NULL;
  struct dirent *de;

  *subdir = NULL;
  if (dup_fd < 0)
    return error_set_errno(err, errno, "remove %s: open", what);
  dir = fdopendir(dup_fd);
  if (dir == NULL)
    {
      close(dup_fd);
      return error_set_errno(err, errno, "remove %s: fdopendir", what);
    }
  for (errno = 0; (de = readdir(dir)) != NULL; errno = 0)
    {
      const char *name = de->d_name;

      if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        continue;
      if (de->d_type != DT_DIR)
        {
          if (unlinkat(fd, name, 0) == 0 || errno == ENOENT)
            continue;
          if (errno != EISDIR)
            return error_set_errno(err, errno, "remove %s/.../%.256s", what, name);
        }
      if (unlinkat(fd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
        continue;
      if (errno != ENOTEMPTY && errno != EEXIST)
        return error_set_errno(err, errno, "remove %s/.../%.256s", what, name);
      *subdir = xstrdup(name);
      return 0;
    }
  if (errno != 0)
    return error_set_errno(err, errno, "remove %s: readdir", what);
  return 0;
}

struct removal_frame
{
  char *name; /* of the directory entered, in its parent */
  dev_t dev;  /* of the parent, checked when climbing back */
  ino_t ino;
};

/* Empties the directory fd without following symlinks and without
 * recursion or one fd per level (a layer may nest a few thousand
 * directories deep): it descends with O_NOFOLLOW and climbs back through
 * "..", checking that ".." is the directory it came from.  Once *stop (when
 * not NULL) is true it gives up, with ECANCELED, at the next directory. */
static int
remove_children(int top_fd, const char *what, const atomic_bool *stop, struct error *err)
{
  cleanup_close int fd = fcntl(top_fd, F_DUPFD_CLOEXEC, 3);
  struct removal_frame *stack = NULL;
  size_t depth = 0, allocated = 0;
  int ret = -1;

  if (fd < 0)
    return error_set_errno(err, errno, "remove %s: dup", what);
  for (;;)
    {
      char *subdir = NULL;
      struct removal_frame frame;
      struct stat st;
      int next;

      if (stop && atomic_load(stop))
        {
          error_set(err, ECANCELED, "remove %s: stopped", what);
          goto out;
        }
      if (clear_dir_level(fd, &subdir, what, err) < 0)
        goto out;
      if (subdir)
        {
          if (fstat(fd, &st) < 0)
            {
              free(subdir);
              error_set_errno(err, errno, "remove %s: fstat", what);
              goto out;
            }
          next = openat(fd, subdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (next < 0)
            {
              error_set_errno(err, errno, "remove %s/.../%.256s", what, subdir);
              free(subdir);
              goto out;
            }
          if (check_not_mount_point(next, &st.st_dev, what, err) < 0)
            {
              close(next);
              free(subdir);
              goto out;
            }
          if (depth == allocated)
            {
              allocated = allocated ? allocated * 2 : 16;
              stack = xrealloc(stack, allocated * sizeof *stack);
            }
          stack[depth++] = (struct removal_frame){ subdir, st.st_dev, st.st_ino };
          close(fd);
          fd = next;
          continue;
        }
      if (depth == 0)
        break;
      frame = stack[--depth];
      next = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (next < 0 || fstat(next, &st) < 0 || st.st_dev != frame.dev || st.st_ino != frame.ino)
        {
          if (next >= 0)
            close(next);
          free(frame.name);
          error_set(err, EBUSY, "remove %s: the tree was moved while being removed", what);
          goto out;
        }
      close(fd);
      fd = next;
      if (unlinkat(fd, frame.name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        {
          error_set_errno(err, errno, "remove %s/.../%.256s", what, frame.name);
          free(frame.name);
          goto out;
        }
      free(frame.name);
    }
  ret = 0;
out:
  while (depth > 0)
    free(stack[--depth].name);
  free(stack);
  return ret;
}

int
remove_dir_contents(int dir_fd, const char *what, struct error *err)
{
  return remove_children(dir_fd, what, NULL, err);
}

static int
remove_path(const char *path, const atomic_bool *stop, struct error *err)
{
  cleanup_close int fd = -1;
  struct stat st;

  if (lstat(path, &st) < 0)
    {
      if (errno == ENOENT)
        return 0;
      return error_set_errno(err, errno, "remove %s", path);
    }
  if (!S_ISDIR(st.st_mode))
    {
      if (unlink(path) < 0 && errno != ENOENT)
        return error_set_errno(err, errno, "remove %s", path);
      return 0;
    }
  fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return error_set_errno(err, errno, "remove %s", path);
  if (check_not_mount_point(fd, NULL, path, err) < 0)
    return -1;
  if (remove_children(fd, path, stop, err) < 0)
    return -1;
  if (rmdir(path) < 0 && errno != ENOENT)
    return error_set_errno(err, errno, "remove %s", path);
  return 0;
}

int
remove_tree(const char *path, struct error *err)
{
  return remove_path(path, NULL, err);
}

/* ---- the trash --------------------------------------------------------- */

struct trash
{
  char *dir;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  bool pending;
  bool stopping;
  /* stopping, for the deletion under way: a daemon that stops does not
   * wait for it (the next open finishes it) */
  atomic_bool quit;
  atomic_uint counter;
  pthread_t thread;
};

/* Deletes everything in the trash, until told to quit; errors are logged,
 * the next pass tries again. */
static void
empty(struct trash *trash)
{
  cleanup_dir DIR *d = opendir(trash->dir);
  struct dirent *entry;

  while (d && !atomic_load(&trash->quit) && (entry = readdir(d)))
    {
      cleanup_free char *path = NULL;
      struct error err = ERROR_INIT;

      if (entry->d_name[0] == '.' && (entry->d_name[1] == '\0' || entry->d_name[1] == '.'))
        continue;
      path = xasprintf("%s/%s", trash->dir, entry->d_name);
      if (remove_path(path, &trash->quit, &err) < 0 && err.code != ECANCELED)
        log_warn("trash: %s", error_message(&err));
      error_clear(&err);
    }
}

static void *
worker(void *object)
{
  struct trash *trash = object;

  /* Deleting is nobody's hurry: lowest CPU priority for this thread. */
  setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
  pthread_mutex_lock(&trash->lock);
  trash->pending = true; /* what an earlier run left */
  for (;;)
    {
      while (!trash->pending && !trash->stopping)
        pthread_cond_wait(&trash->wake, &trash->lock);
      if (trash->stopping)
        break;
      trash->pending = false;
      pthread_mutex_unlock(&trash->lock);
      empty(trash);
      pthread_mutex_lock(&trash->lock);
    }
  pthread_mutex_unlock(&trash->lock);
  return NULL;
}

struct trash *
trash_open(const char *dir, struct error *err)
{
  struct trash *trash;

  if (mkdir_p(dir, 0700, err) < 0)
    return NULL;
  trash = xcalloc(1, sizeof *trash);
  trash->dir = xstrdup(dir);
  pthread_mutex_init(&trash->lock, NULL);
  pthread_cond_init(&trash->wake, NULL);
  if (pthread_create(&trash->thread, NULL, worker, trash) != 0)
    abort();
  return trash;
}

void
trash_close(struct trash *trash)
{
  if (trash == NULL)
    return;
  pthread_mutex_lock(&trash->lock);
  trash->stopping = true;
  atomic_store(&trash->quit, true);
  pthread_cond_signal(&trash->wake);
  pthread_mutex_unlock(&trash->lock);
  pthread_join(trash->thread, NULL);
  pthread_mutex_destroy(&trash->lock);
  pthread_cond_destroy(&trash->wake);
  free(trash->dir);
  free(trash);
}

int
trash_discard(struct trash *trash, const char *path, struct error *err)
{
  cleanup_free char *target = NULL;

  if (trash == NULL)
    return remove_tree(path, err);
  target = xasprintf("%s/%d-%u", trash->dir, (int)getpid(), atomic_fetch_add(&trash->counter, 1));
  if (rename(path, target) < 0)
    {
      if (errno == ENOENT)
        return 0;
      return remove_tree(path, err);
    }
  pthread_mutex_lock(&trash->lock);
  trash->pending = true;
  pthread_cond_signal(&trash->wake);
  pthread_mutex_unlock(&trash->lock);
  return 0;
}
