/* crid/http_server_mhd: crid's HTTP listener on libmicrohttpd, built
 * into crid-http.so (crid/http_plugin.h).  It serves the socket the
 * daemon bound, matches routes, and lets handlers answer or upgrade. */
#include "crid/http_plugin.h"
#include "common/log.h"
#include "common/util.h"

#include <gnutls/gnutls.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_ROUTES 8
/* What libmicrohttpd keeps per connection, also for the lifetime of an
 * upgraded one: requests here are a line and a few headers (default 32
 * KiB). */
#define CONNECTION_MEMORY (12 * 1024)
/* A client has this long to send its request headers. */
#define REQUEST_TIMEOUT_S 30

struct http_backend
{
  struct http_route routes[MAX_ROUTES];
  size_t n_routes;
  struct MHD_Daemon *mhd;
  char *tls_cert, *tls_key, *client_ca;
};

static void mhd_respond(struct http_request *request, unsigned status, const char *content_type,
                        const char *body, size_t len, const char *const *headers);

struct http_request
{
  struct MHD_Connection *connection;
  const char *method;
  const char *rest;
  void **con_cls;
  bool answered;
};

/* Kept from http_upgrade() until the connection is completed. */
struct upgrade_context
{
  http_upgrade_handler handler;
  void (*release)(void *data);
  void *data;
  bool handed_over;
};

struct http_upgraded
{
  struct MHD_UpgradeResponseHandle *urh;
  int fd;
  uint8_t *extra;
  size_t extra_len;
};

/* With a client CA: the client's certificate must verify against it.
 * libmicrohttpd asks for one but leaves the verdict to us. */
static bool
client_certificate_ok(struct MHD_Connection *connection)
{
  const union MHD_ConnectionInfo *info
      = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  unsigned status = 0;

  if (info == NULL || info->tls_session == NULL)
    return false;
  if (gnutls_certificate_verify_peers2((gnutls_session_t)info->tls_session, &status) < 0)
    return false;
  return status == 0;
}

static enum MHD_Result
access_handler(void *cls, struct MHD_Connection *connection, const char *url, const char *method,
               const char *version, const char *upload_data, size_t *upload_data_size,
               void **con_cls)
{
  struct http_backend *server = cls;
  struct http_request request = { connection, method, NULL, con_cls, false };

  if (*con_cls != NULL)
    {
      /* A body after an answer that was already queued: dropped. */
      *upload_data_size = 0;
      return MHD_YES;
    }
  if (server->client_ca && !client_certificate_ok(connection))
    {
      log_info("http: %s %s refused: no valid client certificate", method, url);
      mhd_respond(&request, 403, "text/plain", "client certificate required\n", 28, NULL);
    }
  for (size_t i = 0; i < server->n_routes && !request.answered; i++)
    if (str_has_prefix(url, server->routes[i].prefix))
      {
        request.rest = url + strlen(server->routes[i].prefix);
        server->routes[i].handler(server->routes[i].cls, &request);
        break;
      }
  if (!request.answered)
    mhd_respond(&request, 404, "text/plain", "404 page not found\n", 19, NULL);
  if (*con_cls == NULL)
    *con_cls = server; /* marks the request as answered */
  return MHD_YES;
}

static void
request_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                  enum MHD_RequestTerminationCode code)
{
  struct http_backend *server = cls;
  struct upgrade_context *context = *con_cls;

  if (context == NULL || (void *)context == (void *)server)
    return;
  if (!context->handed_over && context->release)
    context->release(context->data);
  free(context);
  *con_cls = NULL;
}

static void
upgraded(void *cls, struct MHD_Connection *connection, void *con_cls, const char *extra_in,
         size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
  struct upgrade_context *context = cls;
  struct http_upgraded *up = xcalloc(1, sizeof *up);

  up->urh = urh;
  up->fd = sock;
  if (extra_in_size)
    {
      up->extra = xmalloc(extra_in_size);
      memcpy(up->extra, extra_in, extra_in_size);
      up->extra_len = extra_in_size;
    }
  context->handed_over = true;
  context->handler(context->data, up);
}

static void
log_mhd(void *cls, const char *fmt, va_list ap)
{
  char *text = xvasprintf(fmt, ap);
  size_t len = strlen(text);
  while (len && text[len - 1] == '\n')
    text[--len] = '\0';
  log_debug("http: %s", text);
  free(text);
}

static void mhd_stop(struct http_backend *server);

static struct http_backend *
mhd_serve(int listen_fd, const struct http_server_options *options, const struct http_route *routes,
          size_t n_routes, struct error *err)
{
  struct http_backend *server = xcalloc(1, sizeof *server);
  unsigned flags
      = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG;

  for (size_t i = 0; i < n_routes && i < MAX_ROUTES; i++)
    server->routes[server->n_routes++]
        = (struct http_route){ xstrdup(routes[i].prefix), routes[i].handler, routes[i].cls };
  server->tls_cert = options->tls_cert_pem ? xstrdup(options->tls_cert_pem) : NULL;
  server->tls_key = options->tls_key_pem ? xstrdup(options->tls_key_pem) : NULL;
  server->client_ca = options->client_ca_pem ? xstrdup(options->client_ca_pem) : NULL;
  if (server->tls_cert)
    flags |= MHD_USE_TLS;
  /* The TLS options come last: where one does not apply, MHD_OPTION_END
   * stands in its place and ends the list there. */
  server->mhd = MHD_start_daemon(
      flags, 0, NULL, NULL, access_handler, server, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)REQUEST_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
      options->max_connections ? options->max_connections : 1024, MHD_OPTION_NOTIFY_COMPLETED,
      request_completed, server, MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
      server->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, server->tls_cert,
      MHD_OPTION_HTTPS_MEM_KEY, server->tls_key,
      server->client_ca ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, server->client_ca,
      MHD_OPTION_END);
  if (server->mhd == NULL)
    {
      /* Its log line (at debug level) says why; it closed the socket. */
      mhd_stop(server);
      error_set(err, EINVAL, "HTTP server on %s port %d did not start%s", options->address,
                options->port, options->tls_cert_pem ? " (check its TLS certificate and key)" : "");
      return NULL;
    }
  return server;
}

static void
mhd_stop(struct http_backend *server)
{
  if (server == NULL)
    return;
  if (server->mhd)
    MHD_stop_daemon(server->mhd);
  for (size_t i = 0; i < server->n_routes; i++)
    free(server->routes[i].prefix);
  free(server->tls_cert);
  free(server->tls_key);
  free(server->client_ca);
  free(server);
}

static const char *
mhd_request_method(const struct http_request *request)
{
  return request->method;
}

static const char *
mhd_request_rest(const struct http_request *request)
{
  return request->rest;
}

static const char *
mhd_request_header(const struct http_request *request, const char *name)
{
  return MHD_lookup_connection_value(request->connection, MHD_HEADER_KIND, name);
}

struct header_walk
{
  const char *name;
  void (*fn)(void *cls, const char *value);
  void *cls;
};

static enum MHD_Result
header_visit(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
  struct header_walk *walk = cls;

  if (key && value && strcasecmp(key, walk->name) == 0)
    walk->fn(walk->cls, value);
  return MHD_YES;
}

static void
mhd_request_header_each(const struct http_request *request, const char *name,
                        void (*fn)(void *cls, const char *value), void *cls)
{
  struct header_walk walk = { name, fn, cls };
  MHD_get_connection_values(request->connection, MHD_HEADER_KIND, header_visit, &walk);
}

static const char *
mhd_request_query(const struct http_request *request, const char *name)
{
  return MHD_lookup_connection_value(request->connection, MHD_GET_ARGUMENT_KIND, name);
}

static void
add_headers(struct MHD_Response *response, const char *const *headers)
{
  for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
    MHD_add_response_header(response, headers[i], headers[i + 1]);
}

static void
mhd_respond(struct http_request *request, unsigned status, const char *content_type,
            const char *body, size_t len, const char *const *headers)
{
  struct MHD_Response *response
      = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);

  request->answered = true;
  if (response == NULL)
    return;
  if (content_type)
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  add_headers(response, headers);
  MHD_queue_response(request->connection, status, response);
  MHD_destroy_response(response);
}

static void
mhd_upgrade(struct http_request *request, const char *const *headers, http_upgrade_handler handler,
            void (*release)(void *data), void *data)
{
  struct upgrade_context *context = xcalloc(1, sizeof *context);
  struct MHD_Response *response;

  request->answered = true;
  context->handler = handler;
  context->release = release;
  context->data = data;
  response = MHD_create_response_for_upgrade(upgraded, context);
  if (response == NULL)
    {
      if (release)
        release(data);
      free(context);
      return;
    }
  add_headers(response, headers);
  *request->con_cls = context;
  if (MHD_queue_response(request->connection, MHD_HTTP_SWITCHING_PROTOCOLS, response) != MHD_YES)
    log_debug("http: queueing the upgrade answer failed");
  MHD_destroy_response(response);
}

static int
mhd_upgraded_fd(const struct http_upgraded *upgraded)
{
  return upgraded->fd;
}

static const uint8_t *
mhd_upgraded_extra(const struct http_upgraded *upgraded, size_t *len)
{
  *len = upgraded->extra_len;
  return upgraded->extra;
}

static void
mhd_upgraded_close(struct http_upgraded *upgraded)
{
  MHD_upgrade_action(upgraded->urh, MHD_UPGRADE_ACTION_CLOSE);
  free(upgraded->extra);
  free(upgraded);
}

__attribute__((visibility("default"))) const struct http_plugin crid_http_plugin = {
  .header = { .abi = HTTP_PLUGIN_ABI, .table_size = sizeof(struct http_plugin) },
  .serve = mhd_serve,
  .stop = mhd_stop,
  .request_method = mhd_request_method,
  .request_rest = mhd_request_rest,
  .request_header = mhd_request_header,
  .request_header_each = mhd_request_header_each,
  .request_query = mhd_request_query,
  .respond = mhd_respond,
  .upgrade = mhd_upgrade,
  .upgraded_fd = mhd_upgraded_fd,
  .upgraded_extra = mhd_upgraded_extra,
  .upgraded_close = mhd_upgraded_close,
};
