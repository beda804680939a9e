#include "pod/layout.h"
#include "pod/container_userns.h"

#include "common/cleanup.h"
#include "common/util.h"
#include "pod/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
container_userns_open(const struct pod_manager *manager, const struct sandbox *sandbox,
                      const Runtime__V1__ContainerConfig *config, struct container_userns *out,
                      struct error *err)
{
  cleanup_free char *ns_dir = NULL;
  uint32_t uid, gid;

  if (pod_userns_of_sandbox(sandbox->config, &out->pod, err) < 0
      || pod_userns_check_container(config, &out->pod, err) < 0)
    return -1;
  if (!out->pod.enabled)
    return 0;
  /* Checked when the pod was made: root is mapped. */
  if (!pod_userns_host_id(out->pod.uids, out->pod.n_uids, 0, &uid)
      || !pod_userns_host_id(out->pod.gids, out->pod.n_gids, 0, &gid))
    return error_set(err, EINVAL, "the pod's user namespace does not map root");
  ns_dir = layout_namespace_dir(manager, sandbox->id);
  out->path = xasprintf("%s/user", ns_dir);
  out->fd = open(out->path, O_RDONLY | O_CLOEXEC);
  if (out->fd < 0)
    return error_set_errno(err, errno, "open the pod's user namespace %s", out->path);
  out->idmap = (struct rootfs_idmap){ .userns_fd = out->fd, .root_uid = uid, .root_gid = gid };
  return 0;
}

const struct rootfs_idmap *
container_userns_idmap(const struct container_userns *userns)
{
  return userns->pod.enabled ? &userns->idmap : NULL;
}

int
container_userns_volumes(struct container_userns *userns, const char *dir,
                         const Runtime__V1__ContainerConfig *config, struct error *err)
{
  if (!userns->pod.enabled)
    return 0;
  /* The runtime reaches the root file system as the pod's root, an
   * unprivileged host user: the dir is that user's, still closed to the
   * others. */
  if (chown(dir, userns->idmap.root_uid, userns->idmap.root_gid) < 0)
    return error_set_errno(err, errno, "give %s to the pod's root", dir);
  userns->n_mounts = config->n_mounts;
  userns->mount_sources = xcalloc(config->n_mounts + 1, sizeof *userns->mount_sources);
  for (size_t i = 0; i < config->n_mounts; i++)
    {
      const Runtime__V1__Mount *m = config->mounts[i];
      struct stat st;
      cleanup_free char *shown = quote_untrusted(m->container_path, strlen(m->container_path), 256);

      /* No source: pod/oci_spec.c says why that cannot be mounted. */
      if (m->host_path == NULL || m->host_path[0] == '\0')
        continue;
      if (stat(m->host_path, &st) < 0)
        {
          if (errno != ENOENT)
            return error_set_errno(err, errno, "mount %s: source", shown);
          if (mkdir_p(m->host_path, 0755, err) < 0)
            return error_wrap(err, "mount %s: create the source", shown);
        }
      if (rootfs_idmap_volume(dir, i, m->host_path, userns->fd, &userns->mount_sources[i], err) < 0)
        return error_wrap(err, "mount %s", shown);
    }
  return 0;
}

void
container_userns_clear(struct container_userns *userns)
{
  for (size_t i = 0; i < userns->n_mounts; i++)
    free(userns->mount_sources[i]);
  free(userns->mount_sources);
  free(userns->path);
  if (userns->fd >= 0)
    close(userns->fd);
  *userns = (struct container_userns)CONTAINER_USERNS_INIT;
}
