/* libFuzzer harness for the registry's WWW-Authenticate parser
 * (image/registry_auth.c), which reads what any registry, or anything
 * posing as one, sends.  Built and run by `make fuzz`.
 *
 * Arbitrary header text either parses or fails with a message; whatever
 * parses has a lower-case scheme and fields that are plain strings. */
#include "image/registry.h"
#include "common/util.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *text = xstrndup((const char *)data, size);
  struct auth_challenge challenge;
  struct error err = ERROR_INIT;

  memset(&challenge, 0, sizeof challenge);
  if (auth_challenge_parse(text, &challenge, &err) == 0)
    {
      for (const char *p = challenge.scheme; p && *p; p++)
        if (isupper((unsigned char)*p))
          abort();
      auth_challenge_free(&challenge);
    }
  else if (err.message == NULL)
    abort(); /* a failure always says why */
  error_clear(&err);
  free(text);
  return 0;
}
