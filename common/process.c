#include "common/process.h"
#include "common/children.h"

#include "common/cleanup.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void
close_pipe(int fds[2])
{
  for (int i = 0; i < 2; i++)
    if (fds[i] >= 0)
      {
        close(fds[i]);
        fds[i] = -1;
      }
}

int
process_spawn(const struct process_spawn_spec *spec, pid_t *pid, struct error *err)
{
  const int fds[3] = { spec->stdin_fd, spec->stdout_fd, spec->stderr_fd };
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  sigset_t none, all;
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  int rc;

  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  sigemptyset(&none);
  sigfillset(&all);
  /* crid blocks its signals in every thread; the child must not inherit
   * that mask. */
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  if (spec->new_group)
    {
      posix_spawnattr_setpgroup(&attr, 0);
      flags |= POSIX_SPAWN_SETPGROUP;
    }
  posix_spawnattr_setflags(&attr, flags);
  for (int target = 0; target < 3; target++)
    if (fds[target] >= 0)
      posix_spawn_file_actions_adddup2(&actions, fds[target], target);
    else
      posix_spawn_file_actions_addopen(&actions, target, "/dev/null",
                                       target == 0 ? O_RDONLY : O_WRONLY, 0);
  children_lock();
  rc = posix_spawn(pid, spec->path, &actions, &attr, spec->argv, spec->envp ? spec->envp : environ);
  if (rc == 0)
    children_claim(*pid);
  children_unlock();
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0)
    return error_set_errno(err, rc, "run %s", spec->path);
  return 0;
}

int
process_fork(int (*fn)(void *arg), void *arg, pid_t *pid, struct error *err)
{
  sigset_t none;
  pid_t child;

  sigemptyset(&none);
  children_lock();
  child = fork();
  if (child == 0)
    {
      for (int signo = 1; signo < NSIG; signo++)
        signal(signo, SIG_DFL);
      sigprocmask(SIG_SETMASK, &none, NULL);
      _exit(fn(arg) & 0xff);
    }
  if (child > 0)
    children_claim(child);
  children_unlock();
  if (child < 0)
    return error_set_errno(err, errno, "fork");
  *pid = child;
  return 0;
}

int
process_reap(pid_t pid, int *status, struct error *err)
{
  int ret = 0;

  while (waitpid(pid, status, 0) < 0)
    if (errno != EINTR)
      {
        ret = error_set_errno(err, errno, "wait for process %d", (int)pid);
        break;
      }
  children_release(pid);
  return ret;
}

int
process_exit_code(int status)
{
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Feeds stdin and drains stdout/stderr until both close or time runs out. */
static bool
pump(const struct process_spec *spec, int in_fd, int out_fd, int err_fd, struct pipe_capture *out,
     struct pipe_capture *errb)
{
  int64_t deadline = spec->timeout_ms > 0 ? time_monotonic_ns() + spec->timeout_ms * 1000000LL : 0;
  size_t written = 0;

  while (out_fd >= 0 || err_fd >= 0)
    {
      struct pollfd fds[3]
          = { { out_fd, POLLIN, 0 }, { err_fd, POLLIN, 0 }, { in_fd, POLLOUT, 0 } };
      int n = poll(fds, 3, time_remaining_ms(deadline));
      if (n < 0 && errno == EINTR)
        continue;
      if (n == 0)
        {
          for (int i = 0; i < 3; i++)
            if (fds[i].fd >= 0)
              close(fds[i].fd);
          return false;
        }
      for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0 && fds[i].revents && !pipe_capture_read(i == 0 ? out : errb, fds[i].fd))
          {
            close(fds[i].fd);
            if (i == 0)
              out_fd = -1;
            else
              err_fd = -1;
          }
      if (in_fd >= 0 && fds[2].revents)
        {
          ssize_t w = write(in_fd, spec->input + written, spec->input_len - written);
          if (w > 0)
            written += w;
          if ((w < 0 && errno != EINTR && errno != EAGAIN) || written == spec->input_len)
            {
              close(in_fd);
              in_fd = -1;
            }
        }
    }
  if (in_fd >= 0)
    close(in_fd);
  return true;
}

int
process_run(const struct process_spec *spec, struct process_result *result, struct error *err)
{
  int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 };
  struct pipe_capture out_buffer = { .max = spec->max_output };
  struct pipe_capture err_buffer = { .max = spec->max_output };
  struct process_spawn_spec spawn_spec
      = { .path = spec->path, .argv = spec->argv, .envp = spec->envp };
  pid_t pid;
  int status;

  memset(result, 0, sizeof *result);
  if ((spec->input && pipe2(in, O_CLOEXEC) < 0) || pipe2(out, O_CLOEXEC) < 0
      || pipe2(errp, O_CLOEXEC) < 0)
    {
      int saved = errno;
      close_pipe(in);
      close_pipe(out);
      close_pipe(errp);
      return error_set_errno(err, saved, "pipe");
    }
  spawn_spec.stdin_fd = in[0];
  spawn_spec.stdout_fd = out[1];
  spawn_spec.stderr_fd = errp[1];
  if (process_spawn(&spawn_spec, &pid, err) < 0)
    {
      close_pipe(in);
      close_pipe(out);
      close_pipe(errp);
      return -1;
    }
  close(out[1]);
  close(errp[1]);
  if (in[0] >= 0)
    {
      close(in[0]);
      fcntl(in[1], F_SETFL, O_NONBLOCK);
    }
  if (!pump(spec, in[1], out[0], errp[0], &out_buffer, &err_buffer))
    {
      result->timed_out = 1;
      kill(pid, SIGKILL);
    }
  if (process_reap(pid, &status, err) < 0)
    {
      free(out_buffer.data);
      free(err_buffer.data);
      return error_wrap(err, "%s", spec->path);
    }
  result->exit_code = process_exit_code(status);
  result->stdout_text = out_buffer.data ? out_buffer.data : xstrdup("");
  result->stdout_len = out_buffer.len;
  result->stderr_text = err_buffer.data ? err_buffer.data : xstrdup("");
  result->stderr_len = err_buffer.len;
  return 0;
}

void
process_result_free(struct process_result *result)
{
  free(result->stdout_text);
  free(result->stderr_text);
  result->stdout_text = result->stderr_text = NULL;
}

/* Without pidfds (kernels before 5.3): kill(pid, 0) every millisecond. */
static bool
wait_ended_by_polling(pid_t pid, int64_t deadline)
{
  for (;;)
    {
      char path[64];
      char state = 0;
      cleanup_file FILE *stat = NULL;

      if (kill(pid, 0) < 0 && errno == ESRCH)
        return true;
      snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
      stat = fopen(path, "re");
      if (stat == NULL || fscanf(stat, "%*d (%*[^)]) %c", &state) != 1 || state == 'Z')
        return true;
      if (time_monotonic_ns() >= deadline)
        return false;
      usleep(1000);
    }
}

bool
process_alive(pid_t pid)
{
  return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

bool
process_wait_ended(pid_t pid, int timeout_ms)
{
  int64_t deadline = time_monotonic_ns() + (int64_t)timeout_ms * 1000000LL;
  cleanup_close int fd = -1;

  if (pid <= 0)
    return true;
  fd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0)
    return errno == ESRCH ? true : wait_ended_by_polling(pid, deadline);
  for (;;)
    {
      struct pollfd pfd = { .fd = fd, .events = POLLIN };
      int64_t left_ms = (deadline - time_monotonic_ns()) / 1000000LL;
      int ready;

      if (left_ms < 0)
        left_ms = 0;
      ready = poll(&pfd, 1, (int)left_ms);
      if (ready > 0)
        return true;
      if (ready == 0)
        return false;
      if (errno != EINTR)
        return wait_ended_by_polling(pid, deadline);
    }
}
