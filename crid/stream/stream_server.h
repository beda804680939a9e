/* crid/stream/stream_server: the streaming server of exec, attach and
 * port-forward.  The RPCs store their request here and return the URL;
 * the client (crictl, or the kubelet proxying kubectl) then connects to
 * that URL on crid's HTTP listener, upgrades to SPDY/3.1 or WebSocket,
 * and the connection becomes a session on a thread of its own
 * (crid/stream/session.c), until the command ends or the client leaves.
 * The token cache, protocol negotiation and the session count live here. */
#ifndef CRID_STREAM_STREAM_SERVER_H
#define CRID_STREAM_STREAM_SERVER_H

#include <stdint.h>

#include "common/error.h"
#include "crid/stream/token_cache.h"

struct pod_manager;
struct http_server;

struct stream_server_options
{
  const char *address; /* what the URLs name; also what is listened on */
  int port;            /* 0: a free one */
  int64_t idle_timeout_s;
  unsigned max_sessions;
  const char *tls_cert; /* PEM files; NULL or "" = plain HTTP */
  const char *tls_key;
  const char *tls_ca; /* NULL or "": no client certificates */
};

struct stream_server;

/* Starts the HTTP listener with the /exec/, /attach/ and /portforward/
 * routes. */
struct stream_server *stream_server_start(struct pod_manager *pods,
                                          const struct stream_server_options *options,
                                          struct error *err);
/* Ends every session (killing exec'd processes), then stops listening. */
void stream_server_stop(struct stream_server *server);

/* "http://127.0.0.1:PORT" (https with TLS) */
const char *stream_server_base_url(const struct stream_server *server);

/* Stores request (taken over, also on failure) and returns its one-time
 * URL; ENOBUFS when too many are outstanding. */
char *stream_server_url(struct stream_server *server, struct stream_request *request,
                        struct error *err);

#endif
