/* common/bytebuf: a growable byte queue: append at the end, consume from
 * the front.  The streaming code keeps what it has read but not yet
 * parsed, and what it has framed but not yet written, in one each. */
#ifndef CRID_COMMON_BYTEBUF_H
#define CRID_COMMON_BYTEBUF_H

#include <stddef.h>
#include <stdint.h>

struct bytebuf
{
  uint8_t *data;
  size_t start; /* first unconsumed byte */
  size_t len;   /* unconsumed bytes from start */
  size_t cap;
};

#define BYTEBUF_INIT                                                                               \
  {                                                                                                \
    NULL, 0, 0, 0                                                                                  \
  }

/* The unconsumed bytes. */
static inline const uint8_t *
bytebuf_head(const struct bytebuf *b)
{
  /* Never NULL + 0 (undefined) for a queue that has no storage yet. */
  return b->data ? b->data + b->start : (const uint8_t *)"";
}

void bytebuf_append(struct bytebuf *b, const void *data, size_t len);
void bytebuf_append_u8(struct bytebuf *b, uint8_t v);
/* Big-endian (network order). */
void bytebuf_append_be16(struct bytebuf *b, uint16_t v);
void bytebuf_append_be24(struct bytebuf *b, uint32_t v);
void bytebuf_append_be32(struct bytebuf *b, uint32_t v);
/* Room for len more bytes at the end (appended by the caller, who then
 * calls bytebuf_commit): for read() straight into the queue. */
uint8_t *bytebuf_reserve(struct bytebuf *b, size_t len);
void bytebuf_commit(struct bytebuf *b, size_t len);
/* Drops n bytes from the front. */
void bytebuf_consume(struct bytebuf *b, size_t n);
/* Frees the storage; the queue is empty and usable again. */
void bytebuf_free(struct bytebuf *b);

#endif
