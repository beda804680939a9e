#include "pod/trash.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "image/layer.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

struct trash
{
  char *dir;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  bool pending;
  bool stopping;
  atomic_uint counter;
  pthread_t thread;
};

/* Deletes everything in the trash; errors are logged, the next pass
 * tries again. */
static void
empty(struct trash *trash)
{
  cleanup_dir DIR *d = opendir(trash->dir);
  struct dirent *entry;

  while (d && (entry = readdir(d)))
    {
      cleanup_free char *path = NULL;
      struct error err = ERROR_INIT;

      if (entry->d_name[0] == '.' && (entry->d_name[1] == '\0' || entry->d_name[1] == '.'))
        continue;
      path = xasprintf("%s/%s", trash->dir, entry->d_name);
      if (remove_tree(path, &err) < 0)
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
      if (!trash->pending && trash->stopping)
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
