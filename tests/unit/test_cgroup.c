/* Unit tests of pod/cgroup: cgroupsPath for the cgroupfs and systemd
 * drivers, slice names to cgroupfs paths, the directory of a cgroupsPath,
 * the hierarchies of a mountinfo, the host mode, and bottom-up removal
 * (on plain directories standing in for hierarchies). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/cleanup.h"
#include "common/error.h"
#include "common/util.h"
#include "pod/cgroup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void
expect_path(const char *parent, bool systemd, const char *want)
{
  struct error err = ERROR_INIT;
  cleanup_free char *got = NULL;

  if (cgroup_container_path(parent, ID, systemd, &got, &err) < 0)
    fail_msg("%s: %s", parent, error_message(&err));
  assert_string_equal(got, want);
}

static void
expect_path_einval(const char *parent, const char *id, bool systemd)
{
  struct error err = ERROR_INIT;
  char *got = NULL;

  assert_int_equal(cgroup_container_path(parent, id, systemd, &got, &err), -1);
  assert_int_equal(err.code, EINVAL);
  assert_null(got);
  error_clear(&err);
}

static void
test_cgroupfs_paths(void **state)
{
  expect_path("/kubepods/burstable/pod1234", false, "/kubepods/burstable/pod1234/crid-" ID);
  expect_path("/kubepods/besteffort/pod1/", false, "/kubepods/besteffort/pod1/crid-" ID);
  expect_path("kubepods//pod1/./", false, "/kubepods/pod1/crid-" ID);
  /* crictl sends no parent: crid's own group, not the root. */
  expect_path("", false, CGROUP_DEFAULT_PARENT "/crid-" ID);
  expect_path(NULL, false, CGROUP_DEFAULT_PARENT "/crid-" ID);
  expect_path("/", false, "/crid-" ID);

  expect_path_einval("kubepods-burstable.slice", ID, false);
  expect_path_einval("/kubepods/../etc", ID, false);
  expect_path_einval("/kubepods", "a/b", false);
  expect_path_einval("/kubepods", "..", false);
  expect_path_einval("/kubepods", "", false);
  expect_path_einval("/kubepods", "a:b", false);

  /* The sandbox follows the same rule. */
  struct error err = ERROR_INIT;
  cleanup_free char *sandbox = NULL;
  assert_int_equal(cgroup_sandbox_path("/kubepods/pod1", ID, false, &sandbox, &err), 0);
  assert_string_equal(sandbox, "/kubepods/pod1/crid-" ID);
}

static void
test_systemd_paths(void **state)
{
  expect_path("kubepods-burstable-pod1234.slice", true,
              "kubepods-burstable-pod1234.slice:crid:" ID);
  expect_path("", true, "system.slice:crid:" ID);
  expect_path(NULL, true, "system.slice:crid:" ID);
  expect_path("-.slice", true, "-.slice:crid:" ID);

  expect_path_einval("/kubepods/burstable", ID, true);
  expect_path_einval("kubepods", ID, true);
  expect_path_einval("/kubepods.slice/kubepods-burstable.slice", ID, true);
  expect_path_einval("kubepods--burstable.slice", ID, true);
  expect_path_einval("-kubepods.slice", ID, true);
  expect_path_einval("kubepods-.slice", ID, true);
  expect_path_einval("kubepods.slice", "a:b", true);

  struct error err = ERROR_INIT;
  cleanup_free char *sandbox = NULL;
  assert_int_equal(cgroup_sandbox_path("kubepods-pod1.slice", ID, true, &sandbox, &err), 0);
  assert_string_equal(sandbox, "kubepods-pod1.slice:crid:" ID);
}

static void
expect_slice(const char *slice, const char *want)
{
  struct error err = ERROR_INIT;
  cleanup_free char *got = NULL;

  if (want == NULL)
    {
      assert_int_equal(cgroup_slice_to_path(slice, &got, &err), -1);
      assert_int_equal(err.code, EINVAL);
      error_clear(&err);
      return;
    }
  if (cgroup_slice_to_path(slice, &got, &err) < 0)
    fail_msg("%s: %s", slice, error_message(&err));
  assert_string_equal(got, want);
}

static void
test_slice_to_path(void **state)
{
  expect_slice("kubepods-burstable-pod123.slice",
               "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod123.slice");
  expect_slice("kubepods.slice", "/kubepods.slice");
  expect_slice("system.slice", "/system.slice");
  expect_slice("a-b-c-d.slice", "/a.slice/a-b.slice/a-b-c.slice/a-b-c-d.slice");
  /* kubelet writes pod uids with underscores for dashes. */
  expect_slice("kubepods-besteffort-pod4a5b_6c7d.slice",
               "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod4a5b_6c7d.slice");
  expect_slice("-.slice", "/");

  expect_slice("kubepods", NULL);
  expect_slice(".slice", NULL);
  expect_slice("a--b.slice", NULL);
  expect_slice("-a.slice", NULL);
  expect_slice("a-.slice", NULL);
  expect_slice("a/b.slice", NULL);
  expect_slice(NULL, NULL);
}

static void
expect_fs(const char *cgroups_path, bool systemd, const char *want)
{
  struct error err = ERROR_INIT;
  cleanup_free char *got = NULL;

  if (want == NULL)
    {
      assert_int_equal(cgroup_path_to_fs(cgroups_path, systemd, &got, &err), -1);
      assert_int_equal(err.code, EINVAL);
      error_clear(&err);
      return;
    }
  if (cgroup_path_to_fs(cgroups_path, systemd, &got, &err) < 0)
    fail_msg("%s: %s", cgroups_path, error_message(&err));
  assert_string_equal(got, want);
}

static void
test_cgroups_path_to_directory(void **state)
{
  /* Round trip from what the path functions make. */
  struct error err = ERROR_INIT;
  cleanup_free char *systemd = NULL;
  cleanup_free char *cgroupfs = NULL;

  assert_int_equal(cgroup_container_path("kubepods-burstable-pod1.slice", ID, true, &systemd, &err),
                   0);
  expect_fs(systemd, true,
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/crid-" ID
            ".scope");
  assert_int_equal(cgroup_container_path("/kubepods/pod1", ID, false, &cgroupfs, &err), 0);
  expect_fs(cgroupfs, false, "/kubepods/pod1/crid-" ID);

  expect_fs(":crid:abc", true, "/system.slice/crid-abc.scope");
  expect_fs("-.slice:crid:abc", true, "/crid-abc.scope");
  expect_fs("machine.slice::abc", true, "/machine.slice/abc.scope");
  expect_fs("//kubepods//x/", false, "/kubepods/x");

  expect_fs("kubepods.slice:crid", true, NULL);
  expect_fs("a:b:c:d", true, NULL);
  expect_fs("bad:crid:abc", true, NULL);
  expect_fs("kubepods.slice:crid:../x", true, NULL);
  expect_fs("", false, NULL);
  expect_fs("/", false, NULL);
  expect_fs("relative/x", false, NULL);
  expect_fs("/a/../b", false, NULL);
}

static const char mountinfo[]
    = "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
      "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
      "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
      "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:7 master:2 - cgroup cgroup "
      "rw,memory\n"
      "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
      "50 27 0:40 / /odd\\040dir rw - cgroup2 none rw\n"
      "51 27 0:41 / /cgroup-looking rw - tmpfs cgroup rw";

static void
test_hierarchies_from_mountinfo(void **state)
{
  struct error err = ERROR_INIT;
  char **roots = NULL;

  assert_int_equal(cgroup_hierarchies_parse(mountinfo, &roots, &err), 0);
  assert_int_equal(strv_length(roots), 5);
  assert_string_equal(roots[0], "/sys/fs/cgroup/cpu");
  assert_string_equal(roots[1], "/sys/fs/cgroup/memory");
  assert_string_equal(roots[2], "/sys/fs/cgroup/systemd");
  assert_string_equal(roots[3], "/sys/fs/cgroup/unified");
  assert_string_equal(roots[4], "/odd dir");
  strv_free(roots);

  assert_int_equal(cgroup_hierarchies_parse("", &roots, &err), 0);
  assert_int_equal(strv_length(roots), 0);
  strv_free(roots);

  /* This machine has some. */
  assert_int_equal(cgroup_hierarchies(&roots, &err), 0);
  assert_true(strv_length(roots) > 0);
  strv_free(roots);
}

static void
test_host_mode(void **state)
{
  struct error err = ERROR_INIT;
  enum cgroup_mode mode;

  assert_int_equal(cgroup_mode_at("/proc", &mode, &err), -1);
  assert_int_equal(err.code, EIO);
  error_clear(&err);
  assert_int_equal(cgroup_mode_at(CGROUP_ROOT, &mode, &err), 0);
  assert_int_equal(cgroup_host_mode(), mode);
  assert_int_not_equal(mode, CGROUP_MODE_UNKNOWN);
  assert_string_not_equal(cgroup_mode_name(mode), "unknown");
  /* A v1 host with a cgroup2 beside it is hybrid; the unified mount must
   * decide, not the tmpfs. */
  if (access(CGROUP_ROOT "/unified/cgroup.controllers", F_OK) == 0)
    assert_int_equal(mode, CGROUP_MODE_HYBRID);
}

static char *
make_temp_dir(void)
{
  char *dir = xstrdup("/tmp/crid-cgroup-XXXXXX");
  assert_non_null(mkdtemp(dir));
  return dir;
}

static void
mkdirs(const char *base, const char *rel)
{
  cleanup_free char *path = xasprintf("%s%s", base, rel);
  struct error err = ERROR_INIT;
  assert_int_equal(mkdir_p(path, 0755, &err), 0);
}

static bool
exists(const char *base, const char *rel)
{
  cleanup_free char *path = xasprintf("%s%s", base, rel);
  return access(path, F_OK) == 0;
}

static void
test_remove_bottom_up_in_every_hierarchy(void **state)
{
  cleanup_free char *a = make_temp_dir();
  cleanup_free char *b = make_temp_dir();
  cleanup_free char *c = make_temp_dir();
  char *roots[] = { a, b, c, NULL };
  struct error err = ERROR_INIT;

  /* a: the cgroup with nested sub-cgroups (crun's "container"); b: only
   * the cgroup; c: nothing (a controller the runtime did not use). */
  mkdirs(a, "/kubepods/pod1/crid-x/container/deeper");
  mkdirs(a, "/kubepods/pod1/crid-x/other");
  mkdirs(a, "/kubepods/pod1/crid-y");
  mkdirs(b, "/kubepods/pod1/crid-x");
  assert_int_equal(cgroup_remove_under(roots, "/kubepods/pod1/crid-x", &err), 0);
  assert_false(exists(a, "/kubepods/pod1/crid-x"));
  assert_false(exists(b, "/kubepods/pod1/crid-x"));
  assert_true(exists(a, "/kubepods/pod1/crid-y"));
  assert_true(exists(a, "/kubepods/pod1"));

  /* Again: everything is missing, which is fine. */
  assert_int_equal(cgroup_remove_under(roots, "/kubepods/pod1/crid-x", &err), 0);

  /* The root and escapes are refused. */
  assert_int_equal(cgroup_remove_under(roots, "/", &err), -1);
  assert_int_equal(err.code, EINVAL);
  error_clear(&err);
  assert_int_equal(cgroup_remove_under(roots, "/kubepods/../..", &err), -1);
  assert_int_equal(err.code, EINVAL);
  error_clear(&err);

  /* A regular file in a directory makes rmdir fail (as a cgroup with
   * processes would): the error names the directory, the other
   * hierarchies are still cleaned. */
  mkdirs(a, "/p/busy");
  mkdirs(b, "/p/busy");
  cleanup_free char *file = xasprintf("%s/p/busy/file", a);
  FILE *f = fopen(file, "w");
  assert_non_null(f);
  fclose(f);
  assert_int_equal(cgroup_remove_under(roots, "/p/busy", &err), -1);
  assert_int_equal(err.code, ENOTEMPTY);
  assert_non_null(strstr(err.message, "/p/busy"));
  error_clear(&err);
  assert_false(exists(b, "/p/busy"));
  unlink(file);

  assert_int_equal(cgroup_remove_under(roots, "/p", &err), 0);
  assert_int_equal(cgroup_remove_under(roots, "/kubepods", &err), 0);
  assert_int_equal(rmdir(a), 0);
  assert_int_equal(rmdir(b), 0);
  assert_int_equal(rmdir(c), 0);
}

static void
test_v1_tasks_file(void **state)
{
  char *path;

  (void)state;
  path = cgroup_v1_tasks_file("12:name=systemd:/x\n11:cpu,cpuacct:/kubepods/a\n0::/b\n", "/r");
  assert_string_equal(path, "/r/cpu/kubepods/a/tasks");
  free(path);
  path = cgroup_v1_tasks_file("8:pids:/\n", "/sys/fs/cgroup");
  assert_string_equal(path, "/sys/fs/cgroup/pids/tasks");
  free(path);
  assert_null(cgroup_v1_tasks_file("0::/system.slice/crid.service\n", "/r"));
  assert_null(cgroup_v1_tasks_file("1:name=systemd:/a\n", "/r"));
  assert_null(cgroup_v1_tasks_file("3:pids:/../etc\n", "/r"));
  assert_null(cgroup_v1_tasks_file("", "/r"));
  /* Whatever the host, it returns at once and never fails. */
  cgroup_prepare_attach();
  cgroup_prepare_attach();
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_cgroupfs_paths),
    cmocka_unit_test(test_systemd_paths),
    cmocka_unit_test(test_slice_to_path),
    cmocka_unit_test(test_cgroups_path_to_directory),
    cmocka_unit_test(test_hierarchies_from_mountinfo),
    cmocka_unit_test(test_host_mode),
    cmocka_unit_test(test_remove_bottom_up_in_every_hierarchy),
    cmocka_unit_test(test_v1_tasks_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
