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
container_userns_own_dir(const struct container_userns *userns, const char *dir, struct error *err)
{
  if (!userns->pod.enabled)
    return 0;
  /* The runtime reaches the root file system as the pod's root, an
   * unprivileged host user: the dir is that user's, still closed to the
   * others. */
  if (chown(dir, userns->idmap.root_uid, userns->idmap.root_gid) < 0)
    return error_set_errno(err, errno, "give %s to the pod's root", dir);
  return 0;
}

void
container_userns_clear(struct container_userns *userns)
{
  free(userns->path);
  if (userns->fd >= 0)
    close(userns->fd);
  *userns = (struct container_userns)CONTAINER_USERNS_INIT;
}
