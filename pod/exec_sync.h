/* pod/exec_sync: ExecSync, a command run to completion in a running
 * container with its output captured.
 *
 * `<runtime> --root R exec --process <tmp process.json> --pid-file <tmp>
 * <id>`, run by crid itself (no monitor: the call waits anyway).  The
 * process object is the container's own (env, user, cwd, capabilities,
 * rlimits, ... from its config.json) with args replaced and no terminal.
 *
 * Choices:
 *   - stdout and stderr are captured up to EXEC_SYNC_MAX_OUTPUT each; the
 *     excess is read and discarded, no error (CVE-2022-1708);
 *   - a timeout answers like CRI-O: OK with exit_code -1 and stderr
 *     "command timed out", so a probe fails instead of going Unknown.  At
 *     the deadline the command (pid from --pid-file) and every process of
 *     its process group and of the runtime's (the runtime is started as a
 *     group leader, and exec keeps the group) get SIGKILL; the runtime then
 *     reaps the command and exits, and is killed too after a grace;
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
