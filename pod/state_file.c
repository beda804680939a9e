#include "pod/state_file.h"
#include "common/atomic_file.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <sys/stat.h>

/* Bounds what a damaged or foreign file can make crid read at start. */
#define STATE_FILE_MAX (16 * 1024 * 1024)

int
state_file_save(const char *dir, const uint8_t *request, size_t request_len, const char *state,
                size_t state_len, bool durable, struct error *err)
{
  cleanup_free char *request_path = xasprintf("%s/request.pb", dir);
  cleanup_free char *state_path = xasprintf("%s/state.json", dir);
  struct stat st;
  int (*write_file)(const char *, const void *, size_t, mode_t, struct error *)
      = durable ? atomic_write_file : replace_file;

  if (mkdir_p(dir, 0700, err) < 0)
    return -1;
  if (stat(request_path, &st) < 0 && write_file(request_path, request, request_len, 0600, err) < 0)
    return -1;
  return write_file(state_path, state, state_len, 0600, err);
}

int
state_file_read_request(const char *dir, uint8_t **bytes, size_t *len, struct error *err)
{
  cleanup_free char *path = xasprintf("%s/request.pb", dir);
  char *text = NULL;

  if (read_file(path, STATE_FILE_MAX, &text, len, err) < 0)
    return -1;
  *bytes = (uint8_t *)text;
  return 0;
}

struct json_value *
state_file_read_state(const char *dir, struct error *err)
{
  cleanup_free char *path = xasprintf("%s/state.json", dir);
  cleanup_free char *text = NULL;
  size_t len;

  if (read_file(path, STATE_FILE_MAX, &text, &len, err) < 0)
    return NULL;
  return json_parse(text, len, err);
}

void
state_write_string(struct json_writer *writer, const char *key, const char *value)
{
  json_write_key(writer, key);
  if (value)
    json_write_string(writer, value);
  else
    json_write_null(writer);
}

void
state_write_int(struct json_writer *writer, const char *key, int64_t value)
{
  json_write_key(writer, key);
  json_write_int(writer, value);
}

void
state_write_bool(struct json_writer *writer, const char *key, bool value)
{
  json_write_key(writer, key);
  json_write_bool(writer, value);
}

char *
state_read_string(const struct json_value *state, const char *key)
{
  const char *value = json_object_get_string(state, key);
  return value ? xstrdup(value) : NULL;
}

int64_t
state_read_int(const struct json_value *state, const char *key)
{
  int64_t value = 0;
  json_integer(json_object_get(state, key), &value);
  return value;
}

bool
state_read_bool(const struct json_value *state, const char *key)
{
  return json_bool(json_object_get(state, key));
}
