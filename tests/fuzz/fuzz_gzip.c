/* libFuzzer harness for image/gzip: the ISA-L decoder against zlib's.
 *
 *   make build/fuzz/fuzz_gzip && build/fuzz/fuzz_gzip -max_total_time=60 corpus/
 *
 * The first byte picks the piece sizes (input bytes per call, output bytes
 * per call); the rest is the stream.  Both decoders must give the same
 * verdict (a valid stream of whole members, or an error) and the same
 * bytes.  Start from a corpus of gzip files (several members, FEXTRA,
 * FNAME, FCOMMENT, FHCRC) to get past the header quickly. */
#include "common/util.h"
#include "image/gzip.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUTPUT_MAX (4 * 1024 * 1024)

static const size_t in_steps[] = { 1, 2, 5, 13, 64, 4096, 65536, SIZE_MAX };
static const size_t out_steps[] = { 1, 3, 100, 32768, 1 << 20, OUTPUT_MAX };

struct result
{
  int ret;
  unsigned char *out;
  size_t len;
};

/* Decodes at most OUTPUT_MAX bytes (a tiny bomb would only slow the
 * fuzzer down): past that both verdicts count as "too big". */
static void
decode(enum gzip_decoder_kind kind, const uint8_t *in, size_t in_len, size_t in_step,
       size_t out_step, struct result *r)
{
  struct error err = ERROR_INIT;
  struct gzip_decoder *d = gzip_decoder_new(kind, &err);
  size_t pos = 0;

  if (d == NULL)
    abort();
  r->out = xmalloc(OUTPUT_MAX);
  r->len = 0;
  r->ret = 0;
  for (;;)
    {
      size_t n = in_len - pos < in_step ? in_len - pos : in_step;
      size_t room = OUTPUT_MAX - r->len < out_step ? OUTPUT_MAX - r->len : out_step;
      size_t consumed, produced;

      if (room == 0)
        {
          r->ret = 1;
          break;
        }
      if (gzip_decoder_run(d, in + pos, n, &consumed, r->out + r->len, room, &produced, &err) < 0)
        {
          r->ret = -1;
          break;
        }
      pos += consumed;
      r->len += produced;
      if (produced == 0 && consumed == 0)
        {
          if (pos != in_len)
            {
              fprintf(stderr, "fuzz_gzip: %s is stuck at %zu of %zu\n", gzip_decoder_name(d), pos,
                      in_len);
              abort();
            }
          break;
        }
    }
  if (r->ret == 0 && !gzip_decoder_at_member_end(d))
    r->ret = -1;
  error_clear(&err);
  gzip_decoder_free(d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct result isal, zlib;
  size_t in_step, out_step;

  if (size < 1)
    return 0;
  in_step = in_steps[data[0] % (sizeof in_steps / sizeof *in_steps)];
  out_step = out_steps[(data[0] >> 3) % (sizeof out_steps / sizeof *out_steps)];
  decode(GZIP_DECODER_ISAL, data + 1, size - 1, in_step, out_step, &isal);
  decode(GZIP_DECODER_ZLIB, data + 1, size - 1, in_step, out_step, &zlib);
  if (isal.ret != zlib.ret && isal.ret != 1 && zlib.ret != 1)
    {
      fprintf(stderr, "fuzz_gzip: isa-l says %d, zlib %d\n", isal.ret, zlib.ret);
      abort();
    }
  if (isal.ret == 0 && zlib.ret == 0
      && (isal.len != zlib.len || memcmp(isal.out, zlib.out, isal.len) != 0))
    {
      fprintf(stderr, "fuzz_gzip: the decoders disagree on the bytes\n");
      abort();
    }
  free(isal.out);
  free(zlib.out);
  return 0;
}
