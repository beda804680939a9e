/* common/sd_notify: see sd_notify.h.  The protocol (sd_notify(3)): each
 * message is one datagram of newline-separated assignments, sent to the
 * AF_UNIX datagram socket named by $NOTIFY_SOCKET; an address starting
 * with '@' is in the abstract namespace.  The service manager learns the
 * sender from the kernel's SCM_CREDENTIALS, so a message must come from
 * crid's own process (NotifyAccess=main), which every thread is. */
#include "common/sd_notify.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* A service manager that does not drain its socket must not hold the
 * thread that sends (the signal thread, the watchdog) for long. */
#define SEND_TIMEOUT_SECONDS 2

int
sd_notifier_init(struct sd_notifier *n, const char *socket_path, struct error *err)
{
  size_t len = socket_path ? strlen(socket_path) : 0;

  memset(n, 0, sizeof *n);
  if (len == 0)
    return 0;
  if (socket_path[0] != '/' && socket_path[0] != '@')
    return error_set(err, EINVAL,
                     "NOTIFY_SOCKET=%s: only absolute paths and abstract (@) addresses are "
                     "supported",
                     socket_path);
  /* A path needs its terminating NUL inside sun_path; an abstract name
   * is counted by the address length and needs none. */
  if (len > sizeof n->address.sun_path - (socket_path[0] == '/' ? 1 : 0))
    return error_set(err, EINVAL, "NOTIFY_SOCKET is too long (%zu bytes)", len);
  n->address.sun_family = AF_UNIX;
  memcpy(n->address.sun_path, socket_path, len);
  if (socket_path[0] == '@')
    n->address.sun_path[0] = '\0';
  n->address_len
      = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (socket_path[0] == '/' ? 1 : 0));
  n->enabled = true;
  return 0;
}

/* WATCHDOG_USEC applies only when WATCHDOG_PID is unset or names us: a
 * parent may have passed its own watchdog settings down. */
static int
watchdog_from_environment(struct sd_notifier *n, struct error *err)
{
  const char *usec = getenv("WATCHDOG_USEC");
  const char *pid = getenv("WATCHDOG_PID");
  char *end;
  unsigned long long value;

  if (usec == NULL || usec[0] == '\0')
    return 0;
  if (pid && pid[0] != '\0')
    {
      errno = 0;
      long long owner = strtoll(pid, &end, 10);
      if (errno || *end != '\0' || owner != (long long)getpid())
        return 0;
    }
  errno = 0;
  value = strtoull(usec, &end, 10);
  /* The bound keeps the period's nanoseconds within 64 bits. */
  if (errno || *end != '\0' || value == 0 || usec[0] == '-' || value > UINT64_MAX / 1000)
    return error_set(err, EINVAL, "WATCHDOG_USEC=%s is not a positive number of microseconds",
                     usec);
  n->watchdog_usec = value;
  return 0;
}

int
sd_notifier_from_environment(struct sd_notifier *n, struct error *err)
{
  int ret = sd_notifier_init(n, getenv("NOTIFY_SOCKET"), err);

  if (ret == 0 && n->enabled)
    ret = watchdog_from_environment(n, err);
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
  return ret;
}

int
sd_notify_send(const struct sd_notifier *n, const char *message, struct error *err)
{
  struct timeval timeout = { .tv_sec = SEND_TIMEOUT_SECONDS };
  cleanup_close int fd = -1;
  size_t len = strlen(message);

  if (n == NULL || !n->enabled)
    return 0;
  fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return error_set_errno(err, errno, "notify socket");
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  if (sendto(fd, message, len, MSG_NOSIGNAL, (const struct sockaddr *)&n->address, n->address_len)
      != (ssize_t)len)
    return error_set_errno(err, errno, "send to the notify socket");
  return 0;
}

void
sd_notifyf(const struct sd_notifier *n, const char *fmt, ...)
{
  struct error err = ERROR_INIT;
  cleanup_free char *message = NULL;
  va_list ap;

  if (n == NULL || !n->enabled)
    return;
  va_start(ap, fmt);
  if (vasprintf(&message, fmt, ap) < 0)
    abort();
  va_end(ap);
  if (sd_notify_send(n, message, &err) < 0)
    {
      log_debug("sd_notify: %s", error_message(&err));
      error_clear(&err);
    }
}

uint64_t
sd_monotonic_usec(void)
{
  return (uint64_t)time_monotonic_ns() / 1000;
}

/* ---- watchdog ---- */

struct sd_watchdog
{
  const struct sd_notifier *notifier;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t wake; /* on CLOCK_MONOTONIC: a clock change must not stall pings */
  bool stop;
};

static void *
watchdog_thread(void *arg)
{
  struct sd_watchdog *w = arg;
  /* Half the interval, as sd_watchdog_enabled(3) recommends: one late
   * ping must not be a missed one. */
  uint64_t period_ns = w->notifier->watchdog_usec * 1000 / 2;
  struct timespec next;

  clock_gettime(CLOCK_MONOTONIC, &next);
  pthread_mutex_lock(&w->lock);
  while (!w->stop)
    {
      pthread_mutex_unlock(&w->lock);
      sd_notifyf(w->notifier, "WATCHDOG=1");
      pthread_mutex_lock(&w->lock);
      next.tv_sec += (time_t)(period_ns / 1000000000);
      next.tv_nsec += (long)(period_ns % 1000000000);
      if (next.tv_nsec >= 1000000000)
        {
          next.tv_sec++;
          next.tv_nsec -= 1000000000;
        }
      while (!w->stop && pthread_cond_timedwait(&w->wake, &w->lock, &next) != ETIMEDOUT)
        ;
    }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

struct sd_watchdog *
sd_watchdog_start(const struct sd_notifier *n)
{
  struct sd_watchdog *w;
  pthread_condattr_t attr;
  int rc;

  if (n == NULL || !n->enabled || n->watchdog_usec == 0)
    return NULL;
  w = xcalloc(1, sizeof *w);
  w->notifier = n;
  pthread_mutex_init(&w->lock, NULL);
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&w->wake, &attr);
  pthread_condattr_destroy(&attr);
  rc = pthread_create(&w->thread, NULL, watchdog_thread, w);
  if (rc != 0)
    {
      log_warn("sd_notify: cannot start the watchdog thread: %s", strerror(rc));
      pthread_cond_destroy(&w->wake);
      pthread_mutex_destroy(&w->lock);
      free(w);
      return NULL;
    }
  log_info("systemd watchdog: pinging every %" PRIu64 " ms", n->watchdog_usec / 2000);
  return w;
}

void
sd_watchdog_stop(struct sd_watchdog *w)
{
  if (w == NULL)
    return;
  pthread_mutex_lock(&w->lock);
  w->stop = true;
  pthread_cond_signal(&w->wake);
  pthread_mutex_unlock(&w->lock);
  pthread_join(w->thread, NULL);
  pthread_cond_destroy(&w->wake);
  pthread_mutex_destroy(&w->lock);
  free(w);
}
