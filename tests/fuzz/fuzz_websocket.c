/* libFuzzer harness for crid/stream/websocket.
 *
 *   clang -fsanitize=fuzzer,address -D_GNU_SOURCE -Ulinux -I. tests/fuzz/fuzz_websocket.c \
 *         crid/stream/websocket.c common/bytebuf.c common/util.c common/error.c \
 *         -lcrypto -o fuzz_websocket && ./fuzz_websocket -max_total_time=60
 *
 * Arbitrary bytes are parsed frame after frame, as a client's (masks
 * required) and as a peer's (masks optional), until they run out, wait
 * for more or fail with a message.  Every frame lies within the bytes
 * it was parsed from and keeps the limits, its prefixes leave the
 * parser waiting, and, written again with ws_write_frame(), a final
 * frame parses back to the same frame.  Every data frame
 * also goes through ws_read_channel() in both encodings, and what
 * decodes, written again with ws_write_channel(), is the very same
 * message: each message has exactly one encoding.  The same bytes up
 * to a NUL are also a close reason and a Sec-WebSocket-Key. */
#include "common/bytebuf.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "crid/stream/websocket.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Written data parses back to one whole frame with the same payload. */
static void
check_reads_back(const struct bytebuf *written, enum ws_opcode opcode, const uint8_t *payload,
                 size_t len)
{
  cleanup_free uint8_t *copy = xmalloc(written->len);
  struct error err = ERROR_INIT;
  struct ws_frame frame;

  memcpy(copy, bytebuf_head(written), written->len);
  if (ws_parse_frame(copy, written->len, false, &frame, &err) != (ssize_t)written->len)
    abort();
  if (!frame.fin || frame.opcode != opcode || frame.payload_len != len
      || memcmp(frame.payload, payload, len) != 0)
    abort();
}

static void
check_channel(enum ws_channel_encoding encoding, const struct ws_frame *frame)
{
  struct error err = ERROR_INIT;
  struct bytebuf written = BYTEBUF_INIT;
  cleanup_free uint8_t *decoded = NULL;
  const uint8_t *data = NULL;
  size_t data_len = 0;
  uint8_t channel = 0;

  if (ws_read_channel(encoding, frame->opcode, frame->payload, frame->payload_len, &channel, &data,
                      &data_len, &decoded, &err)
      < 0)
    {
      if (err.message == NULL || decoded != NULL)
        abort();
      error_clear(&err);
      return;
    }
  if (encoding == WS_CHANNEL_BINARY
      && (decoded != NULL || data != frame->payload + 1 || data_len != frame->payload_len - 1))
    abort();
  if (encoding == WS_CHANNEL_BASE64 && (data != decoded || channel > 9))
    abort();
  ws_write_channel(&written, encoding, channel, data, data_len);
  check_reads_back(&written, frame->opcode, frame->payload, frame->payload_len);
  bytebuf_free(&written);
}

static void
check_frame(const uint8_t *start, size_t taken, const struct ws_frame *frame)
{
  struct bytebuf written = BYTEBUF_INIT;

  if (frame->payload < start || frame->payload + frame->payload_len != start + taken
      || frame->payload_len > WS_MAX_FRAME)
    abort();
  if ((frame->opcode & 0x8) && (!frame->fin || frame->payload_len > 125))
    abort();
  if (frame->fin)
    {
      ws_write_frame(&written, frame->opcode, frame->payload, frame->payload_len);
      check_reads_back(&written, frame->opcode, frame->payload, frame->payload_len);
      bytebuf_free(&written);
    }
  if (frame->opcode == WS_CONTINUATION || frame->opcode == WS_TEXT || frame->opcode == WS_BINARY)
    {
      check_channel(WS_CHANNEL_BINARY, frame);
      check_channel(WS_CHANNEL_BASE64, frame);
    }
}

static void
check_waits(uint8_t *start, size_t prefix, bool require_mask)
{
  struct error err = ERROR_INIT;
  struct ws_frame frame;

  if (ws_parse_frame(start, prefix, require_mask, &frame, &err) != 0)
    abort();
}

/* Cut anywhere in its header (14 bytes at most) or one byte short, a
 * frame leaves the parser waiting.  Waiting changes nothing in place, so
 * this holds of the frame already unmasked. */
static void
check_prefixes_wait(uint8_t *start, size_t taken, bool require_mask)
{
  for (size_t prefix = 0; prefix < taken && prefix <= 14; prefix++)
    check_waits(start, prefix, require_mask);
  if (taken > 15)
    check_waits(start, taken - 1, require_mask);
}

static void
parse_all(const uint8_t *data, size_t size, bool require_mask)
{
  /* Parsing unmasks in place, and the input is not ours to change. */
  cleanup_free uint8_t *buf = xmalloc(size);
  struct error err = ERROR_INIT;
  size_t off = 0;

  memcpy(buf, data, size);
  while (off < size)
    {
      struct ws_frame frame;
      ssize_t n = ws_parse_frame(buf + off, size - off, require_mask, &frame, &err);

      if (n < 0)
        {
          if (err.message == NULL)
            abort();
          error_clear(&err);
          return;
        }
      if (n == 0)
        return;
      if ((size_t)n > size - off)
        abort();
      check_prefixes_wait(buf + off, (size_t)n, require_mask);
      check_frame(buf + off, (size_t)n, &frame);
      off += (size_t)n;
    }
}

/* The bytes up to the first NUL as a close reason: the frame stays a
 * legal control frame, and a reason cut short loses at most 3 bytes
 * more than it must, and only to keep a UTF-8 sequence whole. */
static bool
is_continuation(char c)
{
  return ((uint8_t)c & 0xc0) == 0x80;
}

static void
check_close(const char *reason)
{
  struct bytebuf written = BYTEBUF_INIT;
  cleanup_free uint8_t *copy = NULL;
  struct error err = ERROR_INIT;
  struct ws_frame frame;
  size_t len = strlen(reason);
  size_t kept;

  ws_write_close(&written, WS_CLOSE_NORMAL, reason);
  copy = xmalloc(written.len);
  memcpy(copy, bytebuf_head(&written), written.len);
  if (ws_parse_frame(copy, written.len, false, &frame, &err) != (ssize_t)written.len
      || frame.opcode != WS_CLOSE || frame.payload_len < 2 || frame.payload_len > 125
      || frame.payload[0] != WS_CLOSE_NORMAL >> 8 || frame.payload[1] != (WS_CLOSE_NORMAL & 0xff))
    abort();
  kept = frame.payload_len - 2;
  if (kept > len || memcmp(frame.payload + 2, reason, kept) != 0)
    abort();
  if (kept < len && kept < 120)
    abort();
  for (size_t i = kept + 1; i < len && i <= 123; i++)
    if (!is_continuation(reason[i]))
      abort();
  if (kept < len && kept > 120 && is_continuation(reason[kept]))
    abort();
  bytebuf_free(&written);
}

/* The bytes up to the first NUL as a Sec-WebSocket-Key. */
static void
check_accept_key(const char *key)
{
  cleanup_free char *accept = ws_accept_key(key);

  if (accept && (strlen(key) != 24 || strlen(accept) != 28))
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  cleanup_free char *text = xstrndup((const char *)data, size);

  parse_all(data, size, true);
  parse_all(data, size, false);
  check_close(text);
  check_accept_key(text);
  return 0;
}
