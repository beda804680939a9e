/* crid/config: the schema below (every table, key, type, check and the
 * comment `crid config` prints) drives merging, validation, freeing and
 * both output formats, so a key is added in exactly one place. */
#include "crid/config.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/toml.h"
#include "common/util.h"
#include "image/reference.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CONFIG_MAX_FILE_SIZE (1024 * 1024)
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

int
config_parse_duration(const char *text, int64_t *seconds)
{
  static const struct
  {
    char unit;
    int64_t seconds;
  } units[] = { { 'h', 3600 }, { 'm', 60 }, { 's', 1 } };
  const char *p = text;
  int64_t total = 0;

  if (strcmp(text, "0") == 0)
    {
      *seconds = 0;
      return 0;
    }
  if (*p == '\0')
    return -1;
  while (*p)
    {
      char *end;
      long long v;
      size_t i;

      if (*p < '0' || *p > '9')
        return -1;
      errno = 0;
      v = strtoll(p, &end, 10);
      if (errno || v > 1000000000LL)
        return -1;
      for (i = 0; i < sizeof units / sizeof units[0] && units[i].unit != *end; i++)
        ;
      if (i == sizeof units / sizeof units[0])
        return -1;
      total += v * units[i].seconds;
      /* Clamped, not refused: "forever" needs no exact value, and
       * seconds * 1e9 must stay within an int64 of nanoseconds. */
      if (total > CONFIG_DURATION_MAX_S)
        total = CONFIG_DURATION_MAX_S;
      p = end + 1;
    }
  *seconds = total;
  return 0;
}

/* ---------------------------------------------------------------- schema */

enum field_kind
{
  FIELD_STRING,
  FIELD_INT,
  FIELD_BOOL,
  FIELD_STRV,
};

/* What a string (or each string of an array) must look like. */
enum field_check
{
  CHECK_NONE,
  CHECK_NOT_EMPTY,
  CHECK_ABSOLUTE,
  CHECK_ABSOLUTE_OR_EMPTY,
  CHECK_LOG_LEVEL,
  CHECK_CHOICE,
  CHECK_DURATION,
  CHECK_IMAGE_OR_EMPTY,
};

struct field
{
  const char *key;
  enum field_kind kind;
  size_t offset;
  enum field_check check;
  int64_t min, max;           /* FIELD_INT */
  const char *const *choices; /* CHECK_CHOICE, NULL-terminated */
  const char *comment;
};

/* clang-format off */
#define FIELD(type, member, kind, check, min, max, choices, comment) \
  { #member, kind, offsetof (type, member), check, min, max, choices, comment }
#define STRING(type, member, check, comment) \
  FIELD (type, member, FIELD_STRING, check, 0, 0, NULL, comment)
#define CHOICE(type, member, choices, comment) \
  FIELD (type, member, FIELD_STRING, CHECK_CHOICE, 0, 0, choices, comment)
#define INTEGER(type, member, min, max, comment) \
  FIELD (type, member, FIELD_INT, CHECK_NONE, min, max, NULL, comment)
#define BOOLEAN(type, member, comment) \
  FIELD (type, member, FIELD_BOOL, CHECK_NONE, 0, 0, NULL, comment)
#define STRV(type, member, check, comment) \
  FIELD (type, member, FIELD_STRV, check, 0, 0, NULL, comment)
#define FIELDS_END { NULL }
/* clang-format on */

#define C struct crid_config
#define H struct runtime_handler_config
#define R struct registry_config

static const char *const cgroup_managers[] = { "cgroupfs", "systemd", NULL };
static const char *const seccomp_precompile_choices[] = { "auto", "always", "never", NULL };

static const struct field crid_fields[] = {
  STRING(C, root, CHECK_ABSOLUTE, "Persistent data: images, containers and pod sandboxes."),
  STRING(C, state_dir, CHECK_ABSOLUTE,
         "Runtime state, gone after a reboot: lock, namespaces, exit files, monitors."),
  STRING(C, log_level, CHECK_LOG_LEVEL, "Log verbosity: fatal, error, warn, info, debug or trace."),
  FIELDS_END,
};

static const struct field api_fields[] = {
  STRING(C, listen, CHECK_ABSOLUTE, "Unix socket of the CRI gRPC API (kubelet, crictl)."),
  STRING(C, stream_address, CHECK_NOT_EMPTY,
         "Address of the streaming server for exec, attach and port-forward."),
  INTEGER(C, stream_port, 0, 65535, "TCP port of the streaming server; 0 picks a free one."),
  STRING(C, stream_idle_timeout, CHECK_DURATION,
         "How long an exec, attach or port-forward session may stay idle before it is closed "
         "(\"4h\", \"30m\", \"90s\"; \"0\": never)."),
  STRING(C, stream_tls_cert, CHECK_ABSOLUTE_OR_EMPTY,
         "PEM certificate of the streaming server; with stream_tls_key it serves HTTPS."),
  STRING(C, stream_tls_key, CHECK_ABSOLUTE_OR_EMPTY, "PEM private key of stream_tls_cert."),
  STRING(C, stream_tls_ca, CHECK_ABSOLUTE_OR_EMPTY,
         "PEM CA certificates; when set, streaming clients must present a certificate it signed."),
  INTEGER(C, stream_max_sessions, 1, 100000,
          "Streaming sessions open at once; more are refused (HTTP 503)."),
  FIELDS_END,
};

static const struct field runtime_fields[] = {
  STRING(C, default_runtime, CHECK_NOT_EMPTY, "Runtime handler for pods that do not name one."),
  CHOICE(C, cgroup_manager, cgroup_managers, "Who manages cgroups: cgroupfs or systemd."),
  STRING(C, conmon, CHECK_ABSOLUTE_OR_EMPTY,
         "The crid-conmon monitor binary; empty means the one beside crid."),
  INTEGER(C, shm_size, 1, INT64_MAX, "Size in bytes of each pod's /dev/shm."),
  STRV(C, cdi_spec_dirs, CHECK_ABSOLUTE,
       "Directories of CDI device spec files (*.json, *.yaml), watched for changes; for the "
       "same device a later directory wins."),
  BOOLEAN(C, seccomp_use_default_when_empty,
          "A pod or container that names no seccomp profile runs with the default one, not "
          "unconfined."),
  FIELDS_END,
};

static const struct field handler_fields[] = {
  STRING(H, runtime_path, CHECK_ABSOLUTE_OR_EMPTY,
         "The OCI runtime binary; empty looks for the handler's name in $PATH."),
  STRING(H, runtime_root, CHECK_ABSOLUTE_OR_EMPTY,
         "The runtime's --root state directory; empty means <state_dir>/runtimes/<name>."),
  STRV(H, allowed_annotations, CHECK_NOT_EMPTY,
       "Annotations that pods using this handler may set to change its behaviour."),
  CHOICE(H, seccomp_precompile, seccomp_precompile_choices,
         "Hand the runtime seccomp filters compiled by crid (crun's run.oci.seccomp_bpf_data); "
         "auto: when the runtime binary is crun."),
  FIELDS_END,
};

static const struct field image_fields[] = {
  STRING(C, pause_image, CHECK_IMAGE_OR_EMPTY,
         "Image every pod's pause runs from, pulled when a pod first needs it and pinned; "
         "empty uses crid's built-in pause."),
  INTEGER(C, max_concurrent_downloads, 1, 64, "Layers one image pull downloads at the same time."),
  INTEGER(C, pull_progress_timeout, 0, INT32_MAX,
          "Seconds a pull may make no progress before it fails; 0 waits forever."),
  FIELDS_END,
};

static const struct field registry_fields[] = {
  STRING(R, location, CHECK_NONE,
         "Host[:port] to contact in place of this registry; empty means the registry itself."),
  BOOLEAN(R, insecure, "Plain HTTP, or HTTPS without verifying the certificate."),
  STRING(R, ca_dir, CHECK_ABSOLUTE_OR_EMPTY,
         "Directory of extra CA certificates (*.crt) for this registry."),
  STRV(R, mirrors, CHECK_NOT_EMPTY, "Mirrors tried in order before the registry itself."),
  FIELDS_END,
};

static const struct field network_fields[] = {
  STRING(C, network_dir, CHECK_ABSOLUTE, "Directory of CNI network configuration files."),
  STRV(C, plugin_dirs, CHECK_ABSOLUTE, "Directories searched in order for CNI plugin binaries."),
  FIELDS_END,
};

static const struct field metrics_fields[] = {
  BOOLEAN(C, enable_metrics, "Serve Prometheus metrics over HTTP."),
  STRING(C, metrics_host, CHECK_NOT_EMPTY, "Address of the metrics server."),
  INTEGER(C, metrics_port, 0, 65535, "TCP port of the metrics server."),
  FIELDS_END,
};

/* CRI-O's key of the same name; its 0 (collect at each call) has no
 * equivalent: a call reads the cgroups whose reading is older than a
 * period anyway, and never walks a file system. */
static const struct field stats_fields[] = {
  INTEGER(C, collection_period, 1, 3600,
          "Seconds between background passes: cgroups read (calls serve a reading up to a "
          "period old, 15 s at most), writable layers measured (du of each upper dir)."),
  FIELDS_END,
};

/* A table whose members are named items (runtime handlers, registries),
 * kept in a sorted array of item structs inside struct crid_config. */
struct map
{
  const char *what; /* "runtime handler" */
  const char *example;
  const struct field *fields;
  size_t items_offset; /* the item array in struct crid_config */
  size_t count_offset; /* its length */
  size_t item_size;
  size_t name_offset; /* the item's char *name */
  bool (*name_is_valid)(const char *name);
};

static bool
registry_prefix_is_valid(const char *prefix)
{
  size_t len = strlen(prefix);
  if (len == 0 || len > 255)
    return false;
  for (size_t i = 0; i < len; i++)
    if (prefix[i] <= ' ' || prefix[i] >= 0x7f || strchr("/\\\"'", prefix[i]))
      return false;
  return true;
}

static const struct map runtimes_map = {
  .what = "runtime handler",
  .example = "[crid.runtime.runtimes.NAME]",
  .fields = handler_fields,
  .items_offset = offsetof(C, runtimes),
  .count_offset = offsetof(C, n_runtimes),
  .item_size = sizeof(H),
  .name_offset = offsetof(H, name),
  .name_is_valid = path_component_is_valid,
};

static const struct map registries_map = {
  .what = "registry",
  .example = "[crid.image.registries.\"registry.example:5000\"]",
  .fields = registry_fields,
  .items_offset = offsetof(C, registries),
  .count_offset = offsetof(C, n_registries),
  .item_size = sizeof(R),
  .name_offset = offsetof(R, prefix),
  .name_is_valid = registry_prefix_is_valid,
};

#undef C
#undef H
#undef R

struct section
{
  const char *path; /* the full dotted name */
  const char *key;  /* its last part */
  const char *comment;
  const struct field *fields;
  const struct section *const *children; /* NULL-terminated */
  const struct map *map;                 /* set: members are items */
};

static const struct section api_section = {
  .path = "crid.api",
  .key = "api",
  .comment = "The CRI API and the streaming server.",
  .fields = api_fields,
};

static const struct section runtimes_section = {
  .path = "crid.runtime.runtimes",
  .key = "runtimes",
  .comment = "OCI runtime handlers, one table each; a pod picks one by name (RuntimeClass).",
  .map = &runtimes_map,
};

static const struct section *const runtime_children[] = { &runtimes_section, NULL };

static const struct section runtime_section = {
  .path = "crid.runtime",
  .key = "runtime",
  .comment = "Running containers.",
  .fields = runtime_fields,
  .children = runtime_children,
};

static const struct section registries_section = {
  .path = "crid.image.registries",
  .key = "registries",
  .comment = "Registries that need settings, one table each, named by host[:port].",
  .map = &registries_map,
};

static const struct section *const image_children[] = { &registries_section, NULL };

static const struct section image_section = {
  .path = "crid.image",
  .key = "image",
  .comment = "Pulling and storing images.",
  .fields = image_fields,
  .children = image_children,
};

static const struct section network_section = {
  .path = "crid.network",
  .key = "network",
  .comment = "Pod networking through CNI.",
  .fields = network_fields,
};

static const struct section metrics_section = {
  .path = "crid.metrics",
  .key = "metrics",
  .comment = "Prometheus metrics.",
  .fields = metrics_fields,
};

static const struct section stats_section = {
  .path = "crid.stats",
  .key = "stats",
  .comment = "Container and pod statistics (ContainerStats, PodSandboxStats, metrics).",
  .fields = stats_fields,
};

static const struct section *const crid_children[] = {
  &api_section,     &runtime_section, &image_section, &network_section,
  &metrics_section, &stats_section,   NULL,
};

static const struct section crid_section = {
  .path = "crid",
  .key = "crid",
  .comment = "Where crid keeps its data, and how much it logs.",
  .fields = crid_fields,
  .children = crid_children,
};

static const struct section *const root_children[] = { &crid_section, NULL };

static const struct field no_fields[] = { FIELDS_END };

static const struct section root_section = {
  .path = "",
  .key = "",
  .fields = no_fields,
  .children = root_children,
};

/* -------------------------------------------------------- field access */

static char **
field_string(const void *base, const struct field *f)
{
  return (char **)((char *)base + f->offset);
}

static int64_t *
field_int(const void *base, const struct field *f)
{
  return (int64_t *)((char *)base + f->offset);
}

static bool *
field_bool(const void *base, const struct field *f)
{
  return (bool *)((char *)base + f->offset);
}

static char ***
field_strv(const void *base, const struct field *f)
{
  return (char ***)((char *)base + f->offset);
}

static void
replace_string(char **field, char *value)
{
  free(*field);
  *field = value;
}

static void
replace_strv(char ***field, char **value)
{
  strv_free(*field);
  *field = value;
}

static void
fields_init_empty(void *base, const struct field *fields)
{
  for (const struct field *f = fields; f->key; f++)
    if (f->kind == FIELD_STRING)
      *field_string(base, f) = xstrdup(f->check == CHECK_CHOICE ? f->choices[0] : "");
    else if (f->kind == FIELD_STRV)
      *field_strv(base, f) = xcalloc(1, sizeof(char *));
}

static void
fields_free(void *base, const struct field *fields)
{
  for (const struct field *f = fields; f->key; f++)
    if (f->kind == FIELD_STRING)
      replace_string(field_string(base, f), NULL);
    else if (f->kind == FIELD_STRV)
      replace_strv(field_strv(base, f), NULL);
}

/* ------------------------------------------------------------ map items */

static char **
map_items(const struct map *m, const struct crid_config *c)
{
  return (char **)((char *)c + m->items_offset);
}

static size_t *
map_count(const struct map *m, const struct crid_config *c)
{
  return (size_t *)((char *)c + m->count_offset);
}

static void *
map_at(const struct map *m, const struct crid_config *c, size_t i)
{
  return *map_items(m, c) + i * m->item_size;
}

static const char *
map_item_name(const struct map *m, const void *item)
{
  return *(char **)((char *)item + m->name_offset);
}

static void *
map_find(const struct map *m, const struct crid_config *c, const char *name)
{
  for (size_t i = 0; i < *map_count(m, c); i++)
    if (strcmp(map_item_name(m, map_at(m, c, i)), name) == 0)
      return map_at(m, c, i);
  return NULL;
}

/* A new item with empty fields, at its place in name order. */
static void *
map_add(const struct map *m, struct crid_config *c, const char *name)
{
  size_t n = *map_count(m, c), at = 0;
  char *item;

  while (at < n && strcmp(map_item_name(m, map_at(m, c, at)), name) < 0)
    at++;
  *map_items(m, c) = xrealloc(*map_items(m, c), (n + 1) * m->item_size);
  item = map_at(m, c, at);
  memmove(item + m->item_size, item, (n - at) * m->item_size);
  memset(item, 0, m->item_size);
  *(char **)(item + m->name_offset) = xstrdup(name);
  fields_init_empty(item, m->fields);
  (*map_count(m, c))++;
  return item;
}

static void
map_free(const struct map *m, struct crid_config *c)
{
  for (size_t i = 0; i < *map_count(m, c); i++)
    {
      char *item = map_at(m, c, i);
      free(*(char **)(item + m->name_offset));
      fields_free(item, m->fields);
    }
  replace_string(map_items(m, c), NULL);
  *map_count(m, c) = 0;
}

/* --------------------------------------------------------- init, free */

static void
section_free(const struct section *s, struct crid_config *c)
{
  if (s->map)
    {
      map_free(s->map, c);
      return;
    }
  fields_free(c, s->fields);
  for (size_t i = 0; s->children && s->children[i]; i++)
    section_free(s->children[i], c);
}

void
config_free(struct crid_config *c)
{
  free(c->conmon_path);
  c->conmon_path = NULL;
  section_free(&root_section, c);
}

static char **
strv_of(const char *a, const char *b)
{
  char **strv = xcalloc(3, sizeof *strv);
  strv[0] = xstrdup(a);
  strv[1] = b ? xstrdup(b) : NULL;
  return strv;
}

static void
add_default_runtime(struct crid_config *c, const char *name, const char *path)
{
  struct runtime_handler_config *r = map_add(&runtimes_map, c, name);
  replace_string(&r->runtime_path, xstrdup(path));
}

void
config_init(struct crid_config *c)
{
  memset(c, 0, sizeof *c);
  c->root = xstrdup("/var/lib/crid");
  c->state_dir = xstrdup("/run/crid");
  c->log_level = xstrdup("info");
  c->listen = xstrdup("/run/crid/crid.sock");
  c->stream_address = xstrdup("127.0.0.1");
  c->stream_port = 0;
  c->stream_idle_timeout = xstrdup("4h");
  c->stream_max_sessions = 1000;
  c->stream_tls_cert = xstrdup("");
  c->stream_tls_key = xstrdup("");
  c->stream_tls_ca = xstrdup("");
  c->default_runtime = xstrdup("crun");
  c->cgroup_manager = xstrdup("cgroupfs");
  c->conmon = xstrdup("");
  c->shm_size = 64 * 1024 * 1024;
  c->cdi_spec_dirs = strv_of("/etc/cdi", "/var/run/cdi");
  add_default_runtime(c, "crun", "/usr/bin/crun");
  /* Debian's runc package installs /usr/sbin/runc; others use /usr/bin. */
  add_default_runtime(c, "runc",
                      access("/usr/sbin/runc", F_OK) == 0 ? "/usr/sbin/runc" : "/usr/bin/runc");
  c->pause_image = xstrdup("");
  c->max_concurrent_downloads = 3;
  c->pull_progress_timeout = 60;
  c->network_dir = xstrdup("/etc/cni/net.d");
  c->plugin_dirs = strv_of("/opt/cni/bin", "/usr/lib/cni");
  c->enable_metrics = false;
  c->metrics_host = xstrdup("127.0.0.1");
  c->metrics_port = 9537;
  c->collection_period = 10;
}

/* ----------------------------------------------------------- checking */

/* NULL when s passes f's check, else what is wrong with it. */
static char *
check_string(const struct field *f, const char *s)
{
  cleanup_free char *quoted = toml_quote(s, strlen(s));

  if (!utf8_is_valid(s, strlen(s)))
    return xstrdup("is not valid UTF-8");
  if (f->check == CHECK_NOT_EMPTY && *s == '\0')
    return xstrdup("must not be empty");
  if ((f->check == CHECK_ABSOLUTE || (f->check == CHECK_ABSOLUTE_OR_EMPTY && *s)) && *s != '/')
    return xasprintf("must be an absolute path (got %s)", quoted);
  if (f->check == CHECK_DURATION && config_parse_duration(s, &(int64_t){ 0 }) < 0)
    return xasprintf("must be a duration such as \"4h\", \"1h30m\", \"45s\" (got %s)", quoted);
  if (f->check == CHECK_IMAGE_OR_EMPTY && *s)
    {
      struct image_reference ref;
      struct error err = ERROR_INIT;
      if (image_reference_parse(s, &ref, &err) < 0)
        {
          char *problem
              = xasprintf("must be an image reference (got %s: %s)", quoted, error_message(&err));
          error_clear(&err);
          return problem;
        }
      image_reference_free(&ref);
    }
  if (f->check == CHECK_LOG_LEVEL && log_level_parse(s) < 0)
    return xasprintf("must be one of fatal, error, warn, info, debug, trace (got %s)", quoted);
  if (f->check == CHECK_CHOICE)
    {
      cleanup_free char *list = xstrdup(f->choices[0]);
      for (size_t i = 0; f->choices[i]; i++)
        if (strcmp(s, f->choices[i]) == 0)
          return NULL;
      for (size_t i = 1; f->choices[i]; i++)
        {
          char *longer = xasprintf("%s, %s", list, f->choices[i]);
          replace_string(&list, longer);
        }
      return xasprintf("must be one of %s (got %s)", list, quoted);
    }
  return NULL;
}

static char *
check_integer(const struct field *f, int64_t v)
{
  if (v >= f->min && v <= f->max)
    return NULL;
  if (f->max == INT64_MAX)
    return xasprintf("must be at least %" PRId64 " (got %" PRId64 ")", f->min, v);
  return xasprintf("must be between %" PRId64 " and %" PRId64 " (got %" PRId64 ")", f->min, f->max,
                   v);
}

/* The value stored for a string that passed its check. */
static char *
normalized_string(const struct field *f, const char *s)
{
  if (f->check == CHECK_LOG_LEVEL)
    return xstrdup(log_level_name(log_level_parse(s)));
  return xstrdup(s);
}

/* ------------------------------------------------------------- merging */

/* One file merged in two passes over the same tree: the first (c == NULL)
 * only checks, the second applies, so a bad file changes nothing. */
struct merge
{
  struct crid_config *c;
  const char *name;
  struct error *err;
};

static int merge_fail(const struct merge *m, const struct toml_node *node, int line,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
merge_fail(const struct merge *m, const struct toml_node *node, int line, const char *fmt, ...)
{
  cleanup_free char *path = toml_node_path(node);
  cleanup_free char *message = NULL;
  va_list ap;

  va_start(ap, fmt);
  message = xvasprintf(fmt, ap);
  va_end(ap);
  return error_set(m->err, EINVAL, "%s:%d: key %s: %s", m->name, line, path, message);
}

static int
merge_type_fail(const struct merge *m, const struct toml_node *node, const char *expected)
{
  return merge_fail(m, node, node->line, "expected %s, got %s", expected,
                    toml_type_name(node->type));
}

/* A string value that passes f's check; item > 0 numbers array items. */
static int
check_string_node(const struct merge *m, const struct field *f, const struct toml_node *node,
                  size_t item)
{
  cleanup_free char *problem = NULL;
  cleanup_free char *which = item ? xasprintf("item %zu ", item) : xstrdup("");

  if (node->type != TOML_STRING)
    return item ? merge_fail(m, node, node->line, "expected an array of strings, item %zu is %s",
                             item, toml_type_name(node->type))
                : merge_type_fail(m, node, "a string");
  if (strlen(node->string) != node->string_len)
    return merge_fail(m, node, node->line, "%smust not contain a NUL character", which);
  problem = check_string(f, node->string);
  if (problem)
    return merge_fail(m, node, node->line, "%s%s", which, problem);
  return 0;
}

static int
merge_strv(const struct merge *m, const struct field *f, const struct toml_node *node, void *base)
{
  char **strv;

  if (node->type != TOML_ARRAY)
    return merge_type_fail(m, node, "an array of strings");
  for (size_t i = 0; i < node->n_children; i++)
    if (check_string_node(m, f, node->children[i], i + 1) < 0)
      return -1;
  if (base == NULL)
    return 0;
  strv = xcalloc(node->n_children + 1, sizeof *strv);
  for (size_t i = 0; i < node->n_children; i++)
    strv[i] = xstrdup(node->children[i]->string);
  replace_strv(field_strv(base, f), strv);
  return 0;
}

static int
merge_field(const struct merge *m, const struct field *f, const struct toml_node *node, void *base)
{
  cleanup_free char *problem = NULL;

  switch (f->kind)
    {
    case FIELD_STRING:
      if (check_string_node(m, f, node, 0) < 0)
        return -1;
      if (base)
        replace_string(field_string(base, f), normalized_string(f, node->string));
      return 0;
    case FIELD_INT:
      if (node->type != TOML_INTEGER)
        return merge_type_fail(m, node, "an integer");
      if ((problem = check_integer(f, node->integer)))
        return merge_fail(m, node, node->line, "%s", problem);
      if (base)
        *field_int(base, f) = node->integer;
      return 0;
    case FIELD_BOOL:
      if (node->type != TOML_BOOLEAN)
        return merge_type_fail(m, node, "a boolean");
      if (base)
        *field_bool(base, f) = node->boolean;
      return 0;
    case FIELD_STRV:
      return merge_strv(m, f, node, base);
    }
  return 0;
}

static const struct field *
find_field(const struct field *fields, const char *key)
{
  for (const struct field *f = fields; f && f->key; f++)
    if (strcmp(f->key, key) == 0)
      return f;
  return NULL;
}

static const struct section *
find_child(const struct section *s, const char *key)
{
  for (size_t i = 0; s->children && s->children[i]; i++)
    if (strcmp(s->children[i]->key, key) == 0)
      return s->children[i];
  return NULL;
}

static int merge_section(const struct merge *m, const struct section *s,
                         const struct toml_node *table);

/* The members of table against fields and child sections. */
static int
merge_members(const struct merge *m, const struct field *fields, const struct section *s,
              const struct toml_node *table, void *base)
{
  for (size_t i = 0; i < table->n_children; i++)
    {
      const struct toml_node *member = table->children[i];
      const struct field *f = find_field(fields, member->key);
      const struct section *child = s ? find_child(s, member->key) : NULL;

      if (f && merge_field(m, f, member, base) < 0)
        return -1;
      if (f)
        continue;
      if (child && member->type != TOML_TABLE)
        return merge_type_fail(m, member, "a table");
      if (child && merge_section(m, child, member) < 0)
        return -1;
      if (child)
        continue;
      if (member->type == TOML_TABLE)
        {
          cleanup_free char *path = toml_node_path(member);
          return error_set(m->err, EINVAL, "%s:%d: unknown table [%s]", m->name, member->line,
                           path);
        }
      return merge_fail(m, member, member->line, "unknown key");
    }
  return 0;
}

static int
merge_map(const struct merge *m, const struct map *map, const struct toml_node *table)
{
  for (size_t i = 0; i < table->n_children; i++)
    {
      const struct toml_node *member = table->children[i];
      void *item = NULL;

      if (member->type != TOML_TABLE)
        return merge_fail(m, member, member->line, "expected a table (a %s), got %s", map->what,
                          toml_type_name(member->type));
      if (!map->name_is_valid(member->key))
        return merge_fail(m, member, member->line, "invalid %s name", map->what);
      if (m->c)
        {
          item = map_find(map, m->c, member->key);
          if (item == NULL)
            item = map_add(map, m->c, member->key);
        }
      if (merge_members(m, map->fields, NULL, member, item) < 0)
        return -1;
    }
  return 0;
}

static int
merge_section(const struct merge *m, const struct section *s, const struct toml_node *table)
{
  if (s->map)
    return merge_map(m, s->map, table);
  return merge_members(m, s->fields, s, table, m->c);
}

int
config_merge_text(struct crid_config *c, const char *name, const char *text, size_t len,
                  struct error *err)
{
  cleanup_toml struct toml_node *doc = toml_parse(name, text, len, err);
  struct merge check = { NULL, name, err };
  struct merge apply = { c, name, err };

  if (doc == NULL || merge_section(&check, &root_section, doc) < 0)
    return -1;
  return merge_section(&apply, &root_section, doc);
}

int
config_merge_file(struct crid_config *c, const char *path, struct error *err)
{
  cleanup_free char *text = NULL;
  size_t len = 0;

  if (read_file(path, CONFIG_MAX_FILE_SIZE, &text, &len, err) < 0)
    return -1;
  return config_merge_text(c, path, text, len, err);
}

/* ------------------------------------------------------------- loading */

static int
is_dropin(const struct dirent *entry)
{
  return entry->d_name[0] != '.' && str_has_suffix(entry->d_name, ".conf");
}

static int
compare_names(const struct dirent **a, const struct dirent **b)
{
  return strcmp((*a)->d_name, (*b)->d_name);
}

struct dirent_list
{
  struct dirent **entries;
  int n;
};

static void
dirent_list_free(struct dirent_list *list)
{
  for (int i = 0; i < list->n; i++)
    free(list->entries[i]);
  free(list->entries);
}

static int
load_dropin(struct crid_config *c, const char *dir, const char *name, struct error *err)
{
  cleanup_free char *path = xasprintf("%s/%s", dir, name);
  struct stat st;

  if (stat(path, &st) < 0)
    return error_set_errno(err, errno, "stat %s", path);
  if (!S_ISREG(st.st_mode))
    return 0;
  return config_merge_file(c, path, err);
}

static int
load_dropins(struct crid_config *c, const char *dir, struct error *err)
{
  __attribute__((cleanup(dirent_list_free))) struct dirent_list list = { NULL, 0 };

  list.n = scandir(dir, &list.entries, is_dropin, compare_names);
  if (list.n < 0)
    {
      list.n = 0;
      if (errno == ENOENT)
        return 0;
      return error_set_errno(err, errno, "read config dir %s", dir);
    }
  for (int i = 0; i < list.n; i++)
    if (load_dropin(c, dir, list.entries[i]->d_name, err) < 0)
      return -1;
  return 0;
}

int
config_load(struct crid_config *c, const char *main_file, bool must_exist, const char *dir,
            struct error *err)
{
  struct error local = ERROR_INIT;

  if (main_file && config_merge_file(c, main_file, &local) < 0)
    {
      if (local.code != ENOENT || must_exist)
        {
          error_move(err, &local);
          return -1;
        }
      error_clear(&local);
    }
  if (dir)
    return load_dropins(c, dir, err);
  return 0;
}

/* ------------------------------------------------------------ finalize */

static int
validate_fields(const struct field *fields, const void *base, const char *prefix, struct error *err)
{
  for (const struct field *f = fields; f->key; f++)
    {
      cleanup_free char *problem = NULL;
      char **strv = f->kind == FIELD_STRV ? *field_strv(base, f) : NULL;

      if (f->kind == FIELD_STRING)
        problem = check_string(f, *field_string(base, f));
      else if (f->kind == FIELD_INT)
        problem = check_integer(f, *field_int(base, f));
      for (size_t i = 0; strv && strv[i] && problem == NULL; i++)
        if ((problem = check_string(f, strv[i])))
          {
            char *longer = xasprintf("item %zu %s", i + 1, problem);
            replace_string(&problem, longer);
          }
      if (problem)
        return error_set(err, EINVAL, "key %s.%s: %s", prefix, f->key, problem);
    }
  return 0;
}

static int
validate_section(const struct section *s, const struct crid_config *c, struct error *err)
{
  for (size_t i = 0; s->map && i < *map_count(s->map, c); i++)
    {
      const void *item = map_at(s->map, c, i);
      cleanup_free char *key = toml_key(map_item_name(s->map, item));
      cleanup_free char *prefix = xasprintf("%s.%s", s->path, key);
      if (validate_fields(s->map->fields, item, prefix, err) < 0)
        return -1;
    }
  if (s->map)
    return 0;
  if (validate_fields(s->fields, c, s->path, err) < 0)
    return -1;
  for (size_t i = 0; s->children && s->children[i]; i++)
    if (validate_section(s->children[i], c, err) < 0)
      return -1;
  return 0;
}

/* The monitor to run: `conmon`, or crid-conmon beside the crid binary.
 * Kept apart from `conmon` so `crid config` prints what was configured
 * (contrib/crid.conf is that output, wherever crid is installed). */
static int
resolve_conmon(struct crid_config *c, struct error *err)
{
  cleanup_free char *exe = NULL;

  if (*c->conmon)
    {
      replace_string(&c->conmon_path, xstrdup(c->conmon));
      return 0;
    }
  exe = exe_directory(err);
  if (exe == NULL)
    return error_wrap(err, "key crid.runtime.conmon");
  replace_string(&c->conmon_path, xasprintf("%s/crid-conmon", exe));
  return 0;
}

/* An executable called name in $PATH, or NULL. */
static char *
find_in_path(const char *name)
{
  const char *env = getenv("PATH");
  cleanup_free char *dirs = xstrdup(env && *env ? env : DEFAULT_PATH);
  char *saveptr = NULL;

  for (char *dir = strtok_r(dirs, ":", &saveptr); dir; dir = strtok_r(NULL, ":", &saveptr))
    {
      cleanup_free char *candidate = xasprintf("%s/%s", dir, name);
      struct stat st;
      if (dir[0] == '/' && stat(candidate, &st) == 0 && S_ISREG(st.st_mode)
          && access(candidate, X_OK) == 0)
        return steal_pointer(&candidate);
    }
  return NULL;
}

static int
resolve_runtime(const struct crid_config *c, struct runtime_handler_config *r, struct error *err)
{
  if (*r->runtime_path == '\0')
    {
      char *found = find_in_path(r->name);
      if (found == NULL)
        {
          cleanup_free char *key = toml_key(r->name);
          return error_set(err, EINVAL,
                           "key crid.runtime.runtimes.%s.runtime_path: not set, and no "
                           "executable %s in $PATH",
                           key, r->name);
        }
      replace_string(&r->runtime_path, found);
    }
  if (*r->runtime_root == '\0')
    replace_string(&r->runtime_root, xasprintf("%s/runtimes/%s", c->state_dir, r->name));
  return 0;
}

int
config_check_state_dir(const struct crid_config *c, struct error *err)
{
  const size_t socket_max = sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1;
  const size_t below = strlen("/conmon/") + 64 + strlen("/console");
  size_t len = strlen(c->state_dir);
  cleanup_free char *quoted = NULL;

  if (len + below <= socket_max)
    return 0;
  quoted = toml_quote(c->state_dir, len);
  return error_set(err, EINVAL,
                   "key crid.state_dir: %s is %zu bytes long, at most %zu fit: the monitors' "
                   "sockets <state_dir>/conmon/<64-hex id>/console must fit in a unix socket "
                   "address (%zu bytes)",
                   quoted, len, socket_max - below, socket_max);
}

static int
check_default_runtime(const struct crid_config *c, struct error *err)
{
  cleanup_free char *names = xstrdup("");
  cleanup_free char *quoted = toml_quote(c->default_runtime, strlen(c->default_runtime));

  if (config_find_runtime(c, c->default_runtime))
    return 0;
  for (size_t i = 0; i < c->n_runtimes; i++)
    replace_string(&names, xasprintf("%s%s%s", names, i ? ", " : "", c->runtimes[i].name));
  return error_set(err, EINVAL,
                   "key crid.runtime.default_runtime: no runtime handler %s is configured "
                   "(configured: %s)",
                   quoted, c->n_runtimes ? names : "none");
}

int
config_finalize(struct crid_config *c, struct error *err)
{
  if (validate_section(&root_section, c, err) < 0)
    return -1;
  replace_string(&c->log_level, xstrdup(log_level_name(log_level_parse(c->log_level))));
  if (resolve_conmon(c, err) < 0)
    return -1;
  for (size_t i = 0; i < c->n_runtimes; i++)
    if (resolve_runtime(c, &c->runtimes[i], err) < 0)
      return -1;
  return check_default_runtime(c, err);
}

const struct runtime_handler_config *
config_find_runtime(const struct crid_config *c, const char *name)
{
  if (name == NULL || *name == '\0')
    name = c->default_runtime;
  for (size_t i = 0; i < c->n_runtimes; i++)
    if (strcmp(c->runtimes[i].name, name) == 0)
      return &c->runtimes[i];
  return NULL;
}

bool
config_runtime_takes_compiled_seccomp(const struct runtime_handler_config *r)
{
  const char *slash = strrchr(r->runtime_path, '/');

  if (strcmp(r->seccomp_precompile, "auto") != 0)
    return strcmp(r->seccomp_precompile, "always") == 0;
  return strcmp(slash ? slash + 1 : r->runtime_path, "crun") == 0;
}

const struct registry_config *
config_find_registry(const struct crid_config *c, const char *prefix)
{
  for (size_t i = 0; i < c->n_registries; i++)
    if (strcmp(c->registries[i].prefix, prefix) == 0)
      return &c->registries[i];
  return NULL;
}

/* --------------------------------------------------------- differences */

static bool
strv_equal(char *const *a, char *const *b)
{
  size_t i = 0;

  for (; a && a[i] && b && b[i]; i++)
    if (strcmp(a[i], b[i]) != 0)
      return false;
  return !(a && a[i]) && !(b && b[i]);
}

static bool
field_equal(const struct field *f, const void *a, const void *b)
{
  switch (f->kind)
    {
    case FIELD_STRING:
      return strcmp(*field_string(a, f), *field_string(b, f)) == 0;
    case FIELD_INT:
      return *field_int(a, f) == *field_int(b, f);
    case FIELD_BOOL:
      return *field_bool(a, f) == *field_bool(b, f);
    default:
      return strv_equal(*field_strv(a, f), *field_strv(b, f));
    }
}

static void
diff_fields(const struct field *fields, const void *a, const void *b, struct config_change *change,
            config_change_fn fn, void *arg)
{
  for (const struct field *f = fields; f && f->key; f++)
    if (!field_equal(f, a, b))
      {
        change->kind = CONFIG_KEY_CHANGED;
        change->key = f->key;
        fn(arg, change);
      }
}

static void
diff_map(const struct section *s, const struct crid_config *a, const struct crid_config *b,
         config_change_fn fn, void *arg)
{
  const struct map *m = s->map;
  struct config_change change = { .table = s->path, .what = m->what };

  for (size_t i = 0; i < *map_count(m, a); i++)
    {
      const void *old = map_at(m, a, i);
      const void *fresh;

      change.item = map_item_name(m, old);
      change.key = NULL;
      fresh = map_find(m, b, change.item);
      if (fresh == NULL)
        {
          change.kind = CONFIG_ITEM_REMOVED;
          fn(arg, &change);
        }
      else
        diff_fields(m->fields, old, fresh, &change, fn, arg);
    }
  for (size_t i = 0; i < *map_count(m, b); i++)
    {
      change.item = map_item_name(m, map_at(m, b, i));
      change.key = NULL;
      change.kind = CONFIG_ITEM_ADDED;
      if (map_find(m, a, change.item) == NULL)
        fn(arg, &change);
    }
}

static void
diff_section(const struct section *s, const struct crid_config *a, const struct crid_config *b,
             config_change_fn fn, void *arg)
{
  struct config_change change = { .table = s->path };

  if (s->map)
    {
      diff_map(s, a, b, fn, arg);
      return;
    }
  diff_fields(s->fields, a, b, &change, fn, arg);
  for (size_t i = 0; s->children && s->children[i]; i++)
    diff_section(s->children[i], a, b, fn, arg);
}

void
config_diff(const struct crid_config *old, const struct crid_config *fresh, config_change_fn fn,
            void *arg)
{
  diff_section(&root_section, old, fresh, fn, arg);
}

void
config_move_registries(struct crid_config *dst, struct crid_config *src)
{
  map_free(&registries_map, dst);
  dst->registries = steal_pointer(&src->registries);
  dst->n_registries = src->n_registries;
  src->n_registries = 0;
}

/* ---------------------------------------------------------------- TOML */

static void
write_toml_string(FILE *out, const char *s)
{
  cleanup_free char *quoted = toml_quote(s, strlen(s));
  fputs(quoted, out);
}

static void
write_toml_fields(FILE *out, const struct field *fields, const void *base)
{
  for (const struct field *f = fields; f->key; f++)
    {
      fprintf(out, "# %s\n%s = ", f->comment, f->key);
      if (f->kind == FIELD_STRING)
        write_toml_string(out, *field_string(base, f));
      else if (f->kind == FIELD_INT)
        fprintf(out, "%" PRId64, *field_int(base, f));
      else if (f->kind == FIELD_BOOL)
        fputs(*field_bool(base, f) ? "true" : "false", out);
      else
        {
          char **strv = *field_strv(base, f);
          fputc('[', out);
          for (size_t i = 0; strv && strv[i]; i++)
            {
              fputs(i ? ", " : "", out);
              write_toml_string(out, strv[i]);
            }
          fputc(']', out);
        }
      fputc('\n', out);
    }
}

static void
write_toml_map(FILE *out, const struct section *s, const struct crid_config *c)
{
  size_t n = *map_count(s->map, c);

  fprintf(out, "\n# %s\n", s->comment);
  if (n == 0)
    fprintf(out, "# None configured; add one as %s.\n", s->map->example);
  for (size_t i = 0; i < n; i++)
    {
      const void *item = map_at(s->map, c, i);
      cleanup_free char *key = toml_key(map_item_name(s->map, item));
      fprintf(out, "%s[%s.%s]\n", i ? "\n" : "", s->path, key);
      write_toml_fields(out, s->map->fields, item);
    }
}

static void
write_toml_section(FILE *out, const struct section *s, const struct crid_config *c)
{
  if (s->map)
    {
      write_toml_map(out, s, c);
      return;
    }
  fprintf(out, "\n# %s\n[%s]\n", s->comment, s->path);
  write_toml_fields(out, s->fields, c);
  for (size_t i = 0; s->children && s->children[i]; i++)
    write_toml_section(out, s->children[i], c);
}

char *
config_to_toml(const struct crid_config *c)
{
  char *text = NULL;
  size_t size = 0;
  FILE *out = open_memstream(&text, &size);

  if (out == NULL)
    abort();
  fputs("# crid configuration: the effective values.\n"
        "# crid reads " CONFIG_DEFAULT_FILE ", then " CONFIG_DEFAULT_DIR "/*.conf\n"
        "# in lexical order; a later file wins, key by key.\n",
        out);
  write_toml_section(out, &crid_section, c);
  if (fclose(out) != 0)
    abort();
  return text;
}

/* ---------------------------------------------------------------- JSON */

static void
write_json_fields(struct json_writer *w, const struct field *fields, const void *base)
{
  for (const struct field *f = fields; f->key; f++)
    {
      char **strv = f->kind == FIELD_STRV ? *field_strv(base, f) : NULL;
      json_write_key(w, f->key);
      if (f->kind == FIELD_STRING)
        json_write_string(w, *field_string(base, f));
      else if (f->kind == FIELD_INT)
        json_write_int(w, *field_int(base, f));
      else if (f->kind == FIELD_BOOL)
        json_write_bool(w, *field_bool(base, f));
      else
        {
          json_begin_array(w);
          for (size_t i = 0; strv && strv[i]; i++)
            json_write_string(w, strv[i]);
          json_end_array(w);
        }
    }
}

static void
write_json_section(struct json_writer *w, const struct section *s, const struct crid_config *c)
{
  json_begin_object(w);
  for (size_t i = 0; s->map && i < *map_count(s->map, c); i++)
    {
      const void *item = map_at(s->map, c, i);
      json_write_key(w, map_item_name(s->map, item));
      json_begin_object(w);
      write_json_fields(w, s->map->fields, item);
      json_end_object(w);
    }
  if (s->fields)
    write_json_fields(w, s->fields, c);
  for (size_t i = 0; s->children && s->children[i]; i++)
    {
      json_write_key(w, s->children[i]->key);
      write_json_section(w, s->children[i], c);
    }
  json_end_object(w);
}

void
config_write_json(const struct crid_config *c, struct json_writer *writer)
{
  write_json_section(writer, &root_section, c);
}
