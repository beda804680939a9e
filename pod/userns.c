#include "pod/userns.h"

#include "common/cleanup.h"
#include "common/util.h"
#include "pod/namespace.h"
#include "pod/rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The last id a range may reach: (uid_t)-1 is "no id" to the kernel. */
#define ID_LIMIT UINT64_C(0xffffffff)

static const char *
mode_name(int mode)
{
  switch (mode)
    {
    case RUNTIME__V1__NAMESPACE_MODE__POD:
      return "POD";
    case RUNTIME__V1__NAMESPACE_MODE__CONTAINER:
      return "CONTAINER";
    case RUNTIME__V1__NAMESPACE_MODE__NODE:
      return "NODE";
    case RUNTIME__V1__NAMESPACE_MODE__TARGET:
      return "TARGET";
    default:
      return "unknown";
    }
}

static bool
overlaps(uint64_t a_start, uint64_t b_start, uint64_t a_len, uint64_t b_len)
{
  return a_start < b_start + b_len && b_start < a_start + a_len;
}

/* One of uids/gids: which ("uid"/"gid") names it in errors. */
static int
check_ranges(const char *which, Runtime__V1__IDMapping *const *mappings, size_t n,
             struct error *err)
{
  bool root_mapped = false;

  if (n == 0)
    return error_set(err, EINVAL, "user namespace mode POD needs %s mappings", which);
  if (n > POD_USERNS_MAX_RANGES)
    return error_set(err, EINVAL, "%zu %s mappings: at most %d are supported", n, which,
                     POD_USERNS_MAX_RANGES);
  for (size_t i = 0; i < n; i++)
    {
      const Runtime__V1__IDMapping *m = mappings[i];
      if (m->length == 0)
        return error_set(err, EINVAL, "%s mapping %zu has length 0", which, i);
      if ((uint64_t)m->container_id + m->length > ID_LIMIT
          || (uint64_t)m->host_id + m->length > ID_LIMIT)
        return error_set(err, EINVAL,
                         "%s mapping %zu (container %u, host %u, length %u) goes past %s "
                         "4294967294",
                         which, i, m->container_id, m->host_id, m->length, which);
      if (m->host_id == 0)
        return error_set(err, EINVAL,
                         "%s mapping %zu maps host %s 0: the pod's ids must not include the "
                         "host's root",
                         which, i, which);
      root_mapped = root_mapped || m->container_id == 0;
      for (size_t j = 0; j < i; j++)
        {
          const Runtime__V1__IDMapping *o = mappings[j];
          if (overlaps(m->container_id, o->container_id, m->length, o->length))
            return error_set(err, EINVAL, "%s mappings %zu and %zu overlap in container ids", which,
                             j, i);
          if (overlaps(m->host_id, o->host_id, m->length, o->length))
            return error_set(err, EINVAL, "%s mappings %zu and %zu overlap in host ids", which, j,
                             i);
        }
    }
  if (!root_mapped)
    return error_set(err, EINVAL, "%s mappings do not map container %s 0", which, which);
  return 0;
}

int
pod_userns_check_options(const Runtime__V1__NamespaceOption *options, struct error *err)
{
  const Runtime__V1__UserNamespace *u = options->userns_options;

  if (u == NULL)
    return 0;
  switch (u->mode)
    {
    case RUNTIME__V1__NAMESPACE_MODE__NODE:
      if (u->n_uids > 0 || u->n_gids > 0)
        return error_set(err, EINVAL, "user namespace mode NODE takes no uid or gid mappings");
      return 0;
    case RUNTIME__V1__NAMESPACE_MODE__POD:
      break;
    default:
      return error_set(err, EINVAL,
                       "user namespace mode %s is not supported (only POD and NODE are)",
                       mode_name(u->mode));
    }
  if (options->network == RUNTIME__V1__NAMESPACE_MODE__NODE
      || options->ipc == RUNTIME__V1__NAMESPACE_MODE__NODE
      || options->pid == RUNTIME__V1__NAMESPACE_MODE__NODE)
    return error_set(err, EINVAL,
                     "user namespace mode POD cannot go with the host's network, IPC or PID "
                     "namespace");
  if (check_ranges("uid", u->uids, u->n_uids, err) < 0
      || check_ranges("gid", u->gids, u->n_gids, err) < 0)
    return error_wrap(err, "user namespace");
  return 0;
}

static void
copy_ranges(struct pod_id_range *out, Runtime__V1__IDMapping *const *mappings, size_t n)
{
  for (size_t i = 0; i < n; i++)
    out[i] = (struct pod_id_range){ mappings[i]->container_id, mappings[i]->host_id,
                                    mappings[i]->length };
}

int
pod_userns_of_sandbox(const Runtime__V1__PodSandboxConfig *config, struct pod_userns *out,
                      struct error *err)
{
  const Runtime__V1__LinuxSandboxSecurityContext *sc
      = config && config->linux ? config->linux->security_context : NULL;
  const Runtime__V1__NamespaceOption *options = sc ? sc->namespace_options : NULL;
  const Runtime__V1__UserNamespace *u = options ? options->userns_options : NULL;

  memset(out, 0, sizeof *out);
  if (u == NULL)
    return 0;
  if (pod_userns_check_options(options, err) < 0)
    return -1;
  if (u->mode != RUNTIME__V1__NAMESPACE_MODE__POD)
    return 0;
  out->enabled = true;
  out->n_uids = u->n_uids;
  out->n_gids = u->n_gids;
  copy_ranges(out->uids, u->uids, u->n_uids);
  copy_ranges(out->gids, u->gids, u->n_gids);
  return 0;
}

bool
pod_userns_ranges_equal(const struct pod_id_range *ranges, size_t n,
                        Runtime__V1__IDMapping *const *mappings, size_t n_mappings)
{
  if (n != n_mappings)
    return false;
  for (size_t i = 0; i < n; i++)
    if (ranges[i].container_id != mappings[i]->container_id
        || ranges[i].host_id != mappings[i]->host_id || ranges[i].length != mappings[i]->length)
      return false;
  return true;
}

int
pod_userns_check_container(const Runtime__V1__ContainerConfig *config, const struct pod_userns *pod,
                           struct error *err)
{
  const Runtime__V1__LinuxContainerSecurityContext *sc
      = config->linux ? config->linux->security_context : NULL;
  const Runtime__V1__NamespaceOption *options = sc ? sc->namespace_options : NULL;
  const Runtime__V1__UserNamespace *u = options ? options->userns_options : NULL;
  bool wants_pod;

  if (u == NULL)
    return 0;
  if (pod_userns_check_options(options, err) < 0)
    return -1;
  wants_pod = u->mode == RUNTIME__V1__NAMESPACE_MODE__POD;
  if (wants_pod != pod->enabled)
    return error_set(err, EINVAL, "user namespace mode %s, but the pod runs in %s user namespace",
                     mode_name(u->mode),
                     pod->enabled ? "a user namespace of its own" : "the host's");
  if (wants_pod
      && (!pod_userns_ranges_equal(pod->uids, pod->n_uids, u->uids, u->n_uids)
          || !pod_userns_ranges_equal(pod->gids, pod->n_gids, u->gids, u->n_gids)))
    return error_set(err, EINVAL,
                     "the container's user namespace mappings differ from its pod's: a "
                     "container shares the pod's user namespace");
  return 0;
}

bool
pod_userns_host_id(const struct pod_id_range *ranges, size_t n, uint32_t container_id,
                   uint32_t *host_id)
{
  for (size_t i = 0; i < n; i++)
    if (container_id >= ranges[i].container_id
        && (uint64_t)container_id < (uint64_t)ranges[i].container_id + ranges[i].length)
      {
        *host_id = ranges[i].host_id + (container_id - ranges[i].container_id);
        return true;
      }
  return false;
}

char *
pod_userns_map_text(const struct pod_id_range *ranges, size_t n)
{
  char *text = xstrdup("");

  for (size_t i = 0; i < n; i++)
    {
      char *next = xasprintf("%s%u %u %u\n", text, ranges[i].container_id, ranges[i].host_id,
                             ranges[i].length);
      free(text);
      text = next;
    }
  return text;
}

int
pod_userns_probe(const char *probe_dir, const char *root_dir, struct error *err)
{
  /* Any mapping will do; this one is what critest probes with. */
  static const struct pod_id_range probe_range = { 0, 1000, 100000 };
  struct pod_userns userns = { .enabled = true, .n_uids = 1, .n_gids = 1 };
  struct pod_namespaces_request request = { .dir = probe_dir, .userns = &userns };
  cleanup_free char *user_path = xasprintf("%s/user", probe_dir);
  struct error cleanup_err = ERROR_INIT;
  cleanup_close int userns_fd = -1;
  int ret;

  userns.uids[0] = probe_range;
  userns.gids[0] = probe_range;
  if (pod_namespaces_create(&request, err) < 0)
    return error_wrap(err, "make a user namespace");
  userns_fd = open(user_path, O_RDONLY | O_CLOEXEC);
  if (userns_fd < 0)
    ret = error_set_errno(err, errno, "open %s", user_path);
  else
    {
      struct rootfs_tree_attrs attrs = { .userns_fd = userns_fd };
      int tree = -1;
      ret = rootfs_clone_tree(root_dir, &attrs, &tree, err);
      if (tree >= 0)
        close(tree);
    }
  if (pod_namespaces_remove(probe_dir, &cleanup_err) < 0)
    {
      if (ret == 0)
        error_move(err, &cleanup_err);
      ret = -1;
    }
  error_clear(&cleanup_err);
  return ret;
}
