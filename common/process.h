/* common/process: running a helper program (CNI plugin, OCI runtime
 * command) to completion with input on stdin, its stdout and stderr
 * captured (each bounded), and a timeout after which it is killed. */
#ifndef CRID_COMMON_PROCESS_H
#define CRID_COMMON_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"

struct process_result
{
  int exit_code;     /* 0..255, or 128+signal when killed by one */
  char *stdout_text; /* NUL-terminated, at most max_output bytes */
  size_t stdout_len;
  char *stderr_text;
  size_t stderr_len;
  int timed_out;
};

struct process_spec
{
  const char *path;  /* absolute path of the program */
  char *const *argv; /* NULL-terminated */
  char *const *envp; /* NULL-terminated; NULL = crid's environment */
  const char *input; /* written to stdin, then closed; NULL = /dev/null */
  size_t input_len;
  int timeout_ms;    /* <= 0: none */
  size_t max_output; /* per stream; excess is discarded */
};

/* Runs spec to completion.  Fails only when the program cannot be started
 * or waited for; its exit status is in result. */
int process_run(const struct process_spec *spec, struct process_result *result, struct error *err);
void process_result_free(struct process_result *result);

/* Waits at most timeout_ms for process pid (any process, not only a
 * child) to end, woken by its pidfd rather than by polling; true once it
 * has ended (a zombie counts as ended). */
bool process_wait_ended(pid_t pid, int timeout_ms);

#endif
