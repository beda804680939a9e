/* libFuzzer harness for image/manifest.
 *
 *   clang -g -fsanitize=fuzzer,address -D_GNU_SOURCE -Ulinux -I. tests/fuzz/fuzz_manifest.c \
 *         image/reference.c image/digest.c image/manifest.c common/*.c -lyajl -lcrypto \
 *         -o fuzz_manifest && ./fuzz_manifest -max_total_time=60
 *
 * The first byte picks the Content-Type (none, each type we parse, schema1,
 * generic ones, an unknown one); the rest is the document.  It goes through
 * manifest_parse and image_config_parse.  Whatever parses must keep the
 * promises of image/manifest.h (valid digests, sizes >= 0, lists the right
 * shape), and platform selection and chain ids must work on it. */
#include "common/cleanup.h"
#include "common/util.h"
#include "image/manifest.h"
#include "image/reference.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const content_types[] = {
  NULL,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  MEDIA_TYPE_DOCKER_LIST,
  MEDIA_TYPE_DOCKER_MANIFEST,
  "application/vnd.docker.distribution.manifest.v1+prettyjws",
  "application/json; charset=utf-8",
  "",
  "application/vnd.example+json",
  " APPLICATION/VND.OCI.IMAGE.INDEX.V1+JSON ;",
};

static const char *const platforms[][3] = {
  { "linux", "amd64", "" }, { "linux", "arm64", "" },   { "linux", "arm64", "v8" },
  { "linux", "arm", "v7" }, { "linux", "arm", "" },     { "linux", "arm", "v5" },
  { "linux", "386", NULL }, { "windows", "amd64", "" },
};

static void
check(bool ok)
{
  if (!ok)
    abort();
}

static void
check_descriptor(const struct descriptor *d)
{
  check(d->media_type != NULL);
  check(digest_is_valid(d->digest));
  check(d->size >= 0);
  for (char **u = d->urls; u && *u; u++)
    check(*u != NULL);
}

static void
check_index(const struct manifest *m)
{
  const char *os, *arch, *variant;
  const struct descriptor *d;
  struct error err = ERROR_INIT;

  check(m->layers == NULL && m->n_layers == 0);
  for (size_t i = 0; i < m->n_manifests; i++)
    check_descriptor(&m->manifests[i]);

  platform_host(&os, &arch, &variant);
  for (size_t i = 0; i <= sizeof platforms / sizeof platforms[0]; i++)
    {
      const char *const *p = i < sizeof platforms / sizeof platforms[0] ? platforms[i] : NULL;
      if (manifest_select_platform(m, p ? p[0] : os, p ? p[1] : arch, p ? p[2] : variant, &d, &err)
          < 0)
        {
          check(err.code == ENOENT && d == NULL);
          error_clear(&err);
          continue;
        }
      /* the choice is one of the entries, and never an attestation */
      check(d >= m->manifests && d < m->manifests + m->n_manifests);
      check(!d->attestation && d->os && strcmp(d->os, p ? p[0] : os) == 0);
    }
}

static void
check_image(const struct manifest *m)
{
  enum layer_compression compression;
  struct error err = ERROR_INIT;

  check(m->manifests == NULL && m->n_manifests == 0);
  check_descriptor(&m->config);
  for (size_t i = 0; i < m->n_layers; i++)
    {
      check_descriptor(&m->layers[i]);
      if (layer_media_type_compression(m->layers[i].media_type, &compression, &err) < 0)
        {
          check(err.code == EINVAL);
          error_clear(&err);
        }
    }
}

static void
fuzz_manifest(const char *content_type, const char *bytes, size_t len)
{
  struct manifest *m = NULL;
  struct error err = ERROR_INIT;

  if (manifest_parse(content_type, bytes, len, &m, &err) < 0)
    {
      check(m == NULL && err.code != 0 && err.message != NULL);
      error_clear(&err);
      return;
    }
  check(m->media_type != NULL);
  if (m->kind == MANIFEST_KIND_INDEX)
    check_index(m);
  else
    check_image(m);
  manifest_free(m);
}

static void
fuzz_config(const char *bytes, size_t len)
{
  struct image_config *c = NULL;
  struct error err = ERROR_INIT;
  char chain[72];

  if (image_config_parse(bytes, len, &c, &err) < 0)
    {
      check(c == NULL && err.code != 0 && err.message != NULL);
      error_clear(&err);
      return;
    }
  check(c->os && c->architecture && c->variant && c->user && c->working_dir && c->stop_signal);
  check(c->env && c->volumes && c->labels && c->diff_ids);
  check(strv_length(c->labels) % 2 == 0);
  check(c->entrypoint == NULL || c->entrypoint[0] != NULL);
  check(c->cmd == NULL || c->cmd[0] != NULL);
  check(strv_length(c->diff_ids) == c->n_diff_ids);
  for (size_t i = 0; i < c->n_diff_ids; i++)
    check(digest_is_valid(c->diff_ids[i]));
  layer_chain_id(c->diff_ids, c->n_diff_ids, chain);
  check(c->n_diff_ids == 0 ? chain[0] == '\0' : digest_is_valid(chain));
  image_config_free(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *content_type = NULL;

  if (size > 0)
    {
      content_type = content_types[data[0] % (sizeof content_types / sizeof content_types[0])];
      data++;
      size--;
    }
  fuzz_manifest(content_type, (const char *)data, size);
  fuzz_config((const char *)data, size);
  return 0;
}
