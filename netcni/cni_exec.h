/* netcni/cni_exec: running a network's plugin chain for one pod: ADD in
 * list order with prevResult chaining, DEL in reverse with the cached
 * result, CHECK; the CNI_* environment, runtimeConfig from declared
 * capabilities, per-plugin timeout, and plugin errors with their code. */
#ifndef CRID_NETCNI_CNI_EXEC_H
#define CRID_NETCNI_CNI_EXEC_H

#include "common/error.h"

struct cni_network_list;
struct json_value;

struct cni_invocation
{
  const char *container_id; /* the sandbox id */
  const char *netns;        /* path of the pinned netns; may be "" for DEL */
  const char *ifname;       /* "eth0" */
  const char *args;         /* CNI_ARGS, "IgnoreUnknown=1;K8S_POD_NAMESPACE=..." */
  /* Capability arguments, as one JSON object ({"portMappings":[...]});
   * only keys a plugin declares in "capabilities" reach its runtimeConfig. */
  const struct json_value *capability_args;
  char *const *plugin_dirs; /* NULL-terminated */
  int timeout_seconds;      /* per plugin */
};

/* ADD through the whole list; *result is the last plugin's JSON output. */
int cni_add(const struct cni_network_list *network, const struct cni_invocation *invocation,
            char **result, struct error *err);

/* DEL in reverse order; prev_result is the cached ADD result (may be NULL).
 * Best effort over all plugins: the first error is returned after all ran. */
int cni_del(const struct cni_network_list *network, const struct cni_invocation *invocation,
            const char *prev_result, struct error *err);

int cni_check(const struct cni_network_list *network, const struct cni_invocation *invocation,
              const char *prev_result, struct error *err);

/* The bare addresses (no /prefix) that result gives the sandbox interface
 * ifname, in order; *ips is NULL-terminated. */
int cni_result_ips(const char *result, const char *ifname, char ***ips, struct error *err);

#endif
