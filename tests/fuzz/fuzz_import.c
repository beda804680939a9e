/* libFuzzer harness for image/import (`crid image import`): the input is
 * the archive, a docker-archive tar or an OCI layout tar (libarchive also
 * sniffs compressed tars, so its decoders are reached too).
 *
 *   make fuzz          (builds build/fuzz/fuzz_import and runs it briefly)
 *
 * Run it as root, like fuzz_layer (layers unpack with owners and modes).
 * Tar headers carry checksums: start from a corpus of real archives (a
 * `skopeo copy ... oci-archive:` and a `docker save` of a tiny image).
 *
 * One store lives in a sandbox directory for the whole run.  Each input
 * is written to sandbox/archive.tar and imported; whatever it imported is
 * removed again and the store's garbage collected.  Afterwards the store's
 * tmp/ must be empty (a failed import leaves no trace), the store must
 * hold no image, and the sandbox must hold exactly the store, the archive
 * and an untouched sentinel (nothing is written outside the store, however
 * the archive's names and links point). */
#include "common/cleanup.h"
#include "common/error.h"
#include "common/log.h"
#include "common/util.h"
#include "image/import.h"
#include "image/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char sandbox[] = "/tmp/crid-fuzz-import-XXXXXX";
static char *store_root;
static char *archive;
static char *sentinel;
static struct stat sentinel_st;
static struct image_store *store;

static void
check(bool ok, const char *what)
{
  if (!ok)
    {
      fprintf(stderr, "fuzz_import: %s\n", what);
      abort();
    }
}

/* Entries of dir other than "." and ".."; -1 when it cannot be read. */
static int
count_entries(const char *dir, const char *const *allowed)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;

  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL)
    {
      bool known = allowed == NULL;
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      for (size_t i = 0; allowed && allowed[i]; i++)
        known = known || strcmp(e->d_name, allowed[i]) == 0;
      if (!known)
        fprintf(stderr, "fuzz_import: unexpected %s/%s\n", dir, e->d_name);
      n += known ? 1 : 1000;
    }
  closedir(d);
  return n;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  struct error err = ERROR_INIT;
  int fd;

  /* One line per imported or collected layer would drown the fuzzer. */
  log_set_level(LOG_LEVEL_ERROR);
  check(mkdtemp(sandbox) != NULL, "mkdtemp");
  store_root = xasprintf("%s/store", sandbox);
  archive = xasprintf("%s/archive.tar", sandbox);
  sentinel = xasprintf("%s/sentinel", sandbox);
  fd = open(sentinel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  check(fd >= 0 && write(fd, "sentinel", 8) == 8 && close(fd) == 0, "sentinel");
  check(stat(sentinel, &sentinel_st) == 0, "stat sentinel");
  store = image_store_open(store_root, 0, &err);
  if (store == NULL)
    fprintf(stderr, "fuzz_import: open the store: %s\n", error_message(&err));
  check(store != NULL, "image_store_open");
  return 0;
}

static void
check_no_trace(void)
{
  static const char *const top[] = { "store", "archive.tar", "sentinel", NULL };
  cleanup_free char *tmp = xasprintf("%s/tmp", store_root);
  struct image_info **images;
  struct stat st;
  size_t n = 0;

  check(count_entries(sandbox, top) <= 3, "something was written beside the store");
  check(stat(sentinel, &st) == 0 && st.st_size == sentinel_st.st_size
            && st.st_mtim.tv_sec == sentinel_st.st_mtim.tv_sec
            && st.st_mtim.tv_nsec == sentinel_st.st_mtim.tv_nsec,
        "the sentinel beside the store changed");
  check(count_entries(tmp, NULL) <= 0, "the import left files in the store's tmp/");
  images = image_store_list(store, &n);
  check(n == 0, "an image is left after its removal");
  image_info_list_free(images, n);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct error err = ERROR_INIT;
  struct image_imported *imported = NULL;
  size_t n = 0;
  int fd;

  fd = open(archive, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  check(fd >= 0 && (size == 0 || write(fd, data, size) == (ssize_t)size) && close(fd) == 0,
        "write the archive");
  if (image_import(store, archive, &imported, &n, &err) == 0)
    {
      for (size_t i = 0; i < n; i++)
        {
          bool removed = false;
          struct error rm_err = ERROR_INIT;
          int rc = image_store_remove(store, imported[i].id, &removed, &rm_err);
          if (rc < 0)
            fprintf(stderr, "fuzz_import: remove %s: %s\n", imported[i].id, error_message(&rm_err));
          check(rc == 0, "remove an imported image");
          error_clear(&rm_err);
        }
      image_imported_free(imported, n);
    }
  else
    check(err.message != NULL, "a failed import without an error message");
  error_clear(&err);
  image_store_collect_garbage(store);
  check_no_trace();
  return 0;
}
