/* crid/http_server: crid's HTTP listeners (libmicrohttpd, loaded from
 * crid-http.so when a listener first serves: crid/http_plugin.h).  The
 * streaming server's /exec, /attach and /portforward endpoints live on
 * one, /metrics on another: a module registers handlers by path prefix
 * before the server starts.  A handler either answers with a plain
 * response or upgrades the connection, handing its socket to code that
 * runs it on a thread of its own (a streaming session), so a long
 * session never holds the listener's thread. */
#ifndef CRID_HTTP_SERVER_H
#define CRID_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct http_server;
struct http_request;
struct http_upgraded;

struct http_server_options
{
  const char *address; /* numeric IPv4 or IPv6 address */
  int port;            /* 0: a free one, see http_server_port() */
  unsigned max_connections;
  /* HTTPS: the server's certificate and key (PEM text); NULL = plain
   * HTTP.  With client_ca_pem, every request must come with a client
   * certificate that CA signed (else 403). */
  const char *tls_cert_pem;
  const char *tls_key_pem;
  const char *client_ca_pem;
};

/* Called on the listener's thread; must answer with exactly one of
 * http_respond() or http_upgrade() and must not block. */
typedef void (*http_handler)(void *cls, struct http_request *request);

/* Runs once the 101 answer is sent, on the listener's thread: it must
 * hand the connection to a thread of its own (or close it) at once.
 * data is what http_upgrade() was given. */
typedef void (*http_upgrade_handler)(void *data, struct http_upgraded *upgraded);

struct http_server *http_server_new(const struct http_server_options *options);
/* Requests whose path starts with prefix go to handler (first match). */
void http_server_route(struct http_server *server, const char *prefix, http_handler handler,
                       void *cls);
/* Binds and listens (the port is taken from now on); connections wait
 * until http_server_serve(). */
int http_server_start(struct http_server *server, struct error *err);
/* Serves from now on: loads the HTTP plugin at the first call of the
 * daemon and starts answering.  Safe to call again and from several
 * threads; after a failure the server cannot serve. */
int http_server_serve(struct http_server *server, struct error *err);
/* The port listened on; valid after start. */
int http_server_port(const struct http_server *server);
/* Stops listening and frees; every upgraded connection must have been
 * closed first. */
void http_server_free(struct http_server *server);

const char *http_request_method(const struct http_request *request);
/* The path after the route's prefix. */
const char *http_request_rest(const struct http_request *request);
/* The first value of header name (case-insensitive); NULL when absent. */
const char *http_request_header(const struct http_request *request, const char *name);
/* Calls fn for every occurrence of header name, in order. */
void http_request_header_each(const struct http_request *request, const char *name,
                              void (*fn)(void *cls, const char *value), void *cls);
/* A query argument (?name=value); NULL when absent. */
const char *http_request_query(const struct http_request *request, const char *name);

/* A plain response: body of len bytes, headers NULL or {name, value,
 * ..., NULL}. */
void http_respond(struct http_request *request, unsigned status, const char *content_type,
                  const char *body, size_t len, const char *const *headers);
/* 101 Switching Protocols with headers ({name, value, ..., NULL}, the
 * Upgrade header among them); then handler(data, upgraded) runs.  If the
 * upgrade never completes (the client left first), release(data) is
 * called instead; release may be NULL. */
void http_upgrade(struct http_request *request, const char *const *headers,
                  http_upgrade_handler handler, void (*release)(void *data), void *data);

/* The upgraded connection: its socket (blocking or not as the caller
 * sets it; never close it directly), the bytes the client sent after its
 * request that the server had already read, and the close. */
int http_upgraded_fd(const struct http_upgraded *upgraded);
const uint8_t *http_upgraded_extra(const struct http_upgraded *upgraded, size_t *len);
void http_upgraded_close(struct http_upgraded *upgraded);

#endif
