/* image/store: the images crid holds on disk, under <root>/images:
 *
 *   blobs/sha256/<hex>        manifests, configs and compressed layers,
 *                             written to tmp/ and renamed after their digest
 *                             was verified
 *   layers/<chain-hex>/diff/  one extracted layer, its own overlay lowerdir
 *   layers/<chain-hex>/layer.json   its diff id, bytes and inodes
 *   images.json               every image: id, tags, digests, layers;
 *                             versioned, rewritten atomically
 *   tmp/                      work in progress (blobs being written, layers
 *                             being unpacked)
 *   trash/                    removed layers and tmp/ leftovers, deleted by a
 *                             background thread (common/trash)
 *   store.lock                flock()ed by whoever writes the store
 *
 * A layer appears in layers/ by one rename, complete with its metadata, and
 * images.json only ever names layers already there, so an interrupted pull
 * (even kill -9) never leaves a half image visible.  Opening the store for
 * writing moves tmp/'s content to the trash and removes layers and blobs no
 * image references.  A removed image is gone from images.json before its
 * layers move to the trash, so RemoveImage does not wait for the deletion.
 *
 * Only one process writes a store: image_store_open() takes store.lock and
 * fails with EBUSY while another holds it (a running crid, or a
 * `crid image import`).  IMAGE_STORE_READ_ONLY opens without the lock,
 * cleanup or writes, for `crid image list` beside a running daemon.
 *
 * Threads: every function may be called from any thread.  The store's
 * mutex is a leaf lock: no callback is ever called with it held.
 *
 * Names: wherever a function takes an image `name`, it may be the id
 * ("sha256:<hex>"), the bare 64-hex id, a unique prefix (at least 4
 * characters) of the hex id, a tag reference in any form that normalises to
 * a stored tag ("busybox" = "docker.io/library/busybox:latest"), or a
 * digest reference "<name>@sha256:<hex>" naming a stored repo digest or the
 * image's manifest. */
#ifndef CRID_IMAGE_STORE_H
#define CRID_IMAGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct image_config;
struct image_store;

/* One layer of an image, bottom first. */
struct image_layer
{
  char *chain_id;   /* "sha256:<hex>": the key of layers/<chain-hex> */
  char *diff_id;    /* sha256 of the uncompressed tar */
  char *digest;     /* the blob as distributed (maybe compressed) */
  int64_t size;     /* bytes of that blob */
  char *media_type; /* of that blob */
};

/* An image as the store records it.  Returned copies are the caller's. */
struct image_info
{
  char *id;              /* "sha256:<hex>" of the config blob */
  char *manifest_digest; /* the (platform) image manifest */
  char **manifests;      /* every manifest blob kept: the image manifest and the
                          * indexes that led to it; NULL-terminated */
  char **repo_tags;      /* normalised "name:tag"; NULL-terminated */
  char **repo_digests;   /* "name@sha256:<hex>"; NULL-terminated */
  char *user;            /* the config's User ("" = root) */
  int64_t size;          /* config + every layer blob: > 0 */
  int64_t created_ns;    /* when it first entered the store */
  struct image_layer *layers;
  size_t n_layers;
};

void image_info_free(struct image_info *info);
void image_info_list_free(struct image_info **list, size_t n);

enum
{
  IMAGE_STORE_READ_ONLY = 1 << 0,
};

/* Opens (creating when missing) the store of root, i.e. <root>/images. */
struct image_store *image_store_open(const char *root, unsigned flags, struct error *err);
void image_store_free(struct image_store *store);

/* <root>/images */
const char *image_store_dir(const struct image_store *store);

/* Answers whether a container uses image_id; RemoveImage refuses such an
 * image (EBUSY).  Called without any store lock held. */
typedef bool (*image_in_use_fn)(void *arg, const char *image_id);
void image_store_set_in_use_check(struct image_store *store, image_in_use_fn fn, void *arg);

/* ---- Lookups ---------------------------------------------------------- */

/* The image called name (see above).  No such image: ENOENT.  name is no
 * id and no valid reference: EINVAL. */
int image_store_lookup(struct image_store *store, const char *name, struct image_info **out,
                       struct error *err);

/* Every image, in the order they entered the store. */
struct image_info **image_store_list(struct image_store *store, size_t *n);

/* For containers: the image's id and the diff dirs of its layers, top
 * layer first (the order of overlay's lowerdir=), NULL-terminated. */
int image_store_layer_dirs(struct image_store *store, const char *name, char **id, char ***dirs,
                           struct error *err);

/* The image's config, parsed, and as the bytes it was stored as. */
int image_store_config(struct image_store *store, const char *name, struct image_config **config,
                       struct error *err);
int image_store_config_bytes(struct image_store *store, const char *name, char **bytes, size_t *len,
                             struct error *err);

/* ---- Removal ---------------------------------------------------------- */

/* Removes the image called name with all its tags and digests, then the
 * layers and blobs nothing references any more.  An absent image is fine
 * (*removed false).  Used by a container: EBUSY. */
int image_store_remove(struct image_store *store, const char *name, bool *removed,
                       struct error *err);

/* Removes every layer and blob that no image references and nothing
 * holds (after a failed pull, say). */
void image_store_collect_garbage(struct image_store *store);

/* ---- Usage (ImageFsInfo) ---------------------------------------------- */

/* Running totals kept as layers and blobs come and go: no tree walk. */
struct image_store_usage
{
  int64_t timestamp_ns;
  uint64_t used_bytes;
  uint64_t inodes_used;
};

void image_store_usage(struct image_store *store, struct image_store_usage *out);

/* ---- Filling the store (pull and import) ------------------------------ */

/* A hold keeps a blob (by digest) or a layer (by chain id) from being
 * collected while an image that will reference it is being assembled.
 * Take it before checking that the thing exists. */
void image_store_hold(struct image_store *store, const char *key);
void image_store_release(struct image_store *store, const char *key);

bool image_store_has_blob(struct image_store *store, const char *digest);
bool image_store_has_layer(struct image_store *store, const char *chain_id);
/* <dir>/blobs/sha256/<hex>; caller frees.  digest must be valid. */
char *image_store_blob_path(const struct image_store *store, const char *digest);

/* Reads a stored blob, at most max_size bytes, verifying its digest. */
int image_store_read_blob(struct image_store *store, const char *digest, size_t max_size,
                          char **bytes, size_t *len, struct error *err);
/* Stores bytes as blob digest after checking they hash to it. */
int image_store_put_blob(struct image_store *store, const char *digest, const void *bytes,
                         size_t len, struct error *err);

/* A fresh empty dir tmp/<kind>-<random> for other work (an archive being
 * imported); gone at the next open if not removed before. */
int image_store_tmp_dir(struct image_store *store, const char *kind, char **path,
                        struct error *err);

/* A blob being written: a file in tmp/, hashed as it grows. */
struct blob_writer;

struct blob_writer *image_store_blob_create(struct image_store *store, struct error *err);
/* For bytes whose digest the caller checks itself before it commits (a
 * download: registry_fetch_blob hashes every byte it hands on and fails
 * on a mismatch): they are not hashed a second time, and commit checks
 * only the size.  Committing after a failed check is the caller's bug. */
struct blob_writer *image_store_blob_create_verified(struct image_store *store, struct error *err);
int blob_writer_write(struct blob_writer *w, const void *data, size_t len, struct error *err);
/* Checks size (when >= 0) and digest (unless the writer was created
 * verified), fsyncs and renames the file into
 * blobs/; a blob already there is kept and ours dropped.  Frees w, also on
 * failure. */
int blob_writer_commit(struct blob_writer *w, const char *digest, int64_t size, struct error *err);
/* Deletes the file and frees w.  NULL is fine. */
void blob_writer_abort(struct blob_writer *w);

/* A fresh work dir tmp/<random>/ holding an empty diff/ to unpack into. */
int image_store_layer_create(struct image_store *store, char **work_dir, char **diff_dir,
                             struct error *err);
/* Measures diff/ (bytes and inodes, once), writes the layer's metadata and
 * renames the work dir to layers/<chain-hex>.  When that layer is already
 * there, ours is dropped.  work_dir is gone afterwards either way. */
int image_store_layer_commit(struct image_store *store, const char *work_dir, const char *chain_id,
                             const char *diff_id, struct error *err);
/* Deletes an unfinished work dir. */
void image_store_layer_abort(struct image_store *store, const char *work_dir);

/* What an image being added consists of; every blob and layer named must
 * be in the store already (and held). */
struct image_add
{
  const char *id;              /* config digest */
  const char *manifest_digest; /* the image manifest */
  const char *index_digest;    /* the index it was chosen from, or NULL */
  const char *tag;             /* normalised "name:tag" to point here, or NULL */
  const char *repo_digest;     /* "name@digest" to record, or NULL */
  const char *user;            /* the config's User, or NULL */
  const struct image_layer *layers;
  size_t n_layers;
  int64_t config_size;
};

/* Records the image, or adds the tag and digest to the image with that id
 * already there.  A tag held by another image moves here (that image stays,
 * reachable by id and digest).  images.json is rewritten before return. */
int image_store_add(struct image_store *store, const struct image_add *add, struct error *err);

#endif
