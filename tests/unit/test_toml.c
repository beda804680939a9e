/* Unit tests of common/toml: values, tables, line numbers, errors, and the
 * writing helpers read back by the parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/cleanup.h"
#include "common/error.h"
#include "common/toml.h"
#include "common/util.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct toml_node *
parse_ok(const char *text)
{
  struct error err = ERROR_INIT;
  struct toml_node *doc = toml_parse("t.toml", text, strlen(text), &err);
  if (doc == NULL)
    fail_msg("unexpected error: %s", error_message(&err));
  return doc;
}

/* The node at a dotted path of bare keys. */
static const struct toml_node *
get(const struct toml_node *doc, const char *path)
{
  cleanup_free char *copy = xstrdup(path);
  char *saveptr = NULL;
  const struct toml_node *node = doc;

  for (char *part = strtok_r(copy, ".", &saveptr); part; part = strtok_r(NULL, ".", &saveptr))
    {
      node = toml_table_get(node, part);
      if (node == NULL)
        fail_msg("no %s", path);
    }
  return node;
}

static void
assert_parse_error(const char *text, size_t len, const char *expected)
{
  struct error err = ERROR_INIT;
  struct toml_node *doc = toml_parse("t.toml", text, len, &err);
  if (doc != NULL)
    fail_msg("parsed, expected %s", expected);
  assert_int_equal(err.code, EINVAL);
  assert_string_equal(err.message, expected);
  error_clear(&err);
}

static void
test_scalars_and_lines(void **state)
{
  cleanup_toml struct toml_node *doc = parse_ok("# leading comment\n"
                                                "s = \"text\"  # trailing comment\n"
                                                "l = 'C:\\path\\no escapes'\n"
                                                "\n"
                                                "i = -42\n"
                                                "t = true\n"
                                                "f = false\n"
                                                "\"quoted key\" = 1\n"
                                                "'literal.key' = 2\n"
                                                "\"\" = 3\n");
  const struct toml_node *n;

  assert_int_equal(doc->type, TOML_TABLE);
  n = get(doc, "s");
  assert_int_equal(n->type, TOML_STRING);
  assert_string_equal(n->string, "text");
  assert_int_equal(n->line, 2);
  assert_string_equal(get(doc, "l")->string, "C:\\path\\no escapes");
  n = get(doc, "i");
  assert_int_equal(n->type, TOML_INTEGER);
  assert_int_equal(n->integer, -42);
  assert_int_equal(n->line, 5);
  assert_true(get(doc, "t")->boolean);
  assert_int_equal(get(doc, "t")->type, TOML_BOOLEAN);
  assert_false(get(doc, "f")->boolean);
  assert_int_equal(toml_table_get(doc, "quoted key")->integer, 1);
  assert_int_equal(toml_table_get(doc, "literal.key")->integer, 2);
  assert_int_equal(toml_table_get(doc, "")->integer, 3);
  assert_int_equal(toml_table_get(doc, "")->line, 10);
  assert_null(toml_table_get(doc, "missing"));
  assert_null(toml_table_get(get(doc, "s"), "x"));
}

static void
test_escapes(void **state)
{
  cleanup_toml struct toml_node *doc = parse_ok("a = \"\\b\\t\\n\\f\\r\\\"\\\\\"\n"
                                                "u = \"\\u00e9\\u20AC\\U0001F600\"\n"
                                                "pair = \"\\ud83d\\ude00\"\n"
                                                "nul = \"a\\u0000b\"\n"
                                                "raw = \"tab\there é\"\n");
  const struct toml_node *nul = get(doc, "nul");

  assert_string_equal(get(doc, "a")->string, "\b\t\n\f\r\"\\");
  assert_string_equal(get(doc, "u")->string, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  assert_string_equal(get(doc, "pair")->string, "\xf0\x9f\x98\x80");
  assert_int_equal(nul->string_len, 3);
  assert_memory_equal(nul->string, "a\0b", 3);
  assert_string_equal(get(doc, "raw")->string, "tab\there \xc3\xa9");
}

static void
test_multiline_strings(void **state)
{
  cleanup_toml struct toml_node *doc = parse_ok("a = \"\"\"\n"
                                                "one\n"
                                                "two \\\n"
                                                "    three\"\"\"\n"
                                                "b = '''\n"
                                                "raw \\n line\n"
                                                "'''\n"
                                                "c = \"\"\"quote \"\" inside\"\"\"\"\n"
                                                "d = 4\r\n");

  assert_string_equal(get(doc, "a")->string, "one\ntwo three");
  assert_int_equal(get(doc, "a")->line, 1);
  assert_string_equal(get(doc, "b")->string, "raw \\n line\n");
  assert_int_equal(get(doc, "b")->line, 5);
  assert_string_equal(get(doc, "c")->string, "quote \"\" inside\"");
  assert_int_equal(get(doc, "d")->line, 9);
}

static void
test_integers(void **state)
{
  cleanup_toml struct toml_node *doc = parse_ok("a = 1_000_000\n"
                                                "b = +7\n"
                                                "c = -0\n"
                                                "d = 0xDEAD_beef\n"
                                                "e = 0o755\n"
                                                "f = 0b1010\n"
                                                "g = 9223372036854775807\n"
                                                "h = -9223372036854775808\n"
                                                "i = 0\n");

  assert_int_equal(get(doc, "a")->integer, 1000000);
  assert_int_equal(get(doc, "b")->integer, 7);
  assert_int_equal(get(doc, "c")->integer, 0);
  assert_int_equal(get(doc, "d")->integer, 0xdeadbeef);
  assert_int_equal(get(doc, "e")->integer, 0755);
  assert_int_equal(get(doc, "f")->integer, 10);
  assert_true(get(doc, "g")->integer == INT64_MAX);
  assert_true(get(doc, "h")->integer == INT64_MIN);
  assert_int_equal(get(doc, "i")->integer, 0);
}

static void
test_arrays(void **state)
{
  cleanup_toml struct toml_node *doc = parse_ok("a = [\n"
                                                "  \"one\",  # first\n"
                                                "  # a whole comment line\n"
                                                "\n"
                                                "  'two',\n"
                                                "]\n"
                                                "empty = []\n"
                                                "nested = [[1, 2], [\"x\"], []]\n"
                                                "mixed = [1, \"s\", true, {k = 1}]\n");
  const struct toml_node *a = get(doc, "a"), *nested = get(doc, "nested");

  assert_int_equal(a->type, TOML_ARRAY);
  assert_int_equal(a->n_children, 2);
  assert_string_equal(a->children[0]->string, "one");
  assert_int_equal(a->children[0]->line, 2);
  assert_string_equal(a->children[1]->string, "two");
  assert_int_equal(a->children[1]->line, 5);
  assert_null(a->children[1]->key);
  assert_int_equal(get(doc, "empty")->n_children, 0);
  assert_int_equal(nested->n_children, 3);
  assert_int_equal(nested->children[0]->children[1]->integer, 2);
  assert_int_equal(nested->children[2]->n_children, 0);
  assert_int_equal(get(doc, "mixed")->children[3]->type, TOML_TABLE);
  assert_int_equal(get(doc, "empty")->line, 7);
}

static void
test_tables(void **state)
{
  cleanup_toml struct toml_node *doc
      = parse_ok("top = 1\n"
                 "[crid.runtime.runtimes.crun]\n"
                 "runtime_path = \"/usr/bin/crun\"\n"
                 "[ crid . image . registries . \"127.0.0.1:5000\" ]\n"
                 "insecure = true\n"
                 "[crid]\n"
                 "api.listen = \"/s\"\n"
                 "[crid.runtime]\n"
                 "x = {a = 1, b.c = 'd'}\n");
  const struct toml_node *crid = get(doc, "crid");
  const struct toml_node *registries = get(doc, "crid.image.registries");
  const struct toml_node *registry = toml_table_get(registries, "127.0.0.1:5000");
  cleanup_free char *path = toml_node_path(toml_table_get(registry, "insecure"));

  assert_int_equal(crid->type, TOML_TABLE);
  assert_int_equal(crid->line, 6); /* where [crid] defines it */
  assert_int_equal(get(doc, "crid.runtime.runtimes")->line, 2);
  assert_string_equal(get(doc, "crid.runtime.runtimes.crun.runtime_path")->string, "/usr/bin/crun");
  assert_non_null(registry);
  assert_int_equal(registry->line, 4);
  assert_true(toml_table_get(registry, "insecure")->boolean);
  assert_string_equal(path, "crid.image.registries.\"127.0.0.1:5000\".insecure");
  assert_string_equal(get(doc, "crid.api.listen")->string, "/s");
  assert_int_equal(get(doc, "crid.runtime.x.a")->integer, 1);
  assert_string_equal(get(doc, "crid.runtime.x.b.c")->string, "d");
  /* Members keep their order of definition. */
  assert_string_equal(doc->children[0]->key, "top");
  assert_string_equal(doc->children[1]->key, "crid");
  assert_string_equal(crid->children[0]->key, "runtime");
  assert_string_equal(crid->children[1]->key, "image");
  assert_string_equal(crid->children[2]->key, "api");
}

static void
test_table_definition_rules(void **state)
{
  /* Sub-tables of a dotted-key table, and a header for a parent that a
   * deeper header created implicitly, are both fine. */
  cleanup_toml struct toml_node *a = parse_ok("[fruit]\n"
                                              "apple.color = 'red'\n"
                                              "[fruit.apple.texture]\n"
                                              "smooth = true\n"
                                              "[x.y.z]\n"
                                              "[x]\n"
                                              "k = 1\n");
  assert_true(get(a, "fruit.apple.texture.smooth")->boolean);
  assert_int_equal(get(a, "x.k")->integer, 1);
  assert_int_equal(get(a, "x")->line, 6);
}

struct error_case
{
  const char *text;
  const char *message;
};

static const struct error_case error_cases[] = {
  { "a = \"abc\n", "t.toml:1: unterminated string" },
  { "\n\na = 'abc\nb = 1\n", "t.toml:3: unterminated string" },
  { "a = \"\"\"abc\n\n", "t.toml:1: unterminated multi-line string" },
  { "a = \"x\\qy\"", "t.toml:1: invalid escape sequence \\q" },
  { "a = \"x\\ y\"", "t.toml:1: invalid escape sequence: backslash followed by ' '" },
  { "\na = \"\\u12\"", "t.toml:2: invalid escape: \\u needs 4 hexadecimal digits" },
  { "a = \"\\uD800\"", "t.toml:1: invalid escape: U+D800 is not a Unicode scalar value" },
  { "a = \"\\U00110000\"", "t.toml:1: invalid escape: U+110000 is not a Unicode scalar value" },
  { "a = 1\n\na = 2\n", "t.toml:3: duplicate key a (first defined at line 1)" },
  { "[t]\na.b = 1\na.b = 2\n", "t.toml:3: duplicate key t.a.b (first defined at line 2)" },
  { "[x]\n[y]\n[x]\n", "t.toml:3: duplicate table [x] (first defined at line 1)" },
  { "[a]\nb.c = 1\n[a.b]\n", "t.toml:3: table [a.b] was already defined by dotted keys at line 2" },
  { "a = {b = 1}\n[a]\n", "t.toml:2: table [a] was already defined by an inline table at line 1" },
  { "a = {b = 1}\n[a.c]\n", "t.toml:2: cannot add to inline table a (line 1)" },
  { "a = {b = 1}\na.c = 2\n",
    "t.toml:2: cannot add keys to table a with dotted keys: it was defined at line 1" },
  { "[a.b]\n[a]\nb.c = 1\n",
    "t.toml:3: cannot add keys to table a.b with dotted keys: it was defined at line 1" },
  { "a = 1\n[a]\n", "t.toml:2: key a is already defined as a value at line 1" },
  { "a = 1\n[a.b]\n", "t.toml:2: key a is already defined as a value at line 1" },
  { "a = 1\na.b = 2\n", "t.toml:2: key a is already defined as a value at line 1" },
  { "[crid]\nroot =\n", "t.toml:2: missing value" },
  { "a = # nothing\n", "t.toml:1: missing value" },
  { "a = 1 b\n", "t.toml:1: expected end of line, found 'b'" },
  { "[crid]\n\n\nlog_level \"info\"\n", "t.toml:4: expected '=' after key log_level, found '\"'" },
  { "[crid\nroot = \"/tmp/x\"\n",
    "t.toml:1: expected ']' to close the table header, found end of line" },
  { "[a] b\n", "t.toml:1: expected end of line, found 'b'" },
  { "[]\n", "t.toml:1: expected a key, found ']'" },
  { "= 1\n", "t.toml:1: expected a key, found '='" },
  { "a.\"\"\"b\"\"\" = 1\n", "t.toml:1: a key cannot be a multi-line string" },
  { "\"a\\u0000\" = 1\n", "t.toml:1: a key cannot contain a NUL character" },
  { "[[a]]\n", "t.toml:1: arrays of tables ([[...]]) are not supported" },
  { "a = 1.5\n", "t.toml:1: floating-point numbers are not supported (1.5)" },
  { "a = 1e3\n", "t.toml:1: floating-point numbers are not supported (1e3)" },
  { "a = -inf\n", "t.toml:1: floating-point numbers are not supported (-inf)" },
  { "a = 1979-05-27\n", "t.toml:1: dates and times are not supported (1979-05-27)" },
  { "a = 07:32:00\n", "t.toml:1: dates and times are not supported (07:32:00)" },
  { "a = 9223372036854775808\n", "t.toml:1: integer 9223372036854775808 is out of range" },
  { "a = -9223372036854775809\n", "t.toml:1: integer -9223372036854775809 is out of range" },
  { "a = 012\n", "t.toml:1: invalid value 012" },
  { "a = 1__0\n", "t.toml:1: invalid value 1__0" },
  { "a = _1\n", "t.toml:1: invalid value _1" },
  { "a = 1_\n", "t.toml:1: invalid value 1_" },
  { "a = +0x1\n", "t.toml:1: invalid value +0x1" },
  { "a = 0x\n", "t.toml:1: invalid value 0x" },
  { "a = 0b102\n", "t.toml:1: invalid value 0b102" },
  { "a = tru\n", "t.toml:1: invalid value tru" },
  { "a = True\n", "t.toml:1: invalid value True" },
  { "a = @\n", "t.toml:1: invalid value starting with '@'" },
  { "a = [1, 2\n", "t.toml:2: expected ',' or ']' in an array, found end of file" },
  { "a = [1 2]\n", "t.toml:1: expected ',' or ']' in an array, found '2'" },
  { "a = [,]\n", "t.toml:1: invalid value starting with ','" },
  { "a = {b = 1,}\n", "t.toml:1: trailing ',' in an inline table" },
  { "a = {b = 1 c = 2}\n", "t.toml:1: expected ',' or '}' in an inline table, found 'c'" },
  { "a = {b = 1, b = 2}\n", "t.toml:1: duplicate key b (first defined at line 1)" },
  { "a = {\nb = 1}\n", "t.toml:1: expected a key, found end of line" },
  { "a = \"x\x01y\"\n", "t.toml:1: byte 0x01 in a string" },
  { "a = 'x\x7fy'\n", "t.toml:1: byte 0x7f in a string" },
  { "a = 1\n# bell \x07\n", "t.toml:2: byte 0x07 in a comment" },
  { "a = 1\rb = 2\n", "t.toml:1: expected end of line, found byte 0x0d" },
  { "a = 1\n\nb = \"\xff\"\n", "t.toml:3: invalid UTF-8" },
  { "a = \"\xed\xa0\x80\"\n", "t.toml:1: invalid UTF-8" },
  { "a = \"\xc0\xaf\"\n", "t.toml:1: invalid UTF-8" },
  { "a = \"\"\"x\"\"\"\"\"\"\n", "t.toml:1: too many quotes at the end of a multi-line string" },
};

static void
test_errors(void **state)
{
  for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++)
    assert_parse_error(error_cases[i].text, strlen(error_cases[i].text), error_cases[i].message);
  assert_parse_error("a = 1\n\0", 7, "t.toml:2: NUL byte in the text");
}

static void
test_nesting_is_bounded(void **state)
{
  char text[200] = "a = ";
  cleanup_free char *key = NULL;

  memset(text + 4, '[', 100);
  assert_parse_error(text, strlen(text), "t.toml:1: values nested more than 32 deep");
  key = xstrdup("a");
  for (int i = 0; i < 64; i++)
    {
      char *longer = xasprintf("%s.a", key);
      free(key);
      key = longer;
    }
  {
    cleanup_free char *doc = xasprintf("%s = 1\n", key);
    assert_parse_error(doc, strlen(doc), "t.toml:1: a key has more than 64 parts");
  }
}

static void
test_quote_reads_back(void **state)
{
  char ascii[127]; /* every ASCII character but NUL */
  struct
  {
    const char *s;
    size_t len;
  } samples[] = {
    { "", 0 },
    { "plain", 5 },
    { "with \"quotes\" and \\", 19 },
    { "caf\xc3\xa9 \xf0\x9f\x98\x80", 10 },
    { "tab\tnew\nline\r\x7f", 14 },
    { "a\0b", 3 },
    { ascii, sizeof ascii },
  };

  for (size_t i = 0; i < sizeof ascii; i++)
    ascii[i] = (char)(i + 1);
  for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
    {
      cleanup_free char *quoted = toml_quote(samples[i].s, samples[i].len);
      cleanup_free char *text = xasprintf("v = %s\n", quoted);
      cleanup_toml struct toml_node *doc = parse_ok(text);
      const struct toml_node *v = get(doc, "v");
      assert_int_equal(v->string_len, samples[i].len);
      assert_memory_equal(v->string, samples[i].s, samples[i].len);
    }
}

static void
test_key_reads_back(void **state)
{
  const char *keys[] = { "bare_key-1", "", "127.0.0.1:5000", "a b", "quote\"", "caf\xc3\xa9" };

  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    {
      cleanup_free char *key = toml_key(keys[i]);
      cleanup_free char *text = xasprintf("[t.%s]\n%s = 1\n", key, key);
      cleanup_toml struct toml_node *doc = parse_ok(text);
      const struct toml_node *t = toml_table_get(toml_table_get(doc, "t"), keys[i]);
      assert_non_null(t);
      assert_int_equal(toml_table_get(t, keys[i])->integer, 1);
    }
  {
    cleanup_free char *bare = toml_key("crun");
    assert_string_equal(bare, "crun");
  }
}

static void
test_utf8_validation(void **state)
{
  assert_true(utf8_is_valid("plain", 5));
  assert_true(utf8_is_valid("\xf4\x8f\xbf\xbf", 4));
  assert_false(utf8_is_valid("\xf4\x90\x80\x80", 4));
  assert_false(utf8_is_valid("\xe2\x82", 2));
  assert_false(utf8_is_valid("\x80", 1));
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_scalars_and_lines),
    cmocka_unit_test(test_escapes),
    cmocka_unit_test(test_multiline_strings),
    cmocka_unit_test(test_integers),
    cmocka_unit_test(test_arrays),
    cmocka_unit_test(test_tables),
    cmocka_unit_test(test_table_definition_rules),
    cmocka_unit_test(test_errors),
    cmocka_unit_test(test_nesting_is_bounded),
    cmocka_unit_test(test_quote_reads_back),
    cmocka_unit_test(test_key_reads_back),
    cmocka_unit_test(test_utf8_validation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
