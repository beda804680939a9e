/* image/pull_plugin_table: what crid-pull.so exports, its one table
 * (image/pull_plugin.h). */
#include "image/pull_plugin.h"

__attribute__((visibility("default"))) const struct pull_plugin crid_pull_plugin = {
  .header = { .abi = PULL_PLUGIN_ABI, .table_size = sizeof(struct pull_plugin) },
  .transport_new = registry_transport_new,
  .transport_free = registry_transport_free,
  .transport_reload = registry_transport_reload,
  .transport_request = registry_transport_request,
  .layer_extract_fd = layer_extract_fd,
  .layer_unpacker_start = layer_unpacker_start,
  .layer_unpacker_write = layer_unpacker_write,
  .layer_unpacker_finish = layer_unpacker_finish,
  .layer_unpacker_abort = layer_unpacker_abort,
  .import_archive_unpack = import_archive_unpack,
};
