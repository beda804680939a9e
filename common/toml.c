#include "common/toml.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds that keep recursion (here and in callers walking the tree) shallow
 * whatever the input. */
#define MAX_KEY_PARTS 64
#define MAX_NESTING 32
#define END (-1)

/* How a table came to exist, which decides what may still be added to it. */
enum origin
{
  ORIGIN_IMPLICIT, /* a parent of a header's table, not defined itself yet */
  ORIGIN_HEADER,   /* defined by its own [header] */
  ORIGIN_DOTTED,   /* created by dotted keys (a.b = 1) */
  ORIGIN_INLINE,   /* an inline table, complete and closed */
};

struct parser
{
  const char *name;
  const char *cur;
  const char *end;
  int line;
  int depth;
  struct toml_node *root;
  struct toml_node *table; /* where key/value pairs go */
  struct error *err;
};

struct key_path
{
  char *parts[MAX_KEY_PARTS];
  size_t n;
};

static void
key_path_clear(struct key_path *k)
{
  for (size_t i = 0; i < k->n; i++)
    free(k->parts[i]);
  k->n = 0;
}
#define cleanup_key_path __attribute__((cleanup(key_path_clear)))

struct buffer
{
  char *data;
  size_t len;
  size_t cap;
};

static void
buffer_release(struct buffer *b)
{
  free(b->data);
}
#define cleanup_buffer __attribute__((cleanup(buffer_release)))

static void
buffer_add(struct buffer *b, const char *s, size_t n)
{
  if (b->len + n + 1 > b->cap)
    {
      b->cap = (b->len + n + 1) * 2;
      b->data = xrealloc(b->data, b->cap);
    }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void
buffer_add_char(struct buffer *b, char c)
{
  buffer_add(b, &c, 1);
}

static void
buffer_add_utf8(struct buffer *b, uint32_t cp)
{
  char out[4];
  size_t n;

  if (cp < 0x80)
    out[0] = cp, n = 1;
  else if (cp < 0x800)
    out[0] = 0xc0 | (cp >> 6), n = 2;
  else if (cp < 0x10000)
    out[0] = 0xe0 | (cp >> 12), n = 3;
  else
    out[0] = 0xf0 | (cp >> 18), n = 4;
  for (size_t i = 1; i < n; i++)
    out[i] = 0x80 | ((cp >> (6 * (n - 1 - i))) & 0x3f);
  buffer_add(b, out, n);
}

/* The text, owned by the caller ("" when nothing was added). */
static char *
buffer_steal(struct buffer *b, size_t *len)
{
  if (len)
    *len = b->len;
  if (b->data == NULL)
    return xstrdup("");
  return steal_pointer(&b->data);
}

/* ------------------------------------------------------------------ nodes */

static struct toml_node *
node_new(enum toml_type type, int line)
{
  struct toml_node *node = xcalloc(1, sizeof *node);
  node->type = type;
  node->line = line;
  return node;
}

static void
node_append(struct toml_node *parent, struct toml_node *child)
{
  size_t n = parent->n_children;
  /* Capacity doubles whenever the count reaches a power of two. */
  if ((n & (n - 1)) == 0)
    parent->children = xrealloc(parent->children, (n ? 2 * n : 1) * sizeof *parent->children);
  parent->children[parent->n_children++] = child;
  child->parent = parent;
}

void
toml_free(struct toml_node *node)
{
  if (node == NULL)
    return;
  for (size_t i = 0; i < node->n_children; i++)
    toml_free(node->children[i]);
  free(node->children);
  free(node->key);
  free(node->string);
  free(node);
}

static struct toml_node *
table_find(const struct toml_node *table, const char *key)
{
  for (size_t i = 0; i < table->n_children; i++)
    if (strcmp(table->children[i]->key, key) == 0)
      return table->children[i];
  return NULL;
}

const struct toml_node *
toml_table_get(const struct toml_node *table, const char *key)
{
  if (table == NULL || table->type != TOML_TABLE)
    return NULL;
  return table_find(table, key);
}

const char *
toml_type_name(enum toml_type type)
{
  switch (type)
    {
    case TOML_TABLE:
      return "a table";
    case TOML_ARRAY:
      return "an array";
    case TOML_STRING:
      return "a string";
    case TOML_INTEGER:
      return "an integer";
    case TOML_BOOLEAN:
      return "a boolean";
    }
  return "a value";
}

/* Closes an inline table (and the tables its dotted keys made) for good. */
static void
node_seal(struct toml_node *table)
{
  table->origin = ORIGIN_INLINE;
  for (size_t i = 0; i < table->n_children; i++)
    if (table->children[i]->type == TOML_TABLE)
      node_seal(table->children[i]);
}

/* ---------------------------------------------------------------- writing */

static bool
is_bare(int c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'
         || c == '-';
}

static bool
is_control(int c)
{
  return (c >= 0 && c < 0x20 && c != '\t') || c == 0x7f;
}

/* The letter of the short escape for c ("\\n" for a newline), or 0. */
static char
short_escape(unsigned char c)
{
  switch (c)
    {
    case '\b':
      return 'b';
    case '\t':
      return 't';
    case '\n':
      return 'n';
    case '\f':
      return 'f';
    case '\r':
      return 'r';
    case '"':
      return '"';
    case '\\':
      return '\\';
    }
  return 0;
}

char *
toml_quote(const char *s, size_t len)
{
  cleanup_buffer struct buffer b = { 0 };

  buffer_add_char(&b, '"');
  for (size_t i = 0; i < len; i++)
    {
      unsigned char c = s[i];
      char escape[8];

      if (short_escape(c))
        {
          buffer_add_char(&b, '\\');
          buffer_add_char(&b, short_escape(c));
        }
      else if (c < 0x20 || c == 0x7f)
        {
          snprintf(escape, sizeof escape, "\\u%04X", c);
          buffer_add(&b, escape, 6);
        }
      else
        buffer_add_char(&b, c);
    }
  buffer_add_char(&b, '"');
  return buffer_steal(&b, NULL);
}

char *
toml_key(const char *key)
{
  size_t len = strlen(key);
  for (size_t i = 0; i < len; i++)
    if (!is_bare((unsigned char)key[i]))
      return toml_quote(key, len);
  return len ? xstrdup(key) : toml_quote(key, len);
}

char *
toml_node_path(const struct toml_node *node)
{
  cleanup_free char *prefix = NULL;
  cleanup_free char *part = NULL;

  while (node && node->key == NULL && node->parent)
    node = node->parent; /* an array item: its array */
  if (node == NULL || node->parent == NULL)
    return xstrdup("");
  prefix = toml_node_path(node->parent);
  part = toml_key(node->key);
  if (*prefix == '\0')
    return steal_pointer(&part);
  return xasprintf("%s.%s", prefix, part);
}

/* ---------------------------------------------------------------- lexing */

static int fail(struct parser *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct parser *p, int line, const char *fmt, ...)
{
  cleanup_free char *message = NULL;
  va_list ap;

  va_start(ap, fmt);
  message = xvasprintf(fmt, ap);
  va_end(ap);
  return error_set(p->err, EINVAL, "%s:%d: %s", p->name, line, message);
}

static int
peek_at(const struct parser *p, size_t offset)
{
  if ((size_t)(p->end - p->cur) <= offset)
    return END;
  return (unsigned char)p->cur[offset];
}

static int
peek(const struct parser *p)
{
  return peek_at(p, 0);
}

static bool
looking_at(const struct parser *p, const char *s)
{
  size_t n = strlen(s);
  return (size_t)(p->end - p->cur) >= n && memcmp(p->cur, s, n) == 0;
}

/* What the next character is, for messages. */
static const char *
describe(const struct parser *p, char buf[16])
{
  int c = peek(p);

  if (c == END)
    return "end of file";
  if (c == '\n' || looking_at(p, "\r\n"))
    return "end of line";
  if (c >= 0x20 && c < 0x7f)
    snprintf(buf, 16, "'%c'", c);
  else
    snprintf(buf, 16, "byte 0x%02x", c);
  return buf;
}

static void
skip_ws(struct parser *p)
{
  while (peek(p) == ' ' || peek(p) == '\t')
    p->cur++;
}

static bool
skip_newline(struct parser *p)
{
  size_t n = peek(p) == '\n' ? 1 : looking_at(p, "\r\n") ? 2 : 0;
  if (n == 0)
    return false;
  p->cur += n;
  p->line++;
  return true;
}

static bool
at_newline(const struct parser *p)
{
  return peek(p) == '\n' || looking_at(p, "\r\n");
}

/* Skips a comment up to (not including) the end of its line. */
static int
skip_comment(struct parser *p)
{
  char buf[16];

  for (p->cur++; peek(p) != END && !at_newline(p); p->cur++)
    if (is_control(peek(p)))
      return fail(p, p->line, "%s in a comment", describe(p, buf));
  return 0;
}

/* Whitespace, comments and newlines (inside arrays). */
static int
skip_blank(struct parser *p)
{
  for (;;)
    {
      skip_ws(p);
      if (peek(p) == '#' && skip_comment(p) < 0)
        return -1;
      if (!skip_newline(p))
        return 0;
    }
}

static int
expect_line_end(struct parser *p)
{
  char buf[16];

  skip_ws(p);
  if (peek(p) == '#' && skip_comment(p) < 0)
    return -1;
  if (peek(p) == END || skip_newline(p))
    return 0;
  return fail(p, p->line, "expected end of line, found %s", describe(p, buf));
}

static int
enter_nested(struct parser *p)
{
  if (++p->depth > MAX_NESTING)
    return fail(p, p->line, "values nested more than %d deep", MAX_NESTING);
  return 0;
}

/* --------------------------------------------------------------- strings */

static int
hex_value(int c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static int
parse_hex(struct parser *p, int digits, uint32_t *out)
{
  uint32_t value = 0;

  for (int i = 0; i < digits; i++, p->cur++)
    {
      int d = hex_value(peek(p));
      if (d < 0)
        return fail(p, p->line, "invalid escape: \\%c needs %d hexadecimal digits",
                    digits == 4 ? 'u' : 'U', digits);
      value = value * 16 + d;
    }
  *out = value;
  return 0;
}

/* After \u or \U.  A high surrogate followed by \u and a low surrogate is
 * taken as the pair it is in JSON. */
static int
parse_unicode_escape(struct parser *p, int digits, struct buffer *b)
{
  uint32_t cp = 0, low = 0;
  const char *save;

  if (parse_hex(p, digits, &cp) < 0)
    return -1;
  if (digits == 4 && cp >= 0xd800 && cp <= 0xdbff && looking_at(p, "\\u"))
    {
      save = p->cur;
      p->cur += 2;
      if (parse_hex(p, 4, &low) < 0)
        return -1;
      if (low >= 0xdc00 && low <= 0xdfff)
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
      else
        p->cur = save;
    }
  if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
    return fail(p, p->line, "invalid escape: U+%04X is not a Unicode scalar value", cp);
  buffer_add_utf8(b, cp);
  return 0;
}

/* The character an escape letter stands for, or -1. */
static int
unescape(int letter)
{
  switch (letter)
    {
    case 'b':
      return '\b';
    case 't':
      return '\t';
    case 'n':
      return '\n';
    case 'f':
      return '\f';
    case 'r':
      return '\r';
    case '"':
      return '"';
    case '\\':
      return '\\';
    }
  return -1;
}

static int
parse_escape(struct parser *p, struct buffer *b)
{
  char buf[16];
  int c;

  p->cur++; /* the backslash */
  c = peek(p);
  if (c == 'u' || c == 'U')
    {
      p->cur++;
      return parse_unicode_escape(p, c == 'u' ? 4 : 8, b);
    }
  if (unescape(c) < 0)
    {
      if (c > 0x20 && c < 0x7f)
        return fail(p, p->line, "invalid escape sequence \\%c", c);
      return fail(p, p->line, "invalid escape sequence: backslash followed by %s",
                  describe(p, buf));
    }
  buffer_add_char(b, unescape(c));
  p->cur++;
  return 0;
}

/* A plain character of a string: anything but control characters. */
static int
add_string_char(struct parser *p, struct buffer *b)
{
  char buf[16];

  if (is_control(peek(p)))
    return fail(p, p->line, "%s in a string", describe(p, buf));
  buffer_add_char(b, *p->cur++);
  return 0;
}

/* "..." or '...' on one line. */
static int
parse_line_string(struct parser *p, struct buffer *b)
{
  int line = p->line;
  char quote = *p->cur++;

  for (;;)
    {
      int c = peek(p);
      if (c == quote)
        {
          p->cur++;
          return 0;
        }
      if (c == END || at_newline(p))
        return fail(p, line, "unterminated string");
      if (c == '\\' && quote == '"')
        {
          if (parse_escape(p, b) < 0)
            return -1;
        }
      else if (add_string_char(p, b) < 0)
        return -1;
    }
}

/* A backslash that ends a line in a multi-line basic string: it eats all
 * whitespace and newlines up to the next other character. */
static bool
skip_line_ending_backslash(struct parser *p)
{
  const char *q = p->cur + 1;

  while (q < p->end && (*q == ' ' || *q == '\t'))
    q++;
  if (!(q < p->end && (*q == '\n' || (*q == '\r' && q + 1 < p->end && q[1] == '\n'))))
    return false;
  p->cur = q;
  do
    skip_ws(p);
  while (skip_newline(p));
  return true;
}

/* Up to two quotes may sit just inside the closing delimiter. */
static int
close_multiline(struct parser *p, struct buffer *b)
{
  size_t n = 0;

  while (peek_at(p, n) == *p->cur)
    n++;
  if (n > 5)
    return fail(p, p->line, "too many quotes at the end of a multi-line string");
  buffer_add(b, p->cur, n - 3);
  p->cur += n;
  return 0;
}

/* """...""" or '''...'''. */
static int
parse_multiline_string(struct parser *p, struct buffer *b)
{
  int line = p->line;
  char quote = *p->cur;
  const char delimiter[] = { quote, quote, quote, '\0' };

  p->cur += 3;
  skip_newline(p); /* a newline right after the opening is trimmed */
  for (;;)
    {
      if (peek(p) == END)
        return fail(p, line, "unterminated multi-line string");
      if (looking_at(p, delimiter))
        return close_multiline(p, b);
      if (skip_newline(p))
        buffer_add_char(b, '\n');
      else if (peek(p) == '\\' && quote == '"')
        {
          if (!skip_line_ending_backslash(p) && parse_escape(p, b) < 0)
            return -1;
        }
      else if (add_string_char(p, b) < 0)
        return -1;
    }
}

static int
parse_string(struct parser *p, struct buffer *b)
{
  if (looking_at(p, "\"\"\"") || looking_at(p, "'''"))
    return parse_multiline_string(p, b);
  return parse_line_string(p, b);
}

/* ------------------------------------------------------------------ keys */

static int
parse_simple_key(struct parser *p, char **out)
{
  cleanup_buffer struct buffer b = { 0 };
  const char *start = p->cur;
  char buf[16];

  if (looking_at(p, "\"\"\"") || looking_at(p, "'''"))
    return fail(p, p->line, "a key cannot be a multi-line string");
  if (peek(p) == '"' || peek(p) == '\'')
    {
      if (parse_line_string(p, &b) < 0)
        return -1;
      if (b.len && memchr(b.data, '\0', b.len))
        return fail(p, p->line, "a key cannot contain a NUL character");
    }
  else
    {
      while (is_bare(peek(p)))
        p->cur++;
      if (p->cur == start)
        return fail(p, p->line, "expected a key, found %s", describe(p, buf));
      buffer_add(&b, start, p->cur - start);
    }
  *out = buffer_steal(&b, NULL);
  return 0;
}

/* key, "key", 'key', and dotted combinations of them. */
static int
parse_key(struct parser *p, struct key_path *k)
{
  for (;;)
    {
      skip_ws(p);
      if (k->n == MAX_KEY_PARTS)
        return fail(p, p->line, "a key has more than %d parts", MAX_KEY_PARTS);
      if (parse_simple_key(p, &k->parts[k->n]) < 0)
        return -1;
      k->n++;
      skip_ws(p);
      if (peek(p) != '.')
        return 0;
      p->cur++;
    }
}

/* ---------------------------------------------------------------- values */

static int parse_value(struct parser *p, struct toml_node **out);
static int parse_keyval(struct parser *p, struct toml_node *table);

static int
parse_string_value(struct parser *p, struct toml_node **out)
{
  cleanup_buffer struct buffer b = { 0 };
  struct toml_node *node;
  int line = p->line;

  if (parse_string(p, &b) < 0)
    return -1;
  node = node_new(TOML_STRING, line);
  node->string = buffer_steal(&b, &node->string_len);
  *out = node;
  return 0;
}

static int
parse_array(struct parser *p, struct toml_node **out)
{
  cleanup_toml struct toml_node *array = node_new(TOML_ARRAY, p->line);
  char buf[16];

  if (enter_nested(p) < 0)
    return -1;
  p->cur++;
  for (;;)
    {
      struct toml_node *item;
      if (skip_blank(p) < 0)
        return -1;
      if (peek(p) == ']')
        break;
      if (parse_value(p, &item) < 0)
        return -1;
      node_append(array, item);
      if (skip_blank(p) < 0)
        return -1;
      if (peek(p) == ']')
        break;
      if (peek(p) != ',')
        return fail(p, p->line, "expected ',' or ']' in an array, found %s", describe(p, buf));
      p->cur++;
    }
  p->cur++;
  p->depth--;
  *out = steal_pointer(&array);
  return 0;
}

static int
parse_inline_table(struct parser *p, struct toml_node **out)
{
  cleanup_toml struct toml_node *table = node_new(TOML_TABLE, p->line);
  char buf[16];

  if (enter_nested(p) < 0)
    return -1;
  table->origin = ORIGIN_DOTTED;
  p->cur++;
  skip_ws(p);
  while (peek(p) != '}')
    {
      if (parse_keyval(p, table) < 0)
        return -1;
      skip_ws(p);
      if (peek(p) == '}')
        break;
      if (peek(p) != ',')
        return fail(p, p->line, "expected ',' or '}' in an inline table, found %s",
                    describe(p, buf));
      p->cur++;
      skip_ws(p);
      if (peek(p) == '}')
        return fail(p, p->line, "trailing ',' in an inline table");
    }
  p->cur++;
  p->depth--;
  node_seal(table);
  *out = steal_pointer(&table);
  return 0;
}

static int
digit_value(int c)
{
  int d = hex_value(c);
  return d < 0 ? 99 : d;
}

/* 0 and *out set, -1 when s is no TOML integer, -2 when out of range. */
static int
parse_integer(const char *s, size_t n, int64_t *out)
{
  size_t i = (n > 0 && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
  bool negative = i == 1 && s[0] == '-', digit_before = false, overflow = false;
  uint64_t value = 0, limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  unsigned base = 10;

  if (n - i >= 2 && s[i] == '0' && strchr("xob", s[i + 1]))
    {
      if (i > 0)
        return -1; /* no sign before a prefix */
      base = s[i + 1] == 'x' ? 16 : s[i + 1] == 'o' ? 8 : 2;
      i += 2;
    }
  else if (n - i >= 2 && s[i] == '0')
    return -1; /* no leading zeros */
  for (; i < n; i++)
    {
      unsigned d = digit_value((unsigned char)s[i]);
      if (s[i] == '_' && digit_before && i + 1 < n)
        {
          digit_before = false;
          continue;
        }
      if (d >= base)
        return -1;
      if (value > (limit - d) / base)
        overflow = true;
      value = value * base + d;
      digit_before = true;
    }
  if (!digit_before)
    return -1;
  if (overflow)
    return -2;
  *out = negative ? (value == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)value)
                  : (int64_t)value;
  return 0;
}

static bool
is_token_char(int c)
{
  return is_bare(c) || c == '+' || c == '.' || c == ':';
}

/* Why a token that is neither boolean nor integer is no value crid takes. */
static int
reject_token(struct parser *p, const char *s, size_t n, int line)
{
  size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0;
  bool digit = i < n && s[i] >= '0' && s[i] <= '9';
  int shown = n > 40 ? 40 : (int)n;

  if ((digit && !memchr(s, 'x', n) && (memchr(s, '.', n) || strpbrk(s + i, "eE")))
      || (n - i == 3 && (memcmp(s + i, "inf", 3) == 0 || memcmp(s + i, "nan", 3) == 0)))
    return fail(p, line, "floating-point numbers are not supported (%.*s)", shown, s);
  if (digit && i == 0 && (memchr(s, ':', n) || memchr(s + 1, '-', n - 1)))
    return fail(p, line, "dates and times are not supported (%.*s)", shown, s);
  return fail(p, line, "invalid value %.*s", shown, s);
}

/* Booleans and integers (and the floats and dates crid does not take). */
static int
parse_scalar(struct parser *p, struct toml_node **out)
{
  const char *start = p->cur;
  int line = p->line, rc;
  int64_t integer = 0;
  size_t n;
  char buf[16];

  while (is_token_char(peek(p)))
    p->cur++;
  n = p->cur - start;
  if (n == 0 && (peek(p) == END || peek(p) == '#' || at_newline(p)))
    return fail(p, line, "missing value");
  if (n == 0)
    return fail(p, line, "invalid value starting with %s", describe(p, buf));
  if ((n == 4 && memcmp(start, "true", 4) == 0) || (n == 5 && memcmp(start, "false", 5) == 0))
    {
      *out = node_new(TOML_BOOLEAN, line);
      (*out)->boolean = n == 4;
      return 0;
    }
  rc = parse_integer(start, n, &integer);
  if (rc == -2)
    return fail(p, line, "integer %.*s is out of range", n > 40 ? 40 : (int)n, start);
  if (rc < 0)
    {
      cleanup_free char *token = xstrndup(start, n);
      return reject_token(p, token, n, line);
    }
  *out = node_new(TOML_INTEGER, line);
  (*out)->integer = integer;
  return 0;
}

static int
parse_value(struct parser *p, struct toml_node **out)
{
  switch (peek(p))
    {
    case '"':
    case '\'':
      return parse_string_value(p, out);
    case '[':
      return parse_array(p, out);
    case '{':
      return parse_inline_table(p, out);
    default:
      return parse_scalar(p, out);
    }
}

/* ---------------------------------------------------------------- tables */

/* May dotted keys go through (or add to) the existing node child? */
static int
check_dotted_descent(struct parser *p, struct toml_node *child, int line)
{
  cleanup_free char *path = NULL;

  if (child->type == TOML_TABLE
      && (child->origin == ORIGIN_DOTTED || child->origin == ORIGIN_IMPLICIT))
    {
      if (child->origin == ORIGIN_IMPLICIT)
        child->line = line; /* now defined, here */
      child->origin = ORIGIN_DOTTED;
      return 0;
    }
  path = toml_node_path(child);
  if (child->type != TOML_TABLE)
    return fail(p, line, "key %s is already defined as a value at line %d", path, child->line);
  return fail(p, line, "cannot add keys to table %s with dotted keys: it was defined at line %d",
              path, child->line);
}

static struct toml_node *
add_table(struct toml_node *parent, const char *key, int origin, int line)
{
  struct toml_node *table = node_new(TOML_TABLE, line);
  table->key = xstrdup(key);
  table->origin = origin;
  node_append(parent, table);
  return table;
}

static int
insert_keyval(struct parser *p, struct toml_node *table, const struct key_path *k,
              struct toml_node **value, int line)
{
  struct toml_node *t = table, *existing;
  cleanup_free char *path = NULL;

  for (size_t i = 0; i + 1 < k->n; i++)
    {
      struct toml_node *child = table_find(t, k->parts[i]);
      if (child == NULL)
        child = add_table(t, k->parts[i], ORIGIN_DOTTED, line);
      else if (check_dotted_descent(p, child, line) < 0)
        return -1;
      t = child;
    }
  existing = table_find(t, k->parts[k->n - 1]);
  if (existing)
    {
      path = toml_node_path(existing);
      return fail(p, line, "duplicate key %s (first defined at line %d)", path, existing->line);
    }
  (*value)->key = xstrdup(k->parts[k->n - 1]);
  node_append(t, steal_pointer(value));
  return 0;
}

/* k as written in canonical form, for messages. */
static char *
key_path_text(const struct key_path *k)
{
  cleanup_buffer struct buffer b = { 0 };

  for (size_t i = 0; i < k->n; i++)
    {
      cleanup_free char *part = toml_key(k->parts[i]);
      if (i > 0)
        buffer_add_char(&b, '.');
      buffer_add(&b, part, strlen(part));
    }
  return buffer_steal(&b, NULL);
}

static int
parse_keyval(struct parser *p, struct toml_node *table)
{
  cleanup_key_path struct key_path k = { .n = 0 };
  cleanup_toml struct toml_node *value = NULL;
  int line = p->line;
  char buf[16];

  if (parse_key(p, &k) < 0)
    return -1;
  if (peek(p) != '=')
    {
      cleanup_free char *key = key_path_text(&k);
      return fail(p, p->line, "expected '=' after key %s, found %s", key, describe(p, buf));
    }
  p->cur++;
  skip_ws(p);
  if (parse_value(p, &value) < 0)
    return -1;
  return insert_keyval(p, table, &k, &value, line);
}

/* May a header go through the existing node child to a table below it? */
static int
check_header_descent(struct parser *p, struct toml_node *child, int line)
{
  cleanup_free char *path = NULL;

  if (child->type == TOML_TABLE && child->origin != ORIGIN_INLINE)
    return 0;
  path = toml_node_path(child);
  if (child->type != TOML_TABLE)
    return fail(p, line, "key %s is already defined as a value at line %d", path, child->line);
  return fail(p, line, "cannot add to inline table %s (line %d)", path, child->line);
}

/* May a header define the existing node child? */
static int
check_header_define(struct parser *p, struct toml_node *child, int line)
{
  cleanup_free char *path = NULL;

  if (child->type == TOML_TABLE && child->origin == ORIGIN_IMPLICIT)
    return 0;
  path = toml_node_path(child);
  if (child->type != TOML_TABLE)
    return fail(p, line, "key %s is already defined as a value at line %d", path, child->line);
  if (child->origin == ORIGIN_HEADER)
    return fail(p, line, "duplicate table [%s] (first defined at line %d)", path, child->line);
  return fail(p, line, "table [%s] was already defined by %s at line %d", path,
              child->origin == ORIGIN_DOTTED ? "dotted keys" : "an inline table", child->line);
}

static int
define_table(struct parser *p, const struct key_path *k, int line)
{
  struct toml_node *t = p->root;

  for (size_t i = 0; i < k->n; i++)
    {
      struct toml_node *child = table_find(t, k->parts[i]);
      bool last = i + 1 == k->n;
      if (child == NULL)
        child = add_table(t, k->parts[i], ORIGIN_IMPLICIT, line);
      else if (!last && check_header_descent(p, child, line) < 0)
        return -1;
      else if (last && check_header_define(p, child, line) < 0)
        return -1;
      t = child;
    }
  t->origin = ORIGIN_HEADER;
  t->line = line;
  p->table = t;
  return 0;
}

static int
parse_header(struct parser *p)
{
  cleanup_key_path struct key_path k = { .n = 0 };
  int line = p->line;
  char buf[16];

  p->cur++;
  if (peek(p) == '[')
    return fail(p, line, "arrays of tables ([[...]]) are not supported");
  if (parse_key(p, &k) < 0)
    return -1;
  if (peek(p) != ']')
    return fail(p, line, "expected ']' to close the table header, found %s", describe(p, buf));
  p->cur++;
  if (define_table(p, &k, line) < 0)
    return -1;
  return expect_line_end(p);
}

/* -------------------------------------------------------------- document */

static int
check_encoding(struct parser *p)
{
  int line = 1;

  for (const char *s = p->cur; s < p->end;)
    {
      size_t n = utf8_char_length(s, (size_t)(p->end - s));
      if (*s == '\0')
        return fail(p, line, "NUL byte in the text");
      if (n == 0)
        return fail(p, line, "invalid UTF-8");
      line += *s == '\n';
      s += n;
    }
  return 0;
}

static int
parse_document(struct parser *p)
{
  if (looking_at(p, "\xef\xbb\xbf"))
    p->cur += 3; /* a byte order mark */
  for (;;)
    {
      skip_ws(p);
      if (peek(p) == END)
        return 0;
      if (peek(p) == '#' || at_newline(p))
        {
          if (expect_line_end(p) < 0)
            return -1;
          continue;
        }
      if (peek(p) == '[')
        {
          if (parse_header(p) < 0)
            return -1;
          continue;
        }
      if (parse_keyval(p, p->table) < 0 || expect_line_end(p) < 0)
        return -1;
    }
}

struct toml_node *
toml_parse(const char *name, const char *text, size_t len, struct error *err)
{
  cleanup_toml struct toml_node *root = node_new(TOML_TABLE, 1);
  struct parser p = {
    .name = name,
    .cur = text,
    .end = text + len,
    .line = 1,
    .root = root,
    .table = root,
    .err = err,
  };

  root->origin = ORIGIN_HEADER;
  if (check_encoding(&p) < 0 || parse_document(&p) < 0)
    return NULL;
  return steal_pointer(&root);
}
