#include "common/dir_watch.h"

#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#define WATCH_EVENTS                                                                               \
  (IN_CREATE | IN_DELETE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_ATTRIB                \
   | IN_DELETE_SELF | IN_MOVE_SELF)

struct dir_watch
{
  int inotify_fd;
  int stop_fd; /* eventfd: written to end the thread */
  pthread_t thread;
  dir_watch_fn changed;
  void *arg;
  char *what;
};

/* Reads one batch of events; false once a watched directory is gone. */
static bool
drain_events(struct dir_watch *watch)
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
  struct dir_watch *watch = object;
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
      watch->changed(watch->arg, false);
    }
  watch->changed(watch->arg, true);
  return NULL;
}

static void
watch_free(struct dir_watch *watch)
{
  if (watch->inotify_fd >= 0)
    close(watch->inotify_fd);
  if (watch->stop_fd >= 0)
    close(watch->stop_fd);
  free(watch->what);
  free(watch);
}

int
dir_watch_start(char *const *dirs, const char *what, dir_watch_fn changed, void *arg,
                struct dir_watch **out, struct error *err)
{
  struct dir_watch *watch = xcalloc(1, sizeof *watch);

  watch->stop_fd = -1;
  watch->changed = changed;
  watch->arg = arg;
  watch->what = xstrdup(what);
  watch->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (watch->inotify_fd < 0)
    {
      watch_free(watch);
      return error_set_errno(err, errno, "watch %s: inotify", what);
    }
  for (size_t i = 0; dirs && dirs[i]; i++)
    if (mkdir_p(dirs[i], 0755, err) < 0
        || (inotify_add_watch(watch->inotify_fd, dirs[i], WATCH_EVENTS) < 0
            && error_set_errno(err, errno, "watch %s %s", what, dirs[i]) < 0))
      {
        watch_free(watch);
        return -1;
      }
  watch->stop_fd = eventfd(0, EFD_CLOEXEC);
  if (watch->stop_fd < 0)
    {
      watch_free(watch);
      return error_set_errno(err, errno, "watch %s: eventfd", what);
    }
  /* Loaded after the watches exist: a file written in between is seen. */
  changed(arg, false);
  if (pthread_create(&watch->thread, NULL, watch_thread, watch) != 0)
    {
      watch_free(watch);
      return error_set(err, EAGAIN, "watch %s: thread", what);
    }
  *out = watch;
  return 0;
}

void
dir_watch_stop(struct dir_watch *watch)
{
  uint64_t one = 1;

  if (watch == NULL)
    return;
  if (write(watch->stop_fd, &one, sizeof one) != sizeof one)
    log_warn("stop the watch of the %s: %s", watch->what, strerror(errno));
  pthread_join(watch->thread, NULL);
  watch_free(watch);
}
