/* image/registry_transport: the HTTP(S) exchanges of the registry client,
 * over libcurl, inside crid-pull.so (image/pull_plugin.h).
 *
 * Owns how bytes travel: libcurl's set-up, its handles (reused, keeping
 * their connections; DNS answers and TLS sessions shared between
 * threads), TLS (verification, or none for an insecure registry; a
 * registry's CA directory, its *.crt and *.pem added to the system bundle
 * and re-read every minute or after a reload; a NAME.cert/NAME.key client
 * pair), stall and cancellation checks while bytes flow, bounds on bodies
 * and headers, the Range header of a resumed transfer and the check of
 * its answer, and redirects: followed here, never by libcurl, so the
 * Authorization header never reaches another origin.
 *
 * What to ask for, with which credentials, on which endpoint, and how
 * often to try again is the registry API's (image/registry.c). */
#ifndef CRID_IMAGE_REGISTRY_TRANSPORT_H
#define CRID_IMAGE_REGISTRY_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/error.h"
#include "image/registry.h"

/* The body of a non-2xx answer feeds error messages only: at most this
 * much of it is kept. */
#define REGISTRY_ERROR_BODY_MAX (64 * 1024)

struct registry_transport;

/* One exchange's request. */
struct http_options
{
  const char *url;
  const char *post_body;     /* NULL: GET */
  const char *authorization; /* the header's value; NULL: none */
  const char *accept;
  bool small;         /* ping or token: bounded even without a progress timeout */
  bool insecure;      /* https without verification */
  const char *ca_dir; /* extra CAs; NULL = the system's only */
  /* cancellation and progress timeout; may be NULL */
  const struct registry_request *request;
};

/* One exchange and its response. */
struct transfer
{
  /* 2xx bodies go to sink when set, else into body (at most max_body). */
  registry_sink sink;
  void *sink_arg;
  size_t max_body;
  int64_t range_start; /* > 0: a Range request; the 206 must start here */

  /* The final response. */
  long status;
  char reason[64];
  char *content_type;
  char *www_authenticate;
  char *content_digest;
  char *content_range;
  char *body;
  size_t body_len;

  /* The transport's own, while the exchange runs. */
  const struct registry_request *request;
  int64_t stall_ns; /* no byte for this long: ETIMEDOUT; 0 = none */
  int64_t last_dlnow;
  int64_t last_progress_ns;
  bool body_started;
  bool cancelled;
  bool stalled;
  bool too_big;
  bool bad_range;
  bool sink_failed;
  struct error sink_err;
};

static inline bool
http_status_is_success(long status)
{
  return status >= 200 && status < 300;
}

/* libcurl itself is set up at the first request, not here. */
struct registry_transport *registry_transport_new(void);
void registry_transport_free(struct registry_transport *transport);
/* A configuration reload: CA directories are read again at their next
 * use. */
void registry_transport_reload(struct registry_transport *transport);

/* GET (or POST) o->url, following redirects.  0: a response arrived (any
 * status, in t).  -1: none did; *retryable says whether trying again may
 * help, *unreachable whether the failure was below HTTP (connection, TLS,
 * a broken transfer) rather than our own limits or a cancellation. */
int registry_transport_request(struct registry_transport *transport, const struct http_options *o,
                               struct transfer *t, bool *retryable, bool *unreachable,
                               struct error *err);
/* Forgets the response in t (before a new one arrives). */
static inline void
transfer_reset(struct transfer *t)
{
  t->status = 0;
  t->reason[0] = '\0';
  free(t->content_type);
  free(t->www_authenticate);
  free(t->content_digest);
  free(t->content_range);
  free(t->body);
  t->content_type = t->www_authenticate = t->content_digest = t->content_range = t->body = NULL;
  t->body_len = 0;
  t->body_started = false;
}

/* Frees what an exchange left in t. */
static inline void
transfer_clear(struct transfer *t)
{
  transfer_reset(t);
  error_clear(&t->sink_err);
}

#endif
