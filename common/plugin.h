/* common/plugin: crid's own shared objects, loaded when first needed.
 *
 * Parts of crid that bring large libraries an idle daemon does not use
 * (the pull stack, the HTTP server) are built as shared objects in
 * <prefix>/lib/crid/, beside the <prefix>/bin/ of the crid binary (as
 * crid-conmon is found beside it).  Each exports one function table whose
 * first member is a struct plugin_header; the module owning the seam
 * declares the table and a struct plugin_slot, and calls plugin_get().
 * A plugin is never unloaded.  Builds that link the plugin's objects into
 * the program (unit tests, fuzzers) reach the table directly and load
 * nothing. */
#ifndef CRID_COMMON_PLUGIN_H
#define CRID_COMMON_PLUGIN_H

#include <pthread.h>
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

/* One plugin of a seam: what to load, and its table once loaded. */
struct plugin_slot
{
  const char *file;
  const char *symbol;
  unsigned abi;
  size_t table_size;
  pthread_mutex_t lock;
  const struct plugin_header *table;
};
#define PLUGIN_SLOT(file, symbol, abi, table_size)                                                 \
  {                                                                                                \
    file, symbol, abi, table_size, PTHREAD_MUTEX_INITIALIZER, NULL                                 \
  }

/* The slot's table: the file (e.g. "crid-pull.so") loaded from
 * plugin_directory() and its table `symbol` checked against abi and
 * table_size, or `linked` when the plugin's objects are linked into
 * the program (the address of its table, declared weak by the seam, so
 * NULL in the crid binary), else loaded by the first call.  NULL (err
 * set) when it cannot be loaded.  Thread-safe. */
const struct plugin_header *plugin_get(struct plugin_slot *slot, const void *linked,
                                       struct error *err);

#endif
