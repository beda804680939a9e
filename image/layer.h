/* image/layer: unpacking one layer tar stream into its own directory.
 *
 * The directory is directly usable as an overlay lowerdir: whiteouts
 * become 0/0 character devices, opaque directories get the
 * trusted.overlay.opaque=y xattr.  Nothing is ever written outside the
 * directory: names climbing out with `..`, paths through symlinks, and
 * hardlinks that lead out are refused; absolute names are taken relative to
 * the layer root and a later entry replaces an earlier symlink of the same
 * name (tar semantics), so both stay inside.  Ownership,

 * modes (setuid too), xattrs (file capabilities), hardlinks, devices and
 * fifos are kept.  The diff id (sha256 of the uncompressed tar) is computed
 * on the way. */
#ifndef CRID_IMAGE_LAYER_H
#define CRID_IMAGE_LAYER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "image/manifest.h"

#define LAYER_DEFAULT_MAX_SIZE (64ULL * 1024 * 1024 * 1024)

/* A layer unpacked as its bytes arrive: the writer's thread decompresses
 * and hashes them, a thread of the unpacker extracts.  The unpacker lives
 * in crid-pull.so: the daemon reaches it through image/pull_plugin. */
struct layer_unpacker;

/* Starts extracting into dir (exists, empty) what is written next, which
 * is compressed per compression (sniffed: a plain tar may be compressed
 * anyway).  More than max_size uncompressed bytes: EFBIG. */
struct layer_unpacker *layer_unpacker_start(const char *dir, enum layer_compression compression,
                                            uint64_t max_size, struct error *err);
/* The next bytes of the layer; blocks while the extractor is behind.
 * false: unpacking failed, stop writing (layer_unpacker_finish() says why). */
bool layer_unpacker_write(struct layer_unpacker *u, const void *data, size_t len);
/* The input is complete: waits for the extraction, frees u.  On error dir
 * may hold a partial tree: the caller removes it. */
int layer_unpacker_finish(struct layer_unpacker *u, char diff_id[72], struct error *err);
/* The input ended early (its download failed): stops, frees u. */
void layer_unpacker_abort(struct layer_unpacker *u);

/* Reads a layer from fd until EOF, decompressing it per compression, and
 * extracts it into dir (exists, empty).  More than max_size uncompressed
 * bytes: EFBIG.  On error dir may hold a partial tree: the caller removes
 * it. */
int layer_unpack_fd(int fd, const char *dir, enum layer_compression compression, uint64_t max_size,
                    char diff_id[72], struct error *err);
/* The implementation inside crid-pull.so, which layer_unpack_fd() loads
 * at its first call; call layer_unpack_fd(). */
int layer_extract_fd(int fd, const char *dir, enum layer_compression compression, uint64_t max_size,
                     char diff_id[72], struct error *err);

#endif
