#include "crid/stream/spdy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* next_in as a pointer to const: the bytes we inflate are the caller's. */
#define ZLIB_CONST
#include <zlib.h>

#include "common/cleanup.h"
#include "common/util.h"

/* The SPDY/3 header compression dictionary (SPDY draft 3, section
 * 2.6.10.1): the names and methods a header block holds most often, each
 * as the block itself writes a string (a 32-bit length, then the bytes),
 * then common values run together.  Its Adler-32, which a peer's zlib
 * header names as DICTID, is 0xe3c6a7c2.  (Kept by hand as length and
 * string side by side: clang-format would put each literal on a line.) */
/* clang-format off */
static const char spdy_dictionary[] =
  "\0\0\0\x07" "options" "\0\0\0\x04" "head" "\0\0\0\x04" "post" "\0\0\0\x03" "put"
  "\0\0\0\x06" "delete" "\0\0\0\x05" "trace" "\0\0\0\x06" "accept" "\0\0\0\x0e" "accept-charset"
  "\0\0\0\x0f" "accept-encoding" "\0\0\0\x0f" "accept-language" "\0\0\0\x0d" "accept-ranges"
  "\0\0\0\x03" "age" "\0\0\0\x05" "allow" "\0\0\0\x0d" "authorization"
  "\0\0\0\x0d" "cache-control" "\0\0\0\x0a" "connection" "\0\0\0\x0c" "content-base"
  "\0\0\0\x10" "content-encoding" "\0\0\0\x10" "content-language" "\0\0\0\x0e" "content-length"
  "\0\0\0\x10" "content-location" "\0\0\0\x0b" "content-md5" "\0\0\0\x0d" "content-range"
  "\0\0\0\x0c" "content-type" "\0\0\0\x04" "date" "\0\0\0\x04" "etag" "\0\0\0\x06" "expect"
  "\0\0\0\x07" "expires" "\0\0\0\x04" "from" "\0\0\0\x04" "host" "\0\0\0\x08" "if-match"
  "\0\0\0\x11" "if-modified-since" "\0\0\0\x0d" "if-none-match" "\0\0\0\x08" "if-range"
  "\0\0\0\x13" "if-unmodified-since" "\0\0\0\x0d" "last-modified" "\0\0\0\x08" "location"
  "\0\0\0\x0c" "max-forwards" "\0\0\0\x06" "pragma" "\0\0\0\x12" "proxy-authenticate"
  "\0\0\0\x13" "proxy-authorization" "\0\0\0\x05" "range" "\0\0\0\x07" "referer"
  "\0\0\0\x0b" "retry-after" "\0\0\0\x06" "server" "\0\0\0\x02" "te" "\0\0\0\x07" "trailer"
  "\0\0\0\x11" "transfer-encoding" "\0\0\0\x07" "upgrade" "\0\0\0\x0a" "user-agent"
  "\0\0\0\x04" "vary" "\0\0\0\x03" "via" "\0\0\0\x07" "warning" "\0\0\0\x10" "www-authenticate"
  "\0\0\0\x06" "method" "\0\0\0\x03" "get" "\0\0\0\x06" "status" "\0\0\0\x06" "200 OK"
  "\0\0\0\x07" "version" "\0\0\0\x08" "HTTP/1.1" "\0\0\0\x03" "url" "\0\0\0\x06" "public"
  "\0\0\0\x0a" "set-cookie" "\0\0\0\x0a" "keep-alive" "\0\0\0\x06" "origin"
  "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
  "203 Non-Authoritative Information"
  "204 No Content"
  "301 Moved Permanently"
  "400 Bad Request"
  "401 Unauthorized"
  "403 Forbidden"
  "404 Not Found"
  "500 Internal Server Error"
  "501 Not Implemented"
  "503 Service Unavailable"
  "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec"
  " 00:00:00"
  " Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
  "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,"
  "text/plain,text/javascript,public"
  "private"
  "max-age="
  "gzip,deflate,sdch"
  "charset=utf-8"
  "charset=iso-8859-1,utf-,*,enq=0.";
/* clang-format on */

/* The dictionary is the array less the literal's closing NUL. */
#define SPDY_DICTIONARY_LEN (sizeof spdy_dictionary - 1)
_Static_assert(SPDY_DICTIONARY_LEN == 1423, "the SPDY/3 dictionary is 1423 bytes");

#define CONTROL_BIT 0x80
#define FRAME_HEADER_LEN 8
#define STREAM_ID_MASK 0x7FFFFFFFu

/* Memory for what crid compresses: its header blocks are a handful of
 * short pairs, so a 2 KiB window (still room for the whole dictionary)
 * and the smallest hash tables do: about 15 KiB a connection instead of
 * zlib's default 270.  A peer's inflater reads any window size. */
#define DEFLATE_WINDOW_BITS 11
#define DEFLATE_MEM_LEVEL 1
/* Room deflate output is taken in. */
#define DEFLATE_CHUNK 256
/* What clients compress with: the full 32 KiB window. */
#define INFLATE_WINDOW_BITS 15

/* The first size of the buffer a header block inflates into; it doubles
 * up to the limit. */
#define INFLATE_FIRST_SIZE 1024

struct spdy_codec
{
  z_stream inflater; /* client to crid */
  z_stream deflater; /* crid to client */
  bool inflater_closed;
};

/* zlib's allocations abort on out-of-memory like every other in crid. */
static voidpf
zlib_alloc(voidpf opaque, uInt items, uInt size)
{
  return xcalloc(items, size);
}

static void
zlib_free(voidpf opaque, voidpf p)
{
  free(p);
}

struct spdy_codec *
spdy_codec_new(void)
{
  struct spdy_codec *codec = xcalloc(1, sizeof *codec);

  codec->inflater.zalloc = codec->deflater.zalloc = zlib_alloc;
  codec->inflater.zfree = codec->deflater.zfree = zlib_free;
  /* With allocation that cannot fail, only a zlib that does not match its
   * header (a broken install) fails here. */
  if (inflateInit2(&codec->inflater, INFLATE_WINDOW_BITS) != Z_OK)
    abort();
  if (deflateInit2(&codec->deflater, Z_DEFAULT_COMPRESSION, Z_DEFLATED, DEFLATE_WINDOW_BITS,
                   DEFLATE_MEM_LEVEL, Z_DEFAULT_STRATEGY)
          != Z_OK
      || deflateSetDictionary(&codec->deflater, (const Bytef *)spdy_dictionary, SPDY_DICTIONARY_LEN)
             != Z_OK)
    abort();
  return codec;
}

void
spdy_codec_free(struct spdy_codec *codec)
{
  if (codec == NULL)
    return;
  if (!codec->inflater_closed)
    inflateEnd(&codec->inflater);
  deflateEnd(&codec->deflater);
  free(codec);
}

void
spdy_codec_close_inflater(struct spdy_codec *codec)
{
  if (!codec->inflater_closed)
    inflateEnd(&codec->inflater);
  codec->inflater_closed = true;
}

static uint32_t
be24(const uint8_t *p)
{
  return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static uint32_t
be32(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const char *
control_name(unsigned type)
{
  switch (type)
    {
    case SPDY_SYN_STREAM:
      return "SYN_STREAM";
    case SPDY_SYN_REPLY:
      return "SYN_REPLY";
    case SPDY_RST_STREAM:
      return "RST_STREAM";
    case SPDY_SETTINGS:
      return "SETTINGS";
    case SPDY_PING:
      return "PING";
    case SPDY_GOAWAY:
      return "GOAWAY";
    case SPDY_HEADERS:
      return "HEADERS";
    case SPDY_WINDOW_UPDATE:
      return "WINDOW_UPDATE";
    default:
      return "control frame";
    }
}

/* Inflates one frame's header block with the connection's inflater.
 * The output buffer grows only as far as SPDY_MAX_HEADER_BLOCK (and a
 * byte to tell "over"), so a small block that inflates to megabytes
 * fails without them ever being held. */
static int
inflate_block(struct spdy_codec *codec, const uint8_t *in, size_t in_len, uint8_t **out,
              size_t *out_len, struct error *err)
{
  z_stream *z = &codec->inflater;
  size_t cap = INFLATE_FIRST_SIZE;
  size_t used = 0;
  cleanup_free uint8_t *buf = NULL;

  if (codec->inflater_closed)
    return error_set(err, EPROTO, "no more header blocks are expected on this connection");
  buf = xmalloc(cap);

  z->next_in = in;
  z->avail_in = (uInt)in_len;
  for (;;)
    {
      int rc;

      z->next_out = buf + used;
      z->avail_out = (uInt)(cap - used);
      rc = inflate(z, Z_SYNC_FLUSH);
      used = cap - z->avail_out;
      if (rc == Z_NEED_DICT)
        {
          /* Fails when the stream names another dictionary. */
          if (inflateSetDictionary(z, (const Bytef *)spdy_dictionary, SPDY_DICTIONARY_LEN) != Z_OK)
            return error_set(err, EPROTO, "header block compressed with an unknown dictionary");
          continue;
        }
      if (rc == Z_STREAM_END)
        /* The stream must serve the whole connection. */
        return error_set(err, EPROTO, "header block ends the compression stream");
      if (rc != Z_OK && rc != Z_BUF_ERROR)
        return error_set(err, EPROTO, "header block does not inflate: %s",
                         z->msg ? z->msg : "zlib error");
      if (z->avail_out > 0)
        break; /* all input taken and all output given */
      if (used > SPDY_MAX_HEADER_BLOCK)
        return error_set(err, EPROTO, "header block inflates to over %d bytes",
                         SPDY_MAX_HEADER_BLOCK);
      cap = cap * 2 > SPDY_MAX_HEADER_BLOCK + 1 ? SPDY_MAX_HEADER_BLOCK + 1 : cap * 2;
      buf = xrealloc(buf, cap);
    }
  if (z->avail_in > 0)
    return error_set(err, EPROTO, "header block does not inflate");
  *out = steal_pointer(&buf);
  *out_len = used;
  return 0;
}

/* A cursor over an inflated header block. */
struct reader
{
  const uint8_t *p;
  size_t left;
};

static bool
read_u32(struct reader *r, uint32_t *v)
{
  if (r->left < 4)
    return false;
  *v = be32(r->p);
  r->p += 4;
  r->left -= 4;
  return true;
}

/* The next len-prefixed string: at most r->left bytes. */
static bool
read_string(struct reader *r, const uint8_t **s, size_t *len)
{
  uint32_t n;

  if (!read_u32(r, &n) || n > r->left)
    return false;
  *s = r->p;
  *len = n;
  r->p += n;
  r->left -= n;
  return true;
}

/* Names are lower case (the spec and spdystream's reader say so) and,
 * handed out NUL-terminated, cannot hold a NUL. */
static int
check_name(const uint8_t *name, size_t len, const struct spdy_frame *frame, struct error *err)
{
  if (len == 0)
    return error_set(err, EPROTO, "empty header name");
  for (size_t i = 0; i < len; i++)
    if (name[i] == '\0' || (name[i] >= 'A' && name[i] <= 'Z'))
      {
        cleanup_free char *shown = quote_untrusted((const char *)name, len, 64);
        return error_set(err, EPROTO, "header name %s %s", shown,
                         name[i] ? "has upper case" : "holds a NUL");
      }
  for (size_t i = 0; i < frame->n_headers; i++)
    if (strlen(frame->headers[i].name) == len && memcmp(frame->headers[i].name, name, len) == 0)
      {
        cleanup_free char *shown = quote_untrusted((const char *)name, len, 64);
        return error_set(err, EPROTO, "header %s appears twice", shown);
      }
  return 0;
}

/* Splits an inflated header block into frame->headers. */
static int
parse_pairs(const uint8_t *block, size_t len, struct spdy_frame *frame, struct error *err)
{
  struct reader r = { block, len };
  uint32_t count;

  if (!read_u32(&r, &count))
    return error_set(err, EPROTO, "header block too short");
  if (count > SPDY_MAX_HEADERS)
    return error_set(err, EPROTO, "header block of %u pairs (at most %d)", count, SPDY_MAX_HEADERS);
  if (count > 0)
    frame->headers = xcalloc(count, sizeof *frame->headers);
  for (uint32_t i = 0; i < count; i++)
    {
      struct spdy_header *h = &frame->headers[i];
      const uint8_t *name, *value;
      size_t name_len, value_len;

      if (!read_string(&r, &name, &name_len) || !read_string(&r, &value, &value_len))
        return error_set(err, EPROTO, "header block truncated in pair %u", i);
      if (check_name(name, name_len, frame, err) < 0)
        return -1;
      h->name = xstrndup((const char *)name, name_len);
      h->value = xmalloc(value_len + 1);
      memcpy(h->value, value, value_len);
      h->value[value_len] = '\0';
      h->value_len = value_len;
      frame->n_headers++;
    }
  if (r.left > 0)
    return error_set(err, EPROTO, "%zu bytes after the header block's last pair", r.left);
  return 0;
}

static int
parse_header_block(struct spdy_codec *codec, const uint8_t *in, size_t len,
                   struct spdy_frame *frame, struct error *err)
{
  cleanup_free uint8_t *block = NULL;
  size_t block_len = 0;

  if (inflate_block(codec, in, len, &block, &block_len, err) < 0)
    return -1;
  return parse_pairs(block, block_len, frame, err);
}

/* The stream id the frame's payload starts with, which must not be 0. */
static int
parse_stream_id(const uint8_t *payload, struct spdy_frame *frame, struct error *err)
{
  frame->stream_id = be32(payload) & STREAM_ID_MASK;
  if (frame->stream_id == 0)
    return error_set(err, EPROTO, "stream id 0");
  return 0;
}

/* SETTINGS: spdystream never sends them and crid keeps none of them, so
 * only the shape is checked. */
static int
check_settings(const uint8_t *payload, uint32_t len, struct error *err)
{
  uint32_t count;

  if (len < 4)
    return error_set(err, EPROTO, "length %u", len);
  count = be32(payload);
  if (count > (len - 4) / 8 || len - 4 != count * 8)
    return error_set(err, EPROTO, "%u entries in length %u", count, len);
  return 0;
}

static int
parse_control_payload(struct spdy_codec *codec, const uint8_t *p, uint32_t len,
                      struct spdy_frame *frame, struct error *err)
{
  switch (frame->type)
    {
    case SPDY_SYN_STREAM:
      if (len < 10)
        return error_set(err, EPROTO, "length %u", len);
      if (parse_stream_id(p, frame, err) < 0)
        return -1;
      frame->associated_id = be32(p + 4) & STREAM_ID_MASK;
      frame->priority = p[8] >> 5;
      return parse_header_block(codec, p + 10, len - 10, frame, err);
    case SPDY_SYN_REPLY:
    case SPDY_HEADERS:
      if (len < 4)
        return error_set(err, EPROTO, "length %u", len);
      if (parse_stream_id(p, frame, err) < 0)
        return -1;
      return parse_header_block(codec, p + 4, len - 4, frame, err);
    case SPDY_RST_STREAM:
      if (len != 8)
        return error_set(err, EPROTO, "length %u", len);
      frame->status = be32(p + 4);
      return parse_stream_id(p, frame, err);
    case SPDY_SETTINGS:
      return check_settings(p, len, err);
    case SPDY_PING:
      if (len != 4)
        return error_set(err, EPROTO, "length %u", len);
      if (frame->flags != 0)
        return error_set(err, EPROTO, "flags 0x%02x", frame->flags);
      frame->ping_id = be32(p);
      return 0;
    case SPDY_GOAWAY:
      if (len != 8)
        return error_set(err, EPROTO, "length %u", len);
      frame->last_good_id = be32(p) & STREAM_ID_MASK;
      frame->status = be32(p + 4);
      return 0;
    case SPDY_WINDOW_UPDATE:
      /* Stream 0 is the session's window in SPDY/3.1. */
      if (len != 8)
        return error_set(err, EPROTO, "length %u", len);
      frame->stream_id = be32(p) & STREAM_ID_MASK;
      frame->delta = be32(p + 4) & STREAM_ID_MASK;
      return 0;
    default:
      /* Unknown (CREDENTIAL, later versions' types): for the caller to
       * skip, with only its type and flags. */
      return 0;
    }
}

static ssize_t
parse_control(struct spdy_codec *codec, const uint8_t *buf, size_t len, struct spdy_frame *frame,
              struct error *err)
{
  unsigned version = (unsigned)(buf[0] & 0x7F) << 8 | buf[1];
  unsigned type = (unsigned)buf[2] << 8 | buf[3];
  uint32_t payload_len = be24(buf + 5);

  if (version != SPDY_VERSION)
    return error_set(err, EPROTO, "SPDY control frame of version %u, not %d", version,
                     SPDY_VERSION);
  /* Before waiting for the payload, so a client cannot make the caller
   * buffer megabytes for it. */
  if (payload_len > SPDY_MAX_CONTROL_LEN)
    return error_set(err, EPROTO, "SPDY %s of %u bytes (at most %d)", control_name(type),
                     payload_len, SPDY_MAX_CONTROL_LEN);
  /* Type 0 would read as DATA. */
  if (type == 0)
    return error_set(err, EPROTO, "SPDY control frame of type 0");
  if (len - FRAME_HEADER_LEN < payload_len)
    return 0;
  frame->type = (enum spdy_frame_type)type;
  frame->flags = buf[4];
  if (parse_control_payload(codec, buf + FRAME_HEADER_LEN, payload_len, frame, err) < 0)
    return error_wrap(err, "SPDY %s", control_name(type));
  return FRAME_HEADER_LEN + (ssize_t)payload_len;
}

static ssize_t
parse_data(const uint8_t *buf, size_t len, struct spdy_frame *frame, struct error *err)
{
  uint32_t payload_len = be24(buf + 5);

  frame->stream_id = be32(buf) & STREAM_ID_MASK;
  if (frame->stream_id == 0)
    return error_set(err, EPROTO, "SPDY DATA for stream id 0");
  if (len - FRAME_HEADER_LEN < payload_len)
    return 0;
  frame->type = SPDY_DATA;
  frame->flags = buf[4];
  frame->data = buf + FRAME_HEADER_LEN;
  frame->data_len = payload_len;
  return FRAME_HEADER_LEN + (ssize_t)payload_len;
}

ssize_t
spdy_parse_frame(struct spdy_codec *codec, const uint8_t *buf, size_t len, struct spdy_frame *frame,
                 struct error *err)
{
  ssize_t n;

  /* Whatever the outcome, the frame is safe to clear. */
  memset(frame, 0, sizeof *frame);
  if (len < FRAME_HEADER_LEN)
    return 0;
  if (buf[0] & CONTROL_BIT)
    n = parse_control(codec, buf, len, frame, err);
  else
    n = parse_data(buf, len, frame, err);
  if (n <= 0)
    spdy_frame_clear(frame);
  return n;
}

void
spdy_frame_clear(struct spdy_frame *frame)
{
  for (size_t i = 0; i < frame->n_headers; i++)
    {
      free(frame->headers[i].name);
      free(frame->headers[i].value);
    }
  free(frame->headers);
  memset(frame, 0, sizeof *frame);
}

const char *
spdy_frame_header(const struct spdy_frame *frame, const char *name)
{
  for (size_t i = 0; i < frame->n_headers; i++)
    if (strcmp(frame->headers[i].name, name) == 0)
      return frame->headers[i].value;
  return NULL;
}

static void
write_control_header(struct bytebuf *out, enum spdy_frame_type type, uint8_t flags, uint32_t len)
{
  bytebuf_append_be16(out, 0x8000 | SPDY_VERSION);
  bytebuf_append_be16(out, (uint16_t)type);
  bytebuf_append_u8(out, flags);
  bytebuf_append_be24(out, len);
}

/* Deflates all of in onto out, ending in a sync flush so the peer can
 * inflate the whole block from this frame alone. */
static int
deflate_onto(struct spdy_codec *codec, const struct bytebuf *in, struct bytebuf *out,
             struct error *err)
{
  z_stream *z = &codec->deflater;

  z->next_in = bytebuf_head(in);
  z->avail_in = (uInt)in->len;
  do
    {
      int rc;

      z->next_out = bytebuf_reserve(out, DEFLATE_CHUNK);
      z->avail_out = DEFLATE_CHUNK;
      rc = deflate(z, Z_SYNC_FLUSH);
      /* Z_BUF_ERROR: nothing was left to flush into the new room. */
      if (rc != Z_OK && rc != Z_BUF_ERROR)
        return error_set(err, EIO, "compress SPDY header block: zlib error %d", rc);
      bytebuf_commit(out, DEFLATE_CHUNK - z->avail_out);
    }
  while (z->avail_out == 0);
  return 0;
}

/* The compressed header block of headers[0..n). */
static int
compress_headers(struct spdy_codec *codec, const struct spdy_header *headers, size_t n,
                 struct bytebuf *block, struct error *err)
{
  struct bytebuf raw = BYTEBUF_INIT;
  int ret;

  bytebuf_append_be32(&raw, (uint32_t)n);
  for (size_t i = 0; i < n; i++)
    {
      size_t name_len = strlen(headers[i].name);
      bytebuf_append_be32(&raw, (uint32_t)name_len);
      bytebuf_append(&raw, headers[i].name, name_len);
      bytebuf_append_be32(&raw, (uint32_t)headers[i].value_len);
      bytebuf_append(&raw, headers[i].value, headers[i].value_len);
    }
  ret = deflate_onto(codec, &raw, block, err);
  bytebuf_free(&raw);
  if (ret == 0 && block->len > SPDY_MAX_DATA_LEN - 10)
    return error_set(err, EMSGSIZE, "SPDY header block of %zu bytes", block->len);
  return ret;
}

int
spdy_write_syn_reply(struct spdy_codec *codec, struct bytebuf *out, uint32_t stream_id,
                     uint8_t flags, const struct spdy_header *headers, size_t n, struct error *err)
{
  struct bytebuf block = BYTEBUF_INIT;

  if (compress_headers(codec, headers, n, &block, err) < 0)
    {
      bytebuf_free(&block);
      return -1;
    }
  write_control_header(out, SPDY_SYN_REPLY, flags, (uint32_t)(4 + block.len));
  bytebuf_append_be32(out, stream_id & STREAM_ID_MASK);
  bytebuf_append(out, bytebuf_head(&block), block.len);
  bytebuf_free(&block);
  return 0;
}

int
spdy_write_syn_stream(struct spdy_codec *codec, struct bytebuf *out, uint32_t stream_id,
                      uint32_t associated_id, uint8_t flags, const struct spdy_header *headers,
                      size_t n, struct error *err)
{
  struct bytebuf block = BYTEBUF_INIT;

  if (compress_headers(codec, headers, n, &block, err) < 0)
    {
      bytebuf_free(&block);
      return -1;
    }
  write_control_header(out, SPDY_SYN_STREAM, flags, (uint32_t)(10 + block.len));
  bytebuf_append_be32(out, stream_id & STREAM_ID_MASK);
  bytebuf_append_be32(out, associated_id & STREAM_ID_MASK);
  bytebuf_append_u8(out, 0); /* priority 0, the highest */
  bytebuf_append_u8(out, 0); /* slot: no credential */
  bytebuf_append(out, bytebuf_head(&block), block.len);
  bytebuf_free(&block);
  return 0;
}

void
spdy_write_data(struct bytebuf *out, uint32_t stream_id, uint8_t flags, const void *data,
                size_t len)
{
  bytebuf_append_be32(out, stream_id & STREAM_ID_MASK);
  bytebuf_append_u8(out, flags);
  bytebuf_append_be24(out, (uint32_t)len);
  bytebuf_append(out, data, len);
}

void
spdy_write_rst_stream(struct bytebuf *out, uint32_t stream_id, uint32_t status)
{
  write_control_header(out, SPDY_RST_STREAM, 0, 8);
  bytebuf_append_be32(out, stream_id & STREAM_ID_MASK);
  bytebuf_append_be32(out, status);
}

void
spdy_write_ping(struct bytebuf *out, uint32_t ping_id)
{
  write_control_header(out, SPDY_PING, 0, 4);
  bytebuf_append_be32(out, ping_id);
}

void
spdy_write_goaway(struct bytebuf *out, uint32_t last_good_id, uint32_t status)
{
  write_control_header(out, SPDY_GOAWAY, 0, 8);
  bytebuf_append_be32(out, last_good_id & STREAM_ID_MASK);
  bytebuf_append_be32(out, status);
}
