/* image/registry_auth: parsing of WWW-Authenticate challenges (RFC 7235).
 *
 * A header holds one or more challenges, each a scheme followed by
 * comma-separated auth-params whose values are tokens or quoted strings
 * (which may contain commas and backslash-escaped characters).  Registries
 * send "Basic realm=..." or "Bearer realm=...,service=...,scope=...".  The
 * text comes from the network, so every malformed form is an error rather
 * than a guess. */
#include "image/registry.h"

#include "common/cleanup.h"
#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Bounds what a hostile server can make us allocate or loop over. */
#define CHALLENGE_MAX_LENGTH (16 * 1024)

/* RFC 7230 tchar. */
static bool
is_tchar(char c)
{
  return isalnum((unsigned char)c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static const char *
skip_space(const char *p)
{
  while (*p == ' ' || *p == '\t')
    p++;
  return p;
}

static const char *
skip_token(const char *p)
{
  while (is_tchar(*p))
    p++;
  return p;
}

/* Reads a quoted string starting at the opening quote; *end points after
 * the closing quote. */
static char *
read_quoted(const char *p, const char **end, struct error *err)
{
  size_t len = 0;
  cleanup_free char *value = xmalloc(strlen(p) + 1);

  for (p++; *p != '"'; p++)
    {
      if (*p == '\0')
        {
          error_set(err, EINVAL, "unterminated quoted string");
          return NULL;
        }
      if (*p == '\\')
        {
          p++;
          if (*p == '\0')
            {
              error_set(err, EINVAL, "unterminated quoted string");
              return NULL;
            }
        }
      value[len++] = *p;
    }
  value[len] = '\0';
  *end = p + 1;
  return steal_pointer(&value);
}

/* Unquoted values are tokens; some servers also put '/' and ':' in them
 * (URLs, scopes), which we accept up to the next comma or space. */
static char *
read_unquoted(const char *p, const char **end)
{
  const char *start = p;

  while (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t' && *p != '"')
    p++;
  *end = p;
  return xstrndup(start, p - start);
}

/* True when p (after a comma) starts a new challenge: a token not followed
 * by '='. */
static bool
starts_new_challenge(const char *p)
{
  const char *q;

  p = skip_space(p);
  q = skip_token(p);
  if (q == p)
    return false;
  q = skip_space(q);
  return *q != '=';
}

/* Returns the end of a token68 ("dXNlcg==") at p, or p when p starts
 * auth-params instead. */
static const char *
skip_token68(const char *p)
{
  const char *q = p;

  while (isalnum((unsigned char)*q) || (*q != '\0' && strchr("-._~+/", *q) != NULL))
    q++;
  if (q == p)
    return p;
  while (*q == '=')
    q++;
  q = skip_space(q);
  return (*q == '\0' || *q == ',') ? q : p;
}

static void
set_param(struct auth_challenge *out, const char *name, size_t name_len, char *value)
{
  char **slot = NULL;

  if (name_len == 5 && strncasecmp(name, "realm", 5) == 0)
    slot = &out->realm;
  else if (name_len == 7 && strncasecmp(name, "service", 7) == 0)
    slot = &out->service;
  else if (name_len == 5 && strncasecmp(name, "error", 5) == 0)
    slot = &out->error;
  else if (name_len == 5 && strncasecmp(name, "scope", 5) == 0)
    {
      /* Scopes may be repeated; the token request sends each. */
      if (out->scope != NULL && value[0] != '\0')
        {
          char *joined = xasprintf("%s %s", out->scope, value);
          free(value);
          free(out->scope);
          out->scope = joined;
          return;
        }
      slot = &out->scope;
    }

  if (slot == NULL)
    {
      free(value);
      return;
    }
  free(*slot);
  *slot = value;
}

/* Parses one challenge starting at *pp; leaves *pp at the comma that
 * starts the next challenge, or at the end. */
static int
parse_one(const char **pp, struct auth_challenge *out, struct error *err)
{
  const char *p = skip_space(*pp);
  const char *end = skip_token(p);

  if (end == p)
    return error_set(err, EINVAL, "expected an authentication scheme");
  out->scheme = xstrndup(p, end - p);
  for (char *s = out->scheme; *s; s++)
    *s = tolower((unsigned char)*s);
  p = skip_space(end);

  /* token68 form ("Basic dXNlcg=="): nothing we need, skip it. */
  p = skip_token68(p);

  for (;;)
    {
      const char *name;
      size_t name_len;
      char *value;

      p = skip_space(p);
      while (*p == ',')
        {
          if (starts_new_challenge(p + 1))
            {
              *pp = p;
              return 0;
            }
          p = skip_space(p + 1);
        }
      if (*p == '\0')
        break;

      name = p;
      p = skip_token(p);
      name_len = p - name;
      if (name_len == 0)
        return error_set(err, EINVAL, "unexpected character '%c' in parameters", *p);
      p = skip_space(p);
      if (*p != '=')
        return error_set(err, EINVAL, "parameter '%.*s' without a value", (int)name_len, name);
      p = skip_space(p + 1);
      if (*p == '"')
        value = read_quoted(p, &p, err);
      else
        value = read_unquoted(p, &p);
      if (value == NULL)
        return -1;
      set_param(out, name, name_len, value);

      p = skip_space(p);
      if (*p != '\0' && *p != ',')
        return error_set(err, EINVAL, "expected ',' after parameter '%.*s'", (int)name_len, name);
    }
  *pp = p;
  return 0;
}

static void
challenge_move(struct auth_challenge *dst, struct auth_challenge *src)
{
  auth_challenge_free(dst);
  *dst = *src;
  memset(src, 0, sizeof *src);
}

int
auth_challenge_parse(const char *header, struct auth_challenge *out, struct error *err)
{
  struct auth_challenge basic = { 0 };
  const char *p = header;
  int ret = 0;

  memset(out, 0, sizeof *out);
  if (header == NULL || *skip_space(header) == '\0')
    return error_set(err, EINVAL, "empty WWW-Authenticate header");
  if (strlen(header) > CHALLENGE_MAX_LENGTH)
    return error_set(err, EINVAL, "WWW-Authenticate header too long");

  /* Several challenges: Bearer wins over Basic, others are ignored. */
  while (*p != '\0')
    {
      struct auth_challenge one = { 0 };

      if (*p == ',')
        p++;
      if (parse_one(&p, &one, err) < 0)
        {
          auth_challenge_free(&one);
          ret = error_wrap(err, "parse WWW-Authenticate header");
          goto out;
        }
      if (strcmp(one.scheme, "bearer") == 0 && out->scheme == NULL)
        challenge_move(out, &one);
      else if (strcmp(one.scheme, "basic") == 0 && basic.scheme == NULL)
        challenge_move(&basic, &one);
      auth_challenge_free(&one);
    }

  if (out->scheme == NULL)
    {
      if (basic.scheme == NULL)
        {
          /* The scheme is a token the parser validated: safe to show. */
          const char *start = skip_space(header);
          int len = (int)(skip_token(start) - start);
          ret = error_set(err, ENOTSUP, "unsupported authentication scheme '%.*s'", len, start);
          goto out;
        }
      challenge_move(out, &basic);
    }
  if (strcmp(out->scheme, "bearer") == 0 && (out->realm == NULL || out->realm[0] == '\0'))
    ret = error_set(err, EINVAL, "Bearer challenge without a realm");

out:
  auth_challenge_free(&basic);
  if (ret < 0)
    auth_challenge_free(out);
  return ret;
}

void
auth_challenge_free(struct auth_challenge *challenge)
{
  if (challenge == NULL)
    return;
  free(challenge->scheme);
  free(challenge->realm);
  free(challenge->service);
  free(challenge->scope);
  free(challenge->error);
  memset(challenge, 0, sizeof *challenge);
}
