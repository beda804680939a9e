/* common/toml: a parser for the TOML that crid's configuration uses, and
 * the two helpers that write it back.
 *
 * Supported: comments; bare, quoted ("..." and '...') and dotted keys;
 * table headers with dotted and quoted parts; basic strings with every
 * TOML 1.0 escape, literal strings, and both multi-line forms; integers
 * (decimal with '_' separators and a sign, 0x, 0o, 0b); booleans; arrays
 * (multi-line, trailing comma, comments inside, mixed types); inline tables.
 * Not supported, and reported as such: floats, dates and times, arrays of
 * tables ([[...]]).  As an extension, a \uD800-\uDBFF escape followed by a
 * \uDC00-\uDFFF escape (a JSON surrogate pair) stands for one character.
 *
 * Redefinitions are errors: a key set twice, a table header given twice, a
 * header for a table that dotted keys or an inline table already defined.
 * Every error is EINVAL with the message "NAME:LINE: what is wrong". */
#ifndef CRID_COMMON_TOML_H
#define CRID_COMMON_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

enum toml_type
{
  TOML_TABLE,
  TOML_ARRAY,
  TOML_STRING,
  TOML_INTEGER,
  TOML_BOOLEAN,
};

struct toml_node
{
  enum toml_type type;
  int line;                    /* 1-based line where it was defined */
  char *key;                   /* name in its parent table; NULL for the root and array items */
  struct toml_node *parent;    /* NULL for the root */
  char *string;                /* TOML_STRING, NUL-terminated */
  size_t string_len;           /* may be more than strlen(): "\u0000" is a valid escape */
  int64_t integer;             /* TOML_INTEGER */
  bool boolean;                /* TOML_BOOLEAN */
  struct toml_node **children; /* table members in definition order, or array items */
  size_t n_children;
  int origin; /* private: how a table came to exist */
};

/* Parses len bytes of text; name stands for the file in messages.  Returns
 * the root table, or NULL with err set. */
struct toml_node *toml_parse(const char *name, const char *text, size_t len, struct error *err);
void toml_free(struct toml_node *node);

/* The member called key of a table, or NULL (also when node is no table). */
const struct toml_node *toml_table_get(const struct toml_node *table, const char *key);

/* "a string", "an integer", "a boolean", "an array", "a table". */
const char *toml_type_name(enum toml_type type);

/* The full dotted key of a node, each part written as toml_key() would,
 * e.g. crid.image.registries."127.0.0.1:5000".insecure; "" for the root.
 * An array item has its array's key.  Caller frees. */
char *toml_node_path(const struct toml_node *node);

/* s (len bytes, may hold NULs) as a TOML basic string, quotes included,
 * with ", \ and control characters escaped.  Caller frees. */
char *toml_quote(const char *s, size_t len);

/* key as one part of a TOML key: bare when it may be, else quoted.
 * Caller frees. */
char *toml_key(const char *key);

static inline void
toml_free_function(struct toml_node **node)
{
  toml_free(*node);
}
#define cleanup_toml __attribute__((cleanup(toml_free_function)))

#endif
