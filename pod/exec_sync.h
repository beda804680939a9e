/* pod/exec_sync: ExecSync, a command run to completion in a running
 * container (pod/exec.c starts it) with its output captured.
 *
 * Choices:
 *   - stdout and stderr are captured up to EXEC_SYNC_MAX_OUTPUT each; the
 *     excess is read and discarded, no error (CVE-2022-1708);
 *   - a timeout answers like CRI-O: OK with exit_code -1 and stderr
 *     "command timed out", so a probe fails instead of going Unknown.  At
 *     the deadline the command's process group gets SIGKILL;
 *   - once the command has ended, its output gets DRAIN_AFTER_EXIT_MS to
 *     reach EOF (a background child may hold the pipes);
 *   - a non-zero exit is no error. */
#ifndef CRID_POD_EXEC_SYNC_H
#define CRID_POD_EXEC_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define EXEC_SYNC_MAX_OUTPUT (16 * 1024 * 1024)

struct pod_manager;
struct container;

struct exec_sync_result
{
  char *stdout_data;
  size_t stdout_len;
  char *stderr_data;
  size_t stderr_len;
  int exit_code;
  bool timed_out;
};

/* cmd is NULL-terminated; timeout_s 0 = none.  ENOENT for a removed
 * container, EINVAL for one that is not running. */
int container_exec_sync(struct pod_manager *manager, struct container *container, char *const *cmd,
                        int64_t timeout_s, struct exec_sync_result *result, struct error *err);
void exec_sync_result_free(struct exec_sync_result *result);

#endif
