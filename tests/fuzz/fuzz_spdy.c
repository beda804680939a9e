/* libFuzzer harness for crid/stream/spdy.
 *
 *   clang -fsanitize=fuzzer,address -D_GNU_SOURCE -Ulinux -I. tests/fuzz/fuzz_spdy.c \
 *         crid/stream/spdy.c common/bytebuf.c common/error.c common/util.c -lz \
 *         -o fuzz_spdy && ./fuzz_spdy -max_total_time=60
 *
 * The input is what a client sent on one connection: frames are parsed
 * off its front with one codec, as the session would, until one is
 * incomplete or fails.  A parsed frame never reaches past the input, its
 * headers obey the rules (lower-case, non-empty, distinct names without
 * NULs; values NUL-terminated at their length) and the limits, and a
 * failure always says why.
 *
 * The same bytes, cut into name/value pairs, also go through crid's own
 * writer to a second codec: pairs whose names obey the rules come back
 * the same, and the others are refused. */
#include "common/bytebuf.h"
#include "common/util.h"
#include "crid/stream/spdy.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool
name_is_valid(const char *name, size_t len)
{
  if (len == 0)
    return false;
  for (size_t i = 0; i < len; i++)
    if (name[i] == '\0' || (name[i] >= 'A' && name[i] <= 'Z'))
      return false;
  return true;
}

static void
check_headers(const struct spdy_frame *frame)
{
  if (frame->n_headers > SPDY_MAX_HEADERS || (frame->n_headers > 0 && frame->headers == NULL))
    abort();
  for (size_t i = 0; i < frame->n_headers; i++)
    {
      const struct spdy_header *h = &frame->headers[i];
      if (!name_is_valid(h->name, strlen(h->name)) || h->value_len > SPDY_MAX_HEADER_BLOCK
          || h->value[h->value_len] != '\0')
        abort();
      for (size_t j = 0; j < i; j++)
        if (strcmp(frame->headers[j].name, h->name) == 0)
          abort();
      if (spdy_frame_header(frame, h->name) != frame->headers[i].value)
        abort();
    }
}

static void
check_frame(const struct spdy_frame *frame, const uint8_t *buf, size_t n)
{
  if (n < 8)
    abort();
  switch (frame->type)
    {
    case SPDY_DATA:
      if (frame->data != buf + 8 || frame->data_len != n - 8 || frame->stream_id == 0
          || frame->stream_id > SPDY_MAX_STREAM_ID)
        abort();
      break;
    case SPDY_SYN_STREAM:
    case SPDY_SYN_REPLY:
    case SPDY_HEADERS:
      if (frame->stream_id == 0 || frame->stream_id > SPDY_MAX_STREAM_ID || frame->priority > 7
          || n - 8 > SPDY_MAX_CONTROL_LEN)
        abort();
      check_headers(frame);
      break;
    default:
      if (frame->headers != NULL || frame->n_headers != 0 || n - 8 > SPDY_MAX_CONTROL_LEN)
        abort();
    }
}

/* data as one connection's bytes from a client. */
static void
parse_connection(const uint8_t *data, size_t size)
{
  struct spdy_codec *codec = spdy_codec_new();
  size_t off = 0;

  for (;;)
    {
      struct spdy_frame frame;
      struct error err = ERROR_INIT;
      ssize_t n = spdy_parse_frame(codec, data + off, size - off, &frame, &err);

      if (n < 0 && (err.message == NULL || err.code != EPROTO))
        abort();
      if (n <= 0 && (frame.headers != NULL || frame.n_headers != 0))
        abort();
      error_clear(&err);
      if (n <= 0)
        break;
      if ((size_t)n > size - off)
        abort();
      check_frame(&frame, data + off, (size_t)n);
      spdy_frame_clear(&frame);
      off += (size_t)n;
    }
  spdy_codec_free(codec);
}

/* data cut at newlines into "name=value" pairs (a value may hold any
 * byte but a newline), through spdy_write_syn_stream and back. */
static void
round_trip(const uint8_t *data, size_t size)
{
  struct spdy_header headers[SPDY_MAX_HEADERS];
  size_t n = 0;
  bool valid = true;
  const uint8_t *p = data;
  const uint8_t *end = data + size;
  struct spdy_codec *client, *server;
  struct bytebuf wire = BYTEBUF_INIT;
  struct spdy_frame frame;
  struct error err = ERROR_INIT;
  ssize_t parsed;

  /* Sure to stay under SPDY_MAX_HEADER_BLOCK: 64 pairs' lengths and the
   * bytes. */
  if (size + 4 + SPDY_MAX_HEADERS * 8 > SPDY_MAX_HEADER_BLOCK)
    return;
  while (p < end && n < SPDY_MAX_HEADERS)
    {
      const uint8_t *line_end = memchr(p, '\n', (size_t)(end - p));
      const uint8_t *eq;
      if (line_end == NULL)
        line_end = end;
      eq = memchr(p, '=', (size_t)(line_end - p));
      if (eq == NULL)
        eq = line_end;
      /* The writer takes names as C strings: a NUL ends one. */
      headers[n].name = xstrndup((const char *)p, (size_t)(eq - p));
      headers[n].value_len = eq < line_end ? (size_t)(line_end - eq - 1) : 0;
      headers[n].value = xmalloc(headers[n].value_len + 1);
      memcpy(headers[n].value, eq + (eq < line_end), headers[n].value_len);
      headers[n].value[headers[n].value_len] = '\0';
      valid = valid && name_is_valid(headers[n].name, strlen(headers[n].name));
      for (size_t j = 0; j < n; j++)
        if (strcmp(headers[j].name, headers[n].name) == 0)
          valid = false;
      n++;
      p = line_end + (line_end < end);
    }

  client = spdy_codec_new();
  server = spdy_codec_new();
  if (spdy_write_syn_stream(client, &wire, 1, 0, 0, headers, n, &err) < 0)
    abort();
  parsed = spdy_parse_frame(server, bytebuf_head(&wire), wire.len, &frame, &err);
  if (valid != (parsed == (ssize_t)wire.len) || (!valid && parsed != -1))
    abort();
  if (valid)
    {
      if (frame.n_headers != n)
        abort();
      for (size_t i = 0; i < n; i++)
        if (strcmp(frame.headers[i].name, headers[i].name) != 0
            || frame.headers[i].value_len != headers[i].value_len
            || memcmp(frame.headers[i].value, headers[i].value, headers[i].value_len) != 0)
          abort();
    }
  spdy_frame_clear(&frame);
  error_clear(&err);
  for (size_t i = 0; i < n; i++)
    {
      free(headers[i].name);
      free(headers[i].value);
    }
  bytebuf_free(&wire);
  spdy_codec_free(client);
  spdy_codec_free(server);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  parse_connection(data, size);
  round_trip(data, size);
  return 0;
}
