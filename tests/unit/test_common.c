/* Unit tests of common/: errors, atomic writes, JSON, ids, arenas. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/arena.h"
#include "common/atomic_file.h"
#include "common/cleanup.h"
#include "common/error.h"
#include "common/json.h"
#include "common/mountinfo.h"
#include "common/process.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void
test_error_wrap_adds_context(void **state)
{
  struct error err = ERROR_INIT;
  assert_int_equal(error_set(&err, ENOENT, "blob %s", "sha256:ab"), -1);
  assert_int_equal(error_wrap(&err, "pull %s", "busybox"), -1);
  assert_int_equal(err.code, ENOENT);
  assert_string_equal(err.message, "pull busybox: blob sha256:ab");
  error_clear(&err);
  assert_null(err.message);
}

static void
test_error_set_errno_appends_strerror(void **state)
{
  struct error err = ERROR_INIT;
  error_set_errno(&err, EACCES, "open %s", "/x");
  assert_int_equal(err.code, EACCES);
  assert_string_equal(err.message, "open /x: Permission denied");
  error_clear(&err);
}

static char *
make_temp_dir(void)
{
  char *dir = xstrdup("/tmp/crid-unit-XXXXXX");
  assert_non_null(mkdtemp(dir));
  return dir;
}

static void
test_atomic_write_replaces_whole_file(void **state)
{
  cleanup_free char *dir = make_temp_dir();
  cleanup_free char *path = xasprintf("%s/state.json", dir);
  cleanup_free char *text = NULL;
  struct error err = ERROR_INIT;
  struct stat st;
  size_t len;

  assert_int_equal(atomic_write_file(path, "first version", 13, 0600, &err), 0);
  assert_int_equal(atomic_write_file(path, "v2", 2, 0600, &err), 0);
  assert_int_equal(read_file(path, 1024, &text, &len, &err), 0);
  assert_int_equal(len, 2);
  assert_string_equal(text, "v2");
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  /* No temporary file is left beside it. */
  cleanup_dir DIR *d = opendir(dir);
  struct dirent *entry;
  int files = 0;
  while ((entry = readdir(d)))
    if (entry->d_name[0] != '.')
      files++;
  assert_int_equal(files, 1);
  unlink(path);
  rmdir(dir);
}

static void
test_atomic_write_into_missing_dir_fails_cleanly(void **state)
{
  struct error err = ERROR_INIT;
  assert_int_equal(atomic_write_file("/nonexistent-crid-dir/x", "a", 1, 0600, &err), -1);
  assert_int_equal(err.code, ENOENT);
  assert_non_null(strstr(err.message, "/nonexistent-crid-dir/x"));
  error_clear(&err);
}

static void
test_json_round_trip(void **state)
{
  const char *text = "{\"a\":[1,\"two\",true,null,{\"b\":-3}],\"c\":\"\\u00e9\\n\"}";
  struct error err = ERROR_INIT;
  cleanup_json struct json_value *value = json_parse(text, strlen(text), &err);
  struct json_writer *writer;
  cleanup_free char *out = NULL;
  int64_t n;

  assert_non_null(value);
  assert_true(json_is_array(json_object_get(value, "a")));
  assert_int_equal(json_array_size(json_object_get(value, "a")), 5);
  assert_true(json_integer(json_array_at(json_object_get(value, "a"), 0), &n));
  assert_int_equal(n, 1);
  assert_string_equal(json_object_get_string(value, "c"), "\xc3\xa9\n");
  writer = json_writer_new(false);
  json_write_value(writer, value);
  out = json_writer_finish(writer, NULL);
  assert_string_equal(out, "{\"a\":[1,\"two\",true,null,{\"b\":-3}],\"c\":\"\xc3\xa9\\n\"}");
}

static void
test_json_parse_error_has_context(void **state)
{
  struct error err = ERROR_INIT;
  assert_null(json_parse("{\"a\":", 5, &err));
  assert_int_equal(err.code, EINVAL);
  assert_true(str_has_prefix(err.message, "parse JSON"));
  error_clear(&err);
  assert_null(json_parse("{\"a\":1}\0x", 9, &err));
  error_clear(&err);
}

static void
test_ids_and_path_components(void **state)
{
  char id[65];
  struct error err = ERROR_INIT;
  assert_int_equal(id_generate(id, &err), 0);
  assert_true(id_is_valid(id));
  assert_false(id_is_valid("abc"));
  assert_false(id_is_valid("../../../../../../../../../../../../../../../../../../../../etc"));
  assert_true(path_component_is_valid("crun"));
  assert_false(path_component_is_valid(".."));
  assert_false(path_component_is_valid("a/b"));
  assert_false(path_component_is_valid(""));
}

static void
test_arena_releases_everything(void **state)
{
  struct arena arena = ARENA_INIT;
  for (int i = 0; i < 100; i++)
    {
      char *s = arena_printf(&arena, "item %d", i);
      assert_string_equal(arena_strdup(&arena, s), s);
      assert_int_equal(*(int *)arena_alloc(&arena, sizeof(int)), 0);
    }
  arena_release(&arena);
  assert_null(arena.blocks);
}

static void
test_replace_file_replaces_whole_file(void **state)
{
  char dir[] = "/tmp/crid-test-replace-XXXXXX";
  cleanup_free char *path = NULL;
  cleanup_free char *text = NULL;
  struct error err = ERROR_INIT;

  (void)state;
  assert_non_null(mkdtemp(dir));
  path = xasprintf("%s/file", dir);
  assert_int_equal(replace_file(path, "first version", 13, 0600, &err), 0);
  assert_int_equal(replace_file(path, "second", 6, 0600, &err), 0);
  assert_int_equal(read_file(path, 1024, &text, NULL, &err), 0);
  assert_string_equal(text, "second");
  unlink(path);
  assert_int_equal(rmdir(dir), 0); /* no temporary file left */
}

/* A grandchild is not ours to wait for: the pidfd wait must still see it
 * end, and give up at the timeout while it runs. */
static void
test_process_wait_ended(void **state)
{
  int fds[2];
  pid_t child, grandchild = 0;

  (void)state;
  assert_int_equal(pipe(fds), 0);
  child = fork();
  assert_true(child >= 0);
  if (child == 0)
    {
      pid_t pid = fork();
      if (pid == 0)
        {
          usleep(300 * 1000);
          _exit(0);
        }
      if (write(fds[1], &pid, sizeof pid) != sizeof pid)
        _exit(1);
      _exit(0); /* the grandchild is reparented */
    }
  assert_int_equal(read(fds[0], &grandchild, sizeof grandchild), sizeof grandchild);
  waitpid(child, NULL, 0);
  assert_false(process_wait_ended(grandchild, 20));
  assert_true(process_wait_ended(grandchild, 5000));
  assert_true(process_wait_ended(0, 10));
  close(fds[0]);
  close(fds[1]);
}

/* Escaped mount points, optional fields, stacked mounts and lines that
 * are not mountinfo. */
static void
test_mount_table(void **state)
{
  static const char text[]
      = "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
        "30 27 0:5 / /run/crid/ns/a\\040b rw master:3 shared:7 - nsfs nsfs rw\n"
        "garbage\n"
        "31 27 0:6 / /var/lib/crid/containers/x/rootfs rw - overlay overlay rw\n"
        "32 27 0:7 / /var/lib/crid/containers/x/rootfs rw - tmpfs tmpfs rw";
  struct mount_table table;
  const struct mount_entry *holder;

  (void)state;
  mount_table_parse(text, &table);
  assert_int_equal(table.n, 4);
  assert_string_equal(table.entries[0].optional, "shared:1");
  assert_string_equal(table.entries[1].mountpoint, "/run/crid/ns/a b");
  assert_string_equal(table.entries[1].optional, "master:3 shared:7");
  assert_string_equal(table.entries[1].fstype, "nsfs");
  assert_string_equal(table.entries[2].optional, "");
  holder = mount_table_holder(&table, "/var/lib/crid/containers/x/rootfs/etc");
  assert_non_null(holder);
  assert_string_equal(holder->fstype, "tmpfs"); /* the last one stacked there */
  holder = mount_table_holder(&table, "/var/lib/crid/containers/xy");
  assert_string_equal(holder->mountpoint, "/");
  assert_true(mount_path_within("/a/b", "/a"));
  assert_false(mount_path_within("/ab", "/a"));
  mount_table_clear(&table);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_error_wrap_adds_context),
    cmocka_unit_test(test_mount_table),
    cmocka_unit_test(test_error_set_errno_appends_strerror),
    cmocka_unit_test(test_atomic_write_replaces_whole_file),
    cmocka_unit_test(test_atomic_write_into_missing_dir_fails_cleanly),
    cmocka_unit_test(test_json_round_trip),
    cmocka_unit_test(test_json_parse_error_has_context),
    cmocka_unit_test(test_ids_and_path_components),
    cmocka_unit_test(test_arena_releases_everything),
    cmocka_unit_test(test_replace_file_replaces_whole_file),
    cmocka_unit_test(test_process_wait_ended),
  };
  return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
