/* image/store: content-addressed blobs, extracted layers keyed by chain id,
 * and images.json, with the in-memory tables that answer lookups and keep
 * the usage totals.  See store.h for the layout and its guarantees. */
#include "image/store.h"
#include "common/atomic_file.h"
#include "common/cleanup.h"
#include "common/failpoint.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "common/trash.h"
#include "image/digest.h"
#include "image/manifest.h"
#include "image/reference.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define INDEX_VERSION 1
#define LAYER_META_VERSION 1
#define INDEX_MAX_SIZE (64 * 1024 * 1024)
#define CONFIG_MAX_SIZE (16 * 1024 * 1024)
#define LAYER_META_MAX_SIZE (64 * 1024)
/* What the layer dir and its layer.json add to a layer's diff tree. */
#define LAYER_OVERHEAD_BYTES 8192
#define LAYER_OVERHEAD_INODES 2
#define MIN_ID_PREFIX 4

struct layer_entry
{
  char *chain_id;
  char *diff_id;
  uint64_t bytes; /* diff tree plus overhead */
  uint64_t inodes;
};

struct blob_entry
{
  char *digest;
  uint64_t bytes;
};

struct hold_entry
{
  char *key;
  unsigned count;
};

struct image_store
{
  char *dir;
  char *blobs_dir;
  char *layers_dir;
  char *tmp_dir;
  char *index_path;
  unsigned flags;
  int lock_fd;
  /* <dir>/trash: removed layers and tmp/ leftovers are renamed there and
   * deleted in the background (NULL when read-only) */
  struct trash *trash;

  /* Serialises removals, so the in-use check and the removal it allows
   * are not interleaved with another removal. */
  pthread_mutex_t remove_lock;
  image_in_use_fn in_use;
  void *in_use_arg;

  /* Guards everything below; a leaf lock. */
  pthread_mutex_t lock;
  struct image_info **images;
  size_t n_images;
  struct layer_entry *layers;
  size_t n_layers;
  struct blob_entry *blobs;
  size_t n_blobs;
  struct hold_entry *holds;
  size_t n_holds;
  uint64_t used_bytes;
  uint64_t inodes_used;
};

/* ---- Small helpers ------------------------------------------------------ */

static bool
strv_contains(char *const *strv, const char *s)
{
  for (size_t i = 0; strv && strv[i]; i++)
    if (strcmp(strv[i], s) == 0)
      return true;
  return false;
}

/* Appends a copy of s unless it is there already. */
static void
strv_add(char ***strv, const char *s)
{
  size_t n = strv_length(*strv);

  if (strv_contains(*strv, s))
    return;
  *strv = xrealloc(*strv, (n + 2) * sizeof **strv);
  (*strv)[n] = xstrdup(s);
  (*strv)[n + 1] = NULL;
}

static bool
strv_remove(char **strv, const char *s)
{
  size_t n = strv_length(strv);

  for (size_t i = 0; i < n; i++)
    if (strcmp(strv[i], s) == 0)
      {
        free(strv[i]);
        memmove(&strv[i], &strv[i + 1], (n - i) * sizeof *strv);
        return true;
      }
  return false;
}

static char *
random_name(const char *kind)
{
  char id[65];
  struct error err = ERROR_INIT;

  if (id_generate(id, &err) < 0)
    {
      /* getrandom cannot fail once the pool is initialised; keep going
       * with a name unique within this process. */
      static unsigned counter;
      error_clear(&err);
      return xasprintf("%s-%d-%u", kind, (int)getpid(), __atomic_add_fetch(&counter, 1, 0));
    }
  id[16] = '\0';
  return xasprintf("%s-%s", kind, id);
}

static const char *
digest_hex(const char *digest)
{
  return digest + strlen("sha256:");
}

static uint64_t
stat_bytes(const struct stat *st)
{
  return (uint64_t)st->st_blocks * 512;
}

/* ---- Image records ------------------------------------------------------ */

static void
layer_clear(struct image_layer *layer)
{
  free(layer->chain_id);
  free(layer->diff_id);
  free(layer->digest);
  free(layer->media_type);
}

void
image_info_free(struct image_info *info)
{
  if (info == NULL)
    return;
  free(info->id);
  free(info->manifest_digest);
  free(info->user);
  strv_free(info->manifests);
  strv_free(info->repo_tags);
  strv_free(info->repo_digests);
  for (size_t i = 0; i < info->n_layers; i++)
    layer_clear(&info->layers[i]);
  free(info->layers);
  free(info);
}

void
image_info_list_free(struct image_info **list, size_t n)
{
  for (size_t i = 0; i < n; i++)
    image_info_free(list[i]);
  free(list);
}

static struct image_info *
image_info_copy(const struct image_info *info)
{
  struct image_info *copy = xcalloc(1, sizeof *copy);

  copy->id = xstrdup(info->id);
  copy->manifest_digest = xstrdup(info->manifest_digest);
  copy->manifests = strv_copy(info->manifests);
  copy->repo_tags = strv_copy(info->repo_tags);
  copy->repo_digests = strv_copy(info->repo_digests);
  copy->user = xstrdup(info->user);
  copy->size = info->size;
  copy->created_ns = info->created_ns;
  copy->n_layers = info->n_layers;
  copy->layers = xcalloc(info->n_layers, sizeof *copy->layers);
  for (size_t i = 0; i < info->n_layers; i++)
    {
      copy->layers[i].chain_id = xstrdup(info->layers[i].chain_id);
      copy->layers[i].diff_id = xstrdup(info->layers[i].diff_id);
      copy->layers[i].digest = xstrdup(info->layers[i].digest);
      copy->layers[i].size = info->layers[i].size;
      copy->layers[i].media_type = xstrdup(info->layers[i].media_type);
    }
  return copy;
}

/* ---- images.json -------------------------------------------------------- */

static void
write_strv(struct json_writer *w, const char *key, char *const *strv)
{
  json_write_key(w, key);
  json_begin_array(w);
  for (size_t i = 0; strv && strv[i]; i++)
    json_write_string(w, strv[i]);
  json_end_array(w);
}

static void
write_image(struct json_writer *w, const struct image_info *info)
{
  json_begin_object(w);
  json_write_key(w, "id");
  json_write_string(w, info->id);
  json_write_key(w, "manifest_digest");
  json_write_string(w, info->manifest_digest);
  write_strv(w, "manifests", info->manifests);
  write_strv(w, "repo_tags", info->repo_tags);
  write_strv(w, "repo_digests", info->repo_digests);
  json_write_key(w, "user");
  json_write_string(w, info->user);
  json_write_key(w, "size");
  json_write_int(w, info->size);
  json_write_key(w, "created");
  json_write_int(w, info->created_ns);
  json_write_key(w, "layers");
  json_begin_array(w);
  for (size_t i = 0; i < info->n_layers; i++)
    {
      const struct image_layer *layer = &info->layers[i];
      json_begin_object(w);
      json_write_key(w, "chain_id");
      json_write_string(w, layer->chain_id);
      json_write_key(w, "diff_id");
      json_write_string(w, layer->diff_id);
      json_write_key(w, "digest");
      json_write_string(w, layer->digest);
      json_write_key(w, "size");
      json_write_int(w, layer->size);
      json_write_key(w, "media_type");
      json_write_string(w, layer->media_type);
      json_end_object(w);
    }
  json_end_array(w);
  json_end_object(w);
}

/* With the lock held. */
static int
write_index(struct image_store *store, struct error *err)
{
  struct json_writer *w = json_writer_new(true);
  cleanup_free char *text = NULL;
  size_t len;

  json_begin_object(w);
  json_write_key(w, "version");
  json_write_int(w, INDEX_VERSION);
  json_write_key(w, "images");
  json_begin_array(w);
  for (size_t i = 0; i < store->n_images; i++)
    write_image(w, store->images[i]);
  json_end_array(w);
  json_end_object(w);
  text = json_writer_finish(w, &len);
  if (atomic_write_file(store->index_path, text, len, 0600, err) < 0)
    return error_wrap(err, "write image index");
  return 0;
}

static int
read_strv(const struct json_value *object, const char *key, char ***out, struct error *err)
{
  const struct json_value *array = json_object_get(object, key);
  size_t n = json_array_size(array);
  char **strv;

  if (array && !json_is_array(array))
    return error_set(err, EINVAL, "\"%s\" is not an array", key);
  strv = xcalloc(n + 1, sizeof *strv);
  for (size_t i = 0; i < n; i++)
    {
      const char *s = json_string(json_array_at(array, i));
      if (s == NULL)
        {
          strv_free(strv);
          return error_set(err, EINVAL, "\"%s\"[%zu] is not a string", key, i);
        }
      strv[i] = xstrdup(s);
    }
  *out = strv;
  return 0;
}

/* A digest member that becomes part of a path: validated here. */
static int
read_digest(const struct json_value *object, const char *key, char **out, struct error *err)
{
  const char *s = json_object_get_string(object, key);

  if (s == NULL || !digest_is_valid(s))
    return error_set(err, EINVAL, "\"%s\" is missing or not a sha256 digest", key);
  *out = xstrdup(s);
  return 0;
}

static int
read_layer(const struct json_value *object, struct image_layer *layer, struct error *err)
{
  const char *media_type = json_object_get_string(object, "media_type");

  if (read_digest(object, "chain_id", &layer->chain_id, err) < 0
      || read_digest(object, "diff_id", &layer->diff_id, err) < 0
      || read_digest(object, "digest", &layer->digest, err) < 0)
    return -1;
  if (!json_integer(json_object_get(object, "size"), &layer->size) || layer->size < 0)
    return error_set(err, EINVAL, "layer \"size\" is missing or negative");
  layer->media_type = xstrdup(media_type ? media_type : "");
  return 0;
}

static struct image_info *
read_image(const struct json_value *object, struct error *err)
{
  struct image_info *info = xcalloc(1, sizeof *info);
  const struct json_value *layers = json_object_get(object, "layers");
  const char *user = json_object_get_string(object, "user");

  if (!json_is_object(object))
    goto invalid_object;
  if (read_digest(object, "id", &info->id, err) < 0
      || read_digest(object, "manifest_digest", &info->manifest_digest, err) < 0
      || read_strv(object, "manifests", &info->manifests, err) < 0
      || read_strv(object, "repo_tags", &info->repo_tags, err) < 0
      || read_strv(object, "repo_digests", &info->repo_digests, err) < 0)
    goto fail;
  info->user = xstrdup(user);
  for (size_t i = 0; info->manifests[i]; i++)
    if (!digest_is_valid(info->manifests[i]))
      {
        error_set(err, EINVAL, "\"manifests\"[%zu] is not a sha256 digest", i);
        goto fail;
      }
  if (!json_integer(json_object_get(object, "size"), &info->size)
      || !json_integer(json_object_get(object, "created"), &info->created_ns))
    {
      error_set(err, EINVAL, "\"size\" or \"created\" is missing");
      goto fail;
    }
  if (!json_is_array(layers))
    {
      error_set(err, EINVAL, "\"layers\" is not an array");
      goto fail;
    }
  info->n_layers = json_array_size(layers);
  info->layers = xcalloc(info->n_layers, sizeof *info->layers);
  for (size_t i = 0; i < info->n_layers; i++)
    if (read_layer(json_array_at(layers, i), &info->layers[i], err) < 0)
      {
        error_wrap(err, "layer %zu", i);
        goto fail;
      }
  return info;

invalid_object:
  error_set(err, EINVAL, "an image is not an object");
fail:
  image_info_free(info);
  return NULL;
}

/* With the lock held (or before the store is shared). */
static int
load_index(struct image_store *store, struct error *err)
{
  cleanup_free char *text = NULL;
  cleanup_json struct json_value *root = NULL;
  const struct json_value *images;
  size_t len;
  int64_t version;

  if (read_file(store->index_path, INDEX_MAX_SIZE, &text, &len, err) < 0)
    {
      if (err->code != ENOENT)
        return -1;
      error_clear(err);
      return 0;
    }
  root = json_parse(text, len, err);
  if (root == NULL)
    return error_wrap(err, "%s", store->index_path);
  if (!json_integer(json_object_get(root, "version"), &version))
    return error_set(err, EINVAL, "%s: no \"version\"", store->index_path);
  if (version > INDEX_VERSION)
    return error_set(err, EINVAL,
                     "%s: version %lld was written by a newer crid (this one knows %d)",
                     store->index_path, (long long)version, INDEX_VERSION);
  images = json_object_get(root, "images");
  if (!json_is_array(images))
    return error_set(err, EINVAL, "%s: \"images\" is not an array", store->index_path);
  store->n_images = json_array_size(images);
  store->images = xcalloc(store->n_images, sizeof *store->images);
  for (size_t i = 0; i < store->n_images; i++)
    {
      store->images[i] = read_image(json_array_at(images, i), err);
      if (store->images[i] == NULL)
        return error_wrap(err, "%s: image %zu", store->index_path, i);
    }
  return 0;
}

/* ---- Tables ------------------------------------------------------------- */

static struct layer_entry *
find_layer(struct image_store *store, const char *chain_id)
{
  for (size_t i = 0; i < store->n_layers; i++)
    if (strcmp(store->layers[i].chain_id, chain_id) == 0)
      return &store->layers[i];
  return NULL;
}

static struct blob_entry *
find_blob(struct image_store *store, const char *digest)
{
  for (size_t i = 0; i < store->n_blobs; i++)
    if (strcmp(store->blobs[i].digest, digest) == 0)
      return &store->blobs[i];
  return NULL;
}

static void
add_layer_entry(struct image_store *store, const char *chain_id, const char *diff_id,
                uint64_t bytes, uint64_t inodes)
{
  struct layer_entry *entry;

  store->layers = xrealloc(store->layers, (store->n_layers + 1) * sizeof *store->layers);
  entry = &store->layers[store->n_layers++];
  entry->chain_id = xstrdup(chain_id);
  entry->diff_id = xstrdup(diff_id);
  entry->bytes = bytes;
  entry->inodes = inodes;
  store->used_bytes += bytes;
  store->inodes_used += inodes;
}

static void
add_blob_entry(struct image_store *store, const char *digest, uint64_t bytes)
{
  struct blob_entry *entry;

  store->blobs = xrealloc(store->blobs, (store->n_blobs + 1) * sizeof *store->blobs);
  entry = &store->blobs[store->n_blobs++];
  entry->digest = xstrdup(digest);
  entry->bytes = bytes;
  store->used_bytes += bytes;
  store->inodes_used += 1;
}

static void
drop_layer_entry(struct image_store *store, size_t index)
{
  struct layer_entry *entry = &store->layers[index];

  store->used_bytes -= entry->bytes;
  store->inodes_used -= entry->inodes;
  free(entry->chain_id);
  free(entry->diff_id);
  store->layers[index] = store->layers[--store->n_layers];
}

static void
drop_blob_entry(struct image_store *store, size_t index)
{
  struct blob_entry *entry = &store->blobs[index];

  store->used_bytes -= entry->bytes;
  store->inodes_used -= 1;
  free(entry->digest);
  store->blobs[index] = store->blobs[--store->n_blobs];
}

static bool
is_held(struct image_store *store, const char *key)
{
  for (size_t i = 0; i < store->n_holds; i++)
    if (strcmp(store->holds[i].key, key) == 0)
      return true;
  return false;
}

void
image_store_hold(struct image_store *store, const char *key)
{
  pthread_mutex_lock(&store->lock);
  for (size_t i = 0; i < store->n_holds; i++)
    if (strcmp(store->holds[i].key, key) == 0)
      {
        store->holds[i].count++;
        pthread_mutex_unlock(&store->lock);
        return;
      }
  store->holds = xrealloc(store->holds, (store->n_holds + 1) * sizeof *store->holds);
  store->holds[store->n_holds].key = xstrdup(key);
  store->holds[store->n_holds].count = 1;
  store->n_holds++;
  pthread_mutex_unlock(&store->lock);
}

void
image_store_release(struct image_store *store, const char *key)
{
  pthread_mutex_lock(&store->lock);
  for (size_t i = 0; i < store->n_holds; i++)
    if (strcmp(store->holds[i].key, key) == 0)
      {
        if (--store->holds[i].count == 0)
          {
            free(store->holds[i].key);
            store->holds[i] = store->holds[--store->n_holds];
          }
        break;
      }
  pthread_mutex_unlock(&store->lock);
}

static bool
image_references_layer(const struct image_info *info, const char *chain_id)
{
  for (size_t i = 0; i < info->n_layers; i++)
    if (strcmp(info->layers[i].chain_id, chain_id) == 0)
      return true;
  return false;
}

static bool
image_references_blob(const struct image_info *info, const char *digest)
{
  if (strcmp(info->id, digest) == 0 || strv_contains(info->manifests, digest))
    return true;
  for (size_t i = 0; i < info->n_layers; i++)
    if (strcmp(info->layers[i].digest, digest) == 0)
      return true;
  return false;
}

static bool
layer_is_referenced(struct image_store *store, const char *chain_id)
{
  for (size_t i = 0; i < store->n_images; i++)
    if (image_references_layer(store->images[i], chain_id))
      return true;
  return false;
}

static bool
blob_is_referenced(struct image_store *store, const char *digest)
{
  for (size_t i = 0; i < store->n_images; i++)
    if (image_references_blob(store->images[i], digest))
      return true;
  return false;
}

/* ---- Paths and trash ---------------------------------------------------- */

char *
image_store_blob_path(const struct image_store *store, const char *digest)
{
  return xasprintf("%s/%s", store->blobs_dir, digest_hex(digest));
}

static char *
layer_path(const struct image_store *store, const char *chain_id)
{
  return xasprintf("%s/%s", store->layers_dir, digest_hex(chain_id));
}

/* A layer out of layers/ at once (under the lock: a pull may publish the
 * same chain id right after), deleted in the background. */
static void
trash_layer(struct image_store *store, const char *chain_id)
{
  cleanup_free char *path = layer_path(store, chain_id);
  struct error err = ERROR_INIT;

  if (trash_discard(store->trash, path, &err) < 0)
    {
      log_warn("image store: layer %s: %s", chain_id, error_message(&err));
      error_clear(&err);
    }
}

/* Drops every layer and blob that no image references and nothing holds.
 * With the lock held; layers go to the trash, blobs are unlinked at once. */
static void
collect_garbage(struct image_store *store)
{
  for (size_t i = store->n_layers; i-- > 0;)
    {
      const char *chain_id = store->layers[i].chain_id;
      if (layer_is_referenced(store, chain_id) || is_held(store, chain_id))
        continue;
      log_info("image store: removing unused layer %s", chain_id);
      trash_layer(store, chain_id);
      drop_layer_entry(store, i);
    }
  for (size_t i = store->n_blobs; i-- > 0;)
    {
      const char *digest = store->blobs[i].digest;
      cleanup_free char *path = NULL;
      if (blob_is_referenced(store, digest) || is_held(store, digest))
        continue;
      path = image_store_blob_path(store, digest);
      log_debug("image store: removing unused blob %s", digest);
      if (unlink(path) < 0 && errno != ENOENT)
        log_warn("image store: cannot remove %s: %s", path, strerror(errno));
      drop_blob_entry(store, i);
    }
}

/* ---- Measuring a layer -------------------------------------------------- */

struct measure
{
  uint64_t bytes;
  uint64_t inodes;
  ino_t *linked; /* inodes with several links, counted once */
  size_t n_linked;
};

static bool
seen_link(struct measure *m, ino_t ino)
{
  for (size_t i = 0; i < m->n_linked; i++)
    if (m->linked[i] == ino)
      return true;
  m->linked = xrealloc(m->linked, (m->n_linked + 1) * sizeof *m->linked);
  m->linked[m->n_linked++] = ino;
  return false;
}

static int
measure_dir(int dir_fd, const char *path, struct measure *m, struct error *err)
{
  cleanup_dir DIR *dir = fdopendir(dir_fd);
  struct dirent *entry;

  if (dir == NULL)
    {
      close(dir_fd);
      return error_set_errno(err, errno, "open %s", path);
    }
  while ((errno = 0, entry = readdir(dir)) != NULL)
    {
      struct stat st;
      if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
        continue;
      if (fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return error_set_errno(err, errno, "stat %s/%s", path, entry->d_name);
      if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 && seen_link(m, st.st_ino))
        continue;
      m->bytes += stat_bytes(&st);
      m->inodes++;
      if (S_ISDIR(st.st_mode))
        {
          cleanup_free char *child = xasprintf("%s/%s", path, entry->d_name);
          int fd
              = openat(dirfd(dir), entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (fd < 0)
            return error_set_errno(err, errno, "open %s", child);
          if (measure_dir(fd, child, m, err) < 0)
            return -1;
        }
    }
  if (errno != 0)
    return error_set_errno(err, errno, "read %s", path);
  return 0;
}

/* Bytes (allocated, as du counts them) and inodes of a tree. */
static int
measure_tree(const char *path, uint64_t *bytes, uint64_t *inodes, struct error *err)
{
  struct measure m = { 0 };
  struct stat st;
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  int ret;

  if (fd < 0)
    return error_set_errno(err, errno, "open %s", path);
  if (fstat(fd, &st) < 0)
    {
      close(fd);
      return error_set_errno(err, errno, "stat %s", path);
    }
  m.bytes = stat_bytes(&st);
  m.inodes = 1;
  ret = measure_dir(fd, path, &m, err);
  free(m.linked);
  *bytes = m.bytes;
  *inodes = m.inodes;
  return ret;
}

/* ---- Layer metadata ----------------------------------------------------- */

static int
write_layer_meta(const char *dir, const char *chain_id, const char *diff_id, uint64_t bytes,
                 uint64_t inodes, struct error *err)
{
  cleanup_free char *path = xasprintf("%s/layer.json", dir);
  struct json_writer *w = json_writer_new(true);
  cleanup_free char *text = NULL;
  size_t len;

  json_begin_object(w);
  json_write_key(w, "version");
  json_write_int(w, LAYER_META_VERSION);
  json_write_key(w, "chain_id");
  json_write_string(w, chain_id);
  json_write_key(w, "diff_id");
  json_write_string(w, diff_id);
  json_write_key(w, "size");
  json_write_int(w, (int64_t)bytes);
  json_write_key(w, "inodes");
  json_write_int(w, (int64_t)inodes);
  json_end_object(w);
  text = json_writer_finish(w, &len);
  return atomic_write_file(path, text, len, 0600, err);
}

/* Reads layers/<hex>/layer.json and checks it belongs to that dir. */
static int
read_layer_meta(struct image_store *store, const char *hex, struct error *err)
{
  cleanup_free char *path = xasprintf("%s/%s/layer.json", store->layers_dir, hex);
  cleanup_free char *diff = xasprintf("%s/%s/diff", store->layers_dir, hex);
  cleanup_free char *text = NULL;
  cleanup_json struct json_value *root = NULL;
  const char *chain_id, *diff_id;
  int64_t bytes, inodes;
  struct stat st;
  size_t len;

  if (read_file(path, LAYER_META_MAX_SIZE, &text, &len, err) < 0)
    return -1;
  root = json_parse(text, len, err);
  if (root == NULL)
    return error_wrap(err, "%s", path);
  chain_id = json_object_get_string(root, "chain_id");
  diff_id = json_object_get_string(root, "diff_id");
  if (chain_id == NULL || !digest_is_valid(chain_id) || strcmp(digest_hex(chain_id), hex) != 0
      || diff_id == NULL || !digest_is_valid(diff_id)
      || !json_integer(json_object_get(root, "size"), &bytes)
      || !json_integer(json_object_get(root, "inodes"), &inodes) || bytes < 0 || inodes < 0)
    return error_set(err, EINVAL, "%s: not the metadata of layer sha256:%s", path, hex);
  if (lstat(diff, &st) < 0 || !S_ISDIR(st.st_mode))
    return error_set(err, ENOENT, "%s: missing", diff);
  add_layer_entry(store, chain_id, diff_id, bytes, inodes);
  return 0;
}

/* ---- Opening ------------------------------------------------------------ */

static int
take_lock(struct image_store *store, struct error *err)
{
  cleanup_free char *path = xasprintf("%s/store.lock", store->dir);
  cleanup_close int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

  if (fd < 0)
    return error_set_errno(err, errno, "open %s", path);
  if (flock(fd, LOCK_EX | LOCK_NB) < 0)
    {
      if (errno == EWOULDBLOCK)
        return error_set(err, EBUSY,
                         "the image store %s is in use by another process (a running crid or "
                         "crid image import)",
                         store->dir);
      return error_set_errno(err, errno, "lock %s", path);
    }
  store->lock_fd = steal_fd(&fd);
  return 0;
}

/* Empties tmp/ (unfinished blobs and layers) into the trash and drops the
 * temporary files atomic_write_file may have left beside images.json. */
static void
clean_leftovers(struct image_store *store)
{
  cleanup_dir DIR *dir = opendir(store->tmp_dir);
  struct dirent *entry;

  while (dir && (entry = readdir(dir)) != NULL)
    {
      cleanup_free char *path = NULL;
      struct error err = ERROR_INIT;
      if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
        continue;
      path = xasprintf("%s/%s", store->tmp_dir, entry->d_name);
      log_info("image store: removing leftover %s", path);
      if (trash_discard(store->trash, path, &err) < 0)
        {
          log_warn("image store: %s", error_message(&err));
          error_clear(&err);
        }
    }
  if (dir)
    closedir(steal_pointer(&dir));
  dir = opendir(store->dir);
  while (dir && (entry = readdir(dir)) != NULL)
    if (str_has_prefix(entry->d_name, "images.json.tmp."))
      {
        cleanup_free char *path = xasprintf("%s/%s", store->dir, entry->d_name);
        log_info("image store: removing leftover %s", path);
        unlink(path);
      }
}

/* Something in layers/ or blobs/ that is not ours to understand. */
static void
drop_stray(struct image_store *store, const char *path, const char *why)
{
  struct error err = ERROR_INIT;

  if (store->flags & IMAGE_STORE_READ_ONLY)
    return;
  log_warn("image store: removing %s: %s", path, why);
  if (trash_discard(store->trash, path, &err) < 0)
    {
      log_warn("image store: %s", error_message(&err));
      error_clear(&err);
    }
}

static int
scan_layers(struct image_store *store, struct error *err)
{
  cleanup_dir DIR *dir = opendir(store->layers_dir);
  struct dirent *entry;

  if (dir == NULL)
    return errno == ENOENT ? 0 : error_set_errno(err, errno, "open %s", store->layers_dir);
  while ((entry = readdir(dir)) != NULL)
    {
      cleanup_free char *path = NULL;
      struct error bad = ERROR_INIT;
      if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
        continue;
      path = xasprintf("%s/%s", store->layers_dir, entry->d_name);
      if (!id_is_valid(entry->d_name))
        drop_stray(store, path, "not a chain id");
      else if (read_layer_meta(store, entry->d_name, &bad) < 0)
        drop_stray(store, path, error_message(&bad));
      error_clear(&bad);
    }
  return 0;
}

static int
scan_blobs(struct image_store *store, struct error *err)
{
  cleanup_dir DIR *dir = opendir(store->blobs_dir);
  struct dirent *entry;

  if (dir == NULL)
    return errno == ENOENT ? 0 : error_set_errno(err, errno, "open %s", store->blobs_dir);
  while ((entry = readdir(dir)) != NULL)
    {
      cleanup_free char *path = NULL;
      cleanup_free char *digest = NULL;
      struct stat st;
      if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
        continue;
      path = xasprintf("%s/%s", store->blobs_dir, entry->d_name);
      if (!id_is_valid(entry->d_name)
          || fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0
          || !S_ISREG(st.st_mode))
        {
          drop_stray(store, path, "not a blob");
          continue;
        }
      digest = xasprintf("sha256:%s", entry->d_name);
      add_blob_entry(store, digest, stat_bytes(&st));
    }
  return 0;
}

/* An image whose layers or config are gone (deleted by hand, a disk
 * error) cannot be used: it is forgotten, so the kubelet pulls it again. */
static bool
drop_broken_images(struct image_store *store)
{
  bool dropped = false;

  for (size_t i = 0; i < store->n_images;)
    {
      struct image_info *info = store->images[i];
      const char *missing = NULL;
      if (find_blob(store, info->id) == NULL)
        missing = info->id;
      for (size_t l = 0; missing == NULL && l < info->n_layers; l++)
        if (find_layer(store, info->layers[l].chain_id) == NULL)
          missing = info->layers[l].chain_id;
      if (missing == NULL)
        {
          i++;
          continue;
        }
      log_warn("image store: forgetting image %s: %s is missing", info->id, missing);
      image_info_free(info);
      memmove(&store->images[i], &store->images[i + 1],
              (store->n_images - i - 1) * sizeof *store->images);
      store->n_images--;
      dropped = true;
    }
  return dropped;
}

static int
make_dirs(struct image_store *store, struct error *err)
{
  if (mkdir_p(store->dir, 0700, err) < 0 || mkdir_p(store->blobs_dir, 0700, err) < 0
      || mkdir_p(store->layers_dir, 0700, err) < 0 || mkdir_p(store->tmp_dir, 0700, err) < 0)
    return error_wrap(err, "create image store");
  return 0;
}

static int
recover(struct image_store *store, struct error *err)
{
  bool writable = !(store->flags & IMAGE_STORE_READ_ONLY);

  if (writable)
    {
      cleanup_free char *trash_dir = xasprintf("%s/trash", store->dir);

      if (make_dirs(store, err) < 0 || take_lock(store, err) < 0)
        return -1;
      /* after the lock: one process empties the trash */
      store->trash = trash_open(trash_dir, err);
      if (store->trash == NULL)
        return error_wrap(err, "open the trash");
      clean_leftovers(store);
    }
  if (load_index(store, err) < 0 || scan_layers(store, err) < 0 || scan_blobs(store, err) < 0)
    return -1;
  if (drop_broken_images(store) && writable && write_index(store, err) < 0)
    return -1;
  if (writable)
    collect_garbage(store);
  return 0;
}

struct image_store *
image_store_open(const char *root, unsigned flags, struct error *err)
{
  struct image_store *store = xcalloc(1, sizeof *store);

  store->dir = xasprintf("%s/images", root);
  store->blobs_dir = xasprintf("%s/blobs/sha256", store->dir);
  store->layers_dir = xasprintf("%s/layers", store->dir);
  store->tmp_dir = xasprintf("%s/tmp", store->dir);
  store->index_path = xasprintf("%s/images.json", store->dir);
  store->flags = flags;
  store->lock_fd = -1;
  pthread_mutex_init(&store->lock, NULL);
  pthread_mutex_init(&store->remove_lock, NULL);
  if (recover(store, err) < 0)
    {
      error_wrap(err, "open image store %s", store->dir);
      image_store_free(store);
      return NULL;
    }
  log_debug("image store %s: %zu images, %zu layers, %zu blobs, %llu bytes", store->dir,
            store->n_images, store->n_layers, store->n_blobs,
            (unsigned long long)store->used_bytes);
  return store;
}

void
image_store_free(struct image_store *store)
{
  if (store == NULL)
    return;
  image_info_list_free(store->images, store->n_images);
  for (size_t i = 0; i < store->n_layers; i++)
    {
      free(store->layers[i].chain_id);
      free(store->layers[i].diff_id);
    }
  free(store->layers);
  for (size_t i = 0; i < store->n_blobs; i++)
    free(store->blobs[i].digest);
  free(store->blobs);
  for (size_t i = 0; i < store->n_holds; i++)
    free(store->holds[i].key);
  free(store->holds);
  trash_close(store->trash);
  if (store->lock_fd >= 0)
    close(store->lock_fd);
  pthread_mutex_destroy(&store->lock);
  pthread_mutex_destroy(&store->remove_lock);
  free(store->dir);
  free(store->blobs_dir);
  free(store->layers_dir);
  free(store->tmp_dir);
  free(store->index_path);
  free(store);
}

const char *
image_store_dir(const struct image_store *store)
{
  return store->dir;
}

void
image_store_set_in_use_check(struct image_store *store, image_in_use_fn fn, void *arg)
{
  pthread_mutex_lock(&store->remove_lock);
  store->in_use = fn;
  store->in_use_arg = arg;
  pthread_mutex_unlock(&store->remove_lock);
}

/* ---- Name resolution ---------------------------------------------------- */

/* What a name can match, worked out before the lock is taken. */
struct name_query
{
  char *id;        /* an exact id */
  char *prefix;    /* hex digits an id may start with */
  char *tagged;    /* "name:tag" */
  char *digested;  /* "name@digest" */
  char *repo_name; /* "name" of a digest reference */
  char *digest;    /* its digest */
  struct error parse_err;
};

static void
name_query_clear(struct name_query *q)
{
  free(q->id);
  free(q->prefix);
  free(q->tagged);
  free(q->digested);
  free(q->repo_name);
  free(q->digest);
  error_clear(&q->parse_err);
}

/* An image name from a request, as an error quotes it: at most a few
 * hundred bytes, escaped. */
static char *
shown_name(const char *name)
{
  return quote_untrusted(name, strlen(name), 256);
}

static bool
all_lower_hex(const char *s)
{
  for (; *s; s++)
    if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
      return false;
  return true;
}

static void
name_query_init(struct name_query *q, const char *name)
{
  struct image_reference ref = { 0 };
  const char *hex = str_has_prefix(name, "sha256:") ? name + strlen("sha256:") : NULL;

  memset(q, 0, sizeof *q);
  if (hex && digest_is_valid(name))
    {
      q->id = xstrdup(name);
      return;
    }
  if (id_is_valid(name))
    {
      q->id = xasprintf("sha256:%s", name);
      return;
    }
  if (hex == NULL && image_reference_parse(name, &ref, &q->parse_err) == 0)
    {
      if (ref.digest)
        {
          q->digested = image_reference_digested(&ref);
          q->repo_name = image_reference_name(&ref);
          q->digest = xstrdup(ref.digest);
        }
      else
        q->tagged = image_reference_tagged(&ref);
      image_reference_free(&ref);
    }
  else if (hex && q->parse_err.message == NULL)
    {
      cleanup_free char *shown = shown_name(name);
      error_set(&q->parse_err, EINVAL, "%s is not a valid image id", shown);
    }
  if (hex == NULL)
    hex = name;
  if (strlen(hex) >= MIN_ID_PREFIX && strlen(hex) < 64 && all_lower_hex(hex))
    q->prefix = xstrdup(hex);
}

/* True if one of info's names is repository `name`. */
static bool
image_has_repo(const struct image_info *info, const char *name)
{
  size_t len = strlen(name);

  for (size_t i = 0; info->repo_tags[i]; i++)
    if (strncmp(info->repo_tags[i], name, len) == 0 && info->repo_tags[i][len] == ':')
      return true;
  for (size_t i = 0; info->repo_digests[i]; i++)
    if (strncmp(info->repo_digests[i], name, len) == 0 && info->repo_digests[i][len] == '@')
      return true;
  return false;
}

/* With the lock held.  Index of the image, -1 with err set. */
static ssize_t
resolve_locked(struct image_store *store, const char *name, struct name_query *q, struct error *err)
{
  ssize_t found = -1;

  for (size_t i = 0; i < store->n_images; i++)
    {
      const struct image_info *info = store->images[i];
      if ((q->id && strcmp(info->id, q->id) == 0)
          || (q->tagged && strv_contains(info->repo_tags, q->tagged))
          || (q->digested && strv_contains(info->repo_digests, q->digested)))
        return i;
    }
  /* A digest the image was pulled through without recording it, e.g. its
   * platform manifest when it was pulled by index. */
  for (size_t i = 0; q->digest && i < store->n_images; i++)
    if (strv_contains(store->images[i]->manifests, q->digest)
        && image_has_repo(store->images[i], q->repo_name))
      return i;
  for (size_t i = 0; q->prefix && i < store->n_images; i++)
    if (str_has_prefix(digest_hex(store->images[i]->id), q->prefix))
      {
        if (found >= 0)
          {
            cleanup_free char *shown = shown_name(name);
            error_set(err, EINVAL, "%s matches more than one image id", shown);
            return -1;
          }
        found = i;
      }
  if (found >= 0)
    return found;
  if (q->parse_err.message)
    error_move(err, &q->parse_err);
  else
    {
      cleanup_free char *shown = shown_name(name);
      error_set(err, ENOENT, "image %s not found", shown);
    }
  return -1;
}

int
image_store_lookup(struct image_store *store, const char *name, struct image_info **out,
                   struct error *err)
{
  struct name_query q;
  ssize_t index;

  if (name == NULL || name[0] == '\0')
    return error_set(err, EINVAL, "no image name given");
  name_query_init(&q, name);
  pthread_mutex_lock(&store->lock);
  index = resolve_locked(store, name, &q, err);
  if (index >= 0)
    *out = image_info_copy(store->images[index]);
  pthread_mutex_unlock(&store->lock);
  name_query_clear(&q);
  return index >= 0 ? 0 : -1;
}

struct image_info **
image_store_list(struct image_store *store, size_t *n)
{
  struct image_info **list;

  pthread_mutex_lock(&store->lock);
  list = xcalloc(store->n_images + 1, sizeof *list);
  for (size_t i = 0; i < store->n_images; i++)
    list[i] = image_info_copy(store->images[i]);
  *n = store->n_images;
  pthread_mutex_unlock(&store->lock);
  return list;
}

int
image_store_layer_dirs(struct image_store *store, const char *name, char **id, char ***dirs,
                       struct error *err)
{
  struct image_info *info = NULL;
  char **list;

  if (image_store_lookup(store, name, &info, err) < 0)
    return -1;
  list = xcalloc(info->n_layers + 1, sizeof *list);
  for (size_t i = 0; i < info->n_layers; i++)
    list[i] = xasprintf("%s/%s/diff", store->layers_dir,
                        digest_hex(info->layers[info->n_layers - 1 - i].chain_id));
  *dirs = list;
  *id = steal_pointer(&info->id);
  image_info_free(info);
  return 0;
}

int
image_store_config_bytes(struct image_store *store, const char *name, char **bytes, size_t *len,
                         struct error *err)
{
  struct image_info *info = NULL;
  int ret;

  if (image_store_lookup(store, name, &info, err) < 0)
    return -1;
  ret = image_store_read_blob(store, info->id, CONFIG_MAX_SIZE, bytes, len, err);
  if (ret < 0)
    error_wrap(err, "config of image %s", info->id);
  image_info_free(info);
  return ret;
}

int
image_store_config(struct image_store *store, const char *name, struct image_config **config,
                   struct error *err)
{
  cleanup_free char *bytes = NULL;
  size_t len;

  if (image_store_config_bytes(store, name, &bytes, &len, err) < 0)
    return -1;
  return image_config_parse(bytes, len, config, err);
}

/* ---- Removal ------------------------------------------------------------ */

static ssize_t
find_image_by_id(struct image_store *store, const char *id)
{
  for (size_t i = 0; i < store->n_images; i++)
    if (strcmp(store->images[i]->id, id) == 0)
      return i;
  return -1;
}

static void
insert_image(struct image_store *store, size_t index, struct image_info *info)
{
  store->images = xrealloc(store->images, (store->n_images + 1) * sizeof *store->images);
  memmove(&store->images[index + 1], &store->images[index],
          (store->n_images - index) * sizeof *store->images);
  store->images[index] = info;
  store->n_images++;
}

static int
remove_by_id(struct image_store *store, const char *id, struct error *err)
{
  struct image_info *info;
  ssize_t index;

  pthread_mutex_lock(&store->lock);
  index = find_image_by_id(store, id);
  if (index < 0)
    {
      pthread_mutex_unlock(&store->lock);
      return 0;
    }
  info = store->images[index];
  memmove(&store->images[index], &store->images[index + 1],
          (store->n_images - index - 1) * sizeof *store->images);
  store->n_images--;
  if (write_index(store, err) < 0)
    {
      insert_image(store, index, info);
      pthread_mutex_unlock(&store->lock);
      return -1;
    }
  failpoint("image.remove-after-metadata");
  collect_garbage(store);
  pthread_mutex_unlock(&store->lock);
  failpoint("image.remove-after-trash");
  image_info_free(info);
  return 0;
}

int
image_store_remove(struct image_store *store, const char *name, bool *removed, struct error *err)
{
  struct image_info *info = NULL;
  int ret = 0;

  *removed = false;
  pthread_mutex_lock(&store->remove_lock);
  if (image_store_lookup(store, name, &info, err) < 0)
    {
      if (err->code == ENOENT)
        error_clear(err);
      else
        ret = -1;
      goto out;
    }
  if (store->in_use && store->in_use(store->in_use_arg, info->id))
    {
      ret = error_set(err, EBUSY, "image %s is in use by a container", info->id);
      goto out;
    }
  ret = remove_by_id(store, info->id, err);
  if (ret == 0)
    {
      *removed = true;
      log_info("image %s removed", info->id);
    }
out:
  pthread_mutex_unlock(&store->remove_lock);
  image_info_free(info);
  return ret;
}

void
image_store_collect_garbage(struct image_store *store)
{
  if (store->flags & IMAGE_STORE_READ_ONLY)
    return;
  pthread_mutex_lock(&store->lock);
  collect_garbage(store);
  pthread_mutex_unlock(&store->lock);
}

/* ---- Usage -------------------------------------------------------------- */

void
image_store_usage(struct image_store *store, struct image_store_usage *out)
{
  pthread_mutex_lock(&store->lock);
  out->used_bytes = store->used_bytes;
  out->inodes_used = store->inodes_used;
  pthread_mutex_unlock(&store->lock);
  out->timestamp_ns = time_realtime_ns();
}

/* ---- Blobs -------------------------------------------------------------- */

bool
image_store_has_blob(struct image_store *store, const char *digest)
{
  bool found;

  pthread_mutex_lock(&store->lock);
  found = find_blob(store, digest) != NULL;
  pthread_mutex_unlock(&store->lock);
  return found;
}

bool
image_store_has_layer(struct image_store *store, const char *chain_id)
{
  bool found;

  pthread_mutex_lock(&store->lock);
  found = find_layer(store, chain_id) != NULL;
  pthread_mutex_unlock(&store->lock);
  return found;
}

int
image_store_read_blob(struct image_store *store, const char *digest, size_t max_size, char **bytes,
                      size_t *len, struct error *err)
{
  cleanup_free char *path = NULL;
  cleanup_free char *data = NULL;
  char actual[72];
  size_t n;

  if (!digest_is_valid(digest))
    return error_set(err, EINVAL, "%s is not a sha256 digest", digest);
  path = image_store_blob_path(store, digest);
  if (read_file(path, max_size, &data, &n, err) < 0)
    return error_wrap(err, "read blob %s", digest);
  digest_buffer(data, n, actual);
  if (strcmp(actual, digest) != 0)
    return error_set(err, EIO, "blob %s is corrupt: its content hashes to %s", digest, actual);
  *bytes = steal_pointer(&data);
  *len = n;
  return 0;
}

struct blob_writer
{
  struct image_store *store;
  char *path;
  int fd;
  struct digester *digester; /* NULL: the caller verifies the digest */
  uint64_t written;
};

static struct blob_writer *
blob_writer_new(struct image_store *store, bool hash, struct error *err)
{
  struct blob_writer *w;
  cleanup_free char *name = random_name("blob");
  char *path = xasprintf("%s/%s", store->tmp_dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

  if (fd < 0)
    {
      error_set_errno(err, errno, "create %s", path);
      free(path);
      return NULL;
    }
  w = xcalloc(1, sizeof *w);
  w->store = store;
  w->path = path;
  w->fd = fd;
  w->digester = hash ? digester_new() : NULL;
  return w;
}

struct blob_writer *
image_store_blob_create(struct image_store *store, struct error *err)
{
  return blob_writer_new(store, true, err);
}

struct blob_writer *
image_store_blob_create_verified(struct image_store *store, struct error *err)
{
  return blob_writer_new(store, false, err);
}

int
blob_writer_write(struct blob_writer *w, const void *data, size_t len, struct error *err)
{
  const char *p = data;
  size_t left = len;

  while (left > 0)
    {
      ssize_t n = write(w->fd, p, left);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return error_set_errno(err, errno, "write %s", w->path);
      p += n;
      left -= n;
    }
  if (w->digester)
    digester_update(w->digester, data, len);
  w->written += len;
  return 0;
}

static void
blob_writer_free(struct blob_writer *w)
{
  if (w->fd >= 0)
    close(w->fd);
  if (w->digester)
    digester_free(w->digester);
  free(w->path);
  free(w);
}

void
blob_writer_abort(struct blob_writer *w)
{
  if (w == NULL)
    return;
  unlink(w->path);
  blob_writer_free(w);
}

static void
fsync_dir(const char *path)
{
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0)
    {
      fsync(fd);
      close(fd);
    }
}

/* With the blob verified and synced: publishes it, under the lock. */
static int
publish_blob(struct image_store *store, const char *tmp_path, const char *digest, int fd,
             struct error *err)
{
  cleanup_free char *path = image_store_blob_path(store, digest);
  struct stat st;

  pthread_mutex_lock(&store->lock);
  if (find_blob(store, digest))
    {
      pthread_mutex_unlock(&store->lock);
      unlink(tmp_path);
      return 0;
    }
  if (fstat(fd, &st) < 0 || rename(tmp_path, path) < 0)
    {
      int saved = errno;
      pthread_mutex_unlock(&store->lock);
      unlink(tmp_path);
      return error_set_errno(err, saved, "store blob %s", digest);
    }
  add_blob_entry(store, digest, stat_bytes(&st));
  pthread_mutex_unlock(&store->lock);
  fsync_dir(store->blobs_dir);
  return 0;
}

int
blob_writer_commit(struct blob_writer *w, const char *digest, int64_t size, struct error *err)
{
  char actual[72] = "";
  bool verified = w->digester == NULL;
  int ret;

  if (w->digester)
    digester_finish(w->digester, actual);
  w->digester = NULL;
  if (!digest_is_valid(digest))
    ret = error_set(err, EINVAL, "%s is not a sha256 digest", digest);
  else if (size >= 0 && w->written != (uint64_t)size)
    ret = error_set(err, EIO, "blob %s: got %llu bytes, expected %lld", digest,
                    (unsigned long long)w->written, (long long)size);
  else if (!verified && strcmp(actual, digest) != 0)
    ret = error_set(err, EIO, "blob %s: content hashes to %s", digest, actual);
  else if (fsync(w->fd) < 0)
    ret = error_set_errno(err, errno, "fsync %s", w->path);
  else
    ret = publish_blob(w->store, w->path, digest, w->fd, err);
  if (ret < 0)
    unlink(w->path);
  blob_writer_free(w);
  return ret;
}

int
image_store_put_blob(struct image_store *store, const char *digest, const void *bytes, size_t len,
                     struct error *err)
{
  struct blob_writer *w;

  if (image_store_has_blob(store, digest))
    return 0;
  w = image_store_blob_create(store, err);
  if (w == NULL)
    return -1;
  if (blob_writer_write(w, bytes, len, err) < 0)
    {
      blob_writer_abort(w);
      return -1;
    }
  return blob_writer_commit(w, digest, len, err);
}

/* ---- Layers ------------------------------------------------------------- */

int
image_store_tmp_dir(struct image_store *store, const char *kind, char **path, struct error *err)
{
  cleanup_free char *name = random_name(kind);
  char *dir = xasprintf("%s/%s", store->tmp_dir, name);

  if (mkdir(dir, 0700) < 0)
    {
      error_set_errno(err, errno, "create %s", dir);
      free(dir);
      return -1;
    }
  *path = dir;
  return 0;
}

int
image_store_layer_create(struct image_store *store, char **work_dir, char **diff_dir,
                         struct error *err)
{
  cleanup_free char *name = random_name("layer");
  cleanup_free char *work = xasprintf("%s/%s", store->tmp_dir, name);
  cleanup_free char *diff = xasprintf("%s/diff", work);

  if (mkdir(work, 0700) < 0)
    return error_set_errno(err, errno, "create %s", work);
  if (mkdir(diff, 0755) < 0)
    {
      int saved = errno;
      rmdir(work);
      return error_set_errno(err, saved, "create %s", diff);
    }
  *work_dir = steal_pointer(&work);
  *diff_dir = steal_pointer(&diff);
  return 0;
}

void
image_store_layer_abort(struct image_store *store, const char *work_dir)
{
  struct error err = ERROR_INIT;

  if (work_dir && trash_discard(store->trash, work_dir, &err) < 0)
    {
      log_warn("image store: %s", error_message(&err));
      error_clear(&err);
    }
}

/* The layer's files must be on disk before images.json may name it: one
 * syncfs for the whole tree rather than an fsync per file. */
static int
sync_tree(const char *path, struct error *err)
{
  cleanup_close int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd < 0)
    return error_set_errno(err, errno, "open %s", path);
  if (syncfs(fd) < 0)
    return error_set_errno(err, errno, "syncfs %s", path);
  return 0;
}

static int
publish_layer(struct image_store *store, const char *work_dir, const char *chain_id,
              const char *diff_id, uint64_t bytes, uint64_t inodes, struct error *err)
{
  cleanup_free char *path = layer_path(store, chain_id);

  pthread_mutex_lock(&store->lock);
  if (find_layer(store, chain_id))
    {
      pthread_mutex_unlock(&store->lock);
      image_store_layer_abort(store, work_dir);
      return 0;
    }
  if (rename(work_dir, path) < 0)
    {
      int saved = errno;
      pthread_mutex_unlock(&store->lock);
      image_store_layer_abort(store, work_dir);
      return error_set_errno(err, saved, "move layer %s into place", chain_id);
    }
  add_layer_entry(store, chain_id, diff_id, bytes, inodes);
  pthread_mutex_unlock(&store->lock);
  fsync_dir(store->layers_dir);
  return 0;
}

int
image_store_layer_commit(struct image_store *store, const char *work_dir, const char *chain_id,
                         const char *diff_id, struct error *err)
{
  cleanup_free char *diff = xasprintf("%s/diff", work_dir);
  uint64_t bytes = 0, inodes = 0;

  if (!digest_is_valid(chain_id) || !digest_is_valid(diff_id))
    {
      image_store_layer_abort(store, work_dir);
      return error_set(err, EINVAL, "layer %s: invalid chain or diff id", chain_id);
    }
  if (measure_tree(diff, &bytes, &inodes, err) < 0
      || write_layer_meta(work_dir, chain_id, diff_id, bytes + LAYER_OVERHEAD_BYTES,
                          inodes + LAYER_OVERHEAD_INODES, err)
             < 0
      || sync_tree(work_dir, err) < 0)
    {
      image_store_layer_abort(store, work_dir);
      return error_wrap(err, "layer %s", chain_id);
    }
  return publish_layer(store, work_dir, chain_id, diff_id, bytes + LAYER_OVERHEAD_BYTES,
                       inodes + LAYER_OVERHEAD_INODES, err);
}

/* ---- Adding images ------------------------------------------------------ */

static int
check_parts(struct image_store *store, const struct image_add *add, struct error *err)
{
  if (!digest_is_valid(add->id) || !digest_is_valid(add->manifest_digest)
      || (add->index_digest && !digest_is_valid(add->index_digest)))
    return error_set(err, EINVAL, "add image %s: invalid digest", add->id);
  if (find_blob(store, add->id) == NULL)
    return error_set(err, ENOENT, "add image %s: its config is not in the store", add->id);
  for (size_t i = 0; i < add->n_layers; i++)
    if (find_layer(store, add->layers[i].chain_id) == NULL)
      return error_set(err, ENOENT, "add image %s: layer %s is not in the store", add->id,
                       add->layers[i].chain_id);
  return 0;
}

static struct image_info *
new_image(const struct image_add *add)
{
  struct image_info *info = xcalloc(1, sizeof *info);

  info->id = xstrdup(add->id);
  info->manifest_digest = xstrdup(add->manifest_digest);
  info->manifests = xcalloc(1, sizeof *info->manifests);
  info->repo_tags = xcalloc(1, sizeof *info->repo_tags);
  info->repo_digests = xcalloc(1, sizeof *info->repo_digests);
  info->user = xstrdup(add->user);
  info->created_ns = time_realtime_ns();
  info->size = add->config_size;
  info->n_layers = add->n_layers;
  info->layers = xcalloc(add->n_layers, sizeof *info->layers);
  for (size_t i = 0; i < add->n_layers; i++)
    {
      const struct image_layer *from = &add->layers[i];
      info->layers[i].chain_id = xstrdup(from->chain_id);
      info->layers[i].diff_id = xstrdup(from->diff_id);
      info->layers[i].digest = xstrdup(from->digest);
      info->layers[i].size = from->size;
      info->layers[i].media_type = xstrdup(from->media_type);
      info->size += from->size;
    }
  if (info->size <= 0)
    info->size = 1;
  return info;
}

/* A tag names one image: taking it moves it away from any other. */
static void
take_name(struct image_store *store, struct image_info *owner, const char *tag, bool is_tag)
{
  for (size_t i = 0; i < store->n_images; i++)
    {
      struct image_info *other = store->images[i];
      if (other == owner)
        continue;
      if (strv_remove(is_tag ? other->repo_tags : other->repo_digests, tag))
        log_info("image store: %s moves from image %s to %s", tag, other->id, owner->id);
    }
  strv_add(is_tag ? &owner->repo_tags : &owner->repo_digests, tag);
}

int
image_store_add(struct image_store *store, const struct image_add *add, struct error *err)
{
  struct image_info *info;
  ssize_t index;
  int ret;

  pthread_mutex_lock(&store->lock);
  if (check_parts(store, add, err) < 0)
    {
      pthread_mutex_unlock(&store->lock);
      return -1;
    }
  index = find_image_by_id(store, add->id);
  if (index >= 0)
    info = store->images[index];
  else
    {
      info = new_image(add);
      insert_image(store, store->n_images, info);
    }
  strv_add(&info->manifests, add->manifest_digest);
  if (add->index_digest)
    strv_add(&info->manifests, add->index_digest);
  if (add->tag)
    take_name(store, info, add->tag, true);
  if (add->repo_digest)
    take_name(store, info, add->repo_digest, false);
  ret = write_index(store, err);
  pthread_mutex_unlock(&store->lock);
  return ret;
}
