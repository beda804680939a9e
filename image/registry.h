/* image/registry: the client side of the distribution API over libcurl.
 *
 * Owns everything about reaching a registry: per-registry settings
 * (location, mirrors, insecure, CA dir; replaceable while pulls run), the
 * /v2/ ping, the Basic and Bearer token flows from WWW-Authenticate
 * challenges (tokens cached per registry and scope until they expire),
 * redirects (credentials never forwarded to another host), bounded
 * retries with backoff, registry error codes in errors, and digest and
 * size verification of everything fetched.
 * No credential ever reaches a log line or an error message. */
#ifndef CRID_IMAGE_REGISTRY_H
#define CRID_IMAGE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct image_reference;

/* [crid.image.registries."HOST[:PORT]"]: how to reach one registry. */
struct registry_config
{
  char *prefix;   /* the table key: a registry host[:port] as in references */
  char *location; /* replaces the host outright; "" = the prefix itself */
  bool insecure;  /* plain HTTP, or HTTPS without verification */
  char *ca_dir;   /* extra CA certificates (*.crt, *.pem) for this registry */
  char **mirrors; /* tried in order before the registry; NULL-terminated */
};

/* Credentials of one pull (CRI AuthConfig); NULL or "" = absent. */
struct registry_auth
{
  const char *username;
  const char *password;
  const char *auth; /* base64("user:password") */
  const char *identity_token;
  const char *registry_token;
};

/* Per-request controls. */
struct registry_request
{
  const struct registry_auth *auth; /* may be NULL: anonymous */
  bool (*cancelled)(void *arg);     /* polled during transfers; may be NULL */
  void *cancel_arg;
  int64_t progress_timeout_seconds; /* no byte for this long: ETIMEDOUT; 0 = none */
};

struct registry_client;

/* The registries array is copied. */
struct registry_client *registry_client_new(const struct registry_config *registries, size_t n);
void registry_client_free(struct registry_client *client);

/* Replaces the client's registry settings with a copy of registries (a
 * configuration reload); safe while calls run.  A call already running
 * finishes with the settings it started with; calls that start later use
 * the new ones.  Mirrors marked unreachable are tried again and CA
 * directories re-read at their next use. */
void registry_client_configure(struct registry_client *client,
                               const struct registry_config *registries, size_t n);

/* GETs the manifest `tag_or_digest` of ref's repository (ref->domain and
 * ref->path are used).  When tag_or_digest is a digest, the bytes must hash
 * to it.  *digest gets "sha256:<hex>" of the bytes; *content_type the
 * response's media type (may be NULL).  At most MANIFEST_MAX_SIZE bytes. */
int registry_fetch_manifest(struct registry_client *client, const struct image_reference *ref,
                            const char *tag_or_digest, const struct registry_request *request,
                            char **bytes, size_t *len, char **content_type, char digest[72],
                            struct error *err);

/* Receives a blob's bytes as they arrive; a negative return aborts. */
typedef int (*registry_sink)(void *arg, const void *data, size_t len, struct error *err);

/* Streams blob `digest` to sink, verifying size (when >= 0) and digest
 * while streaming; a mismatch fails the call (EIO) after the sink has seen
 * the bytes, so the sink's consumer must discard what it got.  A transfer
 * broken after some bytes resumes with a Range request. */
int registry_fetch_blob(struct registry_client *client, const struct image_reference *ref,
                        const char *digest, int64_t size, const struct registry_request *request,
                        registry_sink sink, void *sink_arg, struct error *err);

/* Parsing of one WWW-Authenticate header, exposed for tests. */
struct auth_challenge
{
  char *scheme; /* "basic" or "bearer", lower-case */
  char *realm;
  char *service;
  char *scope;
  char *error;
};

int auth_challenge_parse(const char *header, struct auth_challenge *out, struct error *err);
void auth_challenge_free(struct auth_challenge *challenge);

#endif
