/* image/import: images from a tarball into the store, without a registry.
 *
 * Two formats: an OCI image layout (index.json, blobs/<alg>/<hex>), as
 * `skopeo copy ... oci-archive:` and `docker save` (25+) write it, and a
 * docker archive (manifest.json with Config, RepoTags, Layers), as older
 * `docker save` writes it.  When both are present the OCI layout is used.
 *
 * Names: an OCI index entry's io.containerd.image.name annotation, else its
 * org.opencontainers.image.ref.name when that is a full reference (holds a
 * ':' or '/'; a bare tag names no repository, so such an image is imported
 * by id only); a docker archive's RepoTags.  Every name is normalised like
 * a pulled reference ("busybox:1" -> "docker.io/library/busybox:1").
 * OCI images with a name also get the repo digest "<name>@<index entry
 * digest>".
 *
 * The archive is unpacked into the store's tmp/ first; symlinks and
 * hardlinks inside it are followed only within the archive. */
#ifndef CRID_IMAGE_IMPORT_H
#define CRID_IMAGE_IMPORT_H

#include <stddef.h>

#include "common/error.h"

struct image_store;

struct image_imported
{
  char *id;    /* "sha256:<hex>" */
  char **tags; /* NULL-terminated; may be empty */
};

int image_import(struct image_store *store, const char *archive_path, struct image_imported **out,
                 size_t *n, struct error *err);
void image_imported_free(struct image_imported *list, size_t n);

#endif
