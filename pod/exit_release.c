/* The background release of ended containers; see exit_release.h. */
#include "pod/exit_release.h"
#include "pod/container.h"
#include "common/log.h"
#include "common/util.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct exit_release
{
  struct pod_manager *manager;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  struct container **queue; /* referenced */
  size_t n, capacity;
  bool stopping;
};

static void *
worker(void *arg)
{
  struct exit_release *release = arg;

  pthread_mutex_lock(&release->lock);
  for (;;)
    {
      struct container *container;

      while (release->n == 0 && !release->stopping)
        pthread_cond_wait(&release->wake, &release->lock);
      if (release->stopping)
        break;
      container = release->queue[0];
      memmove(release->queue, release->queue + 1, --release->n * sizeof *release->queue);
      pthread_mutex_unlock(&release->lock);
      container_release_ended(release->manager, container);
      container_unref(container);
      pthread_mutex_lock(&release->lock);
    }
  pthread_mutex_unlock(&release->lock);
  return NULL;
}

struct exit_release *
exit_release_start(struct pod_manager *manager)
{
  struct exit_release *release = xcalloc(1, sizeof *release);
  int rc;

  release->manager = manager;
  pthread_mutex_init(&release->lock, NULL);
  pthread_cond_init(&release->wake, NULL);
  rc = pthread_create(&release->thread, NULL, worker, release);
  if (rc != 0)
    {
      log_warn("no background release of ended containers: %s", strerror(rc));
      pthread_cond_destroy(&release->wake);
      pthread_mutex_destroy(&release->lock);
      free(release);
      return NULL;
    }
  return release;
}

void
exit_release_stop(struct exit_release *release)
{
  if (release == NULL)
    return;
  pthread_mutex_lock(&release->lock);
  release->stopping = true;
  pthread_cond_signal(&release->wake);
  pthread_mutex_unlock(&release->lock);
  pthread_join(release->thread, NULL);
  for (size_t i = 0; i < release->n; i++)
    container_unref(release->queue[i]);
  free(release->queue);
  pthread_cond_destroy(&release->wake);
  pthread_mutex_destroy(&release->lock);
  free(release);
}

void
exit_release_queue(struct exit_release *release, struct container *container)
{
  if (release == NULL)
    return;
  container_ref(container);
  pthread_mutex_lock(&release->lock);
  if (release->n == release->capacity)
    {
      release->capacity = release->capacity ? release->capacity * 2 : 16;
      release->queue = xrealloc(release->queue, release->capacity * sizeof *release->queue);
    }
  release->queue[release->n++] = container;
  pthread_cond_signal(&release->wake);
  pthread_mutex_unlock(&release->lock);
}
