/* Image volumes: resolving a mount's image, mounting it through
 * pod/rootfs.c, finding its image_sub_path safely, and the record of
 * which images a container's volumes hold. */
#include "pod/image_volume.h"
#include "pod/rootfs.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "image/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

#define SHOWN_MAX 256

static char *
shown(const char *text)
{
  return quote_untrusted(text ? text : "", text ? strlen(text) : 0, SHOWN_MAX);
}

static bool
is_image_mount(const Runtime__V1__Mount *m)
{
  return m->image != NULL;
}

int
image_volume_check_mount(const Runtime__V1__Mount *m, struct error *err)
{
  cleanup_free char *destination = shown(m->container_path);
  const char *sub_path = m->image_sub_path ? m->image_sub_path : "";

  if (!is_image_mount(m))
    {
      if (sub_path[0])
        return error_set(err, EINVAL, "mount %s: an image sub path needs an image", destination);
      return 0;
    }
  if (m->image->image[0] == '\0')
    return error_set(err, EINVAL, "mount %s: the image volume names no image", destination);
  if (m->host_path[0] != '\0')
    return error_set(err, EINVAL, "mount %s: both a host path and an image", destination);
  if (m->propagation == RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL)
    return error_set(err, EINVAL,
                     "mount %s: an image volume is read-only: bidirectional propagation has no "
                     "meaning",
                     destination);
  if (sub_path[0] == '/' || path_has_dot_dot(sub_path))
    {
      cleanup_free char *quoted = shown(sub_path);
      return error_set(err, EINVAL, "mount %s: image sub path %s must be relative, without \"..\"",
                       destination, quoted);
    }
  return 0;
}

void
image_volumes_clear(struct image_volumes *volumes)
{
  for (size_t i = 0; i < volumes->n; i++)
    {
      free(volumes->items[i].image_id);
      free(volumes->items[i].source);
    }
  free(volumes->items);
  *volumes = (struct image_volumes){ 0 };
}

static void
add_volume(struct image_volumes *volumes, size_t mount_index, const char *image_id)
{
  volumes->items = xrealloc(volumes->items, (volumes->n + 1) * sizeof *volumes->items);
  volumes->items[volumes->n++]
      = (struct image_volume){ .mount_index = mount_index, .image_id = xstrdup(image_id) };
}

int
image_volumes_resolve(struct image_store *store, const Runtime__V1__ContainerConfig *config,
                      struct image_volumes *out, struct error *err)
{
  image_volumes_clear(out);
  for (size_t i = 0; i < config->n_mounts; i++)
    {
      const Runtime__V1__Mount *m = config->mounts[i];
      struct image_info *info = NULL;

      if (!is_image_mount(m))
        continue;
      if (store == NULL)
        return error_set(err, EIO, "no image store");
      if (image_store_lookup(store, m->image->image, &info, err) < 0)
        {
          cleanup_free char *destination = shown(m->container_path);
          cleanup_free char *image = shown(m->image->image);
          image_volumes_clear(out);
          return error_wrap(err, "image volume %s: image %s", destination, image);
        }
      add_volume(out, i, info->id);
      image_info_free(info);
    }
  return 0;
}

/* path, relative to root, opened beneath it: no ".." above it, no
 * symlink whose target leaves it (absolute or climbing out), no other
 * mount crossed.  The kernel checks every component (openat2). */
static int
open_beneath(int root_fd, const char *path, struct error *err)
{
  struct open_how how = {
    .flags = O_PATH | O_CLOEXEC,
    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
  };
  int fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof how);
  cleanup_free char *quoted = NULL;

  if (fd >= 0)
    return fd;
  quoted = shown(path);
  switch (errno)
    {
    case ENOENT:
    case ENOTDIR:
      return error_set(err, EINVAL, "image sub path %s does not exist in the image", quoted);
    case EXDEV:
      return error_set(err, EINVAL, "image sub path %s leads out of the image", quoted);
    case ELOOP:
      return error_set(err, EINVAL, "image sub path %s: too many symbolic links", quoted);
    case ENOSYS:
      return error_set(err, ENOSYS, "image sub paths need openat2 (Linux 5.6 or newer)");
    default:
      return error_set_errno(err, errno, "image sub path %s", quoted);
    }
}

/* The path the kernel has for an open fd: canonical, links resolved. */
static int
fd_path(int fd, char **out, struct error *err)
{
  cleanup_free char *link = xasprintf("/proc/self/fd/%d", fd);
  char target[PATH_MAX];
  ssize_t len = readlink(link, target, sizeof target - 1);

  if (len < 0)
    return error_set_errno(err, errno, "readlink %s", link);
  target[len] = '\0';
  *out = xstrdup(target);
  return 0;
}

/* The host path of sub_path inside the image mounted at root.  The image
 * is read-only and only crid mounts there, so the path found stays what
 * was checked until the runtime binds it. */
static int
resolve_sub_path(const char *root, const char *sub_path, char **out, struct error *err)
{
  cleanup_close int root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  cleanup_close int fd = -1;
  cleanup_free char *real_root = NULL;
  cleanup_free char *target = NULL;
  size_t root_len;

  if (root_fd < 0)
    return error_set_errno(err, errno, "open %s", root);
  fd = open_beneath(root_fd, sub_path, err);
  if (fd < 0 || fd_path(root_fd, &real_root, err) < 0 || fd_path(fd, &target, err) < 0)
    return -1;
  /* Beneath root, by the kernel's word; checked again as a path. */
  root_len = strlen(real_root);
  if (strncmp(target, real_root, root_len) != 0
      || (target[root_len] != '\0' && target[root_len] != '/'))
    {
      cleanup_free char *quoted = shown(sub_path);
      return error_set(err, EINVAL, "image sub path %s leads out of the image", quoted);
    }
  *out = steal_pointer(&target);
  return 0;
}

static int
mount_volume(struct image_store *store, const char *dir, const Runtime__V1__Mount *m,
             const struct rootfs_idmap *idmap, struct image_volume *volume, struct error *err)
{
  cleanup_strv char **layer_dirs = NULL;
  cleanup_free char *id = NULL;
  cleanup_free char *target = NULL;

  /* By id: what resolve found, even if a tag moved since. */
  if (image_store_layer_dirs(store, volume->image_id, &id, &layer_dirs, err) < 0
      || rootfs_mount_image_volume(dir, volume->mount_index, layer_dirs, idmap, &target, err) < 0)
    return -1;
  if (m->image_sub_path[0] == '\0')
    {
      volume->source = steal_pointer(&target);
      return 0;
    }
  return resolve_sub_path(target, m->image_sub_path, &volume->source, err);
}

int
image_volumes_mount(struct image_store *store, const char *dir,
                    const Runtime__V1__ContainerConfig *config, const struct rootfs_idmap *idmap,
                    struct image_volumes *volumes, struct error *err)
{
  for (size_t i = 0; i < volumes->n; i++)
    {
      struct image_volume *volume = &volumes->items[i];
      const Runtime__V1__Mount *m;

      if (volume->mount_index >= config->n_mounts)
        return error_set(err, EINVAL, "image volume of mount %zu: no such mount",
                         volume->mount_index);
      m = config->mounts[volume->mount_index];
      if (mount_volume(store, dir, m, idmap, volume, err) < 0)
        {
          cleanup_free char *destination = shown(m->container_path);
          cleanup_free char *image = shown(m->image ? m->image->image : "");
          return error_wrap(err, "image volume %s: image %s", destination, image);
        }
    }
  return 0;
}

const struct image_volume *
image_volumes_find(const struct image_volumes *volumes, size_t mount_index)
{
  for (size_t i = 0; i < volumes->n; i++)
    if (volumes->items[i].mount_index == mount_index)
      return &volumes->items[i];
  return NULL;
}

bool
image_volumes_use(const struct image_volumes *volumes, const char *image_id)
{
  for (size_t i = 0; i < volumes->n; i++)
    if (strcmp(volumes->items[i].image_id, image_id) == 0)
      return true;
  return false;
}

void
image_volumes_write_json(struct json_writer *writer, const char *key,
                         const struct image_volumes *volumes)
{
  json_write_key(writer, key);
  json_begin_array(writer);
  for (size_t i = 0; i < volumes->n; i++)
    {
      json_begin_object(writer);
      json_write_key(writer, "mount");
      json_write_int(writer, (int64_t)volumes->items[i].mount_index);
      json_write_key(writer, "image_id");
      json_write_string(writer, volumes->items[i].image_id);
      json_end_object(writer);
    }
  json_end_array(writer);
}

void
image_volumes_read_json(const struct json_value *value, struct image_volumes *out)
{
  image_volumes_clear(out);
  for (size_t i = 0; i < json_array_size(value); i++)
    {
      const struct json_value *item = json_array_at(value, i);
      const char *image_id = json_object_get_string(item, "image_id");
      int64_t mount_index;

      if (image_id && json_integer(json_object_get(item, "mount"), &mount_index)
          && mount_index >= 0)
        add_volume(out, (size_t)mount_index, image_id);
    }
}
