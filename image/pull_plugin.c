/* image/pull_plugin: loading crid-pull.so, and the daemon's calls into it. */
#include "image/pull_plugin.h"

#include "common/util.h"

#include <stdatomic.h>

/* Defined when the plugin's objects are linked into the program (unit
 * tests, fuzzers); the crid binary leaves it undefined and loads the
 * plugin instead. */
extern const struct pull_plugin crid_pull_plugin __attribute__((weak));

static struct plugin_slot slot = PLUGIN_SLOT(PULL_PLUGIN_FILE, PULL_PLUGIN_SYMBOL, PULL_PLUGIN_ABI,
                                             sizeof(struct pull_plugin));

/* The table once loaded: calls on an object the plugin made (an
 * unpacker) need no lock to find it. */
static _Atomic(const struct pull_plugin *) loaded;

const struct pull_plugin *
pull_plugin_get(struct error *err)
{
  const struct pull_plugin *table
      = (const struct pull_plugin *)plugin_get(&slot, &crid_pull_plugin, err);

  if (table)
    atomic_store_explicit(&loaded, table, memory_order_release);
  return table;
}

/* The table, for calls on what the plugin made: it is loaded. */
static const struct pull_plugin *
plugin_loaded(void)
{
  return atomic_load_explicit(&loaded, memory_order_acquire);
}

int
layer_unpack_fd(int fd, const char *dir, enum layer_compression compression, uint64_t max_size,
                char diff_id[72], struct error *err)
{
  const struct pull_plugin *plugin = pull_plugin_get(err);

  if (plugin == NULL)
    return error_wrap(err, "unpack layer");
  return plugin->layer_extract_fd(fd, dir, compression, max_size, diff_id, err);
}

struct layer_unpacker *
pull_plugin_unpacker_start(const char *dir, enum layer_compression compression, uint64_t max_size,
                           struct error *err)
{
  const struct pull_plugin *plugin = pull_plugin_get(err);

  if (plugin == NULL)
    {
      error_wrap(err, "unpack layer");
      return NULL;
    }
  return plugin->layer_unpacker_start(dir, compression, max_size, err);
}

bool
pull_plugin_unpacker_write(struct layer_unpacker *u, const void *data, size_t len)
{
  return plugin_loaded()->layer_unpacker_write(u, data, len);
}

int
pull_plugin_unpacker_finish(struct layer_unpacker *u, char diff_id[72], struct error *err)
{
  return plugin_loaded()->layer_unpacker_finish(u, diff_id, err);
}

void
pull_plugin_unpacker_abort(struct layer_unpacker *u)
{
  if (u)
    plugin_loaded()->layer_unpacker_abort(u);
}

int
pull_plugin_import_unpack(const char *archive, const char *work, struct archive_link **links,
                          size_t *n_links, struct error *err)
{
  const struct pull_plugin *plugin = pull_plugin_get(err);

  if (plugin == NULL)
    return -1;
  return plugin->import_archive_unpack(archive, work, links, n_links, err);
}
