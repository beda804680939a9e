/* image/gzip: one member after another, with ISA-L or zlib.
 *
 * zlib parses each member's header and checks its trailer itself; for
 * ISA-L crid parses the header (see header_parser) and ISA-L inflates and
 * checks the trailer.  What is ours either way is the walk from member to
 * member: after a member ends, the next input byte starts a new one, and a
 * stream may only end between members.  The CRC-32 is checked although the
 * layer's digests already vouch for every byte: a gzip stream whose trailer
 * lies is refused by gzip -d and by Go's reader (containerd), and so by
 * crid, with either library. */
#include "image/gzip.h"
#include "common/util.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#ifdef HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

#ifdef HAVE_ISAL
/* RFC 1952 header flags */
#define FLAG_HCRC 0x02
#define FLAG_EXTRA 0x04
#define FLAG_NAME 0x08
#define FLAG_COMMENT 0x10
#define FLAG_RESERVED 0xe0
#define FIXED_HEADER_SIZE 10

/* Where the header parser is.  ISA-L checks the header checksum wrongly
 * when the header arrives in pieces (2.30: "incorrect checksum" for valid
 * streams), so crid parses headers itself, with zlib's checks and
 * messages, and hands ISA-L only the deflate data and the trailer. */
enum header_part
{
  HEADER_FIXED,
  HEADER_EXTRA_LENGTH,
  HEADER_EXTRA,
  HEADER_NAME,
  HEADER_COMMENT,
  HEADER_CRC,
  HEADER_DONE,
};

struct header_parser
{
  enum header_part part;
  unsigned char fixed[FIXED_HEADER_SIZE];
  size_t have;      /* bytes of the current fixed-size part */
  size_t remaining; /* of the extra field */
  unsigned char flags;
  uLong crc; /* of the header so far */
};

#endif

struct gzip_decoder
{
  enum gzip_decoder_kind kind;
  /* The last member is complete and no byte of another one came yet. */
  bool member_end;
  z_stream zlib;
  bool zlib_ready;
#ifdef HAVE_ISAL
  struct inflate_state *isal;
  struct header_parser header;
#endif
};

/* Both libraries count in 32-bit fields. */
static unsigned
clamp_uint(size_t n)
{
  return n > UINT_MAX ? UINT_MAX : (unsigned)n;
}

/* ---- zlib --------------------------------------------------------------- */

static int
zlib_init(struct gzip_decoder *d, struct error *err)
{
  /* 16 + 15: gzip wrapper only, largest window */
  if (inflateInit2(&d->zlib, 16 + MAX_WBITS) != Z_OK)
    return error_set(err, ENOMEM, "gzip: cannot initialise zlib");
  d->zlib_ready = true;
  return 0;
}

/* One inflate call on in[*in_used..), out[*out_used..). */
static int
zlib_step(struct gzip_decoder *d, const unsigned char *in, size_t in_len, size_t *in_used,
          unsigned char *out, size_t out_size, size_t *out_used, struct error *err)
{
  z_stream *z = &d->zlib;
  int r;

  z->next_in = (unsigned char *)in + *in_used;
  z->avail_in = clamp_uint(in_len - *in_used);
  z->next_out = out + *out_used;
  z->avail_out = clamp_uint(out_size - *out_used);
  r = inflate(z, Z_NO_FLUSH);
  *in_used = z->next_in - in;
  *out_used = z->next_out - out;
  if (r == Z_STREAM_END)
    d->member_end = true;
  else if (r != Z_OK && r != Z_BUF_ERROR) /* Z_BUF_ERROR: no progress possible */
    return error_set(err, EINVAL, "gzip: %s", z->msg ? z->msg : "corrupt data");
  return 0;
}

/* ---- ISA-L -------------------------------------------------------------- */

#ifdef HAVE_ISAL
/* The next part the flags ask for after part. */
static enum header_part
header_next_part(const struct header_parser *h, enum header_part part)
{
  switch (part)
    {
    case HEADER_FIXED:
      if (h->flags & FLAG_EXTRA)
        return HEADER_EXTRA_LENGTH;
      /* fall through */
    case HEADER_EXTRA_LENGTH:
    case HEADER_EXTRA:
      if (h->flags & FLAG_NAME)
        return HEADER_NAME;
      /* fall through */
    case HEADER_NAME:
      if (h->flags & FLAG_COMMENT)
        return HEADER_COMMENT;
      /* fall through */
    case HEADER_COMMENT:
      if (h->flags & FLAG_HCRC)
        return HEADER_CRC;
      /* fall through */
    default:
      return HEADER_DONE;
    }
}

static int
header_check_fixed(struct header_parser *h, struct error *err)
{
  if (h->fixed[0] != 0x1f || h->fixed[1] != 0x8b)
    return error_set(err, EINVAL, "gzip: incorrect header check");
  if (h->fixed[2] != Z_DEFLATED)
    return error_set(err, EINVAL, "gzip: unknown compression method");
  h->flags = h->fixed[3];
  if (h->flags & FLAG_RESERVED)
    return error_set(err, EINVAL, "gzip: unknown header flags set");
  return 0;
}

/* Takes header bytes from in; *used of them belong to the header (all
 * unless it is complete: then h->part is HEADER_DONE). */
static int
header_parse(struct header_parser *h, const unsigned char *in, size_t len, size_t *used,
             struct error *err)
{
  size_t i = 0;

  while (i < len && h->part != HEADER_DONE)
    {
      const unsigned char *start = in + i;
      size_t want = 0;
      bool part_done = false;

      switch (h->part)
        {
        case HEADER_FIXED:
        case HEADER_EXTRA_LENGTH:
        case HEADER_CRC:
          want = h->part == HEADER_FIXED ? FIXED_HEADER_SIZE : 2;
          while (i < len && h->have < want)
            h->fixed[h->have++] = in[i++];
          part_done = h->have == want;
          break;
        case HEADER_EXTRA:
          want = len - i < h->remaining ? len - i : h->remaining;
          i += want;
          h->remaining -= want;
          part_done = h->remaining == 0;
          break;
        case HEADER_NAME:
        case HEADER_COMMENT:
          while (i < len && !part_done)
            part_done = in[i++] == 0;
          break;
        case HEADER_DONE:
          break;
        }
      if (h->part == HEADER_CRC)
        {
          if (part_done && (unsigned)(h->fixed[0] | h->fixed[1] << 8) != (h->crc & 0xffff))
            return error_set(err, EINVAL, "gzip: header crc mismatch");
        }
      else
        h->crc = crc32(h->crc, start, in + i - start);
      if (!part_done)
        continue;
      if (h->part == HEADER_FIXED && header_check_fixed(h, err) < 0)
        return -1;
      if (h->part == HEADER_EXTRA_LENGTH)
        h->remaining = h->fixed[0] | h->fixed[1] << 8;
      h->part = h->part == HEADER_EXTRA_LENGTH && h->remaining > 0 ? HEADER_EXTRA
                                                                   : header_next_part(h, h->part);
      h->have = 0;
    }
  *used = i;
  return 0;
}

static const char *
isal_error_name(int r)
{
  switch (r)
    {
    case ISAL_INVALID_BLOCK:
      return "invalid block type";
    case ISAL_INVALID_SYMBOL:
      return "invalid code";
    case ISAL_INVALID_LOOKBACK:
      return "invalid distance too far back";
    case ISAL_INCORRECT_CHECKSUM:
      return "incorrect data check";
    default:
      return "corrupt data";
    }
}

/* Ready for the header of the next member. */
static void
isal_start_member(struct gzip_decoder *d)
{
  memset(&d->header, 0, sizeof d->header);
  d->header.crc = crc32(0, NULL, 0);
}

/* The header is parsed: ISA-L takes the deflate data and the trailer. */
static void
isal_start_body(struct gzip_decoder *d)
{
  isal_inflate_reset(d->isal);
  d->isal->crc_flag = ISAL_GZIP_NO_HDR_VER;
}

static int
isal_init(struct gzip_decoder *d, struct error *err)
{
  d->isal = xcalloc(1, sizeof *d->isal);
  isal_inflate_init(d->isal);
  isal_start_member(d);
  return 0;
}

/* The header, or one inflate call, on in[*in_used..), out[*out_used..). */
static int
isal_step(struct gzip_decoder *d, const unsigned char *in, size_t in_len, size_t *in_used,
          unsigned char *out, size_t out_size, size_t *out_used, struct error *err)
{
  struct inflate_state *st = d->isal;
  int r;

  if (d->header.part != HEADER_DONE)
    {
      size_t used = 0;

      if (header_parse(&d->header, in + *in_used, in_len - *in_used, &used, err) < 0)
        return -1;
      *in_used += used;
      if (d->header.part != HEADER_DONE)
        return 0; /* all input was header */
      isal_start_body(d);
    }
  st->next_in = (uint8_t *)in + *in_used;
  st->avail_in = clamp_uint(in_len - *in_used);
  st->next_out = out + *out_used;
  st->avail_out = clamp_uint(out_size - *out_used);
  r = isal_inflate(st);
  *in_used = st->next_in - in;
  *out_used = st->next_out - out;
  if (r < 0)
    return error_set(err, EINVAL, "gzip: %s", isal_error_name(r));
  /* At the end of a member ISA-L gives back the input it read ahead, so
   * the next member starts at next_in. */
  if (st->block_state == ISAL_BLOCK_FINISH)
    d->member_end = true;
  return 0;
}
#endif

/* ---- the decoder -------------------------------------------------------- */

struct gzip_decoder *
gzip_decoder_new(enum gzip_decoder_kind kind, struct error *err)
{
  struct gzip_decoder *d;
  int ret;

#ifdef HAVE_ISAL
  if (kind == GZIP_DECODER_FASTEST)
    kind = GZIP_DECODER_ISAL;
#else
  if (kind == GZIP_DECODER_FASTEST)
    kind = GZIP_DECODER_ZLIB;
  if (kind == GZIP_DECODER_ISAL)
    {
      error_set(err, ENOSYS, "gzip: crid was built without ISA-L");
      return NULL;
    }
#endif
  d = xcalloc(1, sizeof *d);
  d->kind = kind;
#ifdef HAVE_ISAL
  if (kind == GZIP_DECODER_ISAL)
    ret = isal_init(d, err);
  else
#endif
    ret = zlib_init(d, err);
  if (ret < 0)
    {
      gzip_decoder_free(d);
      return NULL;
    }
  return d;
}

void
gzip_decoder_free(struct gzip_decoder *d)
{
  if (d == NULL)
    return;
  if (d->zlib_ready)
    inflateEnd(&d->zlib);
#ifdef HAVE_ISAL
  free(d->isal);
#endif
  free(d);
}

const char *
gzip_decoder_name(const struct gzip_decoder *d)
{
  return d->kind == GZIP_DECODER_ISAL ? "isa-l" : "zlib";
}

/* Ready for the next member's header. */
static int
start_member(struct gzip_decoder *d, struct error *err)
{
#ifdef HAVE_ISAL
  if (d->kind == GZIP_DECODER_ISAL)
    {
      isal_start_member(d);
      return 0;
    }
#endif
  if (inflateReset(&d->zlib) != Z_OK)
    return error_set(err, EINVAL, "gzip: cannot reset zlib");
  return 0;
}

static int
step(struct gzip_decoder *d, const unsigned char *in, size_t in_len, size_t *in_used,
     unsigned char *out, size_t out_size, size_t *out_used, struct error *err)
{
#ifdef HAVE_ISAL
  if (d->kind == GZIP_DECODER_ISAL)
    return isal_step(d, in, in_len, in_used, out, out_size, out_used, err);
#endif
  return zlib_step(d, in, in_len, in_used, out, out_size, out_used, err);
}

int
gzip_decoder_run(struct gzip_decoder *d, const unsigned char *in, size_t in_len, size_t *consumed,
                 unsigned char *out, size_t out_size, size_t *produced, struct error *err)
{
  size_t in_used = 0, out_used = 0;

  while (out_used < out_size)
    {
      size_t in_before = in_used, out_before = out_used;

      if (d->member_end)
        {
          if (in_used == in_len)
            break;
          if (start_member(d, err) < 0)
            return -1;
          d->member_end = false;
        }
      if (step(d, in, in_len, &in_used, out, out_size, &out_used, err) < 0)
        return -1;
      if (d->member_end)
        continue;
      /* all this input holds is decoded, or nothing moves without more */
      if ((in_used == in_len && out_used < out_size)
          || (in_used == in_before && out_used == out_before))
        break;
    }
  *consumed = in_used;
  *produced = out_used;
  return 0;
}

bool
gzip_decoder_at_member_end(const struct gzip_decoder *d)
{
  return d->member_end;
}
