/* libFuzzer harness for the CDI spec parser (pod/cdi_spec.c): spec files
 * come from drivers and device plugins, untrusted.  The first byte picks
 * the format (even: JSON, odd: YAML), the rest is the file.  Built and run
 * by `make fuzz`.
 *
 * Every run parses or fails with a message; a parsed spec has a valid
 * kind and at least one device, each with a valid name. */
#include "pod/cdi_spec.h"

#include <stdint.h>
#include <stdlib.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct error err = ERROR_INIT;
  struct cdi_spec *spec = NULL;
  enum cdi_format format;

  if (size == 0)
    return 0;
  format = data[0] & 1 ? CDI_FORMAT_YAML : CDI_FORMAT_JSON;
  if (cdi_spec_parse((const char *)data + 1, size - 1, format, &spec, &err) == 0)
    {
      if (!cdi_vendor_is_valid(spec->vendor) || !cdi_class_is_valid(spec->class_name)
          || spec->n_devices == 0)
        abort();
      for (size_t i = 0; i < spec->n_devices; i++)
        if (!cdi_device_name_is_valid(spec->devices[i].name))
          abort();
      cdi_spec_free(spec);
    }
  else if (err.message == NULL)
    abort();
  error_clear(&err);
  return 0;
}
