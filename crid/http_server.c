/* crid/http_server: the daemon's side of its HTTP listener.  Routes and
 * the listening socket are the daemon's; the serving (libmicrohttpd, and
 * gnutls through it) is crid-http.so's, loaded by the first
 * http_server_serve() (crid/http_plugin.h). */
#include "crid/http_server.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "crid/http_plugin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_ROUTES 8
#define LISTEN_BACKLOG 128

/* Defined when the plugin's objects are linked into the program (unit
 * tests, fuzzers); the crid binary loads the plugin instead. */
extern const struct http_plugin crid_http_plugin __attribute__((weak));

/* Filled by the first http_server_serve(); requests and upgraded
 * connections only exist after it. */
static struct plugin_slot slot = PLUGIN_SLOT(HTTP_PLUGIN_FILE, HTTP_PLUGIN_SYMBOL, HTTP_PLUGIN_ABI,
                                             sizeof(struct http_plugin));

struct http_server
{
  struct http_server_options options;
  char *address;
  char *tls_cert, *tls_key, *client_ca;
  struct http_route routes[MAX_ROUTES];
  size_t n_routes;
  int listen_fd; /* bound and listening until a backend takes it */
  int port;
  pthread_mutex_t lock;
  struct http_backend *backend;
};

/* The table, for calls about a request: the plugin that made it. */
static const struct http_plugin *
loaded(void)
{
  return (const struct http_plugin *)slot.table;
}

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
  server->options.tls_cert_pem = server->tls_cert;
  server->options.tls_key_pem = server->tls_key;
  server->options.client_ca_pem = server->client_ca;
  server->listen_fd = -1;
  pthread_mutex_init(&server->lock, NULL);
  return server;
}

void
http_server_route(struct http_server *server, const char *prefix, http_handler handler, void *cls)
{
  if (server->n_routes == MAX_ROUTES)
    abort();
  server->routes[server->n_routes++] = (struct http_route){ xstrdup(prefix), handler, cls };
}

int
http_server_start(struct http_server *server, struct error *err)
{
  union
  {
    struct sockaddr any;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
  } addr = { 0 };
  socklen_t len;
  cleanup_close int fd = -1;
  int one = 1;

  if (inet_pton(AF_INET, server->address, &addr.in4.sin_addr) == 1)
    {
      addr.in4.sin_family = AF_INET;
      addr.in4.sin_port = htons((uint16_t)server->options.port);
      len = sizeof addr.in4;
    }
  else if (inet_pton(AF_INET6, server->address, &addr.in6.sin6_addr) == 1)
    {
      addr.in6.sin6_family = AF_INET6;
      addr.in6.sin6_port = htons((uint16_t)server->options.port);
      len = sizeof addr.in6;
    }
  else
    return error_set(err, EINVAL, "HTTP server address %s is not a numeric IP address",
                     server->address);
  fd = socket(addr.any.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return error_set_errno(err, errno, "HTTP server on %s: socket", server->address);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (addr.any.sa_family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd, &addr.any, len) < 0 || listen(fd, LISTEN_BACKLOG) < 0)
    return error_set_errno(err, errno, "HTTP server on %s port %d", server->address,
                           server->options.port);
  if (getsockname(fd, &addr.any, &len) < 0)
    return error_set_errno(err, errno, "HTTP server on %s: getsockname", server->address);
  server->port = ntohs(addr.any.sa_family == AF_INET ? addr.in4.sin_port : addr.in6.sin6_port);
  server->listen_fd = steal_fd(&fd);
  return 0;
}

int
http_server_serve(struct http_server *server, struct error *err)
{
  const struct http_plugin *p;
  int ret = 0;

  pthread_mutex_lock(&server->lock);
  if (server->backend == NULL)
    {
      if (server->listen_fd < 0)
        ret = error_set(err, EINVAL, "HTTP server on %s: not started", server->address);
      else if ((p = (const struct http_plugin *)plugin_get(&slot, &crid_http_plugin, err)) == NULL)
        ret = error_wrap(err, "HTTP server on %s port %d", server->address, server->port);
      else
        {
          /* The backend owns the socket from here on, also when it fails. */
          server->backend = p->serve(steal_fd(&server->listen_fd), &server->options, server->routes,
                                     server->n_routes, err);
          ret = server->backend ? 0 : -1;
        }
    }
  pthread_mutex_unlock(&server->lock);
  return ret;
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
  if (server->backend)
    loaded()->stop(server->backend);
  if (server->listen_fd >= 0)
    close(server->listen_fd);
  for (size_t i = 0; i < server->n_routes; i++)
    free(server->routes[i].prefix);
  pthread_mutex_destroy(&server->lock);
  free(server->tls_cert);
  free(server->tls_key);
  free(server->client_ca);
  free(server->address);
  free(server);
}

const char *
http_request_method(const struct http_request *request)
{
  return loaded()->request_method(request);
}

const char *
http_request_rest(const struct http_request *request)
{
  return loaded()->request_rest(request);
}

const char *
http_request_header(const struct http_request *request, const char *name)
{
  return loaded()->request_header(request, name);
}

void
http_request_header_each(const struct http_request *request, const char *name,
                         void (*fn)(void *cls, const char *value), void *cls)
{
  loaded()->request_header_each(request, name, fn, cls);
}

const char *
http_request_query(const struct http_request *request, const char *name)
{
  return loaded()->request_query(request, name);
}

void
http_respond(struct http_request *request, unsigned status, const char *content_type,
             const char *body, size_t len, const char *const *headers)
{
  loaded()->respond(request, status, content_type, body, len, headers);
}

void
http_upgrade(struct http_request *request, const char *const *headers, http_upgrade_handler handler,
             void (*release)(void *data), void *data)
{
  loaded()->upgrade(request, headers, handler, release, data);
}

int
http_upgraded_fd(const struct http_upgraded *upgraded)
{
  return loaded()->upgraded_fd(upgraded);
}

const uint8_t *
http_upgraded_extra(const struct http_upgraded *upgraded, size_t *len)
{
  return loaded()->upgraded_extra(upgraded, len);
}

void
http_upgraded_close(struct http_upgraded *upgraded)
{
  loaded()->upgraded_close(upgraded);
}
