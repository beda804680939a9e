/* libFuzzer harness for image/layer.
 *
 *   clang -g -fsanitize=fuzzer,address -D_GNU_SOURCE -Ulinux -I. tests/fuzz/fuzz_layer.c \
 *         image/layer.c image/digest.c common/*.c -larchive -lcrypto -lyajl -lz -lzstd \
 *         -o fuzz_layer && ./fuzz_layer -max_total_time=60 corpus/
 *
 * Run it as root (chown, mknod and trusted.* xattrs are part of what is
 * exercised).  Tar headers carry checksums, so start from a corpus of real
 * tars (a few made with `tar --format=pax` or Python's tarfile holding
 * symlinks, hardlinks, devices, whiteouts and xattrs).
 *
 * The input is the layer stream, declared uncompressed: gzip and zstd
 * magic at its start are sniffed, so the decoders are fuzzed too.  Inputs
 * of odd length are read from a file, the others written into an
 * unpacker in pieces of 1 to 13 bytes, as a download writes them.  It is
 * unpacked into a fresh directory nested in a sandbox whose every level
 * holds a sentinel; afterwards remove_tree must remove the layer, and
 * every level must hold exactly what it held before, with the sentinels
 * untouched.  A plain stream that unpacks must have the sha256 of the
 * input as its diff id. */
#include "common/cleanup.h"
#include "common/util.h"
#include "image/digest.h"
#include "common/trash.h"
#include "image/layer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SIZE (16 * 1024 * 1024)
#define LEVELS 3

static char sandbox[] = "/tmp/crid-fuzz-layer-XXXXXX";
/* sandbox, sandbox/a, sandbox/a/b; the layer is sandbox/a/b/layer */
static char *levels[LEVELS];
static char *layer;
static struct stat sentinels[LEVELS];

static void
check(bool ok, const char *what)
{
  if (!ok)
    {
      fprintf(stderr, "fuzz_layer: %s\n", what);
      abort();
    }
}

static char *
sentinel_path(int level)
{
  return xasprintf("%s/sentinel", levels[level]);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  check(mkdtemp(sandbox) != NULL, "mkdtemp");
  levels[0] = sandbox;
  levels[1] = xasprintf("%s/a", sandbox);
  levels[2] = xasprintf("%s/a/b", sandbox);
  layer = xasprintf("%s/layer", levels[2]);
  for (int i = 0; i < LEVELS; i++)
    {
      cleanup_free char *path = sentinel_path(i);
      int fd;

      if (i > 0)
        check(mkdir(levels[i], 0755) == 0, "mkdir level");
      fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      check(fd >= 0 && write(fd, "precious\n", 9) == 9, "write sentinel");
      close(fd);
      check(lstat(path, &sentinels[i]) == 0, "stat sentinel");
    }
  /* the sandbox goes when the fuzzer exits normally */
  return 0;
}

static void
check_level(int level)
{
  cleanup_dir DIR *dir = opendir(levels[level]);
  cleanup_free char *path = sentinel_path(level);
  const char *child = level + 1 < LEVELS ? (level == 0 ? "a" : "b") : NULL;
  struct dirent *de;
  struct stat st;
  char content[16] = "";
  int fd, n = 0;

  check(dir != NULL, "open level");
  while ((de = readdir(dir)) != NULL)
    {
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
        continue;
      check(strcmp(de->d_name, "sentinel") == 0 || (child && strcmp(de->d_name, child) == 0),
            "something appeared outside the layer");
      n++;
    }
  check(n == (child ? 2 : 1), "something vanished outside the layer");
  check(lstat(path, &st) == 0 && S_ISREG(st.st_mode), "sentinel is gone");
  check(st.st_ino == sentinels[level].st_ino && st.st_nlink == 1 && st.st_size == 9
            && st.st_mode == sentinels[level].st_mode && st.st_uid == sentinels[level].st_uid
            && st.st_ctim.tv_sec == sentinels[level].st_ctim.tv_sec
            && st.st_ctim.tv_nsec == sentinels[level].st_ctim.tv_nsec,
        "sentinel changed");
  fd = open(path, O_RDONLY | O_CLOEXEC);
  check(fd >= 0 && read(fd, content, sizeof content) == 9, "read sentinel");
  close(fd);
  check(memcmp(content, "precious\n", 9) == 0, "sentinel content changed");
}

static bool
is_compressed(const uint8_t *data, size_t size)
{
  return (size >= 2 && data[0] == 0x1f && data[1] == 0x8b)
         || (size >= 4 && memcmp(data, "\x28\xb5\x2f\xfd", 4) == 0);
}

static int
push_in_pieces(const uint8_t *data, size_t size, char diff_id[72], struct error *err)
{
  struct layer_unpacker *u = layer_unpacker_start(layer, LAYER_COMPRESSION_NONE, MAX_SIZE, err);
  size_t done = 0;

  if (u == NULL)
    return -1;
  for (size_t i = 0; done < size; i++)
    {
      size_t n = 1 + (i * 7 + size) % 13;
      if (n > size - done)
        n = size - done;
      if (!layer_unpacker_write(u, data + done, n))
        break;
      done += n;
    }
  return layer_unpacker_finish(u, diff_id, err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct error err = ERROR_INIT;
  char diff_id[72], expected[72];
  int fd, r;

  check(mkdir(layer, 0755) == 0, "mkdir layer");
  if (size % 2)
    {
      fd = memfd_create("layer", MFD_CLOEXEC);
      check(fd >= 0, "memfd_create");
      check(write(fd, data, size) == (ssize_t)size, "write memfd");
      check(lseek(fd, 0, SEEK_SET) == 0, "lseek");
      r = layer_unpack_fd(fd, layer, LAYER_COMPRESSION_NONE, MAX_SIZE, diff_id, &err);
      close(fd);
    }
  else
    r = push_in_pieces(data, size, diff_id, &err);
  if (r < 0)
    {
      check(r == -1 && err.code != 0 && err.message != NULL, "error without code or message");
      error_clear(&err);
    }
  else if (!is_compressed(data, size))
    {
      digest_buffer(data, size, expected);
      check(strcmp(diff_id, expected) == 0, "diff id is not the sha256 of the stream");
    }

  if (remove_tree(layer, &err) < 0)
    {
      fprintf(stderr, "fuzz_layer: remove_tree: %s\n", error_message(&err));
      abort();
    }
  for (int i = 0; i < LEVELS; i++)
    check_level(i);
  return 0;
}

__attribute__((destructor)) static void
cleanup_sandbox(void)
{
  struct error err = ERROR_INIT;

  if (levels[0] && remove_tree(sandbox, &err) < 0)
    error_clear(&err);
}
