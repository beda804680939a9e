/* pod/pause_rootfs: the root file system every pod's pause process runs
 * from, and its command.
 *
 * Built in (pause_image ""): the crid-pause binary alone, in
 * <root>/pause/rootfs, assembled at start: a node needs no image and no
 * registry to start pods.  An image (pause_image = a reference): looked
 * up in the image store, pulled with the node's registry settings the
 * first time a pod needs it, and mounted once per image id as a read-only
 * overlay at <root>/pause/images/<hex>/rootfs, over a skeleton of the
 * mount points the runtimes need (dev, proc, sys, ...), which pause
 * images do not carry; its command is the image's Entrypoint and Cmd
 * (/pause when it has neither).  The image is in use while it is the
 * configured pause: RemoveImage refuses it and ListImages shows it
 * pinned, as the kubelet expects of a runtime's pause image.
 *
 * Mounts outlive nothing: running pauses hold their root through their
 * own mount namespace, so crid unmounts what it mounted when it stops
 * and mounts again when a pod next needs it. */
#ifndef CRID_POD_PAUSE_ROOTFS_H
#define CRID_POD_PAUSE_ROOTFS_H

#include <stdbool.h>

#include "common/error.h"

struct image_store;
struct image_puller;
struct pause_rootfs;

struct pause_rootfs_options
{
  const char *root;   /* crid's root: <root>/pause */
  const char *binary; /* crid-pause, for the built-in root */
  const char *image;  /* "" or NULL: the built-in root */
  struct image_store *images;
  struct image_puller *puller; /* NULL: the image must be in the store */
};

struct pause_rootfs *pause_rootfs_new(const struct pause_rootfs_options *options,
                                      struct error *err);
void pause_rootfs_free(struct pause_rootfs *pause);

/* The root file system and the command (NULL-terminated) of a pause
 * about to be created; pulls and mounts the image on first need.  Caller
 * frees both. */
int pause_rootfs_get(struct pause_rootfs *pause, char **rootfs, char ***args, struct error *err);

/* The id of the configured pause image as the store has it now; NULL
 * for the built-in pause or an image not (yet) in the store.  Caller
 * frees. */
char *pause_rootfs_image_id(struct pause_rootfs *pause);
/* Whether image_id is the configured pause image. */
bool pause_rootfs_uses_image(struct pause_rootfs *pause, const char *image_id);

#endif
