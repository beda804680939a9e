/* crid/stream/websocket: RFC 6455 framing for the streaming server:
 * the handshake's accept key, parsing the (masked) frames a client sends,
 * building the (unmasked) frames crid sends, and the Kubernetes channel
 * protocols carried in messages (channel.k8s.io and base64.channel.k8s.io
 * with their v4/v5 variants).  No I/O: the session owns the socket.
 *
 * Limits: a frame's payload at most WS_MAX_FRAME bytes (a client's
 * message larger than that is refused, not buffered), control frames at
 * most 125 bytes (RFC 6455 §5.5). */
#ifndef CRID_STREAM_WEBSOCKET_H
#define CRID_STREAM_WEBSOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/bytebuf.h"
#include "common/error.h"

#define WS_MAX_FRAME (1024 * 1024)

enum ws_opcode
{
  WS_CONTINUATION = 0x0,
  WS_TEXT = 0x1,
  WS_BINARY = 0x2,
  WS_CLOSE = 0x8,
  WS_PING = 0x9,
  WS_PONG = 0xA,
};

/* Close status codes crid sends. */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_PROTOCOL_ERROR 1002
#define WS_CLOSE_TOO_BIG 1009

struct ws_frame
{
  bool fin;
  enum ws_opcode opcode;
  /* The payload, unmasked in place in the parsed buffer (valid until the
   * caller consumes those bytes). */
  uint8_t *payload;
  size_t payload_len;
};

/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key: base64(SHA-1(key
 * + the RFC's GUID)); NULL when key is not 24 characters of base64 of 16
 * bytes.  Caller frees. */
char *ws_accept_key(const char *key);

/* Parses the first frame of buf[0..len).  Returns the bytes it takes (> 0)
 * with *frame filled and its payload unmasked in place; 0 when buf does
 * not hold a whole frame yet; -1 on a protocol error (err says which):
 * reserved bits set, unknown opcode, an unmasked client frame (when
 * require_mask), a control frame that is fragmented or over 125 bytes, a
 * non-minimal or over-WS_MAX_FRAME length. */
ssize_t ws_parse_frame(uint8_t *buf, size_t len, bool require_mask, struct ws_frame *frame,
                       struct error *err);

/* Appends one unmasked frame (fin set) to out. */
void ws_write_frame(struct bytebuf *out, enum ws_opcode opcode, const void *payload, size_t len);
/* A CLOSE frame with a status code and reason (reason may be NULL). */
void ws_write_close(struct bytebuf *out, uint16_t code, const char *reason);

/* The Kubernetes channel framing of one message. */
enum ws_channel_encoding
{
  WS_CHANNEL_BINARY, /* channel.k8s.io, v4.channel.k8s.io, v5.channel.k8s.io, none */
  WS_CHANNEL_BASE64, /* base64.channel.k8s.io, v4.base64.channel.k8s.io */
};

/* Appends a message carrying data on channel: binary: one BINARY frame
 * of [channel byte][data]; base64: one TEXT frame of ['0'+channel]
 * [base64(data)]. */
void ws_write_channel(struct bytebuf *out, enum ws_channel_encoding encoding, uint8_t channel,
                      const void *data, size_t len);

/* Decodes a whole message (opcode BINARY or TEXT, payload as received)
 * into its channel and data.  Binary: first byte is the channel; base64:
 * first char '0'..'9' is the channel and the rest is decoded (into
 * *decoded, caller frees; *data points into it).  -1 on an empty message,
 * a base64 message that is not TEXT or does not decode, a binary one
 * that is not BINARY. */
int ws_read_channel(enum ws_channel_encoding encoding, enum ws_opcode opcode,
                    const uint8_t *payload, size_t len, uint8_t *channel, const uint8_t **data,
                    size_t *data_len, uint8_t **decoded, struct error *err);

#endif
