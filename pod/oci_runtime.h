/* pod/oci_runtime: the OCI runtime commands crid runs itself (start,
 * kill, delete, state); `create` is run by crid-conmon.  One handler =
 * one runtime binary and its --root directory. */
#ifndef CRID_POD_OCI_RUNTIME_H
#define CRID_POD_OCI_RUNTIME_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"

struct oci_runtime
{
  const char *name; /* handler name, for messages */
  const char *path; /* crun / runc binary */
  const char *root; /* --root */
  bool systemd_cgroup;
};

enum oci_status
{
  OCI_STATUS_UNKNOWN,
  OCI_STATUS_CREATING,
  OCI_STATUS_CREATED,
  OCI_STATUS_RUNNING,
  OCI_STATUS_STOPPED,
  OCI_STATUS_ABSENT, /* the runtime does not know the container */
};

int oci_runtime_start(const struct oci_runtime *runtime, const char *id, struct error *err);
/* Sends signo to the container's init (all processes with all=true). A
 * container that is gone or stopped is not an error. */
int oci_runtime_kill(const struct oci_runtime *runtime, const char *id, int signo, bool all,
                     struct error *err);
/* delete --force; a container the runtime does not know is not an error. */
int oci_runtime_delete(const struct oci_runtime *runtime, const char *id, struct error *err);
int oci_runtime_state(const struct oci_runtime *runtime, const char *id, enum oci_status *status,
                      pid_t *pid, struct error *err);

/* What `<runtime> features` (OCI runtime-spec features document) says
 * about the runtime; all false for a runtime without that command. */
struct oci_runtime_features
{
  bool recursive_read_only; /* the "rro" mount option */
};

int oci_runtime_features(const char *path, struct oci_runtime_features *out, struct error *err);

/* Runtimes guard against CVE-2019-5736 (a container rewriting the host's
 * runtime binary through /proc/self/exe) by re-executing themselves from
 * a safe copy at every call: crun from a read-only bind mount of its
 * binary it makes each time, runc from a memfd copy of itself.  Both skip
 * that when their binary already sits on a read-only mount.  This makes
 * such a mount once, at <dir>/<name>: a read-only bind mount of binary,
 * the same protection for one mount at start instead of a mount or a copy
 * and a second exec per call.  *pinned is the path to run; on failure the
 * caller runs binary as it is. */
int oci_runtime_pin_binary(const char *binary, const char *dir, const char *name, char **pinned,
                           struct error *err);
/* Unmounts and removes a pinned binary; nothing there is fine. */
void oci_runtime_unpin_binary(const char *pinned);

#endif
