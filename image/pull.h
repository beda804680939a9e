/* image/pull: pulling an image from a registry into the store.
 *
 * A pull resolves the reference to a manifest (choosing the host's platform
 * in an index), fetches the config, then fetches and unpacks every missing
 * layer in parallel: for each layer one thread streams the blob into its
 * blob file and decompresses it into a layer unpacker (image/layer), whose
 * own thread extracts it, so a layer is unpacked by the time its last byte
 * arrived.  At most
 * max_concurrent_downloads blobs download at once (for the whole puller).
 * Each layer's diff id must equal the config's rootfs.diff_ids[i].
 *
 * Concurrent pulls share work: a blob or layer being fetched for one pull
 * is waited for by the others (keyed by registry and blob digest or chain
 * id), so each is downloaded once.  A shared download continues while any
 * pull still wants it; a pull that is cancelled just stops waiting.
 *
 * A failed or cancelled pull leaves nothing behind: once its downloads
 * stopped, the blobs and layers it stored that no image references are
 * collected (a retry downloads them again). */
#ifndef CRID_IMAGE_PULL_H
#define CRID_IMAGE_PULL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "image/manifest.h"

struct image_store;
struct registry_client;
struct registry_auth;
struct image_puller;

struct image_puller_options
{
  struct image_store *store;
  struct registry_client *registry;
  int max_concurrent_downloads;     /* <= 0: 3 */
  int64_t progress_timeout_seconds; /* no byte for this long fails a transfer; 0 = none */
};

/* The store and registry client stay the caller's and must outlive it. */
struct image_puller *image_puller_new(const struct image_puller_options *options);
/* After every pull returned. */
void image_puller_free(struct image_puller *puller);

/* A configuration reload: the options' two limits, for downloads and
 * transfers that start from now on (a running transfer keeps its own
 * timeout; a lowered download limit lets running downloads finish). */
void image_puller_set_limits(struct image_puller *puller, int max_concurrent_downloads,
                             int64_t progress_timeout_seconds);

struct image_pull_options
{
  const struct registry_auth *auth; /* NULL: anonymous */
  /* Polled while the pull runs; true stops it with ECANCELED, or with
   * ETIMEDOUT when deadline_passed says so. */
  bool (*cancelled)(void *arg);
  bool (*deadline_passed)(void *arg);
  void *cancel_arg;
};

/* Pulls reference (in any form image_reference_parse takes) and returns
 * the image id ("sha256:<hex>" of its config).  Pulled by tag, the
 * normalised tag points at the image afterwards; pulled by digest, only
 * "<name>@<digest>" is recorded.  Invalid reference: EINVAL. */
int image_pull(struct image_puller *puller, const char *reference,
               const struct image_pull_options *options, char **image_id, struct error *err);

/* Unpacks the layer blob at path into the store as layer chain_id, checking
 * that its diff id is diff_id.  For blobs already on disk (a blob in the
 * store, an imported archive). */
int image_layer_from_file(struct image_store *store, const char *path,
                          enum layer_compression compression, const char *chain_id,
                          const char *diff_id, struct error *err);

/* The compression of a layer file by its first bytes (gzip, zstd, else
 * none): for archives whose media types do not say. */
int layer_sniff_compression(const char *path, enum layer_compression *out, struct error *err);

#endif
