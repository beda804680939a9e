#include "common/json.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <errno.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

/* struct json_value is yajl's tree node; the cast is the whole adapter. */
#define NODE(v) ((yajl_val)(v))

struct json_value *
json_parse(const char *text, size_t len, struct error *err)
{
  char message[256] = "";
  cleanup_free char *copy = xstrndup(text, len);
  yajl_val tree;

  if (memchr(text, '\0', len))
    {
      error_set(err, EINVAL, "parse JSON: NUL byte in input");
      return NULL;
    }
  tree = yajl_tree_parse(copy, message, sizeof message);
  if (tree == NULL)
    {
      size_t n = strlen(message);
      while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == ' '))
        message[--n] = '\0';
      for (size_t i = 0; i < n; i++)
        if (message[i] == '\n')
          message[i] = ' ';
      error_set(err, EINVAL, "parse JSON: %s", n ? message : "invalid document");
      return NULL;
    }
  return (struct json_value *)tree;
}

void
json_free(struct json_value *value)
{
  if (value)
    yajl_tree_free(NODE(value));
}

bool
json_is_object(const struct json_value *value)
{
  return value && YAJL_IS_OBJECT(NODE(value));
}

bool
json_is_array(const struct json_value *value)
{
  return value && YAJL_IS_ARRAY(NODE(value));
}

bool
json_is_string(const struct json_value *value)
{
  return value && YAJL_IS_STRING(NODE(value));
}

bool
json_is_number(const struct json_value *value)
{
  return value && YAJL_IS_NUMBER(NODE(value));
}

bool
json_is_integer(const struct json_value *value)
{
  return value && YAJL_IS_INTEGER(NODE(value));
}

bool
json_is_bool(const struct json_value *value)
{
  return value && (YAJL_IS_TRUE(NODE(value)) || YAJL_IS_FALSE(NODE(value)));
}

bool
json_is_null(const struct json_value *value)
{
  return value && YAJL_IS_NULL(NODE(value));
}

const struct json_value *
json_object_get(const struct json_value *value, const char *key)
{
  if (!json_is_object(value))
    return NULL;
  for (size_t i = 0; i < NODE(value)->u.object.len; i++)
    if (strcmp(NODE(value)->u.object.keys[i], key) == 0)
      return (const struct json_value *)NODE(value)->u.object.values[i];
  return NULL;
}

size_t
json_object_size(const struct json_value *value)
{
  return json_is_object(value) ? NODE(value)->u.object.len : 0;
}

const char *
json_object_key_at(const struct json_value *value, size_t index)
{
  return index < json_object_size(value) ? NODE(value)->u.object.keys[index] : NULL;
}

const struct json_value *
json_object_value_at(const struct json_value *value, size_t index)
{
  if (index >= json_object_size(value))
    return NULL;
  return (const struct json_value *)NODE(value)->u.object.values[index];
}

size_t
json_array_size(const struct json_value *value)
{
  return json_is_array(value) ? NODE(value)->u.array.len : 0;
}

const struct json_value *
json_array_at(const struct json_value *value, size_t index)
{
  if (index >= json_array_size(value))
    return NULL;
  return (const struct json_value *)NODE(value)->u.array.values[index];
}

const char *
json_string(const struct json_value *value)
{
  return json_is_string(value) ? NODE(value)->u.string : NULL;
}

const char *
json_object_get_string(const struct json_value *value, const char *key)
{
  return json_string(json_object_get(value, key));
}

bool
json_integer(const struct json_value *value, int64_t *out)
{
  if (!json_is_integer(value))
    return false;
  *out = NODE(value)->u.number.i;
  return true;
}

bool
json_bool(const struct json_value *value)
{
  return value && YAJL_IS_TRUE(NODE(value));
}

double
json_double(const struct json_value *value)
{
  return json_is_number(value) ? NODE(value)->u.number.d : 0.0;
}

struct json_writer
{
  yajl_gen gen;
};

struct json_writer *
json_writer_new(bool pretty)
{
  struct json_writer *writer = xmalloc(sizeof *writer);
  writer->gen = yajl_gen_alloc(NULL);
  if (writer->gen == NULL)
    abort();
  yajl_gen_config(writer->gen, yajl_gen_beautify, pretty ? 1 : 0);
  yajl_gen_config(writer->gen, yajl_gen_validate_utf8, 0);
  return writer;
}

void
json_writer_free(struct json_writer *writer)
{
  if (writer == NULL)
    return;
  yajl_gen_free(writer->gen);
  free(writer);
}

void
json_begin_object(struct json_writer *writer)
{
  yajl_gen_map_open(writer->gen);
}

void
json_end_object(struct json_writer *writer)
{
  yajl_gen_map_close(writer->gen);
}

void
json_begin_array(struct json_writer *writer)
{
  yajl_gen_array_open(writer->gen);
}

void
json_end_array(struct json_writer *writer)
{
  yajl_gen_array_close(writer->gen);
}

void
json_write_key(struct json_writer *writer, const char *key)
{
  json_write_string(writer, key);
}

void
json_write_string(struct json_writer *writer, const char *s)
{
  s = s ? s : "";
  json_write_string_len(writer, s, strlen(s));
}

/* JSON text is UTF-8 (RFC 8259) and yajl's parser refuses anything else:
 * crun's, when it loads config.json, and crid's own, when it reads its
 * state back after a restart.  So bytes that are not UTF-8 (an env value
 * is `bytes` in the CRI) are written as U+FFFD, as Go's encoding/json
 * does for runc and containerd. */
void
json_write_string_len(struct json_writer *writer, const char *s, size_t len)
{
  cleanup_free char *sanitized = NULL;

  if (!utf8_is_valid(s, len))
    {
      sanitized = utf8_sanitize(s, len, &len);
      s = sanitized;
    }
  yajl_gen_string(writer->gen, (const unsigned char *)s, len);
}

void
json_write_int(struct json_writer *writer, int64_t n)
{
  yajl_gen_integer(writer->gen, n);
}

void
json_write_double(struct json_writer *writer, double n)
{
  yajl_gen_double(writer->gen, n);
}

void
json_write_bool(struct json_writer *writer, bool b)
{
  yajl_gen_bool(writer->gen, b);
}

void
json_write_null(struct json_writer *writer)
{
  yajl_gen_null(writer->gen);
}

void
json_write_value(struct json_writer *writer, const struct json_value *value)
{
  yajl_val node = NODE(value);
  if (node == NULL || YAJL_IS_NULL(node))
    json_write_null(writer);
  else if (YAJL_IS_STRING(node))
    json_write_string(writer, node->u.string);
  else if (YAJL_IS_INTEGER(node))
    json_write_int(writer, node->u.number.i);
  else if (YAJL_IS_NUMBER(node))
    yajl_gen_number(writer->gen, node->u.number.r, strlen(node->u.number.r));
  else if (YAJL_IS_TRUE(node) || YAJL_IS_FALSE(node))
    json_write_bool(writer, YAJL_IS_TRUE(node));
  else if (YAJL_IS_ARRAY(node))
    {
      json_begin_array(writer);
      for (size_t i = 0; i < node->u.array.len; i++)
        json_write_value(writer, (const struct json_value *)node->u.array.values[i]);
      json_end_array(writer);
    }
  else if (YAJL_IS_OBJECT(node))
    {
      json_begin_object(writer);
      for (size_t i = 0; i < node->u.object.len; i++)
        {
          json_write_key(writer, node->u.object.keys[i]);
          json_write_value(writer, (const struct json_value *)node->u.object.values[i]);
        }
      json_end_object(writer);
    }
}

const char *
json_writer_text(struct json_writer *writer, size_t *len)
{
  const unsigned char *buffer;
  size_t buffer_len;
  yajl_gen_get_buf(writer->gen, &buffer, &buffer_len);
  if (len)
    *len = buffer_len;
  return (const char *)buffer;
}

char *
json_writer_finish(struct json_writer *writer, size_t *len)
{
  size_t text_len;
  const char *text = json_writer_text(writer, &text_len);
  char *copy = xstrndup(text, text_len);
  if (len)
    *len = text_len;
  json_writer_free(writer);
  return copy;
}
