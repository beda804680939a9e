/* crid/stream/spdy: SPDY/3.1 framing as Kubernetes' streaming clients speak
 * it (moby/spdystream, client-go): parsing the frames a client sends and
 * building the frames crid sends, with header blocks compressed by zlib
 * and the SPDY/3 dictionary.  No I/O and no stream bookkeeping: the
 * session (crid/stream/session.c) owns sockets and streams.
 *
 * Limits on what a client can make crid hold: a control frame's payload
 * at most SPDY_MAX_CONTROL_LEN, a decompressed header block at most
 * SPDY_MAX_HEADER_BLOCK bytes and SPDY_MAX_HEADERS pairs; a DATA frame's
 * payload at most 0xFFFFFF (the field's width). */
#ifndef CRID_STREAM_SPDY_H
#define CRID_STREAM_SPDY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/bytebuf.h"
#include "common/error.h"

#define SPDY_VERSION 3
#define SPDY_MAX_CONTROL_LEN (64 * 1024)
#define SPDY_MAX_HEADER_BLOCK (64 * 1024)
#define SPDY_MAX_HEADERS 64
#define SPDY_MAX_DATA_LEN 0xFFFFFF
#define SPDY_MAX_STREAM_ID 0x7FFFFFFF

enum spdy_frame_type
{
  SPDY_DATA = 0, /* not a control frame: the parser's marker for data */
  SPDY_SYN_STREAM = 1,
  SPDY_SYN_REPLY = 2,
  SPDY_RST_STREAM = 3,
  SPDY_SETTINGS = 4,
  SPDY_PING = 6,
  SPDY_GOAWAY = 7,
  SPDY_HEADERS = 8,
  SPDY_WINDOW_UPDATE = 9,
};

#define SPDY_FLAG_FIN 0x01
#define SPDY_FLAG_UNIDIRECTIONAL 0x02

/* RST_STREAM status codes. */
enum spdy_rst_status
{
  SPDY_RST_PROTOCOL_ERROR = 1,
  SPDY_RST_INVALID_STREAM = 2,
  SPDY_RST_REFUSED_STREAM = 3,
  SPDY_RST_UNSUPPORTED_VERSION = 4,
  SPDY_RST_CANCEL = 5,
  SPDY_RST_INTERNAL_ERROR = 6,
  SPDY_RST_FLOW_CONTROL_ERROR = 7,
  SPDY_RST_STREAM_IN_USE = 8,
  SPDY_RST_STREAM_ALREADY_CLOSED = 9,
  SPDY_RST_FRAME_TOO_LARGE = 11,
};

/* GOAWAY status codes. */
enum spdy_goaway_status
{
  SPDY_GOAWAY_OK = 0,
  SPDY_GOAWAY_PROTOCOL_ERROR = 1,
  SPDY_GOAWAY_INTERNAL_ERROR = 2,
};

struct spdy_header
{
  char *name;  /* NUL-terminated, lower case */
  char *value; /* NUL-terminated at value_len; several values are joined by NULs */
  size_t value_len;
};

/* One parsed frame.  Which fields are set depends on type. */
struct spdy_frame
{
  enum spdy_frame_type type;
  uint8_t flags;
  uint32_t stream_id;     /* DATA, SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS, WINDOW_UPDATE */
  uint32_t associated_id; /* SYN_STREAM */
  uint8_t priority;       /* SYN_STREAM, 0..7 */
  uint32_t status;        /* RST_STREAM, GOAWAY */
  uint32_t ping_id;       /* PING */
  uint32_t last_good_id;  /* GOAWAY */
  uint32_t delta;         /* WINDOW_UPDATE */
  /* DATA: the payload, pointing into the parsed buffer (valid until the
   * caller consumes those bytes). */
  const uint8_t *data;
  size_t data_len;
  /* SYN_STREAM, SYN_REPLY, HEADERS: the decompressed header block, owned
   * by the frame. */
  struct spdy_header *headers;
  size_t n_headers;
};

/* The state one connection keeps for header blocks: one inflate stream
 * (client to crid) and one deflate stream (crid to client), each living
 * as long as the connection, as SPDY/3 requires. */
struct spdy_codec;

struct spdy_codec *spdy_codec_new(void);
void spdy_codec_free(struct spdy_codec *codec);

/* Frees the inflate stream (its 32 KiB window) of a connection that
 * expects no more header blocks from the client: any later SYN_STREAM,
 * SYN_REPLY or HEADERS is then a protocol error.  An exec or attach
 * session has all its streams once they are set up. */
void spdy_codec_close_inflater(struct spdy_codec *codec);

/* Parses the first frame of buf[0..len).  Returns the number of bytes the
 * frame takes (> 0) with *frame filled; 0 when buf does not hold a whole
 * frame yet (nothing changes, call again with more bytes); -1 on a
 * protocol error, after which the connection cannot continue (err tells
 * what: bad version, a control frame over SPDY_MAX_CONTROL_LEN, a header
 * block that does not inflate or is over the limits, an upper-case or
 * duplicate or empty header name, a length that does not match its
 * type, stream id 0 where one is needed).  Unknown control frame types
 * are returned with their type and no fields, for the caller to ignore.
 * Release with spdy_frame_clear(). */
ssize_t spdy_parse_frame(struct spdy_codec *codec, const uint8_t *buf, size_t len,
                         struct spdy_frame *frame, struct error *err);
void spdy_frame_clear(struct spdy_frame *frame);

/* The value of header name (lower case) in frame; NULL when absent.  Of a
 * header with several NUL-joined values, the first. */
const char *spdy_frame_header(const struct spdy_frame *frame, const char *name);

/* Builders: each appends one whole frame to out. */
/* SYN_REPLY for stream_id with the given headers (n may be 0); fails only
 * on a zlib error. */
int spdy_write_syn_reply(struct spdy_codec *codec, struct bytebuf *out, uint32_t stream_id,
                         uint8_t flags, const struct spdy_header *headers, size_t n,
                         struct error *err);
/* SYN_STREAM (server-initiated streams: unused by Kubernetes, there for
 * tests). */
int spdy_write_syn_stream(struct spdy_codec *codec, struct bytebuf *out, uint32_t stream_id,
                          uint32_t associated_id, uint8_t flags, const struct spdy_header *headers,
                          size_t n, struct error *err);
/* DATA; len <= SPDY_MAX_DATA_LEN (the caller chunks). */
void spdy_write_data(struct bytebuf *out, uint32_t stream_id, uint8_t flags, const void *data,
                     size_t len);
void spdy_write_rst_stream(struct bytebuf *out, uint32_t stream_id, uint32_t status);
void spdy_write_ping(struct bytebuf *out, uint32_t ping_id);
void spdy_write_goaway(struct bytebuf *out, uint32_t last_good_id, uint32_t status);

#endif
