/* crid/stream/websocket: RFC 6455 frames and the Kubernetes channel
 * protocols carried in them.  Everything works on bytes the session has
 * read or will write; nothing here blocks or keeps state between calls.
 *
 * Parse errors carry EPROTO, except a frame over WS_MAX_FRAME, which
 * carries EMSGSIZE: the session answers the first with a close of
 * WS_CLOSE_PROTOCOL_ERROR and the second with WS_CLOSE_TOO_BIG. */
#include "crid/stream/websocket.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* RFC 6455 §1.3: appended to the client's key before hashing. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* A Sec-WebSocket-Key is 16 random bytes in base64: 24 characters. */
#define WS_KEY_LEN 24
#define WS_NONCE_LEN 16
#define WS_SHA1_LEN 20

/* The 7-bit length field: up to 125 is the length itself, 126 and 127
 * announce a 16- and a 64-bit length after it. */
#define WS_MAX_SHORT_LEN 125
#define WS_LEN_16 126
#define WS_LEN_64 127
#define WS_MAX_CONTROL_LEN 125

#define WS_FIN 0x80
#define WS_RESERVED 0x70
#define WS_OPCODE 0x0f
#define WS_CONTROL 0x08
#define WS_MASKED 0x80
#define WS_LEN 0x7f
#define WS_MASK_KEY_LEN 4

/* EVP_EncodeBlock and EVP_DecodeBlock take an int length, so long data
 * goes through them in chunks of whole base64 quanta (3 bytes, 4
 * characters), and only the last chunk can carry padding. */
#define BASE64_CHUNK_QUANTA 4096

/* ---- base64 ---- */

static int
base64_value(uint8_t c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

/* Whether text is padded standard base64 in its one canonical form, and
 * the length it decodes to.  EVP_DecodeBlock alone would skip whitespace
 * around the text, take '=' for a zero in the middle, count padding as
 * decoded zero bytes and ignore bits past the end of the data; a peer's
 * bytes are checked here instead, so each payload has exactly one
 * encoding. */
static bool
base64_check(const uint8_t *text, size_t len, size_t *decoded_len)
{
  size_t pad = 0;

  if (len % 4 != 0)
    return false;
  if (len > 0 && text[len - 1] == '=')
    pad++;
  if (len > 1 && text[len - 2] == '=')
    pad++;
  for (size_t i = 0; i < len - pad; i++)
    if (base64_value(text[i]) < 0)
      return false;
  /* The last data character's bits beyond the data must be zero. */
  if (pad == 1 && (base64_value(text[len - 2]) & 0x3) != 0)
    return false;
  if (pad == 2 && (base64_value(text[len - 3]) & 0xf) != 0)
    return false;
  *decoded_len = len / 4 * 3 - pad;
  return true;
}

/* Decodes text that base64_check() accepted into out, which has room for
 * len / 4 * 3 bytes (padding included, as EVP_DecodeBlock writes it). */
static bool
base64_decode(const uint8_t *text, size_t len, uint8_t *out)
{
  const size_t chunk = 4 * BASE64_CHUNK_QUANTA;

  while (len > 0)
    {
      size_t n = len < chunk ? len : chunk;
      if (EVP_DecodeBlock(out, text, (int)n) != (int)(n / 4 * 3))
        return false;
      text += n;
      out += n / 4 * 3;
      len -= n;
    }
  return true;
}

static size_t
base64_encoded_len(size_t len)
{
  return (len + 2) / 3 * 4;
}

static void
base64_append(struct bytebuf *out, const uint8_t *data, size_t len)
{
  const size_t chunk = 3 * BASE64_CHUNK_QUANTA;

  while (len > 0)
    {
      size_t n = len < chunk ? len : chunk;
      size_t chars = base64_encoded_len(n);
      /* One more for the NUL that EVP_EncodeBlock writes after the text. */
      uint8_t *dst = bytebuf_reserve(out, chars + 1);
      EVP_EncodeBlock(dst, data, (int)n);
      bytebuf_commit(out, chars);
      data += n;
      len -= n;
    }
}

/* ---- the handshake ---- */

char *
ws_accept_key(const char *key)
{
  uint8_t text[WS_KEY_LEN + sizeof WS_GUID - 1];
  unsigned char hash[EVP_MAX_MD_SIZE];
  unsigned int hash_len = 0;
  size_t nonce_len;
  char *accept;

  if (key == NULL || strnlen(key, WS_KEY_LEN + 1) != WS_KEY_LEN
      || !base64_check((const uint8_t *)key, WS_KEY_LEN, &nonce_len) || nonce_len != WS_NONCE_LEN)
    return NULL;
  memcpy(text, key, WS_KEY_LEN);
  memcpy(text + WS_KEY_LEN, WS_GUID, sizeof WS_GUID - 1);
  /* Fails only without memory or without SHA-1 in the library. */
  if (EVP_Digest(text, sizeof text, hash, &hash_len, EVP_sha1(), NULL) != 1
      || hash_len != WS_SHA1_LEN)
    abort();
  accept = xmalloc(base64_encoded_len(WS_SHA1_LEN) + 1);
  EVP_EncodeBlock((unsigned char *)accept, hash, WS_SHA1_LEN);
  return accept;
}

/* ---- frames ---- */

static bool
opcode_is_known(uint8_t opcode)
{
  switch (opcode)
    {
    case WS_CONTINUATION:
    case WS_TEXT:
    case WS_BINARY:
    case WS_CLOSE:
    case WS_PING:
    case WS_PONG:
      return true;
    default:
      return false;
    }
}

static uint64_t
read_be(const uint8_t *p, size_t n)
{
  uint64_t v = 0;

  for (size_t i = 0; i < n; i++)
    v = v << 8 | p[i];
  return v;
}

/* The payload length of the frame at buf and where the header's length
 * fields end: 1 when known, 0 when buf is too short to tell, -1 for an
 * encoding RFC 6455 §5.2 forbids or a length over WS_MAX_FRAME.  Errors
 * come from the header alone, so a client cannot make crid wait for a
 * payload it will refuse anyway. */
static int
read_payload_len(const uint8_t *buf, size_t len, uint64_t *payload_len, size_t *header,
                 struct error *err)
{
  uint64_t n = buf[1] & WS_LEN;

  *header = 2;
  if (n == WS_LEN_16)
    {
      if (len < 4)
        return 0;
      n = read_be(buf + 2, 2);
      *header = 4;
      if (n <= WS_MAX_SHORT_LEN)
        return error_set(err, EPROTO, "websocket frame length %llu is not minimally encoded",
                         (unsigned long long)n);
    }
  else if (n == WS_LEN_64)
    {
      if (len < 10)
        return 0;
      n = read_be(buf + 2, 8);
      *header = 10;
      if (n >> 63)
        return error_set(err, EPROTO, "websocket frame length has its most significant bit set");
      if (n <= 0xffff)
        return error_set(err, EPROTO, "websocket frame length %llu is not minimally encoded",
                         (unsigned long long)n);
    }
  if (n > WS_MAX_FRAME)
    return error_set(err, EMSGSIZE, "websocket frame of %llu bytes is over the limit of %d",
                     (unsigned long long)n, WS_MAX_FRAME);
  *payload_len = n;
  return 1;
}

/* What the first two bytes alone say is wrong with a frame. */
static int
check_frame_start(const uint8_t *buf, bool require_mask, struct error *err)
{
  uint8_t opcode = buf[0] & WS_OPCODE;

  if (buf[0] & WS_RESERVED)
    return error_set(err, EPROTO, "websocket frame has reserved bits 0x%02x set",
                     buf[0] & WS_RESERVED);
  if (!opcode_is_known(opcode))
    return error_set(err, EPROTO, "websocket frame has unknown opcode 0x%x", opcode);
  if (require_mask && !(buf[1] & WS_MASKED))
    return error_set(err, EPROTO, "websocket client frame is not masked");
  if (opcode & WS_CONTROL)
    {
      if (!(buf[0] & WS_FIN))
        return error_set(err, EPROTO, "websocket control frame 0x%x is fragmented", opcode);
      /* 126 and 127 announce longer lengths, all over the limit. */
      if ((buf[1] & WS_LEN) > WS_MAX_CONTROL_LEN)
        return error_set(err, EPROTO, "websocket control frame 0x%x is over %d bytes", opcode,
                         WS_MAX_CONTROL_LEN);
    }
  return 0;
}

static void
unmask(uint8_t *payload, size_t len, const uint8_t key[WS_MASK_KEY_LEN])
{
  for (size_t i = 0; i < len; i++)
    payload[i] ^= key[i % WS_MASK_KEY_LEN];
}

ssize_t
ws_parse_frame(uint8_t *buf, size_t len, bool require_mask, struct ws_frame *frame,
               struct error *err)
{
  uint64_t payload_len = 0;
  size_t header = 0;
  bool masked;
  int r;

  if (len < 2)
    return 0;
  if (check_frame_start(buf, require_mask, err) < 0)
    return -1;
  r = read_payload_len(buf, len, &payload_len, &header, err);
  if (r <= 0)
    return r;
  masked = buf[1] & WS_MASKED;
  if (masked)
    header += WS_MASK_KEY_LEN;
  if (len < header || len - header < payload_len)
    return 0;
  if (masked)
    unmask(buf + header, payload_len, buf + header - WS_MASK_KEY_LEN);
  frame->fin = buf[0] & WS_FIN;
  frame->opcode = (enum ws_opcode)(buf[0] & WS_OPCODE);
  frame->payload = buf + header;
  frame->payload_len = payload_len;
  return (ssize_t)(header + payload_len);
}

/* A final, unmasked frame's header for a payload of len bytes, in the
 * shortest length encoding (the only one a peer must accept). */
static void
write_header(struct bytebuf *out, enum ws_opcode opcode, size_t len)
{
  bytebuf_append_u8(out, WS_FIN | opcode);
  if (len <= WS_MAX_SHORT_LEN)
    bytebuf_append_u8(out, (uint8_t)len);
  else if (len <= 0xffff)
    {
      bytebuf_append_u8(out, WS_LEN_16);
      bytebuf_append_be16(out, (uint16_t)len);
    }
  else
    {
      bytebuf_append_u8(out, WS_LEN_64);
      bytebuf_append_be32(out, (uint32_t)((uint64_t)len >> 32));
      bytebuf_append_be32(out, (uint32_t)len);
    }
}

void
ws_write_frame(struct bytebuf *out, enum ws_opcode opcode, const void *payload, size_t len)
{
  write_header(out, opcode, len);
  bytebuf_append(out, payload, len);
}

static bool
is_utf8_continuation(char c)
{
  return ((uint8_t)c & 0xc0) == 0x80;
}

/* The reason, cut so the close frame stays a legal control frame, and
 * cut before a UTF-8 sequence rather than inside it (a close reason must
 * be valid UTF-8).  A sequence is at most 4 bytes, so at most 3 more go;
 * a reason that is not UTF-8 is cut wherever that leaves it. */
static size_t
close_reason_len(const char *reason)
{
  const size_t max = WS_MAX_CONTROL_LEN - 2;
  size_t n;

  if (reason == NULL)
    return 0;
  n = strnlen(reason, max + 1);
  if (n <= max)
    return n;
  n = max;
  while (n > max - 3 && is_utf8_continuation(reason[n]))
    n--;
  return n;
}

void
ws_write_close(struct bytebuf *out, uint16_t code, const char *reason)
{
  size_t reason_len = close_reason_len(reason);

  write_header(out, WS_CLOSE, 2 + reason_len);
  bytebuf_append_be16(out, code);
  bytebuf_append(out, reason, reason_len);
}

/* ---- channels ---- */

void
ws_write_channel(struct bytebuf *out, enum ws_channel_encoding encoding, uint8_t channel,
                 const void *data, size_t len)
{
  if (encoding == WS_CHANNEL_BASE64)
    {
      write_header(out, WS_TEXT, 1 + base64_encoded_len(len));
      bytebuf_append_u8(out, (uint8_t)('0' + channel));
      base64_append(out, data, len);
      return;
    }
  write_header(out, WS_BINARY, 1 + len);
  bytebuf_append_u8(out, channel);
  bytebuf_append(out, data, len);
}

static int
read_binary_channel(enum ws_opcode opcode, const uint8_t *payload, size_t len, uint8_t *channel,
                    const uint8_t **data, size_t *data_len, struct error *err)
{
  if (opcode != WS_BINARY)
    return error_set(err, EPROTO, "channel.k8s.io message has opcode 0x%x, not binary", opcode);
  *channel = payload[0];
  *data = payload + 1;
  *data_len = len - 1;
  return 0;
}

static int
read_base64_channel(enum ws_opcode opcode, const uint8_t *payload, size_t len, uint8_t *channel,
                    const uint8_t **data, size_t *data_len, uint8_t **decoded, struct error *err)
{
  cleanup_free uint8_t *buf = NULL;
  size_t n;

  if (opcode != WS_TEXT)
    return error_set(err, EPROTO, "base64.channel.k8s.io message has opcode 0x%x, not text",
                     opcode);
  if (payload[0] < '0' || payload[0] > '9')
    return error_set(err, EPROTO, "base64.channel.k8s.io message has channel 0x%02x, not a digit",
                     payload[0]);
  if (!base64_check(payload + 1, len - 1, &n))
    return error_set(err, EPROTO, "base64.channel.k8s.io message on channel %c is not base64",
                     payload[0]);
  buf = xmalloc((len - 1) / 4 * 3);
  if (!base64_decode(payload + 1, len - 1, buf))
    return error_set(err, EPROTO, "base64.channel.k8s.io message on channel %c does not decode",
                     payload[0]);
  *channel = payload[0] - '0';
  *data = buf;
  *data_len = n;
  *decoded = steal_pointer(&buf);
  return 0;
}

int
ws_read_channel(enum ws_channel_encoding encoding, enum ws_opcode opcode, const uint8_t *payload,
                size_t len, uint8_t *channel, const uint8_t **data, size_t *data_len,
                uint8_t **decoded, struct error *err)
{
  /* Cleared first, so the caller frees it whatever the outcome. */
  *decoded = NULL;
  if (len == 0)
    return error_set(err, EPROTO, "websocket channel message is empty");
  if (encoding == WS_CHANNEL_BASE64)
    return read_base64_channel(opcode, payload, len, channel, data, data_len, decoded, err);
  return read_binary_channel(opcode, payload, len, channel, data, data_len, err);
}
