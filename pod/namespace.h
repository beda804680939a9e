/* pod/namespace: the namespaces a pod's containers share (network, IPC,
 * UTS, and the user namespace of a pod that has one), created once per
 * sandbox and pinned as bind-mounted files under <state>/ns/<sandbox-id>/,
 * so containers join them by path and they outlive any process. */
#ifndef CRID_POD_NAMESPACE_H
#define CRID_POD_NAMESPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

enum pod_namespace_kind
{
  POD_NAMESPACE_NET = 1 << 0,
  POD_NAMESPACE_IPC = 1 << 1,
  POD_NAMESPACE_UTS = 1 << 2,
  /* Only through pod_namespaces_request.userns, never in kinds. */
  POD_NAMESPACE_USER = 1 << 3,
};

struct pod_userns;

struct sysctl_setting
{
  const char *key; /* "net.ipv4.ip_forward" */
  const char *value;
};

struct pod_namespaces_request
{
  const char *dir;      /* <state>/ns/<sandbox-id>; created */
  unsigned kinds;       /* which to create; the others stay the host's */
  const char *hostname; /* set in the new UTS namespace; NULL = leave */
  const struct sysctl_setting *sysctls;
  size_t n_sysctls;
  /* Enabled: a new user namespace with its maps, pinned as <dir>/user,
   * that owns the other new namespaces (the pod's root holds every
   * capability over them, the host's root still too); NULL = none. */
  const struct pod_userns *userns;
};

/* Creates the namespaces, brings loopback up in a new network namespace,
 * sets hostname and sysctls inside them, and pins each as <dir>/<kind>.
 * On failure nothing is left behind. */
int pod_namespaces_create(const struct pod_namespaces_request *request, struct error *err);

/* Unpins and removes every namespace file of dir and dir itself; missing
 * ones are fine. */
int pod_namespaces_remove(const char *dir, struct error *err);

/* A TCP connection (a blocking socket) to localhost:port inside the
 * network namespace pinned at netns_path (NULL: crid's own): 127.0.0.1
 * first, then ::1.  Returns the fd. */
int pod_namespace_connect_localhost(const char *netns_path, uint16_t port, struct error *err);

/* "<dir>/net" etc. */
const char *pod_namespace_file_name(enum pod_namespace_kind kind);

/* Whether sysctl key may be set in a pod, and which namespace it needs:
 * net.* needs a pod network namespace; kernel.shm*, kernel.msg*, kernel.sem
 * and fs.mqueue.* the IPC namespace; anything else is refused. */
int sysctl_namespace_of(const char *key, enum pod_namespace_kind *kind, struct error *err);

#endif
