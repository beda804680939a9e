/* pod/monitor: starting a container through crid-conmon and reading what
 * it reports: the container's pid or the runtime's error text on the sync
 * pipe, and later the exit status it writes to <state>/exits/<id>. */
#ifndef CRID_POD_MONITOR_H
#define CRID_POD_MONITOR_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"
#include "pod/oci_runtime.h"

struct monitor_launch
{
  const char *conmon_path;
  const struct oci_runtime *runtime;
  const char *id;
  const char *bundle;     /* holds config.json */
  const char *exit_dir;   /* <state>/exits */
  const char *socket_dir; /* <state>/conmon/<id>: attach, ctl, pid files */
  const char *log_path;   /* NULL: output discarded */
  bool terminal;
  bool stdin_open;
  bool stdin_once;
  /* Create and start in one runtime call (`run --detach`). */
  bool start;
};

/* Runs `<runtime> create` through a new monitor; on success the container
 * exists in state "created" (or "running" with launch->start) and
 * *container_pid is its init.  On failure
 * the runtime's own error text is in err. */
int monitor_create(const struct monitor_launch *launch, pid_t *container_pid, pid_t *monitor_pid,
                   struct error *err);

/* Reads <exit_dir>/<id>: 1 and *status when the container has exited, 0
 * when not (yet). */
int monitor_read_exit(const char *exit_dir, const char *id, int *status, struct error *err);

/* The monitor's pid from <socket_dir>/conmon.pid; 0 when unknown. */
pid_t monitor_read_pid(const char *socket_dir);

/* Waits at most timeout_ms for the monitor of socket_dir to end.  It
 * writes the exit file last, so once it has ended nothing of it races
 * with the removal of its files.  A monitor never started, or already
 * gone, is no wait. */
void monitor_wait_ended(const char *socket_dir, int timeout_ms);
/* Removes what a monitor leaves once it has ended: its socket dir and
 * the exit file of id in exit_dir.  Failures are logged. */
void monitor_remove_files(const char *socket_dir, const char *exit_dir, const char *id);

#endif
