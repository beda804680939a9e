#include "pod/rootfs.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

/* The kernel copies at most one page of mount data. */
#define MOUNT_DATA_MAX 4095

/* "a:b:c": the lowerdir= value of dirs, top first. */
static int
join_lower_dirs(char *const *lower_dirs, char **out, struct error *err)
{
  cleanup_free char *lower = xstrdup("");

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
  *out = steal_pointer(&lower);
  return 0;
}

static int
mount_overlay(const char *target, unsigned long flags, const char *data, struct error *err)
{
  if (strlen(data) > MOUNT_DATA_MAX)
    return error_set(err, E2BIG, "too many image layers for one overlay mount (%zu bytes)",
                     strlen(data));
  if (mount("overlay", target, "overlay", flags, data) < 0)
    return error_set_errno(err, errno, "mount overlay at %s", target);
  return 0;
}

int
rootfs_mount(const char *dir, char *const *lower_dirs, struct error *err)
{
  cleanup_free char *rootfs = xasprintf("%s/rootfs", dir);
  cleanup_free char *upper = xasprintf("%s/upper", dir);
  cleanup_free char *work = xasprintf("%s/work", dir);
  cleanup_free char *lower = NULL;
  cleanup_free char *data = NULL;

  if (join_lower_dirs(lower_dirs, &lower, err) < 0)
    return -1;
  if (mkdir_p(rootfs, 0755, err) < 0 || mkdir_p(upper, 0755, err) < 0
      || mkdir_p(work, 0700, err) < 0)
    return error_wrap(err, "container root file system");
  data = xasprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
  /* No nodev: device nodes a container makes in its root (it holds
   * CAP_MKNOD by default) are the devices cgroup's to allow or deny, as
   * with containerd and CRI-O.  crun re-mounts the root without nodev
   * anyway, runc keeps it: with it, a privileged container could use such
   * a node on crun only. */
  return mount_overlay(rootfs, 0, data, err);
}

int
rootfs_mount_image_volume(const char *dir, size_t index, char *const *lower_dirs, char **target,
                          struct error *err)
{
  cleanup_free char *volumes = xasprintf("%s/" ROOTFS_IMAGE_VOLUMES, dir);
  cleanup_free char *empty = xasprintf("%s/.empty", volumes);
  cleanup_free char *point = xasprintf("%s/%zu", volumes, index);

  if (mkdir_p(empty, 0755, err) < 0 || mkdir_p(point, 0755, err) < 0)
    return error_wrap(err, "image volume mount point");
  if (rootfs_mount_layers_read_only(point, lower_dirs, empty, err) < 0)
    return -1;
  *target = steal_pointer(&point);
  return 0;
}

int
rootfs_mount_layers_read_only(const char *target, char *const *lower_dirs, const char *bottom,
                              struct error *err)
{
  cleanup_free char *lower = NULL;
  cleanup_free char *data = NULL;

  if (join_lower_dirs(lower_dirs, &lower, err) < 0)
    return -1;
  /* Overlay wants two lowers when there is no upper: a dir at the
   * bottom makes a one-layer image mountable, and its whiteouts are
   * still hidden as overlay hides them (a plain bind would show them). */
  data = xasprintf("lowerdir=%s:%s", lower, bottom);
  return mount_overlay(target, MS_RDONLY | MS_NOSUID | MS_NODEV, data, err);
}

/* Unmounts target until nothing is mounted there; not mounted is fine. */
static int
unmount_all(const char *target, struct error *err)
{
  for (int i = 0; i < 50; i++)
    {
      if (umount2(target, UMOUNT_NOFOLLOW) == 0)
        continue; /* stacked mounts: until none is left */
      if (errno == EINVAL || errno == ENOENT)
        return 0;
      if (errno != EBUSY)
        return error_set_errno(err, errno, "unmount %s", target);
      /* Busy: a process of the container may still be leaving. */
      usleep(20000);
    }
  if (umount2(target, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
    return error_set_errno(err, errno, "unmount %s", target);
  return 0;
}

/* Every <dir>/image-volumes/<n>, unmounted and removed: the directory
 * tells what may be mounted, so a crash between a mount and the record
 * that names it leaks nothing. */
static int
unmount_image_volumes(const char *dir, struct error *err)
{
  cleanup_free char *volumes = xasprintf("%s/" ROOTFS_IMAGE_VOLUMES, dir);
  cleanup_dir DIR *d = opendir(volumes);
  struct dirent *entry;

  if (d == NULL)
    return errno == ENOENT ? 0 : error_set_errno(err, errno, "open %s", volumes);
  while ((entry = readdir(d)))
    {
      cleanup_free char *point = NULL;

      if (entry->d_name[0] == '.')
        continue; /* ".", ".." and the empty bottom layer */
      point = xasprintf("%s/%s", volumes, entry->d_name);
      if (unmount_all(point, err) < 0)
        return error_wrap(err, "image volume");
      if (rmdir(point) < 0 && errno != ENOENT)
        return error_set_errno(err, errno, "remove %s", point);
    }
  return 0;
}

int
rootfs_unmount(const char *dir, struct error *err)
{
  cleanup_free char *rootfs = xasprintf("%s/rootfs", dir);

  if (unmount_image_volumes(dir, err) < 0)
    return -1;
  return unmount_all(rootfs, err);
}
