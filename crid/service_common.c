#include "crid/service_common.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <errno.h>
#include <string.h>

#define SPEC_MAX_SIZE (4 * 1024 * 1024)

uint8_t *
rpc_pack_request(const ProtobufCMessage *request, size_t *len)
{
  uint8_t *bytes;

  *len = protobuf_c_message_get_packed_size(request);
  bytes = xmalloc(*len);
  protobuf_c_message_pack(request, bytes);
  return bytes;
}

int
rpc_gone_is_done(struct error *err)
{
  if (err->code != ENOENT)
    return -1;
  error_clear(err);
  return 0;
}

int
rpc_reply_empty(struct rpc_call *call, int ret, const ProtobufCMessageDescriptor *descriptor,
                ProtobufCMessage **response)
{
  ProtobufCMessage *reply;

  if (ret < 0)
    return -1;
  reply = arena_alloc(&call->arena, descriptor->sizeof_message);
  protobuf_c_message_init(descriptor, reply);
  *response = reply;
  return 0;
}

static struct rpc_map_entry *
new_entry(struct rpc_call *call, const ProtobufCMessageDescriptor *entry_descriptor)
{
  struct rpc_map_entry *entry = arena_alloc(&call->arena, entry_descriptor->sizeof_message);
  protobuf_c_message_init(entry_descriptor, entry);
  return entry;
}

void *
rpc_copy_map(struct rpc_call *call, const ProtobufCMessageDescriptor *entry_descriptor,
             const void *source, size_t n)
{
  const struct rpc_map_entry *const *from = source;
  struct rpc_map_entry **out = arena_new_array(&call->arena, struct rpc_map_entry *, n + 1);

  for (size_t i = 0; i < n; i++)
    {
      out[i] = new_entry(call, entry_descriptor);
      out[i]->key = arena_strdup(&call->arena, from[i]->key);
      out[i]->value = arena_strdup(&call->arena, from[i]->value);
    }
  return out;
}

void *
rpc_info_map(struct rpc_call *call, const ProtobufCMessageDescriptor *entry_descriptor, char *value)
{
  struct rpc_map_entry **out = arena_new_array(&call->arena, struct rpc_map_entry *, 1);

  out[0] = new_entry(call, entry_descriptor);
  out[0]->key = (char *)"info";
  out[0]->value = value;
  return out;
}

static bool
has_label(const struct rpc_map_entry *const *labels, size_t n_labels,
          const struct rpc_map_entry *wanted)
{
  for (size_t i = 0; i < n_labels; i++)
    if (strcmp(labels[i]->key, wanted->key) == 0 && strcmp(labels[i]->value, wanted->value) == 0)
      return true;
  return false;
}

bool
rpc_labels_match(const void *labels, size_t n_labels, const void *selector, size_t n_selector)
{
  const struct rpc_map_entry *const *wanted = selector;

  for (size_t i = 0; i < n_selector; i++)
    if (!has_label(labels, n_labels, wanted[i]))
      return false;
  return true;
}

bool
rpc_id_matches(const char *id, const char *filter_id)
{
  return filter_id[0] == '\0' || strncmp(id, filter_id, strlen(filter_id)) == 0;
}

char *
rpc_verbose_info_finish(struct rpc_call *call, struct json_writer *writer, const char *spec_path)
{
  cleanup_free char *spec_text = NULL;
  cleanup_json struct json_value *spec = NULL;
  struct error ignored = ERROR_INIT;
  size_t spec_len = 0;

  if (read_file(spec_path, SPEC_MAX_SIZE, &spec_text, &spec_len, &ignored) == 0)
    spec = json_parse(spec_text, spec_len, &ignored);
  error_clear(&ignored);
  json_write_key(writer, "runtimeSpec");
  json_write_value(writer, spec);
  json_end_object(writer);
  return arena_adopt(&call->arena, json_writer_finish(writer, NULL));
}
