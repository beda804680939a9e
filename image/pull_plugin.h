/* image/pull_plugin: the seam between the daemon and crid-pull.so, the
 * pull stack: the registry transport (libcurl and its TLS, DNS, HTTP/2
 * libraries), layer extraction (libarchive, ISA-L or zlib, libzstd) and
 * the reading of image archives.  An idle daemon maps none of it: the
 * plugin is loaded by the first pull or import and stays.
 *
 * Owns the one function table crossing the seam, its loading, and the
 * daemon-side entry points that go through it.  The plugin's code calls
 * the daemon's own functions (errors, logging, store, digests) directly:
 * the crid binary exports what the plugin uses (the Makefile lists it). */
#ifndef CRID_IMAGE_PULL_PLUGIN_H
#define CRID_IMAGE_PULL_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/plugin.h"
#include "image/import_archive.h"
#include "image/layer.h"
#include "image/registry_transport.h"

#define PULL_PLUGIN_FILE "crid-pull.so"
#define PULL_PLUGIN_SYMBOL "crid_pull_plugin"
/* Raised whenever the table or a type crossing it changes. */
#define PULL_PLUGIN_ABI 2

struct pull_plugin
{
  struct plugin_header header;
  /* image/registry_transport.h */
  struct registry_transport *(*transport_new)(void);
  void (*transport_free)(struct registry_transport *transport);
  void (*transport_reload)(struct registry_transport *transport);
  int (*transport_request)(struct registry_transport *transport, const struct http_options *o,
                           struct transfer *t, bool *retryable, bool *unreachable,
                           struct error *err);
  /* image/layer.h */
  int (*layer_extract_fd)(int fd, const char *dir, enum layer_compression compression,
                          uint64_t max_size, char diff_id[72], struct error *err);
  struct layer_unpacker *(*layer_unpacker_start)(const char *dir,
                                                 enum layer_compression compression,
                                                 uint64_t max_size, struct error *err);
  bool (*layer_unpacker_write)(struct layer_unpacker *u, const void *data, size_t len);
  int (*layer_unpacker_finish)(struct layer_unpacker *u, char diff_id[72], struct error *err);
  void (*layer_unpacker_abort)(struct layer_unpacker *u);
  /* image/import_archive.h */
  int (*import_archive_unpack)(const char *archive, const char *work, struct archive_link **links,
                               size_t *n_links, struct error *err);
};

/* The table, loaded at the first call; NULL (err set) when the plugin
 * cannot be loaded.  Thread-safe. */
const struct pull_plugin *pull_plugin_get(struct error *err);

/* The layer_unpacker_*() functions of image/layer.h through the plugin
 * (start loads it). */
struct layer_unpacker *pull_plugin_unpacker_start(const char *dir,
                                                  enum layer_compression compression,
                                                  uint64_t max_size, struct error *err);
bool pull_plugin_unpacker_write(struct layer_unpacker *u, const void *data, size_t len);
int pull_plugin_unpacker_finish(struct layer_unpacker *u, char diff_id[72], struct error *err);
void pull_plugin_unpacker_abort(struct layer_unpacker *u);

/* import_archive_unpack() through the plugin. */
int pull_plugin_import_unpack(const char *archive, const char *work, struct archive_link **links,
                              size_t *n_links, struct error *err);

#endif
