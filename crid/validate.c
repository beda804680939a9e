/* Request validation, once per request before its handler; the rules are
 * in validate.h. */
#include "crid/validate.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "pod/oci_spec.h"
#include "pod/userns.h"
#include "api.pb-c.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- where in the request --------------------------------------------- */

#define NO_INDEX SIZE_MAX

/* One step of the path to a value, on the walker's stack; the text is
 * made only for an error. */
struct field_path
{
  const struct field_path *parent;
  const char *name; /* the field's name as the proto spells it */
  size_t index;     /* the element of a repeated field, or NO_INDEX */
  const char *key;  /* the entry of a map, or NULL */
};

/* "config.mounts[2].host_path", "config.labels[\"app\"]"; "" for the
 * request itself. */
static char *
path_text(const struct field_path *at)
{
  cleanup_free char *parent = NULL;
  cleanup_free char *key = NULL;
  const char *dot;

  if (at == NULL)
    return xstrdup("");
  parent = path_text(at->parent);
  dot = parent[0] ? "." : "";
  if (at->key)
    {
      key = quote_untrusted(at->key, strlen(at->key), VALIDATE_QUOTE_MAX);
      return xasprintf("%s%s%s[%s]", parent, dot, at->name, key);
    }
  if (at->index != NO_INDEX)
    return xasprintf("%s%s%s[%zu]", parent, dot, at->name, at->index);
  return xasprintf("%s%s%s", parent, dot, at->name);
}

/* Prefixes err's message with the path; returns -1. */
static int
wrap_with_path(const struct field_path *at, struct error *err)
{
  cleanup_free char *path = path_text(at);

  if (path[0] == '\0')
    return -1;
  return error_wrap(err, "%s", path);
}

static int fail(const struct field_path *at, struct error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(const struct field_path *at, struct error *err, const char *fmt, ...)
{
  cleanup_free char *message = NULL;
  va_list ap;

  va_start(ap, fmt);
  message = xvasprintf(fmt, ap);
  va_end(ap);
  error_set(err, EINVAL, "%s", message);
  return wrap_with_path(at, err);
}

/* ---- rules of one message type ---------------------------------------- */

static int
check_mount(const ProtobufCMessage *m, struct error *err)
{
  return oci_check_mount((const Runtime__V1__Mount *)m, err);
}

static int
check_resources(const ProtobufCMessage *m, struct error *err)
{
  return oci_check_resources((const Runtime__V1__LinuxContainerResources *)m, err);
}

static int
check_port_mapping(const ProtobufCMessage *m, struct error *err)
{
  const Runtime__V1__PortMapping *p = (const Runtime__V1__PortMapping *)m;
  unsigned char address[sizeof(struct in6_addr)];

  if (p->protocol != RUNTIME__V1__PROTOCOL__TCP && p->protocol != RUNTIME__V1__PROTOCOL__UDP
      && p->protocol != RUNTIME__V1__PROTOCOL__SCTP)
    return error_set(err, EINVAL, "protocol %d is not TCP (0), UDP (1) or SCTP (2)",
                     (int)p->protocol);
  if (p->host_port < 0 || p->host_port > 65535)
    return error_set(err, EINVAL, "host_port %d is outside [0, 65535]", (int)p->host_port);
  if (p->container_port < (p->host_port > 0 ? 1 : 0) || p->container_port > 65535)
    return error_set(err, EINVAL, "container_port %d is outside [%d, 65535]",
                     (int)p->container_port, p->host_port > 0 ? 1 : 0);
  /* It reaches the portmap plugin's iptables rules. */
  if (p->host_ip && p->host_ip[0] && inet_pton(AF_INET, p->host_ip, address) != 1
      && inet_pton(AF_INET6, p->host_ip, address) != 1)
    {
      cleanup_free char *quoted
          = quote_untrusted(p->host_ip, strlen(p->host_ip), VALIDATE_QUOTE_MAX);
      return error_set(err, EINVAL, "host_ip %s is not an IPv4 or IPv6 address", quoted);
    }
  return 0;
}

static int
check_container_config(const ProtobufCMessage *m, struct error *err)
{
  const Runtime__V1__ContainerConfig *config = (const Runtime__V1__ContainerConfig *)m;

  /* Joined to the pod's log directory: ".." could climb out of it. */
  if (config->log_path && path_has_dot_dot(config->log_path))
    {
      cleanup_free char *quoted
          = quote_untrusted(config->log_path, strlen(config->log_path), VALIDATE_QUOTE_MAX);
      return error_set(err, EINVAL, "log_path %s has a \"..\" component", quoted);
    }
  return 0;
}

static int
check_namespace_option(const ProtobufCMessage *m, struct error *err)
{
  return pod_userns_check_options((const Runtime__V1__NamespaceOption *)m, err);
}

struct type_rule
{
  const ProtobufCMessageDescriptor *descriptor;
  int (*check)(const ProtobufCMessage *m, struct error *err);
};

/* Wherever these types appear in a request (a PodSandboxConfig comes
 * with RunPodSandbox, CreateContainer and PullImage). */
static const struct type_rule type_rules[] = {
  { &runtime__v1__mount__descriptor, check_mount },
  { &runtime__v1__linux_container_resources__descriptor, check_resources },
  { &runtime__v1__port_mapping__descriptor, check_port_mapping },
  { &runtime__v1__container_config__descriptor, check_container_config },
  { &runtime__v1__namespace_option__descriptor, check_namespace_option },
};

static int
check_type_rules(const ProtobufCMessage *m, const struct field_path *at, struct error *err)
{
  for (size_t i = 0; i < sizeof type_rules / sizeof type_rules[0]; i++)
    if (m->descriptor == type_rules[i].descriptor && type_rules[i].check(m, err) < 0)
      return wrap_with_path(at, err);
  return 0;
}

/* ---- the walk ----------------------------------------------------------- */

static int check_message(const ProtobufCMessage *m, const struct field_path *at, struct error *err);

/* protobuf-c has no flag for them: a map<K, V> field is a repeated
 * message of a generated type "<Name>Entry" with fields key = 1 and
 * value = 2.  Only string keys are walked as map keys (the CRI has no
 * other). */
static bool
is_map_entry(const ProtobufCMessageDescriptor *d)
{
  return d->n_fields == 2 && d->fields[0].id == 1 && strcmp(d->fields[0].name, "key") == 0
         && d->fields[0].type == PROTOBUF_C_TYPE_STRING && d->fields[1].id == 2
         && strcmp(d->fields[1].name, "value") == 0 && str_has_suffix(d->short_name, "Entry");
}

static const void *
member_of(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
  return (const char *)m + f->offset;
}

static size_t
count_of(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
  return *(const size_t *)((const char *)m + f->quantifier_offset);
}

static int
check_string(const char *s, const struct field_path *at, struct error *err)
{
  size_t len, valid;
  cleanup_free char *quoted = NULL;

  if (s == NULL)
    return 0;
  len = strlen(s);
  valid = utf8_valid_prefix(s, len);
  if (valid == len)
    return 0;
  quoted = quote_untrusted(s, len, VALIDATE_QUOTE_MAX);
  return fail(at, err, "not valid UTF-8 (byte %zu of %s)", valid, quoted);
}

/* A string or message field that is not repeated (or one element or map
 * value), at the path at. */
static int
check_value(const ProtobufCFieldDescriptor *f, const void *value, const struct field_path *at,
            struct error *err)
{
  if (f->type == PROTOBUF_C_TYPE_STRING)
    return check_string(value, at, err);
  if (f->type == PROTOBUF_C_TYPE_MESSAGE && value)
    return check_message(value, at, err);
  return 0;
}

static int
check_map_entry(const ProtobufCMessage *entry, const struct field_path *parent, const char *name,
                struct error *err)
{
  const ProtobufCFieldDescriptor *fields = entry->descriptor->fields;
  const char *key = *(char *const *)member_of(entry, &fields[0]);
  struct field_path at = { parent, name, NO_INDEX, key ? key : "" };
  size_t len = key ? strlen(key) : 0;
  size_t valid = key ? utf8_valid_prefix(key, len) : 0;

  if (valid != len)
    return fail(&at, err, "the key is not valid UTF-8 (byte %zu)", valid);
  return check_value(&fields[1], *(const void *const *)member_of(entry, &fields[1]), &at, err);
}

static int
check_repeated(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
               const struct field_path *parent, struct error *err)
{
  size_t n = count_of(m, f);
  const void *const *items = *(const void *const *const *)member_of(m, f);
  bool map = f->type == PROTOBUF_C_TYPE_MESSAGE && is_map_entry(f->descriptor);

  for (size_t i = 0; i < n; i++)
    {
      struct field_path at = { parent, f->name, i, NULL };
      int ret = map ? check_map_entry(items[i], parent, f->name, err)
                    : check_value(f, items[i], &at, err);
      if (ret < 0)
        return -1;
    }
  return 0;
}

static int
check_field(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
            const struct field_path *parent, struct error *err)
{
  struct field_path at = { parent, f->name, NO_INDEX, NULL };

  if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
    return 0;
  /* A oneof member other than the one set shares its memory. */
  if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
      && *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
    return 0;
  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    return check_repeated(m, f, parent, err);
  return check_value(f, *(const void *const *)member_of(m, f), &at, err);
}

static bool
is_metadata_map(const ProtobufCFieldDescriptor *f)
{
  return f->label == PROTOBUF_C_LABEL_REPEATED && f->type == PROTOBUF_C_TYPE_MESSAGE
         && is_map_entry(f->descriptor)
         && ((const ProtobufCMessageDescriptor *)f->descriptor)->fields[1].type
                == PROTOBUF_C_TYPE_STRING
         && (strcmp(f->name, "labels") == 0 || strcmp(f->name, "annotations") == 0);
}

/* Kubernetes counts the bytes of keys and values (TotalAnnotationSizeLimitB). */
static size_t
metadata_bytes(const ProtobufCMessage *m)
{
  const ProtobufCMessageDescriptor *d = m->descriptor;
  size_t total = 0;

  for (unsigned i = 0; i < d->n_fields; i++)
    {
      const ProtobufCFieldDescriptor *f = &d->fields[i];
      const ProtobufCMessage *const *entries;
      if (!is_metadata_map(f))
        continue;
      entries = *(const ProtobufCMessage *const *const *)member_of(m, f);
      for (size_t j = 0; j < count_of(m, f); j++)
        {
          const ProtobufCFieldDescriptor *ef = entries[j]->descriptor->fields;
          const char *key = *(char *const *)member_of(entries[j], &ef[0]);
          const char *value = *(char *const *)member_of(entries[j], &ef[1]);
          total += (key ? strlen(key) : 0) + (value ? strlen(value) : 0);
        }
    }
  return total;
}

static int
check_message(const ProtobufCMessage *m, const struct field_path *at, struct error *err)
{
  const ProtobufCMessageDescriptor *d = m->descriptor;
  size_t metadata = metadata_bytes(m);

  if (metadata > VALIDATE_METADATA_MAX)
    return fail(at, err, "labels and annotations take %zu bytes, more than the limit of %d",
                metadata, VALIDATE_METADATA_MAX);
  for (unsigned i = 0; i < d->n_fields; i++)
    if (check_field(m, &d->fields[i], at, err) < 0)
      return -1;
  return check_type_rules(m, at, err);
}

int
validate_request(const ProtobufCMessage *request, struct error *err)
{
  return check_message(request, NULL, err);
}
