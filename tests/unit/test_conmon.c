/* Unit tests of crid-conmon's pure parts: JSON escaping and the sync line,
 * the control fifo grammar, cgroup file parsing, and the CRI log writer
 * (record format, partial lines, long lines, timestamps, reopen,
 * --log-size-max).  The monitor is not linked into the daemon, so its
 * sources are compiled into this test directly; the process-level
 * behaviour is tests/integration/test_conmon.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "conmon/util.c"
#include "conmon/crilog.c"
#include "conmon/oom.c"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *
escape(const char *in, size_t len)
{
  char *out = cm_xmalloc(6 * len + 1);
  cm_json_escape(out, in, len);
  return out;
}

static void
test_json_escape(void **state)
{
  char *s;

  s = escape("say \"hi\"\\ \n\t\r", 13);
  assert_string_equal(s, "say \\\"hi\\\"\\\\ \\n\\t\\r");
  free(s);
  s = escape("\x01\x1f\x7f", 3);
  assert_string_equal(s, "\\u0001\\u001f\\u007f");
  free(s);
  /* Valid UTF-8 passes through; a stray byte, an overlong form and a
   * truncated sequence become U+FFFD. */
  s = escape("caf\xc3\xa9 \xe2\x82\xac", 9);
  assert_string_equal(s, "caf\xc3\xa9 \xe2\x82\xac");
  free(s);
  s = escape("a\xff"
             "b\xc0\xaf"
             "c\xe2\x82",
             8);
  assert_string_equal(s, "a\\ufffdb\\ufffd\\ufffdc\\ufffd\\ufffd");
  free(s);
  /* An embedded NUL is data, not the end. */
  s = escape("a\0b", 3);
  assert_string_equal(s, "a\\u0000b");
  free(s);
}

static void
test_sync_message(void **state)
{
  char *s = cm_sync_message(1234, NULL, 0);
  assert_string_equal(s, "{\"pid\": 1234}\n");
  free(s);
  s = cm_sync_message(-1, "no \"such\" file\n", 15);
  assert_string_equal(s, "{\"pid\": -1, \"message\": \"no \\\"such\\\" file\\n\"}\n");
  free(s);
}

static void
test_ctl_parse(void **state)
{
  unsigned h = 0, w = 0;

  assert_int_equal(cm_ctl_parse("1 40 100", &h, &w), 1);
  assert_int_equal(h, 40);
  assert_int_equal(w, 100);
  assert_int_equal(cm_ctl_parse("1 0 0 ", &h, &w), 1);
  assert_int_equal(cm_ctl_parse("2", &h, &w), 2);
  assert_int_equal(cm_ctl_parse("2 0 0", &h, &w), 2);
  assert_int_equal(cm_ctl_parse("1 40", &h, &w), -1);
  assert_int_equal(cm_ctl_parse("1 40 100 7", &h, &w), -1);
  assert_int_equal(cm_ctl_parse("1 a b", &h, &w), -1);
  assert_int_equal(cm_ctl_parse("1 70000 10", &h, &w), -1);
  assert_int_equal(cm_ctl_parse("3 1 1", &h, &w), -1);
  assert_int_equal(cm_ctl_parse("12", &h, &w), -1);
  assert_int_equal(cm_ctl_parse("", &h, &w), -1);
}

static void
test_keyed_value(void **state)
{
  const char *v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
  const char *v2 = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n";

  assert_int_equal(cm_keyed_value(v1, "oom_kill"), 3);
  assert_int_equal(cm_keyed_value(v1, "under_oom"), 0);
  assert_int_equal(cm_keyed_value(v2, "oom_kill"), 1);
  assert_int_equal(cm_keyed_value(v2, "oom"), 2);
  assert_int_equal(cm_keyed_value(v2, "missing"), -1);
}

static void
test_cgroup_memory_path(void **state)
{
  bool v2 = true;
  char *p;

  p = cm_cgroup_memory_path("5:cpu,cpuacct:/a\n4:memory:/kube/pod1/c1\n0::/x\n", &v2);
  assert_string_equal(p, "/kube/pod1/c1");
  assert_false(v2);
  free(p);
  p = cm_cgroup_memory_path("3:blkio,memory:/m\n", &v2);
  assert_string_equal(p, "/m");
  free(p);
  p = cm_cgroup_memory_path("0::/kubepods.slice/c.scope\n", &v2);
  assert_string_equal(p, "/kubepods.slice/c.scope");
  assert_true(v2);
  free(p);
  /* "memoryx" is not memory; no memory at all is NULL. */
  assert_null(cm_cgroup_memory_path("2:memoryx:/a\n1:name=systemd:/b", &v2));
}

/* ---- the log writer ---- */

struct log_fixture
{
  char dir[64];
  char path[96];
  struct cm_log log;
};

static int
log_setup(void **state)
{
  struct log_fixture *f = calloc(1, sizeof(*f));

  strcpy(f->dir, "/tmp/crid-unit-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->path, sizeof(f->path), "%s/c.log", f->dir);
  assert_int_equal(cm_log_open(&f->log, f->path, 0), 0);
  *state = f;
  return 0;
}

static int
log_teardown(void **state)
{
  struct log_fixture *f = *state;
  char cmd[128];

  cm_log_close(&f->log, false);
  snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

static char *
slurp(const char *path, size_t *len)
{
  struct stat st;
  char *buf;
  int fd = open(path, O_RDONLY);

  assert_true(fd >= 0);
  assert_int_equal(fstat(fd, &st), 0);
  buf = cm_xmalloc(st.st_size + 1);
  assert_int_equal(read(fd, buf, st.st_size), st.st_size);
  buf[st.st_size] = '\0';
  close(fd);
  *len = st.st_size;
  return buf;
}

/* The log text with every 35-byte timestamp replaced by "T". */
static char *
log_without_stamps(const char *path)
{
  size_t len;
  char *text = slurp(path, &len), *out = cm_xmalloc(len + 1), *o = out;

  for (char *line = text; *line;)
    {
      char *eol = strchr(line, '\n');
      assert_non_null(eol);
      assert_true(eol - line > 35);
      assert_int_equal(line[35], ' ');
      *o++ = 'T';
      memcpy(o, line + 35, eol + 1 - (line + 35));
      o += eol + 1 - (line + 35);
      line = eol + 1;
    }
  *o = '\0';
  free(text);
  return out;
}

static const struct timespec t0 = { 1700000000, 5 };

static void
test_log_full_and_partial_records(void **state)
{
  struct log_fixture *f = *state;
  char *text;

  cm_log_chunk(&f->log, CM_STDOUT, "one\ntwo\nthr", 11, &t0);
  cm_log_chunk(&f->log, CM_STDERR, "oops\n", 5, &t0);
  cm_log_chunk(&f->log, CM_STDOUT, "ee\n\n", 4, &t0);
  text = log_without_stamps(f->path);
  assert_string_equal(text, "T stdout F one\n"
                            "T stdout F two\n"
                            "T stdout P thr\n"
                            "T stderr F oops\n"
                            "T stdout F ee\n"
                            "T stdout F \n");
  free(text);
}

static void
test_log_long_line_splits_at_read_size(void **state)
{
  struct log_fixture *f = *state;
  size_t n = 2 * CM_READ_SIZE + 10, len;
  char *data = cm_xmalloc(n + 1), *text;
  char expect[64];

  memset(data, 'x', n);
  data[n] = '\n';
  cm_log_chunk(&f->log, CM_STDOUT, data, n + 1, &t0);
  text = slurp(f->path, &len);
  /* P (64 KiB), P (64 KiB), F (10 bytes + newline). */
  assert_int_equal(len, 3 * (35 + 10) + n + 1 + 2);
  assert_memory_equal(text + 35, " stdout P xxx", 13);
  assert_int_equal(text[35 + 10 + CM_READ_SIZE], '\n');
  snprintf(expect, sizeof(expect), " stdout F %s\n", "xxxxxxxxxx");
  assert_string_equal(text + len - strlen(expect), expect);
  free(text);
  free(data);
}

static void
test_log_timestamp_format(void **state)
{
  struct cm_log log = { .stamp_second = -1 };
  struct timespec t = { 1700000000, 123456789 }; /* 2023-11-14T22:13:20Z */
  char out[64];

  setenv("TZ", "UTC0", 1);
  tzset();
  cm_log_timestamp(&log, &t, out);
  assert_string_equal(out, "2023-11-14T22:13:20.123456789+00:00");
  setenv("TZ", "IST-5:30", 1);
  tzset();
  log.stamp_second = -1;
  t.tv_nsec = 7;
  cm_log_timestamp(&log, &t, out);
  assert_string_equal(out, "2023-11-15T03:43:20.000000007+05:30");
  setenv("TZ", "EST5", 1);
  tzset();
  log.stamp_second = -1;
  cm_log_timestamp(&log, &t, out);
  assert_string_equal(out, "2023-11-14T17:13:20.000000007-05:00");
  /* Within the same second only the fraction is recomputed. */
  t.tv_nsec = 999999999;
  cm_log_timestamp(&log, &t, out);
  assert_string_equal(out, "2023-11-14T17:13:20.999999999-05:00");
  unsetenv("TZ");
  tzset();
}

static void
test_log_reopen_creates_new_file(void **state)
{
  struct log_fixture *f = *state;
  char rotated[128], *text;

  cm_log_chunk(&f->log, CM_STDOUT, "before\n", 7, &t0);
  snprintf(rotated, sizeof(rotated), "%s.1", f->path);
  assert_int_equal(rename(f->path, rotated), 0);
  assert_int_equal(cm_log_reopen(&f->log), 0);
  assert_int_equal(access(f->path, F_OK), 0);
  cm_log_chunk(&f->log, CM_STDOUT, "after\n", 6, &t0);
  text = log_without_stamps(f->path);
  assert_string_equal(text, "T stdout F after\n");
  free(text);
  text = log_without_stamps(rotated);
  assert_string_equal(text, "T stdout F before\n");
  free(text);
}

static void
test_log_size_max_starts_over(void **state)
{
  struct log_fixture *f = *state;
  size_t len;
  char *text;

  f->log.size_max = 100; /* two 47-byte records fit, the third does not */
  cm_log_chunk(&f->log, CM_STDOUT, "a\n", 2, &t0);
  cm_log_chunk(&f->log, CM_STDOUT, "b\n", 2, &t0);
  text = slurp(f->path, &len);
  assert_int_equal(len, 2 * 47);
  free(text);
  cm_log_chunk(&f->log, CM_STDOUT, "c\n", 2, &t0);
  text = log_without_stamps(f->path);
  assert_string_equal(text, "T stdout F c\n");
  free(text);
}

static void
test_write_file_atomic(void **state)
{
  char dir[] = "/tmp/crid-unit-XXXXXX", path[64], tmp[64], *text;
  size_t len;

  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/exit", dir);
  snprintf(tmp, sizeof(tmp), "%s/.exit.tmp", dir);
  assert_int_equal(cm_write_file_atomic(path, "137", 3, 0644), 0);
  text = slurp(path, &len);
  assert_string_equal(text, "137");
  free(text);
  assert_int_equal(access(tmp, F_OK), -1);
  unlink(path);
  rmdir(dir);
  assert_int_equal(cm_write_file_atomic(path, "1", 1, 0644), -1);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_json_escape),
    cmocka_unit_test(test_sync_message),
    cmocka_unit_test(test_ctl_parse),
    cmocka_unit_test(test_keyed_value),
    cmocka_unit_test(test_cgroup_memory_path),
    cmocka_unit_test_setup_teardown(test_log_full_and_partial_records, log_setup, log_teardown),
    cmocka_unit_test_setup_teardown(test_log_long_line_splits_at_read_size, log_setup,
                                    log_teardown),
    cmocka_unit_test(test_log_timestamp_format),
    cmocka_unit_test_setup_teardown(test_log_reopen_creates_new_file, log_setup, log_teardown),
    cmocka_unit_test_setup_teardown(test_log_size_max_starts_over, log_setup, log_teardown),
    cmocka_unit_test(test_write_file_atomic),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
