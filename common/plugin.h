/* common/plugin: crid's own shared objects, loaded when first needed.
 *
 * Parts of crid that bring large libraries an idle daemon does not use
 * (the pull stack, the HTTP server) are built as shared objects in
 * <prefix>/lib/crid/, beside the <prefix>/bin/ of the crid binary (as
 * crid-conmon is found beside it).  Each exports one function table whose
 * first member is a struct plugin_header; the module owning the seam
 * declares the table and calls plugin_load() once.  A plugin is never
 * unloaded.  Builds that link the plugin's objects into the program (unit
 * tests, fuzzers) reach the table directly and load nothing. */
#ifndef CRID_COMMON_PLUGIN_H
#define CRID_COMMON_PLUGIN_H

#include <stddef.h>

#include "common/error.h"

struct plugin_header
{
  unsigned abi;      /* the seam's PLUGIN_ABI the plugin was built with */
  size_t table_size; /* sizeof its table */
};

/* The directory crid's plugins are looked for in: lib/crid beside the
 * bin/ directory of the running binary. */
char *plugin_directory(void);

/* Loads file (e.g. "crid-pull.so") from plugin_directory() and returns
 * its exported table `symbol`, checked against abi and table_size. */
const struct plugin_header *plugin_load(const char *file, const char *symbol, unsigned abi,
                                        size_t table_size, struct error *err);

#endif
