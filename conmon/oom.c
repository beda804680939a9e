/* conmon/oom.c: did the kernel OOM-kill something in the container's
 * memory cgroup?
 *
 * cgroup v1: an eventfd registered through cgroup.event_control against
 * memory.oom_control wakes the poll loop.  cgroup v2: inotify on
 * memory.events.  In both cases the verdict comes from the oom_kill
 * counter (compared with its value when the watch began), because the
 * wake-ups alone also fire for other reasons (v1 signals the eventfd when
 * the cgroup is removed; v2 memory.events changes for high/max events). */
#include "conmon/conmon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/vfs.h>
#include <unistd.h>

#define CGROUP_ROOT "/sys/fs/cgroup"
#define CGROUP2_MAGIC 0x63677270

/* True when the comma-separated controller list names memory. */
static bool
lists_memory(const char *list, size_t len)
{
  const char *p = list, *end = list + len;

  while (p < end)
    {
      const char *comma = memchr(p, ',', end - p);
      size_t n = (comma ? comma : end) - p;
      if (n == 6 && memcmp(p, "memory", 6) == 0)
        return true;
      p += n + 1;
    }
  return false;
}

char *
cm_cgroup_memory_path(const char *proc_cgroup, bool *v2)
{
  char *unified = NULL;

  for (const char *line = proc_cgroup; *line;)
    {
      const char *eol = strchr(line, '\n');
      const char *end = eol ? eol : line + strlen(line);
      const char *c1 = memchr(line, ':', end - line);
      const char *c2 = c1 ? memchr(c1 + 1, ':', end - c1 - 1) : NULL;

      if (c2 && lists_memory(c1 + 1, c2 - c1 - 1))
        {
          free(unified);
          *v2 = false;
          return cm_xasprintf("%.*s", (int)(end - c2 - 1), c2 + 1);
        }
      if (c2 && c2 == c1 + 1 && c1 - line == 1 && line[0] == '0' && unified == NULL)
        unified = cm_xasprintf("%.*s", (int)(end - c2 - 1), c2 + 1);
      line = eol ? eol + 1 : end;
    }
  *v2 = unified != NULL;
  return unified;
}

static int64_t
read_counter(int fd)
{
  char text[1024];
  ssize_t n = pread(fd, text, sizeof(text) - 1, 0);

  if (n <= 0)
    return -1;
  text[n] = '\0';
  return cm_keyed_value(text, "oom_kill");
}

static char *
read_proc_cgroup(pid_t pid)
{
  char path[64], *text = cm_xmalloc(8192);
  ssize_t n;
  int fd;

  snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  n = fd >= 0 ? cm_read(fd, text, 8191) : -1;
  if (fd >= 0)
    close(fd);
  if (n < 0)
    {
      free(text);
      return NULL;
    }
  text[n] = '\0';
  return text;
}

static int
watch_v1(struct cm_oom *oom, const char *dir)
{
  char *control = cm_xasprintf("%s/memory.oom_control", dir);
  char *event_control = cm_xasprintf("%s/cgroup.event_control", dir);
  char line[32];
  int efd = -1, ecfd = -1, ret = -1;

  oom->counter_fd = open(control, O_RDONLY | O_CLOEXEC);
  if (oom->counter_fd < 0)
    goto out;
  efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ecfd = open(event_control, O_WRONLY | O_CLOEXEC);
  if (efd < 0 || ecfd < 0)
    goto out;
  snprintf(line, sizeof(line), "%d %d", efd, oom->counter_fd);
  if (cm_write_all(ecfd, line, strlen(line)) < 0)
    goto out;
  oom->fd = efd;
  efd = -1;
  ret = 0;
out:
  if (ret < 0)
    cm_msg(CM_WARN, "watch OOM in %s: %s", dir, strerror(errno));
  if (efd >= 0)
    close(efd);
  if (ecfd >= 0)
    close(ecfd);
  free(control);
  free(event_control);
  return ret;
}

static int
watch_v2(struct cm_oom *oom, const char *dir)
{
  char *events = cm_xasprintf("%s/memory.events", dir);
  int ret = -1;

  oom->counter_fd = open(events, O_RDONLY | O_CLOEXEC);
  if (oom->counter_fd < 0)
    goto out;
  oom->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (oom->fd < 0)
    goto out;
  if (inotify_add_watch(oom->fd, events, IN_MODIFY) < 0)
    goto out;
  ret = 0;
out:
  if (ret < 0)
    cm_msg(CM_WARN, "watch OOM through %s: %s", events, strerror(errno));
  free(events);
  return ret;
}

void
cm_oom_watch(struct cm_oom *oom, pid_t pid)
{
  char *text, *path, *dir;
  struct statfs sfs;
  bool v2;

  memset(oom, 0, sizeof(*oom));
  oom->fd = oom->counter_fd = -1;
  oom->base = -1;
  text = read_proc_cgroup(pid);
  path = text ? cm_cgroup_memory_path(text, &v2) : NULL;
  free(text);
  if (path == NULL)
    {
      cm_msg(CM_INFO, "no memory cgroup for pid %d: OOM kills go unnoticed", (int)pid);
      return;
    }
  /* A "0::" line also exists on hybrid hosts; it only carries memory when
   * the root is a real cgroup2 mount. */
  if (v2 && (statfs(CGROUP_ROOT, &sfs) < 0 || sfs.f_type != CGROUP2_MAGIC))
    {
      free(path);
      return;
    }
  oom->v2 = v2;
  dir = v2 ? cm_xasprintf(CGROUP_ROOT "%s", path) : cm_xasprintf(CGROUP_ROOT "/memory%s", path);
  if ((v2 ? watch_v2(oom, dir) : watch_v1(oom, dir)) == 0)
    oom->base = read_counter(oom->counter_fd);
  else
    cm_oom_close(oom);
  free(dir);
  free(path);
}

void
cm_oom_event(struct cm_oom *oom)
{
  char buf[4096];

  /* Drain the eventfd counter or the inotify events, then judge. */
  while (cm_read(oom->fd, buf, sizeof(buf)) > 0)
    ;
  /* Without a counter (kernels before 4.13) the v1 event is all we have. */
  if (oom->base < 0 && !oom->v2)
    oom->killed = true;
  (void)cm_oom_happened(oom);
}

bool
cm_oom_happened(struct cm_oom *oom)
{
  int64_t count;

  if (oom->killed || oom->counter_fd < 0)
    return oom->killed;
  count = read_counter(oom->counter_fd);
  if (oom->base >= 0 && count > oom->base)
    oom->killed = true;
  return oom->killed;
}

void
cm_oom_close(struct cm_oom *oom)
{
  if (oom->fd >= 0)
    close(oom->fd);
  if (oom->counter_fd >= 0)
    close(oom->counter_fd);
  oom->fd = oom->counter_fd = -1;
}
