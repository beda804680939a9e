/* Unit tests of crid/stream/spdy: frames both ways, header blocks over
 * one compression context per direction, frames a Go client wrote, and
 * every protocol error a client can commit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/bytebuf.h"
#include "common/cleanup.h"
#include "common/error.h"
#include "common/util.h"
#include "crid/stream/spdy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* The tests' own client compressor, independent of spdy.c: plain zlib
 * without the dictionary (a peer may leave it out), one stream for the
 * connection.  It can compress what crid's writers never would. */
struct client
{
  z_stream z;
};

static void
client_init(struct client *c)
{
  memset(c, 0, sizeof *c);
  assert_int_equal(deflateInit(&c->z, Z_DEFAULT_COMPRESSION), Z_OK);
}

static void
client_end(struct client *c)
{
  deflateEnd(&c->z);
}

static void
client_compress(struct client *c, const struct bytebuf *raw, int flush, struct bytebuf *out)
{
  /* bytebuf_head() of a queue never used is NULL + 0. */
  c->z.next_in = raw->data ? (Bytef *)bytebuf_head(raw) : NULL;
  c->z.avail_in = (uInt)raw->len;
  do
    {
      c->z.next_out = bytebuf_reserve(out, 4096);
      c->z.avail_out = 4096;
      assert_true(deflate(&c->z, flush) != Z_STREAM_ERROR);
      bytebuf_commit(out, 4096 - c->z.avail_out);
    }
  while (c->z.avail_out == 0);
}

/* One uncompressed name/value pair. */
static void
raw_pair(struct bytebuf *raw, const char *name, const char *value)
{
  bytebuf_append_be32(raw, (uint32_t)strlen(name));
  bytebuf_append(raw, name, strlen(name));
  bytebuf_append_be32(raw, (uint32_t)strlen(value));
  bytebuf_append(raw, value, strlen(value));
}

static void
control_header(struct bytebuf *out, uint16_t type, uint8_t flags, uint32_t len)
{
  bytebuf_append_be16(out, 0x8003);
  bytebuf_append_be16(out, type);
  bytebuf_append_u8(out, flags);
  bytebuf_append_be24(out, len);
}

/* A SYN_STREAM (or, for other types, SYN_REPLY/HEADERS layout) whose
 * header block is raw compressed by the test client. */
static void
header_frame(struct bytebuf *out, struct client *c, uint16_t type, uint32_t stream_id,
             const struct bytebuf *raw)
{
  struct bytebuf block = BYTEBUF_INIT;

  client_compress(c, raw, Z_SYNC_FLUSH, &block);
  control_header(out, type, 0, (uint32_t)((type == SPDY_SYN_STREAM ? 10 : 4) + block.len));
  bytebuf_append_be32(out, stream_id);
  if (type == SPDY_SYN_STREAM)
    {
      bytebuf_append_be32(out, 0);
      bytebuf_append_be16(out, 0);
    }
  bytebuf_append(out, bytebuf_head(&block), block.len);
  bytebuf_free(&block);
}

static ssize_t
parse(struct spdy_codec *codec, const struct bytebuf *in, struct spdy_frame *frame,
      struct error *err)
{
  return spdy_parse_frame(codec, bytebuf_head(in), in->len, frame, err);
}

/* in is refused as a protocol error whose message has want in it, and
 * leaves nothing in the frame. */
static void
assert_protocol_error(struct spdy_codec *codec, const struct bytebuf *in, const char *want)
{
  struct spdy_frame frame;
  struct error err = ERROR_INIT;

  assert_int_equal(parse(codec, in, &frame, &err), -1);
  assert_int_equal(err.code, EPROTO);
  if (strstr(err.message, want) == NULL)
    fail_msg("error \"%s\" does not say \"%s\"", err.message, want);
  assert_null(frame.headers);
  assert_int_equal(frame.n_headers, 0);
  error_clear(&err);
}

/* A fresh connection refuses in. */
static void
assert_refused(const struct bytebuf *in, const char *want)
{
  struct spdy_codec *codec = spdy_codec_new();
  assert_protocol_error(codec, in, want);
  spdy_codec_free(codec);
}

/* A fresh connection refuses a header frame of type carrying raw. */
static void
assert_block_refused(uint16_t type, const struct bytebuf *raw, const char *want)
{
  struct client c;
  struct bytebuf in = BYTEBUF_INIT;

  client_init(&c);
  header_frame(&in, &c, type, 1, raw);
  assert_refused(&in, want);
  client_end(&c);
  bytebuf_free(&in);
}

static const struct spdy_header exec_headers[] = {
  { "streamtype", "stdout", 6 },
  { "port", "8080", 4 },
  { "requestid", "0", 1 },
};

/* The zlib header of crid's first block names the dictionary by its
 * Adler-32, which zlib computed from spdy.c's table: it must be the
 * SPDY/3 dictionary's. */
static void
test_dictionary_adler32(void **state)
{
  struct spdy_codec *codec = spdy_codec_new();
  struct bytebuf out = BYTEBUF_INIT;
  struct error err = ERROR_INIT;
  const uint8_t *p;

  assert_int_equal(spdy_write_syn_reply(codec, &out, 1, 0, NULL, 0, &err), 0);
  p = bytebuf_head(&out) + 12;
  assert_int_equal(p[0] & 0x0f, Z_DEFLATED);
  assert_int_equal((p[0] << 8 | p[1]) % 31, 0);
  assert_true(p[1] & 0x20); /* FDICT */
  assert_int_equal((uint32_t)p[2] << 24 | p[3] << 16 | p[4] << 8 | p[5], 0xe3c6a7c2);
  bytebuf_free(&out);
  spdy_codec_free(codec);
}

static void
test_syn_stream_round_trip(void **state)
{
  struct spdy_codec *client = spdy_codec_new();
  struct spdy_codec *server = spdy_codec_new();
  struct bytebuf wire = BYTEBUF_INIT;
  struct spdy_frame frame;
  struct error err = ERROR_INIT;

  assert_int_equal(spdy_write_syn_stream(client, &wire, 1, 0, 0, exec_headers, 3, &err), 0);
  assert_int_equal(parse(server, &wire, &frame, &err), (ssize_t)wire.len);
  assert_int_equal(frame.type, SPDY_SYN_STREAM);
  assert_int_equal(frame.stream_id, 1);
  assert_int_equal(frame.associated_id, 0);
  assert_int_equal(frame.priority, 0);
  assert_int_equal(frame.flags, 0);
  assert_int_equal(frame.n_headers, 3);
  assert_string_equal(spdy_frame_header(&frame, "streamtype"), "stdout");
  assert_string_equal(spdy_frame_header(&frame, "port"), "8080");
  assert_string_equal(spdy_frame_header(&frame, "requestid"), "0");
  assert_null(spdy_frame_header(&frame, "Port"));
  assert_null(spdy_frame_header(&frame, "missing"));
  spdy_frame_clear(&frame);
  assert_null(frame.headers);
  bytebuf_free(&wire);
  spdy_codec_free(client);
  spdy_codec_free(server);
}

/* Many header blocks in a row over the same two contexts, both ways; each
 * later block leans on what the earlier ones left in the window. */
static void
test_many_blocks_over_one_context(void **state)
{
  struct spdy_codec *client = spdy_codec_new();
  struct spdy_codec *server = spdy_codec_new();
  struct bytebuf wire = BYTEBUF_INIT;
  struct bytebuf back = BYTEBUF_INIT;
  struct spdy_frame frame;
  struct error err = ERROR_INIT;
  const char *types[] = { "error", "stdin", "stdout", "stderr", "resize" };
  const struct spdy_header multi = { "accept", "a\0b", 3 };

  for (uint32_t i = 0; i < 200; i++)
    {
      cleanup_free char *id = xasprintf("%u", i);
      struct spdy_header h[3] = {
        { "streamtype", (char *)types[i % 5], strlen(types[i % 5]) },
        { "requestid", id, strlen(id) },
        multi,
      };
      assert_int_equal(
          spdy_write_syn_stream(client, &wire, 2 * i + 1, 0, SPDY_FLAG_FIN, h, i % 4, &err), 0);
    }
  for (uint32_t i = 0; i < 200; i++)
    {
      ssize_t n = parse(server, &wire, &frame, &err);
      assert_true(n > 0);
      assert_int_equal(frame.type, SPDY_SYN_STREAM);
      assert_int_equal(frame.stream_id, 2 * i + 1);
      assert_int_equal(frame.flags, SPDY_FLAG_FIN);
      assert_int_equal(frame.n_headers, i % 4);
      if (i % 4 >= 1)
        assert_string_equal(spdy_frame_header(&frame, "streamtype"), types[i % 5]);
      if (i % 4 >= 2)
        {
          cleanup_free char *id = xasprintf("%u", i);
          assert_string_equal(spdy_frame_header(&frame, "requestid"), id);
        }
      if (i % 4 == 3)
        {
          /* Several values: the first as a string, all of them by length. */
          assert_string_equal(spdy_frame_header(&frame, "accept"), "a");
          assert_int_equal(frame.headers[2].value_len, 3);
          assert_memory_equal(frame.headers[2].value, "a\0b", 4);
        }
      bytebuf_consume(&wire, (size_t)n);
      spdy_frame_clear(&frame);

      assert_int_equal(spdy_write_syn_reply(server, &back, 2 * i + 1, 0, NULL, 0, &err), 0);
      n = parse(client, &back, &frame, &err);
      assert_int_equal(n, (ssize_t)back.len);
      assert_int_equal(frame.type, SPDY_SYN_REPLY);
      assert_int_equal(frame.stream_id, 2 * i + 1);
      assert_int_equal(frame.n_headers, 0);
      bytebuf_consume(&back, (size_t)n);
      spdy_frame_clear(&frame);
    }
  assert_int_equal(wire.len, 0);
  bytebuf_free(&wire);
  bytebuf_free(&back);
  spdy_codec_free(client);
  spdy_codec_free(server);
}

static void
test_syn_reply_with_headers_round_trip(void **state)
{
  struct spdy_codec *client = spdy_codec_new();
  struct spdy_codec *server = spdy_codec_new();
  struct bytebuf wire = BYTEBUF_INIT;
  struct spdy_frame frame;
  struct error err = ERROR_INIT;

  assert_int_equal(spdy_write_syn_reply(server, &wire, 7, SPDY_FLAG_FIN, exec_headers + 1, 2, &err),
                   0);
  assert_int_equal(parse(client, &wire, &frame, &err), (ssize_t)wire.len);
  assert_int_equal(frame.type, SPDY_SYN_REPLY);
  assert_int_equal(frame.stream_id, 7);
  assert_int_equal(frame.flags, SPDY_FLAG_FIN);
  assert_int_equal(frame.n_headers, 2);
  assert_string_equal(frame.headers[0].name, "port");
  assert_string_equal(frame.headers[1].value, "0");
  spdy_frame_clear(&frame);
  bytebuf_free(&wire);
  spdy_codec_free(client);
  spdy_codec_free(server);
}

/* Two SYN_STREAMs of a port-forward as a Go client writes them: header
 * blocks compressed by Go's compress/zlib (the compressor spdystream
 * uses: BestCompression, the SPDY/3 dictionary, one writer for the
 * connection, Flush after each block).  Produced once by a Go program;
 * note the zlib header 78 f9 e3 c6 a7 c2 and the second block of 14
 * bytes, made of references into the first. */
static const uint8_t go_client_frames[] = {
  0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3e, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2, 0x02, 0x25, 0x3a, 0x70, 0x3a, 0x2b,
  0x29, 0x4a, 0x4d, 0xcc, 0x85, 0x16, 0x25, 0xac, 0xa9, 0xa0, 0x80, 0x86, 0x14, 0xcb, 0x45,
  0xe0, 0x1c, 0x60, 0x61, 0x60, 0x61, 0xc0, 0xc0, 0xc0, 0xc0, 0x59, 0x04, 0x89, 0xc6, 0x4c,
  0x50, 0xf2, 0x66, 0x34, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x80, 0x03, 0x00, 0x01, 0x00,
  0x00, 0x00, 0x18, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc2, 0xaa,
  0x19, 0x54, 0x0e, 0x25, 0x12, 0xd6, 0x0b, 0x00, 0x00, 0x00, 0xff, 0xff,
};

static void
test_frames_from_go_client(void **state)
{
  struct spdy_codec *server = spdy_codec_new();
  struct spdy_frame frame;
  struct error err = ERROR_INIT;
  const uint8_t *p = go_client_frames;
  size_t left = sizeof go_client_frames;
  ssize_t n;

  n = spdy_parse_frame(server, p, left, &frame, &err);
  assert_int_equal(n, 8 + 0x3e);
  assert_int_equal(frame.type, SPDY_SYN_STREAM);
  assert_int_equal(frame.stream_id, 1);
  assert_int_equal(frame.n_headers, 3);
  assert_string_equal(spdy_frame_header(&frame, "streamtype"), "error");
  assert_string_equal(spdy_frame_header(&frame, "port"), "8080");
  assert_string_equal(spdy_frame_header(&frame, "requestid"), "0");
  spdy_frame_clear(&frame);
  p += n;
  left -= (size_t)n;

  n = spdy_parse_frame(server, p, left, &frame, &err);
  assert_int_equal(n, (ssize_t)left);
  assert_int_equal(frame.stream_id, 3);
  assert_int_equal(frame.n_headers, 3);
  assert_string_equal(spdy_frame_header(&frame, "streamtype"), "data");
  assert_string_equal(spdy_frame_header(&frame, "port"), "8080");
  spdy_frame_clear(&frame);
  spdy_codec_free(server);
}

/* A deflate stored block (RFC 1951 3.2.4, not final) holding raw, then
 * the empty stored block a sync flush writes. */
static void
stored_block(struct bytebuf *out, const struct bytebuf *raw)
{
  uint16_t len = (uint16_t)raw->len;

  bytebuf_append_u8(out, 0x00);
  bytebuf_append(out, (uint8_t[]){ len & 0xff, len >> 8, ~len & 0xff, (~len >> 8) & 0xff }, 4);
  bytebuf_append(out, bytebuf_head(raw), raw->len);
  bytebuf_append(out, (uint8_t[]){ 0x00, 0x00, 0x00, 0xff, 0xff }, 5);
}

/* A zlib stream put together by hand from the specs, compressing
 * nothing: what any peer's inflater must take, ours included. */
static void
test_hand_made_zlib_stream(void **state)
{
  static const uint8_t zlib_header[] = { 0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2 };
  struct spdy_codec *server = spdy_codec_new();
  struct bytebuf wire = BYTEBUF_INIT;
  struct bytebuf raw = BYTEBUF_INIT;
  struct bytebuf block = BYTEBUF_INIT;
  struct spdy_frame frame;
  struct error err = ERROR_INIT;
  ssize_t n;

  bytebuf_append_be32(&raw, 2);
  raw_pair(&raw, "streamtype", "stdin");
  raw_pair(&raw, "requestid", "42");
  bytebuf_append(&block, zlib_header, sizeof zlib_header);
  stored_block(&block, &raw);
  control_header(&wire, SPDY_SYN_STREAM, 0, (uint32_t)(10 + block.len));
  bytebuf_append(&wire, (uint8_t[]){ 0, 0, 0, 5, 0, 0, 0, 3, 0xe0, 0 }, 10);
  bytebuf_append(&wire, bytebuf_head(&block), block.len);

  /* The next block continues the stream: no zlib header. */
  bytebuf_consume(&raw, raw.len);
  bytebuf_consume(&block, block.len);
  bytebuf_append_be32(&raw, 1);
  raw_pair(&raw, "x", "y");
  stored_block(&block, &raw);
  control_header(&wire, SPDY_HEADERS, 0, (uint32_t)(4 + block.len));
  bytebuf_append_be32(&wire, 5);
  bytebuf_append(&wire, bytebuf_head(&block), block.len);

  n = parse(server, &wire, &frame, &err);
  assert_true(n > 0);
  assert_int_equal(frame.stream_id, 5);
  assert_int_equal(frame.associated_id, 3);
  assert_int_equal(frame.priority, 7);
  assert_string_equal(spdy_frame_header(&frame, "streamtype"), "stdin");
  assert_string_equal(spdy_frame_header(&frame, "requestid"), "42");
  spdy_frame_clear(&frame);
  bytebuf_consume(&wire, (size_t)n);
  assert_int_equal(parse(server, &wire, &frame, &err), (ssize_t)wire.len);
  assert_int_equal(frame.type, SPDY_HEADERS);
  assert_string_equal(spdy_frame_header(&frame, "x"), "y");
  spdy_frame_clear(&frame);

  bytebuf_free(&wire);
  bytebuf_free(&raw);
  bytebuf_free(&block);
  spdy_codec_free(server);
}

static void
test_writers_bytes(void **state)
{
  static const uint8_t want[] = {
    0x80, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x05, /* RST_STREAM */
    0x00, 0x00, 0x00, 0x05,                                                 /* CANCEL */
    0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x02, /* PING 2 */
    0x80, 0x03, 0x00, 0x07, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x07, /* GOAWAY 7 */
    0x00, 0x00, 0x00, 0x01,                                                 /* PROTOCOL */
    0x00, 0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x02, 'h',  'i',              /* DATA FIN */
  };
  struct bytebuf out = BYTEBUF_INIT;

  spdy_write_rst_stream(&out, 5, SPDY_RST_CANCEL);
  spdy_write_ping(&out, 2);
  spdy_write_goaway(&out, 7, SPDY_GOAWAY_PROTOCOL_ERROR);
  spdy_write_data(&out, 3, SPDY_FLAG_FIN, "hi", 2);
  assert_int_equal(out.len, sizeof want);
  assert_memory_equal(bytebuf_head(&out), want, sizeof want);
  bytebuf_free(&out);
}

static void
test_simple_control_frames_parse(void **state)
{
  struct spdy_codec *codec = spdy_codec_new();
  struct bytebuf in = BYTEBUF_INIT;
  struct spdy_frame frame;
  struct error err = ERROR_INIT;
  ssize_t n;

  spdy_write_rst_stream(&in, 9, SPDY_RST_REFUSED_STREAM);
  spdy_write_ping(&in, 0xfffffffe);
  spdy_write_goaway(&in, 0xffffffff, SPDY_GOAWAY_INTERNAL_ERROR);
  control_header(&in, SPDY_WINDOW_UPDATE, 0, 8);
  bytebuf_append_be32(&in, 0); /* the session's window */
  bytebuf_append_be32(&in, 0x80010000);
  control_header(&in, SPDY_SETTINGS, 1, 20);
  bytebuf_append_be32(&in, 2);
  bytebuf_append_be32(&in, 0x01000007);
  bytebuf_append_be32(&in, 65536);
  bytebuf_append_be32(&in, 4);
  bytebuf_append_be32(&in, 100);
  control_header(&in, SPDY_SETTINGS, 0, 4);
  bytebuf_append_be32(&in, 0);

  assert_int_equal(n = parse(codec, &in, &frame, &err), 16);
  assert_int_equal(frame.type, SPDY_RST_STREAM);
  assert_int_equal(frame.stream_id, 9);
  assert_int_equal(frame.status, SPDY_RST_REFUSED_STREAM);
  bytebuf_consume(&in, (size_t)n);

  assert_int_equal(n = parse(codec, &in, &frame, &err), 12);
  assert_int_equal(frame.type, SPDY_PING);
  assert_int_equal(frame.ping_id, 0xfffffffe);
  bytebuf_consume(&in, (size_t)n);

  assert_int_equal(n = parse(codec, &in, &frame, &err), 16);
  assert_int_equal(frame.type, SPDY_GOAWAY);
  assert_int_equal(frame.last_good_id, 0x7fffffff);
  assert_int_equal(frame.status, SPDY_GOAWAY_INTERNAL_ERROR);
  bytebuf_consume(&in, (size_t)n);

  assert_int_equal(n = parse(codec, &in, &frame, &err), 16);
  assert_int_equal(frame.type, SPDY_WINDOW_UPDATE);
  assert_int_equal(frame.stream_id, 0);
  assert_int_equal(frame.delta, 0x10000);
  bytebuf_consume(&in, (size_t)n);

  assert_int_equal(n = parse(codec, &in, &frame, &err), 28);
  assert_int_equal(frame.type, SPDY_SETTINGS);
  assert_int_equal(frame.flags, 1);
  bytebuf_consume(&in, (size_t)n);

  assert_int_equal(n = parse(codec, &in, &frame, &err), 12);
  assert_int_equal(frame.type, SPDY_SETTINGS);
  bytebuf_consume(&in, (size_t)n);
  assert_int_equal(in.len, 0);
  bytebuf_free(&in);
  spdy_codec_free(codec);
}

/* HEADERS is laid out as SYN_REPLY: a SYN_REPLY retyped stands for one. */
static void
test_headers_frame_parses(void **state)
{
  struct spdy_codec *client = spdy_codec_new();
  struct spdy_codec *server = spdy_codec_new();
  struct bytebuf wire = BYTEBUF_INIT;
  struct spdy_frame frame;
  struct error err = ERROR_INIT;

  assert_int_equal(spdy_write_syn_reply(client, &wire, 11, 0, exec_headers, 1, &err), 0);
  wire.data[wire.start + 3] = SPDY_HEADERS;
  assert_int_equal(parse(server, &wire, &frame, &err), (ssize_t)wire.len);
  assert_int_equal(frame.type, SPDY_HEADERS);
  assert_int_equal(frame.stream_id, 11);
  assert_string_equal(spdy_frame_header(&frame, "streamtype"), "stdout");
  spdy_frame_clear(&frame);
  bytebuf_free(&wire);
  spdy_codec_free(client);
  spdy_codec_free(server);
}

static void
test_data_frames(void **state)
{
  struct spdy_codec *codec = spdy_codec_new();
  struct bytebuf in = BYTEBUF_INIT;
  struct spdy_frame frame;
  struct error err = ERROR_INIT;
  size_t big_len = 100000;
  cleanup_free uint8_t *big = xmalloc(big_len);
  ssize_t n;

  memset(big, 'z', big_len);
  spdy_write_data(&in, 1, 0, "hello", 5);
  spdy_write_data(&in, 0x7fffffff, SPDY_FLAG_FIN, NULL, 0);
  spdy_write_data(&in, 3, SPDY_FLAG_FIN, big, big_len);

  assert_int_equal(n = parse(codec, &in, &frame, &err), 13);
  assert_int_equal(frame.type, SPDY_DATA);
  assert_int_equal(frame.stream_id, 1);
  assert_int_equal(frame.flags, 0);
  assert_int_equal(frame.data_len, 5);
  assert_ptr_equal(frame.data, bytebuf_head(&in) + 8);
  assert_memory_equal(frame.data, "hello", 5);
  spdy_frame_clear(&frame);
  bytebuf_consume(&in, (size_t)n);

  /* An empty DATA with FIN: a half-close. */
  assert_int_equal(n = parse(codec, &in, &frame, &err), 8);
  assert_int_equal(frame.type, SPDY_DATA);
  assert_int_equal(frame.stream_id, 0x7fffffff);
  assert_int_equal(frame.flags, SPDY_FLAG_FIN);
  assert_int_equal(frame.data_len, 0);
  bytebuf_consume(&in, (size_t)n);

  /* A large one waits for its last byte. */
  assert_int_equal(spdy_parse_frame(codec, bytebuf_head(&in), in.len - 1, &frame, &err), 0);
  assert_int_equal(n = parse(codec, &in, &frame, &err), (ssize_t)(8 + big_len));
  assert_int_equal(frame.flags, SPDY_FLAG_FIN);
  assert_int_equal(frame.data_len, big_len);
  assert_memory_equal(frame.data, big, big_len);
  bytebuf_free(&in);
  spdy_codec_free(codec);
}

/* Every prefix of every kind of frame is "not yet", and changes nothing:
 * the whole frame then parses, header blocks included. */
static void
test_partial_input(void **state)
{
  struct spdy_codec *client = spdy_codec_new();
  struct spdy_codec *server = spdy_codec_new();
  struct bytebuf in = BYTEBUF_INIT;
  struct spdy_frame frame;
  struct error err = ERROR_INIT;
  size_t headers_at;
  const uint8_t *p;
  size_t left;
  int frames = 0;

  assert_int_equal(spdy_write_syn_stream(client, &in, 1, 0, 0, exec_headers, 3, &err), 0);
  spdy_write_data(&in, 1, 0, "abc", 3);
  spdy_write_data(&in, 1, SPDY_FLAG_FIN, NULL, 0);
  assert_int_equal(spdy_write_syn_stream(client, &in, 3, 0, 0, exec_headers, 2, &err), 0);
  assert_int_equal(spdy_write_syn_reply(client, &in, 3, 0, NULL, 0, &err), 0);
  headers_at = in.len;
  assert_int_equal(spdy_write_syn_reply(client, &in, 3, 0, exec_headers, 3, &err), 0);
  in.data[in.start + headers_at + 3] = SPDY_HEADERS;
  spdy_write_rst_stream(&in, 3, SPDY_RST_CANCEL);
  spdy_write_ping(&in, 1);
  spdy_write_goaway(&in, 3, SPDY_GOAWAY_OK);
  control_header(&in, SPDY_WINDOW_UPDATE, 0, 8);
  bytebuf_append_be32(&in, 1);
  bytebuf_append_be32(&in, 1000);
  control_header(&in, SPDY_SETTINGS, 0, 12);
  bytebuf_append_be32(&in, 1);
  bytebuf_append_be32(&in, 7);
  bytebuf_append_be32(&in, 1);
  control_header(&in, 10, 0, 3); /* unknown */
  bytebuf_append(&in, "xyz", 3);

  p = bytebuf_head(&in);
  left = in.len;
  while (left > 0)
    {
      ssize_t n = -1;
      size_t k;
      for (k = 0; k <= left; k++)
        {
          n = spdy_parse_frame(server, p, k, &frame, &err);
          if (n != 0)
            break;
          assert_int_equal(frame.type, 0);
          assert_null(frame.headers);
        }
      assert_true(n > 0);
      assert_int_equal((size_t)n, k); /* known complete at its last byte */
      if (frame.type == SPDY_SYN_STREAM || frame.type == SPDY_HEADERS)
        assert_string_equal(spdy_frame_header(&frame, "streamtype"), "stdout");
      spdy_frame_clear(&frame);
      p += n;
      left -= (size_t)n;
      frames++;
    }
  assert_int_equal(frames, 12);
  bytebuf_free(&in);
  spdy_codec_free(client);
  spdy_codec_free(server);
}

static void
test_unknown_control_types(void **state)
{
  struct spdy_codec *codec = spdy_codec_new();
  struct bytebuf in = BYTEBUF_INIT;
  struct spdy_frame frame;
  struct error err = ERROR_INIT;
  cleanup_free uint8_t *big = xcalloc(1, SPDY_MAX_CONTROL_LEN);
  ssize_t n;

  control_header(&in, 10, 0x03, 5); /* CREDENTIAL */
  bytebuf_append(&in, "12345", 5);
  control_header(&in, 0xffff, 0, SPDY_MAX_CONTROL_LEN); /* as long as allowed */
  bytebuf_append(&in, big, SPDY_MAX_CONTROL_LEN);
  control_header(&in, 5, 0, 0); /* SPDY/2's NOOP */

  assert_int_equal(n = parse(codec, &in, &frame, &err), 13);
  assert_int_equal(frame.type, 10);
  assert_int_equal(frame.stream_id, 0);
  assert_null(frame.headers);
  bytebuf_consume(&in, (size_t)n);
  assert_int_equal(n = parse(codec, &in, &frame, &err), 8 + SPDY_MAX_CONTROL_LEN);
  assert_int_equal(frame.type, 0xffff);
  bytebuf_consume(&in, (size_t)n);
  assert_int_equal(n = parse(codec, &in, &frame, &err), 8);
  assert_int_equal(frame.type, 5);
  bytebuf_free(&in);
  spdy_codec_free(codec);
}

static void
test_bad_version_and_size(void **state)
{
  struct bytebuf in = BYTEBUF_INIT;

  bytebuf_append(&in, (uint8_t[]){ 0x80, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04 }, 8);
  bytebuf_append_be32(&in, 1);
  assert_refused(&in, "version 2");
  bytebuf_consume(&in, in.len);

  bytebuf_append(&in, (uint8_t[]){ 0xff, 0xff, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04 }, 8);
  assert_refused(&in, "version 32767");
  bytebuf_consume(&in, in.len);

  /* Refused from its header alone: nobody buffers the payload. */
  control_header(&in, SPDY_SYN_STREAM, 0, SPDY_MAX_CONTROL_LEN + 1);
  assert_refused(&in, "SYN_STREAM of 65537 bytes");
  bytebuf_consume(&in, in.len);
  control_header(&in, 77, 0, 0xffffff);
  assert_refused(&in, "bytes (at most");
  bytebuf_consume(&in, in.len);

  control_header(&in, 0, 0, 0);
  assert_refused(&in, "type 0");
  bytebuf_free(&in);
}

/* A control frame of type whose payload is n bytes of x. */
static void
assert_length_refused(uint16_t type, uint32_t n)
{
  struct bytebuf in = BYTEBUF_INIT;

  control_header(&in, type, 0, n);
  for (uint32_t i = 0; i < n; i++)
    bytebuf_append_u8(&in, 1);
  assert_refused(&in, "length");
  bytebuf_free(&in);
}

static void
test_bad_lengths(void **state)
{
  struct bytebuf in = BYTEBUF_INIT;

  assert_length_refused(SPDY_RST_STREAM, 7);
  assert_length_refused(SPDY_RST_STREAM, 9);
  assert_length_refused(SPDY_PING, 3);
  assert_length_refused(SPDY_PING, 8);
  assert_length_refused(SPDY_GOAWAY, 4); /* SPDY/2's size */
  assert_length_refused(SPDY_GOAWAY, 12);
  assert_length_refused(SPDY_WINDOW_UPDATE, 7);
  assert_length_refused(SPDY_SETTINGS, 3);
  assert_length_refused(SPDY_SYN_STREAM, 9);
  assert_length_refused(SPDY_SYN_REPLY, 3);
  assert_length_refused(SPDY_HEADERS, 0);

  /* SETTINGS whose count does not match its length. */
  control_header(&in, SPDY_SETTINGS, 0, 12);
  bytebuf_append_be32(&in, 2);
  bytebuf_append_be32(&in, 1);
  bytebuf_append_be32(&in, 1);
  assert_refused(&in, "2 entries in length 12");
  bytebuf_consume(&in, in.len);
  control_header(&in, SPDY_SETTINGS, 0, 12);
  bytebuf_append_be32(&in, 0x20000001); /* count * 8 wraps to 8 */
  bytebuf_append_be32(&in, 1);
  bytebuf_append_be32(&in, 1);
  assert_refused(&in, "entries in length 12");
  bytebuf_consume(&in, in.len);
  control_header(&in, SPDY_SETTINGS, 0, 13);
  bytebuf_append_be32(&in, 1);
  bytebuf_append(&in, "123456789", 9);
  assert_refused(&in, "1 entries in length 13");
  bytebuf_consume(&in, in.len);

  /* A PING carries no flags. */
  control_header(&in, SPDY_PING, SPDY_FLAG_FIN, 4);
  bytebuf_append_be32(&in, 1);
  assert_refused(&in, "flags 0x01");
  bytebuf_free(&in);
}

static void
test_stream_id_zero(void **state)
{
  struct bytebuf raw = BYTEBUF_INIT;
  struct bytebuf in = BYTEBUF_INIT;
  struct client c;
  uint16_t types[] = { SPDY_SYN_STREAM, SPDY_SYN_REPLY, SPDY_HEADERS };

  bytebuf_append_be32(&raw, 0);
  for (size_t i = 0; i < 3; i++)
    {
      client_init(&c);
      header_frame(&in, &c, types[i], 0, &raw);
      assert_refused(&in, "stream id 0");
      bytebuf_consume(&in, in.len);
      client_end(&c);
    }
  /* The top bit is not part of the id. */
  client_init(&c);
  header_frame(&in, &c, SPDY_SYN_STREAM, 0x80000000, &raw);
  assert_refused(&in, "stream id 0");
  bytebuf_consume(&in, in.len);
  client_end(&c);

  spdy_write_rst_stream(&in, 0, SPDY_RST_CANCEL);
  assert_refused(&in, "stream id 0");
  bytebuf_consume(&in, in.len);
  spdy_write_data(&in, 0, 0, "x", 1);
  assert_refused(&in, "DATA for stream id 0");
  bytebuf_free(&in);
  bytebuf_free(&raw);
}

static void
test_bad_header_names(void **state)
{
  struct bytebuf raw = BYTEBUF_INIT;

  bytebuf_append_be32(&raw, 2);
  raw_pair(&raw, "port", "1");
  raw_pair(&raw, "streamType", "data");
  assert_block_refused(SPDY_SYN_STREAM, &raw, "header name \"streamType\" has upper case");
  bytebuf_consume(&raw, raw.len);

  bytebuf_append_be32(&raw, 3);
  raw_pair(&raw, "port", "1");
  raw_pair(&raw, "requestid", "1");
  raw_pair(&raw, "port", "2");
  assert_block_refused(SPDY_SYN_REPLY, &raw, "header \"port\" appears twice");
  bytebuf_consume(&raw, raw.len);

  bytebuf_append_be32(&raw, 1);
  raw_pair(&raw, "", "1");
  assert_block_refused(SPDY_HEADERS, &raw, "empty header name");
  bytebuf_consume(&raw, raw.len);

  bytebuf_append_be32(&raw, 1);
  bytebuf_append_be32(&raw, 3);
  bytebuf_append(&raw, "a\0b", 3);
  bytebuf_append_be32(&raw, 0);
  assert_block_refused(SPDY_SYN_STREAM, &raw, "header name \"a\\x00b\" holds a NUL");
  bytebuf_free(&raw);
}

static void
test_bad_header_blocks(void **state)
{
  struct bytebuf raw = BYTEBUF_INIT;

  /* Nothing at all: no count. */
  assert_block_refused(SPDY_SYN_STREAM, &raw, "header block too short");

  bytebuf_append_be32(&raw, 2);
  raw_pair(&raw, "port", "1");
  assert_block_refused(SPDY_SYN_STREAM, &raw, "truncated in pair 1");
  bytebuf_consume(&raw, raw.len);

  bytebuf_append_be32(&raw, 1);
  bytebuf_append_be32(&raw, 100);
  bytebuf_append(&raw, "port", 4);
  assert_block_refused(SPDY_SYN_STREAM, &raw, "truncated in pair 0");
  bytebuf_consume(&raw, raw.len);

  bytebuf_append_be32(&raw, 1);
  bytebuf_append_be32(&raw, 4);
  bytebuf_append(&raw, "port", 4);
  bytebuf_append_be32(&raw, 0xffffffff);
  bytebuf_append(&raw, "80", 2);
  assert_block_refused(SPDY_SYN_STREAM, &raw, "truncated in pair 0");
  bytebuf_consume(&raw, raw.len);

  bytebuf_append_be32(&raw, 1);
  raw_pair(&raw, "port", "1");
  bytebuf_append(&raw, "junk", 4);
  assert_block_refused(SPDY_SYN_STREAM, &raw, "4 bytes after the header block's last pair");
  bytebuf_consume(&raw, raw.len);

  bytebuf_append_be32(&raw, 0xffffffff);
  assert_block_refused(SPDY_SYN_STREAM, &raw, "4294967295 pairs");
  bytebuf_free(&raw);
}

/* SPDY_MAX_HEADERS pairs pass, one more does not. */
static void
test_header_count_limit(void **state)
{
  struct spdy_codec *codec = spdy_codec_new();
  struct bytebuf raw = BYTEBUF_INIT;
  struct bytebuf in = BYTEBUF_INIT;
  struct spdy_frame frame;
  struct error err = ERROR_INIT;
  struct client c;

  client_init(&c);
  bytebuf_append_be32(&raw, SPDY_MAX_HEADERS);
  for (int i = 0; i < SPDY_MAX_HEADERS; i++)
    {
      cleanup_free char *name = xasprintf("h%d", i);
      raw_pair(&raw, name, "v");
    }
  header_frame(&in, &c, SPDY_SYN_STREAM, 1, &raw);
  assert_int_equal(parse(codec, &in, &frame, &err), (ssize_t)in.len);
  assert_int_equal(frame.n_headers, SPDY_MAX_HEADERS);
  assert_string_equal(spdy_frame_header(&frame, "h63"), "v");
  spdy_frame_clear(&frame);
  client_end(&c);
  spdy_codec_free(codec);

  raw.data[raw.start + 3] = SPDY_MAX_HEADERS + 1;
  raw_pair(&raw, "one-more", "v");
  assert_block_refused(SPDY_SYN_STREAM, &raw, "65 pairs (at most 64)");
  bytebuf_free(&raw);
  bytebuf_free(&in);
}

/* A block that inflates to exactly SPDY_MAX_HEADER_BLOCK bytes passes;
 * one byte more does not. */
static void
test_header_block_size_limit(void **state)
{
  size_t value_len = SPDY_MAX_HEADER_BLOCK - 4 - 4 - 1 - 4;
  cleanup_free char *value = xmalloc(value_len + 2);
  struct spdy_codec *codec = spdy_codec_new();
  struct bytebuf raw = BYTEBUF_INIT;
  struct bytebuf in = BYTEBUF_INIT;
  struct spdy_frame frame;
  struct error err = ERROR_INIT;
  struct client c;

  memset(value, 'v', value_len + 1);
  value[value_len] = '\0';
  bytebuf_append_be32(&raw, 1);
  raw_pair(&raw, "x", value);
  assert_int_equal(raw.len, SPDY_MAX_HEADER_BLOCK);
  client_init(&c);
  header_frame(&in, &c, SPDY_SYN_STREAM, 1, &raw);
  assert_int_equal(parse(codec, &in, &frame, &err), (ssize_t)in.len);
  assert_int_equal(frame.headers[0].value_len, value_len);
  spdy_frame_clear(&frame);
  client_end(&c);
  spdy_codec_free(codec);

  bytebuf_consume(&raw, raw.len);
  value[value_len] = 'v';
  value[value_len + 1] = '\0';
  bytebuf_append_be32(&raw, 1);
  raw_pair(&raw, "x", value);
  assert_block_refused(SPDY_SYN_STREAM, &raw, "inflates to over 65536 bytes");
  bytebuf_free(&raw);
  bytebuf_free(&in);
}

/* 16 MiB of one byte compresses to a few KiB: it must fail once it passes
 * the limit, never inflating further. */
static void
test_zip_bomb(void **state)
{
  size_t bomb_len = 16 << 20;
  cleanup_free char *value = xmalloc(bomb_len + 1);
  struct bytebuf raw = BYTEBUF_INIT;
  struct bytebuf in = BYTEBUF_INIT;
  struct client c;

  memset(value, 'a', bomb_len);
  value[bomb_len] = '\0';
  bytebuf_append_be32(&raw, 1);
  raw_pair(&raw, "bomb", value);
  client_init(&c);
  header_frame(&in, &c, SPDY_SYN_STREAM, 1, &raw);
  assert_true(in.len < SPDY_MAX_CONTROL_LEN);
  assert_refused(&in, "inflates to over");
  client_end(&c);
  bytebuf_free(&raw);
  bytebuf_free(&in);
}

static void
test_garbage_header_blocks(void **state)
{
  struct bytebuf in = BYTEBUF_INIT;
  static const uint8_t wrong_dictionary[] = { 0x78, 0xbb, 0x01, 0x02, 0x03, 0x04, 0x00 };
  struct bytebuf raw = BYTEBUF_INIT;
  struct client c;

  control_header(&in, SPDY_SYN_STREAM, 0, 10 + 16);
  bytebuf_append(&in, (uint8_t[]){ 0, 0, 0, 1, 0, 0, 0, 0, 0, 0 }, 10);
  bytebuf_append(&in, "this is not zlib", 16);
  assert_refused(&in, "SPDY SYN_STREAM: header block does not inflate");
  bytebuf_consume(&in, in.len);

  control_header(&in, SPDY_SYN_REPLY, 0, 4 + sizeof wrong_dictionary);
  bytebuf_append_be32(&in, 1);
  bytebuf_append(&in, wrong_dictionary, sizeof wrong_dictionary);
  assert_refused(&in, "unknown dictionary");
  bytebuf_consume(&in, in.len);

  /* A client that ends its compression stream. */
  bytebuf_append_be32(&raw, 0);
  client_init(&c);
  {
    struct bytebuf block = BYTEBUF_INIT;
    client_compress(&c, &raw, Z_FINISH, &block);
    control_header(&in, SPDY_HEADERS, 0, (uint32_t)(4 + block.len));
    bytebuf_append_be32(&in, 1);
    bytebuf_append(&in, bytebuf_head(&block), block.len);
    bytebuf_free(&block);
  }
  assert_refused(&in, "ends the compression stream");
  client_end(&c);
  bytebuf_free(&raw);
  bytebuf_free(&in);
}

/* Once a header block has failed, the connection is over: the error
 * says which frame, and clearing the frame again is harmless. */
static void
test_error_after_good_frames(void **state)
{
  struct spdy_codec *client = spdy_codec_new();
  struct spdy_codec *server = spdy_codec_new();
  struct bytebuf in = BYTEBUF_INIT;
  struct spdy_frame frame;
  struct error err = ERROR_INIT;
  ssize_t n;

  assert_int_equal(spdy_write_syn_stream(client, &in, 1, 0, 0, exec_headers, 3, &err), 0);
  assert_int_equal(n = parse(server, &in, &frame, &err), (ssize_t)in.len);
  spdy_frame_clear(&frame);
  bytebuf_consume(&in, (size_t)n);
  control_header(&in, SPDY_HEADERS, 0, 8);
  bytebuf_append_be32(&in, 1);
  bytebuf_append(&in, "\xde\xad\xbe\xef", 4);
  assert_protocol_error(server, &in, "SPDY HEADERS: header block does not inflate");
  spdy_frame_clear(&frame);
  bytebuf_free(&in);
  spdy_codec_free(client);
  spdy_codec_free(server);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_dictionary_adler32),
    cmocka_unit_test(test_syn_stream_round_trip),
    cmocka_unit_test(test_many_blocks_over_one_context),
    cmocka_unit_test(test_syn_reply_with_headers_round_trip),
    cmocka_unit_test(test_frames_from_go_client),
    cmocka_unit_test(test_hand_made_zlib_stream),
    cmocka_unit_test(test_writers_bytes),
    cmocka_unit_test(test_simple_control_frames_parse),
    cmocka_unit_test(test_headers_frame_parses),
    cmocka_unit_test(test_data_frames),
    cmocka_unit_test(test_partial_input),
    cmocka_unit_test(test_unknown_control_types),
    cmocka_unit_test(test_bad_version_and_size),
    cmocka_unit_test(test_bad_lengths),
    cmocka_unit_test(test_stream_id_zero),
    cmocka_unit_test(test_bad_header_names),
    cmocka_unit_test(test_bad_header_blocks),
    cmocka_unit_test(test_header_count_limit),
    cmocka_unit_test(test_header_block_size_limit),
    cmocka_unit_test(test_zip_bomb),
    cmocka_unit_test(test_garbage_header_blocks),
    cmocka_unit_test(test_error_after_good_frames),
  };
  return cmocka_run_group_tests_name("spdy", tests, NULL, NULL);
}
