/* libFuzzer harness for common/toml.
 *
 *   clang -fsanitize=fuzzer,address -D_GNU_SOURCE -I. tests/fuzz/fuzz_toml.c \
 *         common/[a-z]*.c -lyajl -o fuzz_toml && ./fuzz_toml -max_total_time=60
 *
 * Arbitrary bytes either parse or fail with "NAME:LINE: ..."; whatever
 * parses, each of its strings and keys, written back with toml_quote() and
 * toml_key(), parses again to the very same bytes. */
#include "common/cleanup.h"
#include "common/toml.h"
#include "common/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct toml_node *
parse_written(const char *text)
{
  struct error err = ERROR_INIT;
  struct toml_node *doc = toml_parse("again", text, strlen(text), &err);
  if (doc == NULL)
    abort(); /* the writers produced something the parser rejects */
  return doc;
}

static void
check_string_reads_back(const struct toml_node *node)
{
  cleanup_free char *quoted = toml_quote(node->string, node->string_len);
  cleanup_free char *text = xasprintf("v = %s\n", quoted);
  cleanup_toml struct toml_node *doc = parse_written(text);
  const struct toml_node *v = toml_table_get(doc, "v");

  if (v == NULL || v->type != TOML_STRING || v->string_len != node->string_len
      || memcmp(v->string, node->string, node->string_len) != 0)
    abort();
}

static void
check_key_reads_back(const char *key)
{
  cleanup_free char *written = toml_key(key);
  cleanup_free char *text = xasprintf("[t.%s]\n%s = 1\n", written, written);
  cleanup_toml struct toml_node *doc = parse_written(text);
  const struct toml_node *table = toml_table_get(toml_table_get(doc, "t"), key);

  if (table == NULL || toml_table_get(table, key) == NULL)
    abort();
}

static void
walk(const struct toml_node *node)
{
  cleanup_free char *path = toml_node_path(node);

  if (path == NULL || node->line < 1)
    abort();
  if (node->key)
    check_key_reads_back(node->key);
  if (node->type == TOML_STRING)
    check_string_reads_back(node);
  for (size_t i = 0; i < node->n_children; i++)
    {
      if (node->children[i]->parent != node)
        abort();
      walk(node->children[i]);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct error err = ERROR_INIT;
  struct toml_node *doc = toml_parse("fuzz", (const char *)data, size, &err);

  if (doc == NULL)
    {
      if (err.message == NULL || strncmp(err.message, "fuzz:", 5) != 0)
        abort();
      error_clear(&err);
      return 0;
    }
  walk(doc);
  toml_free(doc);
  return 0;
}
