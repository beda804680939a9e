/* Unit tests of auth_challenge_parse (image/registry_auth.c): a table of
 * WWW-Authenticate headers as registries send them and what they mean,
 * and a table of malformed ones with the error each must give. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/error.h"
#include "image/registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct valid_case
{
  const char *header;
  const char *scheme;
  const char *realm; /* NULL: absent */
  const char *service;
  const char *scope;
  const char *error;
};

static const struct valid_case valid_cases[] = {
  /* Docker Hub */
  { "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
    "scope=\"repository:library/busybox:pull\"",
    "bearer", "https://auth.docker.io/token", "registry.docker.io",
    "repository:library/busybox:pull", NULL },
  /* docker-registry with htpasswd */
  { "Basic realm=\"Registry Realm\"", "basic", "Registry Realm", NULL, NULL, NULL },
  /* the scheme is case-insensitive */
  { "BEARER realm=\"r\"", "bearer", "r", NULL, NULL, NULL },
  { "basic realm=\"r\"", "basic", "r", NULL, NULL, NULL },
  { "bEaReR realm=\"r\"", "bearer", "r", NULL, NULL, NULL },
  /* so are parameter names */
  { "Bearer Realm=\"r\",SERVICE=\"s\",Scope=\"x\",ERROR=\"e\"", "bearer", "r", "s", "x", "e" },
  /* quoted values may hold commas, spaces and '=' */
  { "Bearer realm=\"https://a/token?x=1,y=2\",scope=\"repository:x:pull,push\"", "bearer",
    "https://a/token?x=1,y=2", NULL, "repository:x:pull,push", NULL },
  { "Basic realm=\"a, b = c\"", "basic", "a, b = c", NULL, NULL, NULL },
  /* escaped quotes and backslashes */
  { "Basic realm=\"say \\\"hi\\\"\"", "basic", "say \"hi\"", NULL, NULL, NULL },
  { "Basic realm=\"back\\\\slash\"", "basic", "back\\slash", NULL, NULL, NULL },
  { "Basic realm=\"\\a\\b\"", "basic", "ab", NULL, NULL, NULL },
  /* unquoted values */
  { "Bearer realm=https://a.example/token,service=reg.example", "bearer", "https://a.example/token",
    "reg.example", NULL, NULL },
  { "Bearer realm=https://a/token, scope=repository:a/b:pull", "bearer", "https://a/token", NULL,
    "repository:a/b:pull", NULL },
  /* whitespace around '=' and ',' */
  { "  Bearer   realm = \"r\" ,  service =\"s\"  ", "bearer", "r", "s", NULL, NULL },
  { "Bearer\trealm=\"r\",\tservice=\"s\"", "bearer", "r", "s", NULL, NULL },
  /* empty values, trailing and doubled commas */
  { "Bearer realm=\"r\",service=\"\"", "bearer", "r", "", NULL, NULL },
  { "Bearer realm=\"r\",", "bearer", "r", NULL, NULL, NULL },
  { "Bearer realm=\"r\",,service=\"s\"", "bearer", "r", "s", NULL, NULL },
  /* insufficient_scope names the scope to ask for */
  { "Bearer realm=\"r\",service=\"s\",scope=\"repository:a:pull\",error=\"insufficient_scope\"",
    "bearer", "r", "s", "repository:a:pull", "insufficient_scope" },
  /* unknown parameters are ignored */
  { "Bearer realm=\"r\",foo=\"bar, baz\",charset=UTF-8,service=\"s\"", "bearer", "r", "s", NULL,
    NULL },
  /* repeated scopes are all kept */
  { "Bearer realm=\"r\",scope=\"repository:a:pull\",scope=\"repository:b:pull\"", "bearer", "r",
    NULL, "repository:a:pull repository:b:pull", NULL },
  /* a later duplicate of a single-valued parameter wins */
  { "Bearer realm=\"first\",realm=\"second\"", "bearer", "second", NULL, NULL, NULL },
  /* Basic needs no parameters; token68 is skipped */
  { "Basic", "basic", NULL, NULL, NULL, NULL },
  { "Basic dXNlcjpwYXNz", "basic", NULL, NULL, NULL, NULL },
  { "Basic dXNlcg==", "basic", NULL, NULL, NULL, NULL },
  /* several challenges: Bearer wins, unknown schemes are skipped */
  { "Basic realm=\"b\", Bearer realm=\"r\",service=\"s\"", "bearer", "r", "s", NULL, NULL },
  { "Bearer realm=\"r\", Basic realm=\"b\"", "bearer", "r", NULL, NULL, NULL },
  { "Negotiate, Basic realm=\"b\"", "basic", "b", NULL, NULL, NULL },
  { "Negotiate abc==, NTLM, Basic realm=\"b\"", "basic", "b", NULL, NULL, NULL },
  { "Digest realm=\"d\", nonce=\"n,1\", Bearer realm=\"r\"", "bearer", "r", NULL, NULL, NULL },
  /* as joined from two header lines */
  { "Basic realm=\"b\", Bearer realm=\"r\",service=\"s\",scope=\"x\"", "bearer", "r", "s", "x",
    NULL },
  /* bytes outside ASCII pass through */
  { "Basic realm=\"r\xc3\xa9gistre\"", "basic", "r\xc3\xa9gistre", NULL, NULL, NULL },
};

static void
check_field(const char *what, const char *header, const char *expected, const char *got)
{
  if (expected == NULL && got == NULL)
    return;
  if (expected == NULL || got == NULL || strcmp(expected, got) != 0)
    fail_msg("%s: %s: expected '%s', got '%s'", header, what, expected ? expected : "(null)",
             got ? got : "(null)");
}

static void
test_valid(void **state)
{
  for (size_t i = 0; i < sizeof valid_cases / sizeof valid_cases[0]; i++)
    {
      const struct valid_case *c = &valid_cases[i];
      struct auth_challenge ch;
      struct error err = ERROR_INIT;

      if (auth_challenge_parse(c->header, &ch, &err) < 0)
        fail_msg("%s: %s", c->header, error_message(&err));
      check_field("scheme", c->header, c->scheme, ch.scheme);
      check_field("realm", c->header, c->realm, ch.realm);
      check_field("service", c->header, c->service, ch.service);
      check_field("scope", c->header, c->scope, ch.scope);
      check_field("error", c->header, c->error, ch.error);
      auth_challenge_free(&ch);
      assert_null(ch.scheme);
      assert_null(err.message);
    }
}

struct invalid_case
{
  const char *header;
  int code;
  const char *message; /* a part of the error message */
};

static const struct invalid_case invalid_cases[] = {
  { "", EINVAL, "empty" },
  { "   ", EINVAL, "empty" },
  { "Bearer service=\"s\"", EINVAL, "without a realm" },
  { "Bearer realm=\"\"", EINVAL, "without a realm" },
  { "Bearer", EINVAL, "without a realm" },
  { "Bearer realm=\"unterminated", EINVAL, "unterminated" },
  { "Bearer realm=\"ends with backslash\\", EINVAL, "unterminated" },
  { "Bearer realm \"r\"", EINVAL, "without a value" },
  { "Bearer realm=\"r\" service=\"s\"", EINVAL, "expected ','" },
  { "Bearer realm=\"r\"x", EINVAL, "expected ','" },
  { "Bearer =\"r\"", EINVAL, "unexpected character" },
  { "Bearer realm=\"r\", \"s\"", EINVAL, "unexpected character" },
  { "\"Bearer\" realm=\"r\"", EINVAL, "scheme" },
  { "Negotiate", ENOTSUP, "unsupported authentication scheme 'Negotiate'" },
  { "Digest realm=\"d\", nonce=\"n\"", ENOTSUP, "'Digest'" },
  { "NTLM, Negotiate abc", ENOTSUP, "'NTLM'" },
};

static void
test_invalid(void **state)
{
  for (size_t i = 0; i < sizeof invalid_cases / sizeof invalid_cases[0]; i++)
    {
      const struct invalid_case *c = &invalid_cases[i];
      struct auth_challenge ch;
      struct error err = ERROR_INIT;

      if (auth_challenge_parse(c->header, &ch, &err) == 0)
        fail_msg("'%s' was accepted (scheme %s)", c->header, ch.scheme);
      if (err.code != c->code)
        fail_msg("'%s': code %d, expected %d (%s)", c->header, err.code, c->code,
                 error_message(&err));
      if (strstr(error_message(&err), c->message) == NULL)
        fail_msg("'%s': message '%s' lacks '%s'", c->header, error_message(&err), c->message);
      /* A failed parse leaves nothing to free. */
      assert_null(ch.scheme);
      assert_null(ch.realm);
      assert_null(ch.service);
      assert_null(ch.scope);
      assert_null(ch.error);
      error_clear(&err);
    }
}

static void
test_null_and_long(void **state)
{
  struct auth_challenge ch;
  struct error err = ERROR_INIT;
  size_t n = 64 * 1024;
  char *header = malloc(n + 1);

  assert_int_equal(auth_challenge_parse(NULL, &ch, &err), -1);
  assert_int_equal(err.code, EINVAL);
  error_clear(&err);

  /* A hostile server's megabyte of header is refused, not parsed. */
  memcpy(header, "Bearer realm=\"", 14);
  memset(header + 14, 'a', n - 15);
  header[n - 1] = '"';
  header[n] = '\0';
  assert_int_equal(auth_challenge_parse(header, &ch, &err), -1);
  assert_int_equal(err.code, EINVAL);
  assert_non_null(strstr(error_message(&err), "too long"));
  error_clear(&err);
  free(header);

  /* Freeing twice, or a zeroed challenge, is harmless. */
  assert_int_equal(auth_challenge_parse("Bearer realm=\"r\"", &ch, &err), 0);
  auth_challenge_free(&ch);
  auth_challenge_free(&ch);
  auth_challenge_free(NULL);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_valid),
    cmocka_unit_test(test_invalid),
    cmocka_unit_test(test_null_and_long),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
