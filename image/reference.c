/* image/reference: parsing and normalising image references.
 *
 * The grammar is the one of the distribution reference library (see
 * docs/facts/image.md §1):
 *
 *   reference := name [":" tag] ["@" digest]
 *   name      := [domain "/"] path
 *   domain    := host [":" port]      host: DNS name, IPv4 or "[" IPv6 "]"
 *   path      := component ("/" component)*
 *   component := [a-z0-9]+ (separator [a-z0-9]+)*
 *   separator := "." | "_" | "__" | "-"+
 *   tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *
 * plus Docker's normalisation: a first component is a registry only when it
 * looks like one ("localhost", or it has a '.', a ':' or an upper-case
 * letter); otherwise the image is on docker.io, where one-component paths
 * live under "library/".  Only sha256 digests are accepted: it is the only
 * algorithm registries use and the only one the content store verifies.
 *
 * Everything is checked by hand with ASCII tests rather than regular
 * expressions or <ctype.h>, so the result never depends on the locale. */
#include "image/reference.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_DOMAIN "docker.io"
#define LEGACY_DEFAULT_DOMAIN "index.docker.io"
#define OFFICIAL_PREFIX "library/"
#define DEFAULT_TAG "latest"
#define NAME_MAX_LENGTH 255
#define TAG_MAX_LENGTH 128
#define SHA256_HEX_LENGTH 64
/* How much of a bad reference an error message repeats. */
#define QUOTE_MAX_LENGTH 200

static bool
is_lower(char c)
{
  return c >= 'a' && c <= 'z';
}

static bool
is_upper(char c)
{
  return c >= 'A' && c <= 'Z';
}

static bool
is_digit(char c)
{
  return c >= '0' && c <= '9';
}

static bool
is_alnum(char c)
{
  return is_lower(c) || is_upper(c) || is_digit(c);
}

static bool
is_lower_hex(char c)
{
  return is_digit(c) || (c >= 'a' && c <= 'f');
}

static bool
is_hex(char c)
{
  return is_lower_hex(c) || (c >= 'A' && c <= 'F');
}

static bool
all_lower_hex(const char *s, size_t len)
{
  for (size_t i = 0; i < len; i++)
    if (!is_lower_hex(s[i]))
      return false;
  return true;
}

bool
digest_is_valid(const char *digest)
{
  if (digest == NULL || strncmp(digest, "sha256:", 7) != 0)
    return false;
  return strlen(digest + 7) == SHA256_HEX_LENGTH && all_lower_hex(digest + 7, SHA256_HEX_LENGTH);
}

static char *
quote_bytes(const char *text, size_t len)
{
  return quote_untrusted(text, len, QUOTE_MAX_LENGTH);
}

static int __attribute__((format(printf, 3, 4)))
invalid(struct error *err, const char *text, const char *fmt, ...)
{
  cleanup_free char *quoted = quote_bytes(text, strlen(text));
  cleanup_free char *reason = NULL;
  va_list ap;

  va_start(ap, fmt);
  reason = xvasprintf(fmt, ap);
  va_end(ap);
  return error_set(err, EINVAL, "invalid reference %s: %s", quoted, reason);
}

/* [A-Za-z0-9] or [A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9], for each dot-separated
 * label of a DNS name or an IPv4 address. */
static bool
host_name_is_valid(const char *s, size_t len)
{
  size_t start = 0;

  if (len == 0)
    return false;
  for (size_t i = 0; i <= len; i++)
    {
      if (i < len && s[i] != '.')
        {
          if (!is_alnum(s[i]) && s[i] != '-')
            return false;
          continue;
        }
      /* a label ends at s[i-1] */
      if (i == start || s[start] == '-' || s[i - 1] == '-')
        return false;
      start = i + 1;
    }
  return true;
}

static int
check_port(const char *text, const char *port, size_t len, struct error *err)
{
  unsigned long value = 0;

  if (len == 0)
    return invalid(err, text, "registry port is empty");
  for (size_t i = 0; i < len; i++)
    {
      if (!is_digit(port[i]))
        return invalid(err, text, "registry port must be a number");
      value = value * 10 + (unsigned long)(port[i] - '0');
      if (value > 65535)
        return invalid(err, text, "registry port is larger than 65535");
    }
  return 0;
}

static int
check_domain(const char *text, const char *domain, size_t len, struct error *err)
{
  const char *port = NULL;
  size_t host_len;

  if (len > 0 && domain[0] == '[')
    {
      const char *close = memchr(domain, ']', len);
      if (close == NULL)
        return invalid(err, text, "IPv6 registry address lacks its closing ']'");
      host_len = (size_t)(close - domain) + 1;
      if (host_len == 2)
        return invalid(err, text, "IPv6 registry address is empty");
      for (size_t i = 1; i < host_len - 1; i++)
        if (!is_hex(domain[i]) && domain[i] != ':')
          return invalid(err, text, "IPv6 registry address may hold only hex digits and ':'");
      if (host_len < len && domain[host_len] != ':')
        return invalid(err, text, "unexpected characters after the IPv6 registry address");
    }
  else
    {
      const char *colon = memchr(domain, ':', len);
      host_len = colon ? (size_t)(colon - domain) : len;
      if (!host_name_is_valid(domain, host_len))
        {
          cleanup_free char *quoted = quote_bytes(domain, host_len);
          return invalid(err, text, "registry host %s is not a valid host name", quoted);
        }
    }
  if (host_len < len)
    {
      port = domain + host_len + 1;
      return check_port(text, port, len - host_len - 1, err);
    }
  return 0;
}

/* Length of the separator at s: ".", "_", "__" or a run of '-'; 0 when s
 * does not start with a valid separator. */
static size_t
separator_length(const char *s, size_t len)
{
  size_t n = 0;

  if (s[0] == '.')
    return 1;
  if (s[0] == '_')
    return len > 1 && s[1] == '_' ? 2 : 1;
  while (n < len && s[n] == '-')
    n++;
  return n;
}

static int
check_component(const char *text, const char *s, size_t len, struct error *err)
{
  cleanup_free char *quoted = quote_bytes(s, len);
  size_t i = 0;

  if (len == 0)
    return invalid(err, text, "repository path has an empty component");
  if (!is_lower(s[0]) && !is_digit(s[0]))
    return invalid(err, text, "path component %s must start with a letter or digit", quoted);
  while (i < len)
    {
      size_t sep;
      if (is_lower(s[i]) || is_digit(s[i]))
        {
          i++;
          continue;
        }
      sep = separator_length(s + i, len - i);
      if (sep == 0)
        return invalid(err, text, "path component %s has an invalid character", quoted);
      i += sep;
      /* a separator is always followed by a letter or digit, which also
       * rejects "._", "___" and a separator at the end */
      if (i == len || !(is_lower(s[i]) || is_digit(s[i])))
        return invalid(err, text,
                       "path component %s: separators ('.', '_', '__', '-') must sit between "
                       "letters or digits",
                       quoted);
    }
  return 0;
}

static int
check_path(const char *text, const char *path, struct error *err)
{
  const char *p = path;

  for (const char *c = path; *c; c++)
    if (is_upper(*c))
      return invalid(err, text, "repository path must be lowercase");
  for (;;)
    {
      const char *slash = strchr(p, '/');
      size_t len = slash ? (size_t)(slash - p) : strlen(p);
      if (check_component(text, p, len, err) < 0)
        return -1;
      if (slash == NULL)
        return 0;
      p = slash + 1;
    }
}

static int
check_tag(const char *text, const char *tag, struct error *err)
{
  size_t len = strlen(tag);

  if (len == 0)
    return invalid(err, text, "tag is empty");
  if (len > TAG_MAX_LENGTH)
    return invalid(err, text, "tag is longer than %d characters", TAG_MAX_LENGTH);
  if (!is_alnum(tag[0]) && tag[0] != '_')
    return invalid(err, text, "tag must start with a letter, digit or '_'");
  for (size_t i = 1; i < len; i++)
    if (!is_alnum(tag[i]) && tag[i] != '_' && tag[i] != '.' && tag[i] != '-')
      return invalid(err, text, "tag may hold only letters, digits, '_', '.' and '-'");
  return 0;
}

/* algorithm := [A-Za-z][A-Za-z0-9]* ([+._-] [A-Za-z][A-Za-z0-9]*)* */
static bool
algorithm_is_valid(const char *s, size_t len)
{
  bool need_letter = true;

  for (size_t i = 0; i < len; i++)
    {
      char c = s[i];
      if (need_letter)
        {
          if (!is_lower(c) && !is_upper(c))
            return false;
          need_letter = false;
        }
      else if (c == '+' || c == '.' || c == '_' || c == '-')
        need_letter = true;
      else if (!is_alnum(c))
        return false;
    }
  return len > 0 && !need_letter;
}

static int
check_digest(const char *text, const char *digest, struct error *err)
{
  const char *colon = strchr(digest, ':');
  size_t algorithm_len;
  const char *hex;

  if (*digest == '\0')
    return invalid(err, text, "digest is empty");
  if (colon == NULL)
    return invalid(err, text, "digest must be ALGORITHM:HEX");
  algorithm_len = (size_t)(colon - digest);
  if (!algorithm_is_valid(digest, algorithm_len))
    return invalid(err, text, "digest algorithm is malformed");
  if (algorithm_len != 6 || memcmp(digest, "sha256", 6) != 0)
    return invalid(err, text, "digest algorithm \"%.*s\" is not supported (only sha256)",
                   (int)algorithm_len, digest);
  hex = colon + 1;
  if (strlen(hex) != SHA256_HEX_LENGTH || !all_lower_hex(hex, SHA256_HEX_LENGTH))
    return invalid(err, text, "sha256 digest must be 64 lower-case hexadecimal characters");
  return 0;
}

/* Docker's rule for whether the part before the first '/' names a
 * registry rather than a path component. */
static bool
looks_like_domain(const char *s, size_t len)
{
  if (len == 9 && memcmp(s, "localhost", 9) == 0)
    return true;
  for (size_t i = 0; i < len; i++)
    if (s[i] == '.' || s[i] == ':' || is_upper(s[i]))
      return true;
  return false;
}

/* A bare 64-hex string is an image id; accepting it would silently turn it
 * into docker.io/library/<hex>:latest. */
static bool
is_image_id(const char *s)
{
  return strlen(s) == SHA256_HEX_LENGTH && all_lower_hex(s, SHA256_HEX_LENGTH);
}

static void
split_domain(const char *name, char **domain, char **remainder)
{
  const char *slash = strchr(name, '/');

  if (slash && looks_like_domain(name, (size_t)(slash - name)))
    {
      *domain = xstrndup(name, (size_t)(slash - name));
      *remainder = xstrdup(slash + 1);
    }
  else
    {
      *domain = xstrdup(DEFAULT_DOMAIN);
      *remainder = xstrdup(name);
    }
}

int
image_reference_parse(const char *text, struct image_reference *out, struct error *err)
{
  cleanup_free char *name = NULL;
  cleanup_free char *domain = NULL;
  cleanup_free char *path = NULL;
  cleanup_free char *tag = NULL;
  cleanup_free char *digest = NULL;
  char *at, *colon;

  memset(out, 0, sizeof *out);
  if (text == NULL || *text == '\0')
    return error_set(err, EINVAL, "invalid reference \"\": reference is empty");
  if (is_image_id(text))
    return invalid(err, text, "a 64-character hexadecimal string is an image id, not a name");

  name = xstrdup(text);
  at = strchr(name, '@');
  if (at)
    {
      *at = '\0';
      digest = xstrdup(at + 1);
      if (check_digest(text, digest, err) < 0)
        return -1;
    }

  split_domain(name, &domain, &path);
  /* the path cannot hold ':', so the first one left starts the tag */
  colon = strchr(path, ':');
  if (colon)
    {
      *colon = '\0';
      tag = xstrdup(colon + 1);
      if (check_tag(text, tag, err) < 0)
        return -1;
    }
  if (*path == '\0')
    return invalid(err, text, "repository name is empty");
  if (strcmp(domain, DEFAULT_DOMAIN) != 0 && check_domain(text, domain, strlen(domain), err) < 0)
    return -1;
  if (check_path(text, path, err) < 0)
    return -1;

  if (strcmp(domain, LEGACY_DEFAULT_DOMAIN) == 0)
    {
      free(domain);
      domain = xstrdup(DEFAULT_DOMAIN);
    }
  if (strcmp(domain, DEFAULT_DOMAIN) == 0 && strchr(path, '/') == NULL)
    {
      char *official = xasprintf(OFFICIAL_PREFIX "%s", path);
      free(path);
      path = official;
    }
  if (strlen(domain) + 1 + strlen(path) > NAME_MAX_LENGTH)
    return invalid(err, text, "repository name is longer than %d characters", NAME_MAX_LENGTH);
  if (tag == NULL && digest == NULL)
    tag = xstrdup(DEFAULT_TAG);

  out->domain = steal_pointer(&domain);
  out->path = steal_pointer(&path);
  out->tag = steal_pointer(&tag);
  out->digest = steal_pointer(&digest);
  return 0;
}

void
image_reference_free(struct image_reference *ref)
{
  if (ref == NULL)
    return;
  free(ref->domain);
  free(ref->path);
  free(ref->tag);
  free(ref->digest);
  memset(ref, 0, sizeof *ref);
}

char *
image_reference_name(const struct image_reference *ref)
{
  return xasprintf("%s/%s", ref->domain, ref->path);
}

char *
image_reference_tagged(const struct image_reference *ref)
{
  if (ref->tag == NULL)
    return NULL;
  return xasprintf("%s/%s:%s", ref->domain, ref->path, ref->tag);
}

char *
image_reference_digested(const struct image_reference *ref)
{
  if (ref->digest == NULL)
    return NULL;
  return xasprintf("%s/%s@%s", ref->domain, ref->path, ref->digest);
}

char *
image_reference_string(const struct image_reference *ref)
{
  return xasprintf("%s/%s%s%s%s%s", ref->domain, ref->path, ref->tag ? ":" : "",
                   ref->tag ? ref->tag : "", ref->digest ? "@" : "",
                   ref->digest ? ref->digest : "");
}
