#include "common/arena.h"
#include "common/util.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Each allocation is its own block: arenas here hold tens of small
 * objects, so a bump allocator would save nothing measurable. */
struct arena_block
{
  struct arena_block *next;
  void *adopted;
  max_align_t data[];
};

void *
arena_alloc(struct arena *arena, size_t size)
{
  struct arena_block *block = xcalloc(1, sizeof *block + size);
  block->next = arena->blocks;
  arena->blocks = block;
  return block->data;
}

void *
arena_adopt(struct arena *arena, void *p)
{
  struct arena_block *block = xcalloc(1, sizeof *block);
  block->adopted = p;
  block->next = arena->blocks;
  arena->blocks = block;
  return p;
}

char *
arena_strdup(struct arena *arena, const char *s)
{
  size_t len = strlen(s ? s : "");
  char *copy = arena_alloc(arena, len + 1);
  memcpy(copy, s ? s : "", len);
  return copy;
}

char *
arena_printf(struct arena *arena, const char *fmt, ...)
{
  va_list ap;
  char *text;
  va_start(ap, fmt);
  text = xvasprintf(fmt, ap);
  va_end(ap);
  return arena_adopt(arena, text);
}

void
arena_release(struct arena *arena)
{
  struct arena_block *block = arena->blocks;
  while (block)
    {
      struct arena_block *next = block->next;
      free(block->adopted);
      free(block);
      block = next;
    }
  arena->blocks = NULL;
}
