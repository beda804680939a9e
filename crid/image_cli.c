/* `crid image import FILE` and `crid image list`: the image store from the
 * command line, without a daemon.
 *
 * import writes the store, so it takes the store's lock and refuses while
 * a crid (or another import) holds it: only one process ever writes a
 * store.  list only reads images.json, which is replaced atomically, so it
 * also works beside a running crid. */
#include "crid/daemon.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "image/import.h"
#include "image/store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int image_cli_main(struct daemon *daemon, int argc, char **argv);

static void
image_usage(FILE *out)
{
  fprintf(out, "usage: crid [OPTIONS] image COMMAND\n"
               "\n"
               "  import FILE   import an OCI image layout or docker archive tarball\n"
               "                (crid must not be running: the store is locked)\n"
               "  list          print the images of the store: id, size, tags\n");
}

static void
human_size(int64_t bytes, char *out, size_t len)
{
  static const char *const units[] = { "B", "kB", "MB", "GB", "TB" };
  double value = bytes;
  size_t unit = 0;

  while (value >= 1000 && unit + 1 < sizeof units / sizeof units[0])
    {
      value /= 1000;
      unit++;
    }
  if (unit == 0)
    snprintf(out, len, "%lldB", (long long)bytes);
  else
    snprintf(out, len, "%.1f%s", value, units[unit]);
}

static void
print_tags(char *const *tags)
{
  if (tags == NULL || tags[0] == NULL)
    {
      fputs("<none>", stdout);
      return;
    }
  for (size_t i = 0; tags[i]; i++)
    printf("%s%s", i ? "," : "", tags[i]);
}

static int
image_list(struct daemon *daemon)
{
  struct error err = ERROR_INIT;
  struct image_store *store = image_store_open(daemon->config.root, IMAGE_STORE_READ_ONLY, &err);
  struct image_info **images;
  size_t n;

  if (store == NULL)
    {
      fprintf(stderr, "crid: %s\n", error_message(&err));
      error_clear(&err);
      return 1;
    }
  images = image_store_list(store, &n);
  printf("%-71s  %8s  %s\n", "IMAGE ID", "SIZE", "TAGS");
  for (size_t i = 0; i < n; i++)
    {
      char size[32];
      human_size(images[i]->size, size, sizeof size);
      printf("%-71s  %8s  ", images[i]->id, size);
      print_tags(images[i]->repo_tags);
      putchar('\n');
    }
  image_info_list_free(images, n);
  image_store_free(store);
  return 0;
}

static int
image_import_file(struct daemon *daemon, const char *path)
{
  struct error err = ERROR_INIT;
  struct image_store *store = image_store_open(daemon->config.root, 0, &err);
  struct image_imported *imported = NULL;
  size_t n = 0;

  if (store == NULL)
    {
      fprintf(stderr, "crid: %s%s\n", error_message(&err),
              err.code == EBUSY ? "; stop crid to import, or pull the image through the CRI" : "");
      error_clear(&err);
      return 1;
    }
  if (image_import(store, path, &imported, &n, &err) < 0)
    {
      fprintf(stderr, "crid: %s\n", error_message(&err));
      error_clear(&err);
      image_store_free(store);
      return 1;
    }
  for (size_t i = 0; i < n; i++)
    {
      printf("imported %s ", imported[i].id);
      print_tags(imported[i].tags);
      putchar('\n');
    }
  image_imported_free(imported, n);
  image_store_free(store);
  return 0;
}

/* argv[0] is "image". */
int
image_cli_main(struct daemon *daemon, int argc, char **argv)
{
  log_set_level(log_level_parse(daemon->config.log_level) >= 0
                    ? (enum log_level)log_level_parse(daemon->config.log_level)
                    : LOG_LEVEL_INFO);
  if (argc == 2 && strcmp(argv[1], "list") == 0)
    return image_list(daemon);
  if (argc == 3 && strcmp(argv[1], "import") == 0)
    return image_import_file(daemon, argv[2]);
  image_usage(stderr);
  return 2;
}
