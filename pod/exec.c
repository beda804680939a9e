#include "pod/layout.h"
#include "pod/exec.h"
#include "pod/container.h"
#include "pod/oci_runtime.h"
#include "pod/pod_manager.h"
#include "common/atomic_file.h"
#include "common/children.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/process.h"
#include "common/util.h"
#include "common/trash.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define SPEC_MAX_SIZE (4 * 1024 * 1024)
#define RUNTIME_MESSAGE_MAX 4096

/* The container's process object with args and terminal replaced. */
static int
process_json(const char *bundle, char *const *cmd, bool tty, char **out, struct error *err)
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
  json_write_bool(w, tty);
  json_write_key(w, "args");
  json_begin_array(w);
  for (size_t i = 0; cmd[i]; i++)
    json_write_string(w, cmd[i]);
  json_end_array(w);
  json_end_object(w);
  *out = json_writer_finish(w, NULL);
  return 0;
}

/* The console socket the runtime connects to, to hand over the pty
 * master; bound before the runtime starts, accepted after it exits. */
static int
console_listen(const char *path, struct error *err)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  cleanup_close int fd = -1;

  if (strlen(path) >= sizeof addr.sun_path)
    return error_set(err, ENAMETOOLONG, "console socket path %s is too long", path);
  strcpy(addr.sun_path, path);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 1) < 0)
    return error_set_errno(err, errno, "console socket %s", path);
  return steal_fd(&fd);
}

/* The pty master the runtime sent (SCM_RIGHTS) on its connection. */
static int
console_receive(int listen_fd, struct error *err)
{
  cleanup_close int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
  char data[256];
  union
  {
    char buffer[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  struct iovec iov = { data, sizeof data };
  struct msghdr msg = { .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = control.buffer,
                        .msg_controllen = sizeof control.buffer };
  struct cmsghdr *cmsg;
  int fd;

  if (conn < 0)
    return error_set_errno(err, errno, "the runtime did not connect to the console socket");
  if (recvmsg(conn, &msg, MSG_CMSG_CLOEXEC) < 0)
    return error_set_errno(err, errno, "receive the terminal from the runtime");
  cmsg = CMSG_FIRSTHDR(&msg);
  if (cmsg == NULL || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS
      || cmsg->cmsg_len != CMSG_LEN(sizeof(int)))
    return error_set(err, EIO, "the runtime sent no terminal");
  memcpy(&fd, CMSG_DATA(cmsg), sizeof fd);
  return fd;
}

static void
close_fd(int *fd)
{
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}

/* What the runtime wrote to its stderr pipe, for an error message. */
static char *
runtime_message(int fd)
{
  char buffer[RUNTIME_MESSAGE_MAX];
  ssize_t n;
  size_t len = 0;

  fcntl(fd, F_SETFL, O_NONBLOCK);
  while (len < sizeof buffer - 1 && (n = read(fd, buffer + len, sizeof buffer - 1 - len)) > 0)
    len += (size_t)n;
  while (len > 0 && (buffer[len - 1] == '\n' || buffer[len - 1] == ' '))
    len--;
  buffer[len] = '\0';
  return xstrdup(len ? buffer : "no message");
}

struct exec_pipes
{
  int in[2], out[2], errp[2]; /* process stdio; errp also takes the runtime's messages */
};

static void
exec_pipes_close(struct exec_pipes *p)
{
  for (int i = 0; i < 2; i++)
    {
      close_fd(&p->in[i]);
      close_fd(&p->out[i]);
      close_fd(&p->errp[i]);
    }
}

static int
exec_pipes_open(const struct exec_request *request, struct exec_pipes *p, struct error *err)
{
  /* With a terminal the pty carries the process's stdio and the stderr
   * pipe only the runtime's messages. */
  if ((request->stdin && !request->tty && pipe2(p->in, O_CLOEXEC) < 0)
      || (!request->tty && pipe2(p->out, O_CLOEXEC) < 0) || pipe2(p->errp, O_CLOEXEC) < 0)
    return error_set_errno(err, errno, "pipe");
  return 0;
}

/* Runs the runtime's exec to its end; on success the command's pid,
 * claimed.  The orphan reaper is held meanwhile: the command becomes
 * crid's child when the runtime exits, before its pid is known here. */
static int
run_runtime_exec(const char **argv, struct exec_pipes *p, const char *pid_file, pid_t *pid,
                 struct error *err)
{
  struct process_spawn_spec spec = { .path = argv[0],
                                     .argv = (char *const *)argv,
                                     .stdin_fd = p->in[0],
                                     .stdout_fd = p->out[1],
                                     .stderr_fd = p->errp[1],
                                     .new_group = true };
  pid_t runtime_pid;
  int status, ret = 0;

  children_hold_orphans();
  if (process_spawn(&spec, &runtime_pid, err) < 0)
    {
      children_release_orphans();
      return -1;
    }
  /* The write ends now belong to the runtime (and then the command):
   * EOF on the read ends must mean they are gone. */
  close_fd(&p->in[0]);
  close_fd(&p->out[1]);
  close_fd(&p->errp[1]);
  if (process_reap(runtime_pid, &status, err) < 0)
    ret = -1;
  else if (process_exit_code(status) != 0)
    {
      cleanup_free char *message = runtime_message(p->errp[0]);
      ret = error_set(err, EIO, "%s", message);
    }
  else if ((*pid = read_pid_file(pid_file)) <= 0)
    ret = error_set(err, EIO, "the runtime wrote no pid to %s", pid_file);
  else
    {
      children_lock();
      children_claim(*pid);
      children_unlock();
    }
  children_release_orphans();
  return ret;
}

/* Field 22 of /proc/<pid>/stat, the start time in clock ticks: with the
 * pid, it names one process for good.  0 when it is gone. */
static unsigned long long
process_start_time(pid_t pid)
{
  cleanup_free char *path = xasprintf("/proc/%d/stat", (int)pid);
  cleanup_free char *text = NULL;
  struct error ignored = ERROR_INIT;
  unsigned long long start = 0;
  const char *p;

  if (read_file(path, 4096, &text, NULL, &ignored) < 0)
    {
      error_clear(&ignored);
      return 0;
    }
  p = strrchr(text, ')');
  /* After the command: state and 18 more fields, then the start time. */
  if (p == NULL
      || sscanf(p + 2,
                "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                &start)
             != 1)
    return 0;
  return start;
}

static void
write_record(const char *state_dir, struct exec_process *process)
{
  cleanup_free char *dir = xasprintf("%s/exec-pids", state_dir);
  cleanup_free char *text
      = xasprintf("%d %llu", (int)process->pid, process_start_time(process->pid));
  struct error err = ERROR_INIT;

  process->record = xasprintf("%s/%d", dir, (int)process->pid);
  if (mkdir_p(dir, 0700, &err) < 0
      || replace_file(process->record, text, strlen(text), 0600, &err) < 0)
    {
      log_warn("exec: %s", error_message(&err));
      error_clear(&err);
    }
}

static void
remove_record(struct exec_process *process)
{
  if (process->record)
    unlink(process->record);
  free(process->record);
  process->record = NULL;
}

static int
check_running(struct pod_manager *manager, struct container *container, struct oci_runtime *runtime,
              struct error *err)
{
  struct container_snapshot snapshot;
  int ret = container_snapshot_take(manager, container, &snapshot, err);

  if (ret == 0 && snapshot.state != CONTAINER_RUNNING)
    ret = error_set(err, EINVAL, "container %s is not running", container->id);
  if (ret == 0)
    pod_manager_runtime(manager, container->handler, runtime);
  container_snapshot_clear(&snapshot);
  return ret;
}

static int
start_in_dir(struct oci_runtime *runtime, struct container *container, const char *work,
             const char *json, const struct exec_request *request, struct exec_process *process,
             struct error *err)
{
  cleanup_free char *process_path = xasprintf("%s/process.json", work);
  cleanup_free char *pid_file = xasprintf("%s/pid", work);
  cleanup_free char *console_path = xasprintf("%s/console", work);
  struct oci_exec_options options = { process_path, pid_file, NULL };
  struct exec_pipes pipes = { { -1, -1 }, { -1, -1 }, { -1, -1 } };
  cleanup_close int console = -1;
  const char *argv[OCI_RUNTIME_MAX_ARGS];
  int ret = -1;

  if (replace_file(process_path, json, strlen(json), 0600, err) < 0)
    return -1;
  if (request->tty)
    {
      console = console_listen(console_path, err);
      if (console < 0)
        return -1;
      options.console_socket = console_path;
    }
  if (exec_pipes_open(request, &pipes, err) < 0)
    goto out;
  oci_runtime_exec_argv(runtime, container->id, &options, argv);
  if (run_runtime_exec(argv, &pipes, pid_file, &process->pid, err) < 0)
    goto out;
  if (request->tty)
    {
      process->stdout_fd = console_receive(console, err);
      if (process->stdout_fd < 0)
        {
          kill(process->pid, SIGKILL);
          exec_process_wait(process, &(int){ 0 }, &(struct error)ERROR_INIT);
          goto out;
        }
      process->stdin_fd = request->stdin ? dup(process->stdout_fd) : -1;
    }
  else
    {
      process->stdin_fd = steal_fd(&pipes.in[1]);
      process->stdout_fd = steal_fd(&pipes.out[0]);
      process->stderr_fd = steal_fd(&pipes.errp[0]);
    }
  process->pidfd = (int)syscall(SYS_pidfd_open, process->pid, 0);
  ret = 0;
out:
  exec_pipes_close(&pipes);
  return ret;
}

int
container_exec_start(struct pod_manager *manager, struct container *container,
                     const struct exec_request *request, struct exec_process *process,
                     struct error *err)
{
  cleanup_free char *bundle = layout_container_dir(manager, container->id);
  cleanup_free char *exec_root = xasprintf("%s/exec", manager->options.state_dir);
  cleanup_free char *work = NULL;
  cleanup_free char *json = NULL;
  struct error cleanup_err = ERROR_INIT;
  struct oci_runtime runtime;
  int ret;

  memset(process, 0, sizeof *process);
  process->pidfd = process->stdin_fd = process->stdout_fd = process->stderr_fd = -1;
  process->tty = request->tty;
  if (request->cmd == NULL || request->cmd[0] == NULL)
    return error_set(err, EINVAL, "no command given");
  if (check_running(manager, container, &runtime, err) < 0)
    return -1;
  if (process_json(bundle, request->cmd, request->tty, &json, err) < 0)
    return error_wrap(err, "exec in container %s", container->id);
  /* Short paths: the console socket's must fit a sockaddr_un. */
  work = xasprintf("%s/XXXXXX", exec_root);
  if (mkdir_p(exec_root, 0700, err) < 0)
    return error_wrap(err, "exec in container %s", container->id);
  if (mkdtemp(work) == NULL)
    return error_set_errno(err, errno, "exec in container %s: mkdtemp", container->id);
  ret = start_in_dir(&runtime, container, work, json, request, process, err);
  if (ret == 0)
    write_record(manager->options.state_dir, process);
  if (remove_tree(work, &cleanup_err) < 0)
    log_warn("%s", error_message(&cleanup_err));
  error_clear(&cleanup_err);
  if (ret < 0)
    return error_wrap(err, "exec in container %s", container->id);
  return 0;
}

void
exec_process_kill(struct exec_process *process)
{
  pid_t group;

  if (process->pid <= 0)
    return;
  group = getpgid(process->pid);
  if (group > 1)
    kill(-group, SIGKILL);
  kill(process->pid, SIGKILL);
}

int
exec_process_wait(struct exec_process *process, int *exit_code, struct error *err)
{
  int status;

  if (process->pid <= 0)
    return error_set(err, ECHILD, "no exec process to wait for");
  if (process_reap(process->pid, &status, err) < 0)
    return -1;
  process->pid = 0;
  remove_record(process);
  *exit_code = process_exit_code(status);
  return 0;
}

void
exec_process_close(struct exec_process *process)
{
  free(process->record);
  process->record = NULL;
  close_fd(&process->pidfd);
  close_fd(&process->stdin_fd);
  close_fd(&process->stdout_fd);
  close_fd(&process->stderr_fd);
}

/* The exec'd processes of a crid that died: killed, as their timeout
 * or their client's departure would have. */
static void
kill_recorded(const char *dir)
{
  cleanup_dir DIR *d = opendir(dir);
  struct dirent *entry;

  while (d && (entry = readdir(d)))
    {
      cleanup_free char *path = xasprintf("%s/%s", dir, entry->d_name);
      cleanup_free char *text = NULL;
      struct error ignored = ERROR_INIT;
      unsigned long long start = 0;
      int pid = 0;

      if (entry->d_name[0] == '.')
        continue;
      if (read_file(path, 256, &text, NULL, &ignored) == 0
          && sscanf(text, "%d %llu", &pid, &start) == 2 && pid > 1 && start != 0
          && process_start_time(pid) == start)
        {
          pid_t group = getpgid(pid);
          log_info("recovery: killing exec'd process %d that a crashed crid left", pid);
          if (group > 1)
            kill(-group, SIGKILL);
          kill(pid, SIGKILL);
        }
      error_clear(&ignored);
      unlink(path);
    }
}

void
exec_remove_leftovers(const char *state_dir)
{
  cleanup_free char *exec_root = xasprintf("%s/exec", state_dir);
  cleanup_free char *records = xasprintf("%s/exec-pids", state_dir);
  struct error err = ERROR_INIT;

  kill_recorded(records);

  if (remove_tree(exec_root, &err) < 0)
    log_warn("remove what interrupted execs left: %s", error_message(&err));
  error_clear(&err);
}
