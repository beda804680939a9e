/* pod/image_volume: image volumes (KEP-4639): a CRI Mount with `image`
 * set mounts that image's root file system, read-only, at its
 * container_path; with `image_sub_path` only that file or directory of it.
 *
 * This module owns which image each such mount resolved to (by mount
 * index, kept in the container's state.json: the image counts as in use
 * while the container exists) and where on the host the mount's source
 * is.  The overlay mounts themselves are pod/rootfs.c's (at
 * <container dir>/image-volumes/<index>; rootfs_unmount removes them with
 * the container); config.json binds each source like a host path
 * (pod/oci_spec.c). */
#ifndef CRID_POD_IMAGE_VOLUME_H
#define CRID_POD_IMAGE_VOLUME_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "api.pb-c.h"

struct image_store;
struct rootfs_idmap;
struct json_writer;
struct json_value;

struct image_volume
{
  size_t mount_index; /* in ContainerConfig.mounts */
  char *image_id;     /* "sha256:<hex>" the mount's image resolved to */
  char *source;       /* while CreateContainer runs: the host path to bind */
};

struct image_volumes
{
  struct image_volume *items;
  size_t n;
};

/* The checks of an image mount that need no host facts, EINVAL naming
 * the mount: an image name and no host path; image_sub_path only with an
 * image, relative and without ".." components; no bidirectional
 * propagation (nothing can propagate out of a read-only image). */
int image_volume_check_mount(const Runtime__V1__Mount *m, struct error *err);

/* The ids of the images of config's image mounts, into *out (cleared
 * first).  An image the store does not hold: ENOENT (the kubelet pulls
 * before it creates); nothing is mounted. */
int image_volumes_resolve(struct image_store *store, const Runtime__V1__ContainerConfig *config,
                          struct image_volumes *out, struct error *err);

/* Mounts every resolved volume under dir (the container's) and sets its
 * source: the mount, or its image_sub_path resolved beneath it (must
 * exist; ".." and symlinks leading out of the image are refused, EINVAL).
 * idmap: the pod's user namespace (files keep the owners they have in
 * the image, as in the root file system), NULL without.  On failure what
 * was mounted stays for the caller's rootfs_unmount. */
int image_volumes_mount(struct image_store *store, const char *dir,
                        const Runtime__V1__ContainerConfig *config,
                        const struct rootfs_idmap *idmap, struct image_volumes *volumes,
                        struct error *err);

/* The volume of mount mount_index, or NULL when that mount is no image
 * volume. */
const struct image_volume *image_volumes_find(const struct image_volumes *volumes,
                                              size_t mount_index);
/* Whether one of volumes is image_id. */
bool image_volumes_use(const struct image_volumes *volumes, const char *image_id);

void image_volumes_clear(struct image_volumes *volumes);

/* For state.json: key: [{"mount": <index>, "image_id": "sha256:..."}];
 * read_json skips what is not such an entry.  Sources are not kept. */
void image_volumes_write_json(struct json_writer *writer, const char *key,
                              const struct image_volumes *volumes);
void image_volumes_read_json(const struct json_value *value, struct image_volumes *out);

#endif
