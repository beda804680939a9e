#include "crid/http_server.h"
#include "common/log.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROUTES 8
/* What libmicrohttpd keeps per connection, also for the lifetime of an
 * upgraded one: requests here are a line and a few headers (default 32
 * KiB). */
#define CONNECTION_MEMORY (12 * 1024)
/* A client has this long to send its request headers. */
#define REQUEST_TIMEOUT_S 30

struct route
{
  char *prefix;
  http_handler handler;
  void *cls;
};

struct http_server
{
  struct http_server_options options;
  char *address;
  struct route routes[MAX_ROUTES];
  size_t n_routes;
  struct MHD_Daemon *mhd;
  int port;
  char *tls_cert, *tls_key, *client_ca;
};

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

struct http_server *
http_server_new(const struct http_server_options *options)
{
  struct http_server *server = xcalloc(1, sizeof *server);

  server->options = *options;
  server->address = xstrdup(options->address);
  server->options.address = server->address;
  server->tls_cert = options->tls_cert_pem ? xstrdup(options->tls_cert_pem) : NULL;
  server->tls_key = options->tls_key_pem ? xstrdup(options->tls_key_pem) : NULL;
  server->client_ca = options->client_ca_pem ? xstrdup(options->client_ca_pem) : NULL;
  return server;
}

void
http_server_route(struct http_server *server, const char *prefix, http_handler handler, void *cls)
{
  if (server->n_routes == MAX_ROUTES)
    abort();
  server->routes[server->n_routes++] = (struct route){ xstrdup(prefix), handler, cls };
}

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
  struct http_server *server = cls;
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
      http_respond(&request, 403, "text/plain", "client certificate required\n", 28, NULL);
    }
  for (size_t i = 0; i < server->n_routes && !request.answered; i++)
    if (str_has_prefix(url, server->routes[i].prefix))
      {
        request.rest = url + strlen(server->routes[i].prefix);
        server->routes[i].handler(server->routes[i].cls, &request);
        break;
      }
  if (!request.answered)
    http_respond(&request, 404, "text/plain", "404 page not found\n", 19, NULL);
  if (*con_cls == NULL)
    *con_cls = server; /* marks the request as answered */
  return MHD_YES;
}

static void
request_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                  enum MHD_RequestTerminationCode code)
{
  struct http_server *server = cls;
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

int
http_server_start(struct http_server *server, struct error *err)
{
  struct sockaddr_in6 addr6 = { .sin6_family = AF_INET6 };
  struct sockaddr_in addr4 = { .sin_family = AF_INET };
  struct sockaddr *addr;
  unsigned flags
      = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG;
  const union MHD_DaemonInfo *info;

  if (inet_pton(AF_INET, server->address, &addr4.sin_addr) == 1)
    {
      addr4.sin_port = htons((uint16_t)server->options.port);
      addr = (struct sockaddr *)&addr4;
    }
  else if (inet_pton(AF_INET6, server->address, &addr6.sin6_addr) == 1)
    {
      addr6.sin6_port = htons((uint16_t)server->options.port);
      addr = (struct sockaddr *)&addr6;
      flags |= MHD_USE_IPv6;
    }
  else
    return error_set(err, EINVAL, "HTTP server address %s is not a numeric IP address",
                     server->address);
  if (server->tls_cert)
    flags |= MHD_USE_TLS;
  /* The TLS options come last: where one does not apply, MHD_OPTION_END
   * stands in its place and ends the list there. */
  server->mhd = MHD_start_daemon(
      flags, 0, NULL, NULL, access_handler, server, MHD_OPTION_SOCK_ADDR, addr,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)REQUEST_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
      server->options.max_connections ? server->options.max_connections : 1024,
      MHD_OPTION_NOTIFY_COMPLETED, request_completed, server, MHD_OPTION_EXTERNAL_LOGGER, log_mhd,
      NULL, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
      server->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, server->tls_cert,
      MHD_OPTION_HTTPS_MEM_KEY, server->tls_key,
      server->client_ca ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, server->client_ca,
      MHD_OPTION_END);
  if (server->mhd == NULL)
    return error_set(err, EADDRNOTAVAIL, "HTTP server on %s port %d did not start", server->address,
                     server->options.port);
  info = MHD_get_daemon_info(server->mhd, MHD_DAEMON_INFO_BIND_PORT);
  server->port = info ? info->port : server->options.port;
  return 0;
}

int
http_server_port(const struct http_server *server)
{
  return server->port;
}

void
http_server_free(struct http_server *server)
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
  free(server->address);
  free(server);
}

const char *
http_request_method(const struct http_request *request)
{
  return request->method;
}

const char *
http_request_rest(const struct http_request *request)
{
  return request->rest;
}

const char *
http_request_header(const struct http_request *request, const char *name)
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

void
http_request_header_each(const struct http_request *request, const char *name,
                         void (*fn)(void *cls, const char *value), void *cls)
{
  struct header_walk walk = { name, fn, cls };
  MHD_get_connection_values(request->connection, MHD_HEADER_KIND, header_visit, &walk);
}

const char *
http_request_query(const struct http_request *request, const char *name)
{
  return MHD_lookup_connection_value(request->connection, MHD_GET_ARGUMENT_KIND, name);
}

static void
add_headers(struct MHD_Response *response, const char *const *headers)
{
  for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
    MHD_add_response_header(response, headers[i], headers[i + 1]);
}

void
http_respond(struct http_request *request, unsigned status, const char *content_type,
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

void
http_upgrade(struct http_request *request, const char *const *headers, http_upgrade_handler handler,
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

int
http_upgraded_fd(const struct http_upgraded *upgraded)
{
  return upgraded->fd;
}

const uint8_t *
http_upgraded_extra(const struct http_upgraded *upgraded, size_t *len)
{
  *len = upgraded->extra_len;
  return upgraded->extra;
}

void
http_upgraded_close(struct http_upgraded *upgraded)
{
  MHD_upgrade_action(upgraded->urh, MHD_UPGRADE_ACTION_CLOSE);
  free(upgraded->extra);
  free(upgraded);
}
