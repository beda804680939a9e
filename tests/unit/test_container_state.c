/* Unit tests of the resources a container has in force: the merge of an
 * UpdateContainerResources request over what was in force, and their
 * round trip through state.json (pod/container.c, pod/container_state.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/atomic_file.h"
#include "common/cleanup.h"
#include "common/error.h"
#include "common/util.h"
#include "common/trash.h"
#include "pod/layout.h"
#include "pod/container.h"
#include "pod/container_resources.h"
#include "pod/pod_manager.h"

#include <stdlib.h>
#include <string.h>

typedef Runtime__V1__LinuxContainerResources Resources;
typedef Runtime__V1__LinuxContainerResources__UnifiedEntry UnifiedEntry;

static void
free_resources(Resources *r)
{
  if (r)
    runtime__v1__linux_container_resources__free_unpacked(r, NULL);
}

static const char *
unified_value(const Resources *r, const char *key)
{
  for (size_t i = 0; i < r->n_unified; i++)
    if (strcmp(r->unified[i]->key, key) == 0)
      return r->unified[i]->value;
  return NULL;
}

/* What was set at create: every kind of field. */
static void
created(Resources *r, UnifiedEntry *u, UnifiedEntry **u_list, Runtime__V1__HugepageLimit *h,
        Runtime__V1__HugepageLimit **h_list)
{
  runtime__v1__linux_container_resources__init(r);
  r->cpu_period = 100000;
  r->cpu_quota = 50000;
  r->cpu_shares = 512;
  r->memory_limit_in_bytes = 64 << 20;
  r->memory_swap_limit_in_bytes = 64 << 20;
  r->oom_score_adj = 500;
  r->cpuset_cpus = (char *)"0";
  r->cpuset_mems = (char *)"0";
  runtime__v1__linux_container_resources__unified_entry__init(&u[0]);
  u[0].key = (char *)"memory.high";
  u[0].value = (char *)"1000";
  runtime__v1__linux_container_resources__unified_entry__init(&u[1]);
  u[1].key = (char *)"pids.max";
  u[1].value = (char *)"10";
  u_list[0] = &u[0];
  u_list[1] = &u[1];
  r->unified = u_list;
  r->n_unified = 2;
  runtime__v1__hugepage_limit__init(h);
  h->page_size = (char *)"2MB";
  h->limit = 4 << 20;
  h_list[0] = h;
  r->hugepage_limits = h_list;
  r->n_hugepage_limits = 1;
}

static void
test_merge_replaces_what_the_update_sets(void **state)
{
  Resources current, update;
  UnifiedEntry u[2], update_u;
  UnifiedEntry *u_list[2], *update_u_list[1];
  Runtime__V1__HugepageLimit h, update_h;
  Runtime__V1__HugepageLimit *h_list[1], *update_h_list[1];
  Resources *merged;

  (void)state;
  created(&current, u, u_list, &h, h_list);
  runtime__v1__linux_container_resources__init(&update);
  update.cpu_shares = 256;
  update.memory_limit_in_bytes = 128 << 20;
  update.cpuset_cpus = (char *)"0-1";
  update.oom_score_adj = -100; /* an update cannot change it */
  runtime__v1__linux_container_resources__unified_entry__init(&update_u);
  update_u.key = (char *)"pids.max";
  update_u.value = (char *)"20";
  update_u_list[0] = &update_u;
  update.unified = update_u_list;
  update.n_unified = 1;
  runtime__v1__hugepage_limit__init(&update_h);
  update_h.page_size = (char *)"2MB";
  update_h.limit = 8 << 20; /* not passed to the runtime: not in force */
  update_h_list[0] = &update_h;
  update.hugepage_limits = update_h_list;
  update.n_hugepage_limits = 1;

  merged = container_resources_merge(&current, &update);
  assert_non_null(merged);
  assert_int_equal(merged->cpu_shares, 256);
  assert_int_equal(merged->memory_limit_in_bytes, 128 << 20);
  assert_string_equal(merged->cpuset_cpus, "0-1");
  /* Unset in the update: kept. */
  assert_int_equal(merged->cpu_period, 100000);
  assert_int_equal(merged->cpu_quota, 50000);
  assert_int_equal(merged->memory_swap_limit_in_bytes, 64 << 20);
  assert_string_equal(merged->cpuset_mems, "0");
  assert_int_equal(merged->oom_score_adj, 500);
  assert_int_equal(merged->n_unified, 2);
  assert_string_equal(unified_value(merged, "memory.high"), "1000");
  assert_string_equal(unified_value(merged, "pids.max"), "20");
  assert_int_equal(merged->n_hugepage_limits, 1);
  assert_int_equal(merged->hugepage_limits[0]->limit, 4 << 20);
  /* A copy of its own: the inputs may go. */
  assert_ptr_not_equal(merged->cpuset_mems, current.cpuset_mems);
  free_resources(merged);

  /* Over nothing: the update itself (but no oom_score_adj). */
  merged = container_resources_merge(NULL, &update);
  assert_int_equal(merged->cpu_shares, 256);
  assert_int_equal(merged->cpu_period, 0);
  assert_int_equal(merged->oom_score_adj, 0);
  assert_int_equal(merged->n_unified, 1);
  assert_int_equal(merged->n_hugepage_limits, 0);
  free_resources(merged);

  /* No update: a copy. */
  merged = container_resources_merge(&current, NULL);
  assert_int_equal(merged->cpu_shares, 512);
  assert_int_equal(merged->n_unified, 2);
  assert_int_equal(merged->n_hugepage_limits, 1);
  free_resources(merged);
}

/* A CreateContainerRequest with just a name, packed. */
static uint8_t *
minimal_request(size_t *len)
{
  Runtime__V1__CreateContainerRequest request = RUNTIME__V1__CREATE_CONTAINER_REQUEST__INIT;
  Runtime__V1__ContainerConfig config = RUNTIME__V1__CONTAINER_CONFIG__INIT;
  Runtime__V1__ContainerMetadata metadata = RUNTIME__V1__CONTAINER_METADATA__INIT;
  uint8_t *bytes;

  metadata.name = (char *)"c";
  config.metadata = &metadata;
  request.config = &config;
  request.pod_sandbox_id = (char *)"sandbox";
  *len = runtime__v1__create_container_request__get_packed_size(&request);
  bytes = xmalloc(*len);
  runtime__v1__create_container_request__pack(&request, bytes);
  return bytes;
}

static void
test_state_keeps_updated_resources(void **state)
{
  char root_template[] = "/tmp/crid-unit-XXXXXX";
  char *root = mkdtemp(root_template);
  struct pod_manager manager;
  struct container *saved, *loaded;
  struct error err = ERROR_INIT;
  Resources current;
  UnifiedEntry u[2];
  UnifiedEntry *u_list[2];
  Runtime__V1__HugepageLimit h;
  Runtime__V1__HugepageLimit *h_list[1];

  (void)state;
  assert_non_null(root);
  memset(&manager, 0, sizeof manager);
  manager.options.root = root;
  created(&current, u, u_list, &h, h_list);

  for (int with_resources = 0; with_resources < 2; with_resources++)
    {
      saved = container_new();
      snprintf(saved->id, sizeof saved->id, "%064d", with_resources);
      saved->request_bytes = minimal_request(&saved->request_len);
      if (with_resources)
        saved->resources = container_resources_merge(&current, NULL);
      assert_int_equal(container_save(&manager, saved, &err), 0);

      loaded = container_load(&manager, saved->id, &err);
      assert_non_null(loaded);
      if (!with_resources)
        {
          assert_null(loaded->resources);
          /* Nothing in the request either. */
          assert_null(container_resources(loaded));
        }
      else
        {
          const Resources *r = container_resources(loaded);
          assert_ptr_equal(r, loaded->resources);
          assert_int_equal(r->cpu_period, 100000);
          assert_int_equal(r->cpu_quota, 50000);
          assert_int_equal(r->cpu_shares, 512);
          assert_int_equal(r->memory_limit_in_bytes, 64 << 20);
          assert_int_equal(r->memory_swap_limit_in_bytes, 64 << 20);
          assert_int_equal(r->oom_score_adj, 500);
          assert_string_equal(r->cpuset_cpus, "0");
          assert_string_equal(r->cpuset_mems, "0");
          assert_int_equal(r->n_unified, 2);
          assert_string_equal(unified_value(r, "memory.high"), "1000");
          assert_string_equal(unified_value(r, "pids.max"), "10");
          assert_int_equal(r->n_hugepage_limits, 1);
          assert_string_equal(r->hugepage_limits[0]->page_size, "2MB");
          assert_int_equal(r->hugepage_limits[0]->limit, 4 << 20);
        }
      container_unref(loaded);
      container_unref(saved);
    }
  assert_int_equal(remove_tree(root, &err), 0);
  error_clear(&err);
}

/* Writes text as <root>/containers/<id>/<name>. */
static void
write_in_dir(struct pod_manager *manager, const char *id, const char *name, const char *text)
{
  cleanup_free char *dir = layout_container_dir(manager, id);
  cleanup_free char *path = xasprintf("%s/%s", dir, name);
  struct error err = ERROR_INIT;

  assert_int_equal(replace_file(path, text, strlen(text), 0600, &err), 0);
}

static struct container *
load(struct pod_manager *manager, const char *id)
{
  struct error err = ERROR_INIT;
  struct container *loaded = container_load(manager, id, &err);

  if (loaded == NULL)
    fail_msg("load: %s", error_message(&err));
  return loaded;
}

static void
expect_user(const struct container *c, uint32_t uid, uint32_t gid, const uint32_t *groups, size_t n)
{
  assert_true(c->user.known);
  assert_int_equal(c->user.uid, uid);
  assert_int_equal(c->user.gid, gid);
  assert_int_equal(c->user.n_groups, n);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(c->user.groups[i], groups[i]);
}

/* A container numbered number, to be saved under a fresh root (made by
 * mkdtemp from root_template) through *manager. */
static struct container *
record_under(char *root_template, struct pod_manager *manager, int number, char id[65])
{
  char *root = mkdtemp(root_template);
  struct container *c = container_new();

  assert_non_null(root);
  memset(manager, 0, sizeof *manager);
  manager->options.root = root;
  snprintf(c->id, sizeof c->id, "%064d", number);
  snprintf(id, 65, "%s", c->id);
  c->request_bytes = minimal_request(&c->request_len);
  return c;
}

/* ContainerStatus.user across restarts: kept in state.json (version 2),
 * taken from the bundle's config.json for a version 1 record, unknown
 * while CreateContainer had not resolved it or when damaged. */
static void
test_state_keeps_user(void **state)
{
  char root_template[] = "/tmp/crid-unit-XXXXXX";
  struct pod_manager manager;
  struct container *saved, *loaded;
  struct error err = ERROR_INIT;
  const uint32_t groups[] = { 1001, 50000, 4294967294u };
  char id[65];

  (void)state;
  saved = record_under(root_template, &manager, 7, id);

  /* Not resolved yet: null, read back as unknown. */
  assert_int_equal(container_save(&manager, saved, &err), 0);
  loaded = load(&manager, id);
  assert_false(loaded->user.known);
  container_unref(loaded);

  container_user_set(&saved->user, 1001, 1001, groups, 3);
  assert_int_equal(container_save(&manager, saved, &err), 0);
  loaded = load(&manager, id);
  expect_user(loaded, 1001, 1001, groups, 3);
  container_unref(loaded);
  /* No groups at all is still a known user. */
  container_user_set(&saved->user, 0, 0, NULL, 0);
  assert_int_equal(container_save(&manager, saved, &err), 0);
  loaded = load(&manager, id);
  expect_user(loaded, 0, 0, NULL, 0);
  container_unref(loaded);

  /* Version 1 had no "user": the bundle says what the process runs as. */
  write_in_dir(&manager, id, "state.json", "{\"version\": 1, \"state\": \"running\"}");
  loaded = load(&manager, id);
  assert_false(loaded->user.known); /* no config.json */
  container_unref(loaded);
  write_in_dir(&manager, id, "config.json",
               "{\"process\": {\"user\": {\"uid\": 1001, \"gid\": 1001, "
               "\"additionalGids\": [1001, 50000, 4294967294]}}}");
  loaded = load(&manager, id);
  expect_user(loaded, 1001, 1001, groups, 3);
  assert_int_equal(loaded->state, CONTAINER_RUNNING);
  container_unref(loaded);
  /* A version 2 record is not second-guessed by the bundle. */
  write_in_dir(&manager, id, "state.json", "{\"version\": 2, \"user\": null}");
  loaded = load(&manager, id);
  assert_false(loaded->user.known);
  container_unref(loaded);

  /* Damaged: ids out of range or of the wrong type leave it unknown
   * rather than wrong. */
  const char *damaged[] = {
    "{\"version\": 2, \"user\": {\"uid\": -1, \"gid\": 0, \"supplemental_groups\": []}}",
    "{\"version\": 2, \"user\": {\"uid\": 0, \"gid\": 4294967295}}",
    "{\"version\": 2, \"user\": {\"uid\": 0, \"gid\": 0, \"supplemental_groups\": [\"0\"]}}",
    "{\"version\": 2, \"user\": [0, 0]}",
  };
  for (size_t i = 0; i < sizeof damaged / sizeof damaged[0]; i++)
    {
      write_in_dir(&manager, id, "state.json", damaged[i]);
      loaded = load(&manager, id);
      assert_false(loaded->user.known);
      container_unref(loaded);
    }
  container_unref(saved);
  assert_int_equal(remove_tree(root_template, &err), 0);
  error_clear(&err);
}

/* The images of image volumes across restarts (RemoveImage refuses them
 * while the container exists); an older record has none, and damaged
 * entries are skipped. */
static void
test_state_keeps_image_volumes(void **state)
{
  char root_template[] = "/tmp/crid-unit-XXXXXX";
  struct pod_manager manager;
  struct container *saved, *loaded;
  struct error err = ERROR_INIT;
  struct image_volume items[2] = {
    { .mount_index = 1, .image_id = "sha256:aa", .source = "/not/kept" },
    { .mount_index = 3, .image_id = "sha256:bb" },
  };
  char id[65];

  (void)state;
  saved = record_under(root_template, &manager, 8, id);
  saved->image_volumes = (struct image_volumes){ .items = items, .n = 2 };
  assert_int_equal(container_save(&manager, saved, &err), 0);
  saved->image_volumes = (struct image_volumes){ 0 };
  loaded = load(&manager, id);
  assert_int_equal(loaded->image_volumes.n, 2);
  assert_string_equal(image_volumes_find(&loaded->image_volumes, 3)->image_id, "sha256:bb");
  assert_null(image_volumes_find(&loaded->image_volumes, 1)->source);
  assert_null(image_volumes_find(&loaded->image_volumes, 0));
  assert_true(image_volumes_use(&loaded->image_volumes, "sha256:aa"));
  assert_false(image_volumes_use(&loaded->image_volumes, "sha256:cc"));
  container_unref(loaded);

  write_in_dir(&manager, id, "state.json", "{\"version\": 2}");
  loaded = load(&manager, id);
  assert_int_equal(loaded->image_volumes.n, 0);
  container_unref(loaded);
  write_in_dir(&manager, id, "state.json",
               "{\"version\": 2, \"image_volumes\": [{\"mount\": -1, \"image_id\": \"x\"}, "
               "{\"mount\": 0}, 5, {\"mount\": 2, \"image_id\": \"sha256:cc\"}]}");
  loaded = load(&manager, id);
  assert_int_equal(loaded->image_volumes.n, 1);
  assert_string_equal(image_volumes_find(&loaded->image_volumes, 2)->image_id, "sha256:cc");
  container_unref(loaded);
  container_unref(saved);
  assert_int_equal(remove_tree(root_template, &err), 0);
  error_clear(&err);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_merge_replaces_what_the_update_sets),
    cmocka_unit_test(test_state_keeps_updated_resources),
    cmocka_unit_test(test_state_keeps_user),
    cmocka_unit_test(test_state_keeps_image_volumes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
