/* Preparing bind mount sources; see volume_sources.h. */
#include "pod/volume_sources.h"
#include "pod/rootfs.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int
ensure_source(const char *path, const char *shown, struct error *err)
{
  struct stat st;

  if (stat(path, &st) == 0)
    return 0;
  if (errno != ENOENT)
    return error_set_errno(err, errno, "mount %s: source", shown);
  if (mkdir_p(path, 0755, err) < 0)
    return error_wrap(err, "mount %s: create the source", shown);
  return 0;
}

int
volume_sources_prepare(const char *dir, const Runtime__V1__ContainerConfig *config, int userns_fd,
                       struct volume_sources *out, struct error *err)
{
  out->n = config->n_mounts;
  out->paths = xcalloc(config->n_mounts + 1, sizeof *out->paths);
  for (size_t i = 0; i < config->n_mounts; i++)
    {
      const Runtime__V1__Mount *m = config->mounts[i];
      struct rootfs_tree_attrs attrs
          = { .userns_fd = userns_fd, .read_only = m->recursive_read_only };
      cleanup_free char *shown = NULL;

      /* No source (an image volume, or nothing: pod/oci_spec.c says why
       * that cannot be mounted), or nothing to change about it. */
      if (m->host_path == NULL || m->host_path[0] == '\0'
          || (userns_fd < 0 && !m->recursive_read_only))
        continue;
      shown = quote_untrusted(m->container_path, strlen(m->container_path), 256);
      if (ensure_source(m->host_path, shown, err) < 0
          || rootfs_prepare_volume(dir, i, m->host_path, &attrs, &out->paths[i], err) < 0)
        return error_wrap(err, "mount %s", shown);
    }
  return 0;
}

void
volume_sources_clear(struct volume_sources *sources)
{
  for (size_t i = 0; i < sources->n; i++)
    free(sources->paths[i]);
  free(sources->paths);
  *sources = (struct volume_sources){ 0 };
}
