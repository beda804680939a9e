#include "pod/exec_sync.h"
#include "pod/container.h"
#include "pod/exec.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* After the command ended, how long its output may still take to reach
 * EOF (a background child can hold the pipes open forever). */
#define DRAIN_AFTER_EXIT_MS 1000
#define TIMED_OUT_MESSAGE "command timed out"
/* The longest timeout honoured: a client may send any int64, and
 * timeout * 1e9 must not overflow into a deadline in the past (which
 * killed the command at once).  A year is forever for a probe. */
#define TIMEOUT_MAX_S (366LL * 24 * 3600)

void
exec_sync_result_free(struct exec_sync_result *result)
{
  free(result->stdout_data);
  free(result->stderr_data);
  memset(result, 0, sizeof *result);
}

/* Reads both pipes until they close, the command ended a while ago, or
 * the deadline passed (then the command's group is killed). */
static void
pump(struct exec_process *process, int64_t timeout_s, struct pipe_capture *out,
     struct pipe_capture *errc, bool *timed_out)
{
  int64_t deadline;
  int fds_open[2] = { process->stdout_fd, process->stderr_fd };
  int pidfd = process->pidfd;

  if (timeout_s > TIMEOUT_MAX_S)
    timeout_s = TIMEOUT_MAX_S;
  deadline = timeout_s > 0 ? time_monotonic_ns() + timeout_s * 1000000000LL : 0;
  while (fds_open[0] >= 0 || fds_open[1] >= 0)
    {
      struct pollfd fds[3]
          = { { fds_open[0], POLLIN, 0 }, { fds_open[1], POLLIN, 0 }, { pidfd, POLLIN, 0 } };
      int n = poll(fds, 3, time_remaining_ms(deadline));
      if (n < 0 && errno == EINTR)
        continue;
      /* poll() waits at most INT_MAX ms (time_remaining_ms): a farther
       * deadline is still ahead. */
      if (n == 0 && time_remaining_ms(deadline) > 0)
        continue;
      if (n == 0)
        {
          if (pidfd < 0 && process->pidfd >= 0)
            break; /* ended, and the output did not close in time */
          *timed_out = true;
          break;
        }
      for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0 && fds[i].revents && !pipe_capture_read(i == 0 ? out : errc, fds[i].fd))
          fds_open[i] = -1;
      if (pidfd >= 0 && fds[2].revents)
        {
          int64_t drain = time_monotonic_ns() + DRAIN_AFTER_EXIT_MS * 1000000LL;
          pidfd = -1;
          if (deadline == 0 || drain < deadline)
            deadline = drain;
        }
    }
}

int
container_exec_sync(struct pod_manager *manager, struct container *container, char *const *cmd,
                    int64_t timeout_s, struct exec_sync_result *result, struct error *err)
{
  struct exec_request request = { .cmd = cmd };
  struct exec_process process;
  struct pipe_capture out_capture = { .max = EXEC_SYNC_MAX_OUTPUT };
  struct pipe_capture err_capture = { .max = EXEC_SYNC_MAX_OUTPUT };
  int ret;

  memset(result, 0, sizeof *result);
  if (container_exec_start(manager, container, &request, &process, err) < 0)
    return -1;
  pump(&process, timeout_s, &out_capture, &err_capture, &result->timed_out);
  if (result->timed_out)
    exec_process_kill(&process);
  ret = exec_process_wait(&process, &result->exit_code, err);
  exec_process_close(&process);
  if (ret < 0)
    {
      free(out_capture.data);
      free(err_capture.data);
      return error_wrap(err, "exec in container %s", container->id);
    }
  if (result->timed_out)
    {
      /* As CRI-O answers: the probe fails, the call does not. */
      free(err_capture.data);
      err_capture.data = xstrdup(TIMED_OUT_MESSAGE);
      err_capture.len = strlen(TIMED_OUT_MESSAGE);
      result->exit_code = -1;
    }
  result->stdout_data = out_capture.data;
  result->stdout_len = out_capture.len;
  result->stderr_data = err_capture.data;
  result->stderr_len = err_capture.len;
  log_debug("exec in container %.12s: exit code %d%s", container->id, result->exit_code,
            result->timed_out ? " (timed out)" : "");
  return 0;
}
