/* image/manifest: the JSON documents that describe an image (see
 * docs/facts/image.md §4-§6).
 *
 * Everything here reads bytes from a registry, so nothing is trusted:
 * sizes are bounded before parsing, every digest is checked to be a
 * sha256 digest (the content store uses them as file names), sizes are
 * non-negative integers, and a document whose kind is ambiguous (both
 * "manifests" and "layers") or contradicts its Content-Type is refused
 * rather than guessed, so one set of bytes cannot be read two ways. */
#include "image/manifest.h"
#include "image/digest.h"
#include "image/reference.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEDIA_TYPE_DOCKER_SCHEMA1 "application/vnd.docker.distribution.manifest.v1+json"
#define MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"
#define SCHEMA1_ERROR                                                                              \
  "schema1 manifests are not supported (push the image again as Docker schema2 or OCI)"

#define ATTESTATION_ANNOTATION "vnd.docker.reference.type"
#define ATTESTATION_VALUE "attestation-manifest"

/* How much of an untrusted string an error message repeats. */
#define QUOTE_MAX_LENGTH 100
/* How many platforms the "no match" error lists. */
#define PLATFORMS_LISTED 16

static const struct
{
  const char *media_type;
  enum manifest_kind kind;
} manifest_types[] = {
  { MEDIA_TYPE_OCI_INDEX, MANIFEST_KIND_INDEX },
  { MEDIA_TYPE_DOCKER_LIST, MANIFEST_KIND_INDEX },
  { MEDIA_TYPE_OCI_MANIFEST, MANIFEST_KIND_IMAGE },
  { MEDIA_TYPE_DOCKER_MANIFEST, MANIFEST_KIND_IMAGE },
};

static const struct
{
  const char *media_type;
  enum layer_compression compression;
} layer_types[] = {
  { "application/vnd.oci.image.layer.v1.tar", LAYER_COMPRESSION_NONE },
  { "application/vnd.oci.image.layer.v1.tar+gzip", LAYER_COMPRESSION_GZIP },
  { "application/vnd.oci.image.layer.v1.tar+zstd", LAYER_COMPRESSION_ZSTD },
  { "application/vnd.oci.image.layer.nondistributable.v1.tar", LAYER_COMPRESSION_NONE },
  { "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", LAYER_COMPRESSION_GZIP },
  { "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", LAYER_COMPRESSION_ZSTD },
  { "application/vnd.docker.image.rootfs.diff.tar", LAYER_COMPRESSION_NONE },
  { "application/vnd.docker.image.rootfs.diff.tar.gzip", LAYER_COMPRESSION_GZIP },
  /* Foreign (Windows base) layers: only their location is special, and
   * crid fetches every blob from the image's own registry by digest. */
  { "application/vnd.docker.image.rootfs.foreign.diff.tar", LAYER_COMPRESSION_NONE },
  { "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", LAYER_COMPRESSION_GZIP },
};

static char *
quote(const char *s)
{
  return quote_untrusted(s, strlen(s), QUOTE_MAX_LENGTH);
}

static void
descriptor_clear(struct descriptor *d)
{
  free(d->media_type);
  free(d->digest);
  free(d->os);
  free(d->architecture);
  free(d->variant);
  strv_free(d->urls);
  memset(d, 0, sizeof *d);
}

static void
descriptors_free(struct descriptor *ds, size_t n)
{
  for (size_t i = 0; ds && i < n; i++)
    descriptor_clear(&ds[i]);
  free(ds);
}

void
manifest_free(struct manifest *m)
{
  if (m == NULL)
    return;
  free(m->media_type);
  descriptor_clear(&m->config);
  descriptors_free(m->layers, m->n_layers);
  descriptors_free(m->manifests, m->n_manifests);
  free(m);
}

static void
manifest_free_function(struct manifest **m)
{
  manifest_free(*m);
}
#define cleanup_manifest __attribute__((cleanup(manifest_free_function)))

/* Member key of obj as a freshly allocated string; NULL when absent or
 * null.  Any other type is an error. */
static int
optional_string(const struct json_value *obj, const char *key, const char *where, char **out,
                struct error *err)
{
  const struct json_value *v = json_object_get(obj, key);

  *out = NULL;
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_string(v))
    return error_set(err, EINVAL, "%s%s%s must be a string", where, *where ? "." : "", key);
  *out = xstrdup(json_string(v));
  return 0;
}

/* Like optional_string, but "" instead of NULL. */
static int
string_or_empty(const struct json_value *obj, const char *key, const char *where, char **out,
                struct error *err)
{
  if (optional_string(obj, key, where, out, err) < 0)
    return -1;
  if (*out == NULL)
    *out = xstrdup("");
  return 0;
}

static int
check_digest_field(const char *digest, const char *where, struct error *err)
{
  cleanup_free char *quoted = NULL;

  if (digest_is_valid(digest))
    return 0;
  quoted = quote(digest);
  return error_set(err, EINVAL, "%s: digest %s is not a sha256 digest (sha256:<64 lower-case hex>)",
                   where, quoted);
}

/* A NULL-terminated copy of an array of strings; NULL when absent or null. */
static int
string_array(const struct json_value *obj, const char *key, const char *where, char ***out,
             struct error *err)
{
  const struct json_value *v = json_object_get(obj, key);
  cleanup_strv char **strv = NULL;
  size_t n;

  *out = NULL;
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_array(v))
    return error_set(err, EINVAL, "%s.%s must be an array of strings", where, key);
  n = json_array_size(v);
  strv = xcalloc(n + 1, sizeof *strv);
  for (size_t i = 0; i < n; i++)
    {
      const char *s = json_string(json_array_at(v, i));
      if (s == NULL)
        return error_set(err, EINVAL, "%s.%s[%zu] must be a string", where, key, i);
      strv[i] = xstrdup(s);
    }
  *out = steal_pointer(&strv);
  return 0;
}

static const char *
annotation(const struct json_value *descriptor, const char *key)
{
  return json_object_get_string(json_object_get(descriptor, "annotations"), key);
}

static int
parse_platform(const struct json_value *v, const char *where, struct descriptor *d,
               struct error *err)
{
  const struct json_value *platform = json_object_get(v, "platform");
  cleanup_free char *context = xasprintf("%s.platform", where);
  const char *reference_type = annotation(v, ATTESTATION_ANNOTATION);

  if (platform && !json_is_null(platform))
    {
      if (!json_is_object(platform))
        return error_set(err, EINVAL, "%s must be an object", context);
      if (optional_string(platform, "os", context, &d->os, err) < 0
          || optional_string(platform, "architecture", context, &d->architecture, err) < 0
          || optional_string(platform, "variant", context, &d->variant, err) < 0)
        return -1;
    }
  /* BuildKit stores provenance and SBOMs as index entries of platform
   * unknown/unknown; they are not runnable images. */
  d->attestation = (d->os && strcmp(d->os, "unknown") == 0 && d->architecture
                    && strcmp(d->architecture, "unknown") == 0)
                   || (reference_type && strcmp(reference_type, ATTESTATION_VALUE) == 0);
  return 0;
}

static int
parse_descriptor(const struct json_value *v, const char *where, bool in_index, struct descriptor *d,
                 struct error *err)
{
  const struct json_value *size = json_object_get(v, "size");
  const struct json_value *annotations = json_object_get(v, "annotations");

  if (!json_is_object(v))
    return error_set(err, EINVAL, "%s must be an object", where);
  if (optional_string(v, "mediaType", where, &d->media_type, err) < 0
      || optional_string(v, "digest", where, &d->digest, err) < 0)
    return -1;
  if (d->media_type == NULL)
    return error_set(err, EINVAL, "%s.mediaType is missing", where);
  if (d->digest == NULL)
    return error_set(err, EINVAL, "%s.digest is missing", where);
  if (check_digest_field(d->digest, where, err) < 0)
    return -1;
  if (size == NULL)
    return error_set(err, EINVAL, "%s.size is missing", where);
  if (!json_integer(size, &d->size) || d->size < 0)
    return error_set(err, EINVAL, "%s.size must be a non-negative integer", where);
  if (annotations && !json_is_null(annotations) && !json_is_object(annotations))
    return error_set(err, EINVAL, "%s.annotations must be an object", where);
  if (string_array(v, "urls", where, &d->urls, err) < 0)
    return -1;
  if (in_index)
    return parse_platform(v, where, d, err);
  return 0;
}

static int
parse_descriptor_array(const struct json_value *doc, const char *key, bool in_index,
                       struct descriptor **out, size_t *n_out, struct error *err)
{
  const struct json_value *array = json_object_get(doc, key);
  size_t n;

  if (!json_is_array(array))
    return error_set(err, EINVAL, "%s must be an array", key);
  n = json_array_size(array);
  *out = xcalloc(n, sizeof **out);
  *n_out = n;
  for (size_t i = 0; i < n; i++)
    {
      cleanup_free char *where = xasprintf("%s[%zu]", key, i);
      if (parse_descriptor(json_array_at(array, i), where, in_index, &(*out)[i], err) < 0)
        return -1;
    }
  return 0;
}

/* The media type of a Content-Type header: parameters dropped, blanks
 * trimmed, lower-cased (media types are case-insensitive); NULL when
 * there is nothing left. */
static char *
normalise_content_type(const char *content_type)
{
  const char *start = content_type;
  const char *end;
  char *out;

  if (content_type == NULL)
    return NULL;
  end = start + strcspn(start, ";");
  while (start < end && (*start == ' ' || *start == '\t'))
    start++;
  while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
    end--;
  if (start == end)
    return NULL;
  out = xstrndup(start, (size_t)(end - start));
  for (char *p = out; *p; p++)
    if (*p >= 'A' && *p <= 'Z')
      *p = (char)(*p - 'A' + 'a');
  return out;
}

static int
known_manifest_type(const char *media_type)
{
  for (size_t i = 0; media_type && i < sizeof manifest_types / sizeof manifest_types[0]; i++)
    if (strcmp(media_type, manifest_types[i].media_type) == 0)
      return (int)i;
  return -1;
}

static bool
is_schema1_type(const char *media_type)
{
  return media_type
         && (strcmp(media_type, MEDIA_TYPE_DOCKER_SCHEMA1) == 0
             || strcmp(media_type, MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED) == 0);
}

static bool
is_schema1_document(const struct json_value *doc)
{
  const struct json_value *version = json_object_get(doc, "schemaVersion");
  int64_t n;

  if (json_object_get(doc, "fsLayers") != NULL)
    return true;
  return json_integer(version, &n) && n == 1;
}

static int
unsupported_type(const char *media_type, struct error *err)
{
  cleanup_free char *quoted = quote(media_type);
  return error_set(err, EINVAL, "unsupported manifest media type %s", quoted);
}

/* Generic types some registries and proxies answer with: the document
 * must then say what it is. */
static bool
is_generic_content_type(const char *media_type)
{
  return strcmp(media_type, "application/json") == 0 || strcmp(media_type, "text/plain") == 0
         || strcmp(media_type, "application/octet-stream") == 0
         || strcmp(media_type, "binary/octet-stream") == 0;
}

/* Decides which of manifest_types[] the document is.  The Content-Type
 * wins when it names a type we know; the document's mediaType is the
 * fallback, then its shape. */
static int
manifest_type(const char *content_type, const struct json_value *doc, struct error *err)
{
  cleanup_free char *header = normalise_content_type(content_type);
  const struct json_value *media_type = json_object_get(doc, "mediaType");
  const char *declared = NULL;
  int from_header, from_document;

  if (media_type && !json_is_null(media_type))
    {
      declared = json_string(media_type);
      if (declared == NULL)
        return error_set(err, EINVAL, "mediaType must be a string");
    }
  if (is_schema1_type(header) || is_schema1_type(declared) || is_schema1_document(doc))
    return error_set(err, EINVAL, SCHEMA1_ERROR);

  from_header = known_manifest_type(header);
  from_document = known_manifest_type(declared);
  if (from_header >= 0)
    {
      if (declared
          && (from_document < 0
              || manifest_types[from_document].kind != manifest_types[from_header].kind))
        {
          cleanup_free char *quoted = quote(declared);
          return error_set(err, EINVAL, "Content-Type is %s but the document says it is %s",
                           manifest_types[from_header].media_type, quoted);
        }
      return from_header;
    }
  if (header && !is_generic_content_type(header))
    return unsupported_type(header, err);
  if (from_document >= 0)
    return from_document;
  if (declared)
    return unsupported_type(declared, err);
  /* mediaType is optional in OCI documents: their shape says which */
  if (json_object_get(doc, "manifests"))
    return known_manifest_type(MEDIA_TYPE_OCI_INDEX);
  if (json_object_get(doc, "config") && json_object_get(doc, "layers"))
    return known_manifest_type(MEDIA_TYPE_OCI_MANIFEST);
  return error_set(err, EINVAL,
                   "cannot tell what kind of manifest this is: no mediaType, no "
                   "\"manifests\", no \"config\" and \"layers\"");
}

static int
check_schema_version(const struct json_value *doc, struct error *err)
{
  const struct json_value *version = json_object_get(doc, "schemaVersion");
  int64_t n;

  if (version == NULL)
    return 0;
  if (!json_integer(version, &n))
    return error_set(err, EINVAL, "schemaVersion must be an integer");
  if (n != 2)
    return error_set(err, EINVAL, "unsupported schemaVersion %lld", (long long)n);
  return 0;
}

/* A document with members of both kinds could be read as either, and the
 * two readings would pull different things. */
static int
check_unambiguous(const struct json_value *doc, enum manifest_kind kind, struct error *err)
{
  if (kind == MANIFEST_KIND_INDEX
      && (json_object_get(doc, "config") || json_object_get(doc, "layers")))
    return error_set(err, EINVAL, "an index must not have \"config\" or \"layers\"");
  if (kind == MANIFEST_KIND_IMAGE && json_object_get(doc, "manifests"))
    return error_set(err, EINVAL, "an image manifest must not have \"manifests\"");
  return 0;
}

static int
parse_image_manifest(const struct json_value *doc, struct manifest *m, struct error *err)
{
  const struct json_value *config = json_object_get(doc, "config");

  if (config == NULL)
    return error_set(err, EINVAL, "config is missing");
  if (parse_descriptor(config, "config", false, &m->config, err) < 0)
    return -1;
  return parse_descriptor_array(doc, "layers", false, &m->layers, &m->n_layers, err);
}

int
manifest_parse(const char *content_type, const char *bytes, size_t len, struct manifest **out,
               struct error *err)
{
  cleanup_json struct json_value *doc = NULL;
  cleanup_manifest struct manifest *m = NULL;
  int type;

  *out = NULL;
  if (len > MANIFEST_MAX_SIZE)
    return error_set(err, EFBIG, "manifest is %zu bytes, more than the limit of %d", len,
                     MANIFEST_MAX_SIZE);
  doc = json_parse(bytes, len, err);
  if (doc == NULL)
    return error_wrap(err, "invalid manifest");
  if (!json_is_object(doc))
    return error_set(err, EINVAL, "invalid manifest: not a JSON object");

  type = manifest_type(content_type, doc, err);
  if (type < 0)
    return error_wrap(err, "invalid manifest");
  m = xcalloc(1, sizeof *m);
  m->kind = manifest_types[type].kind;
  m->media_type = xstrdup(manifest_types[type].media_type);
  if (check_schema_version(doc, err) < 0 || check_unambiguous(doc, m->kind, err) < 0)
    return error_wrap(err, "invalid manifest");

  if (m->kind == MANIFEST_KIND_INDEX)
    {
      if (parse_descriptor_array(doc, "manifests", true, &m->manifests, &m->n_manifests, err) < 0)
        return error_wrap(err, "invalid image index");
    }
  else if (parse_image_manifest(doc, m, err) < 0)
    return error_wrap(err, "invalid image manifest");

  *out = steal_pointer(&m);
  return 0;
}

int
layer_media_type_compression(const char *media_type, enum layer_compression *out, struct error *err)
{
  cleanup_free char *quoted = NULL;

  for (size_t i = 0; media_type && i < sizeof layer_types / sizeof layer_types[0]; i++)
    if (strcmp(media_type, layer_types[i].media_type) == 0)
      {
        *out = layer_types[i].compression;
        return 0;
      }
  quoted = quote(media_type ? media_type : "");
  return error_set(err, EINVAL, "unsupported layer media type %s", quoted);
}

void
platform_host(const char **os, const char **architecture, const char **variant)
{
  *os = "linux";
  *variant = "";
#if defined(__x86_64__)
  *architecture = "amd64";
#elif defined(__aarch64__)
  *architecture = "arm64";
  *variant = "v8";
#elif defined(__arm__)
  *architecture = "arm";
#if __ARM_ARCH >= 7
  *variant = "v7";
#elif __ARM_ARCH == 6
  *variant = "v6";
#else
  *variant = "v5";
#endif
#elif defined(__i386__)
  *architecture = "386";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  *architecture = "ppc64le";
#elif defined(__powerpc64__)
  *architecture = "ppc64";
#elif defined(__s390x__)
  *architecture = "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
  *architecture = "riscv64";
#elif defined(__loongarch64)
  *architecture = "loong64";
#elif defined(__mips64) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  *architecture = "mips64le";
#elif defined(__mips64)
  *architecture = "mips64";
#else
#error "unknown architecture: add its Go name (GOARCH) to platform_host()"
#endif
}

/* The Go name for the spellings uname and some tools use. */
static const char *
normalise_architecture(const char *arch)
{
  if (strcmp(arch, "x86_64") == 0 || strcmp(arch, "x86-64") == 0)
    return "amd64";
  if (strcmp(arch, "aarch64") == 0)
    return "arm64";
  return arch;
}

/* Variants as containerd normalises them: arm defaults to v7, arm64's v8
 * is the same as no variant, amd64's v1 is the baseline; "7" means "v7". */
static const char *
normalise_variant(const char *arch, const char *variant)
{
  static const char *const numbered[] = { "v5", "v6", "v7", "v8" };

  if (variant == NULL)
    variant = "";
  if (strcmp(arch, "arm64") == 0)
    {
      if (strcmp(variant, "8") == 0 || strcmp(variant, "v8") == 0 || strcmp(variant, "v8.0") == 0)
        return "";
      return variant;
    }
  if (strcmp(arch, "arm") == 0)
    {
      if (*variant == '\0')
        return "v7";
      if (variant[0] >= '5' && variant[0] <= '8' && variant[1] == '\0')
        return numbered[variant[0] - '5'];
      return variant;
    }
  if (strcmp(arch, "amd64") == 0 && strcmp(variant, "v1") == 0)
    return "";
  return variant;
}

/* v5..v8 of 32-bit arm as 5..8; 0 for anything else. */
static int
arm_level(const char *variant)
{
  if (variant[0] == 'v' && variant[1] >= '5' && variant[1] <= '8' && variant[2] == '\0')
    return variant[1] - '0';
  return 0;
}

#define SCORE_EXACT 100

/* How well an index entry fits the wanted platform: 0 for not at all,
 * SCORE_EXACT for the very variant, and for 32-bit arm the level of an
 * older variant that the wanted one still runs (v7 runs v6 and v5). */
static int
platform_score(const struct descriptor *d, const char *os, const char *arch, const char *variant)
{
  const char *entry_arch, *entry_variant;
  int have, want;

  if (d->attestation || d->os == NULL || d->architecture == NULL)
    return 0;
  entry_arch = normalise_architecture(d->architecture);
  if (strcmp(d->os, os) != 0 || strcmp(entry_arch, arch) != 0)
    return 0;
  entry_variant = normalise_variant(entry_arch, d->variant);
  if (strcmp(entry_variant, variant) == 0)
    return SCORE_EXACT;
  if (strcmp(arch, "arm") != 0)
    return 0;
  have = arm_level(entry_variant);
  want = arm_level(variant);
  return have > 0 && want > 0 && have < want ? have : 0;
}

static char *
platform_string(const char *os, const char *arch, const char *variant)
{
  return xasprintf("%s/%s%s%s", os ? os : "?", arch ? arch : "?", variant && *variant ? "/" : "",
                   variant ? variant : "");
}

static char *
available_platforms(const struct manifest *index)
{
  char *list = xstrdup("");
  size_t listed = 0;

  for (size_t i = 0; i < index->n_manifests; i++)
    {
      const struct descriptor *d = &index->manifests[i];
      cleanup_free char *platform = NULL;
      cleanup_free char *quoted = NULL;
      char *longer;

      if (d->attestation)
        continue;
      if (listed == PLATFORMS_LISTED)
        {
          longer = xasprintf("%s, ...", list);
          free(list);
          return longer;
        }
      platform = platform_string(d->os, d->architecture, d->variant);
      quoted = quote(platform);
      longer = xasprintf("%s%s%s", list, listed ? ", " : "", quoted);
      free(list);
      list = longer;
      listed++;
    }
  return list;
}

int
manifest_select_platform(const struct manifest *index, const char *os, const char *architecture,
                         const char *variant, const struct descriptor **out, struct error *err)
{
  const char *arch;
  const char *wanted_variant;
  const struct descriptor *best = NULL;
  int best_score = 0;
  cleanup_free char *wanted = NULL;
  cleanup_free char *available = NULL;

  *out = NULL;
  if (index->kind != MANIFEST_KIND_INDEX)
    return error_set(err, EINVAL, "select platform: the manifest is not an index");
  arch = normalise_architecture(architecture);
  wanted_variant = normalise_variant(arch, variant);
  for (size_t i = 0; i < index->n_manifests; i++)
    {
      int score = platform_score(&index->manifests[i], os, arch, wanted_variant);
      /* the first of equally good entries wins, as in other runtimes */
      if (score > best_score)
        {
          best = &index->manifests[i];
          best_score = score;
        }
    }
  if (best)
    {
      *out = best;
      return 0;
    }
  wanted = platform_string(os, architecture, variant);
  available = available_platforms(index);
  return error_set(err, ENOENT, "no image for platform %s in the index (it has: %s)", wanted,
                   *available ? available : "no images");
}

void
image_config_free(struct image_config *config)
{
  if (config == NULL)
    return;
  free(config->os);
  free(config->architecture);
  free(config->variant);
  free(config->user);
  strv_free(config->env);
  strv_free(config->entrypoint);
  strv_free(config->cmd);
  free(config->working_dir);
  free(config->stop_signal);
  strv_free(config->volumes);
  strv_free(config->labels);
  strv_free(config->diff_ids);
  free(config);
}

static void
image_config_free_function(struct image_config **config)
{
  image_config_free(*config);
}
#define cleanup_image_config __attribute__((cleanup(image_config_free_function)))

/* An object member that must be an object when present; NULL when absent
 * or null. */
static int
optional_object(const struct json_value *obj, const char *key, const char *where,
                const struct json_value **out, struct error *err)
{
  const struct json_value *v = json_object_get(obj, key);

  *out = NULL;
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_object(v))
    return error_set(err, EINVAL, "%s%s%s must be an object", where, *where ? "." : "", key);
  *out = v;
  return 0;
}

/* The keys of an object such as Volumes {"/data": {}}; never NULL. */
static int
object_keys(const struct json_value *obj, const char *key, const char *where, char ***out,
            struct error *err)
{
  const struct json_value *v;
  size_t n;

  *out = NULL;
  if (optional_object(obj, key, where, &v, err) < 0)
    return -1;
  n = json_object_size(v);
  *out = xcalloc(n + 1, sizeof **out);
  for (size_t i = 0; i < n; i++)
    (*out)[i] = xstrdup(json_object_key_at(v, i));
  return 0;
}

/* Labels {"k": "v"} as key, value, key, value, ..., NULL; never NULL. */
static int
labels(const struct json_value *obj, const char *where, char ***out, struct error *err)
{
  const struct json_value *v;
  size_t n;

  *out = NULL;
  if (optional_object(obj, "Labels", where, &v, err) < 0)
    return -1;
  n = json_object_size(v);
  *out = xcalloc(2 * n + 1, sizeof **out);
  for (size_t i = 0; i < n; i++)
    {
      const char *value = json_string(json_object_value_at(v, i));
      if (value == NULL)
        return error_set(err, EINVAL, "%s.Labels values must be strings", where);
      (*out)[2 * i] = xstrdup(json_object_key_at(v, i));
      (*out)[2 * i + 1] = xstrdup(value);
    }
  return 0;
}

/* An empty Entrypoint or Cmd means the same as none at all. */
static void
null_when_empty(char ***strv)
{
  if (*strv && (*strv)[0] == NULL)
    {
      free(*strv);
      *strv = NULL;
    }
}

static int
parse_runtime_config(const struct json_value *doc, struct image_config *c, struct error *err)
{
  const struct json_value *config;
  const char *where = "config";

  if (optional_object(doc, "config", "", &config, err) < 0)
    return -1;
  /* an absent config object is an image with every default */
  if (string_or_empty(config, "User", where, &c->user, err) < 0
      || string_array(config, "Env", where, &c->env, err) < 0
      || string_array(config, "Entrypoint", where, &c->entrypoint, err) < 0
      || string_array(config, "Cmd", where, &c->cmd, err) < 0
      || string_or_empty(config, "WorkingDir", where, &c->working_dir, err) < 0
      || string_or_empty(config, "StopSignal", where, &c->stop_signal, err) < 0
      || object_keys(config, "Volumes", where, &c->volumes, err) < 0
      || labels(config, where, &c->labels, err) < 0)
    return -1;
  if (c->env == NULL)
    c->env = xcalloc(1, sizeof *c->env);
  null_when_empty(&c->entrypoint);
  null_when_empty(&c->cmd);
  return 0;
}

static int
parse_rootfs(const struct json_value *doc, struct image_config *c, struct error *err)
{
  const struct json_value *rootfs = json_object_get(doc, "rootfs");
  const struct json_value *diff_ids;
  const char *type;

  if (!json_is_object(rootfs))
    return error_set(err, EINVAL, "rootfs is missing");
  type = json_object_get_string(rootfs, "type");
  if (type == NULL || strcmp(type, "layers") != 0)
    return error_set(err, EINVAL, "rootfs.type must be \"layers\"");
  diff_ids = json_object_get(rootfs, "diff_ids");
  if (!json_is_array(diff_ids))
    return error_set(err, EINVAL, "rootfs.diff_ids must be an array");
  c->n_diff_ids = json_array_size(diff_ids);
  c->diff_ids = xcalloc(c->n_diff_ids + 1, sizeof *c->diff_ids);
  for (size_t i = 0; i < c->n_diff_ids; i++)
    {
      const char *id = json_string(json_array_at(diff_ids, i));
      cleanup_free char *where = xasprintf("rootfs.diff_ids[%zu]", i);
      if (id == NULL)
        return error_set(err, EINVAL, "%s must be a string", where);
      if (check_digest_field(id, where, err) < 0)
        return -1;
      c->diff_ids[i] = xstrdup(id);
    }
  return 0;
}

int
image_config_parse(const char *bytes, size_t len, struct image_config **out, struct error *err)
{
  cleanup_json struct json_value *doc = NULL;
  cleanup_image_config struct image_config *c = NULL;

  *out = NULL;
  if (len > MANIFEST_MAX_SIZE)
    return error_set(err, EFBIG, "image config is %zu bytes, more than the limit of %d", len,
                     MANIFEST_MAX_SIZE);
  doc = json_parse(bytes, len, err);
  if (doc == NULL)
    return error_wrap(err, "invalid image config");
  if (!json_is_object(doc))
    return error_set(err, EINVAL, "invalid image config: not a JSON object");

  c = xcalloc(1, sizeof *c);
  if (string_or_empty(doc, "os", "", &c->os, err) < 0
      || string_or_empty(doc, "architecture", "", &c->architecture, err) < 0
      || string_or_empty(doc, "variant", "", &c->variant, err) < 0
      || parse_runtime_config(doc, c, err) < 0 || parse_rootfs(doc, c, err) < 0)
    return error_wrap(err, "invalid image config");
  *out = steal_pointer(&c);
  return 0;
}

void
layer_chain_id(char *const *diff_ids, size_t n, char out[72])
{
  out[0] = '\0';
  if (n == 0)
    return;
  snprintf(out, 72, "%s", diff_ids[0]);
  for (size_t i = 1; i < n; i++)
    {
      cleanup_free char *pair = xasprintf("%s %s", out, diff_ids[i]);
      digest_buffer(pair, strlen(pair), out);
    }
}
