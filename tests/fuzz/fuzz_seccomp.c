/* libFuzzer harness for seccomp profiles (pod/seccomp.c): a Localhost
 * profile is a file on the node that a pod spec names, in Docker or OCI
 * form, so its bytes are not crid's.  The input is converted for this
 * host twice, with containerd's default capabilities and with every
 * capability (includes/excludes decided both ways), and each converted
 * profile is compiled to BPF as crid does for crun.  Built and run by
 * `make fuzz`.
 *
 * Arbitrary bytes either convert or fail with a message; a converted
 * profile is JSON that parses again, and compiling it succeeds or fails
 * with a message. */
#include "pod/capabilities.h"
#include "pod/seccomp.h"
#include "pod/seccomp_bpf.h"
#include "common/json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void
check_compiles(const char *json)
{
  struct error err = ERROR_INIT;
  struct json_value *parsed = json_parse(json, strlen(json), &err);
  char *base64 = NULL;

  if (parsed == NULL || !json_is_object(parsed))
    abort();
  json_free(parsed);
  if (seccomp_bpf_compile(json, &base64, &err) < 0 && err.message == NULL)
    abort();
  free(base64);
  error_clear(&err);
}

static void
convert(const uint8_t *data, size_t size, uint64_t capabilities)
{
  struct error err = ERROR_INIT;
  char *json = NULL;

  if (seccomp_profile_convert((const char *)data, size, "fuzz.json", capabilities, &json, &err)
      == 0)
    {
      if (json)
        check_compiles(json);
    }
  else if (err.message == NULL)
    abort();
  free(json);
  error_clear(&err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size > SECCOMP_PROFILE_MAX_SIZE)
    return 0;
  convert(data, size, capabilities_default());
  convert(data, size, capabilities_known());
  return 0;
}
