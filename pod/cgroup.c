/* Naming, finding and removing the cgroups of pods and containers on
 * either cgroup driver; see cgroup.h. */
#include "pod/cgroup.h"
#include "common/mountinfo.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* A cgroup whose last process is exiting stays busy for a moment. */
#define RMDIR_RETRIES 50
#define RMDIR_RETRY_NS (10 * 1000 * 1000)
/* Far deeper than any runtime nests; stops a runaway recursion. */
#define REMOVE_MAX_DEPTH 32

int
cgroup_mode_at(const char *root, enum cgroup_mode *out, struct error *err)
{
  cleanup_free char *unified = xasprintf("%s/unified", root);
  struct statfs fs;

  if (statfs(root, &fs) < 0)
    return error_set_errno(err, errno, "statfs %s", root);
  if (fs.f_type == CGROUP2_SUPER_MAGIC)
    {
      *out = CGROUP_MODE_UNIFIED;
      return 0;
    }
  if (fs.f_type != TMPFS_MAGIC)
    return error_set(err, EIO, "%s is not a cgroup mount (file system type 0x%lx)", root,
                     (unsigned long)fs.f_type);
  if (statfs(unified, &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC)
    *out = CGROUP_MODE_HYBRID;
  else
    *out = CGROUP_MODE_LEGACY;
  return 0;
}

enum cgroup_mode
cgroup_host_mode(void)
{
  static enum cgroup_mode cached = CGROUP_MODE_UNKNOWN;
  enum cgroup_mode mode = __atomic_load_n(&cached, __ATOMIC_RELAXED);
  struct error err = ERROR_INIT;

  if (mode != CGROUP_MODE_UNKNOWN)
    return mode;
  if (cgroup_mode_at(CGROUP_ROOT, &mode, &err) < 0)
    mode = CGROUP_MODE_UNKNOWN;
  error_clear(&err);
  __atomic_store_n(&cached, mode, __ATOMIC_RELAXED);
  return mode;
}

const char *
cgroup_mode_name(enum cgroup_mode mode)
{
  switch (mode)
    {
    case CGROUP_MODE_LEGACY:
      return "legacy";
    case CGROUP_MODE_HYBRID:
      return "hybrid";
    case CGROUP_MODE_UNIFIED:
      return "unified";
    default:
      return "unknown";
    }
}

/* An id becomes a path component and, with systemd, part of a unit name,
 * where ':' would split the cgroupsPath. */
static int
check_id(const char *id, struct error *err)
{
  if (id == NULL || !path_component_is_valid(id) || strchr(id, ':') || strchr(id, ' '))
    return error_set(err, EINVAL, "invalid cgroup name \"%s\"", id ? id : "");
  return 0;
}

/* "/a//b/./c/" -> "/a/b/c"; "" or "/" -> "".  EINVAL on "..". */
static int
clean_absolute(const char *path, char **out, struct error *err)
{
  cleanup_free char *copy = xstrdup(path);
  cleanup_free char *result = xmalloc(strlen(path) + 2);
  char *save = NULL;
  size_t len = 0;

  result[0] = '\0';
  for (char *part = strtok_r(copy, "/", &save); part; part = strtok_r(NULL, "/", &save))
    {
      if (strcmp(part, ".") == 0)
        continue;
      if (strcmp(part, "..") == 0)
        return error_set(err, EINVAL, "cgroup path \"%s\" contains \"..\"", path);
      result[len++] = '/';
      strcpy(result + len, part);
      len += strlen(part);
    }
  *out = steal_pointer(&result);
  return 0;
}

static int
cgroupfs_path(const char *parent, const char *id, char **out, struct error *err)
{
  cleanup_free char *clean = NULL;
  const char *base;

  if (parent == NULL || parent[0] == '\0')
    parent = CGROUP_DEFAULT_PARENT;
  base = strrchr(parent, '/');
  base = base ? base + 1 : parent;
  if (str_has_suffix(base, ".slice"))
    return error_set(err, EINVAL,
                     "cgroup parent \"%s\" is a systemd slice, but the cgroup manager is cgroupfs",
                     parent);
  if (clean_absolute(parent, &clean, err) < 0)
    return -1;
  *out = xasprintf("%s/" CGROUP_SCOPE_PREFIX "-%s", clean, id);
  return 0;
}

static int
systemd_path(const char *parent, const char *id, char **out, struct error *err)
{
  cleanup_free char *ignored = NULL;

  if (parent == NULL || parent[0] == '\0')
    parent = CGROUP_DEFAULT_SLICE;
  if (strchr(parent, '/') || !str_has_suffix(parent, ".slice"))
    return error_set(err, EINVAL,
                     "cgroup parent \"%s\" is not a systemd slice name (\"*.slice\"), but the "
                     "cgroup manager is systemd",
                     parent);
  if (cgroup_slice_to_path(parent, &ignored, err) < 0)
    return -1;
  *out = xasprintf("%s:" CGROUP_SCOPE_PREFIX ":%s", parent, id);
  return 0;
}

int
cgroup_container_path(const char *parent, const char *id, bool systemd, char **out,
                      struct error *err)
{
  if (check_id(id, err) < 0)
    return -1;
  return systemd ? systemd_path(parent, id, out, err) : cgroupfs_path(parent, id, out, err);
}

int
cgroup_sandbox_path(const char *parent, const char *id, bool systemd, char **out, struct error *err)
{
  /* The pause container is a container of the pod like any other: kubelet
   * has already made the pod cgroup (parent) with the pod's limits. */
  return cgroup_container_path(parent, id, systemd, out, err);
}

int
cgroup_slice_to_path(const char *slice, char **out, struct error *err)
{
  size_t name_len;
  char *path;
  size_t len = 0;

  if (slice == NULL || !str_has_suffix(slice, ".slice") || strchr(slice, '/'))
    return error_set(err, EINVAL, "invalid systemd slice name \"%s\"", slice ? slice : "");
  if (strcmp(slice, "-.slice") == 0)
    {
      *out = xstrdup("/");
      return 0;
    }
  name_len = strlen(slice) - strlen(".slice");
  /* systemd refuses "", "-a", "a-", "a--b": each dash must separate two
   * non-empty levels. */
  if (name_len == 0 || slice[0] == '-' || slice[name_len - 1] == '-' || strstr(slice, "--"))
    return error_set(err, EINVAL, "invalid systemd slice name \"%s\"", slice);

  /* Each dash adds one "/<prefix>.slice" level, then the slice itself. */
  path = xmalloc(name_len * (name_len + 8) + strlen(slice) + 2);
  for (size_t i = 0; i < name_len; i++)
    if (slice[i] == '-')
      {
        len += (size_t)sprintf(path + len, "/%.*s.slice", (int)i, slice);
      }
  sprintf(path + len, "/%s", slice);
  *out = path;
  return 0;
}

static int
systemd_to_fs(const char *cgroups_path, char **out, struct error *err)
{
  const char *first = strchr(cgroups_path, ':');
  const char *second = first ? strchr(first + 1, ':') : NULL;
  cleanup_free char *slice = NULL;
  cleanup_free char *slice_path = NULL;
  cleanup_free char *prefix = NULL;
  const char *name;

  if (second == NULL || strchr(second + 1, ':'))
    return error_set(err, EINVAL, "invalid systemd cgroups path \"%s\" (want slice:prefix:name)",
                     cgroups_path);
  slice = xstrndup(cgroups_path, (size_t)(first - cgroups_path));
  prefix = xstrndup(first + 1, (size_t)(second - first - 1));
  name = second + 1;
  if (check_id(name, err) < 0 || (prefix[0] && check_id(prefix, err) < 0))
    return error_wrap(err, "cgroups path \"%s\"", cgroups_path);
  if (cgroup_slice_to_path(slice[0] ? slice : CGROUP_DEFAULT_SLICE, &slice_path, err) < 0)
    return -1;
  *out = xasprintf("%s/%s%s%s.scope", strcmp(slice_path, "/") == 0 ? "" : slice_path, prefix,
                   prefix[0] ? "-" : "", name);
  return 0;
}

int
cgroup_path_to_fs(const char *cgroups_path, bool systemd, char **out, struct error *err)
{
  cleanup_free char *clean = NULL;

  if (cgroups_path == NULL || cgroups_path[0] == '\0')
    return error_set(err, EINVAL, "empty cgroups path");
  if (systemd)
    return systemd_to_fs(cgroups_path, out, err);
  if (cgroups_path[0] != '/')
    return error_set(err, EINVAL, "cgroups path \"%s\" is not absolute", cgroups_path);
  if (clean_absolute(cgroups_path, &clean, err) < 0)
    return -1;
  if (clean[0] == '\0')
    return error_set(err, EINVAL, "cgroups path \"%s\" is the root", cgroups_path);
  *out = steal_pointer(&clean);
  return 0;
}

int
cgroup_hierarchies_parse(const char *mountinfo, char ***out, struct error *err)
{
  struct mount_table table;
  char **roots;
  size_t n = 0;

  mount_table_parse(mountinfo, &table);
  roots = xcalloc(table.n + 1, sizeof(char *));
  for (size_t i = 0; i < table.n; i++)
    if (strcmp(table.entries[i].fstype, "cgroup") == 0
        || strcmp(table.entries[i].fstype, "cgroup2") == 0)
      roots[n++] = xstrdup(table.entries[i].mountpoint);
  mount_table_clear(&table);
  *out = roots;
  (void)err;
  return 0;
}

int
cgroup_hierarchies(char ***out, struct error *err)
{
  cleanup_free char *text = NULL;

  if (read_file("/proc/self/mountinfo", MOUNTINFO_MAX_SIZE, &text, NULL, err) < 0)
    return error_wrap(err, "list the cgroup hierarchies");
  return cgroup_hierarchies_parse(text, out, err);
}

static int
rmdir_retry(const char *dir, struct error *err)
{
  const struct timespec pause = { 0, RMDIR_RETRY_NS };

  for (int attempt = 0;; attempt++)
    {
      if (rmdir(dir) == 0 || errno == ENOENT)
        return 0;
      if (errno != EBUSY || attempt >= RMDIR_RETRIES)
        return error_set_errno(err, errno, "remove cgroup %s", dir);
      nanosleep(&pause, NULL);
    }
}

static bool
is_directory(int dirfd, const struct dirent *entry)
{
  struct stat st;

  if (entry->d_type != DT_UNKNOWN)
    return entry->d_type == DT_DIR;
  return fstatat(dirfd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* Sub-cgroups first (a runtime may nest, e.g. crun's "container"), then
 * dir itself.  A missing directory is already removed. */
static int
remove_tree(const char *dir, int depth, struct error *err)
{
  cleanup_dir DIR *d = opendir(dir);
  struct dirent *entry;
  int ret = 0;

  if (d == NULL)
    return errno == ENOENT ? 0 : error_set_errno(err, errno, "open cgroup %s", dir);
  if (depth > REMOVE_MAX_DEPTH)
    return error_set(err, ELOOP, "cgroup %s nests too deep", dir);
  while ((entry = readdir(d)))
    {
      cleanup_free char *child = NULL;
      if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0
          || !is_directory(dirfd(d), entry))
        continue;
      child = xasprintf("%s/%s", dir, entry->d_name);
      if (ret == 0)
        ret = remove_tree(child, depth + 1, err);
    }
  if (ret < 0)
    return ret;
  return rmdir_retry(dir, err);
}

int
cgroup_remove_under(char *const *roots, const char *fs_path, struct error *err)
{
  cleanup_free char *clean = NULL;
  struct error first = ERROR_INIT;

  if (fs_path == NULL || clean_absolute(fs_path, &clean, err) < 0)
    return error_set(err, EINVAL, "refusing to remove cgroup \"%s\"", fs_path ? fs_path : "");
  if (clean[0] == '\0')
    return error_set(err, EINVAL, "refusing to remove the root cgroup");
  /* Every hierarchy is tried, also after a failure; the first error is
   * reported. */
  for (size_t i = 0; roots && roots[i]; i++)
    {
      cleanup_free char *dir = xasprintf("%s%s", roots[i], clean);
      struct error e = ERROR_INIT;
      if (remove_tree(dir, 0, &e) < 0 && first.code == 0)
        error_move(&first, &e);
      error_clear(&e);
    }
  if (first.code != 0)
    {
      error_move(err, &first);
      return -1;
    }
  return 0;
}

int
cgroup_remove(const char *fs_path, struct error *err)
{
  char **roots = NULL;
  int ret;

  if (cgroup_hierarchies(&roots, err) < 0)
    return -1;
  ret = cgroup_remove_under(roots, fs_path, err);
  strv_free(roots);
  return ret;
}

/* id when name is "crid-<id>" or "crid-<id>.scope" with id among ids. */
static bool
named_for(const char *name, char *const *ids)
{
  static const char prefix[] = CGROUP_SCOPE_PREFIX "-";
  size_t id_len;

  if (strncmp(name, prefix, sizeof prefix - 1) != 0)
    return false;
  name += sizeof prefix - 1;
  id_len = str_has_suffix(name, ".scope") ? strlen(name) - strlen(".scope") : strlen(name);
  for (size_t i = 0; ids[i]; i++)
    if (strlen(ids[i]) == id_len && strncmp(name, ids[i], id_len) == 0)
      return true;
  return false;
}

static void
remove_named_under(const char *dir, char *const *ids, int depth, struct error *first)
{
  cleanup_dir DIR *d = opendir(dir);
  struct dirent *entry;

  if (d == NULL || depth > CGROUP_FIND_MAX_DEPTH)
    return;
  while ((entry = readdir(d)))
    {
      cleanup_free char *child = NULL;
      struct error e = ERROR_INIT;
      if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0
          || !is_directory(dirfd(d), entry))
        continue;
      child = xasprintf("%s/%s", dir, entry->d_name);
      if (!named_for(entry->d_name, ids))
        remove_named_under(child, ids, depth + 1, first);
      else if (remove_tree(child, 0, &e) < 0 && first->code == 0)
        error_move(first, &e);
      error_clear(&e);
    }
}

int
cgroup_remove_named(char *const *ids, struct error *err)
{
  char **roots = NULL;
  struct error first = ERROR_INIT;

  if (ids == NULL || ids[0] == NULL)
    return 0;
  if (cgroup_hierarchies(&roots, err) < 0)
    return -1;
  for (size_t i = 0; roots[i]; i++)
    remove_named_under(roots[i], ids, 0, &first);
  strv_free(roots);
  if (first.code != 0)
    {
      error_move(err, &first);
      return -1;
    }
  return 0;
}

char *
cgroup_v1_tasks_file(const char *proc_cgroup, const char *root)
{
  /* Lines are "ID:CONTROLLERS:PATH"; cgroup2 is "0::PATH" and named
   * hierarchies ("name=systemd") are left out. */
  for (const char *line = proc_cgroup; line && *line;)
    {
      const char *end = strchrnul(line, '\n');
      const char *first = memchr(line, ':', (size_t)(end - line));
      const char *second = first ? memchr(first + 1, ':', (size_t)(end - first - 1)) : NULL;

      if (second && second > first + 1 && strncmp(first + 1, "name=", 5) != 0)
        {
          cleanup_free char *controllers = xstrndup(first + 1, (size_t)(second - first - 1));
          cleanup_free char *path = xstrndup(second + 1, (size_t)(end - second - 1));
          char *comma = strchr(controllers, ',');
          /* A co-mounted hierarchy ("cpu,cpuacct") is mounted under its
           * joined name; the first controller alone has a link to it. */
          if (comma)
            *comma = '\0';
          if (path[0] == '/' && strstr(path, "..") == NULL)
            return xasprintf("%s/%s%s%stasks", root, controllers, path,
                             path[strlen(path) - 1] == '/' ? "" : "/");
        }
      line = *end ? end + 1 : end;
    }
  return NULL;
}

static atomic_bool attach_primer_running;

static void *
attach_primer(void *object)
{
  const char *tasks = object;
  char tid[32];
  int len = snprintf(tid, sizeof tid, "%ld", (long)syscall(SYS_gettid));
  int fd = open(tasks, O_WRONLY | O_CLOEXEC);

  if (fd >= 0)
    {
      /* A failure only costs the time this would have saved. */
      (void)!write(fd, tid, (size_t)len);
      close(fd);
    }
  atomic_store(&attach_primer_running, false);
  return NULL;
}

static pthread_once_t own_tasks_once = PTHREAD_ONCE_INIT;
static char *own_tasks;

static void
find_own_tasks_file(void)
{
  cleanup_free char *text = NULL;
  struct error err = ERROR_INIT;

  if (cgroup_host_mode() != CGROUP_MODE_UNIFIED
      && read_file("/proc/self/cgroup", 64 * 1024, &text, NULL, &err) == 0)
    own_tasks = cgroup_v1_tasks_file(text, CGROUP_ROOT);
  error_clear(&err);
}

void
cgroup_prepare_attach(void)
{
  const char *tasks;
  pthread_attr_t attr;
  pthread_t thread;

  pthread_once(&own_tasks_once, find_own_tasks_file);
  tasks = own_tasks;
  /* One primer at a time: concurrent creates share its grace period. */
  if (tasks == NULL || atomic_exchange(&attach_primer_running, true))
    return;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&thread, &attr, attach_primer, (void *)tasks) != 0)
    atomic_store(&attach_primer_running, false);
  pthread_attr_destroy(&attr);
}
