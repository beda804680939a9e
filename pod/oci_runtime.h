/* pod/oci_runtime: every OCI runtime command line crid builds (start,
 * kill, delete, state, list, update, exec, features); `create` and `run` are run
 * by crid-conmon from the runtime path and arguments crid gives it.  One
 * handler = one runtime binary and its --root directory. */
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
/* `update --resources -` with the OCI LinuxResources JSON on stdin. */
int oci_runtime_update(const struct oci_runtime *runtime, const char *id,
                       const char *resources_json, struct error *err);

#define OCI_RUNTIME_MAX_ARGS 24

struct oci_exec_options
{
  const char *process_path;   /* the OCI process object (JSON) */
  const char *pid_file;       /* where the runtime writes the process's pid */
  const char *console_socket; /* with a terminal: where the runtime sends the pty
                                 master; NULL: no terminal */
};

/* The command line of `<runtime> exec --detach` (the process is left to
 * its caller, the subreaper, once the runtime exits; its stdio is the
 * runtime's, or the pty).  argv has room for OCI_RUNTIME_MAX_ARGS; returns
 * the count, argv NULL-terminated, pointing at the strings given. */
size_t oci_runtime_exec_argv(const struct oci_runtime *runtime, const char *id,
                             const struct oci_exec_options *options, const char **argv);

int oci_runtime_state(const struct oci_runtime *runtime, const char *id, enum oci_status *status,
                      pid_t *pid, struct error *err);

/* The ids of every container the runtime keeps state for (`list`);
 * *ids is NULL-terminated, the caller's (strv_free). */
int oci_runtime_list(const struct oci_runtime *runtime, char ***ids, struct error *err);

/* What `<runtime> features` (OCI runtime-spec features document) says
 * about the runtime; all false for a runtime without that command. */
struct oci_runtime_features
{
  bool recursive_read_only; /* the "rro" mount option */
  /* Joins a user namespace by path with the mappings given: every OCI
   * runtime does, unless its features document lists namespaces without
   * "user".  pod_manager_new() clears it where the host cannot give pods
   * one (pod/userns.h). */
  bool user_namespaces;
};

int oci_runtime_features(const char *path, struct oci_runtime_features *out, struct error *err);

/* Runtimes guard against CVE-2019-5736 (a container rewriting the host's
 * runtime binary through /proc/self/exe) by re-executing themselves from
 * a safe copy at every call: crun from a read-only bind mount of its
 * binary it makes each time, runc 1.1's `runc init` from a read-only bind
 * mount of /proc/self/exe (a memfd copy where it cannot mount).  crun skips
 * that when its binary already sits on a read-only mount; runc 1.1 only
 * for a sealed memfd, or on a read-only mount with an environment variable
 * it does not hand on to `runc init`, so it still copies (strace shows it).
 * This makes such a mount once, at <dir>/<name>: a read-only bind mount of
 * binary, the same protection for one mount at start instead of a mount
 * and a second exec per crun call.  *pinned is the path to run; on failure
 * the caller runs binary as it is. */
int oci_runtime_pin_binary(const char *binary, const char *dir, const char *name, char **pinned,
                           struct error *err);
/* Unmounts and removes a pinned binary; nothing there is fine. */
void oci_runtime_unpin_binary(const char *pinned);

#endif
