#include "common/bytebuf.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

uint8_t *
bytebuf_reserve(struct bytebuf *b, size_t len)
{
  if (b->start > 0 && b->start + b->len + len > b->cap)
    {
      /* Slide what is left to the front before growing. */
      memmove(b->data, b->data + b->start, b->len);
      b->start = 0;
    }
  if (b->start + b->len + len > b->cap)
    {
      size_t cap = b->cap ? b->cap : 256;
      while (cap < b->len + len)
        cap *= 2;
      b->data = xrealloc(b->data, cap);
      b->cap = cap;
    }
  return b->data + b->start + b->len;
}

void
bytebuf_commit(struct bytebuf *b, size_t len)
{
  b->len += len;
}

void
bytebuf_append(struct bytebuf *b, const void *data, size_t len)
{
  if (len == 0)
    return;
  memcpy(bytebuf_reserve(b, len), data, len);
  b->len += len;
}

void
bytebuf_append_u8(struct bytebuf *b, uint8_t v)
{
  bytebuf_append(b, &v, 1);
}

void
bytebuf_append_be16(struct bytebuf *b, uint16_t v)
{
  uint8_t bytes[2] = { (uint8_t)(v >> 8), (uint8_t)v };
  bytebuf_append(b, bytes, 2);
}

void
bytebuf_append_be24(struct bytebuf *b, uint32_t v)
{
  uint8_t bytes[3] = { (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
  bytebuf_append(b, bytes, 3);
}

void
bytebuf_append_be32(struct bytebuf *b, uint32_t v)
{
  uint8_t bytes[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
  bytebuf_append(b, bytes, 4);
}

void
bytebuf_consume(struct bytebuf *b, size_t n)
{
  if (n >= b->len)
    {
      b->start = b->len = 0;
      return;
    }
  b->start += n;
  b->len -= n;
}

void
bytebuf_free(struct bytebuf *b)
{
  free(b->data);
  b->data = NULL;
  b->start = b->len = b->cap = 0;
}
