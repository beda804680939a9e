/* common/arena: allocations that live exactly as long as one operation
 * (an RPC's response message, say) and are released together. */
#ifndef CRID_COMMON_ARENA_H
#define CRID_COMMON_ARENA_H

#include <stddef.h>

struct arena_block;

struct arena
{
  struct arena_block *blocks;
};

#define ARENA_INIT                                                                                 \
  {                                                                                                \
    NULL                                                                                           \
  }

/* Zeroed memory; aborts on out-of-memory. */
void *arena_alloc(struct arena *arena, size_t size);
char *arena_strdup(struct arena *arena, const char *s);
char *arena_printf(struct arena *arena, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands an existing malloc'd pointer to the arena, which frees it. */
void *arena_adopt(struct arena *arena, void *p);
void arena_release(struct arena *arena);

#define arena_new(arena, type) ((type *)arena_alloc((arena), sizeof(type)))
#define arena_new_array(arena, type, n) ((type *)arena_alloc((arena), sizeof(type) * (n)))

#endif
