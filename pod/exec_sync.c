#include "pod/exec_sync.h"
#include "pod/container.h"
#include "pod/pod_manager.h"
#include "common/atomic_file.h"
#include "common/children.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "image/layer.h"

#include <dirent.h>
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

#define SPEC_MAX_SIZE (4 * 1024 * 1024)
#define KILL_GRACE_MS 2000
#define TIMED_OUT_MESSAGE "command timed out"

extern char **environ;

void
exec_sync_result_free(struct exec_sync_result *result)
{
  free(result->stdout_data);
  free(result->stderr_data);
  memset(result, 0, sizeof *result);
}

/* The container's process object with args replaced. */
static int
process_json(const char *bundle, char *const *cmd, char **out, struct error *err)
{
  cleanup_free char *config_path = xasprintf("%s/config.json", bundle);
  cleanup_free char *text = NULL;
  cleanup_json struct json_value *config = NULL;
  const struct json_value *process;
  struct json_writer *w;
  size_t len;

  if (read_file(config_path, SPEC_MAX_SIZE, &text, &len, err) < 0)
    return -1;
  config = json_parse(text, len, err);
  if (config == NULL)
    return error_wrap(err, "%s", config_path);
  process = json_object_get(config, "process");
  if (!json_is_object(process))
    return error_set(err, EIO, "%s has no process", config_path);
  w = json_writer_new(false);
  json_begin_object(w);
  for (size_t i = 0; i < json_object_size(process); i++)
    {
      const char *key = json_object_key_at(process, i);
      if (strcmp(key, "args") == 0 || strcmp(key, "terminal") == 0
          || strcmp(key, "consoleSize") == 0)
        continue;
      json_write_key(w, key);
      json_write_value(w, json_object_value_at(process, i));
    }
  json_write_key(w, "terminal");
  json_write_bool(w, false);
  json_write_key(w, "args");
  json_begin_array(w);
  for (size_t i = 0; cmd[i]; i++)
    json_write_string(w, cmd[i]);
  json_end_array(w);
  json_end_object(w);
  *out = json_writer_finish(w, NULL);
  return 0;
}

static int
spawn_runtime(char *const *argv, int out_fd, int err_fd, pid_t *pid, struct error *err)
{
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  sigset_t none, all;
  int rc;

  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  /* A group of its own, so a timeout can kill what the command started. */
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_fd, STDERR_FILENO);
  children_lock();
  rc = posix_spawn(pid, argv[0], &actions, &attr, argv, environ);
  if (rc == 0)
    children_claim(*pid);
  children_unlock();
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0)
    return error_set_errno(err, rc, "run %s", argv[0]);
  return 0;
}

/* The process group of pid, from /proc/<pid>/stat (field 5). */
static pid_t
pgid_of(pid_t pid)
{
  cleanup_free char *path = xasprintf("/proc/%d/stat", (int)pid);
  cleanup_free char *text = NULL;
  struct error ignored = ERROR_INIT;
  const char *p;
  int ppid, pgid;
  char state;

  if (read_file(path, 4096, &text, NULL, &ignored) < 0)
    {
      error_clear(&ignored);
      return 0;
    }
  p = strrchr(text, ')');
  if (p == NULL || sscanf(p + 1, " %c %d %d", &state, &ppid, &pgid) != 3)
    return 0;
  return pgid;
}

/* SIGKILL to the command and to every process in its group or in the
 * runtime's group, except the runtime itself: it must live on to reap
 * the command (which may sit in the container's pid namespace, where no
 * one else would). */
static void
kill_command(pid_t runtime_pid, pid_t command_pid)
{
  cleanup_dir DIR *d = opendir("/proc");
  struct dirent *entry;
  pid_t command_group = command_pid > 0 ? pgid_of(command_pid) : 0;

  if (command_pid > 0)
    kill(command_pid, SIGKILL);
  while (d && (entry = readdir(d)))
    {
      pid_t pid = (pid_t)atoi(entry->d_name), group;
      if (pid <= 0 || pid == runtime_pid)
        continue;
      group = pgid_of(pid);
      if (group == runtime_pid || (command_group > 1 && group == command_group))
        kill(pid, SIGKILL);
    }
}

/* Reads both pipes until they close; at the deadline kills the command,
 * then after a grace the runtime's whole group. */
static void
pump(int out_fd, int err_fd, pid_t runtime_pid, const char *pid_file, int64_t timeout_s,
     struct pipe_capture *out, struct pipe_capture *errc, bool *timed_out)
{
  int64_t deadline = timeout_s > 0 ? time_monotonic_ns() + timeout_s * 1000000000LL : 0;
  int fds_open[2] = { out_fd, err_fd };
  bool grace = false;

  while (fds_open[0] >= 0 || fds_open[1] >= 0)
    {
      struct pollfd fds[2] = { { fds_open[0], POLLIN, 0 }, { fds_open[1], POLLIN, 0 } };
      int n = poll(fds, 2, time_remaining_ms(deadline));
      if (n < 0 && errno == EINTR)
        continue;
      if (n == 0)
        {
          if (!grace)
            {
              *timed_out = true;
              kill_command(runtime_pid, read_pid_file(pid_file));
              grace = true;
              deadline = time_monotonic_ns() + KILL_GRACE_MS * 1000000LL;
              continue;
            }
          /* The runtime did not go: the whole group, runtime included.
           * Whatever still holds the pipes is not worth waiting for. */
          kill(-runtime_pid, SIGKILL);
          break;
        }
      for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0 && fds[i].revents && !pipe_capture_read(i == 0 ? out : errc, fds[i].fd))
          fds_open[i] = -1;
    }
}

static int
run_exec(const char *const *argv, const char *pid_file, int64_t timeout_s,
         struct exec_sync_result *result, struct error *err)
{
  int out[2] = { -1, -1 }, errp[2] = { -1, -1 };
  struct pipe_capture out_capture = { .max = EXEC_SYNC_MAX_OUTPUT };
  struct pipe_capture err_capture = { .max = EXEC_SYNC_MAX_OUTPUT };
  pid_t pid;
  int status = 0;

  if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)
    {
      error_set_errno(err, errno, "pipe");
      goto fail;
    }
  if (spawn_runtime((char *const *)argv, out[1], errp[1], &pid, err) < 0)
    goto fail;
  close(out[1]);
  close(errp[1]);
  out[1] = errp[1] = -1;
  pump(out[0], errp[0], pid, pid_file, timeout_s, &out_capture, &err_capture, &result->timed_out);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  children_release(pid);
  close(out[0]);
  close(errp[0]);
  if (result->timed_out)
    {
      /* As CRI-O answers: the probe fails, the call does not. */
      free(err_capture.data);
      err_capture.data = xstrdup(TIMED_OUT_MESSAGE);
      err_capture.len = strlen(TIMED_OUT_MESSAGE);
      result->exit_code = -1;
    }
  else if (WIFEXITED(status))
    result->exit_code = WEXITSTATUS(status);
  else
    result->exit_code = 128 + WTERMSIG(status);
  result->stdout_data = out_capture.data;
  result->stdout_len = out_capture.len;
  result->stderr_data = err_capture.data;
  result->stderr_len = err_capture.len;
  return 0;

fail:
  for (int i = 0; i < 2; i++)
    {
      if (out[i] >= 0)
        close(out[i]);
      if (errp[i] >= 0)
        close(errp[i]);
    }
  return -1;
}

int
container_exec_sync(struct pod_manager *manager, struct container *container, char *const *cmd,
                    int64_t timeout_s, struct exec_sync_result *result, struct error *err)
{
  const struct pod_runtime_handler *handler;
  cleanup_free char *bundle = container_dir(manager, container->id);
  cleanup_free char *socket_dir = container_socket_dir(manager, container->id);
  cleanup_free char *work = NULL;
  cleanup_free char *process_path = NULL;
  cleanup_free char *pid_file = NULL;
  cleanup_free char *json = NULL;
  struct error cleanup_err = ERROR_INIT;
  const char *argv[12];
  size_t n = 0;
  int ret;

  memset(result, 0, sizeof *result);
  if (cmd == NULL || cmd[0] == NULL)
    return error_set(err, EINVAL, "no command given");
  container_refresh(manager, container);
  pthread_mutex_lock(&container->lock);
  ret = container->removed ? error_set(err, ENOENT, "container %s not found", container->id)
        : container->state != CONTAINER_RUNNING
            ? error_set(err, EINVAL, "container %s is not running", container->id)
            : 0;
  handler = pod_manager_handler(manager, container->handler);
  pthread_mutex_unlock(&container->lock);
  if (ret < 0)
    return -1;
  if (process_json(bundle, cmd, &json, err) < 0)
    return error_wrap(err, "exec in container %s", container->id);
  work = xasprintf("%s/exec-XXXXXX", socket_dir);
  if (mkdtemp(work) == NULL)
    return error_set_errno(err, errno, "exec in container %s: mkdtemp", container->id);
  process_path = xasprintf("%s/process.json", work);
  pid_file = xasprintf("%s/pid", work);
  ret = replace_file(process_path, json, strlen(json), 0600, err);
  if (ret == 0)
    {
      argv[n++] = handler->path;
      argv[n++] = "--root";
      argv[n++] = handler->root;
      argv[n++] = "exec";
      argv[n++] = "--process";
      argv[n++] = process_path;
      argv[n++] = "--pid-file";
      argv[n++] = pid_file;
      argv[n++] = container->id;
      argv[n] = NULL;
      ret = run_exec(argv, pid_file, timeout_s, result, err);
    }
  if (remove_tree(work, &cleanup_err) < 0)
    log_warn("%s", error_message(&cleanup_err));
  error_clear(&cleanup_err);
  if (ret < 0)
    return error_wrap(err, "exec in container %s", container->id);
  log_debug("exec in container %.12s: exit code %d%s", container->id, result->exit_code,
            result->timed_out ? " (timed out)" : "");
  return 0;
}
