/* common/process: the one place crid starts child processes.
 * process_spawn() starts a program with the given fds as its stdio (a
 * child claimed from the orphan reaper, see common/children.h), and
 * process_reap() waits for it; process_run() runs a helper program (CNI
 * plugin, OCI runtime command) to completion with input on stdin, its
 * stdout and stderr captured (each bounded), and a timeout after which it
 * is killed; process_fork() runs a function of crid's in a child. */
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

struct process_spawn_spec
{
  const char *path;  /* absolute path of the program */
  char *const *argv; /* NULL-terminated */
  char *const *envp; /* NULL-terminated; NULL = crid's environment */
  int stdin_fd;      /* the child's stdio; -1 = /dev/null */
  int stdout_fd;
  int stderr_fd;
  bool new_group; /* a process group of its own (pgid = pid), so a timeout
                     can kill what it started */
};

/* Starts spec->path with crid's signal mask and dispositions reset.  The
 * child is claimed: the orphan reaper leaves it alone until
 * process_reap(). */
int process_spawn(const struct process_spawn_spec *spec, pid_t *pid, struct error *err);
/* Forks a child that runs fn(arg) and _exits with its return value (a
 * status byte), with crid's signal mask and dispositions reset; claimed
 * like a spawned one, for process_reap().  crid has threads: fn may make
 * only async-signal-safe calls (no malloc, no locks), so whatever it
 * needs is prepared before.  For setup work that needs a process of its
 * own, such as entering a new user namespace (unshare(CLONE_NEWUSER) is
 * refused to a multi-threaded process). */
int process_fork(int (*fn)(void *arg), void *arg, pid_t *pid, struct error *err);
/* Waits for a claimed child (retrying EINTR) and releases it; *status as
 * waitpid() gives it. */
int process_reap(pid_t pid, int *status, struct error *err);
/* A wait status as a shell reports it: the exit code, or 128 + signal. */
int process_exit_code(int status);

/* Runs spec to completion.  Fails only when the program cannot be started
 * or waited for; its exit status is in result. */
int process_run(const struct process_spec *spec, struct process_result *result, struct error *err);
void process_result_free(struct process_result *result);

/* Waits at most timeout_ms for process pid (any process, not only a
 * child) to end, woken by its pidfd rather than by polling; true once it
 * has ended (a zombie counts as ended). */
bool process_wait_ended(pid_t pid, int timeout_ms);
/* Whether pid exists (a zombie too: it has not been reaped). */
bool process_alive(pid_t pid);

#endif
