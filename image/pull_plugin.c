/* image/pull_plugin: loading crid-pull.so, and the daemon's calls into it. */
#include "image/pull_plugin.h"

#include "common/util.h"

/* Defined when the plugin's objects are linked into the program (unit
 * tests, fuzzers); the crid binary leaves it undefined and loads the
 * plugin instead. */
extern const struct pull_plugin crid_pull_plugin __attribute__((weak));

static struct plugin_slot slot = PLUGIN_SLOT(PULL_PLUGIN_FILE, PULL_PLUGIN_SYMBOL, PULL_PLUGIN_ABI,
                                             sizeof(struct pull_plugin));

const struct pull_plugin *
pull_plugin_get(struct error *err)
{
  return (const struct pull_plugin *)plugin_get(&slot, &crid_pull_plugin, err);
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

int
pull_plugin_import_unpack(const char *archive, const char *work, struct archive_link **links,
                          size_t *n_links, struct error *err)
{
  const struct pull_plugin *plugin = pull_plugin_get(err);

  if (plugin == NULL)
    return -1;
  return plugin->import_archive_unpack(archive, work, links, n_links, err);
}
