/* pod/userns: the user namespace of a pod with hostUsers: false
 * (NamespaceOption.userns_options mode POD): its uid and gid mappings as
 * the request gives them, checked before anything is created, the text
 * the kernel's uid_map/gid_map take, and the probe of whether this host
 * can give pods one.  The pause and every container of the pod share the
 * one namespace, which pod/namespace.c creates and pins beside the pod's
 * network, IPC and UTS namespaces (those are then owned by it); the
 * idmapped mounts that keep files' owners as seen from inside are
 * pod/rootfs.c's.  Mode NODE (or no options) is the host's namespace;
 * CONTAINER and TARGET are refused. */
#ifndef CRID_POD_USERNS_H
#define CRID_POD_USERNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "api.pb-c.h"

/* Ranges per map that crid accepts: the kernel keeps up to 5 in a flat
 * array (more go through a slower sorted lookup), and the kubelet sends
 * one. */
#define POD_USERNS_MAX_RANGES 5

struct pod_id_range
{
  uint32_t container_id;
  uint32_t host_id;
  uint32_t length;
};

struct pod_userns
{
  bool enabled; /* mode POD: a user namespace of the pod's own */
  size_t n_uids;
  size_t n_gids;
  struct pod_id_range uids[POD_USERNS_MAX_RANGES];
  struct pod_id_range gids[POD_USERNS_MAX_RANGES];
};

/* The checks of one NamespaceOption that need no host facts, wherever it
 * comes (pod or container config): mode POD needs valid uid and gid
 * mappings (1 to POD_USERNS_MAX_RANGES ranges each, no zero length, no
 * range past 2^32 - 1, no overlap of container ids nor of host ids,
 * container id 0 mapped, host id 0 never: a pod's root must not be the
 * host's) and its own network, IPC and PID namespaces; NODE takes no
 * mappings; CONTAINER and TARGET are refused.  EINVAL naming the rule. */
int pod_userns_check_options(const Runtime__V1__NamespaceOption *options, struct error *err);

/* The pod's user namespace from its config (checked as above); disabled
 * for mode NODE or no options. */
int pod_userns_of_sandbox(const Runtime__V1__PodSandboxConfig *config, struct pod_userns *out,
                          struct error *err);

/* A container of pod may only share the pod's user namespace: its own
 * userns_options, when it sends any, must say what the pod's say. */
int pod_userns_check_container(const Runtime__V1__ContainerConfig *config,
                               const struct pod_userns *pod, struct error *err);

/* Whether two CRI mapping lists are the pod's ranges (a mount's
 * uidMappings in a userns pod must be). */
bool pod_userns_ranges_equal(const struct pod_id_range *ranges, size_t n,
                             Runtime__V1__IDMapping *const *mappings, size_t n_mappings);

/* The host id that container_id maps to; false when it is not mapped. */
bool pod_userns_host_id(const struct pod_id_range *ranges, size_t n, uint32_t container_id,
                        uint32_t *host_id);

/* "<container> <host> <length>\n" per range, as /proc/<pid>/uid_map
 * takes them in one write.  Caller frees. */
char *pod_userns_map_text(const struct pod_id_range *ranges, size_t n);

/* Whether pods can get a user namespace here: a throwaway user namespace
 * is made (pinned under probe_dir, removed again) and an idmapped copy
 * of the mount holding root_dir (where containers' root file systems and
 * the image layers live) is attempted.  0 when it works. */
int pod_userns_probe(const char *probe_dir, const char *root_dir, struct error *err);

#endif
