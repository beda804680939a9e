/* Unit tests of image/store: images.json round trip, lookup by every name
 * form, tags moving between images, removal and garbage collection, the
 * in-use hook, layer dirs for overlay, usage totals, the store lock, and the
 * cleanup of leftovers when the store opens.  Layers are made by hand in
 * the store's work dirs (no tar involved); everything lives in a temp dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/cleanup.h"
#include "common/error.h"
#include "common/util.h"
#include "image/digest.h"
#include "common/trash.h"
#include "image/manifest.h"
#include "image/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REPO "registry.example:5000/team/app"

struct fixture
{
  char root[64];
  struct image_store *store;
};

/* One made-up image: n layers, each holding one file, and a config. */
struct fake_image
{
  char config_digest[72];
  char manifest_digest[72];
  char diff_ids[3][72];
  char chain_ids[3][72];
  char blob_digests[3][72];
  struct image_layer layers[3];
  size_t n_layers;
  size_t config_len;
};

static int
setup(void **state)
{
  struct fixture *f = xcalloc(1, sizeof *f);
  struct error err = ERROR_INIT;

  strcpy(f->root, "/tmp/crid-store-test-XXXXXX");
  assert_non_null(mkdtemp(f->root));
  f->store = image_store_open(f->root, 0, &err);
  assert_non_null(f->store);
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  struct fixture *f = *state;
  struct error err = ERROR_INIT;

  image_store_free(f->store);
  assert_int_equal(remove_tree(f->root, &err), 0);
  free(f);
  return 0;
}

static void
reopen(struct fixture *f)
{
  struct error err = ERROR_INIT;

  image_store_free(f->store);
  f->store = image_store_open(f->root, 0, &err);
  if (f->store == NULL)
    fail_msg("reopen: %s", error_message(&err));
}

static void
write_text(const char *path, const char *text)
{
  FILE *file = fopen(path, "w");
  assert_non_null(file);
  fputs(text, file);
  fclose(file);
}

static void
put_blob(struct image_store *store, const char *text, char digest[72])
{
  struct error err = ERROR_INIT;

  digest_buffer(text, strlen(text), digest);
  if (image_store_put_blob(store, digest, text, strlen(text), &err) < 0)
    fail_msg("put blob: %s", error_message(&err));
}

/* Layer i of `seed` holds the file "<seed>-<i>"; its "diff id" is the
 * digest of that name (the store does not check it against any tar). */
static void
make_layers(struct fixture *f, struct fake_image *img, const char *seed, size_t n,
            const char *shared_base)
{
  struct error err = ERROR_INIT;
  char *diff_ptrs[3];

  img->n_layers = n;
  for (size_t i = 0; i < n; i++)
    {
      cleanup_free char *name
          = i == 0 && shared_base ? xstrdup(shared_base) : xasprintf("%s-%zu", seed, i);
      cleanup_free char *work = NULL, *diff = NULL, *file = NULL;
      cleanup_free char *blob = xasprintf("blob of %s", name);

      digest_buffer(name, strlen(name), img->diff_ids[i]);
      diff_ptrs[i] = img->diff_ids[i];
      layer_chain_id(diff_ptrs, i + 1, img->chain_ids[i]);
      put_blob(f->store, blob, img->blob_digests[i]);
      if (!image_store_has_layer(f->store, img->chain_ids[i]))
        {
          assert_int_equal(image_store_layer_create(f->store, &work, &diff, &err), 0);
          file = xasprintf("%s/%s", diff, name);
          write_text(file, name);
          if (image_store_layer_commit(f->store, work, img->chain_ids[i], img->diff_ids[i], &err)
              < 0)
            fail_msg("commit: %s", error_message(&err));
        }
      img->layers[i] = (struct image_layer){
        .chain_id = img->chain_ids[i],
        .diff_id = img->diff_ids[i],
        .digest = img->blob_digests[i],
        .size = (int64_t)strlen(blob),
        .media_type = (char *)"application/vnd.oci.image.layer.v1.tar",
      };
    }
}

static void
make_image(struct fixture *f, struct fake_image *img, const char *seed, size_t n, const char *user,
           const char *shared_base)
{
  cleanup_free char *config = NULL;
  cleanup_free char *manifest = NULL;

  memset(img, 0, sizeof *img);
  make_layers(f, img, seed, n, shared_base);
  config = xasprintf("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"User\":\"%s\"},"
                     "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[",
                     user);
  for (size_t i = 0; i < n; i++)
    {
      char *longer = xasprintf("%s%s\"%s\"", config, i ? "," : "", img->diff_ids[i]);
      free(config);
      config = longer;
    }
  {
    char *done = xasprintf("%s]}}", config);
    free(config);
    config = done;
  }
  put_blob(f->store, config, img->config_digest);
  img->config_len = strlen(config);
  manifest = xasprintf("{\"manifest of\":\"%s\"}", seed);
  put_blob(f->store, manifest, img->manifest_digest);
}

static void
add_image(struct fixture *f, struct fake_image *img, const char *tag, const char *repo_digest,
          const char *user)
{
  struct error err = ERROR_INIT;
  struct image_add add = {
    .id = img->config_digest,
    .manifest_digest = img->manifest_digest,
    .tag = tag,
    .repo_digest = repo_digest,
    .user = user,
    .layers = img->layers,
    .n_layers = img->n_layers,
    .config_size = (int64_t)img->config_len,
  };

  if (image_store_add(f->store, &add, &err) < 0)
    fail_msg("add: %s", error_message(&err));
}

static struct image_info *
lookup(struct fixture *f, const char *name)
{
  struct image_info *info = NULL;
  struct error err = ERROR_INIT;

  if (image_store_lookup(f->store, name, &info, &err) < 0)
    fail_msg("lookup %s: %s", name, error_message(&err));
  return info;
}

static int
lookup_code(struct fixture *f, const char *name)
{
  struct image_info *info = NULL;
  struct error err = ERROR_INIT;
  int code;

  if (image_store_lookup(f->store, name, &info, &err) == 0)
    {
      image_info_free(info);
      return 0;
    }
  code = err.code;
  error_clear(&err);
  return code;
}

static bool
path_exists(const char *path)
{
  struct stat st;
  return lstat(path, &st) == 0;
}

static char *
blob_file(struct fixture *f, const char *digest)
{
  return xasprintf("%s/images/blobs/sha256/%s", f->root, digest + 7);
}

static char *
layer_dir(struct fixture *f, const char *chain_id)
{
  return xasprintf("%s/images/layers/%s", f->root, chain_id + 7);
}

/* ---- Tests -------------------------------------------------------------- */

static void
test_empty_store(void **state)
{
  struct fixture *f = *state;
  struct image_store_usage usage;
  size_t n;
  struct image_info **list = image_store_list(f->store, &n);
  cleanup_free char *index = xasprintf("%s/images/tmp", f->root);

  assert_int_equal(n, 0);
  image_info_list_free(list, n);
  assert_true(path_exists(index));
  image_store_usage(f->store, &usage);
  assert_int_equal(usage.used_bytes, 0);
  assert_true(usage.timestamp_ns > 0);
  assert_int_equal(lookup_code(f, "busybox"), ENOENT);
}

static void
test_round_trip(void **state)
{
  struct fixture *f = *state;
  struct fake_image img;
  cleanup_free char *tag = xasprintf("%s:1.0", REPO);
  cleanup_free char *repo_digest = NULL;
  struct image_info *before, *after;

  make_image(f, &img, "rt", 2, "1000:1000", NULL);
  repo_digest = xasprintf("%s@%s", REPO, img.manifest_digest);
  add_image(f, &img, tag, repo_digest, "1000:1000");
  before = lookup(f, img.config_digest);
  reopen(f);
  after = lookup(f, img.config_digest);

  assert_string_equal(after->id, img.config_digest);
  assert_string_equal(after->manifest_digest, img.manifest_digest);
  assert_string_equal(after->user, "1000:1000");
  assert_string_equal(after->repo_tags[0], tag);
  assert_null(after->repo_tags[1]);
  assert_string_equal(after->repo_digests[0], repo_digest);
  assert_int_equal(after->size, before->size);
  assert_true(after->size > 0);
  assert_int_equal(after->created_ns, before->created_ns);
  assert_int_equal(after->n_layers, 2);
  for (size_t i = 0; i < 2; i++)
    {
      assert_string_equal(after->layers[i].chain_id, img.chain_ids[i]);
      assert_string_equal(after->layers[i].diff_id, img.diff_ids[i]);
      assert_string_equal(after->layers[i].digest, img.blob_digests[i]);
      assert_int_equal(after->layers[i].size, img.layers[i].size);
    }
  image_info_free(before);
  image_info_free(after);
}

static void
test_lookup_forms(void **state)
{
  struct fixture *f = *state;
  struct fake_image img, other;
  cleanup_free char *digest_ref = NULL;
  cleanup_free char *prefix = NULL;
  cleanup_free char *manifest_ref = NULL;
  const char *names[8];
  char index_digest[72];
  size_t n = 0;

  make_image(f, &img, "forms", 1, "", NULL);
  /* Recorded as pulled through an index: the repo digest names the index,
   * the image manifest is still found under the same name. */
  digest_buffer("an index", 8, index_digest);
  digest_ref = xasprintf("docker.io/library/busybox@%s", index_digest);
  add_image(f, &img, "docker.io/library/busybox:latest", digest_ref, NULL);
  /* A second image, so a short prefix has something to be told apart from. */
  make_image(f, &other, "forms-other", 1, "", NULL);
  add_image(f, &other, "docker.io/library/other:1", NULL, NULL);

  prefix = xstrndup(img.config_digest + 7, 12);
  manifest_ref = xasprintf("busybox@%s", img.manifest_digest);
  names[n++] = img.config_digest;
  names[n++] = img.config_digest + 7; /* bare hex */
  names[n++] = prefix;
  names[n++] = "busybox";
  names[n++] = "library/busybox:latest";
  names[n++] = "docker.io/library/busybox:latest";
  names[n++] = digest_ref;
  names[n++] = manifest_ref; /* its manifest, under a name it has */
  for (size_t i = 0; i < n; i++)
    {
      struct image_info *info = lookup(f, names[i]);
      assert_string_equal(info->id, img.config_digest);
      image_info_free(info);
    }
  assert_int_equal(lookup_code(f, "busybox:other-tag"), ENOENT);
  assert_int_equal(lookup_code(f, "sha256:"
                                  "0123456789abcdef0123456789abcdef"
                                  "0123456789abcdef0123456789abcdef"),
                   ENOENT);
  assert_int_equal(lookup_code(f, "UPPER/Case"), EINVAL);
  assert_int_equal(lookup_code(f, ""), EINVAL);
  /* The manifest digest under a name the image does not have. */
  {
    cleanup_free char *foreign = xasprintf("elsewhere/x@%s", img.manifest_digest);
    assert_int_equal(lookup_code(f, foreign), ENOENT);
  }
}

static void
test_tag_moves(void **state)
{
  struct fixture *f = *state;
  struct fake_image a, b;
  cleanup_free char *tag = xasprintf("%s:latest", REPO);
  cleanup_free char *digest_a = NULL;
  struct image_info *info;

  make_image(f, &a, "move-a", 1, "", NULL);
  digest_a = xasprintf("%s@%s", REPO, a.manifest_digest);
  add_image(f, &a, tag, digest_a, NULL);
  make_image(f, &b, "move-b", 1, "", NULL);
  add_image(f, &b, tag, NULL, NULL);

  info = lookup(f, tag);
  assert_string_equal(info->id, b.config_digest);
  image_info_free(info);
  /* a keeps its digest and id, loses the tag. */
  info = lookup(f, digest_a);
  assert_string_equal(info->id, a.config_digest);
  assert_null(info->repo_tags[0]);
  image_info_free(info);

  reopen(f);
  info = lookup(f, tag);
  assert_string_equal(info->id, b.config_digest);
  image_info_free(info);

  /* Adding a tag that is already there does not duplicate it. */
  add_image(f, &b, tag, NULL, NULL);
  info = lookup(f, b.config_digest);
  assert_string_equal(info->repo_tags[0], tag);
  assert_null(info->repo_tags[1]);
  image_info_free(info);
}

static void
test_remove_and_collect(void **state)
{
  struct fixture *f = *state;
  struct fake_image a, b;
  cleanup_free char *base_a = NULL, *top_a = NULL, *top_b = NULL;
  cleanup_free char *config_a = NULL, *blob_top_a = NULL;
  struct image_store_usage full, after;
  bool removed;
  struct error err = ERROR_INIT;
  size_t n;

  /* a and b share their base layer. */
  make_image(f, &a, "rm-a", 2, "", "shared-base");
  add_image(f, &a, "docker.io/library/a:1", NULL, NULL);
  add_image(f, &a, "docker.io/library/a:2", NULL, NULL);
  make_image(f, &b, "rm-b", 2, "", "shared-base");
  add_image(f, &b, "docker.io/library/b:1", NULL, NULL);
  assert_string_equal(a.chain_ids[0], b.chain_ids[0]);
  image_store_usage(f->store, &full);

  base_a = layer_dir(f, a.chain_ids[0]);
  top_a = layer_dir(f, a.chain_ids[1]);
  top_b = layer_dir(f, b.chain_ids[1]);
  config_a = blob_file(f, a.config_digest);
  blob_top_a = blob_file(f, a.blob_digests[1]);

  /* By one tag: the image and every name of it go. */
  assert_int_equal(image_store_remove(f->store, "a:2", &removed, &err), 0);
  assert_true(removed);
  assert_int_equal(lookup_code(f, "a:1"), ENOENT);
  assert_int_equal(lookup_code(f, a.config_digest), ENOENT);
  assert_false(path_exists(top_a));
  assert_false(path_exists(config_a));
  assert_false(path_exists(blob_top_a));
  assert_true(path_exists(base_a)); /* b still uses it */
  assert_true(path_exists(top_b));
  image_store_usage(f->store, &after);
  assert_true(after.used_bytes < full.used_bytes);
  assert_true(after.inodes_used < full.inodes_used);

  /* Idempotent. */
  assert_int_equal(image_store_remove(f->store, "a:2", &removed, &err), 0);
  assert_false(removed);

  assert_int_equal(image_store_remove(f->store, b.config_digest, &removed, &err), 0);
  assert_true(removed);
  assert_false(path_exists(base_a));
  {
    struct image_info **list = image_store_list(f->store, &n);
    image_info_list_free(list, n);
  }
  assert_int_equal(n, 0);
  image_store_usage(f->store, &after);
  assert_int_equal(after.used_bytes, 0);
  assert_int_equal(after.inodes_used, 0);
}

static bool
always_in_use(void *arg, const char *id)
{
  *(int *)arg += 1;
  return true;
}

static void
test_in_use(void **state)
{
  struct fixture *f = *state;
  struct fake_image img;
  struct error err = ERROR_INIT;
  bool removed;
  int calls = 0;

  make_image(f, &img, "busy", 1, "", NULL);
  add_image(f, &img, "docker.io/library/busy:1", NULL, NULL);
  image_store_set_in_use_check(f->store, always_in_use, &calls);
  assert_int_equal(image_store_remove(f->store, "busy:1", &removed, &err), -1);
  assert_int_equal(err.code, EBUSY);
  assert_int_equal(calls, 1);
  error_clear(&err);
  assert_int_equal(lookup_code(f, "busy:1"), 0);
}

static void
test_layer_dirs_and_config(void **state)
{
  struct fixture *f = *state;
  struct fake_image img;
  struct error err = ERROR_INIT;
  cleanup_strv char **dirs = NULL;
  cleanup_free char *id = NULL;
  struct image_config *config = NULL;

  make_image(f, &img, "dirs", 3, "app", NULL);
  add_image(f, &img, "docker.io/library/dirs:1", NULL, "app");
  assert_int_equal(image_store_layer_dirs(f->store, "dirs:1", &id, &dirs, &err), 0);
  assert_string_equal(id, img.config_digest);
  assert_int_equal(strv_length(dirs), 3);
  for (size_t i = 0; i < 3; i++)
    {
      cleanup_free char *want
          = xasprintf("%s/images/layers/%s/diff", f->root, img.chain_ids[2 - i] + 7);
      cleanup_free char *file = xasprintf("%s/dirs-%zu", dirs[i], 2 - i);
      assert_string_equal(dirs[i], want);
      assert_true(path_exists(file));
    }
  assert_int_equal(image_store_config(f->store, "dirs:1", &config, &err), 0);
  assert_string_equal(config->user, "app");
  assert_int_equal(config->n_diff_ids, 3);
  image_config_free(config);
}

static void
test_leftovers_cleaned_on_open(void **state)
{
  struct fixture *f = *state;
  struct fake_image kept, dangling;
  cleanup_free char *tmp_file = xasprintf("%s/images/tmp/blob-junk", f->root);
  cleanup_free char *tmp_dir = xasprintf("%s/images/tmp/layer-junk", f->root);
  cleanup_free char *tmp_inner = xasprintf("%s/images/tmp/layer-junk/diff", f->root);
  cleanup_free char *index_tmp = xasprintf("%s/images/images.json.tmp.4242", f->root);
  cleanup_free char *no_meta = xasprintf("%s/images/layers/%064d", f->root, 7);
  cleanup_free char *stray = xasprintf("%s/images/blobs/sha256/not-a-digest", f->root);
  cleanup_free char *dangling_layer = NULL, *dangling_blob = NULL, *kept_layer = NULL;

  make_image(f, &kept, "kept", 1, "", NULL);
  add_image(f, &kept, "docker.io/library/kept:1", NULL, NULL);
  /* A pull that died after its layer and blobs were stored, before the
   * image was recorded. */
  make_image(f, &dangling, "dangling", 1, "", NULL);
  dangling_layer = layer_dir(f, dangling.chain_ids[0]);
  dangling_blob = blob_file(f, dangling.config_digest);
  kept_layer = layer_dir(f, kept.chain_ids[0]);
  image_store_free(f->store);
  f->store = NULL;

  write_text(tmp_file, "partial");
  assert_int_equal(mkdir(tmp_dir, 0700), 0);
  assert_int_equal(mkdir(tmp_inner, 0700), 0);
  write_text(index_tmp, "{");
  assert_int_equal(mkdir(no_meta, 0700), 0);
  write_text(stray, "?");

  reopen(f);
  assert_false(path_exists(tmp_file));
  assert_false(path_exists(tmp_dir));
  assert_false(path_exists(index_tmp));
  assert_false(path_exists(no_meta));
  assert_false(path_exists(stray));
  assert_false(path_exists(dangling_layer));
  assert_false(path_exists(dangling_blob));
  assert_true(path_exists(kept_layer));
  assert_int_equal(lookup_code(f, "kept:1"), 0);
}

static void
test_broken_image_forgotten(void **state)
{
  struct fixture *f = *state;
  struct fake_image img;
  struct error err = ERROR_INIT;
  cleanup_free char *dir = NULL;

  make_image(f, &img, "broken", 2, "", NULL);
  add_image(f, &img, "docker.io/library/broken:1", NULL, NULL);
  dir = layer_dir(f, img.chain_ids[1]);
  image_store_free(f->store);
  f->store = NULL;
  assert_int_equal(remove_tree(dir, &err), 0);
  reopen(f);
  assert_int_equal(lookup_code(f, "broken:1"), ENOENT);
  /* Its other layer went with it. */
  {
    cleanup_free char *base = layer_dir(f, img.chain_ids[0]);
    assert_false(path_exists(base));
  }
}

static void
test_lock_and_read_only(void **state)
{
  struct fixture *f = *state;
  struct fake_image img;
  struct error err = ERROR_INIT;
  struct image_store *second, *reader;
  struct image_info **list;
  size_t n;

  make_image(f, &img, "ro", 1, "", NULL);
  add_image(f, &img, "docker.io/library/ro:1", NULL, NULL);
  second = image_store_open(f->root, 0, &err);
  assert_null(second);
  assert_int_equal(err.code, EBUSY);
  error_clear(&err);
  reader = image_store_open(f->root, IMAGE_STORE_READ_ONLY, &err);
  assert_non_null(reader);
  list = image_store_list(reader, &n);
  assert_int_equal(n, 1);
  assert_string_equal(list[0]->id, img.config_digest);
  image_info_list_free(list, n);
  image_store_free(reader);
}

static void
test_holds_protect_from_collection(void **state)
{
  struct fixture *f = *state;
  struct error err = ERROR_INIT;
  char digest[72];
  cleanup_free char *path = NULL;

  put_blob(f->store, "held blob", digest);
  path = blob_file(f, digest);
  image_store_hold(f->store, digest);
  image_store_collect_garbage(f->store);
  assert_true(path_exists(path));
  image_store_release(f->store, digest);
  image_store_collect_garbage(f->store);
  assert_false(path_exists(path));
  assert_false(image_store_has_blob(f->store, digest));
  error_clear(&err);
}

static void
test_blob_digest_checked(void **state)
{
  struct fixture *f = *state;
  struct error err = ERROR_INIT;
  struct blob_writer *w = image_store_blob_create(f->store, &err);
  char digest[72];
  size_t n;
  cleanup_dir DIR *dir = NULL;
  cleanup_free char *tmp = xasprintf("%s/images/tmp", f->root);
  struct dirent *entry;

  digest_buffer("right", 5, digest);
  assert_non_null(w);
  assert_int_equal(blob_writer_write(w, "wrong", 5, &err), 0);
  assert_int_equal(blob_writer_commit(w, digest, 5, &err), -1);
  assert_int_equal(err.code, EIO);
  error_clear(&err);
  assert_false(image_store_has_blob(f->store, digest));
  /* Nothing left in tmp/. */
  dir = opendir(tmp);
  n = 0;
  while ((entry = readdir(dir)) != NULL)
    if (entry->d_name[0] != '.')
      n++;
  assert_int_equal(n, 0);
}

/* A writer whose caller verifies the digest (a download) checks the size
 * and publishes under the name it is given. */
static void
test_verified_blob_size_checked(void **state)
{
  struct fixture *f = *state;
  struct error err = ERROR_INIT;
  struct blob_writer *w = image_store_blob_create_verified(f->store, &err);
  char digest[72];

  digest_buffer("right", 5, digest);
  assert_non_null(w);
  assert_int_equal(blob_writer_write(w, "right", 5, &err), 0);
  assert_int_equal(blob_writer_commit(w, digest, 6, &err), -1);
  assert_int_equal(err.code, EIO);
  error_clear(&err);
  assert_false(image_store_has_blob(f->store, digest));

  w = image_store_blob_create_verified(f->store, &err);
  assert_non_null(w);
  assert_int_equal(blob_writer_write(w, "right", 5, &err), 0);
  assert_int_equal(blob_writer_commit(w, digest, 5, &err), 0);
  assert_true(image_store_has_blob(f->store, digest));
}

static void
test_index_version_checked(void **state)
{
  struct fixture *f = *state;
  struct error err = ERROR_INIT;
  cleanup_free char *index = xasprintf("%s/images/images.json", f->root);

  image_store_free(f->store);
  f->store = NULL;
  write_text(index, "{\"version\":99,\"images\":[]}");
  f->store = image_store_open(f->root, 0, &err);
  assert_null(f->store);
  assert_non_null(strstr(error_message(&err), "newer crid"));
  error_clear(&err);
  unlink(index);
  reopen(f);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_empty_store, setup, teardown),
    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
    cmocka_unit_test_setup_teardown(test_lookup_forms, setup, teardown),
    cmocka_unit_test_setup_teardown(test_tag_moves, setup, teardown),
    cmocka_unit_test_setup_teardown(test_remove_and_collect, setup, teardown),
    cmocka_unit_test_setup_teardown(test_in_use, setup, teardown),
    cmocka_unit_test_setup_teardown(test_layer_dirs_and_config, setup, teardown),
    cmocka_unit_test_setup_teardown(test_leftovers_cleaned_on_open, setup, teardown),
    cmocka_unit_test_setup_teardown(test_broken_image_forgotten, setup, teardown),
    cmocka_unit_test_setup_teardown(test_lock_and_read_only, setup, teardown),
    cmocka_unit_test_setup_teardown(test_holds_protect_from_collection, setup, teardown),
    cmocka_unit_test_setup_teardown(test_blob_digest_checked, setup, teardown),
    cmocka_unit_test_setup_teardown(test_verified_blob_size_checked, setup, teardown),
    cmocka_unit_test_setup_teardown(test_index_version_checked, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
