/* Unit tests of the pure parts of the stats calls: the CPU rate window
 * (pod/stats.h: first sample, the rate between samples, close samples
 * measured from the older one, counter resets, readers racing), the sum of a pod's cgroups,
 * /proc/<pid>/net/dev parsing (pod/net_dev.h) over the fixtures in tests/fixtures/net (a pod's
 * namespace, many interfaces without eth0 and a name that touches its
 * first counter, loopback only) and garbage, and the bounded `du` of a
 * writable layer (pod/disk_usage.h) over a tree made in a temp dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/cleanup.h"
#include "common/error.h"
#include "common/util.h"
#include "pod/disk_usage.h"
#include "pod/net_dev.h"
#include "pod/stats.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S 1000000000LL
#define MS 1000000LL

static char *
fixture(const char *rel)
{
  const char *slash = strrchr(__FILE__, '/');
  int dir_len = slash ? (int)(slash - __FILE__) : 1;

  return xasprintf("%.*s/../fixtures/net/%s", dir_len, slash ? __FILE__ : ".", rel);
}

/* ---- CPU rate -------------------------------------------------------- */

static void
test_rate_needs_two_samples(void **state)
{
  struct stats_cpu_window w = { 0 };
  uint64_t rate = 42;

  (void)state;
  assert_false(stats_cpu_window_add(&w, 100 * S, 5 * S, &rate));
  assert_int_equal(rate, 42);
  /* One core for two seconds. */
  assert_true(stats_cpu_window_add(&w, 102 * S, 7 * S, &rate));
  assert_int_equal(rate, 1000000000);
  /* Half a core for four seconds. */
  assert_true(stats_cpu_window_add(&w, 106 * S, 9 * S, &rate));
  assert_int_equal(rate, 500000000);
}

static void
test_rate_close_samples_use_older(void **state)
{
  struct stats_cpu_window w = { 0 };
  uint64_t rate = 0;

  (void)state;
  assert_false(stats_cpu_window_add(&w, 10 * S, 0, &rate));
  /* 10 ms after the only sample: no rate over so short a time. */
  assert_false(stats_cpu_window_add(&w, 10 * S + 10 * MS, 10 * MS, &rate));
  assert_true(stats_cpu_window_add(&w, 12 * S, 2 * S, &rate));
  assert_int_equal(rate, 1000000000);
  /* 500 ms after the newest: the rate since the older one (10 s), 2.5 s
   * of CPU over 2.5 s, and the sample is not kept... */
  assert_true(stats_cpu_window_add(&w, 12 * S + 500 * MS, 2 * S + 500 * MS, &rate));
  assert_int_equal(rate, 1000000000);
  /* ...so the next rate is still from the 12 s sample: 0.5 s over 2 s. */
  assert_true(stats_cpu_window_add(&w, 14 * S, 2 * S + 500 * MS, &rate));
  assert_int_equal(rate, 250000000);
}

static void
test_rate_resets(void **state)
{
  struct stats_cpu_window w = { 0 };
  uint64_t rate = 0;

  (void)state;
  assert_false(stats_cpu_window_add(&w, 10 * S, 5 * S, &rate));
  assert_true(stats_cpu_window_add(&w, 11 * S, 5 * S + 250 * MS, &rate));
  assert_int_equal(rate, 250000000);
  /* The counter went back (a cgroup made anew): start over. */
  assert_false(stats_cpu_window_add(&w, 12 * S, 1 * S, &rate));
  assert_int_equal(w.kept, 1);
  assert_true(stats_cpu_window_add(&w, 14 * S, 2 * S, &rate));
  assert_int_equal(rate, 500000000);
  /* A sample that is not later than the newest (a reading that began
   * before it) is measured from the older one (12 s) and not kept. */
  assert_true(stats_cpu_window_add(&w, 13 * S, 1 * S + 500 * MS, &rate));
  assert_int_equal(rate, 500000000);
  assert_int_equal(w.kept, 2);
  assert_true(w.newer_ns == 14 * S && w.newer_usage == 2 * S);
  /* Not later than the newest, and less than a second after the older
   * one: no rate. */
  assert_false(stats_cpu_window_add(&w, 12 * S + 500 * MS, 1 * S, &rate));
  assert_true(w.older_ns == 12 * S && w.newer_ns == 14 * S);
}

static void
test_rate_racing_readers(void **state)
{
  struct stats_cpu_window w = { 0 };
  uint64_t rate = 0;

  (void)state;
  assert_false(stats_cpu_window_add(&w, 10 * S, 0, &rate));
  assert_true(stats_cpu_window_add(&w, 12 * S, 2 * S, &rate));
  /* A reader that began at 11.5 s adds its sample after the 12 s one:
   * measured from 10 s (1.5 s of CPU in 1.5 s), the window kept. */
  assert_true(stats_cpu_window_add(&w, 11 * S + 500 * MS, 1 * S + 500 * MS, &rate));
  assert_int_equal(rate, 1000000000);
  assert_true(w.older_ns == 10 * S && w.newer_ns == 12 * S);
  /* One less than a second after the older sample: no rate. */
  assert_false(stats_cpu_window_add(&w, 10 * S + 500 * MS, 500 * MS, &rate));
  /* The next one in order goes on from 12 s. */
  assert_true(stats_cpu_window_add(&w, 13 * S, 2 * S + 500 * MS, &rate));
  assert_int_equal(rate, 500000000);
}

static void
test_rate_rounding_and_idle(void **state)
{
  struct stats_cpu_window w = { 0 };
  uint64_t rate = 7;

  (void)state;
  assert_false(stats_cpu_window_add(&w, 1 * S, 1000, &rate));
  assert_true(stats_cpu_window_add(&w, 4 * S, 1000, &rate));
  assert_int_equal(rate, 0);
  /* 1 ns of CPU over 3 s: 0.33 nanocores, rounded to 0; 2 ns over 1 s: 2. */
  assert_true(stats_cpu_window_add(&w, 7 * S, 1001, &rate));
  assert_int_equal(rate, 0);
  assert_true(stats_cpu_window_add(&w, 8 * S, 1003, &rate));
  assert_int_equal(rate, 2);
  /* Sixteen cores busy. */
  assert_true(stats_cpu_window_add(&w, 10 * S, 1003 + 32 * S, &rate));
  assert_int_equal(rate, 16000000000ULL);
}

/* ---- Pod cgroup sums ------------------------------------------------- */

#define SUMMED                                                                                     \
  (CGROUP_STAT_CPU_USAGE | CGROUP_STAT_CPU_USER | CGROUP_STAT_CPU_SYSTEM | CGROUP_STAT_MEM_USAGE   \
   | CGROUP_STAT_MEM_WORKING_SET | CGROUP_STAT_MEM_RSS | CGROUP_STAT_MEM_PAGE_FAULTS               \
   | CGROUP_STAT_MEM_MAJOR_PAGE_FAULTS | CGROUP_STAT_MEM_SWAP_USAGE | CGROUP_STAT_MEM_OOM_KILL     \
   | CGROUP_STAT_PIDS_CURRENT)

static struct cgroup_stats
part(uint64_t base, uint32_t present)
{
  struct cgroup_stats s = { .present = present };

  s.cpu.usage_ns = base;
  s.cpu.user_ns = base / 2;
  s.memory.usage_bytes = base * 10;
  s.memory.working_set_bytes = base * 5;
  s.memory.limit_bytes = 999;
  s.pids.current = base;
  s.psi.cpu.present = true;
  return s;
}

static void
test_cgroup_sum(void **state)
{
  struct cgroup_stats sum = { .present = SUMMED };
  struct cgroup_stats a = part(100, SUMMED | CGROUP_STAT_MEM_LIMIT);
  struct cgroup_stats b = part(20, SUMMED & ~CGROUP_STAT_MEM_RSS);

  (void)state;
  stats_cgroup_add(&sum, &a);
  stats_cgroup_add(&sum, &b);
  assert_int_equal(sum.cpu.usage_ns, 120);
  assert_int_equal(sum.cpu.user_ns, 60);
  assert_int_equal(sum.memory.usage_bytes, 1200);
  assert_int_equal(sum.memory.working_set_bytes, 600);
  assert_int_equal(sum.pids.current, 120);
  /* rss is missing from one part: not present, and 0. */
  assert_false(cgroup_stats_has(&sum, CGROUP_STAT_MEM_RSS));
  assert_int_equal(sum.memory.rss_bytes, 0);
  /* Limits and pressure do not add up. */
  assert_false(cgroup_stats_has(&sum, CGROUP_STAT_MEM_LIMIT));
  assert_int_equal(sum.memory.limit_bytes, 0);
  assert_false(sum.psi.cpu.present);
  assert_true(cgroup_stats_has(&sum, CGROUP_STAT_CPU_USAGE | CGROUP_STAT_PIDS_CURRENT));
}

/* ---- /proc/<pid>/net/dev --------------------------------------------- */

static void
parse_fixture(const char *name, struct net_dev_interface **list, size_t *n)
{
  cleanup_free char *path = fixture(name);
  cleanup_free char *text = NULL;
  struct error err = ERROR_INIT;
  size_t len;

  assert_int_equal(read_file(path, 1 << 20, &text, &len, &err), 0);
  if (net_dev_parse(text, list, n, &err) < 0)
    fail_msg("%s: %s", name, error_message(&err));
}

static void
test_net_dev_pod(void **state)
{
  cleanup_free struct net_dev_interface *list = NULL;
  size_t n;

  (void)state;
  parse_fixture("pod", &list, &n);
  assert_int_equal(n, 1); /* lo is left out */
  assert_string_equal(list[0].name, "eth0");
  assert_true(list[0].rx_bytes == 5368709120123ULL);
  assert_int_equal(list[0].rx_packets, 4100000);
  assert_int_equal(list[0].rx_errors, 3);
  assert_int_equal(list[0].rx_dropped, 7);
  assert_int_equal(list[0].tx_bytes, 987654321);
  assert_int_equal(list[0].tx_packets, 2000);
  assert_int_equal(list[0].tx_errors, 1);
  assert_int_equal(list[0].tx_dropped, 2);
  assert_int_equal(net_dev_default_index(list, n), 0);
}

static void
test_net_dev_many(void **state)
{
  cleanup_free struct net_dev_interface *list = NULL;
  size_t n;

  (void)state;
  parse_fixture("multi", &list, &n);
  assert_int_equal(n, 3);
  assert_string_equal(list[0].name, "net1");
  assert_string_equal(list[1].name, "averylongifname");
  assert_true(list[1].rx_bytes == 123456789012ULL);
  assert_int_equal(list[1].rx_errors, 4);
  assert_int_equal(list[1].tx_dropped, 9);
  assert_string_equal(list[2].name, "net2");
  assert_int_equal(list[2].tx_bytes, 40);
  /* No eth0: the first one. */
  assert_int_equal(net_dev_default_index(list, n), 0);
  strcpy(list[2].name, "eth0");
  assert_int_equal(net_dev_default_index(list, n), 2);
}

static void
test_net_dev_loopback_only(void **state)
{
  struct net_dev_interface *list = (void *)1;
  size_t n = 9;

  (void)state;
  parse_fixture("lo-only", &list, &n);
  assert_int_equal(n, 0);
  assert_null(list);
  assert_int_equal(net_dev_default_index(NULL, 0), 0);
}

static void
expect_bad(const char *text, int code)
{
  struct net_dev_interface *list = NULL;
  struct error err = ERROR_INIT;
  size_t n = 0;

  if (net_dev_parse(text, &list, &n, &err) == 0)
    fail_msg("accepted %s", text);
  assert_int_equal(err.code, code);
  assert_null(list);
  error_clear(&err);
}

static void
test_net_dev_garbage(void **state)
{
  const char *hdr = "h1\nh2\n";
  cleanup_free char *fifteen = xasprintf("%s eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n", hdr);
  cleanup_free char *seventeen
      = xasprintf("%s eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n", hdr);
  cleanup_free char *no_colon = xasprintf("%s eth0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", hdr);
  cleanup_free char *negative
      = xasprintf("%s eth0: -1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", hdr);
  cleanup_free char *overflow
      = xasprintf("%s eth0: 99999999999999999999 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", hdr);
  cleanup_free char *long_name
      = xasprintf("%s averyveryverylongname: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", hdr);
  cleanup_free char *no_name = xasprintf("%s : 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", hdr);
  cleanup_free char *letters = xasprintf("%s eth0: 1 2 3 x 5 6 7 8 9 10 11 12 13 14 15 16\n", hdr);

  (void)state;
  expect_bad("", EINVAL);
  expect_bad("only one header line", EINVAL);
  expect_bad(fifteen, EINVAL);
  expect_bad(seventeen, EINVAL);
  expect_bad(no_colon, EINVAL);
  expect_bad(negative, EINVAL);
  expect_bad(overflow, EINVAL);
  expect_bad(long_name, EINVAL);
  expect_bad(no_name, EINVAL);
  expect_bad(letters, EINVAL);
}

static void
test_net_dev_no_trailing_newline(void **state)
{
  cleanup_free struct net_dev_interface *list = NULL;
  struct error err = ERROR_INIT;
  size_t n;

  (void)state;
  assert_int_equal(
      net_dev_parse("h1\nh2\n  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16", &list, &n, &err), 0);
  assert_int_equal(n, 1);
  assert_int_equal(list[0].tx_bytes, 9);
  assert_int_equal(list[0].tx_dropped, 12);
}

/* ---- Writable layer usage -------------------------------------------- */

static void
write_bytes(const char *path, size_t len)
{
  cleanup_free char *data = xcalloc(1, len ? len : 1);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

  assert_true(fd >= 0);
  memset(data, 'x', len);
  assert_int_equal(write_all(fd, data, len), 0);
  assert_int_equal(fsync(fd), 0);
  close(fd);
}

static uint64_t
blocks_of(const char *path)
{
  struct stat st;
  assert_int_equal(lstat(path, &st), 0);
  return (uint64_t)st.st_blocks * 512;
}

static void
test_disk_usage(void **state)
{
  char dir[] = "/tmp/crid-test-du-XXXXXX";
  cleanup_free char *sub = NULL, *deep = NULL, *file = NULL, *hard = NULL, *sym = NULL;
  cleanup_free char *empty = NULL, *sparse = NULL, *cmd = NULL;
  struct disk_usage usage;
  struct error err = ERROR_INIT;
  uint64_t expected;
  int fd;

  (void)state;
  assert_non_null(mkdtemp(dir));
  sub = xasprintf("%s/sub", dir);
  deep = xasprintf("%s/sub/deep", dir);
  file = xasprintf("%s/sub/deep/big", dir);
  hard = xasprintf("%s/hardlink", dir);
  sym = xasprintf("%s/symlink", dir);
  empty = xasprintf("%s/empty", dir);
  sparse = xasprintf("%s/sparse", dir);
  assert_int_equal(mkdir(sub, 0755), 0);
  assert_int_equal(mkdir(deep, 0755), 0);
  write_bytes(file, 3 * 1024 * 1024);
  assert_int_equal(link(file, hard), 0);
  assert_int_equal(symlink("/etc", sym), 0); /* not followed */
  write_bytes(empty, 0);
  fd = open(sparse, O_WRONLY | O_CREAT, 0644);
  assert_int_equal(ftruncate(fd, 1LL << 30), 0); /* 1 GiB, no blocks */
  close(fd);

  assert_int_equal(disk_usage_measure(dir, 1000, NULL, &usage, &err), 0);
  /* dir, sub, deep, big (once despite its two names), symlink, empty,
   * sparse. */
  assert_int_equal(usage.inodes_used, 7);
  expected = blocks_of(dir) + blocks_of(sub) + blocks_of(deep) + blocks_of(file) + blocks_of(sym)
             + blocks_of(empty) + blocks_of(sparse);
  assert_true(usage.used_bytes == expected);
  assert_true(usage.used_bytes >= 3 * 1024 * 1024);
  assert_true(usage.used_bytes < 4 * 1024 * 1024);
  assert_false(usage.partial);

  /* Bounded: cut after three entries, a lower bound, and said so. */
  assert_int_equal(disk_usage_measure(dir, 3, NULL, &usage, &err), 0);
  assert_true(usage.partial);
  assert_true(usage.inodes_used <= 3);

  /* A stop request ends the walk at once. */
  {
    atomic_bool stop = true;
    assert_int_equal(disk_usage_measure(dir, 1000, &stop, &usage, &err), 0);
    assert_true(usage.partial);
  }

  cmd = xasprintf("rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
  assert_int_equal(disk_usage_measure(dir, 1000, NULL, &usage, &err), -1);
  assert_int_equal(err.code, ENOENT);
  error_clear(&err);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_rate_needs_two_samples),
    cmocka_unit_test(test_rate_close_samples_use_older),
    cmocka_unit_test(test_rate_resets),
    cmocka_unit_test(test_rate_racing_readers),
    cmocka_unit_test(test_rate_rounding_and_idle),
    cmocka_unit_test(test_cgroup_sum),
    cmocka_unit_test(test_net_dev_pod),
    cmocka_unit_test(test_net_dev_many),
    cmocka_unit_test(test_net_dev_loopback_only),
    cmocka_unit_test(test_net_dev_garbage),
    cmocka_unit_test(test_net_dev_no_trailing_newline),
    cmocka_unit_test(test_disk_usage),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
