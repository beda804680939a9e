#include "common/children.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t *claimed;
static unsigned holds;
static void (*orphan_hook)(void *data, pid_t pid, int status);
static void *orphan_hook_data;
static size_t n_claimed, allocated;

void
children_lock(void)
{
  pthread_mutex_lock(&lock);
}

void
children_unlock(void)
{
  pthread_mutex_unlock(&lock);
}

void
children_claim(pid_t pid)
{
  if (n_claimed == allocated)
    {
      allocated = allocated ? allocated * 2 : 16;
      claimed = xrealloc(claimed, allocated * sizeof *claimed);
    }
  claimed[n_claimed++] = pid;
}

void
children_release(pid_t pid)
{
  pthread_mutex_lock(&lock);
  for (size_t i = 0; i < n_claimed; i++)
    if (claimed[i] == pid)
      {
        claimed[i] = claimed[--n_claimed];
        break;
      }
  pthread_mutex_unlock(&lock);
}

static bool
is_claimed(pid_t pid)
{
  for (size_t i = 0; i < n_claimed; i++)
    if (claimed[i] == pid)
      return true;
  return false;
}

/* A zombie whose parent is us, from /proc/<pid>/stat. */
static bool
is_our_zombie(const char *pid_text, pid_t self)
{
  char path[64], buffer[512];
  cleanup_close int fd = -1;
  ssize_t n;
  char *end, state;
  int ppid;

  snprintf(path, sizeof path, "/proc/%s/stat", pid_text);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  n = read(fd, buffer, sizeof buffer - 1);
  if (n <= 0)
    return false;
  buffer[n] = '\0';
  /* The command name may hold spaces and parentheses: parse after the
   * last ')'. */
  end = strrchr(buffer, ')');
  if (end == NULL || sscanf(end + 1, " %c %d", &state, &ppid) != 2)
    return false;
  return state == 'Z' && ppid == self;
}

/* Reaps the unclaimed zombies among the children listed in one thread's
 * /proc/self/task/<tid>/children. */
#define REAPED_MAX 64

struct reaped_entry
{
  pid_t pid;
  int status;
};

/* What one pass reaped, for the hook, called once the lock is let go. */
struct reaped
{
  struct reaped_entry entries[REAPED_MAX];
  size_t n;
};

static void
reap_children_of_task(const char *tid, pid_t self, struct reaped *reaped)
{
  int status;
  char path[64], buffer[8192];
  cleanup_close int fd = -1;
  ssize_t n;
  char *cursor, *end;

  snprintf(path, sizeof path, "/proc/self/task/%s/children", tid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  n = read(fd, buffer, sizeof buffer - 1);
  if (n <= 0)
    return;
  buffer[n] = '\0';
  for (cursor = buffer; *cursor; cursor = end)
    {
      char pid_text[16];
      pid_t pid = (pid_t)strtol(cursor, &end, 10);
      if (end == cursor)
        break;
      snprintf(pid_text, sizeof pid_text, "%d", (int)pid);
      if (pid <= 0 || is_claimed(pid) || !is_our_zombie(pid_text, self))
        continue;
      if (waitpid(pid, &status, WNOHANG) == pid)
        {
          log_debug("reaped orphaned process %d", (int)pid);
          if (reaped->n < REAPED_MAX)
            reaped->entries[reaped->n++] = (struct reaped_entry){ pid, status };
        }
    }
}

void
children_set_orphan_hook(void (*hook)(void *data, pid_t pid, int status), void *data)
{
  pthread_mutex_lock(&lock);
  orphan_hook = hook;
  orphan_hook_data = data;
  pthread_mutex_unlock(&lock);
}

void
children_hold_orphans(void)
{
  pthread_mutex_lock(&lock);
  holds++;
  pthread_mutex_unlock(&lock);
}

void
children_release_orphans(void)
{
  pthread_mutex_lock(&lock);
  holds--;
  pthread_mutex_unlock(&lock);
  children_reap_orphans();
}

/* Only our own children are looked at (a few files, not all of /proc), so
 * the lock that spawns share is held briefly. */
void
children_reap_orphans(void)
{
  cleanup_dir DIR *tasks = opendir("/proc/self/task");
  struct dirent *entry;
  pid_t self = getpid();
  struct reaped reaped = { .n = 0 };
  void (*hook)(void *, pid_t, int);
  void *hook_data;

  if (tasks == NULL)
    return;
  pthread_mutex_lock(&lock);
  while (holds == 0 && (entry = readdir(tasks)))
    if (entry->d_name[0] != '.')
      reap_children_of_task(entry->d_name, self, &reaped);
  hook = orphan_hook;
  hook_data = orphan_hook_data;
  pthread_mutex_unlock(&lock);
  for (size_t i = 0; hook && i < reaped.n; i++)
    hook(hook_data, reaped.entries[i].pid, reaped.entries[i].status);
}
