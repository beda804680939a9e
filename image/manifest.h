/* image/manifest: the JSON documents of an image: OCI index and Docker
 * manifest list, OCI and Docker schema2 image manifests, the image config;
 * and the choice of the host's platform in an index. */
#ifndef CRID_IMAGE_MANIFEST_H
#define CRID_IMAGE_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define MANIFEST_MAX_SIZE (4 * 1024 * 1024)

#define MEDIA_TYPE_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MEDIA_TYPE_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MEDIA_TYPE_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MEDIA_TYPE_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
/* The Accept header of manifest requests: every type we parse. */
#define MANIFEST_ACCEPT                                                                            \
  MEDIA_TYPE_OCI_INDEX ", " MEDIA_TYPE_OCI_MANIFEST ", " MEDIA_TYPE_DOCKER_LIST                    \
                       ", " MEDIA_TYPE_DOCKER_MANIFEST

enum layer_compression
{
  LAYER_COMPRESSION_NONE,
  LAYER_COMPRESSION_GZIP,
  LAYER_COMPRESSION_ZSTD,
};

struct descriptor
{
  char *media_type;
  char *digest; /* validated "sha256:<hex>" */
  int64_t size; /* >= 0 */
  /* platform, for index entries; NULL when absent */
  char *os;
  char *architecture;
  char *variant;
  bool attestation; /* unknown/unknown platform or attestation annotation */
  char **urls;      /* NULL-terminated or NULL */
};

enum manifest_kind
{
  MANIFEST_KIND_INDEX, /* OCI index or Docker manifest list */
  MANIFEST_KIND_IMAGE, /* OCI or Docker schema2 image manifest */
};

struct manifest
{
  enum manifest_kind kind;
  char *media_type;
  /* MANIFEST_KIND_IMAGE */
  struct descriptor config;
  struct descriptor *layers;
  size_t n_layers;
  /* MANIFEST_KIND_INDEX */
  struct descriptor *manifests;
  size_t n_manifests;
};

/* content_type is the HTTP Content-Type (may be NULL: then the document's
 * mediaType decides).  Schema1 and unknown types are refused with a clear
 * error (EINVAL). */
int manifest_parse(const char *content_type, const char *bytes, size_t len, struct manifest **out,
                   struct error *err);
void manifest_free(struct manifest *m);

/* The compression of a layer descriptor's media type; -1 (EINVAL) for a
 * type that is not a layer we can unpack. */
int layer_media_type_compression(const char *media_type, enum layer_compression *out,
                                 struct error *err);

/* Go names of the host: os "linux", architecture "amd64"/"arm64"/..., variant
 * ("v7" for arm, "v8" for arm64, else ""). */
void platform_host(const char **os, const char **architecture, const char **variant);

/* The index entry for os/architecture/variant (arm variants must match;
 * for arm64 "" and "v8" are equal; attestation entries never match).
 * ENOENT naming the platform when none matches. */
int manifest_select_platform(const struct manifest *index, const char *os, const char *architecture,
                             const char *variant, const struct descriptor **out, struct error *err);

struct image_config
{
  char *os;
  char *architecture;
  char *variant;
  char *user;        /* "" = root */
  char **env;        /* NULL-terminated */
  char **entrypoint; /* NULL-terminated or NULL */
  char **cmd;        /* NULL-terminated or NULL */
  char *working_dir;
  char *stop_signal;
  char **volumes;  /* NULL-terminated */
  char **labels;   /* key, value, key, value, ..., NULL */
  char **diff_ids; /* NULL-terminated, validated digests */
  size_t n_diff_ids;
};

int image_config_parse(const char *bytes, size_t len, struct image_config **out, struct error *err);
void image_config_free(struct image_config *config);

/* ChainID of diff_ids[0..n-1]: "sha256:<hex>" into out (72 bytes). */
void layer_chain_id(char *const *diff_ids, size_t n, char out[72]);

#endif
