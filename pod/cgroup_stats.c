/* Reading one cgroup's CPU, memory, pids and PSI statistics from the
 * kernel's v1 and v2 files; see cgroup_stats.h. */
#include "pod/cgroup_stats.h"
#include "pod/cgroup.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
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

/* The directories of a handle: one per v1 hierarchy read, and the
 * cgroup2 directory (on a hybrid host, for PSI only).  On cgroup2 every
 * file is in the one directory, slot 0. */
enum slot
{
  SLOT_CPU,
  SLOT_CPUACCT,
  SLOT_MEMORY,
  SLOT_PIDS,
  SLOT_UNIFIED,
  N_SLOTS
};

/* Every file read; a handle remembers the missing ones by these bits. */
enum stat_file
{
  F_V2_CPU_STAT,
  F_V2_MEMORY_CURRENT,
  F_V2_MEMORY_MAX,
  F_V2_MEMORY_STAT,
  F_V2_MEMORY_EVENTS,
  F_V2_SWAP_CURRENT,
  F_V2_SWAP_MAX,
  F_PIDS_CURRENT,
  F_PIDS_MAX,
  F_CPU_PRESSURE,
  F_MEMORY_PRESSURE,
  F_IO_PRESSURE,
  F_V1_CPUACCT_USAGE,
  F_V1_CPUACCT_STAT,
  F_V1_CPU_STAT,
  F_V1_MEMORY_USAGE,
  F_V1_MEMSW_USAGE,
  F_V1_MEMORY_LIMIT,
  F_V1_MEMSW_LIMIT,
  F_V1_MEMORY_STAT,
  F_V1_OOM_CONTROL,
  N_FILES
};

static const struct
{
  const char *name;
  enum slot slot; /* on v1 */
} files[N_FILES] = {
  [F_V2_CPU_STAT] = { "cpu.stat", SLOT_CPU },
  [F_V2_MEMORY_CURRENT] = { "memory.current", SLOT_MEMORY },
  [F_V2_MEMORY_MAX] = { "memory.max", SLOT_MEMORY },
  [F_V2_MEMORY_STAT] = { "memory.stat", SLOT_MEMORY },
  [F_V2_MEMORY_EVENTS] = { "memory.events", SLOT_MEMORY },
  [F_V2_SWAP_CURRENT] = { "memory.swap.current", SLOT_MEMORY },
  [F_V2_SWAP_MAX] = { "memory.swap.max", SLOT_MEMORY },
  [F_PIDS_CURRENT] = { "pids.current", SLOT_PIDS },
  [F_PIDS_MAX] = { "pids.max", SLOT_PIDS },
  [F_CPU_PRESSURE] = { "cpu.pressure", SLOT_UNIFIED },
  [F_MEMORY_PRESSURE] = { "memory.pressure", SLOT_UNIFIED },
  [F_IO_PRESSURE] = { "io.pressure", SLOT_UNIFIED },
  [F_V1_CPUACCT_USAGE] = { "cpuacct.usage", SLOT_CPUACCT },
  [F_V1_CPUACCT_STAT] = { "cpuacct.stat", SLOT_CPUACCT },
  [F_V1_CPU_STAT] = { "cpu.stat", SLOT_CPU },
  [F_V1_MEMORY_USAGE] = { "memory.usage_in_bytes", SLOT_MEMORY },
  [F_V1_MEMSW_USAGE] = { "memory.memsw.usage_in_bytes", SLOT_MEMORY },
  [F_V1_MEMORY_LIMIT] = { "memory.limit_in_bytes", SLOT_MEMORY },
  [F_V1_MEMSW_LIMIT] = { "memory.memsw.limit_in_bytes", SLOT_MEMORY },
  [F_V1_MEMORY_STAT] = { "memory.stat", SLOT_MEMORY },
  [F_V1_OOM_CONTROL] = { "memory.oom_control", SLOT_MEMORY },
};

struct cgroup_handle
{
  atomic_int references;
  bool v2;
  /* The slot whose directory a slot uses: hierarchies mounted together
   * ("cpu,cpuacct") give one directory, opened once. */
  int alias[N_SLOTS];
  char *paths[N_SLOTS];    /* NULL: no such hierarchy */
  atomic_int fds[N_SLOTS]; /* O_PATH directory descriptors; -1: not open */
  atomic_uint missing;     /* 1 << enum stat_file of the files found missing */
  atomic_bool stale;       /* a directory was replaced under its path */
};

/* Most cgroup files are well under a page; larger ones grow a buffer. */
#define SMALL_TEXT 4096

/* One reading through a handle: the text of the file being parsed. */
struct reader
{
  struct cgroup_handle *handle;
  char *text; /* small, or a larger heap buffer */
  size_t size;
  char small[SMALL_TEXT];
};

/* A file of a reading, for messages. */
struct file
{
  const struct cgroup_handle *handle;
  enum stat_file id;
};

static int
slot_index(const struct cgroup_handle *handle, enum slot slot)
{
  return handle->v2 ? 0 : handle->alias[slot];
}

static const char *
file_dir(const struct file *file)
{
  return file->handle->paths[slot_index(file->handle, files[file->id].slot)];
}

static int
bad_content(struct error *err, const struct file *file, const char *why, const char *text,
            size_t len)
{
  cleanup_free char *quoted = quote_untrusted(text, len, QUOTE_MAX);
  return error_set(err, EINVAL, "%s/%s: %s: %s", file_dir(file), files[file->id].name, why, quoted);
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

/* ---- Handles ---------------------------------------------------------- */

static struct cgroup_handle *
handle_new(bool v2)
{
  struct cgroup_handle *handle = xcalloc(1, sizeof *handle);

  atomic_init(&handle->references, 1);
  handle->v2 = v2;
  for (size_t i = 0; i < N_SLOTS; i++)
    {
      handle->alias[i] = (int)i;
      atomic_init(&handle->fds[i], -1);
    }
  atomic_init(&handle->missing, 0);
  atomic_init(&handle->stale, false);
  return handle;
}

struct cgroup_handle *
cgroup_handle_new_v2(const char *dir)
{
  struct cgroup_handle *handle = handle_new(true);

  handle->paths[0] = xstrdup(dir);
  return handle;
}

struct cgroup_handle *
cgroup_handle_new_v1(const struct cgroup_v1_dirs *dirs)
{
  struct cgroup_handle *handle = handle_new(false);
  const char *given[N_SLOTS] = {
    [SLOT_CPU] = dirs->cpu,   [SLOT_CPUACCT] = dirs->cpuacct, [SLOT_MEMORY] = dirs->memory,
    [SLOT_PIDS] = dirs->pids, [SLOT_UNIFIED] = dirs->unified,
  };

  for (size_t i = 0; i < N_SLOTS; i++)
    {
      handle->paths[i] = given[i] ? xstrdup(given[i]) : NULL;
      for (size_t j = 0; j < i; j++)
        if (given[i] && given[j] && strcmp(given[i], given[j]) == 0)
          {
            handle->alias[i] = (int)j;
            break;
          }
    }
  return handle;
}

struct cgroup_handle *
cgroup_handle_ref(struct cgroup_handle *handle)
{
  atomic_fetch_add(&handle->references, 1);
  return handle;
}

void
cgroup_handle_unref(struct cgroup_handle *handle)
{
  if (handle == NULL || atomic_fetch_sub(&handle->references, 1) != 1)
    return;
  for (size_t i = 0; i < N_SLOTS; i++)
    {
      int fd = atomic_load(&handle->fds[i]);
      if (fd >= 0)
        close(fd);
      free(handle->paths[i]);
    }
  free(handle);
}

void
cgroup_handle_recheck(struct cgroup_handle *handle)
{
  atomic_store(&handle->missing, 0);
}

int
cgroup_handle_open_dirs(struct cgroup_handle *handle)
{
  int n = 0;

  for (size_t i = 0; i < N_SLOTS; i++)
    n += atomic_load(&handle->fds[i]) >= 0;
  return n;
}

bool
cgroup_handle_is_stale(struct cgroup_handle *handle)
{
  return atomic_load(&handle->stale);
}

/* The slot's open directory, opened now if it is not yet; -1 (with
 * *error_code) when it has none: no such hierarchy, or no such directory
 * (not remembered: a later reading tries again).  Two readings opening it
 * at once keep one descriptor. */
static int
slot_fd(struct cgroup_handle *handle, enum slot slot, int *error_code)
{
  int i = slot_index(handle, slot);
  int fd = atomic_load(&handle->fds[i]);
  int expected = -1;

  *error_code = 0;
  if (fd >= 0)
    return fd;
  if (handle->paths[i] == NULL)
    {
      *error_code = ENOENT;
      return -1;
    }
  /* O_PATH: only a base for openat; nothing is read through it. */
  fd = open(handle->paths[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    {
      *error_code = errno;
      return -1;
    }
  if (!atomic_compare_exchange_strong(&handle->fds[i], &expected, fd))
    {
      close(fd);
      fd = expected;
    }
  return fd;
}

/* openat found no such file.  Either the cgroup lacks it (remembered, so
 * later readings skip it), or the directory held is gone (ENOENT: the
 * cgroup is being removed), or another directory now has its path
 * (ESTALE: the handle is stale, the caller makes a new one). */
static int
file_absent(struct reader *r, enum stat_file id, int dir, struct error *err)
{
  struct cgroup_handle *handle = r->handle;
  const char *path = handle->paths[slot_index(handle, files[id].slot)];
  struct stat held, now;

  if (fstat(dir, &held) < 0)
    return error_set_errno(err, errno, "cgroup %s", path);
  if (stat(path, &now) < 0)
    return errno == ENOENT ? error_set(err, ENOENT, "cgroup %s: no such directory", path)
                           : error_set_errno(err, errno, "cgroup %s", path);
  if (held.st_ino != now.st_ino || held.st_dev != now.st_dev)
    {
      atomic_store(&handle->stale, true);
      return error_set(err, ESTALE, "cgroup %s was removed and made again", path);
    }
  atomic_fetch_or(&handle->missing, 1u << id);
  return 0;
}

/* Reads fd to its end into r->text, NUL-terminated.  A cgroup file is a
 * single seq_file record that the kernel formats whole at the first read,
 * so a read that returns less than asked is its end: the read that would
 * return 0 is saved (on regular files, the fixtures, a short read is the
 * end too).  *len is -1 when the file turned out not to be there. */
static int
read_text(struct reader *r, const struct file *file, int fd, ssize_t *len, struct error *err)
{
  size_t used = 0;

  for (;;)
    {
      size_t room = r->size - 1 - used;
      ssize_t n;

      if (room == 0)
        {
          r->size *= 2;
          if (r->text == r->small)
            r->text = memcpy(xmalloc(r->size), r->small, used);
          else
            r->text = xrealloc(r->text, r->size);
          room = r->size - 1 - used;
        }
      n = read(fd, r->text + used, room);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          /* ENODEV: the cgroup was removed meanwhile; EOPNOTSUPP: the
           * feature (PSI) is switched off, which lasts. */
          if (errno == EOPNOTSUPP)
            atomic_fetch_or(&r->handle->missing, 1u << file->id);
          if (errno == ENODEV || errno == EOPNOTSUPP)
            {
              *len = -1;
              return 0;
            }
          return error_set_errno(err, errno, "read %s/%s", file_dir(file), files[file->id].name);
        }
      used += (size_t)n;
      if (used > CGROUP_STATS_MAX_FILE_SIZE)
        return error_set(err, EFBIG, "read %s/%s: larger than %d bytes", file_dir(file),
                         files[file->id].name, CGROUP_STATS_MAX_FILE_SIZE);
      if ((size_t)n < room)
        break;
    }
  r->text[used] = '\0';
  *len = (ssize_t)used;
  return 0;
}

/* The text of a file in r->text (valid until the next file), *found
 * false when the file is not there: its directory is not available, it
 * is known missing, or it is missing now.  ENODEV is what a cgroup
 * removed while it is read answers, and EOPNOTSUPP what a switched-off
 * feature (PSI) answers: both mean "not available", like ENOENT. */
static int
read_stat_file(struct reader *r, enum stat_file id, bool *found, struct error *err)
{
  struct file file = { r->handle, id };
  int error_code, dir, fd, ret;
  ssize_t len = -1;

  *found = false;
  if (atomic_load(&r->handle->missing) & (1u << id))
    return 0;
  dir = slot_fd(r->handle, files[id].slot, &error_code);
  if (dir < 0)
    return 0; /* the directory's fields are off */
  fd = openat(dir, files[id].name, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    {
      if (errno == ENOENT)
        return file_absent(r, id, dir, err);
      if (errno == EOPNOTSUPP)
        atomic_fetch_or(&r->handle->missing, 1u << id);
      if (errno == ENODEV || errno == EOPNOTSUPP)
        return 0;
      return error_set_errno(err, errno, "open %s/%s", file_dir(&file), files[id].name);
    }
  ret = read_text(r, &file, fd, &len, err);
  close(fd);
  if (ret < 0 || len < 0)
    return ret;
  /* A NUL would end the text early and hide what follows it. */
  if (memchr(r->text, '\0', (size_t)len))
    return bad_content(err, &file, "contains a NUL byte", r->text, (size_t)len);
  *found = true;
  return 0;
}

/* A file of one number, e.g. memory.current.  Where is_max is given,
 * "max" (no limit) is allowed too: it reads as 0 with *is_max set.
 * *found stays false when the file is missing. */
static int
read_u64_file(struct reader *r, enum stat_file id, uint64_t *value, bool *is_max, bool *found,
              struct error *err)
{
  struct file file = { r->handle, id };
  size_t len;

  if (is_max)
    *is_max = false;
  if (read_stat_file(r, id, found, err) < 0)
    return -1;
  if (!*found)
    return 0;
  len = strlen(r->text);
  if (len > 0 && r->text[len - 1] == '\n')
    len--;
  if (is_max && len == 3 && memcmp(r->text, "max", 3) == 0)
    {
      *value = 0;
      *is_max = true;
    }
  else if (!parse_u64(r->text, len, value))
    {
      *found = false;
      return bad_content(err, &file, is_max ? "not a number or \"max\"" : "not a number", r->text,
                         len);
    }
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
parse_keyed_line(const struct file *path, const char *line, size_t len, struct key_value *keys,
                 size_t n, struct error *err)
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
parse_keyed(const struct file *path, const char *text, struct key_value *keys, size_t n,
            struct error *err)
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
parse_psi(const struct file *path, const char *text, struct cgroup_psi *out, struct error *err)
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

/* Fills keys from a file.  A missing file finds no key. */
static int
read_keyed_file(struct reader *r, enum stat_file id, struct key_value *keys, size_t n,
                struct error *err)
{
  struct file file = { r->handle, id };
  bool found;

  if (read_stat_file(r, id, &found, err) < 0)
    return -1;
  if (!found)
    return 0;
  return parse_keyed(&file, r->text, keys, n, err);
}

static int
read_psi_file(struct reader *r, enum stat_file id, struct cgroup_psi *out, struct error *err)
{
  struct file file = { r->handle, id };
  bool found;

  if (read_stat_file(r, id, &found, err) < 0)
    return -1;
  if (!found)
    return 0;
  return parse_psi(&file, r->text, out, err);
}

static int
read_psi_files(struct reader *r, struct cgroup_stats *stats, struct error *err)
{
  if (read_psi_file(r, F_CPU_PRESSURE, &stats->psi.cpu, err) < 0
      || read_psi_file(r, F_MEMORY_PRESSURE, &stats->psi.memory, err) < 0
      || read_psi_file(r, F_IO_PRESSURE, &stats->psi.io, err) < 0)
    return -1;
  return 0;
}

static void
set_stat(struct cgroup_stats *stats, uint32_t bit, uint64_t *field, uint64_t value)
{
  *field = value;
  stats->present |= bit;
}

/* One number file into one field, when the file is there; with
 * max_allowed, "max" reads as 0 (no limit). */
static int
take_file(struct reader *r, enum stat_file id, bool max_allowed, struct cgroup_stats *stats,
          uint32_t bit, uint64_t *field, struct error *err)
{
  uint64_t value;
  bool found, is_max;

  if (read_u64_file(r, id, &value, max_allowed ? &is_max : NULL, &found, err) < 0)
    return -1;
  if (found)
    set_stat(stats, bit, field, value);
  return 0;
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
read_v2_cpu(struct reader *r, struct cgroup_stats *stats, struct error *err)
{
  struct key_value keys[] = {
    { "usage_usec", NS_PER_US }, { "user_usec", NS_PER_US }, { "system_usec", NS_PER_US },
    { "nr_periods", 1 },         { "nr_throttled", 1 },      { "throttled_usec", NS_PER_US },
  };

  if (read_keyed_file(r, F_V2_CPU_STAT, keys, N_ELEMENTS(keys), err) < 0)
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
read_v2_swap(struct reader *r, struct cgroup_stats *stats, struct error *err)
{
  uint64_t value;
  bool found, is_max;

  if (take_file(r, F_V2_SWAP_CURRENT, false, stats, CGROUP_STAT_MEM_SWAP_USAGE,
                &stats->memory.swap_usage_bytes, err)
      < 0)
    return -1;
  if (read_u64_file(r, F_V2_SWAP_MAX, &value, &is_max, &found, err) < 0)
    return -1;
  if (!found)
    return 0;
  set_stat(stats, CGROUP_STAT_MEM_SWAP_LIMIT, &stats->memory.swap_limit_bytes, value);
  if (value == 0 && !is_max)
    stats->present |= CGROUP_STAT_MEM_NO_SWAP;
  return 0;
}

static int
read_v2_memory(struct reader *r, struct cgroup_stats *stats, struct error *err)
{
  struct key_value stat_keys[] = {
    { "anon" },
    { "pgfault" },
    { "pgmajfault" },
    { "inactive_file" },
  };
  if (take_file(r, F_V2_MEMORY_CURRENT, false, stats, CGROUP_STAT_MEM_USAGE,
                &stats->memory.usage_bytes, err)
          < 0
      || take_file(r, F_V2_MEMORY_MAX, true, stats, CGROUP_STAT_MEM_LIMIT,
                   &stats->memory.limit_bytes, err)
             < 0)
    return -1;
  if (read_keyed_file(r, F_V2_MEMORY_STAT, stat_keys, N_ELEMENTS(stat_keys), err) < 0)
    return -1;
  take_key(stats, CGROUP_STAT_MEM_RSS, &stats->memory.rss_bytes, &stat_keys[0]);
  take_key(stats, CGROUP_STAT_MEM_PAGE_FAULTS, &stats->memory.page_faults, &stat_keys[1]);
  take_key(stats, CGROUP_STAT_MEM_MAJOR_PAGE_FAULTS, &stats->memory.major_page_faults,
           &stat_keys[2]);
  derive_memory(stats, &stat_keys[3]);
  return 0;
}

static int
read_v2_oom(struct reader *r, struct cgroup_stats *stats, struct error *err)
{
  struct key_value event_keys[] = { { "oom_kill" } };

  if (read_keyed_file(r, F_V2_MEMORY_EVENTS, event_keys, N_ELEMENTS(event_keys), err) < 0)
    return -1;
  take_key(stats, CGROUP_STAT_MEM_OOM_KILL, &stats->memory.oom_kill, &event_keys[0]);
  return 0;
}

/* pids.current and pids.max, the same in both versions. */
static int
read_pids(struct reader *r, struct cgroup_stats *stats, struct error *err)
{
  if (take_file(r, F_PIDS_CURRENT, false, stats, CGROUP_STAT_PIDS_CURRENT, &stats->pids.current,
                err)
          < 0
      || take_file(r, F_PIDS_MAX, true, stats, CGROUP_STAT_PIDS_MAX, &stats->pids.max, err) < 0)
    return -1;
  return 0;
}

/* cpu.stat holds every CPU field, so CGROUP_WANT_CPU_DETAIL costs
 * nothing more. */
static int
read_v2(struct reader *r, uint32_t wanted, struct cgroup_stats *stats, struct error *err)
{
  if ((wanted & (CGROUP_WANT_CPU | CGROUP_WANT_CPU_DETAIL)) && read_v2_cpu(r, stats, err) < 0)
    return -1;
  if ((wanted & CGROUP_WANT_MEMORY) && read_v2_memory(r, stats, err) < 0)
    return -1;
  if ((wanted & CGROUP_WANT_OOM) && read_v2_oom(r, stats, err) < 0)
    return -1;
  if ((wanted & CGROUP_WANT_SWAP) && read_v2_swap(r, stats, err) < 0)
    return -1;
  if ((wanted & CGROUP_WANT_PIDS) && read_pids(r, stats, err) < 0)
    return -1;
  if ((wanted & CGROUP_WANT_PSI) && read_psi_files(r, stats, err) < 0)
    return -1;
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
read_v1_cpuacct_stat(struct reader *r, struct cgroup_stats *stats, struct error *err)
{
  struct key_value keys[] = { { "user" }, { "system" } };
  uint32_t bits[] = { CGROUP_STAT_CPU_USER, CGROUP_STAT_CPU_SYSTEM };
  uint64_t *fields[] = { &stats->cpu.user_ns, &stats->cpu.system_ns };
  struct file file = { r->handle, F_V1_CPUACCT_STAT };
  long hz = sysconf(_SC_CLK_TCK);

  if (read_keyed_file(r, F_V1_CPUACCT_STAT, keys, N_ELEMENTS(keys), err) < 0)
    return -1;
  for (size_t i = 0; i < N_ELEMENTS(keys); i++)
    {
      uint64_t ns;
      if (!keys[i].found)
        continue;
      if (hz <= 0 || !ticks_to_ns(keys[i].value, (uint64_t)hz, &ns))
        return error_set(err, EINVAL,
                         "%s/cpuacct.stat: value out of range: \"%s %" PRIu64 "\" (ticks)",
                         file_dir(&file), keys[i].key, keys[i].value);
      set_stat(stats, bits[i], fields[i], ns);
    }
  return 0;
}

static int
read_v1_cpu(struct reader *r, uint32_t wanted, struct cgroup_stats *stats, struct error *err)
{
  struct key_value keys[] = { { "nr_periods" }, { "nr_throttled" }, { "throttled_time" } };

  if (wanted & CGROUP_WANT_CPU)
    {
      if (take_file(r, F_V1_CPUACCT_USAGE, false, stats, CGROUP_STAT_CPU_USAGE,
                    &stats->cpu.usage_ns, err)
          < 0)
        return -1;
    }
  if (!(wanted & CGROUP_WANT_CPU_DETAIL))
    return 0;
  if (read_v1_cpuacct_stat(r, stats, err) < 0
      || read_keyed_file(r, F_V1_CPU_STAT, keys, N_ELEMENTS(keys), err) < 0)
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
read_v1_usage(struct reader *r, bool swap, struct cgroup_stats *stats, struct error *err)
{
  uint64_t usage, memsw;
  bool has_usage, has_memsw = false;

  if (read_u64_file(r, F_V1_MEMORY_USAGE, &usage, NULL, &has_usage, err) < 0
      || (swap && read_u64_file(r, F_V1_MEMSW_USAGE, &memsw, NULL, &has_memsw, err) < 0))
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
read_v1_limits(struct reader *r, bool swap, struct cgroup_stats *stats, struct error *err)
{
  uint64_t limit, memsw;
  bool has_limit, has_memsw = false;

  if (read_u64_file(r, F_V1_MEMORY_LIMIT, &limit, NULL, &has_limit, err) < 0
      || (swap && read_u64_file(r, F_V1_MEMSW_LIMIT, &memsw, NULL, &has_memsw, err) < 0))
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
read_v1_memory(struct reader *r, uint32_t wanted, struct cgroup_stats *stats, struct error *err)
{
  /* The total_ keys count the whole subtree, as usage_in_bytes does. */
  struct key_value stat_keys[] = {
    { "total_rss" },
    { "total_pgfault" },
    { "total_pgmajfault" },
    { "total_inactive_file" },
  };
  struct key_value oom_keys[] = { { "oom_kill" } };
  bool swap = wanted & CGROUP_WANT_SWAP;

  if ((wanted & (CGROUP_WANT_MEMORY | CGROUP_WANT_SWAP))
      && (read_v1_usage(r, swap, stats, err) < 0 || read_v1_limits(r, swap, stats, err) < 0))
    return -1;
  if (wanted & CGROUP_WANT_MEMORY)
    {
      if (read_keyed_file(r, F_V1_MEMORY_STAT, stat_keys, N_ELEMENTS(stat_keys), err) < 0)
        return -1;
      take_key(stats, CGROUP_STAT_MEM_RSS, &stats->memory.rss_bytes, &stat_keys[0]);
      take_key(stats, CGROUP_STAT_MEM_PAGE_FAULTS, &stats->memory.page_faults, &stat_keys[1]);
      take_key(stats, CGROUP_STAT_MEM_MAJOR_PAGE_FAULTS, &stats->memory.major_page_faults,
               &stat_keys[2]);
      derive_memory(stats, &stat_keys[3]);
    }
  if (wanted & CGROUP_WANT_OOM)
    {
      if (read_keyed_file(r, F_V1_OOM_CONTROL, oom_keys, N_ELEMENTS(oom_keys), err) < 0)
        return -1;
      take_key(stats, CGROUP_STAT_MEM_OOM_KILL, &stats->memory.oom_kill, &oom_keys[0]);
    }
  return 0;
}

static int
read_v1(struct reader *r, uint32_t wanted, struct cgroup_stats *stats, struct error *err)
{
  if (read_v1_cpu(r, wanted, stats, err) < 0 || read_v1_memory(r, wanted, stats, err) < 0)
    return -1;
  if ((wanted & CGROUP_WANT_PIDS) && read_pids(r, stats, err) < 0)
    return -1;
  if ((wanted & CGROUP_WANT_PSI) && read_psi_files(r, stats, err) < 0)
    return -1;
  return 0;
}

/* --- Readings --- */

/* The directories a reading of `wanted` needs (1 << enum slot). */
static unsigned
slots_wanted(const struct cgroup_handle *handle, uint32_t wanted)
{
  unsigned slots = 0;

  if (handle->v2)
    return 1u << 0;
  if (wanted & CGROUP_WANT_CPU)
    slots |= 1u << SLOT_CPUACCT;
  if (wanted & CGROUP_WANT_CPU_DETAIL)
    slots |= 1u << SLOT_CPUACCT | 1u << SLOT_CPU;
  if (wanted & (CGROUP_WANT_MEMORY | CGROUP_WANT_SWAP | CGROUP_WANT_OOM))
    slots |= 1u << SLOT_MEMORY;
  if (wanted & CGROUP_WANT_PIDS)
    slots |= 1u << SLOT_PIDS;
  if (wanted & CGROUP_WANT_PSI)
    slots |= 1u << SLOT_UNIFIED;
  return slots;
}

/* Opens what the reading needs.  When none of it is there the cgroup is
 * gone: the error of the cgroup2 directory, or ENOENT naming the first
 * v1 directory (memory first); a missing v1 directory alone only turns
 * its fields off. */
static int
open_dirs(struct cgroup_handle *handle, uint32_t wanted, struct error *err)
{
  static const enum slot named_first[]
      = { SLOT_MEMORY, SLOT_CPUACCT, SLOT_CPU, SLOT_PIDS, SLOT_UNIFIED };
  unsigned slots = slots_wanted(handle, wanted);
  int first_error = 0;

  for (int i = 0; i < N_SLOTS; i++)
    {
      int code;
      if (!(slots & (1u << i)))
        continue;
      if (slot_fd(handle, (enum slot)i, &code) >= 0)
        return 0;
      if (first_error == 0)
        first_error = code;
    }
  if (handle->v2)
    return error_set_errno(err, first_error ? first_error : ENOENT, "cgroup %s", handle->paths[0]);
  for (size_t i = 0; i < N_ELEMENTS(named_first); i++)
    if ((slots & (1u << named_first[i])) && handle->paths[named_first[i]])
      return error_set(err, ENOENT, "cgroup %s: no such directory", handle->paths[named_first[i]]);
  return error_set(err, ENOENT, "cgroup %s: no such directory", "(none given)");
}

int
cgroup_stats_read_handle(struct cgroup_handle *handle, uint32_t wanted, struct cgroup_stats *out,
                         struct error *err)
{
  struct reader r = { .handle = handle, .size = SMALL_TEXT };
  struct cgroup_stats stats = { 0 };
  int ret;

  r.text = r.small;
  if (open_dirs(handle, wanted, err) < 0)
    return -1;
  stats.timestamp_ns = time_realtime_ns();
  ret = handle->v2 ? read_v2(&r, wanted, &stats, err) : read_v1(&r, wanted, &stats, err);
  if (r.text != r.small)
    free(r.text);
  if (ret < 0)
    return -1;
  *out = stats;
  return 0;
}

/* A one-time reading of everything through a handle of its own. */
static int
read_once(struct cgroup_handle *handle, struct cgroup_stats *out, struct error *err)
{
  int ret = cgroup_stats_read_handle(handle, CGROUP_WANT_ALL, out, err);

  cgroup_handle_unref(handle);
  return ret;
}

int
cgroup_stats_read_v2(const char *dir, struct cgroup_stats *out, struct error *err)
{
  return read_once(cgroup_handle_new_v2(dir), out, err);
}

int
cgroup_stats_read_v1(const struct cgroup_v1_dirs *dirs, struct cgroup_stats *out, struct error *err)
{
  return read_once(cgroup_handle_new_v1(dirs), out, err);
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
cgroup_handle_new_fs(const char *fs_path, char *const *hierarchies, struct cgroup_handle **out,
                     struct error *err)
{
  cleanup_strv char **found = NULL;
  struct cgroup_v1_dirs dirs;
  enum cgroup_mode mode = cgroup_host_mode();

  *out = NULL;
  if (!fs_path_is_valid(fs_path))
    return error_set(err, EINVAL, "invalid cgroup path \"%s\"", fs_path ? fs_path : "");
  if (mode == CGROUP_MODE_UNIFIED)
    {
      cleanup_free char *dir
          = xasprintf(CGROUP_ROOT "%s", strcmp(fs_path, "/") == 0 ? "" : fs_path);
      *out = cgroup_handle_new_v2(dir);
      return 0;
    }
  if (mode != CGROUP_MODE_LEGACY && mode != CGROUP_MODE_HYBRID)
    return error_set(err, ENOTSUP, "no cgroup statistics: %s is not a cgroup mount", CGROUP_ROOT);
  if (hierarchies == NULL)
    {
      if (cgroup_hierarchies(&found, err) < 0)
        return -1;
      hierarchies = found;
    }
  cgroup_stats_v1_dirs(hierarchies, CGROUP_ROOT, fs_path, &dirs);
  *out = cgroup_handle_new_v1(&dirs);
  cgroup_v1_dirs_clear(&dirs);
  return 0;
}

int
cgroup_stats_read_fs(const char *fs_path, struct cgroup_stats *out, struct error *err)
{
  struct cgroup_handle *handle;

  if (cgroup_handle_new_fs(fs_path, NULL, &handle, err) < 0)
    return -1;
  return read_once(handle, out, err);
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
