/* pod/cgroup_stats: the CPU, memory, pids and pressure (PSI) statistics
 * of one cgroup, a container's or a pod's, on cgroup v1 and cgroup v2.
 *
 * This module owns reading and interpreting the kernel's cgroup files
 * (which file holds what, the units, the kubelet/cAdvisor rules for the
 * derived values); it knows nothing of CRI messages.  The readers take
 * the cgroup directories explicitly, so tests point them at fixture
 * trees; cgroup_stats_read_fs() finds the live directories on this host.
 *
 * Repeated readings of one cgroup (a stats call every few seconds for
 * each container) go through a handle (struct cgroup_handle): it keeps
 * the cgroup's directories open, so each file is opened relative to its
 * directory (the kernel looks up one name instead of walking the seven
 * or more components of /sys/fs/cgroup/<controller>/.../<container>,
 * which is most of the cost of a reading), and it remembers the files
 * found missing on this host (no swap accounting, PSI switched off), so
 * later readings do not look for them again.  A reading also names the
 * fields it is for (enum cgroup_want): only their files are read.
 *
 * Files read (a missing file only turns its fields off):
 *   v2  cpu.stat, memory.current, memory.max, memory.stat, memory.events,
 *       memory.swap.current, memory.swap.max, pids.current, pids.max,
 *       cpu.pressure, memory.pressure, io.pressure
 *   v1  cpu/cpu.stat; cpuacct/cpuacct.usage, cpuacct.stat;
 *       memory/memory.usage_in_bytes, memory.limit_in_bytes, memory.stat,
 *       memory.memsw.usage_in_bytes, memory.memsw.limit_in_bytes,
 *       memory.oom_control; pids/pids.current, pids.max; and on a hybrid
 *       host the *.pressure files of the cgroup's cgroup2 directory.
 *
 * Derived values, as the kubelet and cAdvisor compute them:
 *   working set  usage - inactive file (v1 total_inactive_file, v2
 *                inactive_file), 0 when that is negative; the usage
 *                itself when memory.stat has no inactive file count.
 *   available    limit - working set (at least 0) when there is a
 *                limit; 0 without one.
 *   v1 swap      memory.memsw.usage_in_bytes - memory.usage_in_bytes;
 *                its limit memsw.limit - limit (memsw counts both).
 * "No limit" (v2 "max", a v1 value above 2^62 such as the kernel's
 * 9223372036854771712) is a limit of 0. */
#ifndef CRID_POD_CGROUP_STATS_H
#define CRID_POD_CGROUP_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

/* Every file read is at most this large; a larger one is an error. */
#define CGROUP_STATS_MAX_FILE_SIZE (64 * 1024)

/* One bit per field of struct cgroup_stats, set when the host had it. A
 * field whose bit is clear is 0 and means "not available", not zero. */
enum cgroup_stat
{
  CGROUP_STAT_CPU_USAGE = 1u << 0,
  CGROUP_STAT_CPU_USER = 1u << 1,
  CGROUP_STAT_CPU_SYSTEM = 1u << 2,
  CGROUP_STAT_CPU_NR_PERIODS = 1u << 3,
  CGROUP_STAT_CPU_NR_THROTTLED = 1u << 4,
  CGROUP_STAT_CPU_THROTTLED = 1u << 5,
  CGROUP_STAT_MEM_USAGE = 1u << 6,
  CGROUP_STAT_MEM_WORKING_SET = 1u << 7,
  CGROUP_STAT_MEM_RSS = 1u << 8,
  CGROUP_STAT_MEM_PAGE_FAULTS = 1u << 9,
  CGROUP_STAT_MEM_MAJOR_PAGE_FAULTS = 1u << 10,
  CGROUP_STAT_MEM_LIMIT = 1u << 11,
  CGROUP_STAT_MEM_AVAILABLE = 1u << 12,
  CGROUP_STAT_MEM_SWAP_USAGE = 1u << 13,
  CGROUP_STAT_MEM_SWAP_LIMIT = 1u << 14,
  /* Not a field: the swap limit is a real 0 (v2 memory.swap.max "0", v1
   * memsw limit equal to the memory limit), the cgroup may not swap at
   * all, which a swap_limit_bytes of 0 alone would read as "no limit". */
  CGROUP_STAT_MEM_NO_SWAP = 1u << 15,
  CGROUP_STAT_MEM_OOM_KILL = 1u << 16,
  CGROUP_STAT_PIDS_CURRENT = 1u << 17,
  CGROUP_STAT_PIDS_MAX = 1u << 18,
};

/* One line of a *.pressure file.  total_us is the kernel's cumulative
 * stall time in microseconds, unconverted; the averages are percentages
 * over 10, 60 and 300 seconds. */
struct cgroup_psi_data
{
  uint64_t total_us;
  double avg10, avg60, avg300;
};

struct cgroup_psi
{
  bool present;      /* the file was there: "some" is filled */
  bool full_present; /* it had a "full" line (cpu.pressure before 5.13 does not) */
  struct cgroup_psi_data some, full;
};

struct cgroup_stats
{
  uint32_t present;     /* enum cgroup_stat bits */
  int64_t timestamp_ns; /* wall clock when the reading started */
  struct
  {
    uint64_t usage_ns; /* cumulative, user + system */
    uint64_t user_ns;
    uint64_t system_ns;
    uint64_t nr_periods; /* CFS bandwidth periods elapsed */
    uint64_t nr_throttled;
    uint64_t throttled_ns;
  } cpu;
  struct
  {
    uint64_t usage_bytes;
    uint64_t working_set_bytes;
    uint64_t rss_bytes;
    uint64_t page_faults;
    uint64_t major_page_faults;
    uint64_t limit_bytes; /* 0: no limit */
    uint64_t available_bytes;
    uint64_t swap_usage_bytes;
    uint64_t swap_limit_bytes; /* 0: no limit, unless CGROUP_STAT_MEM_NO_SWAP */
    uint64_t oom_kill;         /* processes killed by the OOM killer */
  } memory;
  struct
  {
    uint64_t current;
    uint64_t max; /* 0: no limit */
  } pids;
  struct
  {
    struct cgroup_psi cpu, memory, io;
  } psi;
};

/* True when every bit of `bits` is present. */
static inline bool
cgroup_stats_has(const struct cgroup_stats *stats, uint32_t bits)
{
  return (stats->present & bits) == bits;
}

/* The v1 directories of one cgroup, one per controller hierarchy (cpu and
 * cpuacct are the same directory where they are co-mounted).  NULL: that
 * controller's fields are not available.  unified: the cgroup's cgroup2
 * directory on a hybrid host, read for PSI only (may be NULL). */
struct cgroup_v1_dirs
{
  char *cpu;
  char *cpuacct;
  char *memory;
  char *pids;
  char *unified;
};

/* Frees the strings and sets them to NULL. */
void cgroup_v1_dirs_clear(struct cgroup_v1_dirs *dirs);

/* What a reading is for; only the files these need are read (a reading
 * may fill more fields than asked, e.g. cgroup2's cpu.stat holds them
 * all).  The CRI stats calls want CPU, memory, swap and PSI, and pids
 * for a pod; the metrics want everything. */
enum cgroup_want
{
  CGROUP_WANT_CPU = 1u << 0,        /* usage: v1 cpuacct.usage; v2 cpu.stat */
  CGROUP_WANT_CPU_DETAIL = 1u << 1, /* user, system, CFS periods: v1 cpuacct.stat, cpu.stat */
  CGROUP_WANT_MEMORY = 1u << 2,     /* usage, working set, rss, faults, limit, available */
  CGROUP_WANT_SWAP = 1u << 3,       /* swap usage and limit */
  CGROUP_WANT_OOM = 1u << 4,        /* OOM kills: v1 memory.oom_control; v2 memory.events */
  CGROUP_WANT_PIDS = 1u << 5,
  CGROUP_WANT_PSI = 1u << 6, /* cpu, memory and io pressure */
};
#define CGROUP_WANT_ALL 0x7fu

/* One cgroup's directories, held open between readings, and the files
 * found missing in them; see the top of this file.  A directory is
 * opened by the first reading that needs one of its files (O_PATH), so
 * a handle holds at most one descriptor per v1 hierarchy read (a CRI
 * reading on a hybrid host: cpuacct, memory and the cgroup2 directory
 * for PSI; co-mounted hierarchies such as "cpu,cpuacct" share one) and
 * one on cgroup2.  Readings may share a handle from several
 * threads; it is freed, its descriptors closed, with its last
 * reference. */
struct cgroup_handle;

/* A handle on the cgroup2 directory dir, or on v1 directories (copied;
 * NULL members stay unavailable). */
struct cgroup_handle *cgroup_handle_new_v2(const char *dir);
struct cgroup_handle *cgroup_handle_new_v1(const struct cgroup_v1_dirs *dirs);

/* A handle on the cgroup at fs_path on this host, as cgroup_stats_read_fs
 * finds it; with hierarchies (cgroup_hierarchies' list) on a v1 or
 * hybrid host instead of reading /proc/self/mountinfo. */
int cgroup_handle_new_fs(const char *fs_path, char *const *hierarchies, struct cgroup_handle **out,
                         struct error *err);

struct cgroup_handle *cgroup_handle_ref(struct cgroup_handle *handle);
/* NULL is fine. */
void cgroup_handle_unref(struct cgroup_handle *handle);

/* Forgets which files were found missing: the next reading looks for
 * them again (a cgroup2 controller enabled later, cgroup.pressure
 * switched back on). */
void cgroup_handle_recheck(struct cgroup_handle *handle);

/* How many directory descriptors it holds now. */
int cgroup_handle_open_dirs(struct cgroup_handle *handle);

/* True once a reading found that a directory it holds was replaced (the
 * path now names another directory): make a new handle. */
bool cgroup_handle_is_stale(struct cgroup_handle *handle);

/* The statistics that `wanted` (enum cgroup_want bits) need, through the
 * handle.  Errors as cgroup_stats_read_v2 and _v1, plus ESTALE when a
 * directory was replaced (see cgroup_handle_is_stale) and ENOENT when it
 * was removed since the handle opened it. */
int cgroup_stats_read_handle(struct cgroup_handle *handle, uint32_t wanted,
                             struct cgroup_stats *out, struct error *err);

/* The statistics of the cgroup2 directory dir.  ENOENT when dir does not
 * exist (the cgroup is gone); a missing file turns its fields off; a file
 * that is not in the kernel's format is an error (EINVAL, or EFBIG past
 * CGROUP_STATS_MAX_FILE_SIZE) naming the file and quoting the bad text.
 * out is filled only on success. */
int cgroup_stats_read_v2(const char *dir, struct cgroup_stats *out, struct error *err);

/* The same from v1 directories.  ENOENT when none of them exists; a
 * missing directory or file turns its fields off. */
int cgroup_stats_read_v1(const struct cgroup_v1_dirs *dirs, struct cgroup_stats *out,
                         struct error *err);

/* The v1 directories of fs_path (an absolute path relative to each
 * hierarchy root, as from cgroup_path_to_fs) under the hierarchies mounted
 * directly in root, as cgroup_hierarchies lists them: a mount point's name
 * is its controllers ("cpu,cpuacct", "memory"), and "<root>/unified" is a
 * hybrid host's cgroup2.  Controllers without a hierarchy stay NULL. */
void cgroup_stats_v1_dirs(char *const *hierarchies, const char *root, const char *fs_path,
                          struct cgroup_v1_dirs *out);

/* The statistics of the cgroup at fs_path on this host (cgroup v2 under
 * CGROUP_ROOT, or the v1 hierarchies of /proc/self/mountinfo), whatever
 * its mode.  For a pod's own cgroup pass its kubelet parent: a cgroupfs
 * path as is, a systemd slice through cgroup_slice_to_path.  EINVAL for a
 * relative path or one with "..". */
int cgroup_stats_read_fs(const char *fs_path, struct cgroup_stats *out, struct error *err);

/* The statistics of a container's cgroup from its linux.cgroupsPath (as
 * cgroup_container_path made it) and the cgroup driver. */
int cgroup_stats_read(const char *cgroups_path, bool systemd, struct cgroup_stats *out,
                      struct error *err);

#endif
