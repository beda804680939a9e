/* Reading one cgroup's CPU, memory, pids and PSI statistics from the
 * kernel's v1 and v2 files; see cgroup_stats.h. */
#include "pod/cgroup_stats.h"
#include "pod/cgroup.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A v1 limit above this is "no limit": the kernel shows an unset limit as
 * 2^63 rounded down to a page, and the kubelet uses the same bound. */
#define V1_UNLIMITED_ABOVE (UINT64_C(1) << 62)
#define NS_PER_US UINT64_C(1000)
#define NS_PER_SEC UINT64_C(1000000000)
/* How much of a bad line an error message shows. */
#define QUOTE_MAX 80
/* Longer than any key the kernel writes (the longest is ~40). */
#define KEY_MAX 64
/* 2^64 - 1 has 20 digits. */
#define U64_DIGITS_MAX 20
/* PSI averages have two decimals ("12.34"); more is allowed, within
 * what a double keeps. */
#define FRACTION_DIGITS_MAX 9
#define N_ELEMENTS(array) (sizeof(array) / sizeof(array)[0])

static int
bad_content(struct error *err, const char *path, const char *why, const char *text, size_t len)
{
  cleanup_free char *quoted = quote_untrusted(text, len, QUOTE_MAX);
  return error_set(err, EINVAL, "%s: %s: %s", path, why, quoted);
}

/* Plain decimal digits only: no sign, no spaces, no overflow. */
static bool
parse_u64(const char *s, size_t len, uint64_t *out)
{
  uint64_t value = 0;

  if (len == 0 || len > U64_DIGITS_MAX)
    return false;
  for (size_t i = 0; i < len; i++)
    {
      if (s[i] < '0' || s[i] > '9')
        return false;
      if (__builtin_mul_overflow(value, 10, &value)
          || __builtin_add_overflow(value, (uint64_t)(s[i] - '0'), &value))
        return false;
    }
  *out = value;
  return true;
}

/* "12.34" or "12" as PSI averages are written; computed by hand so the
 * result does not depend on the locale's decimal point. */
static bool
parse_decimal(const char *s, size_t len, double *out)
{
  const char *dot = memchr(s, '.', len);
  size_t int_len = dot ? (size_t)(dot - s) : len;
  size_t frac_len = dot ? len - int_len - 1 : 0;
  uint64_t int_part, frac_part = 0;
  double scale = 1;

  if (!parse_u64(s, int_len, &int_part))
    return false;
  if (dot && (frac_len > FRACTION_DIGITS_MAX || !parse_u64(dot + 1, frac_len, &frac_part)))
    return false;
  for (size_t i = 0; i < frac_len; i++)
    scale *= 10;
  *out = (double)int_part + (double)frac_part / scale;
  return true;
}

/* The text of dir/name, NUL-terminated; *text stays NULL when the file is
 * not there.  ENODEV is what a cgroup removed while it is read answers,
 * and EOPNOTSUPP what a switched-off feature (PSI) answers: both mean
 * "not available", like ENOENT. */
static int
read_stat_file(const char *dir, const char *name, char **path, char **text, struct error *err)
{
  cleanup_free char *full = NULL;
  cleanup_free char *data = NULL;
  struct error e = ERROR_INIT;
  size_t len = 0;

  *text = NULL;
  *path = NULL;
  if (dir == NULL)
    return 0;
  full = xasprintf("%s/%s", dir, name);
  if (read_file(full, CGROUP_STATS_MAX_FILE_SIZE, &data, &len, &e) < 0)
    {
      if (e.code == ENOENT || e.code == ENODEV || e.code == EOPNOTSUPP)
        {
          error_clear(&e);
          return 0;
        }
      error_move(err, &e);
      return -1;
    }
  /* A NUL would end the text early and hide what follows it. */
  if (memchr(data, '\0', len))
    return bad_content(err, full, "contains a NUL byte", data, len);
  *text = steal_pointer(&data);
  *path = steal_pointer(&full);
  return 0;
}

/* A file of one number, e.g. memory.current.  Where is_max is given,
 * "max" (no limit) is allowed too: it reads as 0 with *is_max set.
 * *found stays false when the file is missing. */
static int
read_u64_file(const char *dir, const char *name, uint64_t *value, bool *is_max, bool *found,
              struct error *err)
{
  cleanup_free char *path = NULL;
  cleanup_free char *text = NULL;
  size_t len;

  *found = false;
  if (is_max)
    *is_max = false;
  if (read_stat_file(dir, name, &path, &text, err) < 0)
    return -1;
  if (text == NULL)
    return 0;
  len = strlen(text);
  if (len > 0 && text[len - 1] == '\n')
    len--;
  if (is_max && len == 3 && memcmp(text, "max", 3) == 0)
    {
      *value = 0;
      *is_max = true;
    }
  else if (!parse_u64(text, len, value))
    return bad_content(err, path, is_max ? "not a number or \"max\"" : "not a number", text, len);
  *found = true;
  return 0;
}

/* One wanted key of a "key value" file (memory.stat, cpu.stat, ...). The
 * value is multiplied by scale (a unit conversion; 0 means 1). */
struct key_value
{
  const char *key;
  uint64_t scale;
  uint64_t value;
  bool found;
};

static bool
key_is_valid(const char *s, size_t len)
{
  if (len == 0 || len > KEY_MAX)
    return false;
  for (size_t i = 0; i < len; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
          || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '.' || s[i] == '-'))
      return false;
  return true;
}

/* Values of keys crid does not use are only checked to be one printable
 * word, so a key a newer kernel adds in another format does not break
 * the statistics. */
static bool
word_is_printable(const char *s, size_t len)
{
  if (len == 0)
    return false;
  for (size_t i = 0; i < len; i++)
    if (s[i] <= ' ' || s[i] > '~')
      return false;
  return true;
}

static struct key_value *
find_key(struct key_value *keys, size_t n, const char *key, size_t len)
{
  for (size_t i = 0; i < n; i++)
    if (strlen(keys[i].key) == len && memcmp(keys[i].key, key, len) == 0)
      return &keys[i];
  return NULL;
}

static int
parse_keyed_line(const char *path, const char *line, size_t len, struct key_value *keys, size_t n,
                 struct error *err)
{
  const char *space = memchr(line, ' ', len);
  size_t key_len = space ? (size_t)(space - line) : len;
  const char *value = space ? space + 1 : line + len;
  size_t value_len = (size_t)(line + len - value);
  struct key_value *kv;

  if (space == NULL || !key_is_valid(line, key_len) || !word_is_printable(value, value_len))
    return bad_content(err, path, "not a \"key value\" line", line, len);
  kv = find_key(keys, n, line, key_len);
  if (kv == NULL)
    return 0;
  if (!parse_u64(value, value_len, &kv->value))
    return bad_content(err, path, "not a number", line, len);
  if (kv->scale > 1 && __builtin_mul_overflow(kv->value, kv->scale, &kv->value))
    return bad_content(err, path, "value out of range", line, len);
  kv->found = true;
  return 0;
}

static int
parse_keyed(const char *path, const char *text, struct key_value *keys, size_t n, struct error *err)
{
  for (const char *line = text; *line;)
    {
      const char *end = strchrnul(line, '\n');
      size_t len = (size_t)(end - line);

      if (len > 0 && parse_keyed_line(path, line, len, keys, n, err) < 0)
        return -1;
      line = *end ? end + 1 : end;
    }
  return 0;
}

/* Fills keys from dir/name.  A missing file finds no key. */
static int
read_keyed_file(const char *dir, const char *name, struct key_value *keys, size_t n,
                struct error *err)
{
  cleanup_free char *path = NULL;
  cleanup_free char *text = NULL;

  if (read_stat_file(dir, name, &path, &text, err) < 0)
    return -1;
  if (text == NULL)
    return 0;
  return parse_keyed(path, text, keys, n, err);
}

/* "avg10=0.00 avg60=0.00 avg300=0.00 total=0", exactly these four. */
static bool
parse_psi_fields(const char *s, size_t len, struct cgroup_psi_data *out)
{
  static const char *const names[] = { "avg10=", "avg60=", "avg300=", "total=" };
  double *averages[] = { &out->avg10, &out->avg60, &out->avg300 };
  const char *p = s, *end = s + len;

  for (size_t i = 0; i < 4; i++)
    {
      size_t name_len = strlen(names[i]);
      const char *space = memchr(p, ' ', (size_t)(end - p));
      const char *word_end = space ? space : end;
      const char *value = p + name_len;

      if ((size_t)(word_end - p) <= name_len || memcmp(p, names[i], name_len) != 0)
        return false;
      if (i < 3 && !parse_decimal(value, (size_t)(word_end - value), averages[i]))
        return false;
      if (i == 3 && !parse_u64(value, (size_t)(word_end - value), &out->total_us))
        return false;
      /* The last field ends the line; the others are followed by one space. */
      if ((i == 3) != (space == NULL))
        return false;
      p = word_end + 1;
    }
  return true;
}

static int
parse_psi(const char *path, const char *text, struct cgroup_psi *out, struct error *err)
{
  struct cgroup_psi psi = { 0 };

  for (const char *line = text; *line;)
    {
      const char *end = strchrnul(line, '\n');
      size_t len = (size_t)(end - line);
      struct cgroup_psi_data *data = NULL;
      bool *seen = NULL;

      if (len > 5 && memcmp(line, "some ", 5) == 0)
        {
          data = &psi.some;
          seen = &psi.present;
        }
      else if (len > 5 && memcmp(line, "full ", 5) == 0)
        {
          data = &psi.full;
          seen = &psi.full_present;
        }
      if (len > 0 && (data == NULL || *seen || !parse_psi_fields(line + 5, len - 5, data)))
        return bad_content(err, path, "not a pressure line", line, len);
      if (seen)
        *seen = true;
      line = *end ? end + 1 : end;
    }
  if (!psi.present)
    return bad_content(err, path, "no \"some\" line", text, strlen(text));
  *out = psi;
  return 0;
}

static int
read_psi_file(const char *dir, const char *name, struct cgroup_psi *out, struct error *err)
{
  cleanup_free char *path = NULL;
  cleanup_free char *text = NULL;

  if (read_stat_file(dir, name, &path, &text, err) < 0)
    return -1;
  if (text == NULL)
    return 0;
  return parse_psi(path, text, out, err);
}

static int
read_psi_files(const char *dir, struct cgroup_stats *stats, struct error *err)
{
  if (read_psi_file(dir, "cpu.pressure", &stats->psi.cpu, err) < 0
      || read_psi_file(dir, "memory.pressure", &stats->psi.memory, err) < 0
      || read_psi_file(dir, "io.pressure", &stats->psi.io, err) < 0)
    return -1;
  return 0;
}

static void
set_stat(struct cgroup_stats *stats, uint32_t bit, uint64_t *field, uint64_t value)
{
  *field = value;
  stats->present |= bit;
}

/* Copies a found key into its field. */
static void
take_key(struct cgroup_stats *stats, uint32_t bit, uint64_t *field, const struct key_value *kv)
{
  if (kv->found)
    set_stat(stats, bit, field, kv->value);
}

/* Working set and available memory from usage and limit, once both
 * versions have filled them; see the header for the rule. */
static void
derive_memory(struct cgroup_stats *stats, const struct key_value *inactive_file)
{
  uint64_t usage = stats->memory.usage_bytes, limit = stats->memory.limit_bytes;
  uint64_t working_set = usage;

  if (!cgroup_stats_has(stats, CGROUP_STAT_MEM_USAGE))
    return;
  if (inactive_file->found)
    working_set = usage > inactive_file->value ? usage - inactive_file->value : 0;
  set_stat(stats, CGROUP_STAT_MEM_WORKING_SET, &stats->memory.working_set_bytes, working_set);
  if (cgroup_stats_has(stats, CGROUP_STAT_MEM_LIMIT))
    set_stat(stats, CGROUP_STAT_MEM_AVAILABLE, &stats->memory.available_bytes,
             limit > working_set ? limit - working_set : 0);
}

/* --- cgroup v2 --- */

static int
read_v2_cpu(const char *dir, struct cgroup_stats *stats, struct error *err)
{
  struct key_value keys[] = {
    { "usage_usec", NS_PER_US }, { "user_usec", NS_PER_US }, { "system_usec", NS_PER_US },
    { "nr_periods", 1 },         { "nr_throttled", 1 },      { "throttled_usec", NS_PER_US },
  };

  if (read_keyed_file(dir, "cpu.stat", keys, N_ELEMENTS(keys), err) < 0)
    return -1;
  take_key(stats, CGROUP_STAT_CPU_USAGE, &stats->cpu.usage_ns, &keys[0]);
  take_key(stats, CGROUP_STAT_CPU_USER, &stats->cpu.user_ns, &keys[1]);
  take_key(stats, CGROUP_STAT_CPU_SYSTEM, &stats->cpu.system_ns, &keys[2]);
  take_key(stats, CGROUP_STAT_CPU_NR_PERIODS, &stats->cpu.nr_periods, &keys[3]);
  take_key(stats, CGROUP_STAT_CPU_NR_THROTTLED, &stats->cpu.nr_throttled, &keys[4]);
  take_key(stats, CGROUP_STAT_CPU_THROTTLED, &stats->cpu.throttled_ns, &keys[5]);
  return 0;
}

static int
read_v2_swap(const char *dir, struct cgroup_stats *stats, struct error *err)
{
  uint64_t value;
  bool found, is_max;

  if (read_u64_file(dir, "memory.swap.current", &value, NULL, &found, err) < 0)
    return -1;
  if (found)
    set_stat(stats, CGROUP_STAT_MEM_SWAP_USAGE, &stats->memory.swap_usage_bytes, value);
  if (read_u64_file(dir, "memory.swap.max", &value, &is_max, &found, err) < 0)
    return -1;
  if (!found)
    return 0;
  set_stat(stats, CGROUP_STAT_MEM_SWAP_LIMIT, &stats->memory.swap_limit_bytes, value);
  if (value == 0 && !is_max)
    stats->present |= CGROUP_STAT_MEM_NO_SWAP;
  return 0;
}

static int
read_v2_memory(const char *dir, struct cgroup_stats *stats, struct error *err)
{
  struct key_value stat_keys[] = {
    { "anon" },
    { "pgfault" },
    { "pgmajfault" },
    { "inactive_file" },
  };
  struct key_value event_keys[] = { { "oom_kill" } };
  uint64_t value;
  bool found, is_max;

  if (read_u64_file(dir, "memory.current", &value, NULL, &found, err) < 0)
    return -1;
  if (found)
    set_stat(stats, CGROUP_STAT_MEM_USAGE, &stats->memory.usage_bytes, value);
  if (read_u64_file(dir, "memory.max", &value, &is_max, &found, err) < 0)
    return -1;
  if (found)
    set_stat(stats, CGROUP_STAT_MEM_LIMIT, &stats->memory.limit_bytes, value);
  if (read_keyed_file(dir, "memory.stat", stat_keys, N_ELEMENTS(stat_keys), err) < 0
      || read_keyed_file(dir, "memory.events", event_keys, N_ELEMENTS(event_keys), err) < 0
      || read_v2_swap(dir, stats, err) < 0)
    return -1;
  take_key(stats, CGROUP_STAT_MEM_RSS, &stats->memory.rss_bytes, &stat_keys[0]);
  take_key(stats, CGROUP_STAT_MEM_PAGE_FAULTS, &stats->memory.page_faults, &stat_keys[1]);
  take_key(stats, CGROUP_STAT_MEM_MAJOR_PAGE_FAULTS, &stats->memory.major_page_faults,
           &stat_keys[2]);
  take_key(stats, CGROUP_STAT_MEM_OOM_KILL, &stats->memory.oom_kill, &event_keys[0]);
  derive_memory(stats, &stat_keys[3]);
  return 0;
}

/* pids.current and pids.max, the same in both versions. */
static int
read_pids(const char *dir, struct cgroup_stats *stats, struct error *err)
{
  uint64_t value;
  bool found, is_max;

  if (read_u64_file(dir, "pids.current", &value, NULL, &found, err) < 0)
    return -1;
  if (found)
    set_stat(stats, CGROUP_STAT_PIDS_CURRENT, &stats->pids.current, value);
  if (read_u64_file(dir, "pids.max", &value, &is_max, &found, err) < 0)
    return -1;
  if (found)
    set_stat(stats, CGROUP_STAT_PIDS_MAX, &stats->pids.max, value);
  return 0;
}

static bool
is_directory(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int
cgroup_stats_read_v2(const char *dir, struct cgroup_stats *out, struct error *err)
{
  struct cgroup_stats stats = { 0 };
  struct stat st;

  if (stat(dir, &st) < 0)
    return error_set_errno(err, errno, "cgroup %s", dir);
  if (!S_ISDIR(st.st_mode))
    return error_set(err, ENOTDIR, "cgroup %s is not a directory", dir);
  stats.timestamp_ns = time_realtime_ns();
  if (read_v2_cpu(dir, &stats, err) < 0 || read_v2_memory(dir, &stats, err) < 0
      || read_pids(dir, &stats, err) < 0 || read_psi_files(dir, &stats, err) < 0)
    return -1;
  *out = stats;
  return 0;
}

/* --- cgroup v1 --- */

/* cpuacct.stat counts USER_HZ ticks. */
static bool
ticks_to_ns(uint64_t ticks, uint64_t hz, uint64_t *ns)
{
  uint64_t whole;

  if (__builtin_mul_overflow(ticks / hz, NS_PER_SEC, &whole))
    return false;
  return !__builtin_add_overflow(whole, ticks % hz * NS_PER_SEC / hz, ns);
}

static int
read_v1_cpuacct_stat(const char *dir, struct cgroup_stats *stats, struct error *err)
{
  struct key_value keys[] = { { "user" }, { "system" } };
  uint32_t bits[] = { CGROUP_STAT_CPU_USER, CGROUP_STAT_CPU_SYSTEM };
  uint64_t *fields[] = { &stats->cpu.user_ns, &stats->cpu.system_ns };
  long hz = sysconf(_SC_CLK_TCK);

  if (read_keyed_file(dir, "cpuacct.stat", keys, N_ELEMENTS(keys), err) < 0)
    return -1;
  for (size_t i = 0; i < N_ELEMENTS(keys); i++)
    {
      uint64_t ns;
      if (!keys[i].found)
        continue;
      if (hz <= 0 || !ticks_to_ns(keys[i].value, (uint64_t)hz, &ns))
        return error_set(err, EINVAL,
                         "%s/cpuacct.stat: value out of range: \"%s %" PRIu64 "\" (ticks)", dir,
                         keys[i].key, keys[i].value);
      set_stat(stats, bits[i], fields[i], ns);
    }
  return 0;
}

static int
read_v1_cpu(const struct cgroup_v1_dirs *dirs, struct cgroup_stats *stats, struct error *err)
{
  struct key_value keys[] = { { "nr_periods" }, { "nr_throttled" }, { "throttled_time" } };
  uint64_t value;
  bool found;

  if (read_u64_file(dirs->cpuacct, "cpuacct.usage", &value, NULL, &found, err) < 0)
    return -1;
  if (found)
    set_stat(stats, CGROUP_STAT_CPU_USAGE, &stats->cpu.usage_ns, value);
  if (read_v1_cpuacct_stat(dirs->cpuacct, stats, err) < 0
      || read_keyed_file(dirs->cpu, "cpu.stat", keys, N_ELEMENTS(keys), err) < 0)
    return -1;
  take_key(stats, CGROUP_STAT_CPU_NR_PERIODS, &stats->cpu.nr_periods, &keys[0]);
  take_key(stats, CGROUP_STAT_CPU_NR_THROTTLED, &stats->cpu.nr_throttled, &keys[1]);
  take_key(stats, CGROUP_STAT_CPU_THROTTLED, &stats->cpu.throttled_ns, &keys[2]);
  return 0;
}

static uint64_t
v1_limit(uint64_t value)
{
  return value > V1_UNLIMITED_ABOVE ? 0 : value;
}

/* The usage and, with swap accounting (swapaccount=1), the swap usage:
 * memsw counts memory plus swap, so swap is the difference.  The two
 * files are read back to back, as memory moves between the reads. */
static int
read_v1_usage(const char *dir, struct cgroup_stats *stats, struct error *err)
{
  uint64_t usage, memsw;
  bool has_usage, has_memsw;

  if (read_u64_file(dir, "memory.usage_in_bytes", &usage, NULL, &has_usage, err) < 0
      || read_u64_file(dir, "memory.memsw.usage_in_bytes", &memsw, NULL, &has_memsw, err) < 0)
    return -1;
  if (!has_usage)
    return 0;
  set_stat(stats, CGROUP_STAT_MEM_USAGE, &stats->memory.usage_bytes, usage);
  if (has_memsw)
    set_stat(stats, CGROUP_STAT_MEM_SWAP_USAGE, &stats->memory.swap_usage_bytes,
             memsw > usage ? memsw - usage : 0);
  return 0;
}

/* The memory limit and the swap limit, memsw.limit - limit. */
static int
read_v1_limits(const char *dir, struct cgroup_stats *stats, struct error *err)
{
  uint64_t limit, memsw;
  bool has_limit, has_memsw;

  if (read_u64_file(dir, "memory.limit_in_bytes", &limit, NULL, &has_limit, err) < 0
      || read_u64_file(dir, "memory.memsw.limit_in_bytes", &memsw, NULL, &has_memsw, err) < 0)
    return -1;
  if (!has_limit)
    return 0;
  set_stat(stats, CGROUP_STAT_MEM_LIMIT, &stats->memory.limit_bytes, v1_limit(limit));
  if (!has_memsw)
    return 0;
  /* The kernel keeps memsw >= memory; equal means no swap at all. */
  set_stat(stats, CGROUP_STAT_MEM_SWAP_LIMIT, &stats->memory.swap_limit_bytes,
           v1_limit(memsw) == 0 ? 0
           : memsw > limit      ? memsw - limit
                                : 0);
  if (v1_limit(memsw) != 0 && stats->memory.swap_limit_bytes == 0)
    stats->present |= CGROUP_STAT_MEM_NO_SWAP;
  return 0;
}

static int
read_v1_memory(const char *dir, struct cgroup_stats *stats, struct error *err)
{
  /* The total_ keys count the whole subtree, as usage_in_bytes does. */
  struct key_value stat_keys[] = {
    { "total_rss" },
    { "total_pgfault" },
    { "total_pgmajfault" },
    { "total_inactive_file" },
  };
  struct key_value oom_keys[] = { { "oom_kill" } };

  if (read_v1_usage(dir, stats, err) < 0 || read_v1_limits(dir, stats, err) < 0
      || read_keyed_file(dir, "memory.stat", stat_keys, N_ELEMENTS(stat_keys), err) < 0
      || read_keyed_file(dir, "memory.oom_control", oom_keys, N_ELEMENTS(oom_keys), err) < 0)
    return -1;
  take_key(stats, CGROUP_STAT_MEM_RSS, &stats->memory.rss_bytes, &stat_keys[0]);
  take_key(stats, CGROUP_STAT_MEM_PAGE_FAULTS, &stats->memory.page_faults, &stat_keys[1]);
  take_key(stats, CGROUP_STAT_MEM_MAJOR_PAGE_FAULTS, &stats->memory.major_page_faults,
           &stat_keys[2]);
  take_key(stats, CGROUP_STAT_MEM_OOM_KILL, &stats->memory.oom_kill, &oom_keys[0]);
  derive_memory(stats, &stat_keys[3]);
  return 0;
}

/* For messages: the first directory given. */
static const char *
first_dir(const struct cgroup_v1_dirs *dirs)
{
  const char *all[] = { dirs->memory, dirs->cpuacct, dirs->cpu, dirs->pids, dirs->unified };

  for (size_t i = 0; i < N_ELEMENTS(all); i++)
    if (all[i])
      return all[i];
  return "(none given)";
}

/* dir when it is an existing directory, else NULL (its fields off). */
static char *
existing(char *dir, size_t *count)
{
  if (dir == NULL || !is_directory(dir))
    return NULL;
  (*count)++;
  return dir;
}

int
cgroup_stats_read_v1(const struct cgroup_v1_dirs *dirs, struct cgroup_stats *out, struct error *err)
{
  struct cgroup_stats stats = { 0 };
  size_t count = 0;
  /* Only the pointers are copied: the strings stay the caller's. */
  struct cgroup_v1_dirs live = {
    existing(dirs->cpu, &count),  existing(dirs->cpuacct, &count), existing(dirs->memory, &count),
    existing(dirs->pids, &count), existing(dirs->unified, &count),
  };

  if (count == 0)
    return error_set(err, ENOENT, "cgroup %s: no such directory", first_dir(dirs));
  stats.timestamp_ns = time_realtime_ns();
  if (read_v1_cpu(&live, &stats, err) < 0 || read_v1_memory(live.memory, &stats, err) < 0
      || read_pids(live.pids, &stats, err) < 0 || read_psi_files(live.unified, &stats, err) < 0)
    return -1;
  *out = stats;
  return 0;
}

void
cgroup_v1_dirs_clear(struct cgroup_v1_dirs *dirs)
{
  char **all[] = { &dirs->cpu, &dirs->cpuacct, &dirs->memory, &dirs->pids, &dirs->unified };

  for (size_t i = 0; i < N_ELEMENTS(all); i++)
    {
      free(*all[i]);
      *all[i] = NULL;
    }
}

/* The first hierarchy that has a controller wins. */
static void
set_dir(char **dir, const char *mountpoint, const char *fs_path)
{
  if (*dir == NULL)
    *dir = xasprintf("%s%s", mountpoint, fs_path);
}

static void
assign_controllers(const char *mountpoint, const char *name, const char *fs_path,
                   struct cgroup_v1_dirs *out)
{
  cleanup_free char *copy = xstrdup(name);
  char *save = NULL;

  for (char *c = strtok_r(copy, ",", &save); c; c = strtok_r(NULL, ",", &save))
    {
      if (strcmp(c, "cpu") == 0)
        set_dir(&out->cpu, mountpoint, fs_path);
      else if (strcmp(c, "cpuacct") == 0)
        set_dir(&out->cpuacct, mountpoint, fs_path);
      else if (strcmp(c, "memory") == 0)
        set_dir(&out->memory, mountpoint, fs_path);
      else if (strcmp(c, "pids") == 0)
        set_dir(&out->pids, mountpoint, fs_path);
    }
}

void
cgroup_stats_v1_dirs(char *const *hierarchies, const char *root, const char *fs_path,
                     struct cgroup_v1_dirs *out)
{
  size_t root_len = strlen(root);

  memset(out, 0, sizeof *out);
  /* "/" is the root cgroup: the mount point itself. */
  if (strcmp(fs_path, "/") == 0)
    fs_path = "";
  for (size_t i = 0; hierarchies && hierarchies[i]; i++)
    {
      const char *mountpoint = hierarchies[i];
      const char *name = mountpoint + root_len;

      /* Only hierarchies directly under root: a bind mount of one
       * elsewhere is not where crid's runtimes create cgroups. */
      if (strncmp(mountpoint, root, root_len) != 0 || name[0] != '/' || name[1] == '\0'
          || strchr(name + 1, '/'))
        continue;
      name++;
      if (strcmp(name, "unified") == 0)
        set_dir(&out->unified, mountpoint, fs_path);
      else
        assign_controllers(mountpoint, name, fs_path, out);
    }
}

/* Absolute, and no ".." component to climb out of the hierarchy. */
static bool
fs_path_is_valid(const char *fs_path)
{
  const char *p = fs_path;

  if (fs_path == NULL || fs_path[0] != '/')
    return false;
  while ((p = strstr(p, "..")))
    {
      if ((p == fs_path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
        return false;
      p += 2;
    }
  return true;
}

int
cgroup_stats_read_fs(const char *fs_path, struct cgroup_stats *out, struct error *err)
{
  cleanup_strv char **hierarchies = NULL;
  struct cgroup_v1_dirs dirs;
  enum cgroup_mode mode = cgroup_host_mode();
  int ret;

  if (!fs_path_is_valid(fs_path))
    return error_set(err, EINVAL, "invalid cgroup path \"%s\"", fs_path ? fs_path : "");
  if (mode == CGROUP_MODE_UNIFIED)
    {
      cleanup_free char *dir
          = xasprintf(CGROUP_ROOT "%s", strcmp(fs_path, "/") == 0 ? "" : fs_path);
      return cgroup_stats_read_v2(dir, out, err);
    }
  if (mode != CGROUP_MODE_LEGACY && mode != CGROUP_MODE_HYBRID)
    return error_set(err, ENOTSUP, "no cgroup statistics: %s is not a cgroup mount", CGROUP_ROOT);
  if (cgroup_hierarchies(&hierarchies, err) < 0)
    return -1;
  cgroup_stats_v1_dirs(hierarchies, CGROUP_ROOT, fs_path, &dirs);
  ret = cgroup_stats_read_v1(&dirs, out, err);
  cgroup_v1_dirs_clear(&dirs);
  return ret;
}

int
cgroup_stats_read(const char *cgroups_path, bool systemd, struct cgroup_stats *out,
                  struct error *err)
{
  cleanup_free char *fs_path = NULL;

  if (cgroup_path_to_fs(cgroups_path, systemd, &fs_path, err) < 0)
    return -1;
  return cgroup_stats_read_fs(fs_path, out, err);
}
