/* Unit tests of image/gzip: fixture gzip streams made here with zlib's
 * deflate (one member, several, members with every optional header field)
 * and damaged copies of them (truncated anywhere, bad CRC-32 or length,
 * bad header checksum, garbage or zeros after a member, a flipped bit in
 * the data, bad magic, an unknown method) are decoded by the ISA-L and the
 * zlib decoders, fed in pieces of many sizes into output buffers of many
 * sizes: both must give the same verdict and the same bytes, and a valid
 * stream must give its original content. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/error.h"
#include "common/util.h"
#include "image/gzip.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct bytes
{
  unsigned char *data;
  size_t len;
};

static void
bytes_append(struct bytes *b, const void *data, size_t len)
{
  b->data = xrealloc(b->data, b->len + len + 1);
  memcpy(b->data + b->len, data, len);
  b->len += len;
}

static void
bytes_free(struct bytes *b)
{
  free(b->data);
  b->data = NULL;
  b->len = 0;
}

/* Text with long repeats, then bytes no compressor can shrink (stored
 * blocks), so both kinds of deflate block appear. */
static struct bytes
sample(size_t len, unsigned seed)
{
  struct bytes b = { xmalloc(len + 1), len };
  uint32_t x = seed * 2654435761u + 1;

  for (size_t i = 0; i < len; i++)
    {
      x = x * 1103515245u + 12345u;
      if (i < len / 2)
        b.data[i] = "crid layer text, "[(i / 3 + (x >> 28)) % 17];
      else
        b.data[i] = x >> 16;
    }
  return b;
}

/* One gzip member of content; with header set, its optional fields. */
static void
gzip_member(struct bytes *out, const struct bytes *content, gz_header *header, int level)
{
  z_stream z = { 0 };
  size_t cap;
  unsigned char *buffer;

  assert_int_equal(deflateInit2(&z, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
                   Z_OK);
  if (header)
    assert_int_equal(deflateSetHeader(&z, header), Z_OK);
  cap = deflateBound(&z, content->len) + 1024;
  buffer = xmalloc(cap);
  z.next_in = content->data;
  z.avail_in = content->len;
  z.next_out = buffer;
  z.avail_out = cap;
  assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
  bytes_append(out, buffer, z.total_out);
  deflateEnd(&z);
  free(buffer);
}

/* Decodes all of in with the decoder kind, in_step input bytes and
 * out_step output bytes at a time; -1 when the decoder refuses it or it
 * ends inside a member. */
static int
decode(enum gzip_decoder_kind kind, const struct bytes *in, size_t in_step, size_t out_step,
       struct bytes *out, char **why)
{
  struct error err = ERROR_INIT;
  struct gzip_decoder *d = gzip_decoder_new(kind, &err);
  unsigned char *buffer = xmalloc(out_step);
  size_t pos = 0;
  int ret = 0;

  assert_non_null(d);
  for (;;)
    {
      size_t n = in->len - pos < in_step ? in->len - pos : in_step;
      size_t consumed, produced;

      if (gzip_decoder_run(d, in->data + pos, n, &consumed, buffer, out_step, &produced, &err) < 0)
        {
          ret = -1;
          break;
        }
      pos += consumed;
      bytes_append(out, buffer, produced);
      if (produced == 0 && consumed == 0 && pos == in->len)
        break;
      /* a decoder that takes nothing and gives nothing is stuck */
      assert_true(produced > 0 || consumed > 0 || n == 0);
    }
  if (ret == 0 && !gzip_decoder_at_member_end(d))
    ret = error_set(&err, EINVAL, "gzip: unexpected end of data");
  *why = ret < 0 ? xstrdup(error_message(&err)) : NULL;
  error_clear(&err);
  gzip_decoder_free(d);
  free(buffer);
  return ret;
}

static const size_t in_steps[] = { 1, 3, 10, 4096, 1 << 30 };
static const size_t out_steps[] = { 1, 7, 65536, 1 << 20 };

/* Both decoders, every piece size: the same verdict and bytes; expected
 * (when not NULL) is what a valid stream holds. */
static void
check_agree(const char *what, const struct bytes *in, const struct bytes *expected)
{
  for (size_t i = 0; i < sizeof in_steps / sizeof *in_steps; i++)
    for (size_t o = 0; o < sizeof out_steps / sizeof *out_steps; o++)
      {
        struct bytes by_isal = { 0 }, by_zlib = { 0 };
        char *why_isal = NULL, *why_zlib = NULL;
        int isal, zlib;

        /* one byte in and out over a big stream proves nothing more */
        if (in_steps[i] * out_steps[o] == 1 && in->len > 100000)
          continue;
        isal = decode(GZIP_DECODER_ISAL, in, in_steps[i], out_steps[o], &by_isal, &why_isal);
        zlib = decode(GZIP_DECODER_ZLIB, in, in_steps[i], out_steps[o], &by_zlib, &why_zlib);
        if (isal != zlib || (expected && isal < 0))
          fail_msg("%s (in %zu, out %zu): isa-l %s, zlib %s", what, in_steps[i], out_steps[o],
                   why_isal ? why_isal : "ok", why_zlib ? why_zlib : "ok");
        if (isal == 0)
          {
            assert_int_equal(by_isal.len, by_zlib.len);
            assert_memory_equal(by_isal.data, by_zlib.data, by_isal.len);
            if (expected)
              {
                assert_int_equal(by_isal.len, expected->len);
                assert_memory_equal(by_isal.data, expected->data, expected->len);
              }
          }
        else if (expected == NULL && (i == 0 || o == 0) && strstr(what, "truncated") == NULL)
          /* the zlib decoder names what it found */
          assert_true(strncmp(why_zlib, "gzip: ", 6) == 0);
        bytes_free(&by_isal);
        bytes_free(&by_zlib);
        free(why_isal);
        free(why_zlib);
      }
}

static void
skip_without_isal(void)
{
  struct error err = ERROR_INIT;
  struct gzip_decoder *d = gzip_decoder_new(GZIP_DECODER_ISAL, &err);

  if (d == NULL)
    {
      assert_int_equal(err.code, ENOSYS);
      error_clear(&err);
      skip();
    }
  gzip_decoder_free(d);
}

static void
test_valid_streams(void **state)
{
  struct bytes big = sample(600000, 1), small = sample(5000, 2);
  struct bytes empty = { (unsigned char *)xstrdup(""), 0 };
  struct bytes one = { 0 }, members = { 0 }, expected = { 0 }, stored = { 0 }, fields = { 0 };
  unsigned char extra[] = "XYZ";
  gz_header header = {
    .text = 1,
    .time = 1700000000,
    .os = 3,
    .extra = extra,
    .extra_len = 3,
    .name = (unsigned char *)"layer.tar",
    .comment = (unsigned char *)"a comment",
    .hcrc = 1,
  };

  skip_without_isal();
  gzip_member(&one, &big, NULL, 6);
  check_agree("one member", &one, &big);

  /* pigz and cat a.gz b.gz: several members, one of them empty */
  gzip_member(&members, &small, NULL, 9);
  gzip_member(&members, &empty, NULL, 6);
  gzip_member(&members, &big, NULL, 1);
  bytes_append(&expected, small.data, small.len);
  bytes_append(&expected, big.data, big.len);
  check_agree("three members", &members, &expected);

  gzip_member(&stored, &small, NULL, 0);
  check_agree("stored blocks", &stored, &small);

  gzip_member(&fields, &small, &header, 6);
  gzip_member(&fields, &small, &header, 6);
  bytes_free(&expected);
  bytes_append(&expected, small.data, small.len);
  bytes_append(&expected, small.data, small.len);
  check_agree("name, comment, extra field and header checksum", &fields, &expected);

  bytes_free(&one);
  bytes_free(&members);
  bytes_free(&expected);
  bytes_free(&stored);
  bytes_free(&fields);
  bytes_free(&big);
  bytes_free(&small);
  bytes_free(&empty);
}

/* A copy of good with byte at (from the start, or from the end when
 * negative) xor-ed with mask. */
static struct bytes
damaged(const struct bytes *good, long at, unsigned char mask)
{
  struct bytes b = { 0 };

  bytes_append(&b, good->data, good->len);
  b.data[at >= 0 ? (size_t)at : good->len + at] ^= mask;
  return b;
}

static void
check_refused(const char *what, struct bytes b)
{
  check_agree(what, &b, NULL);
  bytes_free(&b);
}

static void
test_damaged_streams(void **state)
{
  struct bytes content = sample(70000, 3), good = { 0 }, two = { 0 }, with_hcrc = { 0 };
  gz_header header = { .name = (unsigned char *)"n", .hcrc = 1, .os = 3 };
  const size_t cuts[] = { 1, 2, 9, 10, 11, 100, 0 /* -8 */, 0 /* -1 */ };

  skip_without_isal();
  gzip_member(&good, &content, NULL, 6);
  gzip_member(&with_hcrc, &content, &header, 6);

  for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++)
    {
      struct bytes b = { 0 };
      size_t len = i == 6 ? good.len - 8 : i == 7 ? good.len - 1 : cuts[i];
      char what[64];

      bytes_append(&b, good.data, len);
      snprintf(what, sizeof what, "truncated after %zu bytes", len);
      check_refused(what, b);
    }
  check_refused("bad CRC-32", damaged(&good, -8, 0x01));
  check_refused("bad length", damaged(&good, -4, 0x80));
  check_refused("bad magic", damaged(&good, 0, 0x01));
  check_refused("unknown method", damaged(&good, 2, 0x01));
  check_refused("flipped bit in the data", damaged(&good, good.len / 2, 0x10));
  check_refused("flipped bit in the first block header", damaged(&good, 10, 0x04));
  check_refused("bad header checksum", damaged(&with_hcrc, 12, 0x01));

  /* what follows a member must be another member */
  {
    struct bytes b = { 0 };
    bytes_append(&b, good.data, good.len);
    bytes_append(&b, "garbage after the member", 24);
    check_refused("garbage after a member", b);
  }
  {
    struct bytes b = { 0 };
    static const unsigned char zeros[512];
    bytes_append(&b, good.data, good.len);
    bytes_append(&b, zeros, sizeof zeros);
    check_refused("zeros after a member", b);
  }
  {
    struct bytes b = { 0 };
    bytes_append(&b, good.data, good.len);
    bytes_append(&b, good.data, 5);
    check_refused("a second member truncated in its header", b);
  }
  gzip_member(&two, &content, NULL, 6);
  gzip_member(&two, &content, NULL, 6);
  check_refused("second member with bad CRC-32", damaged(&two, -8, 0x40));
  check_refused("second member with bad magic", damaged(&two, good.len + 1, 0x02));

  bytes_free(&good);
  bytes_free(&two);
  bytes_free(&with_hcrc);
  bytes_free(&content);
}

static void
test_fastest_is_isal_when_built_with_it(void **state)
{
  struct error err = ERROR_INIT;
  struct gzip_decoder *d = gzip_decoder_new(GZIP_DECODER_FASTEST, &err);

  assert_non_null(d);
#ifdef HAVE_ISAL
  assert_string_equal(gzip_decoder_name(d), "isa-l");
#else
  assert_string_equal(gzip_decoder_name(d), "zlib");
#endif
  gzip_decoder_free(d);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_valid_streams),
    cmocka_unit_test(test_damaged_streams),
    cmocka_unit_test(test_fastest_is_isal_when_built_with_it),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
