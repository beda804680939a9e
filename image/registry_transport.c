/* image/registry_transport: HTTP(S) exchanges with registries over
 * libcurl.  Built into crid-pull.so, never into the crid binary: an idle
 * daemon does not map libcurl and what it brings. */
#include "image/registry_transport.h"

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "version.h"

#define USER_AGENT "crid/" CRID_VERSION
#define CONNECT_TIMEOUT_SECONDS 30L
/* Ping and token requests are small: without a configured progress
 * timeout they still may not hang forever. */
#define SMALL_REQUEST_STALL_SECONDS 60
#define MAX_REDIRECTS 5
#define HEADER_VALUE_MAX (16 * 1024)
#define CA_BUNDLE_TTL_NS (60 * 1000000000LL)
#define IDLE_HANDLES_MAX 8
#define NS_PER_SECOND 1000000000LL

static const char *const system_ca_bundles[] = {
  "/etc/ssl/certs/ca-certificates.crt", /* Debian, Ubuntu, Arch */
  "/etc/pki/tls/certs/ca-bundle.crt",   /* Fedora, RHEL */
  "/etc/ssl/ca-bundle.pem",             /* openSUSE */
  "/etc/ssl/cert.pem",                  /* Alpine */
  NULL,
};

/* Extra CAs of one ca_dir, combined with the system bundle. */
struct ca_bundle
{
  struct ca_bundle *next;
  char *dir;
  char *pem;
  size_t len;
  char *client_cert; /* NAME.cert with NAME.key in the dir (certs.d) */
  char *client_key;
  int64_t loaded_ns;
};

struct registry_transport
{
  CURLSH *share;
  pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

  /* Guards everything below. */
  pthread_mutex_t lock;
  struct ca_bundle *bundles;
  CURL *idle[IDLE_HANDLES_MAX];
  size_t n_idle;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void
curl_init_once(void)
{
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    abort();
}

/* ---- libcurl ---- */

static void
share_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *arg)
{
  struct registry_transport *transport = arg;
  pthread_mutex_lock(&transport->share_locks[data]);
}

static void
share_unlock(CURL *handle, curl_lock_data data, void *arg)
{
  struct registry_transport *transport = arg;
  pthread_mutex_unlock(&transport->share_locks[data]);
}

/* libcurl and the TLS library behind it are set up at the first request,
 * not at start: their initialisation (OpenSSL's configuration, error
 * strings, providers) costs an idle daemon that never pulls over 2 MB. */
static void
share_create_locked(struct registry_transport *transport)
{
  if (transport->share)
    return;
  pthread_once(&curl_once, curl_init_once);
  /* DNS answers and TLS sessions are shared between threads.  Connections
   * are not (libcurl documents that as unsafe across threads); instead
   * easy handles are reused, and each keeps its own connections. */
  transport->share = curl_share_init();
  if (transport->share == NULL)
    abort();
  curl_share_setopt(transport->share, CURLSHOPT_LOCKFUNC, share_lock);
  curl_share_setopt(transport->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
  curl_share_setopt(transport->share, CURLSHOPT_USERDATA, transport);
  curl_share_setopt(transport->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(transport->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
}

struct registry_transport *
registry_transport_new(void)
{
  struct registry_transport *transport = xcalloc(1, sizeof *transport);

  pthread_mutex_init(&transport->lock, NULL);
  for (size_t i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_init(&transport->share_locks[i], NULL);
  return transport;
}

void
registry_transport_reload(struct registry_transport *transport)
{
  pthread_mutex_lock(&transport->lock);
  for (struct ca_bundle *b = transport->bundles; b; b = b->next)
    b->loaded_ns = INT64_MIN / 2;
  pthread_mutex_unlock(&transport->lock);
}

void
registry_transport_free(struct registry_transport *transport)
{
  if (transport == NULL)
    return;
  for (size_t i = 0; i < transport->n_idle; i++)
    curl_easy_cleanup(transport->idle[i]);
  if (transport->share)
    curl_share_cleanup(transport->share);
  for (size_t i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_destroy(&transport->share_locks[i]);
  pthread_mutex_destroy(&transport->lock);
  while (transport->bundles)
    {
      struct ca_bundle *b = transport->bundles;
      transport->bundles = b->next;
      free(b->dir);
      free(b->pem);
      free(b->client_cert);
      free(b->client_key);
      free(b);
    }
  free(transport);
}

static CURL *
handle_get(struct registry_transport *transport)
{
  CURL *handle = NULL;

  pthread_mutex_lock(&transport->lock);
  share_create_locked(transport);
  if (transport->n_idle > 0)
    handle = transport->idle[--transport->n_idle];
  pthread_mutex_unlock(&transport->lock);
  if (handle == NULL)
    {
      handle = curl_easy_init();
      if (handle == NULL)
        abort();
    }
  else
    /* Forgets the options, keeps the open connections. */
    curl_easy_reset(handle);
  return handle;
}

static void
handle_put(struct registry_transport *transport, CURL *handle)
{
  pthread_mutex_lock(&transport->lock);
  if (transport->n_idle < IDLE_HANDLES_MAX)
    {
      transport->idle[transport->n_idle++] = handle;
      handle = NULL;
    }
  pthread_mutex_unlock(&transport->lock);
  if (handle)
    curl_easy_cleanup(handle);
}

/* ---- CA bundles ---- */

static bool
is_ca_file(const char *name)
{
  return str_has_suffix(name, ".crt") || str_has_suffix(name, ".pem");
}

static int
compare_names(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends the system bundle, then every *.crt and *.pem of dir (in name
 * order).  CURLOPT_CAPATH would need OpenSSL's hashed file names, which
 * nobody puts in such a directory. */
static void
ca_bundle_load(struct ca_bundle *b)
{
  cleanup_free char *pem = NULL;
  size_t len = 0;
  cleanup_dir DIR *dir = NULL;
  char **names = NULL;
  size_t n_names = 0;
  struct dirent *de;

  for (const char *const *path = system_ca_bundles; *path; path++)
    {
      struct error err = ERROR_INIT;
      if (read_file(*path, 64 * 1024 * 1024, &pem, &len, &err) == 0)
        break;
      error_clear(&err);
    }
  if (pem == NULL)
    pem = xstrdup("");

  free(b->client_cert);
  free(b->client_key);
  b->client_cert = NULL;
  b->client_key = NULL;

  dir = opendir(b->dir);
  if (dir == NULL)
    log_warn("registry CA directory %s: %s", b->dir, strerror(errno));
  while (dir && (de = readdir(dir)) != NULL)
    {
      if (de->d_name[0] == '.')
        continue;
      names = xrealloc(names, (n_names + 1) * sizeof *names);
      names[n_names++] = xstrdup(de->d_name);
    }
  if (n_names > 1)
    qsort(names, n_names, sizeof *names, compare_names);

  for (size_t i = 0; i < n_names; i++)
    {
      cleanup_free char *path = xasprintf("%s/%s", b->dir, names[i]);
      struct error err = ERROR_INIT;
      cleanup_free char *data = NULL;
      size_t data_len = 0;

      if (is_ca_file(names[i]))
        {
          if (read_file(path, 16 * 1024 * 1024, &data, &data_len, &err) < 0)
            {
              log_warn("registry CA certificate %s", error_message(&err));
              error_clear(&err);
              continue;
            }
          pem = xrealloc(pem, len + data_len + 2);
          pem[len++] = '\n';
          memcpy(pem + len, data, data_len);
          len += data_len;
          pem[len] = '\0';
        }
      else if (str_has_suffix(names[i], ".cert") && b->client_cert == NULL)
        {
          /* containers' certs.d convention: NAME.cert with NAME.key. */
          cleanup_free char *key = xasprintf("%.*s.key", (int)(strlen(path) - 5), path);
          if (access(key, R_OK) == 0)
            {
              b->client_cert = steal_pointer(&path);
              b->client_key = steal_pointer(&key);
            }
        }
    }
  for (size_t i = 0; i < n_names; i++)
    free(names[i]);
  free(names);

  free(b->pem);
  b->pem = steal_pointer(&pem);
  b->len = len;
  b->loaded_ns = time_monotonic_ns();
}

/* Sets the TLS options of an endpoint on handle. */
static void
setup_tls(struct registry_transport *transport, CURL *handle, const struct http_options *o)
{
  struct ca_bundle *b;
  int64_t now;

  if (o->insecure)
    {
      curl_easy_setopt(handle, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(handle, CURLOPT_SSL_VERIFYHOST, 0L);
      return;
    }
  if (o->ca_dir == NULL)
    return;

  now = time_monotonic_ns();
  pthread_mutex_lock(&transport->lock);
  for (b = transport->bundles; b; b = b->next)
    if (strcmp(b->dir, o->ca_dir) == 0)
      break;
  if (b == NULL)
    {
      b = xcalloc(1, sizeof *b);
      b->dir = xstrdup(o->ca_dir);
      b->next = transport->bundles;
      transport->bundles = b;
    }
  /* Re-read now and then, so new certificates work without a restart. */
  if (b->pem == NULL || now - b->loaded_ns > CA_BUNDLE_TTL_NS)
    ca_bundle_load(b);
  {
    struct curl_blob blob = { .data = b->pem, .len = b->len, .flags = CURL_BLOB_COPY };
    curl_easy_setopt(handle, CURLOPT_CAINFO_BLOB, &blob);
  }
  if (b->client_cert)
    {
      curl_easy_setopt(handle, CURLOPT_SSLCERT, b->client_cert);
      curl_easy_setopt(handle, CURLOPT_SSLKEY, b->client_key);
    }
  pthread_mutex_unlock(&transport->lock);
}

/* ---- HTTP ---- */

static void
set_header(char **slot, const char *value, size_t len)
{
  if (len > HEADER_VALUE_MAX)
    len = HEADER_VALUE_MAX;
  free(*slot);
  *slot = xstrndup(value, len);
}

static size_t
on_header(char *data, size_t size, size_t nmemb, void *arg)
{
  struct transfer *t = arg;
  size_t len = size * nmemb;
  size_t n = len;
  const char *colon;
  const char *value;
  size_t name_len, value_len;

  while (n > 0 && (data[n - 1] == '\r' || data[n - 1] == '\n'))
    n--;

  /* A status line starts a new response (after 1xx or a proxy's CONNECT):
   * forget the headers of the previous one. */
  if (n >= 5 && strncmp(data, "HTTP/", 5) == 0)
    {
      const char *p = memchr(data, ' ', n);
      transfer_reset(t);
      if (p)
        {
          const char *reason;
          t->status = strtol(p + 1, NULL, 10);
          reason = memchr(p + 1, ' ', n - (p + 1 - data));
          if (reason)
            {
              char *clean
                  = str_printable(reason + 1, n - (reason + 1 - data), sizeof t->reason - 1);
              snprintf(t->reason, sizeof t->reason, "%s", clean);
              free(clean);
            }
        }
      return len;
    }

  colon = memchr(data, ':', n);
  if (colon == NULL)
    return len;
  name_len = colon - data;
  value = colon + 1;
  while (value < data + n && (*value == ' ' || *value == '\t'))
    value++;
  value_len = data + n - value;
  while (value_len > 0 && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
    value_len--;

#define IS(name) (name_len == strlen(name) && strncasecmp(data, name, name_len) == 0)
  if (IS("content-type"))
    set_header(&t->content_type, value, value_len);
  else if (IS("docker-content-digest"))
    set_header(&t->content_digest, value, value_len);
  else if (IS("content-range"))
    set_header(&t->content_range, value, value_len);
  else if (IS("www-authenticate"))
    {
      /* Several header lines are one comma-separated list (RFC 7230). */
      if (t->www_authenticate && strlen(t->www_authenticate) < HEADER_VALUE_MAX)
        {
          char *joined = xasprintf("%s, %.*s", t->www_authenticate, (int)value_len, value);
          free(t->www_authenticate);
          t->www_authenticate = joined;
        }
      else if (t->www_authenticate == NULL)
        set_header(&t->www_authenticate, value, value_len);
    }
#undef IS
  return len;
}

/* A resumed transfer must continue exactly where the last one broke. */
static bool
range_is_right(const struct transfer *t)
{
  const char *p;
  char *end;
  long long start;

  if (t->range_start <= 0)
    return t->status != 206;
  if (t->status != 206 || t->content_range == NULL)
    return false;
  p = t->content_range;
  if (strncasecmp(p, "bytes ", 6) != 0)
    return false;
  errno = 0;
  start = strtoll(p + 6, &end, 10);
  return errno == 0 && end != p + 6 && *end == '-' && start == t->range_start;
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
  struct transfer *t = arg;
  size_t len = size * nmemb;
  bool ok = http_status_is_success(t->status);
  size_t limit = ok ? t->max_body : REGISTRY_ERROR_BODY_MAX;

  if (ok && !t->body_started)
    {
      t->body_started = true;
      if (!range_is_right(t))
        {
          t->bad_range = true;
          return 0;
        }
    }
  if (ok && t->sink)
    {
      if (t->sink(t->sink_arg, data, len, &t->sink_err) < 0)
        {
          t->sink_failed = true;
          return 0;
        }
      return len;
    }

  if (t->body_len + len > limit)
    {
      if (ok)
        {
          t->too_big = true;
          return 0;
        }
      /* An error body only feeds the message: keep its beginning. */
      len = limit - t->body_len;
      if (len == 0)
        return size * nmemb;
    }
  t->body = xrealloc(t->body, t->body_len + len + 1);
  memcpy(t->body + t->body_len, data, len);
  t->body_len += len;
  t->body[t->body_len] = '\0';
  return size * nmemb;
}

static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
  struct transfer *t = arg;
  const struct registry_request *request = t->request;
  int64_t now = time_monotonic_ns();

  if (request && request->cancelled && request->cancelled(request->cancel_arg))
    {
      t->cancelled = true;
      return 1;
    }
  if (dlnow != t->last_dlnow)
    {
      t->last_dlnow = dlnow;
      t->last_progress_ns = now;
    }
  if (t->stall_ns > 0 && now - t->last_progress_ns > t->stall_ns)
    {
      t->stalled = true;
      return 1;
    }
  return 0;
}

static struct curl_slist *
header_append(struct curl_slist *headers, const char *line)
{
  struct curl_slist *out = curl_slist_append(headers, line);

  if (out == NULL)
    abort();
  return out;
}

/* Wipes and frees a header list that may hold a credential. */
static void
headers_free(struct curl_slist *headers)
{
  for (struct curl_slist *h = headers; h; h = h->next)
    explicit_bzero(h->data, strlen(h->data));
  curl_slist_free_all(headers);
}

/* Which curl failures are worth another attempt: the network and the
 * server, not our own limits, TLS (a handshake failure is nearly always
 * a server speaking plain HTTP or a protocol mismatch) or a
 * cancellation. */
static bool
curl_code_is_retryable(CURLcode code)
{
  switch (code)
    {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_PARTIAL_FILE:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING:
      return true;
    default:
      return false;
    }
}

/* A URL for messages: no query or fragment (signed redirect URLs carry
 * secrets there). */
static const char *
url_for_message(const char *url, char *buf, size_t size)
{
  size_t n = strcspn(url, "?#");
  cleanup_free char *clean = str_printable(url, n, 256);

  snprintf(buf, size, "%s", clean);
  return buf;
}

static const char *
url_host_for_message(const char *url, char *buf, size_t size)
{
  const char *start = strstr(url, "://");
  size_t n;

  start = start ? start + 3 : url;
  n = strcspn(start, "/?#");
  snprintf(buf, size, "%.*s", (int)n, start);
  return buf;
}

/* Performs one exchange.  0: a response arrived (any status; *redirect is
 * its Location resolved, or NULL).  -1: no usable response; *retryable
 * says whether trying again may help. */
static int
http_perform(struct registry_transport *transport, const struct http_options *o, struct transfer *t,
             char **redirect, bool *retryable, bool *unreachable, struct error *err)
{
  CURL *handle = handle_get(transport);
  struct curl_slist *headers = NULL;
  char errbuf[CURL_ERROR_SIZE] = "";
  char host[300];
  char where[300];
  int64_t stall_seconds = o->request ? o->request->progress_timeout_seconds : 0;
  CURLcode code;
  int ret = 0;

  *retryable = false;
  *redirect = NULL;
  transfer_reset(t);
  t->request = o->request;
  t->cancelled = t->stalled = t->too_big = t->bad_range = t->sink_failed = false;
  t->last_dlnow = 0;
  t->last_progress_ns = time_monotonic_ns();
  if (stall_seconds <= 0 && o->small)
    stall_seconds = SMALL_REQUEST_STALL_SECONDS;
  t->stall_ns = stall_seconds > 0 ? stall_seconds * NS_PER_SECOND : 0;

  curl_easy_setopt(handle, CURLOPT_URL, o->url);
  curl_easy_setopt(handle, CURLOPT_SHARE, transport->share);
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(handle, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  /* Redirects are followed by request_follow(), which decides where the
   * Authorization header may go. */
  curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(handle, CURLOPT_USERAGENT, USER_AGENT);
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_SECONDS);
  curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(handle, CURLOPT_HEADERDATA, t);
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(handle, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(handle, CURLOPT_XFERINFODATA, t);
  if (stall_seconds > 0)
    {
      /* A backup for on_progress, should the callback not run. */
      curl_easy_setopt(handle, CURLOPT_LOW_SPEED_LIMIT, 1L);
      curl_easy_setopt(handle, CURLOPT_LOW_SPEED_TIME, (long)stall_seconds + 30L);
    }
  setup_tls(transport, handle, o);

  if (o->accept)
    {
      cleanup_free char *line = xasprintf("Accept: %s", o->accept);
      headers = header_append(headers, line);
    }
  if (o->authorization)
    {
      cleanup_secret char *line = xasprintf("Authorization: %s", o->authorization);
      headers = header_append(headers, line);
    }
  if (t->range_start > 0)
    {
      char line[64];
      snprintf(line, sizeof line, "Range: bytes=%lld-", (long long)t->range_start);
      headers = header_append(headers, line);
    }
  if (o->post_body)
    {
      headers = header_append(headers, "Content-Type: application/x-www-form-urlencoded");
      curl_easy_setopt(handle, CURLOPT_POSTFIELDS, o->post_body);
    }
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers);

  code = curl_easy_perform(handle);
  *unreachable
      = code != CURLE_OK && !t->cancelled && !t->sink_failed && !t->too_big && !t->bad_range;
  url_host_for_message(o->url, host, sizeof host);
  url_for_message(o->url, where, sizeof where);

  if (code == CURLE_OK)
    {
      char *location = NULL;
      if (t->status >= 300 && t->status < 400
          && curl_easy_getinfo(handle, CURLINFO_REDIRECT_URL, &location) == CURLE_OK && location)
        *redirect = xstrdup(location);
      /* A 2xx without a body: on_body never checked the Range answer. */
      if (t->range_start > 0 && http_status_is_success(t->status) && !range_is_right(t))
        ret = error_set(err, EIO,
                        "%s cannot resume the transfer (no valid answer to Range: HTTP %ld)", host,
                        t->status);
    }
  else if (t->cancelled)
    ret = error_set(err, ECANCELED, "cancelled");
  else if (t->stalled)
    ret = error_set(err, ETIMEDOUT, "no data received from %s for %lld seconds", host,
                    (long long)stall_seconds);
  else if (t->sink_failed)
    {
      error_move(err, &t->sink_err);
      ret = -1;
    }
  else if (t->too_big)
    ret = error_set(err, EFBIG, "response from %s larger than %zu bytes", host, t->max_body);
  else if (t->bad_range)
    ret = error_set(err, EIO, "%s cannot resume the transfer (no valid answer to Range: HTTP %ld)",
                    host, t->status);
  else
    {
      const char *text = errbuf[0] ? errbuf : curl_easy_strerror(code);
      *retryable = curl_code_is_retryable(code);
      if (code == CURLE_OPERATION_TIMEDOUT)
        ret = error_set(err, ETIMEDOUT, "%s: %s", where, text);
      else if (code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE)
        ret = error_set(err, EIO, "%s: TLS certificate verification failed: %s", where, text);
      else if (code == CURLE_SSL_CONNECT_ERROR && !o->insecure)
        ret = error_set(err, EIO,
                        "%s: TLS handshake failed: %s (a registry serving plain HTTP must be "
                        "configured insecure)",
                        where, text);
      else if (code == CURLE_COULDNT_CONNECT)
        ret = error_set(err, ECONNREFUSED, "%s: %s", where, text);
      else
        ret = error_set(err, EIO, "%s: %s", where, text);
    }

  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, NULL);
  curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, NULL);
  headers_free(headers);
  handle_put(transport, handle);
  return ret;
}

/* Whether a redirect keeps scheme, host and port: only then may the
 * Authorization header follow it. */
static bool
same_origin(const char *a, const char *b)
{
  CURLU *ua = curl_url();
  CURLU *ub = curl_url();
  bool same = false;
  static const CURLUPart parts[] = { CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT };

  if (ua == NULL || ub == NULL)
    abort();
  if (curl_url_set(ua, CURLUPART_URL, a, 0) == CURLUE_OK
      && curl_url_set(ub, CURLUPART_URL, b, 0) == CURLUE_OK)
    {
      same = true;
      for (size_t i = 0; same && i < sizeof parts / sizeof parts[0]; i++)
        {
          char *pa = NULL, *pb = NULL;
          if (curl_url_get(ua, parts[i], &pa, CURLU_DEFAULT_PORT) != CURLUE_OK
              || curl_url_get(ub, parts[i], &pb, CURLU_DEFAULT_PORT) != CURLUE_OK
              || strcasecmp(pa, pb) != 0)
            same = false;
          curl_free(pa);
          curl_free(pb);
        }
    }
  curl_url_cleanup(ua);
  curl_url_cleanup(ub);
  return same;
}

static bool
status_is_redirect(long status)
{
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* GET (or POST) url, following redirects ourselves: the Authorization
 * header is dropped as soon as a redirect leaves the origin (CDNs and
 * object stores must never see registry credentials). */
int
registry_transport_request(struct registry_transport *transport, const struct http_options *o,
                           struct transfer *t, bool *retryable, bool *unreachable,
                           struct error *err)
{
  struct http_options cur = *o;
  cleanup_free char *url = xstrdup(o->url);

  for (int hops = 0;; hops++)
    {
      cleanup_free char *next = NULL;
      char host[300];

      cur.url = url;
      log_trace("%s %s", cur.post_body ? "POST" : "GET", url_for_message(url, host, sizeof host));
      if (http_perform(transport, &cur, t, &next, retryable, unreachable, err) < 0)
        return -1;
      if (!status_is_redirect(t->status) || next == NULL)
        return 0;
      if (cur.post_body)
        return error_set(err, EIO, "unexpected redirect of a POST request to %s",
                         url_host_for_message(url, host, sizeof host));
      if (hops >= MAX_REDIRECTS)
        return error_set(err, EIO, "too many redirects from %s",
                         url_host_for_message(o->url, host, sizeof host));
      if (!str_has_prefix(next, "https://") && !str_has_prefix(next, "http://"))
        return error_set(err, EIO, "redirect to an unsupported URL scheme");
      if (cur.authorization && !same_origin(url, next))
        {
          log_debug("redirect to %s: not forwarding credentials",
                    url_host_for_message(next, host, sizeof host));
          cur.authorization = NULL;
        }
      free(url);
      url = steal_pointer(&next);
    }
}
