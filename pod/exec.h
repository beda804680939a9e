/* pod/exec: a process started in a running container, the one path both
 * ExecSync (pod/exec_sync.c) and the streaming exec (crid/stream/) use.
 *
 * `<runtime> exec --detach --process <process.json> --pid-file <pid>
 * [--tty --console-socket <sock>] <id>`: the process object is the
 * container's own (env, user, cwd, capabilities, rlimits, seccomp, ...
 * from its config.json) with args replaced and terminal set as asked.
 * The runtime starts the process and exits; crid, a child subreaper,
 * becomes the process's parent, reaps it and has its real exit status.
 * Without a terminal the process's stdio are pipes crid holds; with one,
 * its pty master, which the runtime hands over on the console socket.
 * The runtime is started as a process group leader and the process stays
 * in that group (a terminal makes it a session leader of its own), so
 * killing the group ends what the command started. */
#ifndef CRID_POD_EXEC_H
#define CRID_POD_EXEC_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"

struct pod_manager;
struct container;

struct exec_request
{
  char *const *cmd; /* NULL-terminated, at least one entry */
  bool tty;
  bool stdin; /* a pipe (or the pty) for the process's input */
};

struct exec_process
{
  pid_t pid;     /* the command, crid's (claimed) child */
  int pidfd;     /* readable once it has ended; -1 on kernels without pidfds */
  int stdin_fd;  /* write end, or -1 (input is /dev/null) */
  int stdout_fd; /* read end; the pty master with a terminal */
  int stderr_fd; /* read end; -1 with a terminal */
  bool tty;
  /* <state>/exec-pids/<pid>: says the process is crid's, so a crid that
   * died with it running kills it at its next start. */
  char *record;
};

/* Starts request in container.  ENOENT for a removed container, EINVAL
 * for one that is not running or a request without a command; the
 * runtime's own message when it refuses.  On failure nothing is left. */
int container_exec_start(struct pod_manager *manager, struct container *container,
                         const struct exec_request *request, struct exec_process *process,
                         struct error *err);

/* SIGKILL to the command's process group and the command; idempotent
 * until it is reaped. */
void exec_process_kill(struct exec_process *process);

/* Waits for the command to end and reaps it: *exit_code is its code, or
 * 128 + the signal that killed it.  Closes nothing. */
int exec_process_wait(struct exec_process *process, int *exit_code, struct error *err);

/* Closes the fds left open (after exec_process_wait, or after a failed
 * start, on the zeroed struct, harmlessly). */
void exec_process_close(struct exec_process *process);

/* At start: kills the exec'd processes a crashed crid left running (their
 * records name them, with their start time so a reused pid is spared)
 * and removes the work directories (process.json, pid file, console
 * socket) of exec starts a crash interrupted. */
void exec_remove_leftovers(const char *state_dir);

#endif
