#include "netcni/cni_watch.h"
#include "netcni/cni_config.h"

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#define WATCH_EVENTS                                                                               \
  (IN_CREATE | IN_DELETE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_ATTRIB                \
   | IN_DELETE_SELF | IN_MOVE_SELF)

struct cni_watch
{
  char *dir;
  int inotify_fd;
  int stop_fd; /* eventfd: written to end the thread */
  pthread_t thread;
  pthread_mutex_t lock;
  enum cni_watch_state state;
  char *name;    /* READY */
  char *message; /* NOT_READY */
};

static void
set_state(struct cni_watch *watch, enum cni_watch_state state, char *name, char *message)
{
  bool changed;

  pthread_mutex_lock(&watch->lock);
  changed
      = watch->state != state || (name && (watch->name == NULL || strcmp(name, watch->name) != 0));
  watch->state = state;
  free(watch->name);
  free(watch->message);
  watch->name = name;
  watch->message = message;
  pthread_mutex_unlock(&watch->lock);
  if (!changed)
    return;
  if (state == CNI_WATCH_READY)
    log_info("pod network ready: CNI network %s in %s", name, watch->dir);
  else if (state == CNI_WATCH_NOT_READY)
    log_info("pod network not ready: %s", message);
  else
    log_warn("CNI config directory %s is no longer watched; reading it on each Status", watch->dir);
}

static void
reload(struct cni_watch *watch)
{
  struct cni_network_list *network = NULL;
  struct error err = ERROR_INIT;

  if (cni_config_load_default(watch->dir, &network, &err) < 0)
    {
      set_state(watch, CNI_WATCH_NOT_READY, NULL, xstrdup(error_message(&err)));
      error_clear(&err);
      return;
    }
  if (network == NULL)
    {
      set_state(
          watch, CNI_WATCH_NOT_READY, NULL,
          xasprintf("Network plugin returns error: no CNI configuration file in %s", watch->dir));
      return;
    }
  set_state(watch, CNI_WATCH_READY, xstrdup(network->name), NULL);
  cni_network_list_free(network);
}

/* Reads one batch of events; false once the directory itself is gone. */
static bool
drain_events(struct cni_watch *watch)
{
  char buffer[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
  bool watching = true;
  ssize_t n;

  n = read(watch->inotify_fd, buffer, sizeof buffer);
  if (n <= 0)
    return n < 0 && (errno == EAGAIN || errno == EINTR);
  for (char *p = buffer; p < buffer + n;)
    {
      const struct inotify_event *event = (const struct inotify_event *)p;
      if (event->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
        watching = false;
      p += sizeof *event + event->len;
    }
  return watching;
}

static void *
watch_thread(void *object)
{
  struct cni_watch *watch = object;
  struct pollfd fds[2] = { { .fd = watch->inotify_fd, .events = POLLIN },
                           { .fd = watch->stop_fd, .events = POLLIN } };

  for (;;)
    {
      if (poll(fds, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          break;
        }
      if (fds[1].revents)
        return NULL;
      if (!drain_events(watch))
        break;
      reload(watch);
    }
  set_state(watch, CNI_WATCH_LOST, NULL, NULL);
  return NULL;
}

static void
watch_free(struct cni_watch *watch)
{
  if (watch->inotify_fd >= 0)
    close(watch->inotify_fd);
  if (watch->stop_fd >= 0)
    close(watch->stop_fd);
  pthread_mutex_destroy(&watch->lock);
  free(watch->dir);
  free(watch->name);
  free(watch->message);
  free(watch);
}

int
cni_watch_start(const char *dir, struct cni_watch **out, struct error *err)
{
  struct cni_watch *watch = xcalloc(1, sizeof *watch);

  watch->dir = xstrdup(dir);
  watch->stop_fd = -1;
  pthread_mutex_init(&watch->lock, NULL);
  watch->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (watch->inotify_fd < 0)
    {
      watch_free(watch);
      return error_set_errno(err, errno, "watch CNI config directory %s: inotify", dir);
    }
  if (mkdir_p(dir, 0755, err) < 0
      || (inotify_add_watch(watch->inotify_fd, dir, WATCH_EVENTS) < 0
          && error_set_errno(err, errno, "watch CNI config directory %s", dir) < 0))
    {
      watch_free(watch);
      return -1;
    }
  watch->stop_fd = eventfd(0, EFD_CLOEXEC);
  if (watch->stop_fd < 0)
    {
      watch_free(watch);
      return error_set_errno(err, errno, "watch CNI config directory %s: eventfd", dir);
    }
  /* Loaded after the watch exists: a file written in between is seen. */
  reload(watch);
  if (pthread_create(&watch->thread, NULL, watch_thread, watch) != 0)
    {
      watch_free(watch);
      return error_set(err, EAGAIN, "watch CNI config directory %s: thread", dir);
    }
  *out = watch;
  return 0;
}

enum cni_watch_state
cni_watch_state(struct cni_watch *watch, char **name, char **message)
{
  enum cni_watch_state state;

  pthread_mutex_lock(&watch->lock);
  state = watch->state;
  *name = watch->name ? xstrdup(watch->name) : NULL;
  *message = watch->message ? xstrdup(watch->message) : NULL;
  pthread_mutex_unlock(&watch->lock);
  return state;
}

void
cni_watch_stop(struct cni_watch *watch)
{
  uint64_t one = 1;

  if (watch == NULL)
    return;
  if (write(watch->stop_fd, &one, sizeof one) != sizeof one)
    log_warn("stop the CNI config watch: %s", strerror(errno));
  pthread_join(watch->thread, NULL);
  watch_free(watch);
}
