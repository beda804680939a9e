/* crid/stream/token_cache: the requests the Exec, Attach and PortForward
 * RPCs store for the streaming server, each under a one-time token that
 * is part of the URL they return.  A token is 8 characters of base64url
 * (6 random bytes), is consumed by its first use, expires after the
 * cache's lifetime (a minute), and at most a bounded number are
 * outstanding, as in the kubelet's streaming library. */
#ifndef CRID_STREAM_TOKEN_CACHE_H
#define CRID_STREAM_TOKEN_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define STREAM_TOKEN_LEN 8

enum stream_kind
{
  STREAM_EXEC,
  STREAM_ATTACH,
  STREAM_PORT_FORWARD,
};

/* What the RPC asked for; the streaming options come from here, never
 * from the HTTP request. */
struct stream_request
{
  enum stream_kind kind;
  char *container_id; /* exec, attach */
  char *sandbox_id;   /* port-forward */
  char **cmd;         /* exec; NULL-terminated */
  bool tty, stdin, stdout, stderr;
  uint16_t *ports; /* port-forward (WebSocket only: SPDY names them per stream) */
  size_t n_ports;
};

void stream_request_free(struct stream_request *request);

struct token_cache;

struct token_cache *token_cache_new(size_t max_tokens, int64_t lifetime_ns);
void token_cache_free(struct token_cache *cache);

/* Stores request (the cache owns it on success) under a new token
 * (STREAM_TOKEN_LEN characters + NUL).  ENOBUFS when max_tokens are
 * outstanding. */
int token_cache_put(struct token_cache *cache, struct stream_request *request,
                    char token[STREAM_TOKEN_LEN + 1], struct error *err);
/* The request stored under token, now the caller's and no longer in the
 * cache; NULL for an unknown, used or expired token. */
struct stream_request *token_cache_take(struct token_cache *cache, const char *token);

#endif
