/* Unit tests of pod/cgroup_stats: every field read from the cgroup v1 and
 * v2 fixture trees of tests/fixtures/cgroup (written in the kernels'
 * formats; v1/real is copied from a live v1 cgroup and its cgroup2
 * directory), the derived working set and available memory with their
 * floors, "no limit", missing files and directories, garbage and
 * oversized files, where the v1 directories of a cgroup are found, and
 * the handles: only the files wanted read, missing files remembered, a
 * removed or replaced directory noticed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/cleanup.h"
#include "common/error.h"
#include "common/util.h"
#include "pod/cgroup.h"
#include "pod/cgroup_stats.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ALL_CPU                                                                                    \
  (CGROUP_STAT_CPU_USAGE | CGROUP_STAT_CPU_USER | CGROUP_STAT_CPU_SYSTEM                           \
   | CGROUP_STAT_CPU_NR_PERIODS | CGROUP_STAT_CPU_NR_THROTTLED | CGROUP_STAT_CPU_THROTTLED)
#define ALL_MEMORY                                                                                 \
  (CGROUP_STAT_MEM_USAGE | CGROUP_STAT_MEM_WORKING_SET | CGROUP_STAT_MEM_RSS                       \
   | CGROUP_STAT_MEM_PAGE_FAULTS | CGROUP_STAT_MEM_MAJOR_PAGE_FAULTS | CGROUP_STAT_MEM_LIMIT       \
   | CGROUP_STAT_MEM_AVAILABLE | CGROUP_STAT_MEM_SWAP_USAGE | CGROUP_STAT_MEM_SWAP_LIMIT           \
   | CGROUP_STAT_MEM_OOM_KILL)
#define ALL_PIDS (CGROUP_STAT_PIDS_CURRENT | CGROUP_STAT_PIDS_MAX)

/* `make unit` runs from the repository root and compiles this file as
 * tests/unit/test_cgroup_stats.c, so the fixtures are found from
 * __FILE__ (also when it is absolute). */
static char *
fixture(const char *rel)
{
  const char *slash = strrchr(__FILE__, '/');
  int dir_len = slash ? (int)(slash - __FILE__) : 1;

  return xasprintf("%.*s/../fixtures/cgroup/%s", dir_len, slash ? __FILE__ : ".", rel);
}

static uint64_t
ticks_ns(uint64_t ticks)
{
  long hz = sysconf(_SC_CLK_TCK);

  assert_true(hz > 0 && 1000000000 % hz == 0);
  return ticks * (uint64_t)(1000000000 / hz);
}

static void
read_v2_ok(const char *rel, struct cgroup_stats *stats)
{
  cleanup_free char *dir = fixture(rel);
  struct error err = ERROR_INIT;

  if (cgroup_stats_read_v2(dir, stats, &err) < 0)
    fail_msg("%s: %s", rel, error_message(&err));
  assert_true(stats->timestamp_ns > 0);
}

/* v1 directories under fixture rel, named after the controllers; NULL
 * names stay NULL. */
static void
v1_dirs(const char *rel, const char *cpu, const char *cpuacct, const char *memory, const char *pids,
        const char *unified, struct cgroup_v1_dirs *dirs)
{
  const char *names[] = { cpu, cpuacct, memory, pids, unified };
  char **fields[] = { &dirs->cpu, &dirs->cpuacct, &dirs->memory, &dirs->pids, &dirs->unified };

  for (size_t i = 0; i < 5; i++)
    {
      cleanup_free char *sub = names[i] ? xasprintf("%s/%s", rel, names[i]) : NULL;
      *fields[i] = sub ? fixture(sub) : NULL;
    }
}

static void
read_v1_ok(struct cgroup_v1_dirs *dirs, struct cgroup_stats *stats)
{
  struct error err = ERROR_INIT;

  if (cgroup_stats_read_v1(dirs, stats, &err) < 0)
    fail_msg("%s", error_message(&err));
  assert_true(stats->timestamp_ns > 0);
  cgroup_v1_dirs_clear(dirs);
  assert_null(dirs->memory);
}

static void
expect_psi(const struct cgroup_psi_data *psi, double avg10, double avg60, double avg300,
           uint64_t total_us)
{
  assert_float_equal(psi->avg10, avg10, 1e-9);
  assert_float_equal(psi->avg60, avg60, 1e-9);
  assert_float_equal(psi->avg300, avg300, 1e-9);
  assert_int_equal(psi->total_us, total_us);
}

static void
test_v2_container(void **state)
{
  struct cgroup_stats s;

  read_v2_ok("v2/container", &s);
  assert_int_equal(s.present, ALL_CPU | ALL_MEMORY | ALL_PIDS);
  /* cpu.stat: microseconds to nanoseconds. */
  assert_int_equal(s.cpu.usage_ns, 8234567000);
  assert_int_equal(s.cpu.user_ns, 6123456000);
  assert_int_equal(s.cpu.system_ns, 2111111000);
  assert_int_equal(s.cpu.nr_periods, 1520);
  assert_int_equal(s.cpu.nr_throttled, 37);
  assert_int_equal(s.cpu.throttled_ns, 912345000);
  assert_int_equal(s.memory.usage_bytes, 104857600);
  /* memory.current - inactive_file = 104857600 - 20971520. */
  assert_int_equal(s.memory.working_set_bytes, 83886080);
  assert_int_equal(s.memory.rss_bytes, 52428800); /* anon */
  assert_int_equal(s.memory.page_faults, 123456);
  assert_int_equal(s.memory.major_page_faults, 789);
  assert_int_equal(s.memory.limit_bytes, 268435456);
  assert_int_equal(s.memory.available_bytes, 268435456 - 83886080);
  assert_int_equal(s.memory.swap_usage_bytes, 1048576);
  assert_int_equal(s.memory.swap_limit_bytes, 536870912);
  assert_int_equal(s.memory.oom_kill, 1);
  assert_int_equal(s.pids.current, 7);
  assert_int_equal(s.pids.max, 1024);
  assert_true(s.psi.cpu.present && s.psi.cpu.full_present);
  expect_psi(&s.psi.cpu.some, 1.53, 0.87, 0.21, 4518123);
  expect_psi(&s.psi.cpu.full, 0.40, 0.12, 0.03, 1203321);
  assert_true(s.psi.memory.present && s.psi.memory.full_present);
  expect_psi(&s.psi.memory.some, 0, 0.05, 0.01, 88211);
  expect_psi(&s.psi.memory.full, 0, 0.02, 0, 40102);
  assert_true(s.psi.io.present && s.psi.io.full_present);
  expect_psi(&s.psi.io.some, 12.5, 7.25, 2, 99000123);
  expect_psi(&s.psi.io.full, 10.01, 6.66, 1.99, 81234567);
}

static void
test_v2_unlimited(void **state)
{
  struct cgroup_stats s;

  read_v2_ok("v2/unlimited", &s);
  /* No cpu controller: cpu.stat has only the usage keys. */
  assert_int_equal(s.present & ALL_CPU,
                   CGROUP_STAT_CPU_USAGE | CGROUP_STAT_CPU_USER | CGROUP_STAT_CPU_SYSTEM);
  assert_int_equal(s.cpu.usage_ns, 500000000);
  assert_int_equal(s.cpu.user_ns, 300000000);
  assert_int_equal(s.cpu.system_ns, 200000000);
  assert_int_equal(s.cpu.nr_periods, 0);
  /* "max" is a present limit of 0, and then nothing is "available". */
  assert_true(cgroup_stats_has(&s, ALL_MEMORY | ALL_PIDS));
  assert_false(cgroup_stats_has(&s, CGROUP_STAT_MEM_NO_SWAP));
  assert_int_equal(s.memory.limit_bytes, 0);
  assert_int_equal(s.memory.available_bytes, 0);
  assert_int_equal(s.memory.usage_bytes, 8388608);
  assert_int_equal(s.memory.working_set_bytes, 8388608 - 2097152);
  assert_int_equal(s.memory.rss_bytes, 4194304);
  assert_int_equal(s.memory.page_faults, 3000);
  assert_int_equal(s.memory.major_page_faults, 0);
  assert_int_equal(s.memory.swap_usage_bytes, 0);
  assert_int_equal(s.memory.swap_limit_bytes, 0);
  assert_int_equal(s.memory.oom_kill, 0);
  assert_int_equal(s.pids.current, 1);
  assert_int_equal(s.pids.max, 0);
  /* A kernel before 5.13 has no "full" line in cpu.pressure; no
   * memory.pressure or io.pressure here at all. */
  assert_true(s.psi.cpu.present);
  assert_false(s.psi.cpu.full_present);
  expect_psi(&s.psi.cpu.some, 0, 0, 0, 0);
  assert_false(s.psi.memory.present);
  assert_false(s.psi.io.present);
}

static void
test_v2_working_set_floor(void **state)
{
  struct cgroup_stats s;

  /* inactive_file (5000000) above memory.current (4096000). */
  read_v2_ok("v2/floor", &s);
  assert_true(cgroup_stats_has(&s, CGROUP_STAT_MEM_WORKING_SET | CGROUP_STAT_MEM_AVAILABLE));
  assert_int_equal(s.memory.usage_bytes, 4096000);
  assert_int_equal(s.memory.working_set_bytes, 0);
  assert_int_equal(s.memory.available_bytes, 2000000);
  /* memory.swap.max "0": no swap at all, told apart from "max". */
  assert_true(cgroup_stats_has(&s, CGROUP_STAT_MEM_SWAP_LIMIT | CGROUP_STAT_MEM_NO_SWAP));
  assert_int_equal(s.memory.swap_limit_bytes, 0);
  assert_int_equal(s.memory.page_faults, 10);
  assert_int_equal(s.memory.major_page_faults, 1);
  /* Only memory files here. */
  assert_int_equal(s.present & (ALL_CPU | ALL_PIDS | CGROUP_STAT_MEM_OOM_KILL), 0);
  assert_false(s.psi.cpu.present || s.psi.memory.present || s.psi.io.present);
}

static void
test_v2_available_floor_and_missing_files(void **state)
{
  struct cgroup_stats s;

  /* Working set 60000000 above the 50000000 limit: available is 0. */
  read_v2_ok("v2/over-limit", &s);
  assert_int_equal(s.present, CGROUP_STAT_MEM_USAGE | CGROUP_STAT_MEM_WORKING_SET
                                  | CGROUP_STAT_MEM_RSS | CGROUP_STAT_MEM_LIMIT
                                  | CGROUP_STAT_MEM_AVAILABLE);
  assert_int_equal(s.memory.working_set_bytes, 60000000);
  assert_int_equal(s.memory.available_bytes, 0);
  assert_int_equal(s.memory.rss_bytes, 59000000);
  /* Fields whose files are missing are 0. */
  assert_int_equal(s.cpu.usage_ns, 0);
  assert_int_equal(s.memory.swap_usage_bytes, 0);
  assert_int_equal(s.memory.page_faults, 0);
  assert_int_equal(s.pids.current, 0);
}

static void
test_v2_real(void **state)
{
  struct cgroup_stats s;

  /* The cgroup2 directory of a live cgroup on a hybrid host (no
   * controllers): CPU usage and PSI only. */
  read_v2_ok("v1/real/unified", &s);
  assert_int_equal(s.present,
                   CGROUP_STAT_CPU_USAGE | CGROUP_STAT_CPU_USER | CGROUP_STAT_CPU_SYSTEM);
  assert_int_equal(s.cpu.usage_ns, 550237000);
  assert_int_equal(s.cpu.user_ns, 509341000);
  assert_int_equal(s.cpu.system_ns, 40896000);
  assert_true(s.psi.cpu.present && s.psi.cpu.full_present);
  expect_psi(&s.psi.cpu.some, 0, 0, 0, 404483);
  expect_psi(&s.psi.cpu.full, 0, 0, 0, 404483);
  assert_true(s.psi.memory.present && s.psi.memory.full_present);
  expect_psi(&s.psi.memory.some, 0, 0, 0, 0);
  assert_true(s.psi.io.present && s.psi.io.full_present);
  expect_psi(&s.psi.io.some, 0, 0, 0, 20);
  expect_psi(&s.psi.io.full, 0, 0, 0, 20);
}

static void
test_v2_missing_directory(void **state)
{
  cleanup_free char *dir = fixture("v2/no-such-cgroup");
  cleanup_free char *file = fixture("v2/container/memory.max");
  struct cgroup_stats s = { .present = 0x1234 };
  struct error err = ERROR_INIT;

  assert_int_equal(cgroup_stats_read_v2(dir, &s, &err), -1);
  assert_int_equal(err.code, ENOENT);
  assert_non_null(strstr(err.message, "no-such-cgroup"));
  /* out is left alone on failure. */
  assert_int_equal(s.present, 0x1234);
  error_clear(&err);
  assert_int_equal(cgroup_stats_read_v2(file, &s, &err), -1);
  assert_int_equal(err.code, ENOTDIR);
  error_clear(&err);
}

static void
test_v1_container(void **state)
{
  struct cgroup_v1_dirs dirs;
  struct cgroup_stats s;

  /* cpu and cpuacct co-mounted: one directory for both. */
  v1_dirs("v1/container", "cpu,cpuacct", "cpu,cpuacct", "memory", "pids", "unified", &dirs);
  read_v1_ok(&dirs, &s);
  assert_int_equal(s.present, ALL_CPU | ALL_MEMORY | ALL_PIDS);
  assert_int_equal(s.cpu.usage_ns, 8234567890);   /* cpuacct.usage */
  assert_int_equal(s.cpu.user_ns, ticks_ns(612)); /* cpuacct.stat, USER_HZ ticks */
  assert_int_equal(s.cpu.system_ns, ticks_ns(211));
  assert_int_equal(s.cpu.nr_periods, 1520);
  assert_int_equal(s.cpu.nr_throttled, 37);
  assert_int_equal(s.cpu.throttled_ns, 912345678); /* throttled_time is in ns */
  assert_int_equal(s.memory.usage_bytes, 104857600);
  /* The total_ keys (the subtree), not this cgroup's own counts. */
  assert_int_equal(s.memory.working_set_bytes, 104857600 - 20971520);
  assert_int_equal(s.memory.rss_bytes, 52428800);
  assert_int_equal(s.memory.page_faults, 123456);
  assert_int_equal(s.memory.major_page_faults, 789);
  assert_int_equal(s.memory.limit_bytes, 268435456);
  assert_int_equal(s.memory.available_bytes, 268435456 - 83886080);
  /* memsw.usage - usage; memsw.limit - limit. */
  assert_int_equal(s.memory.swap_usage_bytes, 1048576);
  assert_int_equal(s.memory.swap_limit_bytes, 805306368 - 268435456);
  assert_false(cgroup_stats_has(&s, CGROUP_STAT_MEM_NO_SWAP));
  assert_int_equal(s.memory.oom_kill, 1);
  assert_int_equal(s.pids.current, 7);
  assert_int_equal(s.pids.max, 1024);
  /* A hybrid host's cgroup2 directory gives PSI. */
  assert_true(s.psi.cpu.present && s.psi.cpu.full_present);
  expect_psi(&s.psi.cpu.some, 25, 20.5, 9.75, 31000000);
  expect_psi(&s.psi.cpu.full, 0, 0, 0, 0);
  expect_psi(&s.psi.memory.some, 0, 0, 0, 120);
  expect_psi(&s.psi.memory.full, 0, 0, 0, 100);
  expect_psi(&s.psi.io.some, 0.1, 0.02, 0, 5400);
  expect_psi(&s.psi.io.full, 0.1, 0.02, 0, 5100);

  /* Without the cgroup2 directory: no PSI, the rest the same. */
  v1_dirs("v1/container", "cpu,cpuacct", "cpu,cpuacct", "memory", "pids", NULL, &dirs);
  read_v1_ok(&dirs, &s);
  assert_int_equal(s.present, ALL_CPU | ALL_MEMORY | ALL_PIDS);
  assert_false(s.psi.cpu.present || s.psi.memory.present || s.psi.io.present);
}

static void
test_v1_unlimited(void **state)
{
  struct cgroup_v1_dirs dirs;
  struct cgroup_stats s;

  /* No cpu hierarchy directory at all, cpuacct separate. */
  v1_dirs("v1/unlimited", "cpu", "cpuacct", "memory", "pids", NULL, &dirs);
  read_v1_ok(&dirs, &s);
  assert_int_equal(s.present & ALL_CPU,
                   CGROUP_STAT_CPU_USAGE | CGROUP_STAT_CPU_USER | CGROUP_STAT_CPU_SYSTEM);
  assert_int_equal(s.cpu.usage_ns, 1000000000);
  assert_int_equal(s.cpu.user_ns, ticks_ns(70));
  assert_int_equal(s.cpu.system_ns, ticks_ns(30));
  /* 9223372036854771712 is the kernel's "no limit". */
  assert_true(cgroup_stats_has(&s, ALL_MEMORY | ALL_PIDS));
  assert_false(cgroup_stats_has(&s, CGROUP_STAT_MEM_NO_SWAP));
  assert_int_equal(s.memory.limit_bytes, 0);
  assert_int_equal(s.memory.available_bytes, 0);
  assert_int_equal(s.memory.swap_limit_bytes, 0);
  assert_int_equal(s.memory.swap_usage_bytes, 0);
  assert_int_equal(s.memory.usage_bytes, 8388608);
  assert_int_equal(s.memory.working_set_bytes, 8388608 - 2097152);
  assert_int_equal(s.memory.rss_bytes, 6291456);
  assert_int_equal(s.memory.page_faults, 3000);
  assert_int_equal(s.memory.oom_kill, 0);
  assert_int_equal(s.pids.current, 1);
  assert_int_equal(s.pids.max, 0); /* "max" */
}

static void
test_v1_floor_and_old_kernel(void **state)
{
  struct cgroup_v1_dirs dirs;
  struct cgroup_stats s;

  v1_dirs("v1/floor", NULL, NULL, "memory", NULL, NULL, &dirs);
  read_v1_ok(&dirs, &s);
  /* total_inactive_file 5000000 above usage 4096000. */
  assert_int_equal(s.memory.working_set_bytes, 0);
  assert_int_equal(s.memory.available_bytes, 2000000);
  /* memsw limit equal to the memory limit: no swap.  memsw usage read a
   * moment after usage and below it: swap 0, not a wrap-around.  And
   * memory.oom_control without oom_kill (before Linux 4.13). */
  assert_int_equal(s.present, CGROUP_STAT_MEM_USAGE | CGROUP_STAT_MEM_WORKING_SET
                                  | CGROUP_STAT_MEM_RSS | CGROUP_STAT_MEM_PAGE_FAULTS
                                  | CGROUP_STAT_MEM_MAJOR_PAGE_FAULTS | CGROUP_STAT_MEM_LIMIT
                                  | CGROUP_STAT_MEM_AVAILABLE | CGROUP_STAT_MEM_SWAP_USAGE
                                  | CGROUP_STAT_MEM_SWAP_LIMIT | CGROUP_STAT_MEM_NO_SWAP);
  assert_int_equal(s.memory.swap_usage_bytes, 0);
  assert_int_equal(s.memory.swap_limit_bytes, 0);
  assert_int_equal(s.memory.rss_bytes, 100000);
}

static void
test_v1_real(void **state)
{
  struct cgroup_v1_dirs dirs;
  struct cgroup_stats s;

  /* Copied from a live v1 cgroup (Linux 6.18) holding a process that had
   * touched 64 MiB, written 16 MiB to a file and spun under a 50% CPU
   * quota, with a 256 MiB limit and 512 MiB memory+swap. */
  v1_dirs("v1/real", "cpu", "cpuacct", "memory", "pids", "unified", &dirs);
  read_v1_ok(&dirs, &s);
  assert_int_equal(s.present, ALL_CPU | ALL_MEMORY | ALL_PIDS);
  assert_int_equal(s.cpu.usage_ns, 533662865);
  assert_int_equal(s.cpu.user_ns, ticks_ns(49));
  assert_int_equal(s.cpu.system_ns, ticks_ns(4));
  assert_int_equal(s.cpu.nr_periods, 10);
  assert_int_equal(s.cpu.nr_throttled, 10);
  assert_int_equal(s.cpu.throttled_ns, 439978776);
  assert_int_equal(s.memory.usage_bytes, 84557824);
  assert_int_equal(s.memory.working_set_bytes, 84557824 - 16777216);
  assert_int_equal(s.memory.rss_bytes, 67141632);
  assert_int_equal(s.memory.page_faults, 20506);
  assert_int_equal(s.memory.major_page_faults, 0);
  assert_int_equal(s.memory.limit_bytes, 268435456);
  assert_int_equal(s.memory.available_bytes, 268435456 - (84557824 - 16777216));
  assert_int_equal(s.memory.swap_usage_bytes, 0);
  assert_int_equal(s.memory.swap_limit_bytes, 536870912 - 268435456);
  assert_int_equal(s.memory.oom_kill, 0);
  assert_int_equal(s.pids.current, 1);
  assert_int_equal(s.pids.max, 64);
  expect_psi(&s.psi.cpu.some, 0, 0, 0, 404483);
  expect_psi(&s.psi.io.full, 0, 0, 0, 20);
}

static void
test_v1_missing_directories(void **state)
{
  struct cgroup_v1_dirs dirs;
  struct cgroup_stats s;
  struct error err = ERROR_INIT;

  /* Nothing exists: the cgroup is gone. */
  v1_dirs("v1/no-such-cgroup", "cpu", "cpuacct", "memory", "pids", "unified", &dirs);
  assert_int_equal(cgroup_stats_read_v1(&dirs, &s, &err), -1);
  assert_int_equal(err.code, ENOENT);
  assert_non_null(strstr(err.message, "no-such-cgroup/memory"));
  error_clear(&err);
  cgroup_v1_dirs_clear(&dirs);
  assert_int_equal(cgroup_stats_read_v1(&dirs, &s, &err), -1);
  assert_int_equal(err.code, ENOENT);
  error_clear(&err);

  /* Only pids exists: the rest is off. */
  v1_dirs("v1/container", "no-cpu", "no-cpuacct", "no-memory", "pids", "no-unified", &dirs);
  read_v1_ok(&dirs, &s);
  assert_int_equal(s.present, ALL_PIDS);
  assert_false(s.psi.cpu.present);
}

struct garbage
{
  bool v1;
  const char *dir;
  const char *file;  /* the message names it */
  const char *shown; /* and quotes the bad text so */
};

static void
test_garbage(void **state)
{
  static const struct garbage cases[] = {
    { false, "v2/garbage-cpu-stat", "/cpu.stat: not a number", "\"usage_usec 12x34\"" },
    { false, "v2/garbage-memory-max", "/memory.max: not a number or \"max\"", "\"lots\"" },
    { false, "v2/garbage-memory-stat", "/memory.stat: not a \"key value\" line",
      "\"this is not a stat file\"" },
    { false, "v2/garbage-missing-value", "/memory.stat", "\"file\"" },
    { false, "v2/garbage-psi", "/cpu.pressure: not a pressure line", "\"some avg10=abc" },
    { false, "v2/garbage-psi-line", "/io.pressure", "\"half avg10=0.00" },
    { false, "v2/garbage-overflow", "/memory.current", "\"18446744073709551616\"" },
    { false, "v2/garbage-negative", "/pids.current", "\"-1\"" },
    { false, "v2/garbage-usec-overflow", "/cpu.stat: value out of range",
      "\"usage_usec 18446744073709552\"" },
    { false, "v2/garbage-control", "/memory.events", "\"high \\x1b[31m0\\x07\"" },
    { true, "v1/garbage-cpuacct-usage", "/cpuacct.usage", "\"-5\"" },
    { true, "v1/garbage-memory-stat", "/memory.stat", "\"total_rss twelve\"" },
    { true, "v1/garbage-oom-control", "/memory.oom_control", "\"oom_kill\"" },
    { true, "v1/garbage-ticks", "/cpuacct.stat: value out of range",
      "\"user 18446744073709551615\"" },
    { true, "v1/garbage-limit", "/memory.limit_in_bytes", "\"9223372036854771712 bytes\"" },
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      const struct garbage *g = &cases[i];
      struct cgroup_stats s = { .present = 0x1234 };
      struct error err = ERROR_INIT;
      int ret;

      if (g->v1)
        {
          struct cgroup_v1_dirs dirs;
          v1_dirs(g->dir, "cpu", "cpuacct", "memory", "pids", NULL, &dirs);
          ret = cgroup_stats_read_v1(&dirs, &s, &err);
          cgroup_v1_dirs_clear(&dirs);
        }
      else
        {
          cleanup_free char *dir = fixture(g->dir);
          ret = cgroup_stats_read_v2(dir, &s, &err);
        }
      if (ret == 0)
        fail_msg("%s: read without error", g->dir);
      if (err.code != EINVAL || !strstr(err.message, g->file) || !strstr(err.message, g->shown))
        fail_msg("%s: error %d \"%s\", want EINVAL naming %s and showing %s", g->dir, err.code,
                 err.message, g->file, g->shown);
      assert_int_equal(s.present, 0x1234);
      error_clear(&err);
    }
}

static char *
make_temp_dir(void)
{
  char *dir = xstrdup("/tmp/crid-test-cgroup-stats-XXXXXX");
  assert_non_null(mkdtemp(dir));
  return dir;
}

static void
write_file(const char *dir, const char *name, const void *data, size_t len)
{
  cleanup_free char *path = xasprintf("%s/%s", dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

  assert_true(fd >= 0);
  assert_int_equal(write_all(fd, data, len), 0);
  close(fd);
}

static void
remove_dir(const char *dir, const char *const *names)
{
  for (size_t i = 0; names[i]; i++)
    {
      cleanup_free char *path = xasprintf("%s/%s", dir, names[i]);
      unlink(path);
    }
  assert_int_equal(rmdir(dir), 0);
}

/* Reads a v2 directory holding only name with text; returns the result. */
static int
read_one(const char *dir, const char *name, const char *text, struct cgroup_stats *s,
         struct error *err)
{
  write_file(dir, name, text, strlen(text));
  int ret = cgroup_stats_read_v2(dir, s, err);
  cleanup_free char *path = xasprintf("%s/%s", dir, name);
  unlink(path);
  return ret;
}

static void
expect_einval(const char *dir, const char *name, const char *text)
{
  struct cgroup_stats s;
  struct error err = ERROR_INIT;

  if (read_one(dir, name, text, &s, &err) == 0)
    fail_msg("%s \"%s\": read without error", name, text);
  assert_int_equal(err.code, EINVAL);
  assert_non_null(strstr(err.message, name));
  error_clear(&err);
}

static void
test_edge_formats(void **state)
{
  cleanup_free char *dir = make_temp_dir();
  static const char *const names[] = { "memory.stat", "pids.max", "cpu.pressure", NULL };
  struct cgroup_stats s;
  struct error err = ERROR_INIT;

  /* Accepted: no final newline; blank lines; unknown keys in any one-word
   * format; the largest number; averages with more or no decimals. */
  assert_int_equal(read_one(dir, "pids.max", "18446744073709551615", &s, &err), 0);
  assert_int_equal(s.pids.max, UINT64_MAX);
  assert_int_equal(read_one(dir, "memory.stat", "future_key 1.5kB\n\nanon 7", &s, &err), 0);
  assert_int_equal(s.memory.rss_bytes, 7);
  assert_int_equal(
      read_one(dir, "cpu.pressure", "some avg10=3 avg60=0.125 avg300=100.00 total=9", &s, &err), 0);
  expect_psi(&s.psi.cpu.some, 3, 0.125, 100, 9);
  assert_false(s.psi.cpu.full_present);

  /* Refused. */
  expect_einval(dir, "pids.max", "");
  expect_einval(dir, "pids.max", "\n");
  expect_einval(dir, "pids.max", " 5\n");
  expect_einval(dir, "pids.max", "5 \n");
  expect_einval(dir, "pids.max", "5\n\n");
  expect_einval(dir, "pids.max", "+5\n");
  expect_einval(dir, "pids.max", "MAX\n");
  expect_einval(dir, "memory.stat", "anon  7\n");
  expect_einval(dir, "memory.stat", "anon 7 8\n");
  expect_einval(dir, "memory.stat", " anon 7\n");
  expect_einval(dir, "memory.stat", "anon 0x10\n");
  expect_einval(dir, "cpu.pressure", "");
  expect_einval(dir, "cpu.pressure", "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
  expect_einval(dir, "cpu.pressure",
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
  expect_einval(dir, "cpu.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00\n");
  expect_einval(dir, "cpu.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=1 extra=2\n");
  expect_einval(dir, "cpu.pressure", "some avg60=0.00 avg10=0.00 avg300=0.00 total=0\n");
  expect_einval(dir, "cpu.pressure", "some avg10=1. avg60=0.00 avg300=0.00 total=0\n");
  expect_einval(dir, "cpu.pressure", "some avg10=.5 avg60=0.00 avg300=0.00 total=0\n");
  expect_einval(dir, "cpu.pressure", "some avg10=nan avg60=0.00 avg300=0.00 total=0\n");
  expect_einval(dir, "cpu.pressure", "some avg10=-1.00 avg60=0.00 avg300=0.00 total=0\n");
  expect_einval(dir, "cpu.pressure", "some  avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
  remove_dir(dir, names);
}

static void
test_bounded_and_nul(void **state)
{
  cleanup_free char *dir = make_temp_dir();
  static const char *const names[] = { "memory.stat", "memory.current", NULL };
  size_t big_len = CGROUP_STATS_MAX_FILE_SIZE + 4096;
  cleanup_free char *big = xmalloc(big_len);
  struct cgroup_stats s;
  struct error err = ERROR_INIT;

  /* A file past the bound is refused, not read whole. */
  for (size_t i = 0; i < big_len; i += 8)
    memcpy(big + i, "pgin 1\n\n", 8);
  write_file(dir, "memory.stat", big, big_len);
  assert_int_equal(cgroup_stats_read_v2(dir, &s, &err), -1);
  assert_int_equal(err.code, EFBIG);
  assert_non_null(strstr(err.message, "memory.stat"));
  error_clear(&err);

  /* A NUL byte would hide what follows it. */
  write_file(dir, "memory.stat", "anon 1\n", 7);
  write_file(dir, "memory.current",
             "12\0"
             "34\n",
             6);
  assert_int_equal(cgroup_stats_read_v2(dir, &s, &err), -1);
  assert_int_equal(err.code, EINVAL);
  assert_non_null(strstr(err.message, "memory.current: contains a NUL byte: \"12\\x0034\\x0a\""));
  error_clear(&err);
  remove_dir(dir, names);
}

static void
expect_dirs(const struct cgroup_v1_dirs *dirs, const char *cpu, const char *cpuacct,
            const char *memory, const char *pids, const char *unified)
{
  const char *want[] = { cpu, cpuacct, memory, pids, unified };
  const char *got[] = { dirs->cpu, dirs->cpuacct, dirs->memory, dirs->pids, dirs->unified };

  for (size_t i = 0; i < 5; i++)
    if (want[i] == NULL ? got[i] != NULL : got[i] == NULL || strcmp(want[i], got[i]) != 0)
      fail_msg("dir %zu: got %s, want %s", i, got[i] ? got[i] : "NULL", want[i] ? want[i] : "NULL");
}

static void
test_v1_dirs_from_hierarchies(void **state)
{
  /* This machine: cpu and cpuacct apart, cgroup2 at unified, plus a
   * bind mount of a hierarchy elsewhere that must not be used. */
  static const char hybrid[]
      = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
        "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
        "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
        "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
        "90 23 0:32 /x /mnt/sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
  /* The systemd layout: co-mounted hierarchies (and links to them). */
  static const char legacy[]
      = "25 18 0:22 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n"
        "30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
        "31 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        "32 25 0:28 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio\n";
  struct error err = ERROR_INIT;
  struct cgroup_v1_dirs dirs;
  char **roots = NULL;

  assert_int_equal(cgroup_hierarchies_parse(hybrid, &roots, &err), 0);
  cgroup_stats_v1_dirs(roots, "/sys/fs/cgroup", "/kubepods/pod1/crid-x", &dirs);
  expect_dirs(
      &dirs, "/sys/fs/cgroup/cpu/kubepods/pod1/crid-x",
      "/sys/fs/cgroup/cpuacct/kubepods/pod1/crid-x", "/sys/fs/cgroup/memory/kubepods/pod1/crid-x",
      "/sys/fs/cgroup/pids/kubepods/pod1/crid-x", "/sys/fs/cgroup/unified/kubepods/pod1/crid-x");
  cgroup_v1_dirs_clear(&dirs);
  cgroup_stats_v1_dirs(roots, "/sys/fs/cgroup", "/", &dirs);
  expect_dirs(&dirs, "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/memory",
              "/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified");
  cgroup_v1_dirs_clear(&dirs);
  strv_free(roots);

  assert_int_equal(cgroup_hierarchies_parse(legacy, &roots, &err), 0);
  cgroup_stats_v1_dirs(roots, "/sys/fs/cgroup", "/crid/crid-y", &dirs);
  expect_dirs(&dirs, "/sys/fs/cgroup/cpu,cpuacct/crid/crid-y",
              "/sys/fs/cgroup/cpu,cpuacct/crid/crid-y", "/sys/fs/cgroup/memory/crid/crid-y", NULL,
              NULL);
  cgroup_v1_dirs_clear(&dirs);
  strv_free(roots);

  cgroup_stats_v1_dirs(NULL, "/sys/fs/cgroup", "/a", &dirs);
  expect_dirs(&dirs, NULL, NULL, NULL, NULL, NULL);
}

static void
test_read_live(void **state)
{
  struct cgroup_stats s;
  struct error err = ERROR_INIT;
  cleanup_free char *missing = xasprintf("/crid-stats-no-such-cgroup-%d", (int)getpid());

  /* Paths are checked before the host is looked at. */
  assert_int_equal(cgroup_stats_read_fs("kubepods/pod1", &s, &err), -1);
  assert_int_equal(err.code, EINVAL);
  error_clear(&err);
  assert_int_equal(cgroup_stats_read_fs("/kubepods/../../etc", &s, &err), -1);
  assert_int_equal(err.code, EINVAL);
  error_clear(&err);
  assert_int_equal(cgroup_stats_read_fs("/..", &s, &err), -1);
  assert_int_equal(err.code, EINVAL);
  error_clear(&err);
  assert_int_equal(cgroup_stats_read("", false, &s, &err), -1);
  assert_int_equal(err.code, EINVAL);
  error_clear(&err);
  assert_int_equal(cgroup_stats_read("/kubepods/../x", false, &s, &err), -1);
  assert_int_equal(err.code, EINVAL);
  error_clear(&err);

  /* The host, read only: the root cgroup has CPU usage on every mode; a
   * cgroup that does not exist is ENOENT. */
  if (cgroup_host_mode() == CGROUP_MODE_UNKNOWN)
    {
      assert_int_equal(cgroup_stats_read_fs("/", &s, &err), -1);
      assert_int_equal(err.code, ENOTSUP);
      error_clear(&err);
      return;
    }
  if (cgroup_stats_read_fs("/", &s, &err) < 0)
    fail_msg("root cgroup: %s", error_message(&err));
  assert_true(cgroup_stats_has(&s, CGROUP_STAT_CPU_USAGE));
  assert_true(s.cpu.usage_ns > 0);
  assert_int_equal(cgroup_stats_read_fs(missing, &s, &err), -1);
  assert_int_equal(err.code, ENOENT);
  error_clear(&err);
  assert_int_equal(cgroup_stats_read(missing, false, &s, &err), -1);
  assert_int_equal(err.code, ENOENT);
  error_clear(&err);
}

/* --- Handles --- */

#define CRI_MEMORY                                                                                 \
  (CGROUP_STAT_MEM_USAGE | CGROUP_STAT_MEM_WORKING_SET | CGROUP_STAT_MEM_RSS                       \
   | CGROUP_STAT_MEM_PAGE_FAULTS | CGROUP_STAT_MEM_MAJOR_PAGE_FAULTS | CGROUP_STAT_MEM_LIMIT       \
   | CGROUP_STAT_MEM_AVAILABLE)

static void
read_handle_ok(struct cgroup_handle *handle, uint32_t wanted, struct cgroup_stats *s)
{
  struct error err = ERROR_INIT;

  if (cgroup_stats_read_handle(handle, wanted, s, &err) < 0)
    fail_msg("wanted 0x%x: %s", wanted, error_message(&err));
  assert_true(s->timestamp_ns > 0);
}

/* Only the files of the fields wanted are read, and only their
 * directories opened (co-mounted hierarchies share one); everything
 * wanted gives what a plain reading gives. */
static void
test_handle_reads_what_is_wanted(void **state)
{
  struct cgroup_v1_dirs dirs;
  struct cgroup_stats s, all;
  struct cgroup_handle *handle;

  v1_dirs("v1/container", "cpu,cpuacct", "cpu,cpuacct", "memory", "pids", "unified", &dirs);
  handle = cgroup_handle_new_v1(&dirs);
  assert_int_equal(cgroup_handle_open_dirs(handle), 0);

  read_handle_ok(handle, CGROUP_WANT_CPU, &s);
  assert_int_equal(s.present, CGROUP_STAT_CPU_USAGE);
  assert_int_equal(s.cpu.usage_ns, 8234567890);
  assert_int_equal(cgroup_handle_open_dirs(handle), 1);

  read_handle_ok(handle, CGROUP_WANT_MEMORY, &s);
  assert_int_equal(s.present, CRI_MEMORY);
  assert_int_equal(s.memory.working_set_bytes, 104857600 - 20971520);
  assert_int_equal(cgroup_handle_open_dirs(handle), 2);

  read_handle_ok(handle, CGROUP_WANT_SWAP, &s);
  assert_true(cgroup_stats_has(&s, CGROUP_STAT_MEM_SWAP_USAGE | CGROUP_STAT_MEM_SWAP_LIMIT));
  assert_int_equal(s.memory.swap_usage_bytes, 1048576);

  read_handle_ok(handle, CGROUP_WANT_PSI, &s);
  assert_int_equal(s.present, 0);
  assert_true(s.psi.cpu.present && s.psi.memory.present && s.psi.io.present);
  assert_int_equal(cgroup_handle_open_dirs(handle), 3);

  read_handle_ok(handle, CGROUP_WANT_ALL, &s);
  assert_int_equal(cgroup_handle_open_dirs(handle), 4); /* cpu,cpuacct once */
  read_v1_ok(&dirs, &all);
  assert_int_equal(s.present, all.present);
  assert_memory_equal(&s.cpu, &all.cpu, sizeof s.cpu);
  assert_memory_equal(&s.memory, &all.memory, sizeof s.memory);
  assert_memory_equal(&s.pids, &all.pids, sizeof s.pids);
  assert_memory_equal(&s.psi, &all.psi, sizeof s.psi);
  cgroup_handle_unref(handle);

  /* cgroup2: one directory; cpu.stat holds every CPU field. */
  cleanup_free char *dir = fixture("v2/container");
  handle = cgroup_handle_new_v2(dir);
  read_handle_ok(handle, CGROUP_WANT_CPU, &s);
  assert_int_equal(s.present, ALL_CPU);
  read_handle_ok(handle, CGROUP_WANT_MEMORY | CGROUP_WANT_OOM | CGROUP_WANT_PIDS, &s);
  assert_int_equal(s.present, CRI_MEMORY | CGROUP_STAT_MEM_OOM_KILL | ALL_PIDS);
  assert_false(s.psi.cpu.present);
  assert_int_equal(cgroup_handle_open_dirs(handle), 1);
  cgroup_handle_unref(handle);
}

/* A file found missing is not looked for again until a recheck. */
static void
test_handle_remembers_missing_files(void **state)
{
  cleanup_free char *dir = make_temp_dir();
  static const char *const names[] = { "memory.current", "cpu.stat", NULL };
  struct cgroup_handle *handle = cgroup_handle_new_v2(dir);
  struct cgroup_stats s;

  write_file(dir, "memory.current", "4096\n", 5);
  read_handle_ok(handle, CGROUP_WANT_ALL, &s);
  assert_int_equal(s.present, CGROUP_STAT_MEM_USAGE | CGROUP_STAT_MEM_WORKING_SET);

  write_file(dir, "cpu.stat", "usage_usec 7\n", 13);
  read_handle_ok(handle, CGROUP_WANT_ALL, &s);
  assert_false(cgroup_stats_has(&s, CGROUP_STAT_CPU_USAGE));

  cgroup_handle_recheck(handle);
  read_handle_ok(handle, CGROUP_WANT_ALL, &s);
  assert_true(cgroup_stats_has(&s, CGROUP_STAT_CPU_USAGE));
  assert_int_equal(s.cpu.usage_ns, 7000);
  cgroup_handle_unref(handle);
  remove_dir(dir, names);
}

/* The directory held removed: ENOENT; removed and made again under the
 * same path: ESTALE, and a new handle reads the new one. */
static void
test_handle_gone_and_replaced(void **state)
{
  cleanup_free char *dir = make_temp_dir();
  static const char *const names[] = { "memory.current", NULL };
  struct cgroup_handle *handle = cgroup_handle_new_v2(dir);
  struct cgroup_stats s = { .present = 0x1234 };
  struct error err = ERROR_INIT;

  write_file(dir, "memory.current", "4096\n", 5);
  read_handle_ok(handle, CGROUP_WANT_MEMORY, &s);
  assert_int_equal(s.memory.usage_bytes, 4096);

  remove_dir(dir, names);
  s.present = 0x1234;
  assert_int_equal(cgroup_stats_read_handle(handle, CGROUP_WANT_MEMORY, &s, &err), -1);
  assert_int_equal(err.code, ENOENT);
  assert_int_equal(s.present, 0x1234);
  assert_false(cgroup_handle_is_stale(handle));
  error_clear(&err);

  assert_int_equal(mkdir(dir, 0755), 0);
  write_file(dir, "memory.current", "8192\n", 5);
  assert_int_equal(cgroup_stats_read_handle(handle, CGROUP_WANT_MEMORY, &s, &err), -1);
  assert_int_equal(err.code, ESTALE);
  assert_true(cgroup_handle_is_stale(handle));
  error_clear(&err);
  cgroup_handle_unref(handle);

  handle = cgroup_handle_new_v2(dir);
  read_handle_ok(handle, CGROUP_WANT_MEMORY, &s);
  assert_int_equal(s.memory.usage_bytes, 8192);
  cgroup_handle_unref(handle);
  remove_dir(dir, names);
}

/* Two handles on one cgroup of this host through cgroup_handle_new_fs;
 * an invalid path is refused. */
static void
test_handle_live(void **state)
{
  struct cgroup_handle *handle = NULL;
  struct cgroup_stats s;
  struct error err = ERROR_INIT;

  assert_int_equal(cgroup_handle_new_fs("kubepods/pod1", NULL, &handle, &err), -1);
  assert_int_equal(err.code, EINVAL);
  assert_null(handle);
  error_clear(&err);
  if (cgroup_host_mode() == CGROUP_MODE_UNKNOWN)
    return;
  if (cgroup_handle_new_fs("/", NULL, &handle, &err) < 0)
    fail_msg("%s", error_message(&err));
  if (cgroup_stats_read_handle(handle, CGROUP_WANT_CPU | CGROUP_WANT_MEMORY, &s, &err) < 0)
    fail_msg("%s", error_message(&err));
  assert_true(cgroup_handle_open_dirs(handle) >= 1);
  cgroup_handle_unref(handle);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_v2_container),
    cmocka_unit_test(test_v2_unlimited),
    cmocka_unit_test(test_v2_working_set_floor),
    cmocka_unit_test(test_v2_available_floor_and_missing_files),
    cmocka_unit_test(test_v2_real),
    cmocka_unit_test(test_v2_missing_directory),
    cmocka_unit_test(test_v1_container),
    cmocka_unit_test(test_v1_unlimited),
    cmocka_unit_test(test_v1_floor_and_old_kernel),
    cmocka_unit_test(test_v1_real),
    cmocka_unit_test(test_v1_missing_directories),
    cmocka_unit_test(test_garbage),
    cmocka_unit_test(test_edge_formats),
    cmocka_unit_test(test_bounded_and_nul),
    cmocka_unit_test(test_v1_dirs_from_hierarchies),
    cmocka_unit_test(test_read_live),
    cmocka_unit_test(test_handle_reads_what_is_wanted),
    cmocka_unit_test(test_handle_remembers_missing_files),
    cmocka_unit_test(test_handle_gone_and_replaced),
    cmocka_unit_test(test_handle_live),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
