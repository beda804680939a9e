/* Unit tests of image/reference and image/digest: a table of references
 * and their normalised forms, a table of invalid references and what the
 * error says about them, and sha256 against known values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/cleanup.h"
#include "common/error.h"
#include "common/util.h"
#include "image/digest.h"
#include "image/reference.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DIGEST "sha256:" HEX

struct valid_case
{
  const char *text;
  const char *domain;
  const char *path;
  const char *tag;    /* NULL: none */
  const char *digest; /* NULL: none */
};

static const struct valid_case valid_cases[] = {
  /* short names and Docker Hub */
  { "busybox", "docker.io", "library/busybox", "latest", NULL },
  { "busybox:1.36", "docker.io", "library/busybox", "1.36", NULL },
  { "a", "docker.io", "library/a", "latest", NULL },
  { "0", "docker.io", "library/0", "latest", NULL },
  { "library/busybox", "docker.io", "library/busybox", "latest", NULL },
  { "docker.io/busybox", "docker.io", "library/busybox", "latest", NULL },
  { "docker.io/library/busybox:latest", "docker.io", "library/busybox", "latest", NULL },
  { "index.docker.io/busybox:glibc", "docker.io", "library/busybox", "glibc", NULL },
  { "index.docker.io/user/app", "docker.io", "user/app", "latest", NULL },
  { "user/app:1", "docker.io", "user/app", "1", NULL },
  { "user/team/app", "docker.io", "user/team/app", "latest", NULL },
  /* no '/', so these are names on Docker Hub, not registries */
  { "localhost", "docker.io", "library/localhost", "latest", NULL },
  { "localhost:5000", "docker.io", "library/localhost", "5000", NULL },
  { "docker.io", "docker.io", "library/docker.io", "latest", NULL },
  /* other registries */
  { "gcr.io/a/b", "gcr.io", "a/b", "latest", NULL },
  { "localhost/foo", "localhost", "foo", "latest", NULL },
  { "localhost:5000/x", "localhost:5000", "x", "latest", NULL },
  { "127.0.0.1:5000/a/b:c", "127.0.0.1:5000", "a/b", "c", NULL },
  { "[::1]:5000/foo:bar", "[::1]:5000", "foo", "bar", NULL },
  { "[2001:db8::1]/foo", "[2001:db8::1]", "foo", "latest", NULL },
  { "[2001:DB8::1]:443/foo", "[2001:DB8::1]:443", "foo", "latest", NULL },
  { "registry.k8s.io/pause:3.9", "registry.k8s.io", "pause", "3.9", NULL },
  { "gcr.io/k8s-staging-cri-tools/test-image-tags:1", "gcr.io",
    "k8s-staging-cri-tools/test-image-tags", "1", NULL },
  { "my-registry.example.com:443/ns/img:v1.2.3-rc_1", "my-registry.example.com:443", "ns/img",
    "v1.2.3-rc_1", NULL },
  { "xn--bcher-kva.example/x", "xn--bcher-kva.example", "x", "latest", NULL },
  /* a first component with an upper-case letter is a registry */
  { "Registry.Example.com/foo", "Registry.Example.com", "foo", "latest", NULL },
  { "Foo/bar", "Foo", "bar", "latest", NULL },
  /* separators */
  { "foo/a.b_c__d-e--f", "docker.io", "foo/a.b_c__d-e--f", "latest", NULL },
  { "gcr.io/a1-b2/c3.d4", "gcr.io", "a1-b2/c3.d4", "latest", NULL },
  /* tags */
  { "busybox:_", "docker.io", "library/busybox", "_", NULL },
  { "busybox:V1.0_Final-2", "docker.io", "library/busybox", "V1.0_Final-2", NULL },
  /* digests */
  { "busybox@" DIGEST, "docker.io", "library/busybox", NULL, DIGEST },
  { "busybox:1@" DIGEST, "docker.io", "library/busybox", "1", DIGEST },
  { "localhost:5000/a/b@" DIGEST, "localhost:5000", "a/b", NULL, DIGEST },
  { "[::1]:5000/a:t@" DIGEST, "[::1]:5000", "a", "t", DIGEST },
};

struct invalid_case
{
  const char *text;
  const char *reason; /* a part of the message */
};

static const struct invalid_case invalid_cases[] = {
  { "", "empty" },
  { "Busybox", "must be lowercase" },
  { "docker.io/Library/busybox", "must be lowercase" },
  { "gcr.io/a/B", "must be lowercase" },
  { "busybox:", "tag is empty" },
  { "busybox@", "digest is empty" },
  { ":tag", "repository name is empty" },
  { "@" DIGEST, "repository name is empty" },
  { "gcr.io/", "repository name is empty" },
  { "/busybox", "empty component" },
  { "busybox/", "empty component" },
  { "foo//bar", "empty component" },
  { "-foo", "must start with a letter or digit" },
  { "_foo", "must start with a letter or digit" },
  { "foo-", "separators" },
  { "foo.", "separators" },
  { "foo..bar", "separators" },
  { "foo._bar", "separators" },
  { "foo___bar", "separators" },
  { "foo-.bar", "separators" },
  { "foo bar", "invalid character" },
  { "foo\tbar", "invalid character" },
  { "foo/b\xc3\xa9", "invalid character" },
  { "foo:bar:baz", "tag may hold only" },
  { "foo:-tag", "tag must start" },
  { "foo:.tag", "tag must start" },
  { "foo:t/ag", "port must be a number" }, /* "foo:t" is a registry */
  { "busybox@sha256:abc", "64 lower-case hexadecimal" },
  { "busybox@sha256:" HEX "0", "64 lower-case hexadecimal" },
  { "busybox@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
    "64 lower-case hexadecimal" },
  { "busybox@sha512:" HEX HEX, "\"sha512\" is not supported (only sha256)" },
  { "busybox@md5:0123456789abcdef0123456789abcdef", "\"md5\" is not supported" },
  { "busybox@" HEX, "ALGORITHM:HEX" },
  { "busybox@1sha:" HEX, "algorithm is malformed" },
  { "busybox@sha256+:" HEX, "algorithm is malformed" },
  { "busybox@" DIGEST "@" DIGEST, "64 lower-case hexadecimal" },
  { "localhost:abc/foo", "port must be a number" },
  { "localhost:/foo", "port is empty" },
  { "localhost:99999/foo", "larger than 65535" },
  { "[::1/foo", "closing ']'" },
  { "[]:5000/foo", "IPv6 registry address is empty" },
  { "[zz::1]:5000/foo", "only hex digits" },
  { "[::1]x/foo", "after the IPv6" },
  { "-registry.io/foo", "not a valid host name" },
  { "registry-.io/foo", "not a valid host name" },
  { "registry..io/foo", "not a valid host name" },
  { ".registry.io/foo", "not a valid host name" },
  { "reg_istry.io/foo", "not a valid host name" },
  { HEX, "image id" },
};

static void
test_valid_references(void **state)
{
  for (size_t i = 0; i < sizeof valid_cases / sizeof valid_cases[0]; i++)
    {
      const struct valid_case *c = &valid_cases[i];
      struct image_reference ref;
      struct error err = ERROR_INIT;

      if (image_reference_parse(c->text, &ref, &err) < 0)
        fail_msg("%s: %s", c->text, error_message(&err));
      assert_string_equal(ref.domain, c->domain);
      assert_string_equal(ref.path, c->path);
      if (c->tag)
        assert_string_equal(ref.tag, c->tag);
      else
        assert_null(ref.tag);
      if (c->digest)
        assert_string_equal(ref.digest, c->digest);
      else
        assert_null(ref.digest);
      image_reference_free(&ref);
    }
}

static void
test_invalid_references(void **state)
{
  for (size_t i = 0; i < sizeof invalid_cases / sizeof invalid_cases[0]; i++)
    {
      const struct invalid_case *c = &invalid_cases[i];
      struct image_reference ref;
      struct error err = ERROR_INIT;

      if (image_reference_parse(c->text, &ref, &err) == 0)
        fail_msg("accepted invalid reference \"%s\"", c->text);
      assert_int_equal(err.code, EINVAL);
      assert_true(str_has_prefix(err.message, "invalid reference \""));
      if (strstr(err.message, c->reason) == NULL)
        fail_msg("%s: message \"%s\" lacks \"%s\"", c->text, err.message, c->reason);
      /* nothing is left behind on failure */
      assert_null(ref.domain);
      assert_null(ref.path);
      error_clear(&err);
    }
}

/* The whole name counts after normalisation: "docker.io/library/" too. */
static void
test_length_limits(void **state)
{
  struct image_reference ref;
  struct error err = ERROR_INIT;
  char name[300];
  char tag[140];
  char text[600];

  memset(name, 'a', sizeof name);
  /* gcr.io/ (7) + 248 = 255 */
  snprintf(text, sizeof text, "gcr.io/%.*s", 248, name);
  assert_int_equal(image_reference_parse(text, &ref, &err), 0);
  image_reference_free(&ref);
  snprintf(text, sizeof text, "gcr.io/%.*s", 249, name);
  assert_int_equal(image_reference_parse(text, &ref, &err), -1);
  assert_non_null(strstr(err.message, "longer than 255"));
  error_clear(&err);

  /* docker.io/library/ (18) + 237 = 255 */
  snprintf(text, sizeof text, "%.*s", 237, name);
  assert_int_equal(image_reference_parse(text, &ref, &err), 0);
  image_reference_free(&ref);
  snprintf(text, sizeof text, "%.*s", 238, name);
  assert_int_equal(image_reference_parse(text, &ref, &err), -1);
  assert_non_null(strstr(err.message, "longer than 255"));
  error_clear(&err);

  memset(tag, 'T', sizeof tag);
  snprintf(text, sizeof text, "busybox:%.*s", 128, tag);
  assert_int_equal(image_reference_parse(text, &ref, &err), 0);
  assert_int_equal(strlen(ref.tag), 128);
  image_reference_free(&ref);
  snprintf(text, sizeof text, "busybox:%.*s", 129, tag);
  assert_int_equal(image_reference_parse(text, &ref, &err), -1);
  assert_non_null(strstr(err.message, "longer than 128"));
  error_clear(&err);
}

static void
test_rendering(void **state)
{
  struct image_reference ref;
  struct error err = ERROR_INIT;
  cleanup_free char *name = NULL;
  cleanup_free char *tagged = NULL;
  cleanup_free char *digested = NULL;
  cleanup_free char *full = NULL;
  cleanup_free char *short_full = NULL;
  cleanup_free char *digest_only = NULL;

  assert_int_equal(image_reference_parse("busybox:1@" DIGEST, &ref, &err), 0);
  name = image_reference_name(&ref);
  tagged = image_reference_tagged(&ref);
  digested = image_reference_digested(&ref);
  full = image_reference_string(&ref);
  assert_string_equal(name, "docker.io/library/busybox");
  assert_string_equal(tagged, "docker.io/library/busybox:1");
  assert_string_equal(digested, "docker.io/library/busybox@" DIGEST);
  assert_string_equal(full, "docker.io/library/busybox:1@" DIGEST);
  image_reference_free(&ref);

  assert_int_equal(image_reference_parse("busybox", &ref, &err), 0);
  short_full = image_reference_string(&ref);
  assert_string_equal(short_full, "docker.io/library/busybox:latest");
  assert_null(image_reference_digested(&ref));
  image_reference_free(&ref);

  assert_int_equal(image_reference_parse("[::1]:5000/a@" DIGEST, &ref, &err), 0);
  assert_null(image_reference_tagged(&ref));
  digest_only = image_reference_string(&ref);
  assert_string_equal(digest_only, "[::1]:5000/a@" DIGEST);
  image_reference_free(&ref);
  image_reference_free(NULL);
}

/* The normalised form parses again to itself. */
static void
test_normalised_form_is_stable(void **state)
{
  for (size_t i = 0; i < sizeof valid_cases / sizeof valid_cases[0]; i++)
    {
      struct image_reference ref, again;
      struct error err = ERROR_INIT;
      cleanup_free char *first = NULL;
      cleanup_free char *second = NULL;

      assert_int_equal(image_reference_parse(valid_cases[i].text, &ref, &err), 0);
      first = image_reference_string(&ref);
      if (image_reference_parse(first, &again, &err) < 0)
        fail_msg("%s: %s", first, error_message(&err));
      second = image_reference_string(&again);
      assert_string_equal(first, second);
      image_reference_free(&ref);
      image_reference_free(&again);
    }
}

/* Bytes from a request never reach a log line raw. */
static void
test_error_escapes_and_truncates(void **state)
{
  struct image_reference ref;
  struct error err = ERROR_INIT;
  char text[1000];

  assert_int_equal(image_reference_parse("a\nb\"c", &ref, &err), -1);
  assert_true(str_has_prefix(err.message, "invalid reference \"a\\x0ab\\\"c\": "));
  assert_null(strchr(err.message, '\n'));
  error_clear(&err);

  memset(text, 'x', sizeof text - 2);
  text[sizeof text - 2] = 'X';
  text[sizeof text - 1] = '\0';
  assert_int_equal(image_reference_parse(text, &ref, &err), -1);
  assert_true(strlen(err.message) < 400);
  assert_non_null(strstr(err.message, "...: "));
  error_clear(&err);
}

static void
test_digest_is_valid(void **state)
{
  assert_true(digest_is_valid(DIGEST));
  assert_false(digest_is_valid(NULL));
  assert_false(digest_is_valid(""));
  assert_false(digest_is_valid(HEX));
  assert_false(digest_is_valid("sha256:" HEX "0"));
  assert_false(digest_is_valid("sha256:" HEX "\n"));
  assert_false(digest_is_valid("SHA256:" HEX));
  assert_false(
      digest_is_valid("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeF"));
  assert_false(digest_is_valid("sha512:" HEX HEX));
}

static void
test_sha256_known_values(void **state)
{
  char out[72];
  struct digester *d;
  static char million[1000000];

  digest_buffer("", 0, out);
  assert_string_equal(out,
                      "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  digest_buffer("hello world", 11, out);
  assert_string_equal(out,
                      "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");

  /* streamed in uneven pieces */
  memset(million, 'a', sizeof million);
  d = digester_new();
  for (size_t off = 0, step = 1; off < sizeof million; off += step, step = step * 3 + 1)
    digester_update(d, million + off, off + step > sizeof million ? sizeof million - off : step);
  digester_update(d, NULL, 0);
  digester_finish(d, out);
  assert_string_equal(out,
                      "sha256:cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  assert_true(digest_is_valid(out));

  /* abandoning a digester frees it */
  d = digester_new();
  digester_update(d, "x", 1);
  digester_free(d);
  digester_free(NULL);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_valid_references),
    cmocka_unit_test(test_invalid_references),
    cmocka_unit_test(test_length_limits),
    cmocka_unit_test(test_rendering),
    cmocka_unit_test(test_normalised_form_is_stable),
    cmocka_unit_test(test_error_escapes_and_truncates),
    cmocka_unit_test(test_digest_is_valid),
    cmocka_unit_test(test_sha256_known_values),
  };
  return cmocka_run_group_tests_name("reference", tests, NULL, NULL);
}
