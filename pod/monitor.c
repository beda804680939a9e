#include "pod/monitor.h"
#include "common/children.h"
#include "common/process.h"

#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "common/trash.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SYNC_TIMEOUT_MS (4 * 60 * 1000)
#define SYNC_MAX_SIZE (64 * 1024)
#define SYNC_FD 3

extern char **environ;

static void
push(const char **argv, size_t *n, const char *a, const char *b)
{
  argv[(*n)++] = a;
  if (b)
    argv[(*n)++] = b;
}

static void
build_argv(const struct monitor_launch *launch, const char **argv, const char *root_arg,
           const char *pidfile, const char *conmon_pidfile)
{
  size_t n = 0;

  push(argv, &n, launch->conmon_path, NULL);
  push(argv, &n, "--cid", launch->id);
  push(argv, &n, "--bundle", launch->bundle);
  push(argv, &n, "--runtime", launch->runtime->path);
  push(argv, &n, "--runtime-arg", root_arg);
  push(argv, &n, "--exit-dir", launch->exit_dir);
  push(argv, &n, "--socket-dir", launch->socket_dir);
  push(argv, &n, "--container-pidfile", pidfile);
  push(argv, &n, "--conmon-pidfile", conmon_pidfile);
  if (launch->log_path)
    push(argv, &n, "--log-path", launch->log_path);
  if (launch->terminal)
    push(argv, &n, "--terminal", NULL);
  if (launch->stdin_open)
    push(argv, &n, "--stdin", NULL);
  if (launch->stdin_once)
    push(argv, &n, "--stdin-once", NULL);
  if (launch->runtime->systemd_cgroup)
    push(argv, &n, "--systemd-cgroup", NULL);
  if (launch->start)
    push(argv, &n, "--start", NULL);
  argv[n] = NULL;
}

static int
spawn_monitor(const char **argv, int sync_fd, pid_t *pid, struct error *err)
{
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  sigset_t none, all;
  char **env;
  size_t n_env = 0;
  int rc;

  while (environ[n_env])
    n_env++;
  env = xcalloc(n_env + 2, sizeof *env);
  memcpy(env, environ, n_env * sizeof *env);
  env[n_env] = (char *)"_OCI_SYNCPIPE=3";

  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, sync_fd, SYNC_FD);
  posix_spawnattr_init(&attr);
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  children_lock();
  rc = posix_spawn(pid, argv[0], &actions, &attr, (char *const *)argv, env);
  if (rc == 0)
    children_claim(*pid);
  children_unlock();
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  free(env);
  if (rc != 0)
    return error_set_errno(err, rc, "start monitor %s", argv[0]);
  return 0;
}

/* Reads the one sync line, bounded in size and time. */
static int
read_sync_line(int fd, char **out, struct error *err)
{
  cleanup_free char *buffer = xmalloc(SYNC_MAX_SIZE + 1);
  size_t used = 0;
  int64_t deadline = time_monotonic_ns() + SYNC_TIMEOUT_MS * 1000000LL;

  while (used < SYNC_MAX_SIZE && !memchr(buffer, '\n', used))
    {
      struct pollfd pfd = { fd, POLLIN, 0 };
      int left = (int)((deadline - time_monotonic_ns()) / 1000000);
      ssize_t n;
      if (left <= 0)
        return error_set(err, ETIMEDOUT, "no word from the monitor");
      if (poll(&pfd, 1, left) < 0 && errno != EINTR)
        return error_set_errno(err, errno, "poll sync pipe");
      n = read(fd, buffer + used, SYNC_MAX_SIZE - used);
      if (n < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (n <= 0)
        break;
      used += n;
    }
  buffer[used] = '\0';
  if (used == 0)
    return error_set(err, EIO, "the monitor exited without reporting");
  *out = steal_pointer(&buffer);
  return 0;
}

static int
parse_sync(const char *line, pid_t *pid, struct error *err)
{
  cleanup_json struct json_value *value = json_parse(line, strcspn(line, "\n"), err);
  int64_t number;
  const char *message;

  if (value == NULL)
    return error_wrap(err, "monitor sync message");
  if (!json_integer(json_object_get(value, "pid"), &number))
    return error_set(err, EIO, "monitor sync message has no pid");
  if (number <= 0)
    {
      message = json_object_get_string(value, "message");
      return error_set(err, EIO, "%s", message && message[0] ? message : "runtime failed");
    }
  *pid = (pid_t)number;
  return 0;
}

pid_t
monitor_read_pid(const char *socket_dir)
{
  cleanup_free char *path = xasprintf("%s/conmon.pid", socket_dir);
  return read_pid_file(path);
}

void
monitor_wait_ended(const char *socket_dir, int timeout_ms)
{
  process_wait_ended(monitor_read_pid(socket_dir), timeout_ms);
}

int
monitor_create(const struct monitor_launch *launch, pid_t *container_pid, pid_t *monitor_pid,
               struct error *err)
{
  const char *argv[40];
  cleanup_free char *root_arg = xasprintf("--root=%s", launch->runtime->root);
  cleanup_free char *pidfile = xasprintf("%s/pidfile", launch->socket_dir);
  cleanup_free char *conmon_pidfile = xasprintf("%s/conmon.pid", launch->socket_dir);
  cleanup_free char *line = NULL;
  int fds[2];
  pid_t first;
  int status;

  if (mkdir_p(launch->socket_dir, 0700, err) < 0 || mkdir_p(launch->exit_dir, 0700, err) < 0)
    return -1;
  build_argv(launch, argv, root_arg, pidfile, conmon_pidfile);
  if (pipe2(fds, O_CLOEXEC) < 0)
    return error_set_errno(err, errno, "pipe");
  if (spawn_monitor(argv, fds[1], &first, err) < 0)
    {
      close(fds[0]);
      close(fds[1]);
      return -1;
    }
  close(fds[1]);
  /* The first monitor process exits at once, leaving the real one. */
  while (waitpid(first, &status, 0) < 0 && errno == EINTR)
    ;
  children_release(first);
  if (read_sync_line(fds[0], &line, err) < 0 || parse_sync(line, container_pid, err) < 0)
    {
      close(fds[0]);
      return -1;
    }
  close(fds[0]);
  *monitor_pid = read_pid_file(conmon_pidfile);
  log_debug("container %.12s created, pid %d, monitor %d", launch->id, (int)*container_pid,
            (int)*monitor_pid);
  return 0;
}

int
monitor_read_exit(const char *exit_dir, const char *id, int *status, struct error *err)
{
  cleanup_free char *path = xasprintf("%s/%s", exit_dir, id);
  cleanup_free char *text = NULL;
  struct error read_err = ERROR_INIT;

  if (read_file(path, 64, &text, NULL, &read_err) < 0)
    {
      if (read_err.code == ENOENT)
        {
          error_clear(&read_err);
          return 0;
        }
      error_move(err, &read_err);
      return -1;
    }
  *status = atoi(text);
  return 1;
}

void
monitor_remove_files(const char *socket_dir, const char *exit_dir, const char *id)
{
  cleanup_free char *exit_file = xasprintf("%s/%s", exit_dir, id);
  struct error err = ERROR_INIT;

  if (remove_tree(socket_dir, &err) < 0)
    log_warn("%s", error_message(&err));
  error_clear(&err);
  unlink(exit_file);
}
