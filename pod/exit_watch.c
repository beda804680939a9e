#include "pod/exit_watch.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

struct exit_watch
{
  int inotify_fd;
  int stop_fd; /* an eventfd: the only way to wake poll for a stop */
  pthread_t thread;
  exit_watch_fn fn;
  void *arg;
};

static void
dispatch(struct exit_watch *watch, const char *buffer, ssize_t len)
{
  for (ssize_t off = 0; off < len;)
    {
      const struct inotify_event *event = (const struct inotify_event *)(buffer + off);
      off += sizeof *event + event->len;
      if (event->mask & IN_Q_OVERFLOW)
        log_warn("exit watch: inotify queue overflow; exits are read at the next status");
      if (event->len == 0 || event->name[0] == '.' || !id_is_valid(event->name))
        continue;
      watch->fn(watch->arg, event->name);
    }
}

static void *
watch_thread(void *arg)
{
  struct exit_watch *watch = arg;
  char buffer[16 * (sizeof(struct inotify_event) + NAME_MAX + 1)]
      __attribute__((aligned(__alignof__(struct inotify_event))));

  for (;;)
    {
      struct pollfd fds[2] = { { watch->inotify_fd, POLLIN, 0 }, { watch->stop_fd, POLLIN, 0 } };
      ssize_t n;
      if (poll(fds, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          log_error("exit watch: poll: %s", strerror(errno));
          return NULL;
        }
      if (fds[1].revents)
        return NULL;
      n = read(watch->inotify_fd, buffer, sizeof buffer);
      if (n < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (n <= 0)
        return NULL;
      dispatch(watch, buffer, n);
    }
}

struct exit_watch *
exit_watch_start(const char *dir, exit_watch_fn fn, void *arg, struct error *err)
{
  struct exit_watch *watch = xcalloc(1, sizeof *watch);

  watch->fn = fn;
  watch->arg = arg;
  watch->stop_fd = eventfd(0, EFD_CLOEXEC);
  watch->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (watch->stop_fd < 0 || watch->inotify_fd < 0)
    {
      error_set_errno(err, errno, "exit watch");
      goto fail;
    }
  if (mkdir_p(dir, 0700, err) < 0)
    goto fail;
  /* IN_CLOSE_WRITE too: a monitor other than crid-conmon may write the
   * file in place. */
  if (inotify_add_watch(watch->inotify_fd, dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
    {
      error_set_errno(err, errno, "watch %s", dir);
      goto fail;
    }
  if (pthread_create(&watch->thread, NULL, watch_thread, watch) != 0)
    {
      error_set(err, EAGAIN, "exit watch thread");
      goto fail;
    }
  return watch;

fail:
  if (watch->stop_fd >= 0)
    close(watch->stop_fd);
  if (watch->inotify_fd >= 0)
    close(watch->inotify_fd);
  free(watch);
  return NULL;
}

void
exit_watch_stop(struct exit_watch *watch)
{
  uint64_t one = 1;

  if (watch == NULL)
    return;
  if (write(watch->stop_fd, &one, sizeof one) < 0)
    log_warn("exit watch: %s", strerror(errno));
  pthread_join(watch->thread, NULL);
  close(watch->stop_fd);
  close(watch->inotify_fd);
  free(watch);
}
