#include "crid/stream/stream_server.h"
#include "crid/http_server.h"
#include "crid/stream/portforward.h"
#include "crid/stream/remotecommand.h"
#include "crid/stream/session.h"
#include "crid/stream/websocket.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MAX_TOKENS 1000
#define TOKEN_LIFETIME_NS (60LL * 1000000000LL)
#define STREAM_CREATION_TIMEOUT_NS (30LL * 1000000000LL)
/* A session's thread needs little: buffers of a few KiB on its stack. */
#define SESSION_STACK_SIZE (256 * 1024)
#define STOP_WAIT_MS 10000
#define MAX_OFFERED 16

struct stream_server
{
  struct pod_manager *pods;
  struct http_server *http;
  struct token_cache *tokens;
  struct stream_server_options options;
  char *address;
  char *base_url;
  int stop_fd;
  atomic_uint sessions;
  pthread_mutex_t lock;
  pthread_cond_t ended;
};

/* A protocol either side may speak, and what it means. */
struct protocol
{
  const char *name;
  int version;         /* remote-command version; 0 for port-forward */
  bool base64;         /* WebSocket base64 channel framing */
  bool close_messages; /* WebSocket v5 */
};

/* Server preference does not matter: the client's first supported
 * protocol wins, as in the kubelet's handshake. */
static const struct protocol spdy_remotecommand[] = {
  { "v4.channel.k8s.io", 4 },
  { "v3.channel.k8s.io", 3 },
  { "v2.channel.k8s.io", 2 },
  { "channel.k8s.io", 1 },
  { NULL },
};
static const struct protocol spdy_portforward[] = { { "portforward.k8s.io", 0 }, { NULL } };
static const struct protocol ws_remotecommand[] = {
  { "v5.channel.k8s.io", 5, false, true }, { "v4.channel.k8s.io", 4 },
  { "v4.base64.channel.k8s.io", 4, true }, { "channel.k8s.io", 1 },
  { "base64.channel.k8s.io", 1, true },    { NULL },
};
static const struct protocol ws_portforward[] = {
  { "v4.channel.k8s.io", 0 },
  { "v4.base64.channel.k8s.io", 0, true },
  { NULL },
};

/* What an upgrade hands to the session thread. */
struct session_start
{
  struct stream_server *server;
  struct stream_request *request;
  enum session_transport transport;
  struct protocol protocol;
  struct http_upgraded *upgraded;
};

static void
session_start_free(void *data)
{
  struct session_start *start = data;
  stream_request_free(start->request);
  free(start);
}

static void
session_ended(struct stream_server *server)
{
  pthread_mutex_lock(&server->lock);
  atomic_fetch_sub(&server->sessions, 1);
  pthread_cond_broadcast(&server->ended);
  pthread_mutex_unlock(&server->lock);
}

static void *
session_thread(void *data)
{
  struct session_start *start = data;
  struct stream_server *server = start->server;
  struct stream_request *request = steal_pointer(&start->request);
  const char *kind = request->kind == STREAM_EXEC     ? "exec"
                     : request->kind == STREAM_ATTACH ? "attach"
                                                      : "port-forward";
  cleanup_free char *description = xasprintf(
      "%s %.12s (%s)", kind,
      request->kind == STREAM_PORT_FORWARD ? request->sandbox_id : request->container_id,
      start->protocol.name ? start->protocol.name : "websocket");
  struct session_params params = {
    .transport = start->transport,
    .ws_encoding = start->protocol.base64 ? WS_CHANNEL_BASE64 : WS_CHANNEL_BINARY,
    .ws_close_messages = start->protocol.close_messages,
    .idle_timeout_ns = server->options.idle_timeout_s * 1000000000LL,
    .stop_fd = server->stop_fd,
    .description = description,
  };

  if (request->kind == STREAM_PORT_FORWARD)
    {
      params.backend = &portforward_backend;
      params.backend_data
          = portforward_new(server->pods, request, start->transport, STREAM_CREATION_TIMEOUT_NS);
    }
  else
    {
      params.backend = &remotecommand_backend;
      params.backend_data = remotecommand_new(server->pods, request, start->protocol.version,
                                              start->transport, STREAM_CREATION_TIMEOUT_NS);
    }
  log_debug("%s: session starts", description);
  session_run(start->upgraded, &params);
  log_debug("%s: session ended", description);
  free(start);
  session_ended(server);
  return NULL;
}

static void
upgraded(void *data, struct http_upgraded *upgraded)
{
  struct session_start *start = data;
  pthread_attr_t attr;
  pthread_t thread;
  int code;

  start->upgraded = upgraded;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, SESSION_STACK_SIZE);
  code = pthread_create(&thread, &attr, session_thread, start);
  pthread_attr_destroy(&attr);
  if (code != 0)
    {
      log_warn("streaming session: thread: %s", strerror(code));
      http_upgraded_close(upgraded);
      session_ended(start->server);
      session_start_free(start);
    }
}

/* ---- Negotiation ------------------------------------------------------------- */

struct offered
{
  char *names[MAX_OFFERED];
  size_t n;
};

/* Collects comma-separated values of every header line, trimmed. */
static void
collect_offered(void *cls, const char *value)
{
  struct offered *offered = cls;
  cleanup_free char *copy = xstrdup(value);
  char *save = NULL;

  for (char *item = strtok_r(copy, ",", &save); item && offered->n < MAX_OFFERED;
       item = strtok_r(NULL, ",", &save))
    {
      size_t len;
      while (*item == ' ' || *item == '\t')
        item++;
      len = strlen(item);
      while (len && (item[len - 1] == ' ' || item[len - 1] == '\t'))
        item[--len] = '\0';
      if (len)
        offered->names[offered->n++] = xstrdup(item);
    }
}

static void
offered_free(struct offered *offered)
{
  for (size_t i = 0; i < offered->n; i++)
    free(offered->names[i]);
}

static const struct protocol *
choose(const struct offered *offered, const struct protocol *supported)
{
  for (size_t i = 0; i < offered->n; i++)
    for (const struct protocol *p = supported; p->name; p++)
      if (strcmp(offered->names[i], p->name) == 0)
        return p;
  return NULL;
}

static bool
header_has(const char *value, const char *word)
{
  return value && strcasestr(value, word) != NULL;
}

static void
respond_text(struct http_request *request, unsigned status, const char *text,
             const char *const *headers)
{
  http_respond(request, status, "text/plain; charset=utf-8", text, strlen(text), headers);
}

/* 403 naming every protocol crid speaks here. */
static void
refuse_protocols(struct http_request *request, const struct protocol *supported, const char *header)
{
  const char *headers[2 * 8 + 1];
  size_t n = 0;

  for (const struct protocol *p = supported; p->name && n < 2 * 8; p++)
    {
      headers[n++] = header;
      headers[n++] = p->name;
    }
  headers[n] = NULL;
  respond_text(request, 403, "unable to upgrade: no protocol in common\n", headers);
}

static bool
admit(struct stream_server *server, struct http_request *request)
{
  pthread_mutex_lock(&server->lock);
  if (atomic_load(&server->sessions) >= server->options.max_sessions)
    {
      pthread_mutex_unlock(&server->lock);
      respond_text(request, 503, "too many streaming sessions\n", NULL);
      return false;
    }
  atomic_fetch_add(&server->sessions, 1);
  pthread_mutex_unlock(&server->lock);
  return true;
}

static void
release_admitted(void *data)
{
  struct session_start *start = data;
  session_ended(start->server);
  session_start_free(start);
}

static void
upgrade_spdy(struct stream_server *server, struct http_request *request,
             struct stream_request *stream_request)
{
  const struct protocol *supported
      = stream_request->kind == STREAM_PORT_FORWARD ? spdy_portforward : spdy_remotecommand;
  struct offered offered = { 0 };
  const struct protocol *chosen;

  http_request_header_each(request, "X-Stream-Protocol-Version", collect_offered, &offered);
  chosen = choose(&offered, supported);
  if (offered.n == 0)
    respond_text(request, 400, "unable to upgrade: X-Stream-Protocol-Version is missing\n", NULL);
  else if (chosen == NULL)
    refuse_protocols(request, supported, "X-Accepted-Stream-Protocol-Versions");
  offered_free(&offered);
  if (chosen == NULL || !admit(server, request))
    {
      stream_request_free(stream_request);
      return;
    }
  {
    struct session_start *start = xcalloc(1, sizeof *start);
    const char *headers[]
        = { "Connection", "Upgrade", "Upgrade", "SPDY/3.1", "X-Stream-Protocol-Version",
            chosen->name, NULL };
    start->server = server;
    start->request = stream_request;
    start->transport = TRANSPORT_SPDY;
    start->protocol = *chosen;
    http_upgrade(request, headers, upgraded, release_admitted, start);
  }
}

static void
upgrade_websocket(struct stream_server *server, struct http_request *request,
                  struct stream_request *stream_request)
{
  const struct protocol *supported
      = stream_request->kind == STREAM_PORT_FORWARD ? ws_portforward : ws_remotecommand;
  const char *version = http_request_header(request, "Sec-WebSocket-Version");
  cleanup_free char *accept
      = ws_accept_key(http_request_header(request, "Sec-WebSocket-Key") ?: "");
  struct offered offered = { 0 };
  const struct protocol *chosen = NULL;
  struct protocol binary = { NULL, 1 };

  http_request_header_each(request, "Sec-WebSocket-Protocol", collect_offered, &offered);
  if (offered.n > 0)
    chosen = choose(&offered, supported);
  offered_free(&offered);
  if (accept == NULL || version == NULL || strcmp(version, "13") != 0)
    {
      const char *headers[] = { "Sec-WebSocket-Version", "13", NULL };
      respond_text(request, 400, "bad WebSocket handshake\n", headers);
      stream_request_free(stream_request);
      return;
    }
  if (offered.n > 0 && chosen == NULL)
    {
      refuse_protocols(request, supported, "Sec-WebSocket-Protocol");
      stream_request_free(stream_request);
      return;
    }
  if (!admit(server, request))
    {
      stream_request_free(stream_request);
      return;
    }
  {
    struct session_start *start = xcalloc(1, sizeof *start);
    const char *headers[] = { "Connection",
                              "Upgrade",
                              "Upgrade",
                              "websocket",
                              "Sec-WebSocket-Accept",
                              accept,
                              chosen ? "Sec-WebSocket-Protocol" : NULL,
                              chosen ? chosen->name : NULL,
                              NULL };
    start->server = server;
    start->request = stream_request;
    start->transport = TRANSPORT_WEBSOCKET;
    start->protocol = chosen ? *chosen : binary;
    http_upgrade(request, headers, upgraded, release_admitted, start);
  }
}

static void
serve(struct stream_server *server, struct http_request *request, enum stream_kind kind)
{
  const char *upgrade = http_request_header(request, "Upgrade");
  struct stream_request *stream_request;

  stream_request = token_cache_take(server->tokens, http_request_rest(request));
  if (stream_request == NULL || stream_request->kind != kind)
    {
      stream_request_free(stream_request);
      respond_text(request, 404, "404 page not found\n", NULL);
      return;
    }
  if (header_has(upgrade, "spdy/3.1"))
    upgrade_spdy(server, request, stream_request);
  else if (header_has(upgrade, "websocket"))
    upgrade_websocket(server, request, stream_request);
  else
    {
      stream_request_free(stream_request);
      respond_text(request, 400, "unable to upgrade: missing upgrade headers in request\n", NULL);
    }
}

static void
serve_exec(void *cls, struct http_request *request)
{
  serve(cls, request, STREAM_EXEC);
}

static void
serve_attach(void *cls, struct http_request *request)
{
  serve(cls, request, STREAM_ATTACH);
}

static void
serve_portforward(void *cls, struct http_request *request)
{
  serve(cls, request, STREAM_PORT_FORWARD);
}

/* ---- Life cycle ----------------------------------------------------------------- */

static const char *const kind_paths[] = { "exec", "attach", "portforward" };

#define PEM_MAX_SIZE (1024 * 1024)

/* The PEM files of the options, read once at start. */
struct tls_files
{
  char *cert, *key, *ca;
};

static void
tls_files_free(struct tls_files *files)
{
  free(files->cert);
  free(files->key);
  free(files->ca);
}

static int
read_pem(const char *path, const char *what, char **out, struct error *err)
{
  if (path == NULL || *path == '\0')
    return 0;
  if (read_file(path, PEM_MAX_SIZE, out, NULL, err) < 0)
    return error_wrap(err, "%s", what);
  return 0;
}

static int
tls_files_read(const struct stream_server_options *options, struct tls_files *files,
               struct error *err)
{
  bool cert = options->tls_cert && *options->tls_cert;
  bool key = options->tls_key && *options->tls_key;

  if (cert != key)
    return error_set(err, EINVAL, "stream_tls_cert and stream_tls_key go together");
  if (!cert && options->tls_ca && *options->tls_ca)
    return error_set(err, EINVAL, "stream_tls_ca needs stream_tls_cert and stream_tls_key");
  if (read_pem(options->tls_cert, "stream_tls_cert", &files->cert, err) < 0
      || read_pem(options->tls_key, "stream_tls_key", &files->key, err) < 0
      || read_pem(options->tls_ca, "stream_tls_ca", &files->ca, err) < 0)
    return -1;
  return 0;
}

struct stream_server *
stream_server_start(struct pod_manager *pods, const struct stream_server_options *options,
                    struct error *err)
{
  struct stream_server *server;
  struct http_server_options http_options = { options->address, options->port, 0 };
  struct tls_files tls = { 0 };
  bool https;

  if (tls_files_read(options, &tls, err) < 0)
    {
      tls_files_free(&tls);
      return NULL;
    }
  http_options.tls_cert_pem = tls.cert;
  http_options.tls_key_pem = tls.key;
  http_options.client_ca_pem = tls.ca;
  https = tls.cert != NULL;
  server = xcalloc(1, sizeof *server);

  server->pods = pods;
  server->options = *options;
  server->address = xstrdup(options->address);
  server->options.address = server->address;
  if (server->options.max_sessions == 0)
    server->options.max_sessions = 1000;
  /* Upgraded connections count against the listener's limit too. */
  http_options.max_connections = server->options.max_sessions + 64;
  pthread_mutex_init(&server->lock, NULL);
  pthread_cond_init(&server->ended, NULL);
  server->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  server->tokens = token_cache_new(MAX_TOKENS, TOKEN_LIFETIME_NS);
  server->http = http_server_new(&http_options);
  tls_files_free(&tls);
  http_server_route(server->http, "/exec/", serve_exec, server);
  http_server_route(server->http, "/attach/", serve_attach, server);
  http_server_route(server->http, "/portforward/", serve_portforward, server);
  /* With TLS, the certificate and key are put to use at once, so that a
   * bad pair stops the daemon at start rather than failing the first
   * exec. */
  if (server->stop_fd < 0 || http_server_start(server->http, err) < 0
      || (https && http_server_serve(server->http, err) < 0))
    {
      if (server->stop_fd < 0)
        error_set_errno(err, errno, "eventfd");
      stream_server_stop(server);
      return NULL;
    }
  server->base_url
      = xasprintf(strchr(server->address, ':') ? "%s://[%s]:%d" : "%s://%s:%d",
                  https ? "https" : "http", server->address, http_server_port(server->http));
  log_info("streaming server listening on %s", server->base_url);
  return server;
}

void
stream_server_stop(struct stream_server *server)
{
  int64_t deadline = time_monotonic_ns() + STOP_WAIT_MS * 1000000LL;

  if (server == NULL)
    return;
  if (server->stop_fd >= 0)
    eventfd_write(server->stop_fd, 1);
  pthread_mutex_lock(&server->lock);
  while (atomic_load(&server->sessions) > 0 && time_monotonic_ns() < deadline)
    {
      struct timespec until;
      clock_gettime(CLOCK_REALTIME, &until);
      until.tv_nsec += 50 * 1000000L;
      if (until.tv_nsec >= 1000000000L)
        {
          until.tv_sec++;
          until.tv_nsec -= 1000000000L;
        }
      pthread_cond_timedwait(&server->ended, &server->lock, &until);
    }
  pthread_mutex_unlock(&server->lock);
  if (atomic_load(&server->sessions) > 0)
    {
      /* A session stuck in a system call: leave the listener running
       * rather than pull its connection from under it. */
      log_warn("streaming server: %u sessions did not end", atomic_load(&server->sessions));
      return;
    }
  http_server_free(server->http);
  token_cache_free(server->tokens);
  if (server->stop_fd >= 0)
    close(server->stop_fd);
  free(server->base_url);
  free(server->address);
  free(server);
}

const char *
stream_server_base_url(const struct stream_server *server)
{
  return server->base_url;
}

char *
stream_server_url(struct stream_server *server, struct stream_request *request, struct error *err)
{
  char token[STREAM_TOKEN_LEN + 1];
  enum stream_kind kind = request->kind;

  /* The listener has served since the start with TLS, else from the
   * first stream on: an idle daemon does not load the HTTP stack. */
  if (http_server_serve(server->http, err) < 0)
    {
      stream_request_free(request);
      return NULL;
    }
  if (token_cache_put(server->tokens, request, token, err) < 0)
    {
      stream_request_free(request);
      return NULL;
    }
  return xasprintf("%s/%s/%s", server->base_url, kind_paths[kind], token);
}
