#include "pod/rootfs.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <errno.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

/* The kernel copies at most one page of mount data. */
#define MOUNT_DATA_MAX 4095

int
rootfs_mount(const char *dir, char *const *lower_dirs, struct error *err)
{
  cleanup_free char *rootfs = xasprintf("%s/rootfs", dir);
  cleanup_free char *upper = xasprintf("%s/upper", dir);
  cleanup_free char *work = xasprintf("%s/work", dir);
  cleanup_free char *lower = xstrdup("");
  cleanup_free char *data = NULL;

  if (lower_dirs == NULL || lower_dirs[0] == NULL)
    return error_set(err, EINVAL, "the image has no layers");
  for (size_t i = 0; lower_dirs[i]; i++)
    {
      char *next;
      /* ':' and ',' separate overlay options; store paths never hold them. */
      if (strpbrk(lower_dirs[i], ":,"))
        return error_set(err, EINVAL, "layer dir %s cannot be an overlay lowerdir", lower_dirs[i]);
      next = xasprintf("%s%s%s", lower, i ? ":" : "", lower_dirs[i]);
      free(lower);
      lower = next;
    }
  if (mkdir_p(rootfs, 0755, err) < 0 || mkdir_p(upper, 0755, err) < 0
      || mkdir_p(work, 0700, err) < 0)
    return error_wrap(err, "container root file system");
  data = xasprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
  if (strlen(data) > MOUNT_DATA_MAX)
    return error_set(err, E2BIG, "too many image layers for one overlay mount (%zu bytes)",
                     strlen(data));
  /* No nodev: device nodes a container makes in its root (it holds
   * CAP_MKNOD by default) are the devices cgroup's to allow or deny, as
   * with containerd and CRI-O.  crun re-mounts the root without nodev
   * anyway, runc keeps it: with it, a privileged container could use such
   * a node on crun only. */
  if (mount("overlay", rootfs, "overlay", 0, data) < 0)
    return error_set_errno(err, errno, "mount overlay at %s", rootfs);
  return 0;
}

int
rootfs_unmount(const char *dir, struct error *err)
{
  cleanup_free char *rootfs = xasprintf("%s/rootfs", dir);

  for (int i = 0; i < 50; i++)
    {
      if (umount2(rootfs, UMOUNT_NOFOLLOW) == 0)
        continue; /* stacked mounts: until none is left */
      if (errno == EINVAL || errno == ENOENT)
        return 0;
      if (errno != EBUSY)
        return error_set_errno(err, errno, "unmount %s", rootfs);
      /* Busy: a process of the container may still be leaving. */
      usleep(20000);
    }
  if (umount2(rootfs, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
    return error_set_errno(err, errno, "unmount %s", rootfs);
  return 0;
}
