/* image/gzip: decoding gzip streams (RFC 1952) piece by piece, for layers.
 *
 * Two decoders behave the same: ISA-L's inflate, several times faster than
 * zlib's, when crid was built with libisal (the default), and zlib's.  A
 * stream is one or more members (pigz and `cat a.gz b.gz` make several;
 * gzip -d and Go's reader decode them all); each member's header checksum
 * (when present), CRC-32 and length are checked; anything after a member
 * that is not another member is an error, and so is a stream that ends
 * inside a member. */
#ifndef CRID_IMAGE_GZIP_H
#define CRID_IMAGE_GZIP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

enum gzip_decoder_kind
{
  GZIP_DECODER_FASTEST, /* ISA-L when built with it, else zlib */
  GZIP_DECODER_ZLIB,
  GZIP_DECODER_ISAL, /* ENOSYS when built without it */
};

struct gzip_decoder;

struct gzip_decoder *gzip_decoder_new(enum gzip_decoder_kind kind, struct error *err);
void gzip_decoder_free(struct gzip_decoder *d);
/* "isa-l" or "zlib" */
const char *gzip_decoder_name(const struct gzip_decoder *d);

/* Decodes from in[0..in_len) into out[0..out_size): *consumed input bytes
 * were used (all of them, unless out filled up), *produced bytes written.
 * When *produced == out_size more output may be ready without more input.
 * Corrupt data: EINVAL, with what the decoder found. */
int gzip_decoder_run(struct gzip_decoder *d, const unsigned char *in, size_t in_len,
                     size_t *consumed, unsigned char *out, size_t out_size, size_t *produced,
                     struct error *err);

/* Whether the input so far ends exactly after a member: if the stream ends
 * here it is complete, anywhere else it was truncated. */
bool gzip_decoder_at_member_end(const struct gzip_decoder *d);

#endif
