#include "crid/stream/token_cache.h"
#include "common/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct token_entry
{
  char token[STREAM_TOKEN_LEN + 1];
  int64_t expires_ns;
  struct stream_request *request;
};

struct token_cache
{
  pthread_mutex_t lock;
  struct token_entry *entries;
  size_t n, max;
  int64_t lifetime_ns;
};

void
stream_request_free(struct stream_request *request)
{
  if (request == NULL)
    return;
  free(request->container_id);
  free(request->sandbox_id);
  strv_free(request->cmd);
  free(request->ports);
  free(request);
}

struct token_cache *
token_cache_new(size_t max_tokens, int64_t lifetime_ns)
{
  struct token_cache *cache = xcalloc(1, sizeof *cache);

  pthread_mutex_init(&cache->lock, NULL);
  cache->entries = xcalloc(max_tokens, sizeof *cache->entries);
  cache->max = max_tokens;
  cache->lifetime_ns = lifetime_ns;
  return cache;
}

void
token_cache_free(struct token_cache *cache)
{
  if (cache == NULL)
    return;
  for (size_t i = 0; i < cache->n; i++)
    stream_request_free(cache->entries[i].request);
  free(cache->entries);
  pthread_mutex_destroy(&cache->lock);
  free(cache);
}

static void
remove_at(struct token_cache *cache, size_t i)
{
  cache->entries[i] = cache->entries[--cache->n];
}

/* With the lock held. */
static void
drop_expired(struct token_cache *cache, int64_t now)
{
  for (size_t i = 0; i < cache->n;)
    if (cache->entries[i].expires_ns <= now)
      {
        stream_request_free(cache->entries[i].request);
        remove_at(cache, i);
      }
    else
      i++;
}

/* 6 random bytes as 8 characters of unpadded base64url. */
static int
new_token(char token[STREAM_TOKEN_LEN + 1], struct error *err)
{
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  uint8_t bytes[6];

  if (getrandom(bytes, sizeof bytes, 0) != (ssize_t)sizeof bytes)
    return error_set_errno(err, errno, "random token");
  for (int group = 0; group < 2; group++)
    {
      const uint8_t *b = bytes + 3 * group;
      uint32_t v = (uint32_t)b[0] << 16 | (uint32_t)b[1] << 8 | b[2];
      for (int i = 0; i < 4; i++)
        token[4 * group + i] = alphabet[(v >> (18 - 6 * i)) & 63];
    }
  token[STREAM_TOKEN_LEN] = '\0';
  return 0;
}

static bool
token_in_use(const struct token_cache *cache, const char *token)
{
  for (size_t i = 0; i < cache->n; i++)
    if (strcmp(cache->entries[i].token, token) == 0)
      return true;
  return false;
}

int
token_cache_put(struct token_cache *cache, struct stream_request *request,
                char token[STREAM_TOKEN_LEN + 1], struct error *err)
{
  int64_t now = time_monotonic_ns();
  int ret = 0;

  pthread_mutex_lock(&cache->lock);
  drop_expired(cache, now);
  if (cache->n == cache->max)
    ret = error_set(err, ENOBUFS, "too many streaming requests outstanding (%zu)", cache->max);
  else
    do
      ret = new_token(token, err);
    while (ret == 0 && token_in_use(cache, token));
  if (ret == 0)
    {
      struct token_entry *entry = &cache->entries[cache->n++];
      memcpy(entry->token, token, sizeof entry->token);
      entry->expires_ns = now + cache->lifetime_ns;
      entry->request = request;
    }
  pthread_mutex_unlock(&cache->lock);
  return ret;
}

struct stream_request *
token_cache_take(struct token_cache *cache, const char *token)
{
  struct stream_request *request = NULL;

  if (token == NULL || strlen(token) != STREAM_TOKEN_LEN)
    return NULL;
  pthread_mutex_lock(&cache->lock);
  drop_expired(cache, time_monotonic_ns());
  for (size_t i = 0; i < cache->n; i++)
    if (strcmp(cache->entries[i].token, token) == 0)
      {
        request = cache->entries[i].request;
        remove_at(cache, i);
        break;
      }
  pthread_mutex_unlock(&cache->lock);
  return request;
}
