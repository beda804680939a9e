/* common/plugin: dlopen() of crid's shared objects, one table each. */
#include "common/plugin.h"

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#include <dlfcn.h>
#include <errno.h>
#include <string.h>

char *
plugin_directory(void)
{
  struct error ignored = ERROR_INIT;
  cleanup_free char *bin = exe_directory(&ignored);
  const char *slash;

  if (bin == NULL)
    {
      error_clear(&ignored);
      return xstrdup("/usr/local/lib/crid");
    }
  /* <prefix>/bin -> <prefix>/lib/crid; build/bin -> build/lib/crid */
  slash = strrchr(bin, '/');
  if (slash == NULL || slash == bin)
    return xstrdup("/lib/crid");
  return xasprintf("%.*s/lib/crid", (int)(slash - bin), bin);
}

static const struct plugin_header *
plugin_load(const char *file, const char *symbol, unsigned abi, size_t table_size,
            struct error *err)
{
  cleanup_free char *dir = plugin_directory();
  cleanup_free char *path = xasprintf("%s/%s", dir, file);
  const struct plugin_header *table;
  void *handle;

  /* RTLD_NOW: a plugin that does not fit this crid fails here, once,
   * rather than at some later call. */
  handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (handle == NULL)
    {
      /* dlerror() says "PATH: why"; the path is said once. */
      const char *why = dlerror();
      size_t len = strlen(path);

      if (why && strncmp(why, path, len) == 0 && strncmp(why + len, ": ", 2) == 0)
        why += len + 2;
      /* Not ENOENT: what is missing is a part of crid, not what the
       * caller asked for. */
      error_set(err, ELIBACC,
                "load %s (crid's plugins are installed in lib/crid beside its bin/): %s", path,
                why ? why : "dlopen failed");
      return NULL;
    }
  table = dlsym(handle, symbol);
  if (table == NULL)
    {
      error_set(err, ELIBBAD, "load %s: no %s in it", path, symbol);
      dlclose(handle);
      return NULL;
    }
  if (table->abi != abi || table->table_size != table_size)
    {
      error_set(err, ENOEXEC,
                "load %s: built for another crid (interface %u, %zu bytes; want %u, %zu)", path,
                table->abi, table->table_size, abi, table_size);
      dlclose(handle);
      return NULL;
    }
  log_info("loaded %s", path);
  return table;
}

const struct plugin_header *
plugin_get(struct plugin_slot *slot, const void *linked, struct error *err)
{
  const struct plugin_header *table;

  pthread_mutex_lock(&slot->lock);
  if (slot->table == NULL)
    slot->table
        = linked ? linked : plugin_load(slot->file, slot->symbol, slot->abi, slot->table_size, err);
  table = slot->table;
  pthread_mutex_unlock(&slot->lock);
  return table;
}
