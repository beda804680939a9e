/* libFuzzer harness for what CNI plugins hand back and what crid keeps of
 * a network configuration (netcni/): the result parser (cni_result_ips,
 * over a plugin's stdout) and the conflist parser (over the saved text).
 * Built and run by `make fuzz`.
 *
 * Arbitrary bytes either parse or fail with a message; a conflist that
 * parses is written back, and that text parses again. */
#include "netcni/cni_config.h"
#include "netcni/cni_exec.h"
#include "common/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void
check_result(const char *text)
{
  struct error err = ERROR_INIT;
  char **ips = NULL;

  if (cni_result_ips(text, "eth0", &ips, &err) == 0)
    strv_free(ips);
  else if (err.message == NULL)
    abort();
  error_clear(&err);
}

static void
check_conflist(const char *text, size_t len)
{
  struct error err = ERROR_INIT;
  struct cni_network_list *list = NULL;

  if (cni_network_list_parse("fuzz", text, len, &list, &err) == 0)
    {
      struct cni_network_list *again = NULL;
      char *written = cni_network_list_to_text(list);
      if (cni_network_list_parse("again", written, strlen(written), &again, &err) < 0)
        abort(); /* what crid writes, crid must read back */
      cni_network_list_free(again);
      cni_network_list_free(list);
      free(written);
    }
  else if (err.message == NULL)
    abort();
  error_clear(&err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *text = xstrndup((const char *)data, size);

  check_result(text);
  check_conflist(text, strlen(text));
  free(text);
  return 0;
}
