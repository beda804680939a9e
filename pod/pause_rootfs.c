/* The pause's root file system, built in or from an image; see
 * pause_rootfs.h. */
#include "pod/pause_rootfs.h"
#include "pod/rootfs.h"
#include "common/atomic_file.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/mountinfo.h"
#include "common/util.h"
#include "image/manifest.h"
#include "image/pull.h"
#include "image/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#define PAUSE_MAX_SIZE (64 * 1024 * 1024)
#define PAUSE_COMMAND "/pause"

/* What runtimes mount on or create below in a pause's root. */
static const char *const skeleton_dirs[] = { "dev", "proc", "sys", "etc", "run", "tmp" };

struct pause_rootfs
{
  char *dir;   /* <root>/pause */
  char *image; /* NULL: built in */
  struct image_store *images;
  struct image_puller *puller;
  pthread_mutex_t lock; /* mounted */
  char **mounted;       /* image ids mounted by this crid, NULL-terminated */
};

static int
make_skeleton(const char *root, struct error *err)
{
  for (size_t i = 0; i < sizeof skeleton_dirs / sizeof skeleton_dirs[0]; i++)
    {
      cleanup_free char *dir = xasprintf("%s/%s", root, skeleton_dirs[i]);
      if (mkdir_p(dir, 0755, err) < 0)
        return -1;
    }
  return 0;
}

/* crid-pause alone: always refreshed, as an upgraded crid brings its
 * own. */
static int
assemble_builtin(const struct pause_rootfs *pause, const char *binary, struct error *err)
{
  cleanup_free char *rootfs = xasprintf("%s/rootfs", pause->dir);
  cleanup_free char *target = xasprintf("%s" PAUSE_COMMAND, rootfs);
  cleanup_free char *content = NULL;
  size_t len;

  if (make_skeleton(rootfs, err) < 0 || read_file(binary, PAUSE_MAX_SIZE, &content, &len, err) < 0
      || atomic_write_file(target, content, len, 0755, err) < 0)
    return error_wrap(err, "assemble the pause root filesystem");
  return 0;
}

/* Mounts a crid that died left under <root>/pause/images. */
static void
unmount_under(const char *dir)
{
  struct mount_table table;
  struct error err = ERROR_INIT;

  if (mount_table_read(&table, &err) < 0)
    {
      log_warn("%s", error_message(&err));
      error_clear(&err);
      return;
    }
  for (size_t i = table.n; i-- > 0;)
    if (mount_path_within(table.entries[i].mountpoint, dir)
        && umount2(table.entries[i].mountpoint, MNT_DETACH) < 0)
      log_warn("unmount %s: %m", table.entries[i].mountpoint);
  mount_table_clear(&table);
}

struct pause_rootfs *
pause_rootfs_new(const struct pause_rootfs_options *options, struct error *err)
{
  struct pause_rootfs *pause = xcalloc(1, sizeof *pause);
  cleanup_free char *images_dir = NULL;

  pause->dir = xasprintf("%s/pause", options->root);
  pause->images = options->images;
  pause->puller = options->puller;
  pause->mounted = xcalloc(1, sizeof(char *));
  pthread_mutex_init(&pause->lock, NULL);
  if (options->image && options->image[0])
    pause->image = xstrdup(options->image);
  images_dir = xasprintf("%s/images", pause->dir);
  unmount_under(images_dir);
  if (pause->image == NULL && assemble_builtin(pause, options->binary, err) < 0)
    {
      pause_rootfs_free(pause);
      return NULL;
    }
  return pause;
}

void
pause_rootfs_free(struct pause_rootfs *pause)
{
  if (pause == NULL)
    return;
  for (size_t i = 0; pause->mounted[i]; i++)
    {
      cleanup_free char *target
          = xasprintf("%s/images/%s/rootfs", pause->dir, pause->mounted[i] + strlen("sha256:"));
      if (umount2(target, MNT_DETACH) < 0)
        log_warn("unmount %s: %m", target);
    }
  strv_free(pause->mounted);
  free(pause->image);
  free(pause->dir);
  pthread_mutex_destroy(&pause->lock);
  free(pause);
}

/* The configured image's id, pulled when the store has no such image. */
static int
resolve_image(struct pause_rootfs *pause, char **id, struct error *err)
{
  struct image_info *info = NULL;

  if (image_store_lookup(pause->images, pause->image, &info, err) == 0)
    {
      *id = xstrdup(info->id);
      image_info_free(info);
      return 0;
    }
  if (err->code != ENOENT || pause->puller == NULL)
    return -1;
  error_clear(err);
  log_info("pulling the pause image %s", pause->image);
  if (image_pull(pause->puller, pause->image, &(struct image_pull_options){ 0 }, id, err) < 0)
    return -1;
  return 0;
}

static char **
command_of(const struct image_config *config)
{
  size_t n_entry = strv_length(config->entrypoint), n_cmd = strv_length(config->cmd);
  char **args = xcalloc(n_entry + n_cmd + 2, sizeof(char *));
  size_t n = 0;

  for (size_t i = 0; i < n_entry; i++)
    args[n++] = xstrdup(config->entrypoint[i]);
  for (size_t i = 0; i < n_cmd; i++)
    args[n++] = xstrdup(config->cmd[i]);
  if (n == 0)
    args[n++] = xstrdup(PAUSE_COMMAND);
  return args;
}

static bool
is_mounted_locked(const struct pause_rootfs *pause, const char *id)
{
  for (size_t i = 0; pause->mounted[i]; i++)
    if (strcmp(pause->mounted[i], id) == 0)
      return true;
  return false;
}

static int
mount_image_locked(struct pause_rootfs *pause, const char *id, const char *target,
                   struct error *err)
{
  cleanup_free char *skeleton = xasprintf("%s/skeleton", pause->dir);
  cleanup_strv char **layer_dirs = NULL;
  cleanup_free char *layers_id = NULL;
  size_t n = strv_length(pause->mounted);

  if (make_skeleton(skeleton, err) < 0 || mkdir_p(target, 0755, err) < 0
      || image_store_layer_dirs(pause->images, id, &layers_id, &layer_dirs, err) < 0
      || rootfs_mount_layers_read_only(target, layer_dirs, skeleton, NULL, err) < 0)
    return -1;
  pause->mounted = xrealloc(pause->mounted, (n + 2) * sizeof(char *));
  pause->mounted[n] = xstrdup(id);
  pause->mounted[n + 1] = NULL;
  return 0;
}

static int
image_rootfs(struct pause_rootfs *pause, char **rootfs, char ***args, struct error *err)
{
  cleanup_free char *id = NULL;
  cleanup_free char *target = NULL;
  struct image_config *config = NULL;
  int ret = 0;

  if (resolve_image(pause, &id, err) < 0)
    return -1;
  /* A name is resolved at each pod: a tag moved to another image is
   * followed, the old image's mount stays until crid stops. */
  target = xasprintf("%s/images/%s/rootfs", pause->dir, id + strlen("sha256:"));
  if (image_store_config(pause->images, id, &config, err) < 0)
    return -1;
  pthread_mutex_lock(&pause->lock);
  if (!is_mounted_locked(pause, id))
    ret = mount_image_locked(pause, id, target, err);
  pthread_mutex_unlock(&pause->lock);
  if (ret == 0)
    {
      *rootfs = steal_pointer(&target);
      *args = command_of(config);
    }
  image_config_free(config);
  return ret;
}

int
pause_rootfs_get(struct pause_rootfs *pause, char **rootfs, char ***args, struct error *err)
{
  if (pause->image == NULL)
    {
      *rootfs = xasprintf("%s/rootfs", pause->dir);
      *args = xcalloc(2, sizeof(char *));
      (*args)[0] = xstrdup(PAUSE_COMMAND);
      return 0;
    }
  if (image_rootfs(pause, rootfs, args, err) < 0)
    {
      cleanup_free char *shown = quote_untrusted(pause->image, strlen(pause->image), 256);
      return error_wrap(err, "pause image %s", shown);
    }
  return 0;
}

char *
pause_rootfs_image_id(struct pause_rootfs *pause)
{
  struct image_info *info = NULL;
  struct error err = ERROR_INIT;
  char *id;

  if (pause == NULL || pause->image == NULL)
    return NULL;
  if (image_store_lookup(pause->images, pause->image, &info, &err) < 0)
    {
      error_clear(&err);
      return NULL;
    }
  id = xstrdup(info->id);
  image_info_free(info);
  return id;
}

bool
pause_rootfs_uses_image(struct pause_rootfs *pause, const char *image_id)
{
  cleanup_free char *id = pause_rootfs_image_id(pause);

  return id && strcmp(id, image_id) == 0;
}
