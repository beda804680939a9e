/* crid/http_plugin: the seam between crid/http_server and crid-http.so,
 * the HTTP listener on libmicrohttpd (and gnutls through it), which an
 * idle daemon does not map: it is loaded when a server first has to
 * answer (http_server_serve()).
 *
 * Owns the function table crossing the seam.  The daemon binds the
 * listening socket itself (so the port is known, and taken, from the
 * start) and hands it over; routes are matched inside the plugin, which
 * then calls the daemon's handlers, and they answer through the table. */
#ifndef CRID_HTTP_PLUGIN_H
#define CRID_HTTP_PLUGIN_H

#include "common/plugin.h"
#include "crid/http_server.h"

#define HTTP_PLUGIN_FILE "crid-http.so"
#define HTTP_PLUGIN_SYMBOL "crid_http_plugin"
/* Raised whenever the table or a type crossing it changes. */
#define HTTP_PLUGIN_ABI 1

struct http_route
{
  char *prefix;
  http_handler handler;
  void *cls;
};

/* A serving listener inside the plugin. */
struct http_backend;

struct http_plugin
{
  struct plugin_header header;
  /* Serves listen_fd (bound, listening; the backend owns it from then on,
   * also when this fails) with routes (copied). */
  struct http_backend *(*serve)(int listen_fd, const struct http_server_options *options,
                                const struct http_route *routes, size_t n_routes,
                                struct error *err);
  void (*stop)(struct http_backend *backend);
  /* crid/http_server.h, for requests and upgraded connections. */
  const char *(*request_method)(const struct http_request *request);
  const char *(*request_rest)(const struct http_request *request);
  const char *(*request_header)(const struct http_request *request, const char *name);
  void (*request_header_each)(const struct http_request *request, const char *name,
                              void (*fn)(void *cls, const char *value), void *cls);
  const char *(*request_query)(const struct http_request *request, const char *name);
  void (*respond)(struct http_request *request, unsigned status, const char *content_type,
                  const char *body, size_t len, const char *const *headers);
  void (*upgrade)(struct http_request *request, const char *const *headers,
                  http_upgrade_handler handler, void (*release)(void *data), void *data);
  int (*upgraded_fd)(const struct http_upgraded *upgraded);
  const uint8_t *(*upgraded_extra)(const struct http_upgraded *upgraded, size_t *len);
  void (*upgraded_close)(struct http_upgraded *upgraded);
};

#endif
