/* common/json: the only door to the JSON library (yajl today).
 *
 * All JSON that crid reads or writes goes through these functions, so the
 * library behind them can be swapped without touching callers.  Parsing
 * builds a read-only tree; generation streams into a growing buffer. */
#ifndef CRID_COMMON_JSON_H
#define CRID_COMMON_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct json_value;

/* Parses len bytes of text (need not be NUL-terminated). */
struct json_value *json_parse(const char *text, size_t len, struct error *err);
void json_free(struct json_value *value);

bool json_is_object(const struct json_value *value);
bool json_is_array(const struct json_value *value);
bool json_is_string(const struct json_value *value);
bool json_is_number(const struct json_value *value);
bool json_is_integer(const struct json_value *value);
bool json_is_bool(const struct json_value *value);
bool json_is_null(const struct json_value *value);

/* Member of an object, or NULL when value is not an object or has no key. */
const struct json_value *json_object_get(const struct json_value *value, const char *key);
size_t json_object_size(const struct json_value *value);
const char *json_object_key_at(const struct json_value *value, size_t index);
const struct json_value *json_object_value_at(const struct json_value *value, size_t index);

size_t json_array_size(const struct json_value *value);
const struct json_value *json_array_at(const struct json_value *value, size_t index);

/* NULL unless value is a string. */
const char *json_string(const struct json_value *value);
/* Member key of object value as a string, or NULL. */
const char *json_object_get_string(const struct json_value *value, const char *key);
/* false unless value is an integer. */
bool json_integer(const struct json_value *value, int64_t *out);
bool json_bool(const struct json_value *value);
double json_double(const struct json_value *value);

struct json_writer;

struct json_writer *json_writer_new(bool pretty);
void json_writer_free(struct json_writer *writer);
void json_begin_object(struct json_writer *writer);
void json_end_object(struct json_writer *writer);
void json_begin_array(struct json_writer *writer);
void json_end_array(struct json_writer *writer);
void json_write_key(struct json_writer *writer, const char *key);
void json_write_string(struct json_writer *writer, const char *s);
void json_write_string_len(struct json_writer *writer, const char *s, size_t len);
void json_write_int(struct json_writer *writer, int64_t n);
void json_write_double(struct json_writer *writer, double n);
void json_write_bool(struct json_writer *writer, bool b);
void json_write_null(struct json_writer *writer);
/* Writes a parsed tree (or a subtree of one) as a value. */
void json_write_value(struct json_writer *writer, const struct json_value *value);
/* The text so far; owned by the writer. */
const char *json_writer_text(struct json_writer *writer, size_t *len);
/* The text, owned by the caller; the writer is freed. */
char *json_writer_finish(struct json_writer *writer, size_t *len);

static inline void
json_free_function(struct json_value **value)
{
  json_free(*value);
}
#define cleanup_json __attribute__((cleanup(json_free_function)))

#endif
