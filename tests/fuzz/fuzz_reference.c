/* libFuzzer harness for image/reference.
 *
 *   clang -g -fsanitize=fuzzer,address -D_GNU_SOURCE -Ulinux -I. tests/fuzz/fuzz_reference.c \
 *         image/reference.c image/digest.c image/manifest.c common/*.c -lyajl -lcrypto \
 *         -o fuzz_reference && ./fuzz_reference -max_total_time=60
 *
 * Arbitrary text either fails with EINVAL and a one-line message that
 * starts with `invalid reference "`, or parses to a reference that obeys
 * the grammar's limits and whose normalised form parses again to itself. */
#include "common/cleanup.h"
#include "common/util.h"
#include "image/reference.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void
check(bool ok)
{
  if (!ok)
    abort();
}

static void
check_parsed(const struct image_reference *ref)
{
  cleanup_free char *name = image_reference_name(ref);
  cleanup_free char *full = image_reference_string(ref);
  cleanup_free char *again_full = NULL;
  struct image_reference again;
  struct error err = ERROR_INIT;

  check(ref->domain && *ref->domain && ref->path && *ref->path);
  check(ref->tag || ref->digest);
  check(strlen(name) <= 255);
  check(ref->tag == NULL || (*ref->tag && strlen(ref->tag) <= 128));
  check(ref->digest == NULL || digest_is_valid(ref->digest));
  check(strcmp(ref->domain, "index.docker.io") != 0);
  check(strcmp(ref->domain, "docker.io") != 0 || strchr(ref->path, '/') != NULL);
  for (const char *p = ref->path; *p; p++)
    check(!(*p >= 'A' && *p <= 'Z') && *p != ':' && *p != '@');

  /* normalising is idempotent */
  if (image_reference_parse(full, &again, &err) < 0)
    abort();
  again_full = image_reference_string(&again);
  check(strcmp(full, again_full) == 0);
  image_reference_free(&again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  cleanup_free char *text = xstrndup((const char *)data, size);
  struct image_reference ref;
  struct error err = ERROR_INIT;

  if (image_reference_parse(text, &ref, &err) < 0)
    {
      check(err.code == EINVAL && err.message != NULL);
      check(strncmp(err.message, "invalid reference \"", 19) == 0);
      for (const char *p = err.message; *p; p++)
        check((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
      check(ref.domain == NULL && ref.path == NULL && ref.tag == NULL && ref.digest == NULL);
      error_clear(&err);
      return 0;
    }
  check_parsed(&ref);
  image_reference_free(&ref);
  return 0;
}
