#include "pod/rootfs.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

/* The kernel copies at most one page of mount data. */
#define MOUNT_DATA_MAX 4095

int
rootfs_clone_tree(const char *path, const struct rootfs_tree_attrs *attrs, int *tree_fd,
                  struct error *err)
{
  struct mount_attr attr = { 0 };
  int fd = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);

  if (fd < 0)
    return error_set_errno(err, errno, "clone the mount at %s", path);
  if (attrs->userns_fd >= 0)
    {
      attr.attr_set |= MOUNT_ATTR_IDMAP;
      attr.userns_fd = (uint64_t)attrs->userns_fd;
    }
  if (attrs->read_only)
    attr.attr_set |= MOUNT_ATTR_RDONLY;
  if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
    {
      int saved = errno;
      close(fd);
      return error_set_errno(
          err, saved, "%s the mount at %s%s", attrs->userns_fd >= 0 ? "idmap" : "make read-only",
          path, attrs->userns_fd >= 0 ? " (its file system must support idmapped mounts)" : "");
    }
  *tree_fd = fd;
  return 0;
}

static void
close_trees(int *fds, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (fds[i] >= 0)
      close(fds[i]);
}

/* The overlay's lowerdir option: the layer dirs, or with idmap the
 * idmapped copies of them as /proc/self/fd/<n> (fds[] receives them). */
static int
lower_option(char *const *lower_dirs, const struct rootfs_idmap *idmap, int *fds, char **out,
             struct error *err)
{
  char *lower = xstrdup("");

  for (size_t i = 0; lower_dirs[i]; i++)
    {
      cleanup_free char *fd_path = NULL;
      const char *path = lower_dirs[i];
      char *next;
      /* ':' and ',' separate overlay options; store paths never hold them. */
      if (strpbrk(lower_dirs[i], ":,"))
        {
          free(lower);
          return error_set(err, EINVAL, "layer dir %s cannot be an overlay lowerdir",
                           lower_dirs[i]);
        }
      if (idmap)
        {
          struct rootfs_tree_attrs attrs = { .userns_fd = idmap->userns_fd };
          if (rootfs_clone_tree(lower_dirs[i], &attrs, &fds[i], err) < 0)
            {
              free(lower);
              return error_wrap(err, "idmapped image layer");
            }
          fd_path = xasprintf("/proc/self/fd/%d", fds[i]);
          path = fd_path;
        }
      next = xasprintf("%s%s%s", lower, i ? ":" : "", path);
      free(lower);
      lower = next;
    }
  *out = lower;
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
rootfs_mount(const char *dir, char *const *lower_dirs, const struct rootfs_idmap *idmap,
             struct error *err)
{
  cleanup_free char *rootfs = xasprintf("%s/rootfs", dir);
  cleanup_free char *upper = xasprintf("%s/upper", dir);
  cleanup_free char *work = xasprintf("%s/work", dir);
  cleanup_free char *lower = NULL;
  cleanup_free char *data = NULL;
  cleanup_free int *fds = NULL;
  size_t n_layers = 0;
  int ret = -1;

  if (lower_dirs == NULL || lower_dirs[0] == NULL)
    return error_set(err, EINVAL, "the image has no layers");
  if (mkdir_p(rootfs, 0755, err) < 0 || mkdir_p(upper, 0755, err) < 0
      || mkdir_p(work, 0700, err) < 0)
    return error_wrap(err, "container root file system");
  /* The overlay's root is upper/'s inode: the container's root owns it. */
  if (idmap && chown(upper, idmap->root_uid, idmap->root_gid) < 0)
    return error_set_errno(err, errno, "container root file system: chown %s", upper);
  n_layers = strv_length(lower_dirs);
  fds = xmalloc(n_layers * sizeof *fds);
  for (size_t i = 0; i < n_layers; i++)
    fds[i] = -1;
  if (lower_option(lower_dirs, idmap, fds, &lower, err) < 0)
    goto out;
  data = xasprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
  /* No nodev: device nodes a container makes in its root (it holds
   * CAP_MKNOD by default) are the devices cgroup's to allow or deny, as
   * with containerd and CRI-O.  crun re-mounts the root without nodev
   * anyway, runc keeps it: with it, a privileged container could use such
   * a node on crun only. */
  ret = mount_overlay(rootfs, 0, data, err);
out:
  /* The overlay holds the idmapped layers it uses; they go with it. */
  close_trees(fds, n_layers);
  return ret;
}

int
rootfs_mount_image_volume(const char *dir, size_t index, char *const *lower_dirs,
                          const struct rootfs_idmap *idmap, char **target, struct error *err)
{
  cleanup_free char *volumes = xasprintf("%s/" ROOTFS_IMAGE_VOLUMES, dir);
  cleanup_free char *empty = xasprintf("%s/.empty", volumes);
  cleanup_free char *point = xasprintf("%s/%zu", volumes, index);

  if (mkdir_p(empty, 0755, err) < 0 || mkdir_p(point, 0755, err) < 0)
    return error_wrap(err, "image volume mount point");
  if (rootfs_mount_layers_read_only(point, lower_dirs, empty, idmap, err) < 0)
    return -1;
  *target = steal_pointer(&point);
  return 0;
}

int
rootfs_mount_layers_read_only(const char *target, char *const *lower_dirs, const char *bottom,
                              const struct rootfs_idmap *idmap, struct error *err)
{
  cleanup_free char *lower = NULL;
  cleanup_free char *data = NULL;
  cleanup_free int *fds = NULL;
  size_t n_layers;
  int ret = -1;

  if (lower_dirs == NULL || lower_dirs[0] == NULL)
    return error_set(err, EINVAL, "the image has no layers");
  n_layers = strv_length(lower_dirs);
  fds = xmalloc(n_layers * sizeof *fds);
  for (size_t i = 0; i < n_layers; i++)
    fds[i] = -1;
  if (lower_option(lower_dirs, idmap, fds, &lower, err) == 0)
    {
      /* Overlay wants two lowers when there is no upper: a dir at the
       * bottom makes a one-layer image mountable, and its whiteouts are
       * still hidden as overlay hides them (a plain bind would show
       * them). */
      data = xasprintf("lowerdir=%s:%s", lower, bottom);
      ret = mount_overlay(target, MS_RDONLY | MS_NOSUID | MS_NODEV, data, err);
    }
  close_trees(fds, n_layers);
  return ret;
}

int
rootfs_prepare_volume(const char *dir, size_t index, const char *source,
                      const struct rootfs_tree_attrs *attrs, char **target, struct error *err)
{
  cleanup_free char *parent = xasprintf("%s/" ROOTFS_VOLUMES, dir);
  cleanup_free char *path = xasprintf("%s/%zu", parent, index);
  struct stat st;
  int tree, ret = 0;

  if (stat(source, &st) < 0)
    return error_set_errno(err, errno, "volume: %s", source);
  if (mkdir_p(parent, 0711, err) < 0)
    return error_wrap(err, "volume");
  if (S_ISDIR(st.st_mode) ? mkdir(path, 0755) < 0 && errno != EEXIST
                          : mknod(path, S_IFREG | 0644, 0) < 0 && errno != EEXIST)
    return error_set_errno(err, errno, "volume: create %s", path);
  if (rootfs_clone_tree(source, attrs, &tree, err) < 0)
    return error_wrap(err, "volume");
  if (move_mount(tree, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH) < 0)
    ret = error_set_errno(err, errno, "volume: mount %s at %s", source, path);
  close(tree);
  if (ret == 0)
    *target = steal_pointer(&path);
  return ret;
}

/* Unmounts path until nothing is mounted there (stacked mounts); a busy
 * one is retried a while (a process of the container may still be
 * leaving), then detached. */
static int
unmount_all(const char *path, struct error *err)
{
  for (int i = 0; i < 50; i++)
    {
      if (umount2(path, UMOUNT_NOFOLLOW) == 0)
        continue;
      if (errno == EINVAL || errno == ENOENT)
        return 0;
      if (errno != EBUSY)
        return error_set_errno(err, errno, "unmount %s", path);
      usleep(20000);
    }
  if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
    return error_set_errno(err, errno, "unmount %s", path);
  return 0;
}

int
rootfs_unmount_volumes(const char *dir, struct error *err)
{
  cleanup_free char *parent = xasprintf("%s/" ROOTFS_VOLUMES, dir);
  DIR *d = opendir(parent);
  struct dirent *entry;
  int ret = 0;

  if (d == NULL)
    return errno == ENOENT ? 0 : error_set_errno(err, errno, "open %s", parent);
  while (ret == 0 && (entry = readdir(d)) != NULL)
    {
      cleanup_free char *path = NULL;
      if (entry->d_name[0] == '.')
        continue;
      path = xasprintf("%s/%s", parent, entry->d_name);
      /* A copied tree, submounts and all: detached at once (a plain
       * unmount refuses a mount that has mounts below it). */
      if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
        ret = error_set_errno(err, errno, "unmount %s", path);
    }
  closedir(d);
  return ret;
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

  if (unmount_image_volumes(dir, err) < 0 || rootfs_unmount_volumes(dir, err) < 0)
    return -1;
  return unmount_all(rootfs, err);
}
