/* Unit tests of pod/pod_resources in a temporary sandbox folder: the
 * RunPodSandbox values in force until the first update, an update that
 * replaces what it sets and keeps what it leaves unset, the record read
 * back as after a restart, damaged and oversized records, a folder that
 * is gone, the JSON of the verbose info (containerd's field names, zero
 * fields left out), and UpdatePodSandboxResources' checks on a ready, a
 * stopped and a removed sandbox. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/cleanup.h"
#include "common/error.h"
#include "common/json.h"
#include "common/util.h"
#include "pod/layout.h"
#include "pod/pod_manager.h"
#include "pod/pod_resources.h"
#include "pod/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MiB (1024 * 1024)
#define SANDBOX_ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* A RunPodSandbox config as the kubelet builds it: overhead and the sum
 * of the containers' resources, every kind of field set in the latter. */
struct config_fixture
{
  Runtime__V1__PodSandboxConfig config;
  Runtime__V1__LinuxPodSandboxConfig linux_config;
  Runtime__V1__LinuxContainerResources overhead;
  Runtime__V1__LinuxContainerResources resources;
  Runtime__V1__HugepageLimit hugepage;
  Runtime__V1__HugepageLimit *hugepages[1];
  Runtime__V1__LinuxContainerResources__UnifiedEntry unified;
  Runtime__V1__LinuxContainerResources__UnifiedEntry *unified_entries[1];
};

static void
config_fixture_init(struct config_fixture *f)
{
  runtime__v1__pod_sandbox_config__init(&f->config);
  runtime__v1__linux_pod_sandbox_config__init(&f->linux_config);
  runtime__v1__linux_container_resources__init(&f->overhead);
  runtime__v1__linux_container_resources__init(&f->resources);
  runtime__v1__hugepage_limit__init(&f->hugepage);
  runtime__v1__linux_container_resources__unified_entry__init(&f->unified);
  f->overhead.cpu_period = 100000;
  f->overhead.cpu_quota = 25000;
  f->overhead.cpu_shares = 256;
  f->overhead.memory_limit_in_bytes = 120 * MiB;
  f->resources.cpu_period = 100000;
  f->resources.cpu_quota = 150000;
  f->resources.cpu_shares = 1536;
  f->resources.memory_limit_in_bytes = 512 * MiB;
  f->resources.cpuset_cpus = "0-1";
  f->hugepage.page_size = "2MB";
  f->hugepage.limit = 4 * MiB;
  f->hugepages[0] = &f->hugepage;
  f->resources.n_hugepage_limits = 1;
  f->resources.hugepage_limits = f->hugepages;
  f->unified.key = "memory.high";
  f->unified.value = "400000000";
  f->unified_entries[0] = &f->unified;
  f->resources.n_unified = 1;
  f->resources.unified = f->unified_entries;
  f->linux_config.overhead = &f->overhead;
  f->linux_config.resources = &f->resources;
  f->config.linux = &f->linux_config;
}

static char *
make_temp_dir(void)
{
  char *dir = xstrdup("/tmp/crid-unit-XXXXXX");

  assert_non_null(mkdtemp(dir));
  return dir;
}

static void
remove_temp_dir(const char *dir)
{
  cleanup_free char *command = xasprintf("rm -rf '%s'", dir);

  assert_int_equal(system(command), 0);
}

static void
write_bytes(const char *path, const void *data, size_t len)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, len), (ssize_t)len);
  close(fd);
}

static Runtime__V1__UpdatePodSandboxResourcesRequest *
load_ok(const char *dir, const Runtime__V1__PodSandboxConfig *config)
{
  Runtime__V1__UpdatePodSandboxResourcesRequest *values = NULL;
  struct error err = ERROR_INIT;

  if (pod_resources_load(dir, config, &values, &err) < 0)
    fail_msg("pod_resources_load: %s", error_message(&err));
  assert_non_null(values);
  return values;
}

static char *
values_json(const Runtime__V1__UpdatePodSandboxResourcesRequest *values)
{
  struct json_writer *writer = json_writer_new(false);

  json_begin_object(writer);
  pod_resources_write_json(writer, values);
  json_end_object(writer);
  return json_writer_finish(writer, NULL);
}

static void
update_ok(const char *dir, const Runtime__V1__PodSandboxConfig *config,
          const Runtime__V1__UpdatePodSandboxResourcesRequest *update)
{
  struct error err = ERROR_INIT;

  if (pod_resources_update(dir, SANDBOX_ID, config, update, &err) < 0)
    fail_msg("pod_resources_update: %s", error_message(&err));
}

static void
test_run_values_in_force_without_update(void **state)
{
  struct config_fixture f;
  cleanup_free char *dir = make_temp_dir();
  Runtime__V1__UpdatePodSandboxResourcesRequest *values;

  config_fixture_init(&f);
  values = load_ok(dir, &f.config);
  /* A copy: the request it came from may go away. */
  f.resources.cpu_shares = 2;
  f.hugepage.limit = 0;
  assert_non_null(values->overhead);
  assert_non_null(values->resources);
  assert_int_equal(values->overhead->cpu_quota, 25000);
  assert_int_equal(values->overhead->memory_limit_in_bytes, 120 * MiB);
  assert_int_equal(values->resources->cpu_shares, 1536);
  assert_int_equal(values->resources->cpu_quota, 150000);
  assert_int_equal(values->resources->memory_limit_in_bytes, 512 * MiB);
  assert_string_equal(values->resources->cpuset_cpus, "0-1");
  assert_int_equal(values->resources->n_hugepage_limits, 1);
  assert_string_equal(values->resources->hugepage_limits[0]->page_size, "2MB");
  assert_int_equal(values->resources->hugepage_limits[0]->limit, 4 * MiB);
  assert_int_equal(values->resources->n_unified, 1);
  assert_string_equal(values->resources->unified[0]->key, "memory.high");
  pod_resources_free(values);
  /* Nothing is written until an update. */
  {
    cleanup_free char *path = xasprintf("%s/" POD_RESOURCES_FILE, dir);
    assert_int_equal(access(path, F_OK), -1);
  }
  remove_temp_dir(dir);
}

static void
test_no_values_given(void **state)
{
  Runtime__V1__PodSandboxConfig config = RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
  Runtime__V1__LinuxPodSandboxConfig linux_config = RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__INIT;
  cleanup_free char *dir = make_temp_dir();
  cleanup_free char *json = NULL;
  Runtime__V1__UpdatePodSandboxResourcesRequest *values;

  /* No config, a config without linux, linux without resources. */
  values = load_ok(dir, NULL);
  assert_null(values->overhead);
  assert_null(values->resources);
  pod_resources_free(values);
  values = load_ok(dir, &config);
  assert_null(values->overhead);
  assert_null(values->resources);
  pod_resources_free(values);
  config.linux = &linux_config;
  values = load_ok(dir, &config);
  assert_null(values->overhead);
  assert_null(values->resources);
  json = values_json(values);
  assert_string_equal(json, "{}");
  pod_resources_free(values);
  remove_temp_dir(dir);
}

static void
test_update_replaces_what_it_sets(void **state)
{
  struct config_fixture f;
  cleanup_free char *dir = make_temp_dir();
  Runtime__V1__UpdatePodSandboxResourcesRequest update
      = RUNTIME__V1__UPDATE_POD_SANDBOX_RESOURCES_REQUEST__INIT;
  Runtime__V1__LinuxContainerResources resources = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
  Runtime__V1__LinuxContainerResources overhead = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
  Runtime__V1__UpdatePodSandboxResourcesRequest *values;

  config_fixture_init(&f);
  /* A resize: new resources, overhead unset (kept from RunPodSandbox). */
  update.pod_sandbox_id = "0123";
  resources.cpu_shares = 2048;
  resources.cpu_quota = 200000;
  resources.cpu_period = 100000;
  resources.memory_limit_in_bytes = 1024 * MiB;
  update.resources = &resources;
  update_ok(dir, &f.config, &update);
  values = load_ok(dir, &f.config);
  /* The full id, whatever prefix the request named the pod by. */
  assert_string_equal(values->pod_sandbox_id, SANDBOX_ID);
  assert_int_equal(values->resources->cpu_shares, 2048);
  assert_int_equal(values->resources->cpu_quota, 200000);
  assert_int_equal(values->resources->memory_limit_in_bytes, 1024 * MiB);
  /* Replaced whole: what the update leaves zero is zero now. */
  assert_string_equal(values->resources->cpuset_cpus, "");
  assert_int_equal(values->resources->n_hugepage_limits, 0);
  assert_int_equal(values->resources->n_unified, 0);
  assert_non_null(values->overhead);
  assert_int_equal(values->overhead->cpu_shares, 256);
  assert_int_equal(values->overhead->memory_limit_in_bytes, 120 * MiB);
  pod_resources_free(values);

  /* Then only the overhead: the resources of the first update stay. */
  update.resources = NULL;
  overhead.memory_limit_in_bytes = 200 * MiB;
  update.overhead = &overhead;
  update_ok(dir, &f.config, &update);
  values = load_ok(dir, &f.config);
  assert_int_equal(values->overhead->memory_limit_in_bytes, 200 * MiB);
  assert_int_equal(values->overhead->cpu_shares, 0);
  assert_int_equal(values->resources->cpu_shares, 2048);
  pod_resources_free(values);

  /* An update that sets nothing changes nothing. */
  update.overhead = NULL;
  update_ok(dir, &f.config, &update);
  values = load_ok(dir, &f.config);
  assert_int_equal(values->overhead->memory_limit_in_bytes, 200 * MiB);
  assert_int_equal(values->resources->cpu_shares, 2048);
  pod_resources_free(values);
  remove_temp_dir(dir);
}

static void
test_record_wins_after_restart(void **state)
{
  struct config_fixture f;
  cleanup_free char *dir = make_temp_dir();
  Runtime__V1__UpdatePodSandboxResourcesRequest update
      = RUNTIME__V1__UPDATE_POD_SANDBOX_RESOURCES_REQUEST__INIT;
  Runtime__V1__LinuxContainerResources resources = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
  Runtime__V1__UpdatePodSandboxResourcesRequest *values;

  config_fixture_init(&f);
  resources.cpu_shares = 4096;
  update.resources = &resources;
  update_ok(dir, &f.config, &update);
  /* A restarted crid has only the folder and the RunPodSandbox request:
   * the record is in force, not the request's values. */
  values = load_ok(dir, &f.config);
  assert_int_equal(values->resources->cpu_shares, 4096);
  pod_resources_free(values);
  values = load_ok(dir, NULL);
  assert_int_equal(values->resources->cpu_shares, 4096);
  assert_int_equal(values->overhead->cpu_shares, 256);
  pod_resources_free(values);
  remove_temp_dir(dir);
}

static void
test_damaged_record(void **state)
{
  struct config_fixture f;
  cleanup_free char *dir = make_temp_dir();
  cleanup_free char *path = xasprintf("%s/" POD_RESOURCES_FILE, dir);
  cleanup_free char *big = xcalloc(1, 2 * MiB);
  Runtime__V1__UpdatePodSandboxResourcesRequest update
      = RUNTIME__V1__UPDATE_POD_SANDBOX_RESOURCES_REQUEST__INIT;
  Runtime__V1__UpdatePodSandboxResourcesRequest *values = NULL;
  struct error err = ERROR_INIT;
  cleanup_free char *text = NULL;
  size_t len;

  config_fixture_init(&f);
  /* Field 3 (resources) says 100 bytes follow, and 2 do. */
  write_bytes(path, "\x1a\x64\x08\x01", 4);
  assert_int_equal(pod_resources_load(dir, &f.config, &values, &err), -1);
  assert_null(values);
  assert_int_equal(err.code, EINVAL);
  assert_non_null(strstr(error_message(&err), path));
  error_clear(&err);
  /* An update does not paper over it, and leaves the file as it was. */
  assert_int_equal(pod_resources_update(dir, SANDBOX_ID, &f.config, &update, &err), -1);
  assert_int_equal(err.code, EINVAL);
  error_clear(&err);
  assert_int_equal(read_file(path, 64, &text, &len, &err), 0);
  assert_int_equal(len, 4);

  /* Bounded: a file of megabytes is not read. */
  write_bytes(path, big, 2 * MiB);
  assert_int_equal(pod_resources_load(dir, &f.config, &values, &err), -1);
  assert_int_equal(err.code, EFBIG);
  error_clear(&err);

  /* A folder that is gone: the request's values can still be read, an
   * update cannot be saved. */
  remove_temp_dir(dir);
  values = load_ok(dir, &f.config);
  assert_int_equal(values->resources->cpu_shares, 1536);
  pod_resources_free(values);
  assert_int_equal(pod_resources_update(dir, SANDBOX_ID, &f.config, &update, &err), -1);
  assert_int_equal(err.code, ENOENT);
  assert_non_null(strstr(error_message(&err), "save the pod resources"));
  error_clear(&err);
}

static void
test_json_shape(void **state)
{
  struct config_fixture f;
  Runtime__V1__UpdatePodSandboxResourcesRequest values
      = RUNTIME__V1__UPDATE_POD_SANDBOX_RESOURCES_REQUEST__INIT;
  Runtime__V1__LinuxContainerResources unlimited = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
  cleanup_free char *json = NULL;
  cleanup_free char *json_unlimited = NULL;

  config_fixture_init(&f);
  f.resources.cpuset_mems = "0";
  f.resources.oom_score_adj = -997;
  f.resources.memory_swap_limit_in_bytes = 512 * MiB;
  values.overhead = &f.overhead;
  values.resources = &f.resources;
  json = values_json(&values);
  assert_string_equal(
      json, "{\"overhead\":{\"linux\":{\"cpu_period\":100000,\"cpu_quota\":25000,"
            "\"cpu_shares\":256,\"memory_limit_in_bytes\":125829120}},"
            "\"resources\":{\"linux\":{\"cpu_period\":100000,\"cpu_quota\":150000,"
            "\"cpu_shares\":1536,\"memory_limit_in_bytes\":536870912,\"oom_score_adj\":-997,"
            "\"cpuset_cpus\":\"0-1\",\"cpuset_mems\":\"0\","
            "\"hugepage_limits\":[{\"page_size\":\"2MB\",\"limit\":4194304}],"
            "\"unified\":{\"memory.high\":\"400000000\"},"
            "\"memory_swap_limit_in_bytes\":536870912}}}");

  /* All zero: an empty linux object; -1 (no quota) is not zero. */
  values.overhead = NULL;
  values.resources = &unlimited;
  json_unlimited = values_json(&values);
  assert_string_equal(json_unlimited, "{\"resources\":{\"linux\":{}}}");
  unlimited.cpu_quota = -1;
  free(json_unlimited);
  json_unlimited = values_json(&values);
  assert_string_equal(json_unlimited, "{\"resources\":{\"linux\":{\"cpu_quota\":-1}}}");
}

/* A pod manager with only what pod_resources and sandbox_refresh read:
 * its root and state folders. */
struct sandbox_fixture
{
  char *dir;
  struct pod_manager manager;
  struct config_fixture config;
  struct sandbox *sandbox;
  char *sandbox_dir;
};

static int
sandbox_setup(void **state)
{
  struct sandbox_fixture *f = xcalloc(1, sizeof *f);
  struct error err = ERROR_INIT;

  f->dir = make_temp_dir();
  f->manager.options.root = f->dir;
  f->manager.options.state_dir = f->dir;
  config_fixture_init(&f->config);
  f->sandbox = sandbox_new();
  snprintf(f->sandbox->id, sizeof f->sandbox->id, "%s", SANDBOX_ID);
  f->sandbox->config = &f->config.config;
  f->sandbox->state = SANDBOX_READY;
  f->sandbox->creating = false; /* as RunPodSandbox left it */
  /* A live process: sandbox_refresh finds the "pause" running. */
  f->sandbox->pause_pid = getpid();
  f->sandbox_dir = layout_sandbox_dir(&f->manager, SANDBOX_ID);
  assert_int_equal(mkdir_p(f->sandbox_dir, 0700, &err), 0);
  *state = f;
  return 0;
}

static int
sandbox_teardown(void **state)
{
  struct sandbox_fixture *f = *state;

  sandbox_unref(f->sandbox);
  remove_temp_dir(f->dir);
  free(f->sandbox_dir);
  free(f->dir);
  free(f);
  return 0;
}

static char *
info_json(struct sandbox_fixture *f)
{
  struct json_writer *writer = json_writer_new(false);

  json_begin_object(writer);
  pthread_mutex_lock(&f->sandbox->lock);
  pod_resources_write_info(writer, &f->manager, f->sandbox);
  pthread_mutex_unlock(&f->sandbox->lock);
  json_end_object(writer);
  return json_writer_finish(writer, NULL);
}

static void
test_update_sandbox(void **state)
{
  struct sandbox_fixture *f = *state;
  Runtime__V1__UpdatePodSandboxResourcesRequest update
      = RUNTIME__V1__UPDATE_POD_SANDBOX_RESOURCES_REQUEST__INIT;
  Runtime__V1__LinuxContainerResources resources = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
  cleanup_free char *before = NULL;
  cleanup_free char *after = NULL;
  struct error err = ERROR_INIT;

  /* The info shows RunPodSandbox's values until an update. */
  before = info_json(f);
  assert_non_null(strstr(before, "\"resources\":{\"linux\":{\"cpu_period\":100000,"
                                 "\"cpu_quota\":150000,\"cpu_shares\":1536,"));
  assert_non_null(strstr(before, "\"overhead\":{\"linux\":{\"cpu_period\":100000,"));

  resources.cpu_shares = 3072;
  resources.memory_limit_in_bytes = 768 * MiB;
  update.resources = &resources;
  if (pod_resources_update_sandbox(&f->manager, f->sandbox, &update, &err) < 0)
    fail_msg("pod_resources_update_sandbox: %s", error_message(&err));
  after = info_json(f);
  assert_non_null(strstr(after, "\"resources\":{\"linux\":{\"cpu_shares\":3072,"
                                "\"memory_limit_in_bytes\":805306368}}"));
  assert_non_null(strstr(after, "\"overhead\":{\"linux\":{\"cpu_period\":100000,"));
}

static void
test_update_sandbox_not_ready(void **state)
{
  struct sandbox_fixture *f = *state;
  Runtime__V1__UpdatePodSandboxResourcesRequest update
      = RUNTIME__V1__UPDATE_POD_SANDBOX_RESOURCES_REQUEST__INIT;
  cleanup_free char *path = xasprintf("%s/" POD_RESOURCES_FILE, f->sandbox_dir);
  struct error err = ERROR_INIT;

  f->sandbox->state = SANDBOX_NOTREADY;
  assert_int_equal(pod_resources_update_sandbox(&f->manager, f->sandbox, &update, &err), -1);
  assert_int_equal(err.code, EBUSY);
  assert_non_null(strstr(error_message(&err), "is not ready"));
  error_clear(&err);
  assert_int_equal(access(path, F_OK), -1);

  f->sandbox->state = SANDBOX_READY;
  f->sandbox->removed = true;
  assert_int_equal(pod_resources_update_sandbox(&f->manager, f->sandbox, &update, &err), -1);
  assert_int_equal(err.code, ENOENT);
  error_clear(&err);
  assert_int_equal(access(path, F_OK), -1);
}

static void
test_info_of_damaged_record(void **state)
{
  struct sandbox_fixture *f = *state;
  cleanup_free char *path = xasprintf("%s/" POD_RESOURCES_FILE, f->sandbox_dir);
  cleanup_free char *json = NULL;

  /* Best effort: the info leaves the values out rather than failing. */
  write_bytes(path, "\xff", 1);
  json = info_json(f);
  assert_string_equal(json, "{}");
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_run_values_in_force_without_update),
    cmocka_unit_test(test_no_values_given),
    cmocka_unit_test(test_update_replaces_what_it_sets),
    cmocka_unit_test(test_record_wins_after_restart),
    cmocka_unit_test(test_damaged_record),
    cmocka_unit_test(test_json_shape),
    cmocka_unit_test_setup_teardown(test_update_sandbox, sandbox_setup, sandbox_teardown),
    cmocka_unit_test_setup_teardown(test_update_sandbox_not_ready, sandbox_setup, sandbox_teardown),
    cmocka_unit_test_setup_teardown(test_info_of_damaged_record, sandbox_setup, sandbox_teardown),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
