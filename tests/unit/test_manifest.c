/* Unit tests of image/manifest: indexes, manifest lists, image manifests
 * and configs as registries serve them, what is refused and why, platform
 * selection, and chain ids against values computed with Python's hashlib. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/cleanup.h"
#include "common/error.h"
#include "common/util.h"
#include "image/manifest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define D4 "sha256:4444444444444444444444444444444444444444444444444444444444444444"
#define D5 "sha256:5555555555555555555555555555555555555555555555555555555555555555"
#define D6 "sha256:6666666666666666666666666666666666666666666666666666666666666666"
#define D7 "sha256:7777777777777777777777777777777777777777777777777777777777777777"

#define OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define OCI_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"

/* As BuildKit pushes a multi-platform image: the attestation entry with
 * an amd64 platform but the attestation annotation comes first, and arm/v6
 * is listed before arm/v7. */
static const char oci_index[]
    = "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_TYPE_OCI_INDEX "\",\"manifests\":["
      "{\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST "\",\"digest\":\"" D7 "\",\"size\":566,"
      "\"annotations\":{\"vnd.docker.reference.type\":\"attestation-manifest\","
      "\"vnd.docker.reference.digest\":\"" D1 "\"},"
      "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
      "{\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST "\",\"digest\":\"" D1 "\",\"size\":1000,"
      "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
      "{\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST "\",\"digest\":\"" D2 "\",\"size\":1001,"
      "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}},"
      "{\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST "\",\"digest\":\"" D3 "\",\"size\":1002,"
      "\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v6\"}},"
      "{\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST "\",\"digest\":\"" D4 "\",\"size\":1003,"
      "\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\"}},"
      "{\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST "\",\"digest\":\"" D5 "\",\"size\":1004,"
      "\"platform\":{\"architecture\":\"amd64\",\"os\":\"windows\",\"os.version\":\"10.0.17763\"}},"
      "{\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST "\",\"digest\":\"" D6 "\",\"size\":840,"
      "\"annotations\":{\"vnd.docker.reference.type\":\"attestation-manifest\"},"
      "\"platform\":{\"architecture\":\"unknown\",\"os\":\"unknown\"}}"
      "]}";

static const char docker_list[]
    = "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_TYPE_DOCKER_LIST "\",\"manifests\":["
      "{\"mediaType\":\"" MEDIA_TYPE_DOCKER_MANIFEST "\",\"digest\":\"" D1 "\",\"size\":527,"
      "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\"}},"
      "{\"mediaType\":\"" MEDIA_TYPE_DOCKER_MANIFEST "\",\"digest\":\"" D2 "\",\"size\":527,"
      "\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v5\"}},"
      "{\"mediaType\":\"" MEDIA_TYPE_DOCKER_MANIFEST "\",\"digest\":\"" D3 "\",\"size\":527,"
      "\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v6\"}}"
      "]}";

static const char oci_manifest[]
    = "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST "\","
      "\"config\":{\"mediaType\":\"" OCI_CONFIG "\",\"digest\":\"" D1 "\",\"size\":1469},"
      "\"layers\":["
      "{\"mediaType\":\"" OCI_LAYER_GZIP "\",\"digest\":\"" D2 "\",\"size\":2819},"
      "{\"mediaType\":\"" OCI_LAYER_ZSTD "\",\"digest\":\"" D3 "\",\"size\":0,"
      "\"urls\":[\"https://example.com/a\",\"https://example.com/b\"],"
      "\"annotations\":{\"org.opencontainers.image.title\":\"x\"}}],"
      "\"annotations\":{\"org.opencontainers.image.created\":\"2024-01-01T00:00:00Z\"}}";

static const char docker_manifest[]
    = "{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"" MEDIA_TYPE_DOCKER_MANIFEST "\",\n"
      "   \"config\": {\"mediaType\": \"" DOCKER_CONFIG "\", \"size\": 1457, \"digest\": \"" D4
      "\"},\n   \"layers\": [{\"mediaType\": \"" DOCKER_LAYER "\", \"size\": 2592909,"
      " \"digest\": \"" D5 "\"}]\n}\n";

static const char schema1_manifest[]
    = "{\"schemaVersion\":1,\"name\":\"library/busybox\",\"tag\":\"latest\","
      "\"architecture\":\"amd64\",\"fsLayers\":[{\"blobSum\":\"" D1 "\"}],"
      "\"history\":[{\"v1Compatibility\":\"{}\"}],\"signatures\":[]}";

static struct manifest *
parse_ok(const char *content_type, const char *text)
{
  struct manifest *m = NULL;
  struct error err = ERROR_INIT;

  if (manifest_parse(content_type, text, strlen(text), &m, &err) < 0)
    fail_msg("manifest_parse: %s", error_message(&err));
  assert_non_null(m);
  return m;
}

/* Parses text expecting failure with code and a message holding part. */
static void
parse_fails(const char *content_type, const char *text, int code, const char *part)
{
  struct manifest *m = (struct manifest *)1;
  struct error err = ERROR_INIT;

  if (manifest_parse(content_type, text, strlen(text), &m, &err) == 0)
    fail_msg("accepted: %s", text);
  assert_null(m);
  assert_int_equal(err.code, code);
  if (strstr(err.message, part) == NULL)
    fail_msg("message \"%s\" lacks \"%s\"", err.message, part);
  error_clear(&err);
}

static void
test_oci_index(void **state)
{
  struct manifest *m = parse_ok(MEDIA_TYPE_OCI_INDEX, oci_index);

  assert_int_equal(m->kind, MANIFEST_KIND_INDEX);
  assert_string_equal(m->media_type, MEDIA_TYPE_OCI_INDEX);
  assert_int_equal(m->n_manifests, 7);
  assert_null(m->layers);
  assert_true(m->manifests[0].attestation);
  assert_false(m->manifests[1].attestation);
  assert_string_equal(m->manifests[1].digest, D1);
  assert_int_equal(m->manifests[1].size, 1000);
  assert_string_equal(m->manifests[1].os, "linux");
  assert_string_equal(m->manifests[1].architecture, "amd64");
  assert_null(m->manifests[1].variant);
  assert_string_equal(m->manifests[2].variant, "v8");
  assert_string_equal(m->manifests[5].os, "windows");
  assert_true(m->manifests[6].attestation);
  manifest_free(m);
}

static void
test_docker_list(void **state)
{
  struct manifest *m = parse_ok(MEDIA_TYPE_DOCKER_LIST, docker_list);

  assert_int_equal(m->kind, MANIFEST_KIND_INDEX);
  assert_string_equal(m->media_type, MEDIA_TYPE_DOCKER_LIST);
  assert_int_equal(m->n_manifests, 3);
  assert_string_equal(m->manifests[0].media_type, MEDIA_TYPE_DOCKER_MANIFEST);
  manifest_free(m);
}

static void
test_oci_manifest(void **state)
{
  struct manifest *m = parse_ok(MEDIA_TYPE_OCI_MANIFEST, oci_manifest);

  assert_int_equal(m->kind, MANIFEST_KIND_IMAGE);
  assert_string_equal(m->media_type, MEDIA_TYPE_OCI_MANIFEST);
  assert_string_equal(m->config.media_type, OCI_CONFIG);
  assert_string_equal(m->config.digest, D1);
  assert_int_equal(m->config.size, 1469);
  assert_int_equal(m->n_layers, 2);
  assert_string_equal(m->layers[0].media_type, OCI_LAYER_GZIP);
  assert_string_equal(m->layers[0].digest, D2);
  assert_int_equal(m->layers[0].size, 2819);
  assert_null(m->layers[0].urls);
  assert_int_equal(m->layers[1].size, 0);
  assert_int_equal(strv_length(m->layers[1].urls), 2);
  assert_string_equal(m->layers[1].urls[1], "https://example.com/b");
  assert_null(m->manifests);
  manifest_free(m);
}

static void
test_docker_manifest(void **state)
{
  struct manifest *m = parse_ok(MEDIA_TYPE_DOCKER_MANIFEST, docker_manifest);

  assert_int_equal(m->kind, MANIFEST_KIND_IMAGE);
  assert_string_equal(m->media_type, MEDIA_TYPE_DOCKER_MANIFEST);
  assert_string_equal(m->config.digest, D4);
  assert_int_equal(m->n_layers, 1);
  assert_int_equal(m->layers[0].size, 2592909);
  assert_string_equal(m->layers[0].media_type, DOCKER_LAYER);
  manifest_free(m);
}

/* Without a Content-Type, or with a generic or decorated one, the
 * document's mediaType and then its shape decide. */
static void
test_type_fallbacks(void **state)
{
  struct manifest *m;

  m = parse_ok(NULL, docker_manifest);
  assert_string_equal(m->media_type, MEDIA_TYPE_DOCKER_MANIFEST);
  manifest_free(m);
  m = parse_ok("", docker_list);
  assert_string_equal(m->media_type, MEDIA_TYPE_DOCKER_LIST);
  manifest_free(m);
  m = parse_ok("application/json; charset=utf-8", oci_index);
  assert_string_equal(m->media_type, MEDIA_TYPE_OCI_INDEX);
  manifest_free(m);
  m = parse_ok(" Application/VND.oci.image.manifest.v1+JSON ; charset=utf-8", oci_manifest);
  assert_string_equal(m->media_type, MEDIA_TYPE_OCI_MANIFEST);
  manifest_free(m);

  m = parse_ok(NULL, "{\"schemaVersion\":2,\"manifests\":[]}");
  assert_int_equal(m->kind, MANIFEST_KIND_INDEX);
  assert_string_equal(m->media_type, MEDIA_TYPE_OCI_INDEX);
  assert_int_equal(m->n_manifests, 0);
  manifest_free(m);
  m = parse_ok(NULL, "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" OCI_CONFIG
                     "\",\"digest\":\"" D1 "\",\"size\":2},\"layers\":[]}");
  assert_int_equal(m->kind, MANIFEST_KIND_IMAGE);
  assert_string_equal(m->media_type, MEDIA_TYPE_OCI_MANIFEST);
  assert_int_equal(m->n_layers, 0);
  manifest_free(m);

  /* the Content-Type wins over a mediaType of the same kind */
  m = parse_ok(MEDIA_TYPE_DOCKER_MANIFEST, oci_manifest);
  assert_string_equal(m->media_type, MEDIA_TYPE_DOCKER_MANIFEST);
  manifest_free(m);
}

static void
test_schema1_refused(void **state)
{
  const char *message = "schema1 manifests are not supported";

  parse_fails("application/vnd.docker.distribution.manifest.v1+prettyjws", schema1_manifest, EINVAL,
              message);
  parse_fails("application/vnd.docker.distribution.manifest.v1+json", "{}", EINVAL, message);
  parse_fails(NULL, schema1_manifest, EINVAL, message);
  parse_fails("application/json", schema1_manifest, EINVAL, message);
  parse_fails(MEDIA_TYPE_DOCKER_MANIFEST, schema1_manifest, EINVAL, message);
  parse_fails(NULL, "{\"schemaVersion\":1}", EINVAL, message);
  parse_fails(NULL, "{\"mediaType\":\"application/vnd.docker.distribution.manifest.v1+json\"}",
              EINVAL, message);
}

static void
test_bad_documents(void **state)
{
  char *big;

  parse_fails(NULL, "", EINVAL, "invalid manifest: parse JSON");
  parse_fails(NULL, "{\"schemaVersion\":2,", EINVAL, "invalid manifest: parse JSON");
  parse_fails(NULL, "[]", EINVAL, "not a JSON object");
  parse_fails(NULL, "{}", EINVAL, "cannot tell what kind of manifest");
  parse_fails(NULL, "{\"mediaType\":7}", EINVAL, "mediaType must be a string");
  parse_fails("application/vnd.oci.artifact.manifest.v1+json", oci_manifest, EINVAL,
              "unsupported manifest media type \"application/vnd.oci.artifact.manifest.v1+json\"");
  parse_fails(NULL, "{\"mediaType\":\"application/vnd.example+json\",\"manifests\":[]}", EINVAL,
              "unsupported manifest media type");
  /* Content-Type and document disagree on the kind */
  parse_fails(MEDIA_TYPE_OCI_MANIFEST, oci_index, EINVAL,
              "Content-Type is " MEDIA_TYPE_OCI_MANIFEST " but the document says it is");
  parse_fails(MEDIA_TYPE_OCI_INDEX, "{\"mediaType\":\"application/x\",\"manifests\":[]}", EINVAL,
              "but the document says it is \"application/x\"");
  /* a document readable two ways */
  parse_fails(NULL,
              "{\"manifests\":[],\"config\":{\"mediaType\":\"" OCI_CONFIG "\",\"digest\":\"" D1
              "\",\"size\":2},\"layers\":[]}",
              EINVAL, "an index must not have");
  parse_fails(MEDIA_TYPE_OCI_MANIFEST,
              "{\"manifests\":[],\"config\":{\"mediaType\":\"" OCI_CONFIG "\",\"digest\":\"" D1
              "\",\"size\":2},\"layers\":[]}",
              EINVAL, "an image manifest must not have");
  parse_fails(NULL, "{\"schemaVersion\":3,\"manifests\":[]}", EINVAL, "schemaVersion 3");
  parse_fails(NULL, "{\"schemaVersion\":\"2\",\"manifests\":[]}", EINVAL,
              "schemaVersion must be an integer");
  parse_fails(MEDIA_TYPE_OCI_INDEX, "{\"manifests\":{}}", EINVAL,
              "invalid image index: manifests must be an array");
  parse_fails(MEDIA_TYPE_OCI_MANIFEST, "{\"layers\":[]}", EINVAL,
              "invalid image manifest: config is missing");
  parse_fails(MEDIA_TYPE_OCI_MANIFEST,
              "{\"config\":{\"mediaType\":\"" OCI_CONFIG "\",\"digest\":\"" D1 "\",\"size\":2}}",
              EINVAL, "layers must be an array");

  big = xmalloc(MANIFEST_MAX_SIZE + 2);
  memset(big, ' ', MANIFEST_MAX_SIZE + 1);
  big[MANIFEST_MAX_SIZE + 1] = '\0';
  parse_fails(NULL, big, EFBIG, "more than the limit");
  free(big);
}

#define IMAGE_WITH_LAYER(layer)                                                                    \
  "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST                                  \
  "\",\"config\":{\"mediaType\":\"" OCI_CONFIG "\",\"digest\":\"" D1                               \
  "\",\"size\":2},\"layers\":[{\"mediaType\":\"" OCI_LAYER_GZIP "\",\"digest\":\"" D2              \
  "\",\"size\":1}," layer "]}"

static void
test_bad_descriptors(void **state)
{
  parse_fails(NULL, IMAGE_WITH_LAYER("{\"mediaType\":\"x\",\"digest\":\"sha256:abc\",\"size\":1}"),
              EINVAL, "layers[1]: digest \"sha256:abc\" is not a sha256 digest");
  parse_fails(NULL,
              IMAGE_WITH_LAYER("{\"mediaType\":\"x\",\"digest\":\"sha512:" D1 "\",\"size\":1}"),
              EINVAL, "layers[1]: digest");
  parse_fails(NULL, IMAGE_WITH_LAYER("{\"mediaType\":\"x\",\"digest\":\"../../etc\",\"size\":1}"),
              EINVAL, "not a sha256 digest");
  parse_fails(NULL, IMAGE_WITH_LAYER("{\"mediaType\":\"x\",\"size\":1}"), EINVAL,
              "layers[1].digest is missing");
  parse_fails(NULL, IMAGE_WITH_LAYER("{\"digest\":\"" D3 "\",\"size\":1}"), EINVAL,
              "layers[1].mediaType is missing");
  parse_fails(NULL, IMAGE_WITH_LAYER("{\"mediaType\":\"x\",\"digest\":\"" D3 "\"}"), EINVAL,
              "layers[1].size is missing");
  parse_fails(NULL, IMAGE_WITH_LAYER("{\"mediaType\":\"x\",\"digest\":\"" D3 "\",\"size\":-1}"),
              EINVAL, "layers[1].size must be a non-negative integer");
  parse_fails(NULL, IMAGE_WITH_LAYER("{\"mediaType\":\"x\",\"digest\":\"" D3 "\",\"size\":1.5}"),
              EINVAL, "size must be a non-negative integer");
  parse_fails(NULL,
              IMAGE_WITH_LAYER("{\"mediaType\":\"x\",\"digest\":\"" D3
                               "\",\"size\":99999999999999999999999}"),
              EINVAL, "size must be a non-negative integer");
  parse_fails(NULL, IMAGE_WITH_LAYER("{\"mediaType\":\"x\",\"digest\":\"" D3 "\",\"size\":\"1\"}"),
              EINVAL, "size must be a non-negative integer");
  parse_fails(NULL, IMAGE_WITH_LAYER("{\"mediaType\":1,\"digest\":\"" D3 "\",\"size\":1}"), EINVAL,
              "layers[1].mediaType must be a string");
  parse_fails(
      NULL, IMAGE_WITH_LAYER("{\"mediaType\":\"x\",\"digest\":\"" D3 "\",\"size\":1,\"urls\":[1]}"),
      EINVAL, "layers[1].urls[0] must be a string");
  parse_fails(
      NULL,
      IMAGE_WITH_LAYER("{\"mediaType\":\"x\",\"digest\":\"" D3 "\",\"size\":1,\"annotations\":[]}"),
      EINVAL, "layers[1].annotations must be an object");
  parse_fails(NULL, IMAGE_WITH_LAYER("7"), EINVAL, "layers[1] must be an object");
  parse_fails(NULL,
              "{\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"" D3
              "\",\"size\":1,\"platform\":{\"os\":5}}]}",
              EINVAL, "invalid image index: manifests[0].platform.os must be a string");
  parse_fails(NULL,
              "{\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"" D3
              "\",\"size\":1,\"platform\":[]}]}",
              EINVAL, "manifests[0].platform must be an object");
  /* the offending digest is shown escaped */
  parse_fails(NULL, IMAGE_WITH_LAYER("{\"mediaType\":\"x\",\"digest\":\"a\\nb\",\"size\":1}"),
              EINVAL, "digest \"a\\x0ab\" is not");
}

static void
test_layer_media_types(void **state)
{
  static const struct
  {
    const char *media_type;
    enum layer_compression compression;
  } cases[] = {
    { "application/vnd.oci.image.layer.v1.tar", LAYER_COMPRESSION_NONE },
    { "application/vnd.oci.image.layer.v1.tar+gzip", LAYER_COMPRESSION_GZIP },
    { "application/vnd.oci.image.layer.v1.tar+zstd", LAYER_COMPRESSION_ZSTD },
    { "application/vnd.oci.image.layer.nondistributable.v1.tar", LAYER_COMPRESSION_NONE },
    { "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", LAYER_COMPRESSION_GZIP },
    { "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", LAYER_COMPRESSION_ZSTD },
    { "application/vnd.docker.image.rootfs.diff.tar", LAYER_COMPRESSION_NONE },
    { "application/vnd.docker.image.rootfs.diff.tar.gzip", LAYER_COMPRESSION_GZIP },
    { "application/vnd.docker.image.rootfs.foreign.diff.tar", LAYER_COMPRESSION_NONE },
    { "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", LAYER_COMPRESSION_GZIP },
  };
  static const char *const refused[] = {
    "",
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.oci.image.layer.v1.tar+bzip2",
    "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+gzip ",
    "APPLICATION/VND.OCI.IMAGE.LAYER.V1.TAR",
  };
  struct error err = ERROR_INIT;
  enum layer_compression c;

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      c = (enum layer_compression) - 1;
      assert_int_equal(layer_media_type_compression(cases[i].media_type, &c, &err), 0);
      assert_int_equal(c, cases[i].compression);
    }
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
    {
      assert_int_equal(layer_media_type_compression(refused[i], &c, &err), -1);
      assert_int_equal(err.code, EINVAL);
      assert_non_null(strstr(err.message, "unsupported layer media type"));
      error_clear(&err);
    }
  assert_int_equal(layer_media_type_compression(NULL, &c, &err), -1);
  error_clear(&err);
}

/* Selects expecting digest (NULL: expecting ENOENT). */
static void
expect_platform(const struct manifest *index, const char *arch, const char *variant,
                const char *digest)
{
  const struct descriptor *d = (const struct descriptor *)1;
  struct error err = ERROR_INIT;
  int r = manifest_select_platform(index, "linux", arch, variant, &d, &err);

  if (digest == NULL)
    {
      if (r == 0)
        fail_msg("%s/%s: selected %s", arch, variant, d->digest);
      assert_null(d);
      assert_int_equal(err.code, ENOENT);
      assert_non_null(strstr(err.message, "no image for platform linux/"));
      error_clear(&err);
      return;
    }
  if (r < 0)
    fail_msg("%s/%s: %s", arch, variant, error_message(&err));
  assert_string_equal(d->digest, digest);
}

static void
test_select_platform(void **state)
{
  struct manifest *oci = parse_ok(NULL, oci_index);
  struct manifest *docker = parse_ok(NULL, docker_list);
  struct manifest *image = parse_ok(NULL, oci_manifest);
  const struct descriptor *d;
  struct error err = ERROR_INIT;

  /* the attestation entry listed first for amd64 is skipped */
  expect_platform(oci, "amd64", "", D1);
  expect_platform(oci, "amd64", NULL, D1);
  expect_platform(oci, "amd64", "v1", D1);
  expect_platform(oci, "x86_64", "", D1);
  /* arm64: "" and "v8" are the same, on either side */
  expect_platform(oci, "arm64", "", D2);
  expect_platform(oci, "arm64", "v8", D2);
  expect_platform(oci, "aarch64", NULL, D2);
  expect_platform(docker, "arm64", "v8", D1);
  expect_platform(docker, "arm64", "", D1);
  /* arm: the exact variant is preferred over an older one listed first */
  expect_platform(oci, "arm", "v7", D4);
  expect_platform(oci, "arm", "7", D4);
  expect_platform(oci, "arm", "", D4); /* arm alone means v7 */
  expect_platform(oci, "arm", "v6", D3);
  expect_platform(oci, "arm", "v5", NULL); /* v5 cannot run v6 */
  expect_platform(oci, "arm", "v8", D4);
  /* the newest variant the host runs, else nothing */
  expect_platform(docker, "arm", "v7", D3);
  expect_platform(docker, "arm", "v6", D3);
  expect_platform(docker, "arm", "v5", D2);
  expect_platform(docker, "amd64", "", NULL);
  expect_platform(oci, "s390x", "", NULL);
  expect_platform(oci, "arm64", "v9", NULL);
  expect_platform(oci, "amd64", "v3", NULL);

  /* the error names what is there, without the attestations */
  assert_int_equal(manifest_select_platform(oci, "linux", "s390x", "", &d, &err), -1);
  assert_string_equal(err.message,
                      "no image for platform linux/s390x in the index (it has: \"linux/amd64\", "
                      "\"linux/arm64/v8\", \"linux/arm/v6\", \"linux/arm/v7\", \"windows/amd64\")");
  error_clear(&err);

  /* selecting in an image manifest is a caller's mistake */
  assert_int_equal(manifest_select_platform(image, "linux", "amd64", "", &d, &err), -1);
  assert_int_equal(err.code, EINVAL);
  error_clear(&err);

  manifest_free(oci);
  manifest_free(docker);
  manifest_free(image);
}

static void
test_select_skips_attestations_and_platformless(void **state)
{
  struct manifest *m
      = parse_ok(NULL, "{\"manifests\":["
                       "{\"mediaType\":\"x\",\"digest\":\"" D1 "\",\"size\":1},"
                       "{\"mediaType\":\"x\",\"digest\":\"" D2 "\",\"size\":1,"
                       "\"platform\":{\"os\":\"unknown\",\"architecture\":\"unknown\"}},"
                       "{\"mediaType\":\"x\",\"digest\":\"" D3 "\",\"size\":1,"
                       "\"annotations\":{\"vnd.docker.reference.type\":\"attestation-manifest\"},"
                       "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}");
  const struct descriptor *d;
  struct error err = ERROR_INIT;

  assert_false(m->manifests[0].attestation);
  assert_null(m->manifests[0].os);
  assert_true(m->manifests[1].attestation);
  assert_true(m->manifests[2].attestation);
  assert_int_equal(manifest_select_platform(m, "linux", "amd64", "", &d, &err), -1);
  assert_int_equal(err.code, ENOENT);
  assert_non_null(strstr(err.message, "(it has: \"?/?\")"));
  error_clear(&err);
  manifest_free(m);

  m = parse_ok(MEDIA_TYPE_OCI_INDEX, "{\"manifests\":[]}");
  assert_int_equal(manifest_select_platform(m, "linux", "amd64", "", &d, &err), -1);
  assert_non_null(strstr(err.message, "(it has: no images)"));
  error_clear(&err);
  manifest_free(m);
}

static void
test_platform_host(void **state)
{
  const char *os, *arch, *variant;

  platform_host(&os, &arch, &variant);
  assert_string_equal(os, "linux");
  assert_non_null(variant);
#if defined(__x86_64__)
  assert_string_equal(arch, "amd64");
  assert_string_equal(variant, "");
#elif defined(__aarch64__)
  assert_string_equal(arch, "arm64");
#endif
}

static const char full_config[]
    = "{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\","
      "\"created\":\"2024-01-01T00:00:00Z\","
      "\"config\":{\"User\":\"1000:1000\",\"Env\":[\"PATH=/usr/bin:/bin\",\"A=b=c\"],"
      "\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Cmd\":[\"echo hi\"],\"WorkingDir\":\"/srv\","
      "\"ExposedPorts\":{\"80/tcp\":{}},\"Volumes\":{\"/data\":{},\"/cache\":{}},"
      "\"StopSignal\":\"SIGRTMIN+3\",\"Labels\":{\"a\":\"1\",\"b\":\"\"},\"ArgsEscaped\":true},"
      "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\",\"" D2 "\"]},"
      "\"history\":[{\"created_by\":\"x\"},{\"empty_layer\":true}]}";

static struct image_config *
config_ok(const char *text)
{
  struct image_config *c = NULL;
  struct error err = ERROR_INIT;

  if (image_config_parse(text, strlen(text), &c, &err) < 0)
    fail_msg("image_config_parse: %s", error_message(&err));
  return c;
}

static void
config_fails(const char *text, int code, const char *part)
{
  struct image_config *c = (struct image_config *)1;
  struct error err = ERROR_INIT;

  if (image_config_parse(text, strlen(text), &c, &err) == 0)
    fail_msg("accepted: %s", text);
  assert_null(c);
  assert_int_equal(err.code, code);
  if (strstr(err.message, part) == NULL)
    fail_msg("message \"%s\" lacks \"%s\"", err.message, part);
  error_clear(&err);
}

static void
test_config_full(void **state)
{
  struct image_config *c = config_ok(full_config);

  assert_string_equal(c->os, "linux");
  assert_string_equal(c->architecture, "arm");
  assert_string_equal(c->variant, "v7");
  assert_string_equal(c->user, "1000:1000");
  assert_int_equal(strv_length(c->env), 2);
  assert_string_equal(c->env[1], "A=b=c");
  assert_int_equal(strv_length(c->entrypoint), 2);
  assert_string_equal(c->entrypoint[0], "/bin/sh");
  assert_int_equal(strv_length(c->cmd), 1);
  assert_string_equal(c->cmd[0], "echo hi");
  assert_string_equal(c->working_dir, "/srv");
  assert_string_equal(c->stop_signal, "SIGRTMIN+3");
  assert_int_equal(strv_length(c->volumes), 2);
  assert_string_equal(c->volumes[0], "/data");
  assert_string_equal(c->volumes[1], "/cache");
  assert_int_equal(strv_length(c->labels), 4);
  assert_string_equal(c->labels[0], "a");
  assert_string_equal(c->labels[1], "1");
  assert_string_equal(c->labels[2], "b");
  assert_string_equal(c->labels[3], "");
  assert_int_equal(c->n_diff_ids, 2);
  assert_string_equal(c->diff_ids[0], D1);
  assert_string_equal(c->diff_ids[1], D2);
  assert_null(c->diff_ids[2]);
  image_config_free(c);
  image_config_free(NULL);
}

/* FROM scratch with nothing set: defaults, never NULL where the header
 * promises a list. */
static void
test_config_minimal(void **state)
{
  struct image_config *c = config_ok("{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}");

  assert_string_equal(c->os, "");
  assert_string_equal(c->architecture, "");
  assert_string_equal(c->user, "");
  assert_string_equal(c->working_dir, "");
  assert_string_equal(c->stop_signal, "");
  assert_non_null(c->env);
  assert_null(c->env[0]);
  assert_null(c->entrypoint);
  assert_null(c->cmd);
  assert_non_null(c->volumes);
  assert_null(c->volumes[0]);
  assert_non_null(c->labels);
  assert_null(c->labels[0]);
  assert_int_equal(c->n_diff_ids, 0);
  assert_non_null(c->diff_ids);
  image_config_free(c);

  /* nulls, as Docker writes them, and empty lists */
  c = config_ok("{\"config\":{\"User\":null,\"Env\":null,\"Entrypoint\":[],\"Cmd\":null,"
                "\"Volumes\":null,\"Labels\":null},"
                "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D3 "\"]}}");
  assert_string_equal(c->user, "");
  assert_null(c->env[0]);
  assert_null(c->entrypoint);
  assert_null(c->cmd);
  assert_int_equal(c->n_diff_ids, 1);
  image_config_free(c);
}

static void
test_config_refused(void **state)
{
  char *big;

  config_fails("", EINVAL, "invalid image config: parse JSON");
  config_fails("[]", EINVAL, "not a JSON object");
  config_fails("{}", EINVAL, "invalid image config: rootfs is missing");
  config_fails("{\"rootfs\":{\"diff_ids\":[]}}", EINVAL, "rootfs.type must be \"layers\"");
  config_fails("{\"rootfs\":{\"type\":\"squashfs\",\"diff_ids\":[]}}", EINVAL,
               "rootfs.type must be \"layers\"");
  config_fails("{\"rootfs\":{\"type\":\"layers\"}}", EINVAL, "rootfs.diff_ids must be an array");
  config_fails("{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\",\"sha256:12\"]}}", EINVAL,
               "rootfs.diff_ids[1]: digest \"sha256:12\" is not a sha256 digest");
  config_fails("{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[1]}}", EINVAL,
               "rootfs.diff_ids[0] must be a string");
#define ROOTFS ",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}"
  config_fails("{\"os\":1" ROOTFS, EINVAL, "os must be a string");
  config_fails("{\"config\":[]" ROOTFS, EINVAL, "config must be an object");
  config_fails("{\"config\":{\"User\":0}" ROOTFS, EINVAL, "config.User must be a string");
  config_fails("{\"config\":{\"Env\":\"A=1\"}" ROOTFS, EINVAL,
               "config.Env must be an array of strings");
  config_fails("{\"config\":{\"Cmd\":[\"a\",null]}" ROOTFS, EINVAL,
               "config.Cmd[1] must be a string");
  config_fails("{\"config\":{\"Volumes\":[\"/a\"]}" ROOTFS, EINVAL,
               "config.Volumes must be an object");
  config_fails("{\"config\":{\"Labels\":{\"a\":1}}" ROOTFS, EINVAL,
               "config.Labels values must be strings");
#undef ROOTFS

  big = xmalloc(MANIFEST_MAX_SIZE + 2);
  memset(big, ' ', MANIFEST_MAX_SIZE + 1);
  big[MANIFEST_MAX_SIZE + 1] = '\0';
  config_fails(big, EFBIG, "more than the limit");
  free(big);
}

/* Expected values from Python:
 *   d = ["sha256:" + sha256(f"layer{i}".encode()).hexdigest() for i in range(3)]
 *   c = d[0]; c = "sha256:" + sha256((c + " " + d[i]).encode()).hexdigest() */
static void
test_chain_id(void **state)
{
  char *diff_ids[] = {
    "sha256:4fbec69b941195fd56f8212a5000e304129451d82efca94ff0e0fb2d5355472e",
    "sha256:77ea7eee3d80b1a38f83906dd3048e2689457eb90e18a7d12f839c5ae37106a2",
    "sha256:95cf1a2e1698fe3ca1fcc3f653119146b271d0b62e487ec264441e886a11bd06",
    NULL,
  };
  char out[72];

  layer_chain_id(diff_ids, 1, out);
  assert_string_equal(out, diff_ids[0]);
  layer_chain_id(diff_ids, 2, out);
  assert_string_equal(out,
                      "sha256:ef232af0eb422cdfd7917631657cd8ed2bfd5b9461b37c427aa0d3e0a19adf79");
  layer_chain_id(diff_ids, 3, out);
  assert_string_equal(out,
                      "sha256:7ad3896338947cc04ee0b35b50d400ff32538d63f42f85ec87feac78bf71a54d");
  layer_chain_id(diff_ids, 0, out);
  assert_string_equal(out, "");
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_oci_index),
    cmocka_unit_test(test_docker_list),
    cmocka_unit_test(test_oci_manifest),
    cmocka_unit_test(test_docker_manifest),
    cmocka_unit_test(test_type_fallbacks),
    cmocka_unit_test(test_schema1_refused),
    cmocka_unit_test(test_bad_documents),
    cmocka_unit_test(test_bad_descriptors),
    cmocka_unit_test(test_layer_media_types),
    cmocka_unit_test(test_select_platform),
    cmocka_unit_test(test_select_skips_attestations_and_platformless),
    cmocka_unit_test(test_platform_host),
    cmocka_unit_test(test_config_full),
    cmocka_unit_test(test_config_minimal),
    cmocka_unit_test(test_config_refused),
    cmocka_unit_test(test_chain_id),
  };
  return cmocka_run_group_tests_name("manifest", tests, NULL, NULL);
}
