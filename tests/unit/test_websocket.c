/* Unit tests of crid/stream/websocket: the handshake key, frame parsing
 * and its protocol errors, frame writing, and both channel encodings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/bytebuf.h"
#include "common/cleanup.h"
#include "common/error.h"
#include "common/util.h"
#include "crid/stream/websocket.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t mask_key[4] = { 0x37, 0xfa, 0x21, 0x3d };

/* Test payloads: a pattern that differs from byte to byte. */
static uint8_t *
make_payload(size_t len)
{
  uint8_t *p = xmalloc(len);
  for (size_t i = 0; i < len; i++)
    p[i] = (uint8_t)(i * 7 + 3);
  return p;
}

/* A frame as a client sends it: first byte as given, the mask bit and
 * the shortest length encoding, the mask key, the masked payload. */
static void
append_client_frame(struct bytebuf *b, uint8_t first, const uint8_t *payload, size_t len)
{
  uint8_t *dst;

  bytebuf_append_u8(b, first);
  if (len <= 125)
    bytebuf_append_u8(b, 0x80 | (uint8_t)len);
  else if (len <= 0xffff)
    {
      bytebuf_append_u8(b, 0x80 | 126);
      bytebuf_append_be16(b, (uint16_t)len);
    }
  else
    {
      bytebuf_append_u8(b, 0x80 | 127);
      bytebuf_append_be32(b, 0);
      bytebuf_append_be32(b, (uint32_t)len);
    }
  bytebuf_append(b, mask_key, sizeof mask_key);
  dst = bytebuf_reserve(b, len);
  for (size_t i = 0; i < len; i++)
    dst[i] = payload[i] ^ mask_key[i % 4];
  bytebuf_commit(b, len);
}

/* A private, writable copy of what b holds (parsing unmasks in place). */
static uint8_t *
copy_out(const struct bytebuf *b)
{
  uint8_t *copy = xmalloc(b->len);
  memcpy(copy, bytebuf_head(b), b->len);
  return copy;
}

static void
test_accept_key_rfc_samples(void **state)
{
  cleanup_free char *rfc = ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==");
  cleanup_free char *other = ws_accept_key("x3JJHMbDL1EzLkh9GBhXDw==");

  /* RFC 6455 §1.3's example; the second is the one Wikipedia shows. */
  assert_string_equal(rfc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  assert_string_equal(other, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

static void
test_accept_key_rejects_invalid_keys(void **state)
{
  static const char *const keys[] = {
    "",
    "dGhlIHNhbXBsZSBub25jZQ=",    /* 23 characters */
    "dGhlIHNhbXBsZSBub25jZQ===",  /* 25 characters */
    "dGhlIHNhbXBsZSBub25jZQ",     /* unpadded */
    " dGhlIHNhbXBsZSBub25jZQ==",  /* leading space */
    "dGhlIHNhbXBsZSBub25jZQ==\n", /* trailing newline */
    "dGhlIHNhbXBsZSBub25jZ!==",   /* not in the alphabet */
    "dGhlIHNhbXBsZSBub25jZ-==",   /* the URL alphabet */
    "dGhlIHNhbXBsZSBub25jZR==",   /* bits past the 16 bytes set */
    "dGhlIHNhbXBsZSBub25jZQAA",   /* 18 bytes */
    "dGhlIHNhbXBsZSBub25jZQA=",   /* 17 bytes */
    "dGhlIHNh=XBsZSBub25jZQ==",   /* padding in the middle */
    "========================",
  };

  assert_null(ws_accept_key(NULL));
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
    {
      char *accept = ws_accept_key(keys[i]);
      if (accept)
        fail_msg("key \"%s\" was accepted", keys[i]);
    }
}

static const size_t frame_lengths[] = { 0, 1, 125, 126, 127, 65535, 65536, WS_MAX_FRAME };

static size_t
client_header_len(size_t len)
{
  return (len <= 125 ? 2 : len <= 0xffff ? 4 : 10) + 4;
}

static void
test_parse_masked_frames(void **state)
{
  for (size_t i = 0; i < sizeof frame_lengths / sizeof *frame_lengths; i++)
    {
      size_t len = frame_lengths[i];
      cleanup_free uint8_t *payload = make_payload(len);
      cleanup_free uint8_t *wire = NULL;
      struct bytebuf b = BYTEBUF_INIT;
      struct error err = ERROR_INIT;
      struct ws_frame frame;
      size_t total;

      append_client_frame(&b, 0x82, payload, len);
      total = b.len;
      assert_int_equal(total, client_header_len(len) + len);
      wire = copy_out(&b);
      bytebuf_free(&b);

      assert_int_equal(ws_parse_frame(wire, total, true, &frame, &err), total);
      assert_true(frame.fin);
      assert_int_equal(frame.opcode, WS_BINARY);
      assert_int_equal(frame.payload_len, len);
      assert_ptr_equal(frame.payload, wire + client_header_len(len));
      assert_memory_equal(frame.payload, payload, len);
      assert_null(err.message);
    }
}

static void
test_parse_every_prefix_waits(void **state)
{
  for (size_t i = 0; i < sizeof frame_lengths / sizeof *frame_lengths; i++)
    {
      size_t len = frame_lengths[i];
      cleanup_free uint8_t *payload = make_payload(len);
      cleanup_free uint8_t *wire = NULL;
      struct bytebuf b = BYTEBUF_INIT;
      struct error err = ERROR_INIT;
      struct ws_frame frame;
      size_t total;

      append_client_frame(&b, 0x81, payload, len);
      total = b.len;
      wire = copy_out(&b);
      bytebuf_free(&b);
      for (size_t prefix = 0; prefix < total; prefix++)
        if (ws_parse_frame(wire, prefix, true, &frame, &err) != 0)
          fail_msg("a %zu-byte prefix of a %zu-byte frame did not wait", prefix, total);
      assert_null(err.message);
      /* Nothing was unmasked while waiting. */
      assert_int_equal(ws_parse_frame(wire, total, true, &frame, &err), total);
      assert_memory_equal(frame.payload, payload, len);
    }
}

static void
test_parse_consecutive_frames(void **state)
{
  struct bytebuf b = BYTEBUF_INIT;
  struct error err = ERROR_INIT;
  struct ws_frame frame;
  cleanup_free uint8_t *wire = NULL;
  size_t off = 0;
  ssize_t n;

  append_client_frame(&b, 0x01, (const uint8_t *)"hel", 3);  /* TEXT, not final */
  append_client_frame(&b, 0x89, (const uint8_t *)"ping", 4); /* interleaved PING */
  append_client_frame(&b, 0x80, (const uint8_t *)"lo", 2);   /* final CONTINUATION */
  append_client_frame(&b, 0x88, NULL, 0);                    /* CLOSE */
  wire = copy_out(&b);

  n = ws_parse_frame(wire + off, b.len - off, true, &frame, &err);
  assert_int_equal(n, 2 + 4 + 3);
  assert_false(frame.fin);
  assert_int_equal(frame.opcode, WS_TEXT);
  assert_memory_equal(frame.payload, "hel", 3);
  off += n;
  n = ws_parse_frame(wire + off, b.len - off, true, &frame, &err);
  assert_int_equal(n, 2 + 4 + 4);
  assert_true(frame.fin);
  assert_int_equal(frame.opcode, WS_PING);
  assert_memory_equal(frame.payload, "ping", 4);
  off += n;
  n = ws_parse_frame(wire + off, b.len - off, true, &frame, &err);
  assert_int_equal(n, 2 + 4 + 2);
  assert_true(frame.fin);
  assert_int_equal(frame.opcode, WS_CONTINUATION);
  assert_memory_equal(frame.payload, "lo", 2);
  off += n;
  n = ws_parse_frame(wire + off, b.len - off, true, &frame, &err);
  assert_int_equal(n, 2 + 4);
  assert_int_equal(frame.opcode, WS_CLOSE);
  assert_int_equal(frame.payload_len, 0);
  off += n;
  assert_int_equal(off, b.len);
  assert_int_equal(ws_parse_frame(wire + off, 0, true, &frame, &err), 0);
  bytebuf_free(&b);
}

static void
test_parse_mask_optional_without_require_mask(void **state)
{
  uint8_t unmasked[] = { 0x82, 0x02, 'o', 'k' };
  uint8_t masked[] = { 0x82, 0x82, 1, 2, 3, 4, 'o' ^ 1, 'k' ^ 2 };
  struct error err = ERROR_INIT;
  struct ws_frame frame;

  assert_int_equal(ws_parse_frame(unmasked, sizeof unmasked, false, &frame, &err), 4);
  assert_memory_equal(frame.payload, "ok", 2);
  assert_int_equal(ws_parse_frame(masked, sizeof masked, false, &frame, &err), 8);
  assert_memory_equal(frame.payload, "ok", 2);
  assert_int_equal(ws_parse_frame(unmasked, sizeof unmasked, true, &frame, &err), -1);
  assert_int_equal(err.code, EPROTO);
  error_clear(&err);
}

struct bad_frame
{
  const char *what;
  uint8_t bytes[14];
  size_t len;
  int code;
};

/* Each is only a frame's header: the error shows without the payload. */
static const struct bad_frame bad_frames[] = {
  { "RSV1", { 0xc2, 0x80 }, 2, EPROTO },
  { "RSV2", { 0xa2, 0x80 }, 2, EPROTO },
  { "RSV3", { 0x92, 0x80 }, 2, EPROTO },
  { "opcode 3", { 0x83, 0x80 }, 2, EPROTO },
  { "opcode 7", { 0x87, 0x80 }, 2, EPROTO },
  { "opcode 0xb", { 0x8b, 0x80 }, 2, EPROTO },
  { "opcode 0xf", { 0x8f, 0x80 }, 2, EPROTO },
  { "unmasked", { 0x82, 0x05 }, 2, EPROTO },
  { "fragmented close", { 0x08, 0x80 }, 2, EPROTO },
  { "fragmented ping", { 0x09, 0x80 }, 2, EPROTO },
  { "fragmented pong", { 0x0a, 0x80 }, 2, EPROTO },
  { "close of 126", { 0x88, 0xfe, 0x00, 0x7e }, 4, EPROTO },
  { "ping of 126 announced", { 0x89, 0xfe }, 2, EPROTO },
  { "pong of 64-bit length", { 0x8a, 0xff }, 2, EPROTO },
  { "125 in 16 bits", { 0x82, 0xfe, 0x00, 0x7d }, 4, EPROTO },
  { "0 in 16 bits", { 0x82, 0xfe, 0x00, 0x00 }, 4, EPROTO },
  { "125 in 64 bits", { 0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 0x7d }, 10, EPROTO },
  { "65535 in 64 bits", { 0x82, 0xff, 0, 0, 0, 0, 0, 0, 0xff, 0xff }, 10, EPROTO },
  { "64-bit top bit", { 0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1 }, 10, EPROTO },
  { "64-bit all ones", { 0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, 10, EPROTO },
  { "WS_MAX_FRAME + 1", { 0x82, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 1 }, 10, EMSGSIZE },
  { "4 GiB", { 0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0 }, 10, EMSGSIZE },
};

static void
test_parse_protocol_errors(void **state)
{
  for (size_t i = 0; i < sizeof bad_frames / sizeof *bad_frames; i++)
    {
      const struct bad_frame *bad = &bad_frames[i];
      uint8_t buf[14];
      struct error err = ERROR_INIT;
      struct ws_frame frame;
      ssize_t n;

      memcpy(buf, bad->bytes, sizeof buf);
      n = ws_parse_frame(buf, bad->len, true, &frame, &err);
      if (n != -1)
        fail_msg("%s: returned %zd", bad->what, n);
      if (err.code != bad->code || err.message == NULL)
        fail_msg("%s: code %d, message %s", bad->what, err.code, error_message(&err));
      error_clear(&err);
    }
}

static void
test_parse_limit_is_inclusive(void **state)
{
  /* Exactly WS_MAX_FRAME: a legal header, waiting for its payload. */
  uint8_t header[] = { 0x82, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 0, 1, 2, 3, 4 };
  struct error err = ERROR_INIT;
  struct ws_frame frame;

  assert_int_equal(ws_parse_frame(header, sizeof header, true, &frame, &err), 0);
  assert_null(err.message);
}

static void
test_written_frames_parse_back(void **state)
{
  static const enum ws_opcode opcodes[] = { WS_BINARY, WS_TEXT, WS_PING };

  for (size_t o = 0; o < sizeof opcodes / sizeof *opcodes; o++)
    for (size_t i = 0; i < sizeof frame_lengths / sizeof *frame_lengths; i++)
      {
        size_t len = frame_lengths[i];
        size_t header = client_header_len(len) - 4;
        cleanup_free uint8_t *payload = NULL;
        cleanup_free uint8_t *wire = NULL;
        struct bytebuf b = BYTEBUF_INIT;
        struct error err = ERROR_INIT;
        struct ws_frame frame;

        if (opcodes[o] == WS_PING && len > 125)
          continue;
        payload = make_payload(len);
        ws_write_frame(&b, opcodes[o], payload, len);
        assert_int_equal(b.len, header + len);
        wire = copy_out(&b);
        bytebuf_free(&b);
        assert_int_equal(wire[0], 0x80 | opcodes[o]);
        assert_int_equal(wire[1] & 0x80, 0); /* crid never masks */

        assert_int_equal(ws_parse_frame(wire, header + len, false, &frame, &err), header + len);
        assert_true(frame.fin);
        assert_int_equal(frame.opcode, opcodes[o]);
        assert_int_equal(frame.payload_len, len);
        assert_memory_equal(frame.payload, payload, len);
        /* As a client's, it would be refused for want of a mask. */
        assert_int_equal(ws_parse_frame(wire, header + len, true, &frame, &err), -1);
        error_clear(&err);
      }
}

static void
test_write_close(void **state)
{
  static const uint8_t bye[] = { 0x88, 0x05, 0x03, 0xe8, 'b', 'y', 'e' };
  static const uint8_t bare[] = { 0x88, 0x02, 0x03, 0xf1 };
  char long_reason[201];
  char utf8_reason[125];
  struct bytebuf b = BYTEBUF_INIT;
  struct error err = ERROR_INIT;
  struct ws_frame frame;
  cleanup_free uint8_t *wire = NULL;
  cleanup_free uint8_t *wire2 = NULL;
  cleanup_free uint8_t *wire3 = NULL;

  ws_write_close(&b, WS_CLOSE_NORMAL, "bye");
  assert_int_equal(b.len, sizeof bye);
  assert_memory_equal(bytebuf_head(&b), bye, sizeof bye);
  bytebuf_free(&b);
  ws_write_close(&b, WS_CLOSE_TOO_BIG, NULL);
  assert_int_equal(b.len, sizeof bare);
  assert_memory_equal(bytebuf_head(&b), bare, sizeof bare);
  bytebuf_free(&b);

  /* A long reason is cut so the frame stays a legal control frame. */
  memset(long_reason, 'x', 200);
  long_reason[200] = '\0';
  ws_write_close(&b, WS_CLOSE_PROTOCOL_ERROR, long_reason);
  wire = copy_out(&b);
  assert_int_equal(ws_parse_frame(wire, b.len, false, &frame, &err), b.len);
  assert_int_equal(frame.opcode, WS_CLOSE);
  assert_int_equal(frame.payload_len, 125);
  assert_int_equal(frame.payload[0] << 8 | frame.payload[1], WS_CLOSE_PROTOCOL_ERROR);
  bytebuf_free(&b);

  /* ... and never inside a UTF-8 sequence: 122 'x' and a 2-byte 'é'
   * would be 124 bytes, one over, so the 'é' goes whole. */
  memset(utf8_reason, 'x', 122);
  memcpy(utf8_reason + 122, "\xc3\xa9", 3);
  ws_write_close(&b, WS_CLOSE_NORMAL, utf8_reason);
  wire2 = copy_out(&b);
  assert_int_equal(ws_parse_frame(wire2, b.len, false, &frame, &err), b.len);
  assert_int_equal(frame.payload_len, 2 + 122);
  bytebuf_free(&b);

  /* A reason that is not UTF-8 loses at most the 3 bytes a sequence
   * could have had besides its first. */
  memset(long_reason, 0x80, 200);
  ws_write_close(&b, WS_CLOSE_NORMAL, long_reason);
  wire3 = copy_out(&b);
  assert_int_equal(ws_parse_frame(wire3, b.len, false, &frame, &err), b.len);
  assert_int_equal(frame.payload_len, 2 + 120);
  bytebuf_free(&b);
}

static void
check_channel_round_trip(enum ws_channel_encoding encoding, uint8_t channel, const uint8_t *data,
                         size_t len)
{
  struct bytebuf b = BYTEBUF_INIT;
  struct error err = ERROR_INIT;
  struct ws_frame frame;
  cleanup_free uint8_t *wire = NULL;
  cleanup_free uint8_t *decoded = NULL;
  const uint8_t *got = NULL;
  size_t got_len = 0;
  uint8_t got_channel = 0;

  ws_write_channel(&b, encoding, channel, data, len);
  wire = copy_out(&b);
  assert_int_equal(ws_parse_frame(wire, b.len, false, &frame, &err), b.len);
  bytebuf_free(&b);
  assert_true(frame.fin);
  assert_int_equal(frame.opcode, encoding == WS_CHANNEL_BASE64 ? WS_TEXT : WS_BINARY);
  assert_int_equal(ws_read_channel(encoding, frame.opcode, frame.payload, frame.payload_len,
                                   &got_channel, &got, &got_len, &decoded, &err),
                   0);
  assert_int_equal(got_channel, channel);
  assert_int_equal(got_len, len);
  assert_non_null(got);
  assert_memory_equal(got, data, len);
  if (encoding == WS_CHANNEL_BINARY)
    assert_null(decoded);
  else
    assert_ptr_equal(got, decoded);
}

static void
test_channel_round_trips(void **state)
{
  static const size_t lengths[] = { 0, 1, 2, 3, 4, 5, 6, 7, 124, 125, 126, 12288, 12289, 70000 };
  static const uint8_t channels[] = { 0, 1, 2, 3, 4, 9 };
  static const enum ws_channel_encoding encodings[] = { WS_CHANNEL_BINARY, WS_CHANNEL_BASE64 };

  for (size_t e = 0; e < 2; e++)
    for (size_t c = 0; c < sizeof channels; c++)
      for (size_t i = 0; i < sizeof lengths / sizeof *lengths; i++)
        {
          cleanup_free uint8_t *data = make_payload(lengths[i]);
          check_channel_round_trip(encodings[e], channels[c], data, lengths[i]);
        }
  /* Binary channels take any byte; port-forward uses 2i and 2i + 1. */
  check_channel_round_trip(WS_CHANNEL_BINARY, 200, (const uint8_t *)"x", 1);
  check_channel_round_trip(WS_CHANNEL_BINARY, 255, NULL, 0);
}

static void
test_channel_wire_format(void **state)
{
  static const uint8_t binary[] = { 0x82, 0x03, 0x01, 'h', 'i' };
  static const uint8_t base64[] = { 0x81, 0x09, '1', 'a', 'G', 'V', 's', 'b', 'G', '8', '=' };
  static const uint8_t empty[] = { 0x81, 0x01, '2' };
  struct bytebuf b = BYTEBUF_INIT;

  ws_write_channel(&b, WS_CHANNEL_BINARY, 1, "hi", 2);
  assert_int_equal(b.len, sizeof binary);
  assert_memory_equal(bytebuf_head(&b), binary, sizeof binary);
  bytebuf_free(&b);
  ws_write_channel(&b, WS_CHANNEL_BASE64, 1, "hello", 5);
  assert_int_equal(b.len, sizeof base64);
  assert_memory_equal(bytebuf_head(&b), base64, sizeof base64);
  bytebuf_free(&b);
  ws_write_channel(&b, WS_CHANNEL_BASE64, 2, NULL, 0);
  assert_int_equal(b.len, sizeof empty);
  assert_memory_equal(bytebuf_head(&b), empty, sizeof empty);
  bytebuf_free(&b);
}

static void
check_channel_refused(enum ws_channel_encoding encoding, enum ws_opcode opcode, const char *text,
                      size_t len)
{
  struct error err = ERROR_INIT;
  uint8_t *decoded = (uint8_t *)"not cleared";
  const uint8_t *data = NULL;
  size_t data_len = 0;
  uint8_t channel = 0;

  if (ws_read_channel(encoding, opcode, (const uint8_t *)text, len, &channel, &data, &data_len,
                      &decoded, &err)
      != -1)
    fail_msg("message \"%.*s\" was accepted", (int)len, text);
  assert_null(decoded);
  assert_int_equal(err.code, EPROTO);
  assert_non_null(err.message);
  error_clear(&err);
}

static void
test_channel_bad_messages(void **state)
{
  static const char *const bad_base64[] = {
    "0abc",      /* not a multiple of 4 */
    "0YQ=",      /* 3 characters */
    "0ab!=",     /* not in the alphabet */
    "0ab-_",     /* the URL alphabet */
    "0a=bc",     /* padding in the middle */
    "0====",     /* padding only */
    "0A===",     /* three padding characters */
    "0YR==",     /* bits past the data set */
    "0YWJ=",     /* bits past the data set */
    "0YQ==YQ==", /* padding, then more */
    "0 YQ==",    /* whitespace */
    "0YQ==\n",   /* trailing newline */
    "xYQ==",     /* channel not a digit */
    "/YQ==",     /* just below '0' */
    ":YQ==",     /* just above '9' */
  };

  for (size_t i = 0; i < sizeof bad_base64 / sizeof *bad_base64; i++)
    check_channel_refused(WS_CHANNEL_BASE64, WS_TEXT, bad_base64[i], strlen(bad_base64[i]));
  /* A NUL in the text is no terminator. */
  check_channel_refused(WS_CHANNEL_BASE64, WS_TEXT, "0YQ==\0", 6);
  check_channel_refused(WS_CHANNEL_BASE64, WS_TEXT, "", 0);
  check_channel_refused(WS_CHANNEL_BINARY, WS_BINARY, "", 0);
  /* Each encoding comes in its own kind of message. */
  check_channel_refused(WS_CHANNEL_BASE64, WS_BINARY, "0YQ==", 5);
  check_channel_refused(WS_CHANNEL_BINARY, WS_TEXT, "\x01hi", 3);
  check_channel_refused(WS_CHANNEL_BINARY, WS_CONTINUATION, "\x01hi", 3);
  check_channel_refused(WS_CHANNEL_BASE64, WS_CONTINUATION, "0YQ==", 5);
  check_channel_refused(WS_CHANNEL_BINARY, WS_CLOSE, "\x03\xe8", 2);
}

static void
test_channel_base64_decodes(void **state)
{
  struct error err = ERROR_INIT;
  cleanup_free uint8_t *decoded = NULL;
  const uint8_t *data = NULL;
  size_t data_len = 0;
  uint8_t channel = 0;

  assert_int_equal(ws_read_channel(WS_CHANNEL_BASE64, WS_TEXT, (const uint8_t *)"4eyJXaWR0aCI6ODB9",
                                   17, &channel, &data, &data_len, &decoded, &err),
                   0);
  assert_int_equal(channel, 4);
  assert_int_equal(data_len, 12);
  assert_memory_equal(data, "{\"Width\":80}", 12);
}

static void
test_channel_v5_close(void **state)
{
  static const uint8_t close_stdin[] = { 255, 0 };
  struct bytebuf b = BYTEBUF_INIT;
  struct error err = ERROR_INIT;
  uint8_t *decoded = NULL;
  const uint8_t *data = NULL;
  size_t data_len = 0;
  uint8_t channel = 0;

  assert_int_equal(ws_read_channel(WS_CHANNEL_BINARY, WS_BINARY, close_stdin, sizeof close_stdin,
                                   &channel, &data, &data_len, &decoded, &err),
                   0);
  assert_int_equal(channel, 255);
  assert_int_equal(data_len, 1);
  assert_int_equal(data[0], 0);
  assert_null(decoded);

  /* And written as the client writes it. */
  ws_write_channel(&b, WS_CHANNEL_BINARY, 255, (const uint8_t[]){ 0 }, 1);
  assert_int_equal(b.len, 4);
  assert_memory_equal(bytebuf_head(&b), ((const uint8_t[]){ 0x82, 0x02, 0xff, 0x00 }), 4);
  bytebuf_free(&b);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_accept_key_rfc_samples),
    cmocka_unit_test(test_accept_key_rejects_invalid_keys),
    cmocka_unit_test(test_parse_masked_frames),
    cmocka_unit_test(test_parse_every_prefix_waits),
    cmocka_unit_test(test_parse_consecutive_frames),
    cmocka_unit_test(test_parse_mask_optional_without_require_mask),
    cmocka_unit_test(test_parse_protocol_errors),
    cmocka_unit_test(test_parse_limit_is_inclusive),
    cmocka_unit_test(test_written_frames_parse_back),
    cmocka_unit_test(test_write_close),
    cmocka_unit_test(test_channel_round_trips),
    cmocka_unit_test(test_channel_wire_format),
    cmocka_unit_test(test_channel_bad_messages),
    cmocka_unit_test(test_channel_base64_decodes),
    cmocka_unit_test(test_channel_v5_close),
  };
  return cmocka_run_group_tests_name("websocket", tests, NULL, NULL);
}
