/* image/registry: the client side of the distribution API.
 *
 * One call (a manifest or a blob) walks the endpoints of the reference's
 * registry: its mirrors in order, then the registry itself (or the
 * configured location in its place).  On each endpoint the request is
 * tried up to MAX_ATTEMPTS times with backoff on connection errors, 5xx
 * and 429; a blob broken after some bytes resumes with Range.  What an
 * endpoint needs (https or plain http, and which auth scheme its /v2/
 * ping asked for) is learnt once and cached; Bearer tokens are cached per
 * (host, scope, credentials) until they expire.  The bytes travel through
 * image/registry_transport (libcurl, in crid-pull.so, loaded by the
 * first call), which also follows redirects without forwarding the
 * Authorization header to another host.
 *
 * Credentials and tokens only ever go into request headers: never into a
 * URL, a log line or an error message. */
#include "image/registry.h"

#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "image/digest.h"
#include "image/manifest.h"
#include "image/pull_plugin.h"
#include "image/reference.h"
#include "image/registry_transport.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Attempts in a row without new bytes on one endpoint. */
#define MAX_ATTEMPTS 3
/* All attempts of one blob on one endpoint, resumes included. */
#define MAX_TOTAL_ATTEMPTS 10
#define BACKOFF_FIRST_MS 500
#define TOKEN_BODY_MAX (1024 * 1024)
#define ERROR_TEXT_MAX 512
#define TOKEN_MIN_SECONDS 60
/* A token is dropped this long before it expires, so that it does not
 * expire between the lookup and the request. */
#define TOKEN_MARGIN_SECONDS 10
#define HOST_INFO_TTL_NS (300 * 1000000000LL)
/* A mirror that could not be reached is skipped this long, so that a
 * dead mirror costs one connection attempt, not one per blob. */
#define MIRROR_DOWN_NS (30 * 1000000000LL)
#define NS_PER_SECOND 1000000000LL

/* ---- client state ---- */

/* What the /v2/ ping of one host taught us. */
struct host_info
{
  bool plain_http;
  char *scheme; /* "basic", "bearer" or NULL: no auth asked */
  char *realm;
  char *service;
};

struct host_entry
{
  struct host_entry *next;
  char *host;
  bool insecure;
  struct host_info info;
  int64_t expires_ns;
  int64_t down_until_ns; /* a mirror that could not be reached */
};

struct token_entry
{
  struct token_entry *next;
  char *host;
  char *scope;
  char creds[72]; /* digest of the credentials that got the token */
  char *token;
  int64_t expires_ns;
};

/* The [crid.image.registries] tables, immutable once made.  A reload
 * replaces the client's settings with a new object; a call holds a
 * reference to the one it started with (its endpoints borrow strings from
 * it), so a reload never changes a call midway and never frees what a
 * running call reads. */
struct registry_settings
{
  atomic_uint refs;
  struct registry_config *registries;
  size_t n_registries;
};

struct registry_client
{
  /* Guards everything below. */
  pthread_mutex_t lock;
  struct registry_settings *settings; /* the client's reference */
  struct host_entry *hosts;
  struct token_entry *tokens;
  /* From the first call on; the plugin stays loaded. */
  const struct pull_plugin *pull;
  struct registry_transport *transport;
};

/* One place a repository can be fetched from. */
struct endpoint
{
  char *host;    /* host[:port] contacted */
  char *path;    /* the repository on it (a location may add a namespace) */
  bool insecure; /* https without verification, or plain http */
  bool mirror;
  const char *ca_dir; /* borrowed from the call's settings; NULL = none */
};

/* One registry_fetch_* call. */
struct call
{
  struct registry_client *client;
  const struct pull_plugin *pull;
  struct registry_settings *settings; /* a reference, held for the whole call */
  const struct registry_request *request;
  const struct registry_auth *auth; /* NULL: anonymous */
  char creds[72];                   /* key of the credentials in the token cache */
  const char *subject;              /* "manifest 1", "blob sha256:..." for messages */
  bool unreachable;                 /* the last exchange failed below HTTP */
};

static bool
is_empty(const char *s)
{
  return s == NULL || s[0] == '\0';
}

/* A credential must not be able to add header lines. */
static bool
header_value_is_safe(const char *s)
{
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      return false;
  return true;
}

static char *
base64_encode(const char *data, size_t len)
{
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *out = xmalloc((len + 2) / 3 * 4 + 1);
  char *p = out;
  size_t i;

  for (i = 0; i + 2 < len; i += 3)
    {
      unsigned v = (unsigned char)data[i] << 16 | (unsigned char)data[i + 1] << 8
                   | (unsigned char)data[i + 2];
      *p++ = alphabet[v >> 18];
      *p++ = alphabet[(v >> 12) & 63];
      *p++ = alphabet[(v >> 6) & 63];
      *p++ = alphabet[v & 63];
    }
  if (i < len)
    {
      unsigned v = (unsigned char)data[i] << 16;
      if (i + 1 < len)
        v |= (unsigned char)data[i + 1] << 8;
      *p++ = alphabet[v >> 18];
      *p++ = alphabet[(v >> 12) & 63];
      *p++ = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
      *p++ = '=';
    }
  *p = '\0';
  return out;
}

/* Percent-encodes everything but RFC 3986 unreserved characters. */
static char *
url_escape(const char *s)
{
  static const char hex[] = "0123456789ABCDEF";
  char *out = xmalloc(strlen(s) * 3 + 1);
  char *p = out;

  for (; *s; s++)
    {
      unsigned char c = (unsigned char)*s;
      if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
        *p++ = (char)c;
      else
        {
          *p++ = '%';
          *p++ = hex[c >> 4];
          *p++ = hex[c & 15];
        }
    }
  *p = '\0';
  return out;
}

/* ---- credentials ---- */

static bool
has_basic_credentials(const struct registry_auth *auth)
{
  return auth != NULL && (!is_empty(auth->username) || !is_empty(auth->auth));
}

/* The value of "Authorization: Basic ...", or NULL without credentials. */
static char *
basic_authorization(const struct registry_auth *auth)
{
  if (auth == NULL)
    return NULL;
  if (!is_empty(auth->username))
    {
      cleanup_secret char *pair
          = xasprintf("%s:%s", auth->username, auth->password ? auth->password : "");
      cleanup_secret char *encoded = base64_encode(pair, strlen(pair));
      return xasprintf("Basic %s", encoded);
    }
  if (!is_empty(auth->auth))
    return xasprintf("Basic %s", auth->auth);
  return NULL;
}

static int
check_credentials(const struct registry_auth *auth, struct error *err)
{
  const char *fields[5];

  if (auth == NULL)
    return 0;
  fields[0] = auth->username;
  fields[1] = auth->password;
  fields[2] = auth->auth;
  fields[3] = auth->identity_token;
  fields[4] = auth->registry_token;
  for (size_t i = 0; i < 5; i++)
    if (fields[i] != NULL && !header_value_is_safe(fields[i]))
      return error_set(err, EINVAL, "invalid credentials: control characters");
  return 0;
}

/* Tokens obtained with one set of credentials must never serve another
 * (or an anonymous pull), so the cache key includes a digest of them. */
static void
credentials_key(const struct registry_auth *auth, char out[72])
{
  struct digester *d;
  const char *fields[4];

  if (auth == NULL
      || (is_empty(auth->username) && is_empty(auth->auth) && is_empty(auth->identity_token)))
    {
      snprintf(out, 72, "anonymous");
      return;
    }
  fields[0] = auth->username;
  fields[1] = auth->password;
  fields[2] = auth->auth;
  fields[3] = auth->identity_token;
  d = digester_new();
  for (size_t i = 0; i < 4; i++)
    digester_update(d, fields[i] ? fields[i] : "", fields[i] ? strlen(fields[i]) + 1 : 1);
  digester_finish(d, out);
}

/* ---- settings ---- */

static struct registry_settings *
settings_new(const struct registry_config *registries, size_t n)
{
  struct registry_settings *s = xcalloc(1, sizeof *s);

  atomic_init(&s->refs, 1);
  s->registries = xcalloc(n ? n : 1, sizeof *s->registries);
  s->n_registries = n;
  for (size_t i = 0; i < n; i++)
    {
      struct registry_config *c = &s->registries[i];
      c->prefix = xstrdup(registries[i].prefix ? registries[i].prefix : "");
      c->location = xstrdup(registries[i].location ? registries[i].location : "");
      c->insecure = registries[i].insecure;
      c->ca_dir = xstrdup(registries[i].ca_dir ? registries[i].ca_dir : "");
      c->mirrors = strv_copy(registries[i].mirrors);
    }
  return s;
}

static void
settings_unref(struct registry_settings *s)
{
  if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
    return;
  for (size_t i = 0; i < s->n_registries; i++)
    {
      struct registry_config *c = &s->registries[i];
      free(c->prefix);
      free(c->location);
      free(c->ca_dir);
      strv_free(c->mirrors);
    }
  free(s->registries);
  free(s);
}

/* The settings a call starts with; settings_unref() when it is done. */
static struct registry_settings *
settings_get(struct registry_client *client)
{
  struct registry_settings *s;

  pthread_mutex_lock(&client->lock);
  s = client->settings;
  atomic_fetch_add(&s->refs, 1);
  pthread_mutex_unlock(&client->lock);
  return s;
}

void
registry_client_configure(struct registry_client *client, const struct registry_config *registries,
                          size_t n)
{
  struct registry_settings *fresh = settings_new(registries, n);
  struct registry_settings *old;

  pthread_mutex_lock(&client->lock);
  old = client->settings;
  client->settings = fresh;
  /* What the old settings made us conclude about hosts is not trusted
   * with the new ones: a mirror marked down may have been fixed, a CA
   * directory may have new certificates.  Pings are keyed by (host,
   * insecure), so a host that turned insecure is pinged afresh anyway. */
  for (struct host_entry *h = client->hosts; h; h = h->next)
    h->down_until_ns = 0;
  if (client->transport)
    client->pull->transport_reload(client->transport);
  pthread_mutex_unlock(&client->lock);
  settings_unref(old);
}

struct registry_client *
registry_client_new(const struct registry_config *registries, size_t n)
{
  struct registry_client *client;

  client = xcalloc(1, sizeof *client);
  client->settings = settings_new(registries, n);

  pthread_mutex_init(&client->lock, NULL);
  return client;
}

static void
host_info_clear(struct host_info *info)
{
  free(info->scheme);
  free(info->realm);
  free(info->service);
  memset(info, 0, sizeof *info);
}

static void
host_info_copy(struct host_info *dst, const struct host_info *src)
{
  dst->plain_http = src->plain_http;
  dst->scheme = src->scheme ? xstrdup(src->scheme) : NULL;
  dst->realm = src->realm ? xstrdup(src->realm) : NULL;
  dst->service = src->service ? xstrdup(src->service) : NULL;
}

static void
token_entry_free(struct token_entry *t)
{
  free(t->host);
  free(t->scope);
  if (t->token)
    explicit_bzero(t->token, strlen(t->token));
  free(t->token);
  free(t);
}

void
registry_client_free(struct registry_client *client)
{
  if (client == NULL)
    return;
  if (client->transport)
    client->pull->transport_free(client->transport);
  pthread_mutex_destroy(&client->lock);

  while (client->hosts)
    {
      struct host_entry *h = client->hosts;
      client->hosts = h->next;
      free(h->host);
      host_info_clear(&h->info);
      free(h);
    }
  while (client->tokens)
    {
      struct token_entry *t = client->tokens;
      client->tokens = t->next;
      token_entry_free(t);
    }
  settings_unref(client->settings);
  free(client);
}

/* ---- endpoints ---- */

static const struct registry_config *
find_config(const struct registry_settings *settings, const char *prefix)
{
  for (size_t i = 0; i < settings->n_registries; i++)
    if (strcmp(settings->registries[i].prefix, prefix) == 0)
      return &settings->registries[i];
  return NULL;
}

static void
endpoint_clear(struct endpoint *ep)
{
  free(ep->host);
  free(ep->path);
  memset(ep, 0, sizeof *ep);
}

static void
endpoints_free(struct endpoint *eps, size_t n)
{
  for (size_t i = 0; i < n; i++)
    endpoint_clear(&eps[i]);
  free(eps);
}

/* location is "host[:port][/namespace]".  `inherit` is the config of the
 * registry a location replaces: its settings apply to the location. */
static void
endpoint_init(const struct registry_settings *settings, struct endpoint *ep, const char *location,
              const char *repo_path, const struct registry_config *inherit)
{
  const struct registry_config *own;
  const char *slash = strchr(location, '/');
  size_t ns_len = 0;

  ep->host = slash ? xstrndup(location, slash - location) : xstrdup(location);
  if (slash)
    {
      ns_len = strlen(slash + 1);
      while (ns_len > 0 && slash[1 + ns_len - 1] == '/')
        ns_len--;
    }
  ep->path = ns_len ? xasprintf("%.*s/%s", (int)ns_len, slash + 1, repo_path) : xstrdup(repo_path);

  own = find_config(settings, location);
  if (own == NULL)
    own = find_config(settings, ep->host);
  ep->insecure = (inherit && inherit->insecure) || (own && own->insecure);
  if (inherit && !is_empty(inherit->ca_dir))
    ep->ca_dir = inherit->ca_dir;
  else if (own && !is_empty(own->ca_dir))
    ep->ca_dir = own->ca_dir;

  /* Docker Hub's API does not live at its reference name. */
  if (strcmp(ep->host, "docker.io") == 0 || strcmp(ep->host, "index.docker.io") == 0)
    {
      free(ep->host);
      ep->host = xstrdup("registry-1.docker.io");
    }
}

/* Mirrors first, in order, then the registry (or its location). */
static struct endpoint *
endpoints_for(const struct registry_settings *settings, const struct image_reference *ref,
              size_t *n)
{
  const struct registry_config *rc = find_config(settings, ref->domain);
  size_t n_mirrors = rc && rc->mirrors ? strv_length(rc->mirrors) : 0;
  struct endpoint *eps = xcalloc(n_mirrors + 1, sizeof *eps);
  size_t count = 0;

  for (size_t i = 0; i < n_mirrors; i++)
    if (!is_empty(rc->mirrors[i]))
      {
        endpoint_init(settings, &eps[count], rc->mirrors[i], ref->path, NULL);
        eps[count++].mirror = true;
      }
  endpoint_init(settings, &eps[count++], rc && !is_empty(rc->location) ? rc->location : ref->domain,
                ref->path, rc);
  *n = count;
  return eps;
}

/* One exchange with ep (or where it redirects to) through the
 * transport, with ep's TLS settings and the call's cancellation. */
static int
request_follow(struct call *call, const struct endpoint *ep, const struct http_options *o,
               struct transfer *t, bool *retryable, struct error *err)
{
  struct http_options with_ep = *o;

  with_ep.insecure = ep->insecure;
  with_ep.ca_dir = ep->ca_dir;
  with_ep.request = call->request;
  return call->pull->transport_request(call->client->transport, &with_ep, t, retryable,
                                       &call->unreachable, err);
}

/* The registry's error JSON as "CODE: message; CODE: message", or NULL. */
static char *
registry_error_text(const struct transfer *t)
{
  struct error ignored = ERROR_INIT;
  cleanup_json struct json_value *root = NULL;
  const struct json_value *errors;
  cleanup_free char *text = NULL;

  if (t->body == NULL || t->body_len == 0)
    return NULL;
  root = json_parse(t->body, t->body_len, &ignored);
  error_clear(&ignored);
  errors = json_object_get(root, "errors");
  if (root == NULL || !json_is_array(errors))
    return NULL;
  for (size_t i = 0; i < json_array_size(errors) && i < 4; i++)
    {
      const struct json_value *e = json_array_at(errors, i);
      const char *code = json_object_get_string(e, "code");
      const char *message = json_object_get_string(e, "message");
      cleanup_free char *one = NULL;
      char *joined;

      if (code == NULL && message == NULL)
        continue;
      if (code && message)
        one = xasprintf("%s: %s", code, message);
      else
        one = xstrdup(code ? code : message);
      joined = text ? xasprintf("%s; %s", text, one) : xstrdup(one);
      free(text);
      text = joined;
    }
  if (text == NULL)
    return NULL;
  return str_printable(text, strlen(text), ERROR_TEXT_MAX);
}

/* "HTTP 404 MANIFEST_UNKNOWN: manifest unknown", or with the reason
 * phrase when the body says nothing useful. */
static char *
status_text(const struct transfer *t)
{
  cleanup_free char *detail = registry_error_text(t);

  if (detail)
    return xasprintf("HTTP %ld %s", t->status, detail);
  if (t->reason[0])
    return xasprintf("HTTP %ld %s", t->status, t->reason);
  return xasprintf("HTTP %ld", t->status);
}

/* The error for a final non-2xx response. */
static int
status_error(const struct call *call, const struct transfer *t, bool *retryable, struct error *err)
{
  cleanup_free char *text = status_text(t);

  *retryable = t->status == 429 || t->status >= 500;
  switch (t->status)
    {
    case 401:
      return error_set(err, EACCES, "authentication failed: %s", text);
    case 403:
      return error_set(err, EACCES, "access denied to %s: %s", call->subject, text);
    case 404:
      return error_set(err, ENOENT, "%s not found: %s", call->subject, text);
    case 429:
      return error_set(err, EAGAIN, "fetch %s: too many requests: %s", call->subject, text);
    default:
      return error_set(err, EIO, "fetch %s: %s", call->subject, text);
    }
}

/* ---- hosts: ping and its cache ---- */

static struct host_entry *
host_entry_get_locked(struct registry_client *client, const struct endpoint *ep)
{
  struct host_entry *h;

  for (h = client->hosts; h; h = h->next)
    if (h->insecure == ep->insecure && strcmp(h->host, ep->host) == 0)
      return h;
  h = xcalloc(1, sizeof *h);
  h->host = xstrdup(ep->host);
  h->insecure = ep->insecure;
  h->next = client->hosts;
  client->hosts = h;
  return h;
}

static bool
host_lookup(struct registry_client *client, const struct endpoint *ep, struct host_info *out)
{
  int64_t now = time_monotonic_ns();
  bool found = false;

  pthread_mutex_lock(&client->lock);
  for (struct host_entry *h = client->hosts; h; h = h->next)
    if (h->insecure == ep->insecure && strcmp(h->host, ep->host) == 0 && h->expires_ns > now)
      {
        host_info_copy(out, &h->info);
        found = true;
        break;
      }
  pthread_mutex_unlock(&client->lock);
  return found;
}

static void
host_store(struct registry_client *client, const struct endpoint *ep, const struct host_info *info)
{
  struct host_entry *h;

  pthread_mutex_lock(&client->lock);
  h = host_entry_get_locked(client, ep);
  host_info_clear(&h->info);
  host_info_copy(&h->info, info);
  h->expires_ns = time_monotonic_ns() + HOST_INFO_TTL_NS;
  pthread_mutex_unlock(&client->lock);
}

static void
mirror_mark_down(struct registry_client *client, const struct endpoint *ep)
{
  pthread_mutex_lock(&client->lock);
  host_entry_get_locked(client, ep)->down_until_ns = time_monotonic_ns() + MIRROR_DOWN_NS;
  pthread_mutex_unlock(&client->lock);
}

static bool
mirror_is_down(struct registry_client *client, const struct endpoint *ep)
{
  int64_t now = time_monotonic_ns();
  bool down = false;

  pthread_mutex_lock(&client->lock);
  for (struct host_entry *h = client->hosts; h; h = h->next)
    if (h->insecure == ep->insecure && strcmp(h->host, ep->host) == 0)
      down = h->down_until_ns > now;
  pthread_mutex_unlock(&client->lock);
  return down;
}

/* After a network failure the host may come back different (restarted,
 * now with TLS or auth): ping it again next time. */
static void
host_forget(struct registry_client *client, const struct endpoint *ep)
{
  pthread_mutex_lock(&client->lock);
  for (struct host_entry *h = client->hosts; h; h = h->next)
    if (h->insecure == ep->insecure && strcmp(h->host, ep->host) == 0)
      h->expires_ns = 0;
  pthread_mutex_unlock(&client->lock);
}

static int
host_info_from_challenge(struct host_info *info, const char *header, struct error *err)
{
  struct auth_challenge challenge = { 0 };

  if (header == NULL)
    return error_set(err, EIO, "HTTP 401 without a WWW-Authenticate header");
  if (auth_challenge_parse(header, &challenge, err) < 0)
    return -1;
  free(info->scheme);
  free(info->realm);
  free(info->service);
  info->scheme = steal_pointer(&challenge.scheme);
  info->realm = steal_pointer(&challenge.realm);
  info->service = steal_pointer(&challenge.service);
  auth_challenge_free(&challenge);
  return 0;
}

static int
ping(struct call *call, const struct endpoint *ep, bool plain_http, struct transfer *t,
     bool *retryable, struct error *err)
{
  cleanup_free char *url = xasprintf("%s://%s/v2/", plain_http ? "http" : "https", ep->host);
  struct http_options o = { .url = url, .small = true };

  return request_follow(call, ep, &o, t, retryable, err);
}

/* How to talk to ep: from the cache, or from a GET /v2/ that answers
 * 200 (no auth) or 401 with the challenge to meet. */
static int
host_info_get(struct call *call, const struct endpoint *ep, struct host_info *out, bool *retryable,
              struct error *err)
{
  struct transfer t = { .max_body = REGISTRY_ERROR_BODY_MAX };
  bool plain_http = false;
  int ret;

  if (host_lookup(call->client, ep, out))
    return 0;

  ret = ping(call, ep, false, &t, retryable, err);
  if (ret < 0 && ep->insecure && err->code != ECANCELED && err->code != ETIMEDOUT)
    {
      /* An insecure registry may speak plain HTTP only. */
      log_debug("registry %s: https failed (%s), trying http", ep->host, error_message(err));
      error_clear(err);
      plain_http = true;
      ret = ping(call, ep, true, &t, retryable, err);
    }
  if (ret < 0)
    {
      transfer_clear(&t);
      return -1;
    }

  out->plain_http = plain_http;
  if (t.status == 401 && host_info_from_challenge(out, t.www_authenticate, err) < 0)
    {
      transfer_clear(&t);
      return error_wrap(err, "ping registry %s", ep->host);
    }
  /* Anything but 401 means no auth is asked; a registry answering 404
   * here may still serve the repository, so the real request decides. */
  log_debug("registry %s: %s, auth %s", ep->host, plain_http ? "http" : "https",
            out->scheme ? out->scheme : "none");
  transfer_clear(&t);
  host_store(call->client, ep, out);
  return 0;
}

/* ---- tokens ---- */

static char *
token_lookup(struct registry_client *client, const char *host, const char *scope, const char *creds)
{
  int64_t now = time_monotonic_ns();
  struct token_entry **pp = &client->tokens;
  char *token = NULL;

  pthread_mutex_lock(&client->lock);
  while (*pp)
    {
      struct token_entry *e = *pp;
      if (e->expires_ns <= now)
        {
          *pp = e->next;
          token_entry_free(e);
          continue;
        }
      if (token == NULL && strcmp(e->host, host) == 0 && strcmp(e->scope, scope) == 0
          && strcmp(e->creds, creds) == 0)
        token = xstrdup(e->token);
      pp = &e->next;
    }
  pthread_mutex_unlock(&client->lock);
  return token;
}

static void
token_forget(struct registry_client *client, const char *host, const char *scope, const char *creds)
{
  pthread_mutex_lock(&client->lock);
  for (struct token_entry *e = client->tokens; e; e = e->next)
    if (strcmp(e->host, host) == 0 && strcmp(e->scope, scope) == 0 && strcmp(e->creds, creds) == 0)
      e->expires_ns = 0;
  pthread_mutex_unlock(&client->lock);
}

static void
token_store(struct registry_client *client, const char *host, const char *scope, const char *creds,
            const char *token, int64_t expires_in)
{
  struct token_entry *e = xcalloc(1, sizeof *e);

  e->host = xstrdup(host);
  e->scope = xstrdup(scope);
  snprintf(e->creds, sizeof e->creds, "%s", creds);
  e->token = xstrdup(token);
  e->expires_ns = time_monotonic_ns() + (expires_in - TOKEN_MARGIN_SECONDS) * NS_PER_SECOND;
  pthread_mutex_lock(&client->lock);
  e->next = client->tokens;
  client->tokens = e;
  pthread_mutex_unlock(&client->lock);
}

/* "&scope=a&scope=b" for each space-separated scope, ours first. */
static char *
scope_params(const char *scope, const char *extra)
{
  cleanup_free char *escaped = url_escape(scope);
  char *out = xasprintf("&scope=%s", escaped);
  cleanup_free char *copy = extra ? xstrdup(extra) : NULL;
  char *save = NULL;

  for (char *s = copy ? strtok_r(copy, " ", &save) : NULL; s; s = strtok_r(NULL, " ", &save))
    {
      cleanup_free char *e = NULL;
      char *joined;

      if (strcmp(s, scope) == 0)
        continue;
      e = url_escape(s);
      joined = xasprintf("%s&scope=%s", out, e);
      free(out);
      out = joined;
    }
  return out;
}

static char *
realm_for_message(const char *realm)
{
  size_t n = strcspn(realm, "?#");
  return str_printable(realm, n, 200);
}

/* Gets a Bearer token from the realm of the challenge (docs/facts/image.md
 * §3): GET with Basic credentials if any, or the OAuth2 refresh-token POST
 * with an identity token. */
static int
token_fetch(struct call *call, const struct endpoint *ep, const struct host_info *info,
            const char *scope, const char *extra_scope, char **token, int64_t *expires_in,
            bool *retryable, struct error *err)
{
  const struct registry_auth *auth = call->auth;
  struct transfer t = { .max_body = TOKEN_BODY_MAX };
  cleanup_free char *realm = realm_for_message(info->realm);
  cleanup_free char *scopes = scope_params(scope, extra_scope);
  cleanup_free char *service = NULL;
  cleanup_free char *url = NULL;
  cleanup_secret char *body = NULL;
  cleanup_secret char *authorization = NULL;
  cleanup_json struct json_value *root = NULL;
  const char *value;
  int64_t seconds = 0;
  struct http_options o = { .small = true };

  if (!str_has_prefix(info->realm, "https://") && !str_has_prefix(info->realm, "http://"))
    return error_set(err, EIO, "token realm '%s' is not an http(s) URL", realm);
  if (info->service)
    {
      cleanup_free char *escaped = url_escape(info->service);
      service = xasprintf("service=%s", escaped);
    }
  else
    service = xstrdup("");

  if (auth && !is_empty(auth->identity_token))
    {
      cleanup_secret char *refresh = url_escape(auth->identity_token);
      url = xstrdup(info->realm);
      /* scope_params starts with '&', which the form tolerates after the
       * other fields. */
      body = xasprintf("grant_type=refresh_token&refresh_token=%s&%s%s&client_id=crid", refresh,
                       service, scopes);
      o.post_body = body;
      log_debug("registry %s: using an identity token with %s", ep->host, realm);
    }
  else
    {
      cleanup_free char *account = NULL;
      if (auth && !is_empty(auth->username))
        {
          cleanup_free char *user = url_escape(auth->username);
          account = xasprintf("&account=%s", user);
        }
      url = xasprintf("%s%c%s%s%s", info->realm, strchr(info->realm, '?') ? '&' : '?', service,
                      scopes, account ? account : "");
      authorization = basic_authorization(auth);
      o.authorization = authorization;
      log_debug("registry %s: requesting a token from %s%s", ep->host, realm,
                authorization ? " with Basic auth" : " anonymously");
    }
  o.url = url;

  if (request_follow(call, ep, &o, &t, retryable, err) < 0)
    {
      transfer_clear(&t);
      return error_wrap(err, "token request to %s", realm);
    }
  if (!http_status_is_success(t.status))
    {
      cleanup_free char *text = status_text(&t);
      long status = t.status;
      *retryable = status == 429 || status >= 500;
      transfer_clear(&t);
      if (status == 401 || status == 403)
        return error_set(err, EACCES, "authentication failed: token request to %s: %s", realm,
                         text);
      return error_set(err, EIO, "token request to %s: %s", realm, text);
    }

  root = json_parse(t.body ? t.body : "", t.body_len, err);
  transfer_clear(&t);
  if (root == NULL)
    return error_wrap(err, "token response from %s", realm);
  value = json_object_get_string(root, "token");
  if (is_empty(value))
    value = json_object_get_string(root, "access_token");
  if (is_empty(value) || !header_value_is_safe(value))
    return error_set(err, EIO, "token response from %s has no usable token", realm);
  if (!json_integer(json_object_get(root, "expires_in"), &seconds) || seconds < TOKEN_MIN_SECONDS)
    seconds = TOKEN_MIN_SECONDS;
  *token = xstrdup(value);
  *expires_in = seconds;
  return 0;
}

/* The Authorization value for a request to ep, or NULL when none is
 * needed (or none is possible: the 401 then tells the user). */
static int
authorization_for(struct call *call, const struct endpoint *ep, const struct host_info *info,
                  const char *scope, const char *extra_scope, bool fresh, char **out,
                  bool *retryable, struct error *err)
{
  const struct registry_auth *auth = call->auth;
  cleanup_secret char *token = NULL;
  int64_t expires_in = 0;

  *out = NULL;
  if (info->scheme == NULL)
    return 0;
  if (auth && !is_empty(auth->registry_token))
    {
      log_debug("registry %s: using the given registry token", ep->host);
      *out = xasprintf("Bearer %s", auth->registry_token);
      return 0;
    }
  if (strcmp(info->scheme, "basic") == 0)
    {
      *out = basic_authorization(auth);
      if (*out)
        log_debug("registry %s: using Basic auth", ep->host);
      return 0;
    }

  if (!fresh)
    token = token_lookup(call->client, ep->host, scope, call->creds);
  if (token == NULL)
    {
      if (token_fetch(call, ep, info, scope, extra_scope, &token, &expires_in, retryable, err) < 0)
        return -1;
      token_store(call->client, ep->host, scope, call->creds, token, expires_in);
    }
  log_debug("registry %s: using a Bearer token for %s", ep->host, scope);
  *out = xasprintf("Bearer %s", token);
  return 0;
}

/* ---- requests on an endpoint ---- */

/* GET /v2/<path><suffix> on ep with whatever auth it asks for.  A 401
 * gets one more try with what its challenge asks (the token may have
 * expired or been revoked, the server's auth may have changed).  0 when a
 * response arrived; its status is the caller's to judge. */
static int
endpoint_request(struct call *call, const struct endpoint *ep, const char *suffix,
                 const char *accept, struct transfer *t, bool *retryable, struct error *err)
{
  struct host_info info = { 0 };
  cleanup_free char *scope = xasprintf("repository:%s:pull", ep->path);
  cleanup_free char *extra_scope = NULL;
  int ret = 0;

  *retryable = false;
  if (host_info_get(call, ep, &info, retryable, err) < 0)
    return -1;

  for (int round = 0; round < 2; round++)
    {
      cleanup_secret char *authorization = NULL;
      cleanup_free char *url = xasprintf("%s://%s/v2/%s%s", info.plain_http ? "http" : "https",
                                         ep->host, ep->path, suffix);
      struct http_options o = { .url = url, .accept = accept };
      struct auth_challenge challenge = { 0 };
      struct error ignored = ERROR_INIT;
      bool sent_basic;

      ret = authorization_for(call, ep, &info, scope, extra_scope, round > 0, &authorization,
                              retryable, err);
      if (ret < 0)
        break;
      o.authorization = authorization;
      sent_basic = authorization && str_has_prefix(authorization, "Basic ");

      ret = request_follow(call, ep, &o, t, retryable, err);
      if (ret < 0)
        {
          if (*retryable)
            host_forget(call->client, ep);
          break;
        }
      if (t->status != 401 || round > 0 || t->www_authenticate == NULL)
        break;

      if (auth_challenge_parse(t->www_authenticate, &challenge, &ignored) < 0)
        {
          error_clear(&ignored);
          break;
        }
      /* The same Basic credentials again, or none at all, cannot help. */
      if (strcmp(challenge.scheme, "basic") == 0
          && (sent_basic || !has_basic_credentials(call->auth)))
        {
          auth_challenge_free(&challenge);
          break;
        }
      log_debug("registry %s: HTTP 401, authenticating again", ep->host);
      free(info.scheme);
      free(info.realm);
      free(info.service);
      info.scheme = steal_pointer(&challenge.scheme);
      info.realm = steal_pointer(&challenge.realm);
      info.service = steal_pointer(&challenge.service);
      free(extra_scope);
      extra_scope = steal_pointer(&challenge.scope);
      auth_challenge_free(&challenge);
      host_store(call->client, ep, &info);
      token_forget(call->client, ep->host, scope, call->creds);
    }
  host_info_clear(&info);
  return ret;
}

static void
backoff_delay(struct timespec *ts, int failures)
{
  int64_t ms = (int64_t)BACKOFF_FIRST_MS << (failures - 1);
  ts->tv_sec = ms / 1000;
  ts->tv_nsec = (ms % 1000) * 1000000;
}

/* Sleeps before the next attempt, waking up for a cancellation. */
static int
backoff_sleep(struct call *call, int failures, struct error *err)
{
  struct timespec total;
  int64_t end;

  backoff_delay(&total, failures);
  end = time_monotonic_ns() + total.tv_sec * NS_PER_SECOND + total.tv_nsec;
  for (;;)
    {
      const struct registry_request *r = call->request;
      int64_t left = end - time_monotonic_ns();
      struct timespec step = { 0, 100 * 1000000 };

      if (r && r->cancelled && r->cancelled(r->cancel_arg))
        return error_set(err, ECANCELED, "cancelled");
      if (left <= 0)
        return 0;
      if (left < 100 * 1000000)
        step.tv_nsec = left;
      nanosleep(&step, NULL);
    }
}

/* One attempt on one endpoint; *retryable asks for another. */
typedef int (*attempt_fn)(struct call *call, const struct endpoint *ep, void *arg, bool *retryable,
                          struct error *err);

/* Runs attempt until it succeeds, fails for good, or fails MAX_ATTEMPTS
 * times in a row without progress (*progress growing resets the count). */
static int
with_retries(struct call *call, const struct endpoint *ep, attempt_fn attempt, void *arg,
             const uint64_t *progress, struct error *err)
{
  int failures = 0;

  for (int total = 1;; total++)
    {
      uint64_t before = progress ? *progress : 0;
      bool retryable = false;
      bool advanced;
      struct timespec delay;

      if (attempt(call, ep, arg, &retryable, err) == 0)
        return 0;
      advanced = progress && *progress > before;
      if (advanced)
        failures = 0;
      failures++;
      if (!retryable || failures >= MAX_ATTEMPTS || total >= MAX_TOTAL_ATTEMPTS)
        return -1;
      /* A mirror gets one attempt, the registry itself being the
       * fallback, unless it has delivered bytes worth resuming. */
      if (ep->mirror && !advanced)
        return -1;
      backoff_delay(&delay, failures);
      log_info("%s; attempt %d in %ld ms", error_message(err), total + 1,
               (long)(delay.tv_sec * 1000 + delay.tv_nsec / 1000000));
      if (backoff_sleep(call, failures, err) < 0)
        return -1;
      error_clear(err);
    }
}

static void
call_clear(struct call *call)
{
  settings_unref(call->settings);
  call->settings = NULL;
}
#define cleanup_call __attribute__((cleanup(call_clear)))

/* Loads the pull plugin at the first call. */
static int
call_init(struct call *call, struct registry_client *client, const struct registry_request *request,
          const char *subject, struct error *err)
{
  const struct pull_plugin *pull = pull_plugin_get(err);

  if (pull == NULL)
    return -1;
  pthread_mutex_lock(&client->lock);
  if (client->transport == NULL)
    {
      client->pull = pull;
      client->transport = pull->transport_new();
    }
  pthread_mutex_unlock(&client->lock);
  call->client = client;
  call->pull = pull;
  call->settings = settings_get(client);
  call->request = request;
  call->auth = request ? request->auth : NULL;
  call->subject = subject;
  credentials_key(call->auth, call->creds);
  return 0;
}

/* Tries each endpoint in turn.  When the mirrors fail, the registry's own
 * error is the one reported; a cancellation stops everything. */
static int
over_endpoints(struct call *call, const struct image_reference *ref, attempt_fn attempt, void *arg,
               const uint64_t *progress, struct error *err)
{
  size_t n = 0;
  struct endpoint *eps = endpoints_for(call->settings, ref, &n);
  int ret = -1;

  for (size_t i = 0; i < n; i++)
    {
      if (eps[i].mirror && mirror_is_down(call->client, &eps[i]))
        {
          log_debug("%s: skipping mirror %s, unreachable a moment ago", call->subject, eps[i].host);
          continue;
        }
      call->unreachable = false;
      ret = with_retries(call, &eps[i], attempt, arg, progress, err);
      if (ret < 0 && eps[i].mirror && call->unreachable)
        mirror_mark_down(call->client, &eps[i]);
      if (ret == 0 || i + 1 == n || err->code == ECANCELED)
        break;
      /* A sink that has seen bytes cannot take them again from another
       * endpoint. */
      if (progress && *progress > 0)
        break;
      log_info("%s: mirror %s failed: %s; trying %s", call->subject, eps[i].host,
               error_message(err), eps[i + 1].host);
      error_clear(err);
    }
  endpoints_free(eps, n);
  return ret;
}

/* ---- manifests ---- */

struct manifest_fetch
{
  const char *reference; /* tag or digest */
  char *bytes;
  size_t len;
  char *content_type;
  char digest[72];
};

static bool
tag_is_valid(const char *tag)
{
  size_t len = strlen(tag);

  if (len == 0 || len > 128 || !(isalnum((unsigned char)tag[0]) || tag[0] == '_'))
    return false;
  for (size_t i = 1; i < len; i++)
    if (!isalnum((unsigned char)tag[i]) && !strchr("_.-", tag[i]))
      return false;
  return true;
}

/* "type/subtype" without parameters. */
static char *
media_type_of(const char *content_type)
{
  size_t n = strcspn(content_type, ";");

  while (n > 0 && (content_type[n - 1] == ' ' || content_type[n - 1] == '\t'))
    n--;
  return str_printable(content_type, n, 255);
}

static int
manifest_attempt(struct call *call, const struct endpoint *ep, void *arg, bool *retryable,
                 struct error *err)
{
  struct manifest_fetch *m = arg;
  struct transfer t = { .max_body = MANIFEST_MAX_SIZE };
  cleanup_free char *suffix = xasprintf("/manifests/%s", m->reference);
  bool by_digest = digest_is_valid(m->reference);

  if (endpoint_request(call, ep, suffix, MANIFEST_ACCEPT, &t, retryable, err) < 0)
    {
      transfer_clear(&t);
      return err->code == EACCES ? -1 : error_wrap(err, "fetch %s", call->subject);
    }
  if (!http_status_is_success(t.status))
    {
      status_error(call, &t, retryable, err);
      transfer_clear(&t);
      return -1;
    }

  digest_buffer(t.body ? t.body : "", t.body_len, m->digest);
  if (by_digest && strcmp(m->digest, m->reference) != 0)
    {
      *retryable = false;
      error_set(err, EIO, "manifest %s digest mismatch: got %s", m->reference, m->digest);
      transfer_clear(&t);
      return -1;
    }
  if (!by_digest && t.content_digest && str_has_prefix(t.content_digest, "sha256:")
      && strcmp(t.content_digest, m->digest) != 0)
    {
      cleanup_free char *claimed = str_printable(t.content_digest, strlen(t.content_digest), 80);
      *retryable = false;
      error_set(err, EIO, "manifest %s digest mismatch: Docker-Content-Digest %s, got %s",
                m->reference, claimed, m->digest);
      transfer_clear(&t);
      return -1;
    }

  m->bytes = t.body ? steal_pointer(&t.body) : xstrdup("");
  m->len = t.body_len;
  m->content_type = t.content_type ? media_type_of(t.content_type) : NULL;
  transfer_clear(&t);
  return 0;
}

int
registry_fetch_manifest(struct registry_client *client, const struct image_reference *ref,
                        const char *tag_or_digest, const struct registry_request *request,
                        char **bytes, size_t *len, char **content_type, char digest[72],
                        struct error *err)
{
  struct manifest_fetch m = { .reference = tag_or_digest };
  cleanup_free char *subject = NULL;
  cleanup_call struct call call = { 0 };

  if (tag_or_digest == NULL || (!digest_is_valid(tag_or_digest) && !tag_is_valid(tag_or_digest)))
    return error_set(err, EINVAL, "invalid tag or digest '%s'", tag_or_digest ? tag_or_digest : "");
  if (request && check_credentials(request->auth, err) < 0)
    return -1;

  subject = xasprintf("manifest %s", tag_or_digest);
  if (call_init(&call, client, request, subject, err) < 0
      || over_endpoints(&call, ref, manifest_attempt, &m, NULL, err) < 0)
    return -1;

  *bytes = m.bytes;
  *len = m.len;
  if (content_type)
    *content_type = m.content_type;
  else
    free(m.content_type);
  memcpy(digest, m.digest, sizeof m.digest);
  return 0;
}

/* ---- blobs ---- */

struct blob_fetch
{
  const char *digest;
  int64_t size;
  struct digester *digester;
  uint64_t received; /* bytes the sink has accepted */
  registry_sink sink;
  void *sink_arg;
};

/* Verifies while streaming: hashes, counts, refuses bytes past size. */
static int
blob_sink(void *arg, const void *data, size_t len, struct error *err)
{
  struct blob_fetch *b = arg;

  if (b->size >= 0 && b->received + len > (uint64_t)b->size)
    return error_set(err, EIO, "size mismatch: more than the expected %lld bytes",
                     (long long)b->size);
  digester_update(b->digester, data, len);
  if (b->sink(b->sink_arg, data, len, err) < 0)
    return -1;
  b->received += len;
  return 0;
}

static int
blob_attempt(struct call *call, const struct endpoint *ep, void *arg, bool *retryable,
             struct error *err)
{
  struct blob_fetch *b = arg;
  struct transfer t = { .sink = blob_sink, .sink_arg = b };
  cleanup_free char *suffix = xasprintf("/blobs/%s", b->digest);

  /* Every byte arrived before the connection broke: nothing to resume. */
  if (b->size >= 0 && b->received > 0 && b->received == (uint64_t)b->size)
    return 0;
  t.range_start = (int64_t)b->received;
  if (b->received > 0)
    log_info("%s: resuming at byte %llu", call->subject, (unsigned long long)b->received);

  if (endpoint_request(call, ep, suffix, NULL, &t, retryable, err) < 0)
    {
      transfer_clear(&t);
      return err->code == EACCES ? -1 : error_wrap(err, "fetch %s", call->subject);
    }
  if (!http_status_is_success(t.status))
    {
      status_error(call, &t, retryable, err);
      transfer_clear(&t);
      return -1;
    }
  transfer_clear(&t);
  return 0;
}

int
registry_fetch_blob(struct registry_client *client, const struct image_reference *ref,
                    const char *digest, int64_t size, const struct registry_request *request,
                    registry_sink sink, void *sink_arg, struct error *err)
{
  struct blob_fetch b = { .digest = digest, .size = size, .sink = sink, .sink_arg = sink_arg };
  cleanup_free char *subject = NULL;
  cleanup_call struct call call = { 0 };
  char got[72];
  int ret;

  if (digest == NULL || !digest_is_valid(digest))
    return error_set(err, EINVAL, "invalid blob digest '%s'", digest ? digest : "");
  if (request && check_credentials(request->auth, err) < 0)
    return -1;

  subject = xasprintf("blob %s", digest);
  if (call_init(&call, client, request, subject, err) < 0)
    return -1;
  b.digester = digester_new();
  ret = over_endpoints(&call, ref, blob_attempt, &b, &b.received, err);
  digester_finish(b.digester, got);
  if (ret < 0)
    return -1;

  if (size >= 0 && b.received != (uint64_t)size)
    return error_set(err, EIO, "blob %s size mismatch: got %llu bytes, expected %lld", digest,
                     (unsigned long long)b.received, (long long)size);
  if (strcmp(got, digest) != 0)
    return error_set(err, EIO, "blob %s digest mismatch: got %s", digest, got);
  return 0;
}
