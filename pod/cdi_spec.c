/* CDI spec files: YAML to a JSON tree, then one validator for both
 * formats; see cdi_spec.h. */
#include "pod/cdi_spec.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YAML_MAX_DEPTH 32
#define QUOTE_MAX 128
#define VENDOR_MAX 253
#define CLASS_MAX 63
#define DEVICE_NAME_MAX 253

/* Released spec versions, oldest first: a spec must name one of them, and
 * one at least as new as the fields it uses. */
static const char *const versions[]
    = { "0.1.0", "0.2.0", "0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0", "1.0.0", "1.1.0" };
#define N_VERSIONS (sizeof versions / sizeof versions[0])

static int
version_index(const char *version)
{
  if (version[0] == 'v')
    version++;
  for (size_t i = 0; i < N_VERSIONS; i++)
    if (strcmp(version, versions[i]) == 0)
      return (int)i;
  return -1;
}

/* ---- names -------------------------------------------------------------- */

static bool
is_alnum(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool
is_letter(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* first char checked by the caller; middle chars alnum or one of extra;
 * last alnum. */
static bool
name_body_is_valid(const char *name, size_t max, const char *extra)
{
  size_t len = strlen(name);

  if (len == 0 || len > max)
    return false;
  for (size_t i = 1; i + 1 < len; i++)
    if (!is_alnum(name[i]) && strchr(extra, name[i]) == NULL)
      return false;
  return is_alnum(name[len - 1]);
}

bool
cdi_vendor_is_valid(const char *vendor)
{
  return is_letter(vendor[0]) && name_body_is_valid(vendor, VENDOR_MAX, "_-.");
}

bool
cdi_class_is_valid(const char *class_name)
{
  return is_letter(class_name[0]) && name_body_is_valid(class_name, CLASS_MAX, "_-.");
}

bool
cdi_device_name_is_valid(const char *name)
{
  return is_alnum(name[0]) && name_body_is_valid(name, DEVICE_NAME_MAX, "_-.:");
}

int
cdi_parse_qualified_name(const char *qualified, char **vendor, char **class_name, char **name,
                         struct error *err)
{
  cleanup_free char *shown = quote_untrusted(qualified, strlen(qualified), QUOTE_MAX);
  const char *slash = strchr(qualified, '/');
  const char *equals = slash ? strchr(slash, '=') : NULL;
  cleanup_free char *v = NULL;
  cleanup_free char *c = NULL;
  cleanup_free char *n = NULL;

  if (slash == NULL || equals == NULL)
    return error_set(err, EINVAL,
                     "CDI device name %s is not fully qualified (want vendor.com/class=name)",
                     shown);
  v = xstrndup(qualified, (size_t)(slash - qualified));
  c = xstrndup(slash + 1, (size_t)(equals - slash - 1));
  n = xstrdup(equals + 1);
  if (!cdi_vendor_is_valid(v))
    return error_set(err, EINVAL, "CDI device name %s: invalid vendor", shown);
  if (!cdi_class_is_valid(c))
    return error_set(err, EINVAL, "CDI device name %s: invalid class", shown);
  if (!cdi_device_name_is_valid(n))
    return error_set(err, EINVAL, "CDI device name %s: invalid device name", shown);
  *vendor = steal_pointer(&v);
  *class_name = steal_pointer(&c);
  *name = steal_pointer(&n);
  return 0;
}

bool
cdi_spec_format_of(const char *file_name, enum cdi_format *format)
{
  if (str_has_suffix(file_name, ".json"))
    *format = CDI_FORMAT_JSON;
  else if (str_has_suffix(file_name, ".yaml"))
    *format = CDI_FORMAT_YAML;
  else
    return false;
  return true;
}

/* ---- YAML to a JSON tree -------------------------------------------------
 *
 * Plain (unquoted) YAML scalars have no type of their own; the CDI schema
 * gives them one by key: the numbers and the one boolean it has are read
 * as such (YAML 1.1 integers: 0644 is octal, as Go's readers take it),
 * null-like scalars are null, everything else is a string, so a device
 * named 0 stays the string "0". */

static const char *const integer_keys[]
    = { "major", "minor", "fileMode", "uid", "gid", "timeout", "additionalGids", NULL };

struct yaml_frame
{
  bool mapping;
  bool want_key;
  char *key; /* mapping: the current key; sequence: the key it is the value of */
};

struct yaml_reader
{
  struct json_writer *writer;
  struct yaml_frame frames[YAML_MAX_DEPTH];
  size_t depth;
  bool have_root;
};

static bool
plain_is_null(const char *s)
{
  return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0
         || strcmp(s, "NULL") == 0;
}

static bool
parse_yaml_integer(const char *s, int64_t *out)
{
  const char *digits = s + (s[0] == '-' || s[0] == '+');
  int base = 10;
  char *end = NULL;
  long long value;

  if (digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X'))
    base = 16, digits += 2;
  else if (digits[0] == '0' && digits[1] == 'o')
    base = 8, digits += 2;
  else if (digits[0] == '0' && digits[1] != '\0')
    base = 8, digits += 1;
  if (digits[0] == '\0' || digits[0] == '-' || digits[0] == '+')
    return false;
  errno = 0;
  value = strtoll(digits, &end, base);
  if (errno != 0 || *end != '\0')
    return false;
  *out = s[0] == '-' ? -value : value;
  return true;
}

/* The key a value at the current position belongs to. */
static const char *
context_key(const struct yaml_reader *r)
{
  return r->depth ? r->frames[r->depth - 1].key : NULL;
}

static void
write_scalar(struct yaml_reader *r, const yaml_event_t *event)
{
  const char *text = (const char *)event->data.scalar.value;
  size_t len = event->data.scalar.length;
  const char *key = context_key(r);
  int64_t number;

  if (!event->data.scalar.plain_implicit || strlen(text) != len)
    json_write_string_len(r->writer, text, len);
  else if (plain_is_null(text))
    json_write_null(r->writer);
  else if (str_in_list(integer_keys, key) && parse_yaml_integer(text, &number))
    json_write_int(r->writer, number);
  else if (key && strcmp(key, "enableMonitoring") == 0
           && (strcmp(text, "true") == 0 || strcmp(text, "false") == 0))
    json_write_bool(r->writer, strcmp(text, "true") == 0);
  else
    json_write_string_len(r->writer, text, len);
}

/* A value written at the current position: the mapping around it wants a
 * key next. */
static void
value_done(struct yaml_reader *r)
{
  if (r->depth && r->frames[r->depth - 1].mapping)
    r->frames[r->depth - 1].want_key = true;
}

static int
yaml_push(struct yaml_reader *r, bool mapping, yaml_mark_t mark, struct error *err)
{
  const char *key = context_key(r);

  if (r->depth == YAML_MAX_DEPTH)
    return error_set(err, EINVAL, "line %zu: nested deeper than %d levels", mark.line + 1,
                     YAML_MAX_DEPTH);
  r->frames[r->depth]
      = (struct yaml_frame){ .mapping = mapping, .want_key = true, .key = xstrdup(key ? key : "") };
  r->depth++;
  if (mapping)
    json_begin_object(r->writer);
  else
    json_begin_array(r->writer);
  return 0;
}

static void
yaml_pop(struct yaml_reader *r)
{
  struct yaml_frame *frame = &r->frames[--r->depth];

  if (frame->mapping)
    json_end_object(r->writer);
  else
    json_end_array(r->writer);
  free(frame->key);
  value_done(r);
}

/* One event; 1 at the end of the stream. */
static int
yaml_event(struct yaml_reader *r, const yaml_event_t *event, struct error *err)
{
  struct yaml_frame *frame = r->depth ? &r->frames[r->depth - 1] : NULL;
  size_t line = event->start_mark.line + 1;

  switch (event->type)
    {
    case YAML_STREAM_END_EVENT:
      return 1;
    case YAML_DOCUMENT_START_EVENT:
      if (r->have_root)
        return error_set(err, EINVAL, "line %zu: more than one YAML document", line);
      return 0;
    case YAML_ALIAS_EVENT:
      return error_set(err, EINVAL, "line %zu: YAML aliases are not allowed in a CDI spec", line);
    case YAML_SCALAR_EVENT:
      if (frame && frame->mapping && frame->want_key)
        {
          free(frame->key);
          frame->key = xstrndup((const char *)event->data.scalar.value, event->data.scalar.length);
          json_write_string_len(r->writer, frame->key, event->data.scalar.length);
          frame->want_key = false;
          return 0;
        }
      if (frame == NULL)
        r->have_root = true;
      write_scalar(r, event);
      value_done(r);
      return 0;
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT:
      if (frame && frame->mapping && frame->want_key)
        return error_set(err, EINVAL, "line %zu: a mapping key must be a scalar", line);
      if (frame == NULL)
        r->have_root = true;
      return yaml_push(r, event->type == YAML_MAPPING_START_EVENT, event->start_mark, err);
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
      yaml_pop(r);
      return 0;
    default:
      return 0;
    }
}

/* The YAML document as JSON text (caller frees). */
static int
yaml_to_json(const char *text, size_t len, char **json, size_t *json_len, struct error *err)
{
  struct yaml_reader r = { .writer = json_writer_new(false) };
  yaml_parser_t parser;
  int ret = 0;

  if (!yaml_parser_initialize(&parser))
    abort();
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  while (ret == 0)
    {
      yaml_event_t event;
      if (!yaml_parser_parse(&parser, &event))
        {
          ret = error_set(err, EINVAL, "line %zu: %s", parser.problem_mark.line + 1,
                          parser.problem ? parser.problem : "YAML syntax error");
          break;
        }
      ret = yaml_event(&r, &event, err);
      yaml_event_delete(&event);
    }
  yaml_parser_delete(&parser);
  while (r.depth)
    free(r.frames[--r.depth].key);
  if (ret < 0 || !r.have_root)
    {
      json_writer_free(r.writer);
      return ret < 0 ? -1 : error_set(err, EINVAL, "empty YAML document");
    }
  *json = json_writer_finish(r.writer, json_len);
  return 0;
}

/* ---- the validator ------------------------------------------------------ */

struct spec_reader
{
  struct error *err;
  int required;            /* index in versions[] the fields used need */
  const char *required_by; /* the field that needs it */
};

static void
requires(struct spec_reader *r, const char *version, const char *field)
{
  int index = version_index(version);

  if (index > r->required)
    {
      r->required = index;
      r->required_by = field;
    }
}

static int
fail(struct spec_reader *r, const char *where, const char *what)
{
  return error_set(r->err, EINVAL, "%s: %s", where, what);
}

/* Every key of object is one of allowed, and none is repeated. */
static int
check_keys(struct spec_reader *r, const struct json_value *object, const char *where,
           const char *const *allowed)
{
  size_t n = json_object_size(object);

  if (!json_is_object(object))
    return fail(r, where, "must be an object");
  for (size_t i = 0; i < n; i++)
    {
      const char *key = json_object_key_at(object, i);
      cleanup_free char *shown = quote_untrusted(key, strlen(key), QUOTE_MAX);
      if (!str_in_list(allowed, key))
        return error_set(r->err, EINVAL, "%s: unknown key %s", where, shown);
      for (size_t j = 0; j < i; j++)
        if (strcmp(json_object_key_at(object, j), key) == 0)
          return error_set(r->err, EINVAL, "%s: key %s given twice", where, shown);
    }
  return 0;
}

/* Optional string member: NULL when absent or null. */
static int
get_string(struct spec_reader *r, const struct json_value *object, const char *key,
           const char *where, bool required, char **out)
{
  const struct json_value *value = json_object_get(object, key);
  cleanup_free char *path = xasprintf("%s%s%s", where, where[0] ? "." : "", key);

  *out = NULL;
  if (value == NULL || json_is_null(value))
    return required ? fail(r, path, "is required") : 0;
  if (!json_is_string(value))
    return fail(r, path, "must be a string");
  if (required && json_string(value)[0] == '\0')
    return fail(r, path, "must not be empty");
  *out = xstrdup(json_string(value));
  return 0;
}

/* Optional integer member in [min, max]; *present says whether given. */
static int
get_integer(struct spec_reader *r, const struct json_value *object, const char *key,
            const char *where, int64_t min, int64_t max, bool *present, int64_t *out)
{
  const struct json_value *value = json_object_get(object, key);
  cleanup_free char *path = xasprintf("%s.%s", where, key);
  cleanup_free char *range = NULL;

  *present = false;
  if (value == NULL || json_is_null(value))
    return 0;
  if (!json_integer(value, out))
    return fail(r, path, "must be an integer");
  if (*out < min || *out > max)
    {
      range = xasprintf("must be in [%" PRId64 ", %" PRId64 "]", min, max);
      return fail(r, path, range);
    }
  *present = true;
  return 0;
}

/* Optional array of strings: NULL-terminated copy, NULL when empty. */
static int
get_strings(struct spec_reader *r, const struct json_value *object, const char *key,
            const char *where, char ***out)
{
  const struct json_value *value = json_object_get(object, key);
  cleanup_free char *path = xasprintf("%s.%s", where, key);
  size_t n;

  *out = NULL;
  if (value == NULL || json_is_null(value))
    return 0;
  if (!json_is_array(value))
    return fail(r, path, "must be an array of strings");
  n = json_array_size(value);
  if (n == 0)
    return 0;
  *out = xcalloc(n + 1, sizeof(char *));
  for (size_t i = 0; i < n; i++)
    {
      const char *s = json_string(json_array_at(value, i));
      if (s == NULL)
        {
          strv_free(*out);
          *out = NULL;
          return fail(r, path, "must be an array of strings");
        }
      (*out)[i] = xstrdup(s);
    }
  return 0;
}

/* Optional array member: its size (0 when absent or null). */
static int
get_array(struct spec_reader *r, const struct json_value *object, const char *key,
          const char *where, const struct json_value **array, size_t *n)
{
  const struct json_value *value = json_object_get(object, key);

  *array = NULL;
  *n = 0;
  if (value == NULL || json_is_null(value))
    return 0;
  if (!json_is_array(value))
    {
      cleanup_free char *path = xasprintf("%s.%s", where, key);
      return fail(r, path, "must be an array");
    }
  *array = value;
  *n = json_array_size(value);
  return 0;
}

typedef int (*item_reader)(struct spec_reader *r, const struct json_value *v, const char *where,
                           void *item);

/* Optional array of objects, each read by read into *items (item_size
 * bytes each); *n counts the items to free, also on error. */
static int
read_items(struct spec_reader *r, const struct json_value *object, const char *key,
           const char *where, size_t item_size, item_reader read, void **items, size_t *n)
{
  const struct json_value *array;
  size_t count;

  if (get_array(r, object, key, where, &array, &count) < 0)
    return -1;
  *items = count ? xcalloc(count, item_size) : NULL;
  for (; *n < count; (*n)++)
    {
      cleanup_free char *item_where = xasprintf("%s%s%s[%zu]", where, where[0] ? "." : "", key, *n);
      if (read(r, json_array_at(array, *n), item_where, (char *)*items + *n * item_size) < 0)
        {
          (*n)++;
          return -1;
        }
    }
  return 0;
}

static int
check_env(struct spec_reader *r, char *const *env, const char *where)
{
  for (size_t i = 0; env && env[i]; i++)
    {
      const char *equals = strchr(env[i], '=');
      if (equals == NULL || equals == env[i])
        {
          cleanup_free char *shown = quote_untrusted(env[i], strlen(env[i]), QUOTE_MAX);
          cleanup_free char *what = xasprintf("%s is not KEY=value", shown);
          return fail(r, where, what);
        }
    }
  return 0;
}

static int
check_absolute(struct spec_reader *r, const char *path, const char *where)
{
  cleanup_free char *shown = NULL;
  cleanup_free char *what = NULL;

  if (path == NULL || path[0] == '/')
    return 0;
  shown = quote_untrusted(path, strlen(path), QUOTE_MAX);
  what = xasprintf("%s is not an absolute path", shown);
  return fail(r, where, what);
}

static int
read_device_node(struct spec_reader *r, const struct json_value *v, const char *where, void *item)
{
  struct cdi_device_node *node = item;
  static const char *const keys[] = { "path",     "hostPath",    "type", "major", "minor",
                                      "fileMode", "permissions", "uid",  "gid",   NULL };
  cleanup_free char *type = NULL;
  cleanup_free char *path_where = xasprintf("%s.path", where);
  bool present;
  int64_t n;

  if (check_keys(r, v, where, keys) < 0 || get_string(r, v, "path", where, true, &node->path) < 0
      || check_absolute(r, node->path, path_where) < 0
      || get_string(r, v, "hostPath", where, false, &node->host_path) < 0
      || get_string(r, v, "type", where, false, &type) < 0
      || get_string(r, v, "permissions", where, false, &node->permissions) < 0)
    return -1;
  if (node->host_path)
    {
      cleanup_free char *host_where = xasprintf("%s.hostPath", where);
      requires(r, "0.5.0", "deviceNodes.hostPath");
      if (check_absolute(r, node->host_path, host_where) < 0)
        return -1;
    }
  if (type && type[0])
    {
      if (strlen(type) != 1 || strchr("bcup", type[0]) == NULL)
        {
          cleanup_free char *shown = quote_untrusted(type, strlen(type), QUOTE_MAX);
          cleanup_free char *what = xasprintf("device type %s is not b, c, u or p", shown);
          return fail(r, where, what);
        }
      node->type = type[0];
    }
  if (node->permissions && node->permissions[0] == '\0')
    {
      free(node->permissions);
      node->permissions = NULL;
    }
  if (node->permissions && strcmp(node->permissions, "none") != 0
      && strspn(node->permissions, "rwm") != strlen(node->permissions))
    {
      cleanup_free char *shown
          = quote_untrusted(node->permissions, strlen(node->permissions), QUOTE_MAX);
      cleanup_free char *what
          = xasprintf("permissions %s are not a combination of r, w, m (or \"none\")", shown);
      return fail(r, where, what);
    }
  if (get_integer(r, v, "major", where, 0, UINT32_MAX, &present, &node->major) < 0
      || get_integer(r, v, "minor", where, 0, UINT32_MAX, &present, &node->minor) < 0
      || get_integer(r, v, "fileMode", where, 0, UINT32_MAX, &node->has_file_mode, &n) < 0)
    return -1;
  node->file_mode = (uint32_t)n;
  if (get_integer(r, v, "uid", where, 0, UINT32_MAX, &node->has_uid, &n) < 0)
    return -1;
  node->uid = (uint32_t)n;
  if (get_integer(r, v, "gid", where, 0, UINT32_MAX, &node->has_gid, &n) < 0)
    return -1;
  node->gid = (uint32_t)n;
  return 0;
}

static int
read_mount(struct spec_reader *r, const struct json_value *v, const char *where, void *item)
{
  struct cdi_mount *mount = item;
  static const char *const keys[] = { "hostPath", "containerPath", "type", "options", NULL };
  cleanup_free char *container_where = xasprintf("%s.containerPath", where);

  if (check_keys(r, v, where, keys) < 0
      || get_string(r, v, "hostPath", where, true, &mount->host_path) < 0
      || get_string(r, v, "containerPath", where, true, &mount->container_path) < 0
      || check_absolute(r, mount->container_path, container_where) < 0
      || get_string(r, v, "type", where, false, &mount->type) < 0
      || get_strings(r, v, "options", where, &mount->options) < 0)
    return -1;
  if (mount->type && mount->type[0] == '\0')
    {
      free(mount->type);
      mount->type = NULL;
    }
  if (mount->type)
    requires(r, "0.4.0", "mounts.type");
  for (size_t i = 0; mount->options && mount->options[i]; i++)
    if (mount->options[i][0] == '\0' || strchr(mount->options[i], ','))
      return fail(r, where, "a mount option is empty or holds a comma");
  return 0;
}

static int
read_hook(struct spec_reader *r, const struct json_value *v, const char *where, void *item)
{
  struct cdi_hook *hook = item;
  static const char *const keys[] = { "hookName", "path", "args", "env", "timeout", NULL };
  static const char *const names[]
      = { "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop",
          NULL };
  cleanup_free char *path_where = xasprintf("%s.path", where);
  cleanup_free char *env_where = xasprintf("%s.env", where);

  if (check_keys(r, v, where, keys) < 0
      || get_string(r, v, "hookName", where, true, &hook->hook_name) < 0
      || get_string(r, v, "path", where, true, &hook->path) < 0
      || check_absolute(r, hook->path, path_where) < 0
      || get_strings(r, v, "args", where, &hook->args) < 0
      || get_strings(r, v, "env", where, &hook->env) < 0 || check_env(r, hook->env, env_where) < 0
      || get_integer(r, v, "timeout", where, 1, INT32_MAX, &hook->has_timeout, &hook->timeout) < 0)
    return -1;
  if (!str_in_list(names, hook->hook_name))
    {
      cleanup_free char *shown
          = quote_untrusted(hook->hook_name, strlen(hook->hook_name), QUOTE_MAX);
      cleanup_free char *what = xasprintf(
          "hook name %s is not one of prestart, createRuntime, createContainer, startContainer, "
          "poststart, poststop",
          shown);
      return fail(r, where, what);
    }
  return 0;
}

static int
read_intel_rdt(struct spec_reader *r, const struct json_value *v, const char *where)
{
  static const char *const keys[]
      = { "closID", "l3CacheSchema", "memBwSchema", "schemata", "enableMonitoring", NULL };
  const struct json_value *monitoring = json_object_get(v, "enableMonitoring");
  cleanup_free char *clos = NULL;
  cleanup_free char *l3 = NULL;
  cleanup_free char *mem = NULL;
  char **schemata = NULL;

  if (check_keys(r, v, where, keys) < 0 || get_string(r, v, "closID", where, false, &clos) < 0
      || get_string(r, v, "l3CacheSchema", where, false, &l3) < 0
      || get_string(r, v, "memBwSchema", where, false, &mem) < 0
      || get_strings(r, v, "schemata", where, &schemata) < 0)
    return -1;
  if (json_object_get(v, "schemata"))
    requires(r, "1.1.0", "intelRdt.schemata");
  strv_free(schemata);
  if (monitoring && !json_is_null(monitoring))
    {
      if (!json_is_bool(monitoring))
        return fail(r, where, "enableMonitoring must be true or false");
      if (json_bool(monitoring))
        requires(r, "1.1.0", "intelRdt.enableMonitoring");
    }
  requires(r, "0.7.0", "intelRdt");
  return 0;
}

static int
read_net_devices(struct spec_reader *r, const struct json_value *array, size_t n, const char *where)
{
  static const char *const keys[] = { "hostInterfaceName", "name", NULL };

  for (size_t i = 0; i < n; i++)
    {
      const struct json_value *v = json_array_at(array, i);
      cleanup_free char *item = xasprintf("%s.netDevices[%zu]", where, i);
      cleanup_free char *host = NULL;
      cleanup_free char *name = NULL;

      if (check_keys(r, v, item, keys) < 0
          || get_string(r, v, "hostInterfaceName", item, true, &host) < 0
          || get_string(r, v, "name", item, true, &name) < 0)
        return -1;
      for (size_t j = 0; j < i; j++)
        {
          const struct json_value *other = json_array_at(array, j);
          if (strcmp(json_object_get_string(other, "hostInterfaceName"), host) == 0
              || strcmp(json_object_get_string(other, "name"), name) == 0)
            return fail(r, item, "repeats the host interface or the name of another net device");
        }
    }
  if (n > 0)
    requires(r, "1.1.0", "netDevices");
  return 0;
}

static int
read_edits(struct spec_reader *r, const struct json_value *v, const char *where,
           struct cdi_edits *e)
{
  static const char *const keys[] = { "env",      "deviceNodes",    "mounts",     "hooks",
                                      "intelRdt", "additionalGids", "netDevices", NULL };
  cleanup_free char *env_where = xasprintf("%s.env", where);
  const struct json_value *array;
  const struct json_value *rdt;
  size_t n;

  if (v == NULL || json_is_null(v))
    return 0;
  if (check_keys(r, v, where, keys) < 0 || get_strings(r, v, "env", where, &e->env) < 0
      || check_env(r, e->env, env_where) < 0)
    return -1;
  if (read_items(r, v, "deviceNodes", where, sizeof *e->device_nodes, read_device_node,
                 (void **)&e->device_nodes, &e->n_device_nodes)
          < 0
      || read_items(r, v, "mounts", where, sizeof *e->mounts, read_mount, (void **)&e->mounts,
                    &e->n_mounts)
             < 0
      || read_items(r, v, "hooks", where, sizeof *e->hooks, read_hook, (void **)&e->hooks,
                    &e->n_hooks)
             < 0)
    return -1;
  if (get_array(r, v, "additionalGids", where, &array, &n) < 0)
    return -1;
  e->additional_gids = n ? xcalloc(n, sizeof(uint32_t)) : NULL;
  for (size_t i = 0; i < n; i++)
    {
      int64_t gid;
      if (!json_integer(json_array_at(array, i), &gid) || gid < 0 || gid > UINT32_MAX)
        {
          cleanup_free char *item = xasprintf("%s.additionalGids[%zu]", where, i);
          return fail(r, item, "must be an integer in [0, 4294967295]");
        }
      e->additional_gids[e->n_additional_gids++] = (uint32_t)gid;
    }
  if (n > 0)
    requires(r, "0.7.0", "additionalGids");
  rdt = json_object_get(v, "intelRdt");
  if (rdt && !json_is_null(rdt))
    {
      cleanup_free char *item = xasprintf("%s.intelRdt", where);
      if (read_intel_rdt(r, rdt, item) < 0)
        return -1;
      e->has_intel_rdt = true;
    }
  if (get_array(r, v, "netDevices", where, &array, &n) < 0
      || read_net_devices(r, array, n, where) < 0)
    return -1;
  e->n_net_devices = n;
  return 0;
}

static bool
edits_are_empty(const struct cdi_edits *e)
{
  return e->env == NULL && e->n_device_nodes == 0 && e->n_mounts == 0 && e->n_hooks == 0
         && e->n_additional_gids == 0 && !e->has_intel_rdt && e->n_net_devices == 0;
}

static int
read_annotations(struct spec_reader *r, const struct json_value *v, const char *where)
{
  size_t n;

  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_object(v))
    return fail(r, where, "must be an object of strings");
  n = json_object_size(v);
  for (size_t i = 0; i < n; i++)
    if (json_object_key_at(v, i)[0] == '\0' || !json_is_string(json_object_value_at(v, i)))
      return fail(r, where, "must be an object of strings with non-empty keys");
  if (n > 0)
    requires(r, "0.6.0", "annotations");
  return 0;
}

static int
read_device(struct spec_reader *r, const struct json_value *v, const char *where, void *item)
{
  struct cdi_device *device = item;
  static const char *const keys[] = { "name", "annotations", "containerEdits", NULL };
  cleanup_free char *edits_where = xasprintf("%s.containerEdits", where);
  cleanup_free char *annotations_where = xasprintf("%s.annotations", where);

  if (check_keys(r, v, where, keys) < 0 || get_string(r, v, "name", where, true, &device->name) < 0
      || read_annotations(r, json_object_get(v, "annotations"), annotations_where) < 0
      || read_edits(r, json_object_get(v, "containerEdits"), edits_where, &device->edits) < 0)
    return -1;
  if (!cdi_device_name_is_valid(device->name))
    {
      cleanup_free char *shown = quote_untrusted(device->name, strlen(device->name), QUOTE_MAX);
      cleanup_free char *what = xasprintf(
          "device name %s is not letters, digits, '_', '-', '.', ':' starting and ending with a "
          "letter or digit",
          shown);
      return fail(r, where, what);
    }
  if (device->name[0] >= '0' && device->name[0] <= '9')
    requires(r, "0.5.0", "a device name starting with a digit");
  if (edits_are_empty(&device->edits))
    return fail(r, where, "the device has no containerEdits");
  return 0;
}

static int
read_kind(struct spec_reader *r, struct cdi_spec *spec, const char *kind)
{
  cleanup_free char *shown = quote_untrusted(kind, strlen(kind), QUOTE_MAX);
  const char *slash = strchr(kind, '/');

  if (slash == NULL || slash == kind)
    return error_set(r->err, EINVAL, "kind %s is not vendor.com/class", shown);
  spec->vendor = xstrndup(kind, (size_t)(slash - kind));
  spec->class_name = xstrdup(slash + 1);
  if (!cdi_vendor_is_valid(spec->vendor))
    return error_set(r->err, EINVAL, "kind %s: invalid vendor", shown);
  if (!cdi_class_is_valid(spec->class_name))
    return error_set(r->err, EINVAL, "kind %s: invalid class", shown);
  if (strchr(spec->class_name, '.'))
    requires(r, "0.6.0", "a '.' in the class of kind");
  return 0;
}

static int
read_spec(struct spec_reader *r, const struct json_value *root, struct cdi_spec *spec)
{
  static const char *const keys[]
      = { "cdiVersion", "kind", "annotations", "devices", "containerEdits", NULL };
  cleanup_free char *kind = NULL;
  int version;

  if (check_keys(r, root, "spec", keys) < 0
      || get_string(r, root, "cdiVersion", "", true, &spec->version) < 0
      || get_string(r, root, "kind", "", true, &kind) < 0 || read_kind(r, spec, kind) < 0
      || read_annotations(r, json_object_get(root, "annotations"), "annotations") < 0
      || read_edits(r, json_object_get(root, "containerEdits"), "containerEdits", &spec->edits) < 0
      || read_items(r, root, "devices", "", sizeof *spec->devices, read_device,
                    (void **)&spec->devices, &spec->n_devices)
             < 0)
    return -1;
  if (spec->n_devices == 0)
    return error_set(r->err, EINVAL, "devices: a spec must define at least one device");
  for (size_t i = 0; i < spec->n_devices; i++)
    for (size_t j = 0; j < i; j++)
      if (strcmp(spec->devices[j].name, spec->devices[i].name) == 0)
        return error_set(r->err, EINVAL, "devices[%zu]: device %s is defined twice", i,
                         spec->devices[i].name);
  version = version_index(spec->version);
  if (version < 0)
    {
      cleanup_free char *shown = quote_untrusted(spec->version, strlen(spec->version), QUOTE_MAX);
      return error_set(
          r->err, EINVAL,
          "cdiVersion %s is not a released CDI version (0.1.0 to " CDI_VERSION_NEWEST ")", shown);
    }
  if (version < r->required)
    return error_set(r->err, EINVAL, "cdiVersion %s: %s needs at least %s", spec->version,
                     r->required_by, versions[r->required]);
  return 0;
}

int
cdi_spec_parse(const char *text, size_t len, enum cdi_format format, struct cdi_spec **out,
               struct error *err)
{
  struct spec_reader r = { .err = err, .required = 0, .required_by = "" };
  cleanup_free char *json_text = NULL;
  struct json_value *root;
  struct cdi_spec *spec;
  int ret;

  if (len > CDI_SPEC_MAX_SIZE)
    return error_set(err, EINVAL, "larger than %d bytes", CDI_SPEC_MAX_SIZE);
  if (format == CDI_FORMAT_YAML)
    {
      if (yaml_to_json(text, len, &json_text, &len, err) < 0)
        return error_wrap(err, "YAML");
      text = json_text;
    }
  root = json_parse(text, len, err);
  if (root == NULL)
    return -1;
  spec = xcalloc(1, sizeof *spec);
  ret = read_spec(&r, root, spec);
  json_free(root);
  if (ret < 0)
    {
      cdi_spec_free(spec);
      return -1;
    }
  *out = spec;
  return 0;
}

/* ---- freeing ------------------------------------------------------------ */

void
cdi_edits_clear(struct cdi_edits *e)
{
  strv_free(e->env);
  for (size_t i = 0; i < e->n_device_nodes; i++)
    {
      free(e->device_nodes[i].path);
      free(e->device_nodes[i].host_path);
      free(e->device_nodes[i].permissions);
    }
  free(e->device_nodes);
  for (size_t i = 0; i < e->n_mounts; i++)
    {
      free(e->mounts[i].host_path);
      free(e->mounts[i].container_path);
      free(e->mounts[i].type);
      strv_free(e->mounts[i].options);
    }
  free(e->mounts);
  for (size_t i = 0; i < e->n_hooks; i++)
    {
      free(e->hooks[i].hook_name);
      free(e->hooks[i].path);
      strv_free(e->hooks[i].args);
      strv_free(e->hooks[i].env);
    }
  free(e->hooks);
  free(e->additional_gids);
  *e = (struct cdi_edits){ 0 };
}

void
cdi_spec_free(struct cdi_spec *spec)
{
  if (spec == NULL)
    return;
  free(spec->version);
  free(spec->vendor);
  free(spec->class_name);
  cdi_edits_clear(&spec->edits);
  for (size_t i = 0; i < spec->n_devices; i++)
    {
      free(spec->devices[i].name);
      cdi_edits_clear(&spec->devices[i].edits);
    }
  free(spec->devices);
  free(spec);
}
