/* image/import: OCI image layouts and docker archives into the store.
 *
 * The tarball is first unpacked into a work dir under the store's tmp/:
 * only directories and regular files are created there; symlinks and
 * hardlinks are recorded and resolved by name within the archive, so
 * nothing in the archive can point outside of it.  Then every image is
 * taken apart as a pull would: manifest and config blobs, layer blobs
 * copied into the store (their digests checked), layers unpacked from the
 * store's copy, and the image recorded under its names. */
#include "image/import.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "image/digest.h"
#include "common/trash.h"
#include "image/layer.h"
#include "image/manifest.h"
#include "image/pull.h"
#include "image/reference.h"
#include "image/store.h"
#include "image/import_archive.h"
#include "image/pull_plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LINK_HOPS 16
#define COPY_BUFFER (256 * 1024)
#define CONFIG_MAX_SIZE (16 * 1024 * 1024)
#define ANNOTATION_REF_NAME "org.opencontainers.image.ref.name"
#define ANNOTATION_CONTAINERD_NAME "io.containerd.image.name"
#define MEDIA_TYPE_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar"
#define MEDIA_TYPE_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define MEDIA_TYPE_OCI_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define MEDIA_TYPE_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"

struct import
{
  struct image_store *store;
  const char *archive;
  char *work;
  struct archive_link *links;
  size_t n_links;
  struct image_imported *done;
  size_t n_done;
  char **holds;
  size_t n_holds;
};

/* ---- Archive paths ------------------------------------------------------ */

char *
archive_path_normalise(const char *base, const char *path)
{
  cleanup_free char *joined = xasprintf("%s/%s", base, path);
  char *out = xcalloc(1, strlen(joined) + 1);
  size_t len = 0;
  char *save = NULL;

  for (char *part = strtok_r(joined, "/", &save); part; part = strtok_r(NULL, "/", &save))
    {
      if (strcmp(part, ".") == 0)
        continue;
      if (strcmp(part, "..") == 0)
        {
          char *slash;
          if (len == 0)
            {
              free(out);
              return NULL;
            }
          slash = strrchr(out, '/');
          len = slash ? (size_t)(slash - out) : 0;
          out[len] = '\0';
          continue;
        }
      if (len > 0)
        out[len++] = '/';
      strcpy(out + len, part);
      len += strlen(part);
    }
  if (len == 0)
    {
      free(out);
      return NULL;
    }
  return out;
}

/* The work-dir path of archive path `name`, links followed. */
static char *
resolve(struct import *imp, const char *name, struct error *err)
{
  cleanup_free char *path = archive_path_normalise("", name);

  for (int hops = 0; path && hops < MAX_LINK_HOPS; hops++)
    {
      bool followed = false;
      for (size_t i = 0; i < imp->n_links; i++)
        if (strcmp(imp->links[i].path, path) == 0)
          {
            free(path);
            path = xstrdup(imp->links[i].target);
            followed = true;
            break;
          }
      if (!followed)
        return xasprintf("%s/%s", imp->work, path);
    }
  error_set(err, EINVAL, "%s: %s is not a file inside the archive", imp->archive, name);
  return NULL;
}

/* ---- Blobs from the archive --------------------------------------------- */

static void
import_hold(struct import *imp, const char *key)
{
  image_store_hold(imp->store, key);
  imp->holds = xrealloc(imp->holds, (imp->n_holds + 1) * sizeof *imp->holds);
  imp->holds[imp->n_holds++] = xstrdup(key);
}

static int
read_member(struct import *imp, const char *name, size_t max, char **bytes, size_t *len,
            struct error *err)
{
  cleanup_free char *path = resolve(imp, name, err);

  if (path == NULL)
    return -1;
  if (read_file(path, max, bytes, len, err) < 0)
    return error_wrap(err, "%s", imp->archive);
  return 0;
}

static char *
blob_member(const char *digest)
{
  const char *colon = strchr(digest, ':');
  return xasprintf("blobs/%.*s/%s", (int)(colon - digest), digest, colon + 1);
}

/* Reads a blob of the layout, checks its digest, keeps it in the store. */
static int
read_blob(struct import *imp, const char *digest, size_t max, char **bytes, size_t *len,
          struct error *err)
{
  cleanup_free char *member = NULL;

  if (!digest_is_valid(digest))
    return error_set(err, EINVAL, "%s is not a sha256 digest", digest);
  member = blob_member(digest);
  import_hold(imp, digest);
  if (read_member(imp, member, max, bytes, len, err) < 0)
    return -1;
  return image_store_put_blob(imp->store, digest, *bytes, *len, err);
}

/* sha256 of a file, for docker archives whose files carry no digest. */
static int
hash_file(const char *path, char digest[72], struct error *err)
{
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  cleanup_free char *buffer = xmalloc(COPY_BUFFER);
  struct digester *d;
  ssize_t n;

  if (fd < 0)
    return error_set_errno(err, errno, "open %s", path);
  d = digester_new();
  while ((n = read(fd, buffer, COPY_BUFFER)) != 0)
    {
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          digester_free(d);
          return error_set_errno(err, errno, "read %s", path);
        }
      digester_update(d, buffer, n);
    }
  digester_finish(d, digest);
  return 0;
}

/* Copies a file into the store as blob digest (checked on the way). */
static int
copy_blob(struct import *imp, const char *path, const char *digest, int64_t size, struct error *err)
{
  cleanup_close int fd = -1;
  cleanup_free char *buffer = NULL;
  struct blob_writer *w;
  ssize_t n;

  if (image_store_has_blob(imp->store, digest))
    return 0;
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return error_set_errno(err, errno, "open %s", path);
  w = image_store_blob_create(imp->store, err);
  if (w == NULL)
    return -1;
  buffer = xmalloc(COPY_BUFFER);
  while ((n = read(fd, buffer, COPY_BUFFER)) != 0)
    {
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 || blob_writer_write(w, buffer, n, err) < 0)
        {
          if (n < 0)
            error_set_errno(err, errno, "read %s", path);
          blob_writer_abort(w);
          return -1;
        }
    }
  return blob_writer_commit(w, digest, size, err);
}

/* ---- Images ------------------------------------------------------------- */

struct layer_source
{
  char *member; /* archive path of the blob */
  char *digest;
  int64_t size; /* -1: unknown */
  char *media_type;
};

struct image_parts
{
  const char *config_digest;
  const char *config_bytes;
  size_t config_len;
  const char *manifest_digest;
  const char *index_digest;
  struct layer_source *layers;
  size_t n_layers;
  char **names;      /* normalised tags */
  char *repo_digest; /* or NULL */
};

static void
layer_sources_free(struct layer_source *layers, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      free(layers[i].member);
      free(layers[i].digest);
      free(layers[i].media_type);
    }
  free(layers);
}

static int
store_layer(struct import *imp, const struct layer_source *src, const char *chain_id,
            const char *diff_id, struct error *err)
{
  cleanup_free char *path = resolve(imp, src->member, err);
  cleanup_free char *blob = NULL;
  enum layer_compression compression;

  if (path == NULL)
    return -1;
  import_hold(imp, chain_id);
  import_hold(imp, src->digest);
  if (copy_blob(imp, path, src->digest, src->size, err) < 0)
    return error_wrap(err, "layer %s", src->member);
  if (image_store_has_layer(imp->store, chain_id))
    return 0;
  blob = image_store_blob_path(imp->store, src->digest);
  if (layer_media_type_compression(src->media_type, &compression, err) < 0)
    return -1;
  log_info("import %s: unpacking layer %s", imp->archive, src->digest);
  return image_layer_from_file(imp->store, blob, compression, chain_id, diff_id, err);
}

static void
record_done(struct import *imp, const char *id, char *const *names)
{
  struct image_imported *done = NULL;

  for (size_t i = 0; i < imp->n_done; i++)
    if (strcmp(imp->done[i].id, id) == 0)
      done = &imp->done[i];
  if (done == NULL)
    {
      imp->done = xrealloc(imp->done, (imp->n_done + 1) * sizeof *imp->done);
      done = &imp->done[imp->n_done++];
      done->id = xstrdup(id);
      done->tags = xcalloc(1, sizeof *done->tags);
    }
  for (size_t i = 0; names && names[i]; i++)
    {
      size_t n = strv_length(done->tags);
      done->tags = xrealloc(done->tags, (n + 2) * sizeof *done->tags);
      done->tags[n] = xstrdup(names[i]);
      done->tags[n + 1] = NULL;
    }
}

static int
import_image(struct import *imp, const struct image_parts *parts, struct error *err)
{
  struct image_config *config = NULL;
  struct image_layer *layers = NULL;
  size_t n_names = strv_length(parts->names);
  int ret = -1;

  import_hold(imp, parts->config_digest);
  if (image_store_put_blob(imp->store, parts->config_digest, parts->config_bytes, parts->config_len,
                           err)
          < 0
      || image_config_parse(parts->config_bytes, parts->config_len, &config, err) < 0)
    {
      error_wrap(err, "config %s", parts->config_digest);
      goto out;
    }
  if (config->n_diff_ids != parts->n_layers)
    {
      error_set(err, EINVAL, "the image has %zu layers but its config %zu diff ids",
                parts->n_layers, config->n_diff_ids);
      goto out;
    }
  layers = xcalloc(parts->n_layers ? parts->n_layers : 1, sizeof *layers);
  for (size_t i = 0; i < parts->n_layers; i++)
    {
      char chain_id[72];
      layer_chain_id(config->diff_ids, i + 1, chain_id);
      if (store_layer(imp, &parts->layers[i], chain_id, config->diff_ids[i], err) < 0)
        goto out;
      layers[i].chain_id = xstrdup(chain_id);
      layers[i].diff_id = config->diff_ids[i];
      layers[i].digest = parts->layers[i].digest;
      layers[i].media_type = parts->layers[i].media_type;
      layers[i].size = parts->layers[i].size;
    }
  /* One add per name (each may move a tag); at least one for the id. */
  for (size_t i = 0; i < (n_names ? n_names : 1); i++)
    {
      struct image_add add = {
        .id = parts->config_digest,
        .manifest_digest = parts->manifest_digest,
        .index_digest = parts->index_digest,
        .tag = n_names ? parts->names[i] : NULL,
        .repo_digest = parts->repo_digest,
        .user = config->user,
        .layers = layers,
        .n_layers = parts->n_layers,
        .config_size = parts->config_len,
      };
      if (image_store_add(imp->store, &add, err) < 0)
        goto out;
    }
  record_done(imp, parts->config_digest, parts->names);
  ret = 0;
out:
  for (size_t i = 0; layers && i < parts->n_layers; i++)
    free(layers[i].chain_id);
  free(layers);
  image_config_free(config);
  return ret;
}

/* A reference as the archive names it, normalised; NULL (with a warning)
 * when it is not one. */
static char *
normalise_name(struct import *imp, const char *name, char **repo)
{
  struct image_reference ref = { 0 };
  struct error err = ERROR_INIT;
  char *tagged;

  if (image_reference_parse(name, &ref, &err) < 0)
    {
      log_warn("import %s: ignoring the name %s: %s", imp->archive, name, error_message(&err));
      error_clear(&err);
      return NULL;
    }
  tagged = ref.tag ? image_reference_tagged(&ref) : NULL;
  if (repo)
    *repo = image_reference_name(&ref);
  image_reference_free(&ref);
  return tagged;
}

/* ---- OCI image layout --------------------------------------------------- */

static const char *
annotation(const struct json_value *descriptor, const char *key)
{
  return json_object_get_string(json_object_get(descriptor, "annotations"), key);
}

static char **
oci_names(struct import *imp, const struct json_value *descriptor, char **repo)
{
  const char *name = annotation(descriptor, ANNOTATION_CONTAINERD_NAME);
  char **names = xcalloc(2, sizeof *names);

  *repo = NULL;
  if (name == NULL)
    {
      name = annotation(descriptor, ANNOTATION_REF_NAME);
      if (name && !strchr(name, ':') && !strchr(name, '/'))
        {
          log_warn("import %s: %s=%s is a tag without a repository: importing by id only",
                   imp->archive, ANNOTATION_REF_NAME, name);
          name = NULL;
        }
    }
  if (name)
    names[0] = normalise_name(imp, name, repo);
  return names;
}

static int
oci_layers(const struct manifest *m, struct image_parts *parts)
{
  parts->n_layers = m->n_layers;
  parts->layers = xcalloc(m->n_layers ? m->n_layers : 1, sizeof *parts->layers);
  for (size_t i = 0; i < m->n_layers; i++)
    {
      parts->layers[i].member = blob_member(m->layers[i].digest);
      parts->layers[i].digest = xstrdup(m->layers[i].digest);
      parts->layers[i].size = m->layers[i].size;
      parts->layers[i].media_type = xstrdup(m->layers[i].media_type);
    }
  return 0;
}

/* The image manifest an index entry leads to on this host. */
static int
oci_manifest(struct import *imp, const char *media_type, const char *digest, struct manifest **out,
             char manifest_digest[72], struct error *err)
{
  cleanup_free char *bytes = NULL;
  const char *os, *architecture, *variant;
  const struct descriptor *entry;
  struct manifest *m = NULL;
  size_t len;
  int ret;

  if (read_blob(imp, digest, MANIFEST_MAX_SIZE, &bytes, &len, err) < 0
      || manifest_parse(media_type, bytes, len, &m, err) < 0)
    return error_wrap(err, "manifest %s", digest);
  if (m->kind == MANIFEST_KIND_IMAGE)
    {
      snprintf(manifest_digest, 72, "%s", digest);
      *out = m;
      return 0;
    }
  platform_host(&os, &architecture, &variant);
  ret = manifest_select_platform(m, os, architecture, variant, &entry, err);
  /* Content addressing rules out cycles, so this recursion ends. */
  if (ret == 0)
    ret = oci_manifest(imp, entry->media_type, entry->digest, out, manifest_digest, err);
  manifest_free(m);
  return ret;
}

static int
oci_import_entry(struct import *imp, const struct json_value *descriptor, struct error *err)
{
  const char *digest = json_object_get_string(descriptor, "digest");
  const char *media_type = json_object_get_string(descriptor, "mediaType");
  struct image_parts parts = { 0 };
  struct manifest *m = NULL;
  cleanup_free char *config = NULL;
  cleanup_free char *repo = NULL;
  char manifest_digest[72];
  size_t config_len;
  int ret = -1;

  if (digest == NULL || !digest_is_valid(digest))
    return error_set(err, EINVAL, "index.json: an entry without a sha256 digest");
  parts.names = oci_names(imp, descriptor, &repo);
  if (oci_manifest(imp, media_type, digest, &m, manifest_digest, err) < 0)
    goto out;
  if (read_blob(imp, m->config.digest, CONFIG_MAX_SIZE, &config, &config_len, err) < 0)
    {
      error_wrap(err, "config %s", m->config.digest);
      goto out;
    }
  import_hold(imp, manifest_digest);
  parts.config_digest = m->config.digest;
  parts.config_bytes = config;
  parts.config_len = config_len;
  parts.manifest_digest = manifest_digest;
  parts.index_digest = strcmp(digest, manifest_digest) != 0 ? digest : NULL;
  parts.repo_digest = repo && parts.names[0] ? xasprintf("%s@%s", repo, digest) : NULL;
  oci_layers(m, &parts);
  ret = import_image(imp, &parts, err);
out:
  if (ret < 0)
    error_wrap(err, "image %s", digest);
  layer_sources_free(parts.layers, parts.n_layers);
  strv_free(parts.names);
  free(parts.repo_digest);
  manifest_free(m);
  return ret;
}

static int
import_oci(struct import *imp, struct error *err)
{
  cleanup_free char *bytes = NULL;
  cleanup_json struct json_value *index = NULL;
  const struct json_value *manifests;
  size_t len;

  if (read_member(imp, "index.json", MANIFEST_MAX_SIZE, &bytes, &len, err) < 0)
    return -1;
  index = json_parse(bytes, len, err);
  if (index == NULL)
    return error_wrap(err, "%s: index.json", imp->archive);
  manifests = json_object_get(index, "manifests");
  if (!json_is_array(manifests) || json_array_size(manifests) == 0)
    return error_set(err, EINVAL, "%s: index.json lists no image", imp->archive);
  for (size_t i = 0; i < json_array_size(manifests); i++)
    if (oci_import_entry(imp, json_array_at(manifests, i), err) < 0)
      return -1;
  return 0;
}

/* ---- Docker archive ----------------------------------------------------- */

static const char *
docker_media_type(enum layer_compression compression)
{
  switch (compression)
    {
    case LAYER_COMPRESSION_GZIP:
      return MEDIA_TYPE_DOCKER_LAYER_GZIP;
    case LAYER_COMPRESSION_ZSTD:
      return MEDIA_TYPE_OCI_LAYER_ZSTD;
    default:
      return MEDIA_TYPE_DOCKER_LAYER;
    }
}

static int
docker_layers(struct import *imp, const struct json_value *list, struct image_parts *parts,
              struct error *err)
{
  parts->n_layers = json_array_size(list);
  parts->layers = xcalloc(parts->n_layers ? parts->n_layers : 1, sizeof *parts->layers);
  for (size_t i = 0; i < parts->n_layers; i++)
    {
      const char *member = json_string(json_array_at(list, i));
      cleanup_free char *path = NULL;
      enum layer_compression compression;
      char digest[72];
      struct stat st;
      if (member == NULL)
        return error_set(err, EINVAL, "manifest.json: Layers[%zu] is not a string", i);
      path = resolve(imp, member, err);
      if (path == NULL || layer_sniff_compression(path, &compression, err) < 0
          || hash_file(path, digest, err) < 0)
        return -1;
      if (stat(path, &st) < 0)
        return error_set_errno(err, errno, "stat %s", path);
      parts->layers[i].member = xstrdup(member);
      parts->layers[i].digest = xstrdup(digest);
      parts->layers[i].size = st.st_size;
      parts->layers[i].media_type = xstrdup(docker_media_type(compression));
    }
  return 0;
}

/* Docker archives carry no manifest: one is written, so the image has a
 * manifest digest like any other. */
static int
docker_manifest(struct import *imp, const struct image_parts *parts, char digest[72],
                struct error *err)
{
  struct json_writer *w = json_writer_new(false);
  cleanup_free char *text = NULL;
  size_t len;

  json_begin_object(w);
  json_write_key(w, "schemaVersion");
  json_write_int(w, 2);
  json_write_key(w, "mediaType");
  json_write_string(w, MEDIA_TYPE_DOCKER_MANIFEST);
  json_write_key(w, "config");
  json_begin_object(w);
  json_write_key(w, "mediaType");
  json_write_string(w, MEDIA_TYPE_DOCKER_CONFIG);
  json_write_key(w, "digest");
  json_write_string(w, parts->config_digest);
  json_write_key(w, "size");
  json_write_int(w, parts->config_len);
  json_end_object(w);
  json_write_key(w, "layers");
  json_begin_array(w);
  for (size_t i = 0; i < parts->n_layers; i++)
    {
      json_begin_object(w);
      json_write_key(w, "mediaType");
      json_write_string(w, parts->layers[i].media_type);
      json_write_key(w, "digest");
      json_write_string(w, parts->layers[i].digest);
      json_write_key(w, "size");
      json_write_int(w, parts->layers[i].size);
      json_end_object(w);
    }
  json_end_array(w);
  json_end_object(w);
  text = json_writer_finish(w, &len);
  digest_buffer(text, len, digest);
  import_hold(imp, digest);
  return image_store_put_blob(imp->store, digest, text, len, err);
}

static char **
docker_names(struct import *imp, const struct json_value *tags)
{
  size_t n = json_array_size(tags), used = 0;
  char **names = xcalloc(n + 1, sizeof *names);

  for (size_t i = 0; i < n; i++)
    {
      const char *tag = json_string(json_array_at(tags, i));
      char *name = tag ? normalise_name(imp, tag, NULL) : NULL;
      if (name)
        names[used++] = name;
    }
  return names;
}

static int
docker_import_entry(struct import *imp, const struct json_value *entry, struct error *err)
{
  const char *config_member = json_object_get_string(entry, "Config");
  struct image_parts parts = { 0 };
  cleanup_free char *config = NULL;
  char config_digest[72], manifest_digest[72];
  size_t config_len;
  int ret = -1;

  if (config_member == NULL)
    return error_set(err, EINVAL, "manifest.json: an entry without Config");
  if (read_member(imp, config_member, CONFIG_MAX_SIZE, &config, &config_len, err) < 0)
    return -1;
  digest_buffer(config, config_len, config_digest);
  parts.config_digest = config_digest;
  parts.config_bytes = config;
  parts.config_len = config_len;
  parts.names = docker_names(imp, json_object_get(entry, "RepoTags"));
  if (docker_layers(imp, json_object_get(entry, "Layers"), &parts, err) < 0
      || docker_manifest(imp, &parts, manifest_digest, err) < 0)
    goto out;
  parts.manifest_digest = manifest_digest;
  ret = import_image(imp, &parts, err);
out:
  if (ret < 0)
    error_wrap(err, "image %s", config_member);
  layer_sources_free(parts.layers, parts.n_layers);
  strv_free(parts.names);
  return ret;
}

static int
import_docker(struct import *imp, struct error *err)
{
  cleanup_free char *bytes = NULL;
  cleanup_json struct json_value *list = NULL;
  size_t len;

  if (read_member(imp, "manifest.json", MANIFEST_MAX_SIZE, &bytes, &len, err) < 0)
    return -1;
  list = json_parse(bytes, len, err);
  if (list == NULL)
    return error_wrap(err, "%s: manifest.json", imp->archive);
  if (!json_is_array(list) || json_array_size(list) == 0)
    return error_set(err, EINVAL, "%s: manifest.json lists no image", imp->archive);
  for (size_t i = 0; i < json_array_size(list); i++)
    if (docker_import_entry(imp, json_array_at(list, i), err) < 0)
      return -1;
  return 0;
}

/* ---- Entry point -------------------------------------------------------- */

static bool
has_member(struct import *imp, const char *name)
{
  struct error err = ERROR_INIT;
  cleanup_free char *path = resolve(imp, name, &err);
  struct stat st;

  error_clear(&err);
  return path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

void
image_imported_free(struct image_imported *list, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      free(list[i].id);
      strv_free(list[i].tags);
    }
  free(list);
}

static void
import_clear(struct import *imp)
{
  struct error err = ERROR_INIT;

  if (imp->work && remove_tree(imp->work, &err) < 0)
    {
      log_warn("import: %s", error_message(&err));
      error_clear(&err);
    }
  free(imp->work);
  for (size_t i = 0; i < imp->n_links; i++)
    {
      free(imp->links[i].path);
      free(imp->links[i].target);
    }
  free(imp->links);
  for (size_t i = 0; i < imp->n_holds; i++)
    {
      image_store_release(imp->store, imp->holds[i]);
      free(imp->holds[i]);
    }
  free(imp->holds);
  image_imported_free(imp->done, imp->n_done);
}

int
image_import(struct image_store *store, const char *archive_path, struct image_imported **out,
             size_t *n, struct error *err)
{
  struct import imp = { .store = store, .archive = archive_path };
  int ret;

  if (image_store_tmp_dir(store, "import", &imp.work, err) < 0)
    return error_wrap(err, "import %s", archive_path);
  ret = pull_plugin_import_unpack(archive_path, imp.work, &imp.links, &imp.n_links, err);
  if (ret == 0)
    {
      if (has_member(&imp, "index.json"))
        ret = import_oci(&imp, err);
      else if (has_member(&imp, "manifest.json"))
        ret = import_docker(&imp, err);
      else
        ret = error_set(err, EINVAL,
                        "%s is neither an OCI image layout (index.json) nor a docker archive "
                        "(manifest.json)",
                        archive_path);
    }
  if (ret == 0)
    {
      *out = steal_pointer(&imp.done);
      *n = imp.n_done;
      imp.n_done = 0;
    }
  else
    error_wrap(err, "import %s", archive_path);
  import_clear(&imp);
  return ret;
}
