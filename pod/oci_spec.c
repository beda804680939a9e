/* OCI config.json of pause containers and CRI containers; see oci_spec.h
 * for the choices.  Each part of the spec is first computed into plain
 * lists (so overrides and checks are easy), then written in one pass. */
#include "pod/oci_spec.h"
#include "pod/image_volume.h"
#include "pod/userns.h"
#include "pod/capabilities.h"
#include "pod/seccomp_bpf.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/mountinfo.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define SMALL_FILE_MAX (64 * 1024)
#define DEVICE_WALK_MAX_DEPTH 8
/* How much of a request's text an error message quotes: enough to
 * recognise it, never enough to make a huge message of a huge field. */
#define QUOTE_MAX 256

static const char *const default_masked_paths[]
    = { "/proc/acpi",          "/proc/asound",
        "/proc/kcore",         "/proc/keys",
        "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats",   "/proc/sched_debug",
        "/sys/firmware",       "/sys/devices/virtual/powercap",
        "/proc/scsi",          NULL };

static const char *const default_readonly_paths[]
    = { "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL };

/* ---- small growing lists ---------------------------------------------- */

struct strv
{
  char **items; /* NULL-terminated once anything was added */
  size_t n;
};

static void
strv_push(struct strv *v, char *s)
{
  v->items = xrealloc(v->items, (v->n + 2) * sizeof(char *));
  v->items[v->n++] = s;
  v->items[v->n] = NULL;
}

static void
strv_clear(struct strv *v)
{
  strv_free(v->items);
  v->items = NULL;
  v->n = 0;
}

struct mount_spec
{
  char *destination;
  char *type;
  char *source;
  char *options; /* comma-separated */
};

struct mount_list
{
  struct mount_spec *items;
  size_t n;
};

static void
mounts_add(struct mount_list *l, const char *destination, const char *type, const char *source,
           const char *options)
{
  l->items = xrealloc(l->items, (l->n + 1) * sizeof(*l->items));
  l->items[l->n++] = (struct mount_spec){ .destination = xstrdup(destination),
                                          .type = xstrdup(type),
                                          .source = xstrdup(source),
                                          .options = xstrdup(options) };
}

static void
mount_spec_clear(struct mount_spec *m)
{
  free(m->destination);
  free(m->type);
  free(m->source);
  free(m->options);
}

static void
mounts_clear(struct mount_list *l)
{
  for (size_t i = 0; i < l->n; i++)
    mount_spec_clear(&l->items[i]);
  free(l->items);
  l->items = NULL;
  l->n = 0;
}

struct device_spec
{
  char *path; /* in the container */
  char type;  /* 'c' or 'b' */
  int64_t major;
  int64_t minor;
  uint32_t file_mode;
  uint32_t uid;
  uint32_t gid;
  char access[4];
};

struct device_list
{
  struct device_spec *items;
  size_t n;
};

static void
devices_clear(struct device_list *l)
{
  for (size_t i = 0; i < l->n; i++)
    free(l->items[i].path);
  free(l->items);
  l->items = NULL;
  l->n = 0;
}

struct namespace_spec
{
  const char *type;
  const char *path; /* NULL = new */
};

#define MAX_NAMESPACES 8

struct namespace_list
{
  struct namespace_spec items[MAX_NAMESPACES];
  size_t n;
};

static void
namespaces_add(struct namespace_list *l, const char *type, const char *path)
{
  if (l->n < MAX_NAMESPACES)
    l->items[l->n++] = (struct namespace_spec){ type, path };
}

static bool
has_userns(const struct pod_userns *userns)
{
  return userns && userns->enabled;
}

static bool
str_empty(const char *s)
{
  return s == NULL || s[0] == '\0';
}

/* Request text as an error message shows it: quoted, escaped, cut after
 * QUOTE_MAX bytes.  The caller frees. */
static char *
shown(const char *text)
{
  return quote_untrusted(text ? text : "", text ? strlen(text) : 0, QUOTE_MAX);
}

/* ---- host facts --------------------------------------------------------- */

int
oci_oom_score_adj_floor(int *out, struct error *err)
{
  cleanup_free char *text = NULL;
  char *end;
  long value;

  if (read_file("/proc/self/oom_score_adj", SMALL_FILE_MAX, &text, NULL, err) < 0)
    return error_wrap(err, "read crid's oom_score_adj");
  errno = 0;
  value = strtol(text, &end, 10);
  if (errno != 0 || end == text || value < -1000 || value > 1000)
    return error_set(err, EIO, "malformed /proc/self/oom_score_adj \"%s\"", text);
  *out = (int)value;
  return 0;
}

int
oci_oom_score_adj_clamp(int64_t requested, int floor)
{
  if (requested > 1000)
    return 1000;
  if (requested < floor)
    return floor;
  return (int)requested;
}

bool
oci_apparmor_host_enabled(void)
{
  cleanup_free char *text = NULL;
  struct error err = ERROR_INIT;
  bool enabled = false;

  if (read_file("/sys/module/apparmor/parameters/enabled", SMALL_FILE_MAX, &text, NULL, &err) == 0)
    enabled = text[0] == 'Y';
  error_clear(&err);
  return enabled;
}

static int
clamped_oom_score_adj(int64_t requested, int *out, struct error *err)
{
  int floor;

  if (oci_oom_score_adj_floor(&floor, err) < 0)
    return -1;
  *out = oci_oom_score_adj_clamp(requested, floor);
  return 0;
}

static uint64_t
nofile_limit(void)
{
  struct rlimit limit;

  if (getrlimit(RLIMIT_NOFILE, &limit) < 0 || limit.rlim_max == RLIM_INFINITY
      || limit.rlim_max > OCI_NOFILE_LIMIT)
    return OCI_NOFILE_LIMIT;
  return limit.rlim_max;
}

static enum cgroup_mode
mode_of(enum cgroup_mode given)
{
  return given != CGROUP_MODE_UNKNOWN ? given : cgroup_host_mode();
}

/* ---- process ------------------------------------------------------------ */

static void
push_strings(struct strv *v, char **strings, size_t n)
{
  for (size_t i = 0; i < n; i++)
    strv_push(v, xstrdup(strings[i]));
}

int
oci_container_args(const Runtime__V1__ContainerConfig *config, const struct image_config *image,
                   char ***out, struct error *err)
{
  struct strv args = { 0 };
  char **entrypoint = image ? image->entrypoint : NULL;
  char **cmd = image ? image->cmd : NULL;

  /* CRI command replaces the image's Entrypoint and Cmd; CRI args then
   * replace the Cmd only (CRI-O's SpecSetProcessArgs, Kubernetes'
   * command/args rules). */
  if (config->n_command > 0)
    {
      push_strings(&args, config->command, config->n_command);
      push_strings(&args, config->args, config->n_args);
    }
  else
    {
      push_strings(&args, entrypoint, entrypoint ? strv_length(entrypoint) : 0);
      if (config->n_args > 0)
        push_strings(&args, config->args, config->n_args);
      else
        push_strings(&args, cmd, cmd ? strv_length(cmd) : 0);
    }
  if (args.n == 0)
    return error_set(err, EINVAL, "no command specified");
  *out = args.items;
  return 0;
}

/* Sets "KEY=value" (or a bare "KEY") in env, replacing the same key. */
static void
env_set(struct strv *env, const char *entry)
{
  size_t key_len = strcspn(entry, "=");

  for (size_t i = 0; i < env->n; i++)
    if (strncmp(env->items[i], entry, key_len) == 0
        && (env->items[i][key_len] == '=' || env->items[i][key_len] == '\0'))
      {
        free(env->items[i]);
        env->items[i] = xstrdup(entry);
        return;
      }
  strv_push(env, xstrdup(entry));
}

static bool
env_has(const struct strv *env, const char *key)
{
  size_t key_len = strlen(key);

  for (size_t i = 0; i < env->n; i++)
    if (strncmp(env->items[i], key, key_len) == 0
        && (env->items[i][key_len] == '=' || env->items[i][key_len] == '\0'))
      return true;
  return false;
}

static char *
pod_hostname(const Runtime__V1__PodSandboxConfig *sandbox_config)
{
  char name[HOST_NAME_MAX + 1];

  if (sandbox_config && !str_empty(sandbox_config->hostname))
    return xstrdup(sandbox_config->hostname);
  /* Host-network pods may come without one: the node's name is theirs. */
  if (gethostname(name, sizeof(name)) < 0)
    return xstrdup("");
  name[sizeof(name) - 1] = '\0';
  return xstrdup(name);
}

/* HOSTNAME first (the image or CRI may override it), then the image's
 * environment, then CRI's by key, then PATH if nobody set one. */
static int
container_env(const struct oci_container_params *p, struct strv *env, struct error *err)
{
  const Runtime__V1__ContainerConfig *config = p->config;
  cleanup_free char *hostname = pod_hostname(p->sandbox_config);
  cleanup_free char *hostname_entry = xasprintf("HOSTNAME=%s", hostname);

  env_set(env, hostname_entry);
  for (size_t i = 0; p->image && p->image->env && p->image->env[i]; i++)
    if (p->image->env[i][0] != '\0' && p->image->env[i][0] != '=')
      env_set(env, p->image->env[i]);
  for (size_t i = 0; i < config->n_envs; i++)
    {
      const Runtime__V1__KeyValue *kv = config->envs[i];
      cleanup_free char *entry = NULL;
      cleanup_free char *key = shown(kv->key);
      if (str_empty(kv->key) || strchr(kv->key, '='))
        return error_set(err, EINVAL, "invalid environment variable name %s", key);
      if (kv->value.len > 0 && memchr(kv->value.data, '\0', kv->value.len))
        return error_set(err, EINVAL, "environment variable %s: the value contains a NUL byte",
                         key);
      entry = xasprintf("%s=%.*s", kv->key, (int)kv->value.len,
                        kv->value.len ? (const char *)kv->value.data : "");
      env_set(env, entry);
    }
  if (!env_has(env, "PATH"))
    {
      env->items = xrealloc(env->items, (env->n + 2) * sizeof(char *));
      memmove(env->items + 1, env->items, (env->n + 1) * sizeof(char *));
      env->items[0] = xstrdup("PATH=" OCI_DEFAULT_PATH);
      env->n++;
    }
  return 0;
}

static int
container_cwd(const struct oci_container_params *p, char **out, struct error *err)
{
  const char *dir = p->config->working_dir;

  if (!str_empty(dir))
    {
      if (dir[0] != '/')
        {
          cleanup_free char *quoted = shown(dir);
          return error_set(err, EINVAL, "working directory %s is not absolute", quoted);
        }
      *out = xstrdup(dir);
      return 0;
    }
  dir = p->image ? p->image->working_dir : NULL;
  if (!str_empty(dir))
    {
      /* Docker resolves a relative WorkingDir from "/". */
      *out = dir[0] == '/' ? xstrdup(dir) : xasprintf("/%s", dir);
      return 0;
    }
  *out = xstrdup("/");
  return 0;
}

/* The user when pod/user.c resolved none: numeric ids from the security
 * context, 0 where unset. */
static void
user_from_context(const Runtime__V1__Int64Value *run_as_user,
                  const Runtime__V1__Int64Value *run_as_group, const int64_t *groups,
                  size_t n_groups, struct oci_user *user, uint32_t **gid_storage)
{
  uint32_t *gids = n_groups ? xcalloc(n_groups, sizeof(uint32_t)) : NULL;

  for (size_t i = 0; i < n_groups; i++)
    gids[i] = (uint32_t)groups[i];
  user->uid = run_as_user ? (uint32_t)run_as_user->value : 0;
  user->gid = run_as_group ? (uint32_t)run_as_group->value : 0;
  user->additional_gids = gids;
  user->n_additional_gids = n_groups;
  *gid_storage = gids;
}

static void
write_user(struct json_writer *w, const struct oci_user *user)
{
  json_write_key(w, "user");
  json_begin_object(w);
  json_write_key(w, "uid");
  json_write_int(w, user->uid);
  json_write_key(w, "gid");
  json_write_int(w, user->gid);
  if (user->n_additional_gids > 0)
    {
      json_write_key(w, "additionalGids");
      json_begin_array(w);
      for (size_t i = 0; i < user->n_additional_gids; i++)
        json_write_int(w, user->additional_gids[i]);
      json_end_array(w);
    }
  json_end_object(w);
}

static void
write_string_array(struct json_writer *w, const char *key, char *const *strings)
{
  json_write_key(w, key);
  json_begin_array(w);
  for (size_t i = 0; strings && strings[i]; i++)
    json_write_string(w, strings[i]);
  json_end_array(w);
}

static void
write_nofile(struct json_writer *w)
{
  uint64_t limit = nofile_limit();

  json_write_key(w, "rlimits");
  json_begin_array(w);
  json_begin_object(w);
  json_write_key(w, "type");
  json_write_string(w, "RLIMIT_NOFILE");
  json_write_key(w, "hard");
  json_write_int(w, (int64_t)limit);
  json_write_key(w, "soft");
  json_write_int(w, (int64_t)limit);
  json_end_object(w);
  json_end_array(w);
}

/* ---- mounts ------------------------------------------------------------- */

static void
default_mounts(struct mount_list *l, bool privileged)
{
  mounts_add(l, "/proc", "proc", "proc", "nosuid,noexec,nodev");
  mounts_add(l, "/dev", "tmpfs", "tmpfs", "nosuid,strictatime,mode=755,size=65536k");
  mounts_add(l, "/dev/pts", "devpts", "devpts",
             "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5");
  mounts_add(l, "/dev/mqueue", "mqueue", "mqueue", "nosuid,noexec,nodev");
  mounts_add(l, "/sys", "sysfs", "sysfs",
             privileged ? "nosuid,noexec,nodev,rw" : "nosuid,noexec,nodev,ro");
  mounts_add(l, "/sys/fs/cgroup", "cgroup", "cgroup",
             privileged ? "nosuid,noexec,nodev,relatime,rw" : "nosuid,noexec,nodev,relatime,ro");
}

/* /dev/shm: the pod's tmpfs, the host's, or one of its own. */
static void
shm_mount(struct mount_list *l, const char *source)
{
  if (source)
    mounts_add(l, "/dev/shm", "bind", source, "rbind,rprivate,nosuid,noexec,nodev");
  else
    mounts_add(l, "/dev/shm", "tmpfs", "shm", "nosuid,noexec,nodev,mode=1777,size=65536k");
}

/* "/a//b/" -> "/a/b", for comparing destinations. */
static char *
clean_destination(const char *path)
{
  char *out = xstrdup(path);
  size_t j = 0;

  for (size_t i = 0; path[i]; i++)
    {
      if (path[i] == '/' && j > 0 && out[j - 1] == '/')
        continue;
      out[j++] = path[i];
    }
  while (j > 1 && out[j - 1] == '/')
    j--;
  out[j] = '\0';
  return out;
}

static size_t
path_depth(const char *path)
{
  size_t depth = 0;

  for (const char *p = path; *p; p++)
    if (*p == '/' && p[1] != '\0' && p[1] != '/')
      depth++;
  return depth;
}

/* Optional fields ("shared:N", "master:N") of the mount that holds path. */
static int
mount_propagation_of(const char *mountinfo, const char *path, char **mountpoint, char **optional,
                     struct error *err)
{
  struct mount_table table;
  const struct mount_entry *holder;

  mount_table_parse(mountinfo, &table);
  holder = mount_table_holder(&table, path);
  if (holder)
    {
      *mountpoint = xstrdup(holder->mountpoint);
      *optional = xstrdup(holder->optional);
    }
  mount_table_clear(&table);
  if (holder == NULL)
    {
      cleanup_free char *quoted = shown(path);
      return error_set(err, ENOENT, "no mount holds %s", quoted);
    }
  return 0;
}

static int
check_propagation(const struct oci_container_params *p, const char *source, int propagation,
                  struct error *err)
{
  cleanup_free char *text = NULL;
  cleanup_free char *real = realpath(source, NULL);
  cleanup_free char *mountpoint = NULL;
  cleanup_free char *optional = NULL;
  cleanup_free char *quoted = shown(source);
  bool shared, slave;

  if (real == NULL)
    return error_set_errno(err, errno, "mount source %s", quoted);
  if (p->mountinfo == NULL
      && read_file("/proc/self/mountinfo", MOUNTINFO_MAX_SIZE, &text, NULL, err) < 0)
    return -1;
  if (mount_propagation_of(p->mountinfo ? p->mountinfo : text, real, &mountpoint, &optional, err)
      < 0)
    return -1;
  shared = strstr(optional, "shared:") != NULL;
  slave = strstr(optional, "master:") != NULL;
  if (propagation == RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL && !shared)
    return error_set(err, EINVAL,
                     "path %s is mounted on \"%s\" but it is not a shared mount "
                     "(needed for bidirectional propagation)",
                     quoted, mountpoint);
  if (propagation == RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER && !shared
      && !slave)
    return error_set(err, EINVAL,
                     "path %s is mounted on \"%s\" but it is not a shared or slave mount "
                     "(needed for host-to-container propagation)",
                     quoted, mountpoint);
  return 0;
}

static int
cri_mount_options(const struct oci_container_params *p, const Runtime__V1__Mount *m, char **out,
                  struct error *err)
{
  cleanup_free char *destination = shown(m->container_path);
  const char *propagation;

  switch (m->propagation)
    {
    case RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE:
      propagation = "rprivate";
      break;
    case RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER:
      propagation = "rslave";
      break;
    case RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL:
      propagation = "rshared";
      break;
    default:
      return error_set(err, EINVAL, "mount %s: unknown propagation %d", destination,
                       (int)m->propagation);
    }
  /* A recursive read-only mount binds the copy crid made read-only all
   * through (pod/volume_sources.h): the bind keeps every mount's flag. */
  *out = xasprintf("rbind,%s%s", propagation, m->readonly ? ",ro" : "");
  return 0;
}

int
oci_check_mount(const Runtime__V1__Mount *m, struct error *err)
{
  cleanup_free char *destination = shown(m->container_path);

  if (str_empty(m->container_path) || m->container_path[0] != '/')
    return error_set(err, EINVAL, "mount destination %s is not absolute", destination);
  if (image_volume_check_mount(m, err) < 0)
    return -1;
  if (m->recursive_read_only
      && (!m->readonly || m->propagation != RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE))
    return error_set(err, EINVAL,
                     "mount %s: recursive read-only needs readonly and private propagation",
                     destination);
  /* A relative source would be resolved (and created) against crid's
   * own working directory. */
  if (!str_empty(m->host_path) && m->host_path[0] != '/')
    {
      cleanup_free char *source = shown(m->host_path);
      return error_set(err, EINVAL, "mount %s: host path %s is not absolute", destination, source);
    }
  return 0;
}

/* Called only once every mount passed oci_check_mount(): it may create
 * the source. */
static int
prepare_mount_source(const struct oci_container_params *p, const Runtime__V1__Mount *m,
                     struct error *err)
{
  cleanup_free char *destination = shown(m->container_path);
  struct stat st;

  if (str_empty(m->host_path))
    return error_set(err, EINVAL, "mount %s: no host path", destination);
  /* The kubelet gives a userns pod's mounts the pod's mappings: crid
   * idmaps every mount of such a pod into its namespace. */
  if ((m->n_uidmappings > 0 || m->n_gidmappings > 0)
      && (!has_userns(p->userns)
          || !pod_userns_ranges_equal(p->userns->uids, p->userns->n_uids, m->uidmappings,
                                      m->n_uidmappings)
          || !pod_userns_ranges_equal(p->userns->gids, p->userns->n_gids, m->gidmappings,
                                      m->n_gidmappings)))
    return error_set(err, ENOSYS,
                     "mount %s: id-mapped mounts other than into the pod's user namespace are "
                     "not supported",
                     destination);
  /* A missing source becomes a directory, as containerd and CRI-O do. */
  if (stat(m->host_path, &st) < 0)
    {
      cleanup_free char *source = shown(m->host_path);
      if (errno != ENOENT)
        return error_set_errno(err, errno, "mount source %s", source);
      if (mkdir_p(m->host_path, 0755, err) < 0)
        return error_wrap(err, "create mount source");
    }
  if (m->propagation != RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE)
    return check_propagation(p, m->host_path, m->propagation, err);
  return 0;
}

/* An image volume: crid mounted the image (pod/image_volume.h); it is
 * bound like a host path, read-only whatever the request says, nosuid and
 * nodev. */
static int
image_volume_mount(const struct oci_container_params *p, size_t index, const Runtime__V1__Mount *m,
                   const char **source, char **options, struct error *err)
{
  const struct image_volume *volume
      = p->image_volumes ? image_volumes_find(p->image_volumes, index) : NULL;
  Runtime__V1__Mount read_only = *m;
  cleanup_free char *bind_options = NULL;

  if (volume == NULL || volume->source == NULL)
    {
      cleanup_free char *destination = shown(m->container_path);
      return error_set(err, EINVAL, "mount %s: the image volume is not mounted", destination);
    }
  read_only.readonly = true;
  if (cri_mount_options(p, &read_only, &bind_options, err) < 0)
    return -1;
  *source = volume->source;
  *options = xasprintf("%s,nosuid,nodev", bind_options);
  return 0;
}

/* The CRI mounts, parents before children, and the rootfs propagation
 * they need ("" = none). */
static int
cri_mounts(const struct oci_container_params *p, struct mount_list *out, const char **rootfs_prop,
           struct error *err)
{
  const Runtime__V1__ContainerConfig *config = p->config;

  *rootfs_prop = "";
  /* Every mount is checked before the first source is created. */
  for (size_t i = 0; i < config->n_mounts; i++)
    if (oci_check_mount(config->mounts[i], err) < 0)
      return -1;
  for (size_t i = 0; i < config->n_mounts; i++)
    {
      const Runtime__V1__Mount *m = config->mounts[i];
      cleanup_free char *options = NULL;
      cleanup_free char *destination = NULL;
      const char *source = m->host_path;

      if (m->image)
        {
          if (image_volume_mount(p, i, m, &source, &options, err) < 0)
            return -1;
        }
      else if (prepare_mount_source(p, m, err) < 0 || cri_mount_options(p, m, &options, err) < 0)
        return -1;
      if (m->propagation == RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL)
        *rootfs_prop = "rshared";
      else if (m->propagation == RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER
               && strcmp(*rootfs_prop, "rshared") != 0)
        *rootfs_prop = "rslave";
      destination = clean_destination(m->container_path);
      /* A userns pod binds the idmapped copy of a host path. */
      if (!m->image && p->mount_sources && p->mount_sources[i])
        source = p->mount_sources[i];
      mounts_add(out, destination, "bind", source, options);
    }
  /* Parents before children, the request's order among equals (a
   * stable insertion sort; there are a handful of mounts). */
  for (size_t i = 1; i < out->n; i++)
    {
      struct mount_spec m = out->items[i];
      size_t depth = path_depth(m.destination);
      size_t j = i;
      for (; j > 0 && path_depth(out->items[j - 1].destination) > depth; j--)
        out->items[j] = out->items[j - 1];
      out->items[j] = m;
    }
  return 0;
}

static bool
overridden(const struct mount_list *user, const char *destination)
{
  for (size_t i = 0; i < user->n; i++)
    {
      if (strcmp(user->items[i].destination, destination) == 0)
        return true;
      /* A /dev of the user's replaces everything that lives below it. */
      if (strcmp(user->items[i].destination, "/dev") == 0 && str_has_prefix(destination, "/dev/"))
        return true;
    }
  return false;
}

/* defaults (minus those the user mounts over), then the user's. */
static void
merge_mounts(struct mount_list *defaults, struct mount_list *user, struct mount_list *out)
{
  for (size_t i = 0; i < defaults->n; i++)
    {
      if (overridden(user, defaults->items[i].destination))
        mount_spec_clear(&defaults->items[i]);
      else
        {
          out->items = xrealloc(out->items, (out->n + 1) * sizeof(*out->items));
          out->items[out->n++] = defaults->items[i];
        }
    }
  for (size_t i = 0; i < user->n; i++)
    {
      out->items = xrealloc(out->items, (out->n + 1) * sizeof(*out->items));
      out->items[out->n++] = user->items[i];
    }
  free(defaults->items);
  free(user->items);
  *defaults = (struct mount_list){ 0 };
  *user = (struct mount_list){ 0 };
}

static void
write_mounts(struct json_writer *w, const struct mount_list *l)
{
  json_write_key(w, "mounts");
  json_begin_array(w);
  for (size_t i = 0; i < l->n; i++)
    {
      const struct mount_spec *m = &l->items[i];
      cleanup_free char *options = xstrdup(m->options);
      char *save = NULL;

      json_begin_object(w);
      json_write_key(w, "destination");
      json_write_string(w, m->destination);
      json_write_key(w, "type");
      json_write_string(w, m->type);
      json_write_key(w, "source");
      json_write_string(w, m->source);
      json_write_key(w, "options");
      json_begin_array(w);
      for (char *o = strtok_r(options, ",", &save); o; o = strtok_r(NULL, ",", &save))
        json_write_string(w, o);
      json_end_array(w);
      json_end_object(w);
    }
  json_end_array(w);
}

/* ---- devices ------------------------------------------------------------ */

static bool
devices_has(const struct device_list *l, const char *path)
{
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->items[i].path, path) == 0)
      return true;
  return false;
}

static void
devices_add(struct device_list *l, const char *path, const struct stat *st, const char *access)
{
  struct device_spec *d;

  if (devices_has(l, path))
    return;
  l->items = xrealloc(l->items, (l->n + 1) * sizeof(*l->items));
  d = &l->items[l->n++];
  *d = (struct device_spec){ .path = xstrdup(path),
                             .type = S_ISBLK(st->st_mode) ? 'b' : 'c',
                             .major = major(st->st_rdev),
                             .minor = minor(st->st_rdev),
                             .file_mode = st->st_mode & 07777,
                             .uid = st->st_uid,
                             .gid = st->st_gid };
  snprintf(d->access, sizeof(d->access), "%s", access);
}

/* Every device node under host_dir, as container_dir/<relative path>.
 * Symlinks are skipped (their targets are listed under their own name);
 * so are the directories runtimes mount themselves when walking /dev. */
static int
devices_walk(struct device_list *l, const char *host_dir, const char *container_dir,
             const char *access, bool is_host_dev, int depth, struct error *err)
{
  static const char *const skipped[]
      = { "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev", NULL };
  cleanup_dir DIR *dir = opendir(host_dir);
  struct dirent *entry;

  if (dir == NULL)
    return error_set_errno(err, errno, "open device directory %s", host_dir);
  if (depth > DEVICE_WALK_MAX_DEPTH)
    return 0;
  while ((entry = readdir(dir)))
    {
      cleanup_free char *host = NULL;
      cleanup_free char *inside = NULL;
      struct stat st;
      bool skip = false;

      if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
        continue;
      for (size_t i = 0; is_host_dev && depth == 0 && skipped[i]; i++)
        skip = skip || strcmp(entry->d_name, skipped[i]) == 0;
      /* runc and crun make /dev/console themselves for a terminal. */
      if (skip || (is_host_dev && depth == 0 && strcmp(entry->d_name, "console") == 0))
        continue;
      host = xasprintf("%s/%s", host_dir, entry->d_name);
      inside = xasprintf("%s/%s", container_dir, entry->d_name);
      if (lstat(host, &st) < 0)
        continue; /* gone meanwhile */
      if (S_ISDIR(st.st_mode))
        {
          if (devices_walk(l, host, inside, access, is_host_dev, depth + 1, err) < 0)
            return -1;
        }
      else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
        devices_add(l, inside, &st, access);
    }
  return 0;
}

static int
cri_device(struct device_list *l, const Runtime__V1__Device *d, struct error *err)
{
  const char *access = str_empty(d->permissions) ? "rwm" : d->permissions;
  const char *inside = str_empty(d->container_path) ? d->host_path : d->container_path;
  cleanup_free char *source = shown(d->host_path);
  struct stat st;

  if (str_empty(d->host_path))
    return error_set(err, EINVAL, "device without a host path");
  if (inside[0] != '/')
    {
      cleanup_free char *quoted = shown(inside);
      return error_set(err, EINVAL, "device path %s is not absolute", quoted);
    }
  if (strlen(access) > 3 || strspn(access, "rwm") != strlen(access))
    {
      cleanup_free char *quoted = shown(access);
      return error_set(err, EINVAL, "device %s: invalid permissions %s (want r, w, m)", source,
                       quoted);
    }
  if (stat(d->host_path, &st) < 0)
    return error_set_errno(err, errno, "device %s", source);
  if (S_ISDIR(st.st_mode))
    return devices_walk(l, d->host_path, inside, access, false, 0, err);
  if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
    return error_set(err, EINVAL, "%s is not a device", source);
  devices_add(l, inside, &st, access);
  return 0;
}

static void
write_devices(struct json_writer *w, const struct device_list *l)
{
  if (l->n == 0)
    return;
  json_write_key(w, "devices");
  json_begin_array(w);
  for (size_t i = 0; i < l->n; i++)
    {
      const struct device_spec *d = &l->items[i];
      char type[2] = { d->type, '\0' };

      json_begin_object(w);
      json_write_key(w, "path");
      json_write_string(w, d->path);
      json_write_key(w, "type");
      json_write_string(w, type);
      json_write_key(w, "major");
      json_write_int(w, d->major);
      json_write_key(w, "minor");
      json_write_int(w, d->minor);
      json_write_key(w, "fileMode");
      json_write_int(w, d->file_mode);
      json_write_key(w, "uid");
      json_write_int(w, d->uid);
      json_write_key(w, "gid");
      json_write_int(w, d->gid);
      json_end_object(w);
    }
  json_end_array(w);
}

static void
write_device_rule(struct json_writer *w, bool allow, char type, int64_t major, int64_t minor,
                  const char *access)
{
  json_begin_object(w);
  json_write_key(w, "allow");
  json_write_bool(w, allow);
  if (type)
    {
      char t[2] = { type, '\0' };
      json_write_key(w, "type");
      json_write_string(w, t);
      json_write_key(w, "major");
      json_write_int(w, major);
      json_write_key(w, "minor");
      json_write_int(w, minor);
    }
  json_write_key(w, "access");
  json_write_string(w, access);
  json_end_object(w);
}

/* Deny everything, then allow the listed devices; runc and crun add their
 * default devices (null, zero, tty, ...) on top by themselves.  A
 * privileged container may use every device. */
static void
write_device_rules(struct json_writer *w, const struct device_list *l, bool allow_all)
{
  json_write_key(w, "devices");
  json_begin_array(w);
  write_device_rule(w, allow_all, 0, 0, 0, "rwm");
  for (size_t i = 0; !allow_all && i < l->n; i++)
    if (l->items[i].access[0]) /* none: a CDI node with "none" permissions, or a fifo */
      write_device_rule(w, true, l->items[i].type, l->items[i].major, l->items[i].minor,
                        l->items[i].access);
  json_end_array(w);
}

/* ---- linux -------------------------------------------------------------- */

static void
write_namespaces(struct json_writer *w, const struct namespace_list *l)
{
  json_write_key(w, "namespaces");
  json_begin_array(w);
  for (size_t i = 0; i < l->n; i++)
    {
      json_begin_object(w);
      json_write_key(w, "type");
      json_write_string(w, l->items[i].type);
      if (l->items[i].path)
        {
          json_write_key(w, "path");
          json_write_string(w, l->items[i].path);
        }
      json_end_object(w);
    }
  json_end_array(w);
}

static void
write_id_mappings(struct json_writer *w, const char *key, const struct pod_id_range *ranges,
                  size_t n)
{
  json_write_key(w, key);
  json_begin_array(w);
  for (size_t i = 0; i < n; i++)
    {
      json_begin_object(w);
      json_write_key(w, "containerID");
      json_write_int(w, ranges[i].container_id);
      json_write_key(w, "hostID");
      json_write_int(w, ranges[i].host_id);
      json_write_key(w, "size");
      json_write_int(w, ranges[i].length);
      json_end_object(w);
    }
  json_end_array(w);
}

/* Joining the pod's namespace by path, the runtimes still want the
 * mappings: they tell them the host ids of the container's root. */
static void
write_userns_mappings(struct json_writer *w, const struct pod_userns *userns)
{
  if (!has_userns(userns))
    return;
  write_id_mappings(w, "uidMappings", userns->uids, userns->n_uids);
  write_id_mappings(w, "gidMappings", userns->gids, userns->n_gids);
}

static void
write_path_list(struct json_writer *w, const char *key, char *const *given, size_t n_given,
                const char *const *defaults)
{
  json_write_key(w, key);
  json_begin_array(w);
  if (n_given > 0)
    for (size_t i = 0; i < n_given; i++)
      json_write_string(w, given[i]);
  else
    for (size_t i = 0; defaults[i]; i++)
      json_write_string(w, defaults[i]);
  json_end_array(w);
}

static int
write_seccomp(struct json_writer *w, const char *seccomp_json, struct error *err)
{
  cleanup_json struct json_value *value = NULL;

  if (seccomp_json == NULL)
    return 0;
  value = json_parse(seccomp_json, strlen(seccomp_json), err);
  if (value == NULL)
    return error_wrap(err, "seccomp profile");
  if (!json_is_object(value))
    return error_set(err, EINVAL, "seccomp profile: not a JSON object");
  json_write_key(w, "seccomp");
  json_write_value(w, value);
  return 0;
}

static void
write_cpu(struct json_writer *w, const Runtime__V1__LinuxContainerResources *r)
{
  bool any = r->cpu_shares > 0 || r->cpu_quota != 0 || r->cpu_period > 0
             || !str_empty(r->cpuset_cpus) || !str_empty(r->cpuset_mems);

  if (!any)
    return;
  json_write_key(w, "cpu");
  json_begin_object(w);
  if (r->cpu_shares > 0)
    {
      json_write_key(w, "shares");
      json_write_int(w, r->cpu_shares);
    }
  if (r->cpu_quota != 0)
    {
      json_write_key(w, "quota");
      json_write_int(w, r->cpu_quota);
    }
  if (r->cpu_period > 0)
    {
      json_write_key(w, "period");
      json_write_int(w, r->cpu_period);
    }
  if (!str_empty(r->cpuset_cpus))
    {
      json_write_key(w, "cpus");
      json_write_string(w, r->cpuset_cpus);
    }
  if (!str_empty(r->cpuset_mems))
    {
      json_write_key(w, "mems");
      json_write_string(w, r->cpuset_mems);
    }
  json_end_object(w);
}

static void
write_memory(struct json_writer *w, const Runtime__V1__LinuxContainerResources *r)
{
  if (r->memory_limit_in_bytes <= 0 && r->memory_swap_limit_in_bytes == 0)
    return;
  json_write_key(w, "memory");
  json_begin_object(w);
  if (r->memory_limit_in_bytes > 0)
    {
      json_write_key(w, "limit");
      json_write_int(w, r->memory_limit_in_bytes);
    }
  /* memory+swap total; -1 = unlimited. */
  if (r->memory_swap_limit_in_bytes != 0)
    {
      json_write_key(w, "swap");
      json_write_int(w, r->memory_swap_limit_in_bytes);
    }
  json_end_object(w);
}

/* A hugepage size as the CRI and the cgroup files (hugetlb.<size>.*)
 * name it: "64KB", "2MB", "1GB", a power of two from 4KB to 16GB (the
 * largest of any architecture); the size names a file, so nothing else
 * may pass. */
static bool
hugepage_size_is_valid(const char *size)
{
  static const struct
  {
    const char *unit;
    int shift;
  } units[] = { { "KB", 10 }, { "MB", 20 }, { "GB", 30 } };
  unsigned long long n;
  char *end;

  if (size == NULL || size[0] < '1' || size[0] > '9')
    return false;
  errno = 0;
  n = strtoull(size, &end, 10);
  /* Bounded first, so that the shift below cannot overflow. */
  if (errno != 0 || n > (1ULL << 24))
    return false;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
    if (strcmp(end, units[i].unit) == 0)
      {
        unsigned long long bytes = n << units[i].shift;
        return (bytes & (bytes - 1)) == 0 && bytes >= 4096 && bytes <= (16ULL << 30);
      }
  return false;
}

static int
check_hugepage_limit(const Runtime__V1__HugepageLimit *h, size_t index, struct error *err)
{
  if (!hugepage_size_is_valid(h->page_size))
    {
      cleanup_free char *quoted = shown(h->page_size);
      return error_set(err, EINVAL,
                       "hugepage_limits[%zu]: page size %s is not a power of two from 4KB to "
                       "16GB such as \"2MB\" or \"1GB\"",
                       index, quoted);
    }
  /* The runtime spec's limit is a signed 64-bit number. */
  if (h->limit > INT64_MAX)
    return error_set(err, EINVAL, "hugepage_limits[%zu]: limit %" PRIu64 " is too large", index,
                     h->limit);
  return 0;
}

/* A key of `unified` names a file in the container's cgroup directory. */
static int
check_unified_key(const char *key, struct error *err)
{
  if (str_empty(key) || strchr(key, '/') || strstr(key, ".."))
    {
      cleanup_free char *quoted = shown(key);
      return error_set(err, EINVAL, "invalid unified cgroup key %s", quoted);
    }
  return 0;
}

int
oci_check_resources(const Runtime__V1__LinuxContainerResources *r, struct error *err)
{
  if (r->oom_score_adj < OCI_OOM_SCORE_ADJ_MIN || r->oom_score_adj > OCI_OOM_SCORE_ADJ_MAX)
    return error_set(err, EINVAL, "oom_score_adj %" PRId64 " is outside [%d, %d]", r->oom_score_adj,
                     OCI_OOM_SCORE_ADJ_MIN, OCI_OOM_SCORE_ADJ_MAX);
  if (r->cpu_shares < 0 || r->cpu_shares > OCI_CPU_SHARES_MAX)
    return error_set(err, EINVAL, "cpu_shares %" PRId64 " is outside [0, %d]", r->cpu_shares,
                     OCI_CPU_SHARES_MAX);
  for (size_t i = 0; i < r->n_hugepage_limits; i++)
    if (check_hugepage_limit(r->hugepage_limits[i], i, err) < 0)
      return -1;
  for (size_t i = 0; i < r->n_unified; i++)
    if (check_unified_key(r->unified[i]->key, err) < 0)
      return -1;
  return 0;
}

/* Only for resources that passed oci_check_resources(). */
static void
write_hugepages_and_unified(struct json_writer *w, const Runtime__V1__LinuxContainerResources *r)
{
  if (r->n_hugepage_limits > 0)
    {
      json_write_key(w, "hugepageLimits");
      json_begin_array(w);
      for (size_t i = 0; i < r->n_hugepage_limits; i++)
        {
          const Runtime__V1__HugepageLimit *h = r->hugepage_limits[i];
          json_begin_object(w);
          json_write_key(w, "pageSize");
          json_write_string(w, h->page_size);
          json_write_key(w, "limit");
          json_write_int(w, (int64_t)h->limit);
          json_end_object(w);
        }
      json_end_array(w);
    }
  if (r->n_unified > 0)
    {
      json_write_key(w, "unified");
      json_begin_object(w);
      for (size_t i = 0; i < r->n_unified; i++)
        {
          const char *key = r->unified[i]->key;
          json_write_key(w, key);
          json_write_string(w, r->unified[i]->value ? r->unified[i]->value : "");
        }
      json_end_object(w);
    }
}

static void
write_resources(struct json_writer *w, const Runtime__V1__LinuxContainerResources *r,
                const struct device_list *devices, bool allow_all_devices)
{
  json_write_key(w, "resources");
  json_begin_object(w);
  write_device_rules(w, devices, allow_all_devices);
  if (r)
    {
      write_memory(w, r);
      write_cpu(w, r);
      write_hugepages_and_unified(w, r);
    }
  json_end_object(w);
}

static void
write_annotation(struct json_writer *w, const char *key, const char *value)
{
  json_write_key(w, key);
  json_write_string(w, value ? value : "");
}

static void
write_sandbox_annotations(struct json_writer *w, const char *sandbox_id,
                          const Runtime__V1__PodSandboxConfig *config)
{
  const Runtime__V1__PodSandboxMetadata *md = config ? config->metadata : NULL;

  write_annotation(w, OCI_ANNOTATION_SANDBOX_ID, sandbox_id);
  write_annotation(w, OCI_ANNOTATION_SANDBOX_NAME, md ? md->name : "");
  write_annotation(w, OCI_ANNOTATION_SANDBOX_NAMESPACE, md ? md->namespace_ : "");
  write_annotation(w, OCI_ANNOTATION_SANDBOX_UID, md ? md->uid : "");
}

/* ---- the pause container ------------------------------------------------ */

static const Runtime__V1__LinuxSandboxSecurityContext *
sandbox_security(const Runtime__V1__PodSandboxConfig *config)
{
  return config && config->linux ? config->linux->security_context : NULL;
}

static void
sandbox_namespaces(const struct oci_sandbox_params *p, enum cgroup_mode mode,
                   struct namespace_list *l, char **paths)
{
  const char *dir = p->namespace_dir;

  /* paths[] owns the joined paths for the caller to free. */
  if (p->pid_mode != RUNTIME__V1__NAMESPACE_MODE__NODE)
    namespaces_add(l, "pid", NULL);
  if (!p->host_network)
    {
      paths[0] = dir ? xasprintf("%s/net", dir) : NULL;
      paths[1] = dir ? xasprintf("%s/uts", dir) : NULL;
      namespaces_add(l, "network", paths[0]);
      namespaces_add(l, "uts", paths[1]);
    }
  if (!p->host_ipc)
    {
      paths[2] = dir ? xasprintf("%s/ipc", dir) : NULL;
      namespaces_add(l, "ipc", paths[2]);
    }
  if (has_userns(p->userns))
    namespaces_add(l, "user", p->userns_path);
  namespaces_add(l, "mount", NULL);
  if (mode == CGROUP_MODE_UNIFIED)
    namespaces_add(l, "cgroup", NULL);
}

static int
sandbox_oom_score_adj(const Runtime__V1__PodSandboxConfig *config, int *out, struct error *err)
{
  const Runtime__V1__LinuxContainerResources *r
      = config && config->linux ? config->linux->resources : NULL;
  int64_t wanted = r && r->oom_score_adj != 0 ? r->oom_score_adj : OCI_SANDBOX_OOM_SCORE_ADJ;

  return clamped_oom_score_adj(wanted, out, err);
}

static int
sandbox_write(const struct oci_sandbox_params *p, struct json_writer *w,
              const struct oci_user *user, const struct capability_sets *caps,
              const struct namespace_list *namespaces, const struct mount_list *mounts,
              int oom_score_adj, struct error *err)
{
  const struct device_list no_devices = { 0 };
  const char *hostname = p->config->hostname;

  json_begin_object(w);
  json_write_key(w, "ociVersion");
  json_write_string(w, OCI_VERSION);

  json_write_key(w, "process");
  json_begin_object(w);
  json_write_key(w, "terminal");
  json_write_bool(w, false);
  write_user(w, user);
  json_write_key(w, "args");
  json_begin_array(w);
  if (p->args && p->args[0])
    for (size_t i = 0; p->args[i]; i++)
      json_write_string(w, p->args[i]);
  else
    json_write_string(w, OCI_PAUSE_COMMAND);
  json_end_array(w);
  json_write_key(w, "env");
  json_begin_array(w);
  json_write_string(w, "PATH=" OCI_DEFAULT_PATH);
  json_end_array(w);
  json_write_key(w, "cwd");
  json_write_string(w, "/");
  json_write_key(w, "capabilities");
  capabilities_write_json(w, caps);
  json_write_key(w, "noNewPrivileges");
  json_write_bool(w, true);
  json_write_key(w, "oomScoreAdj");
  json_write_int(w, oom_score_adj);
  json_end_object(w);

  json_write_key(w, "root");
  json_begin_object(w);
  json_write_key(w, "path");
  json_write_string(w, p->rootfs);
  json_write_key(w, "readonly");
  json_write_bool(w, true);
  json_end_object(w);

  /* Only with a UTS namespace of the pod's: never rename the host. */
  if (!p->host_network && !str_empty(hostname))
    {
      json_write_key(w, "hostname");
      json_write_string(w, hostname);
    }
  write_mounts(w, mounts);

  json_write_key(w, "annotations");
  json_begin_object(w);
  write_annotation(w, OCI_ANNOTATION_CONTAINER_TYPE, OCI_CONTAINER_TYPE_SANDBOX);
  write_sandbox_annotations(w, p->sandbox_id, p->config);
  if (p->seccomp_bpf)
    write_annotation(w, SECCOMP_BPF_ANNOTATION, p->seccomp_bpf);
  json_end_object(w);

  json_write_key(w, "linux");
  json_begin_object(w);
  if (!str_empty(p->cgroups_path))
    {
      json_write_key(w, "cgroupsPath");
      json_write_string(w, p->cgroups_path);
    }
  write_resources(w, NULL, &no_devices, false);
  write_namespaces(w, namespaces);
  write_userns_mappings(w, p->userns);
  write_path_list(w, "maskedPaths", NULL, 0, default_masked_paths);
  write_path_list(w, "readonlyPaths", NULL, 0, default_readonly_paths);
  if (write_seccomp(w, p->seccomp_json, err) < 0)
    return -1;
  json_end_object(w);
  json_end_object(w);
  return 0;
}

int
oci_spec_sandbox(const struct oci_sandbox_params *p, char **json, struct error *err)
{
  const Runtime__V1__LinuxSandboxSecurityContext *sc;
  struct json_writer *w;
  struct oci_user user;
  cleanup_free uint32_t *gids = NULL;
  struct capability_sets caps;
  struct namespace_list namespaces = { 0 };
  char *ns_paths[3] = { NULL, NULL, NULL };
  struct mount_list mounts = { 0 };
  uint64_t bounding;
  int oom_score_adj;
  int ret;

  if (p->config == NULL || str_empty(p->rootfs) || str_empty(p->sandbox_id))
    return error_set(err, EINVAL, "sandbox spec: missing config, rootfs or id");
  if (p->config->linux && p->config->linux->resources
      && oci_check_resources(p->config->linux->resources, err) < 0)
    return error_wrap(err, "sandbox spec");
  sc = sandbox_security(p->config);
  if (p->user)
    user = *p->user;
  else
    user_from_context(sc ? sc->run_as_user : NULL, sc ? sc->run_as_group : NULL,
                      sc ? sc->supplemental_groups : NULL, sc ? sc->n_supplemental_groups : 0,
                      &user, &gids);
  if (capabilities_host_bounding(&bounding, err) < 0
      || capabilities_compute(NULL, false, bounding, &caps, err) < 0
      || sandbox_oom_score_adj(p->config, &oom_score_adj, err) < 0)
    return error_wrap(err, "sandbox spec");

  sandbox_namespaces(p, mode_of(p->cgroup_mode), &namespaces, ns_paths);
  /* sysfs has one super block per network namespace, made by the first
   * mount in it: the pause's.  runc mounts a read-only sysfs read-only at
   * the super block, so a privileged container of the pod would find /sys
   * read-only however it mounts it (containerd#8445; CRI-O mounts the
   * infra's sysfs rw in privileged pods for this).  The pause's cgroup
   * mount goes rw with it, which gives a pause nothing it would use. */
  default_mounts(&mounts, sc && sc->privileged);
  /* With the host's IPC namespace, the host's shm goes with it. */
  shm_mount(&mounts, p->host_ipc ? "/dev/shm" : p->shm_path);

  w = json_writer_new(true);
  ret = sandbox_write(p, w, &user, &caps, &namespaces, &mounts, oom_score_adj, err);
  mounts_clear(&mounts);
  for (size_t i = 0; i < 3; i++)
    free(ns_paths[i]);
  if (ret < 0)
    {
      json_writer_free(w);
      return error_wrap(err, "sandbox spec");
    }
  *json = json_writer_finish(w, NULL);
  return 0;
}

/* ---- a container -------------------------------------------------------- */

/* Everything computed for a container's spec before it is written. */
struct container_spec
{
  char **args;
  struct strv env;
  char *cwd;
  struct oci_user user;
  uint32_t *gids;
  struct capability_sets caps;
  struct namespace_list namespaces;
  struct mount_list mounts;
  const char *rootfs_propagation;
  struct device_list devices;
  int oom_score_adj;
  char *apparmor_profile;
  char *hostname; /* only with a UTS namespace of its own */
  bool privileged;
  bool readonly_rootfs;
  bool no_new_privs;
};

static void
container_spec_clear(struct container_spec *s)
{
  strv_free(s->args);
  strv_clear(&s->env);
  free(s->cwd);
  free(s->gids);
  mounts_clear(&s->mounts);
  devices_clear(&s->devices);
  free(s->apparmor_profile);
  free(s->hostname);
}

static const Runtime__V1__LinuxContainerSecurityContext *
container_security(const Runtime__V1__ContainerConfig *config)
{
  return config->linux ? config->linux->security_context : NULL;
}

/* The container's modes; without options of its own, the pod's (kubelet
 * always sends them; crictl may not). */
static void
container_modes(const struct oci_container_params *p, int *network, int *ipc, int *pid)
{
  const Runtime__V1__LinuxContainerSecurityContext *sc = container_security(p->config);
  const Runtime__V1__LinuxSandboxSecurityContext *ssc = sandbox_security(p->sandbox_config);
  const Runtime__V1__NamespaceOption *o = sc ? sc->namespace_options : NULL;

  if (o == NULL && ssc)
    o = ssc->namespace_options;
  *network = o ? (int)o->network : RUNTIME__V1__NAMESPACE_MODE__POD;
  *ipc = o ? (int)o->ipc : RUNTIME__V1__NAMESPACE_MODE__POD;
  *pid = o ? (int)o->pid : RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
}

static int
container_namespaces(const struct oci_container_params *p, struct container_spec *s,
                     struct error *err)
{
  const Runtime__V1__LinuxContainerSecurityContext *sc = container_security(p->config);
  const Runtime__V1__NamespaceOption *o = sc ? sc->namespace_options : NULL;
  int network, ipc, pid;

  container_modes(p, &network, &ipc, &pid);
  if (o && o->userns_options && o->userns_options->mode == RUNTIME__V1__NAMESPACE_MODE__POD
      && !has_userns(p->userns))
    return error_set(err, EINVAL, "user namespace mode POD, but the pod has no user namespace");
  switch (pid)
    {
    case RUNTIME__V1__NAMESPACE_MODE__CONTAINER:
      namespaces_add(&s->namespaces, "pid", NULL);
      break;
    case RUNTIME__V1__NAMESPACE_MODE__POD:
      if (str_empty(p->pod_pidns_path))
        return error_set(err, EINVAL, "PID namespace mode POD, but the pod has no PID namespace");
      namespaces_add(&s->namespaces, "pid", p->pod_pidns_path);
      break;
    case RUNTIME__V1__NAMESPACE_MODE__TARGET:
      if (str_empty(p->target_pidns_path))
        {
          cleanup_free char *target = shown(o ? o->target_id : NULL);
          return error_set(err, EINVAL, "PID namespace mode TARGET, but no target container %s",
                           target);
        }
      namespaces_add(&s->namespaces, "pid", p->target_pidns_path);
      break;
    case RUNTIME__V1__NAMESPACE_MODE__NODE:
      break;
    default:
      return error_set(err, EINVAL, "unknown PID namespace mode %d", pid);
    }
  if (network != RUNTIME__V1__NAMESPACE_MODE__NODE)
    {
      namespaces_add(&s->namespaces, "network", str_empty(p->netns_path) ? NULL : p->netns_path);
      /* The pod's hostname lives in its UTS namespace; a host-network pod
       * has the host's. */
      namespaces_add(&s->namespaces, "uts", str_empty(p->utsns_path) ? NULL : p->utsns_path);
      /* A UTS namespace of its own must still answer the pod's name. */
      if (str_empty(p->utsns_path))
        s->hostname = pod_hostname(p->sandbox_config);
    }
  if (ipc != RUNTIME__V1__NAMESPACE_MODE__NODE)
    namespaces_add(&s->namespaces, "ipc",
                   ipc == RUNTIME__V1__NAMESPACE_MODE__POD && !str_empty(p->ipcns_path)
                       ? p->ipcns_path
                       : NULL);
  if (has_userns(p->userns))
    namespaces_add(&s->namespaces, "user", p->userns_path);
  namespaces_add(&s->namespaces, "mount", NULL);
  if (mode_of(p->cgroup_mode) == CGROUP_MODE_UNIFIED && !s->privileged)
    namespaces_add(&s->namespaces, "cgroup", NULL);
  return 0;
}

static int
container_mounts(const struct oci_container_params *p, struct container_spec *s, struct error *err)
{
  const char *sandbox_options = s->readonly_rootfs ? "rbind,rprivate,ro" : "rbind,rprivate";
  struct mount_list defaults = { 0 };
  struct mount_list user = { 0 };
  int network, ipc, pid;

  container_modes(p, &network, &ipc, &pid);
  default_mounts(&defaults, s->privileged);
  if (ipc == RUNTIME__V1__NAMESPACE_MODE__NODE)
    shm_mount(&defaults, "/dev/shm");
  else if (ipc == RUNTIME__V1__NAMESPACE_MODE__POD && p->shm_path)
    shm_mount(&defaults, p->shm_path);
  else
    shm_mount(&defaults, NULL);
  if (p->hostname_path)
    mounts_add(&defaults, "/etc/hostname", "bind", p->hostname_path, sandbox_options);
  if (p->resolv_conf_path)
    mounts_add(&defaults, "/etc/resolv.conf", "bind", p->resolv_conf_path, sandbox_options);
  if (cri_mounts(p, &user, &s->rootfs_propagation, err) < 0)
    {
      mounts_clear(&defaults);
      mounts_clear(&user);
      return -1;
    }
  merge_mounts(&defaults, &user, &s->mounts);
  return 0;
}

static int
container_devices(const struct oci_container_params *p, struct container_spec *s, struct error *err)
{
  for (size_t i = 0; i < p->config->n_devices; i++)
    if (cri_device(&s->devices, p->config->devices[i], err) < 0)
      return -1;
  if (s->privileged && devices_walk(&s->devices, "/dev", "/dev", "rwm", true, 0, err) < 0)
    return error_wrap(err, "host devices");
  return 0;
}

static char *
apparmor_name(const Runtime__V1__LinuxContainerSecurityContext *sc, bool *localhost)
{
  const Runtime__V1__SecurityProfile *profile = sc ? sc->apparmor : NULL;
  const char *old = NULL;

  /* kubelet still fills the deprecated string next to the message. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  old = sc ? sc->apparmor_profile : NULL;
#pragma GCC diagnostic pop

  *localhost = false;
  if (profile)
    switch (profile->profile_type)
      {
      case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined:
        return xstrdup("unconfined");
      case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost:
        *localhost = true;
        return xstrdup(str_has_prefix(profile->localhost_ref, "localhost/")
                           ? profile->localhost_ref + strlen("localhost/")
                           : profile->localhost_ref);
      default:
        return NULL;
      }
  /* The deprecated string form: "runtime/default", "unconfined",
   * "localhost/<name>". */
  if (str_empty(old) || strcmp(old, "runtime/default") == 0)
    return NULL;
  if (str_has_prefix(old, "localhost/"))
    {
      *localhost = true;
      return xstrdup(old + strlen("localhost/"));
    }
  return xstrdup(old);
}

static int
container_apparmor(const struct oci_container_params *p, struct container_spec *s,
                   struct error *err)
{
  bool enabled = p->apparmor == OCI_APPARMOR_DETECT ? oci_apparmor_host_enabled()
                                                    : p->apparmor == OCI_APPARMOR_ENABLED;
  bool localhost;
  cleanup_free char *name = apparmor_name(container_security(p->config), &localhost);

  if (!enabled)
    {
      if (localhost)
        {
          cleanup_free char *quoted = shown(name);
          return error_set(err, EINVAL,
                           "AppArmor profile %s requested, but AppArmor is not "
                           "enabled on this host",
                           quoted);
        }
      return 0;
    }
  if (s->privileged)
    s->apparmor_profile = xstrdup("unconfined");
  else if (name && name[0])
    s->apparmor_profile = steal_pointer(&name);
  return 0;
}

static int
container_security_settings(const struct oci_container_params *p, struct container_spec *s,
                            struct error *err)
{
  const Runtime__V1__LinuxContainerSecurityContext *sc = container_security(p->config);
  const Runtime__V1__LinuxSandboxSecurityContext *ssc = sandbox_security(p->sandbox_config);
  const Runtime__V1__LinuxContainerResources *r
      = p->config->linux ? p->config->linux->resources : NULL;
  uint64_t bounding;

  s->privileged = sc && sc->privileged;
  s->readonly_rootfs = sc && sc->readonly_rootfs;
  s->no_new_privs = sc && sc->no_new_privs;
  /* kubelet marks the pod privileged when any container is; a privileged
   * container in an unprivileged pod is a request kubelet never makes. */
  if (s->privileged && p->sandbox_config && !(ssc && ssc->privileged))
    return error_set(err, EINVAL, "no privileged container allowed in an unprivileged sandbox");
  if (p->user)
    s->user = *p->user;
  else
    user_from_context(sc ? sc->run_as_user : NULL, sc ? sc->run_as_group : NULL,
                      sc ? sc->supplemental_groups : NULL, sc ? sc->n_supplemental_groups : 0,
                      &s->user, &s->gids);
  if (capabilities_host_bounding(&bounding, err) < 0
      || capabilities_compute(sc ? sc->capabilities : NULL, s->privileged, bounding, &s->caps, err)
             < 0)
    return -1;
  if (clamped_oom_score_adj(r ? r->oom_score_adj : 0, &s->oom_score_adj, err) < 0)
    return -1;
  return container_apparmor(p, s, err);
}

/* ---- CDI edits (pod/cdi.h) ----------------------------------------------- */

static void
cdi_device_nodes(const struct cdi_edits *e, struct container_spec *s)
{
  for (size_t i = 0; i < e->n_device_nodes; i++)
    {
      const struct cdi_device_node *node = &e->device_nodes[i];
      const char *access = node->permissions ? node->permissions : "rwm";
      struct device_spec d = { .type = node->type,
                               .major = node->major,
                               .minor = node->minor,
                               .file_mode = node->file_mode & 07777,
                               /* Unset: the process's, as the reference does. */
                               .uid = node->has_uid ? node->uid : s->user.uid,
                               .gid = node->has_gid ? node->gid : s->user.gid };
      size_t j;

      /* Access rules exist for block and char devices only. */
      if (strcmp(access, "none") != 0 && (node->type == 'b' || node->type == 'c'))
        snprintf(d.access, sizeof d.access, "%s%s%s", strchr(access, 'r') ? "r" : "",
                 strchr(access, 'w') ? "w" : "", strchr(access, 'm') ? "m" : "");
      for (j = 0; j < s->devices.n && strcmp(s->devices.items[j].path, node->path) != 0; j++)
        ;
      if (j == s->devices.n)
        s->devices.items = xrealloc(s->devices.items, ++s->devices.n * sizeof(struct device_spec));
      else
        free(s->devices.items[j].path);
      d.path = xstrdup(node->path);
      s->devices.items[j] = d;
    }
}

static void
cdi_mounts(const struct cdi_edits *e, struct container_spec *s)
{
  for (size_t i = 0; i < e->n_mounts; i++)
    {
      const struct cdi_mount *m = &e->mounts[i];
      cleanup_free char *options = strv_join(m->options, ",");

      for (size_t j = 0; j < s->mounts.n; j++)
        if (strcmp(s->mounts.items[j].destination, m->container_path) == 0)
          {
            mount_spec_clear(&s->mounts.items[j]);
            memmove(&s->mounts.items[j], &s->mounts.items[j + 1],
                    (--s->mounts.n - j) * sizeof *s->mounts.items);
            break;
          }
      mounts_add(&s->mounts, m->container_path, m->type ? m->type : "bind", m->host_path, options);
    }
}

static void
cdi_additional_gids(const struct cdi_edits *e, struct container_spec *s)
{
  size_t n = s->user.n_additional_gids;
  uint32_t *gids = xcalloc(n + e->n_additional_gids + 1, sizeof(uint32_t));

  if (e->n_additional_gids == 0)
    {
      free(gids);
      return;
    }
  if (n)
    memcpy(gids, s->user.additional_gids, n * sizeof(uint32_t));
  for (size_t i = 0; i < e->n_additional_gids; i++)
    {
      size_t j;
      for (j = 0; j < n && gids[j] != e->additional_gids[i]; j++)
        ;
      if (j == n)
        gids[n++] = e->additional_gids[i];
    }
  free(s->gids);
  s->gids = gids;
  s->user.additional_gids = gids;
  s->user.n_additional_gids = n;
}

/* After the CRI parts: a CDI edit replaces what CRI put at the same place. */
static void
container_cdi(const struct oci_container_params *p, struct container_spec *s)
{
  if (p->cdi == NULL)
    return;
  for (size_t i = 0; p->cdi->env && p->cdi->env[i]; i++)
    env_set(&s->env, p->cdi->env[i]);
  cdi_device_nodes(p->cdi, s);
  cdi_mounts(p->cdi, s);
  cdi_additional_gids(p->cdi, s);
}

static void
write_cdi_hooks(struct json_writer *w, const struct cdi_edits *e)
{
  static const char *const kinds[] = { "prestart",       "createRuntime", "createContainer",
                                       "startContainer", "poststart",     "poststop" };

  if (e == NULL || e->n_hooks == 0)
    return;
  json_write_key(w, "hooks");
  json_begin_object(w);
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
    {
      bool any = false;
      for (size_t i = 0; i < e->n_hooks; i++)
        {
          const struct cdi_hook *hook = &e->hooks[i];
          if (strcmp(hook->hook_name, kinds[k]) != 0)
            continue;
          if (!any)
            {
              json_write_key(w, kinds[k]);
              json_begin_array(w);
              any = true;
            }
          json_begin_object(w);
          json_write_key(w, "path");
          json_write_string(w, hook->path);
          if (hook->args)
            write_string_array(w, "args", hook->args);
          if (hook->env)
            write_string_array(w, "env", hook->env);
          if (hook->has_timeout)
            {
              json_write_key(w, "timeout");
              json_write_int(w, hook->timeout);
            }
          json_end_object(w);
        }
      if (any)
        json_end_array(w);
    }
  json_end_object(w);
}

static int
container_compute(const struct oci_container_params *p, struct container_spec *s, struct error *err)
{
  if (oci_container_args(p->config, p->image, &s->args, err) < 0
      || container_env(p, &s->env, err) < 0 || container_cwd(p, &s->cwd, err) < 0
      || container_security_settings(p, s, err) < 0 || container_namespaces(p, s, err) < 0
      || container_mounts(p, s, err) < 0 || container_devices(p, s, err) < 0)
    return -1;
  container_cdi(p, s);
  return 0;
}

static void
container_write_process(struct json_writer *w, const struct oci_container_params *p,
                        const struct container_spec *s)
{
  json_write_key(w, "process");
  json_begin_object(w);
  json_write_key(w, "terminal");
  json_write_bool(w, p->config->tty);
  write_user(w, &s->user);
  write_string_array(w, "args", s->args);
  write_string_array(w, "env", s->env.items);
  json_write_key(w, "cwd");
  json_write_string(w, s->cwd);
  json_write_key(w, "capabilities");
  capabilities_write_json(w, &s->caps);
  write_nofile(w);
  json_write_key(w, "noNewPrivileges");
  json_write_bool(w, s->no_new_privs);
  if (s->apparmor_profile)
    {
      json_write_key(w, "apparmorProfile");
      json_write_string(w, s->apparmor_profile);
    }
  json_write_key(w, "oomScoreAdj");
  json_write_int(w, s->oom_score_adj);
  json_end_object(w);
}

static void
container_write_annotations(struct json_writer *w, const struct oci_container_params *p)
{
  const Runtime__V1__ContainerConfig *config = p->config;
  const char *image = p->image_name;

  if (image == NULL && config->image)
    image = config->image->image;
  json_write_key(w, "annotations");
  json_begin_object(w);
  write_annotation(w, OCI_ANNOTATION_CONTAINER_TYPE, OCI_CONTAINER_TYPE_CONTAINER);
  write_sandbox_annotations(w, p->sandbox_id, p->sandbox_config);
  write_annotation(w, OCI_ANNOTATION_CONTAINER_NAME,
                   config->metadata ? config->metadata->name : "");
  write_annotation(w, OCI_ANNOTATION_IMAGE_NAME, image);
  if (p->seccomp_bpf)
    write_annotation(w, SECCOMP_BPF_ANNOTATION, p->seccomp_bpf);
  json_end_object(w);
}

static int
container_write_linux(struct json_writer *w, const struct oci_container_params *p,
                      const struct container_spec *s, struct error *err)
{
  const Runtime__V1__LinuxContainerSecurityContext *sc = container_security(p->config);
  const Runtime__V1__LinuxContainerResources *r
      = p->config->linux ? p->config->linux->resources : NULL;

  json_write_key(w, "linux");
  json_begin_object(w);
  if (!str_empty(p->cgroups_path))
    {
      json_write_key(w, "cgroupsPath");
      json_write_string(w, p->cgroups_path);
    }
  write_resources(w, r, &s->devices, s->privileged);
  write_namespaces(w, &s->namespaces);
  write_userns_mappings(w, p->userns);
  write_devices(w, &s->devices);
  if (s->rootfs_propagation[0])
    {
      json_write_key(w, "rootfsPropagation");
      json_write_string(w, s->rootfs_propagation);
    }
  if (!s->privileged)
    {
      write_path_list(w, "maskedPaths", sc ? sc->masked_paths : NULL, sc ? sc->n_masked_paths : 0,
                      default_masked_paths);
      write_path_list(w, "readonlyPaths", sc ? sc->readonly_paths : NULL,
                      sc ? sc->n_readonly_paths : 0, default_readonly_paths);
    }
  if (write_seccomp(w, p->seccomp_json, err) < 0)
    return -1;
  json_end_object(w);
  return 0;
}

static int
container_write(struct json_writer *w, const struct oci_container_params *p,
                const struct container_spec *s, struct error *err)
{
  json_begin_object(w);
  json_write_key(w, "ociVersion");
  json_write_string(w, OCI_VERSION);
  container_write_process(w, p, s);
  json_write_key(w, "root");
  json_begin_object(w);
  json_write_key(w, "path");
  json_write_string(w, p->rootfs);
  json_write_key(w, "readonly");
  json_write_bool(w, s->readonly_rootfs);
  json_end_object(w);
  if (!str_empty(s->hostname))
    {
      json_write_key(w, "hostname");
      json_write_string(w, s->hostname);
    }
  write_mounts(w, &s->mounts);
  write_cdi_hooks(w, p->cdi);
  container_write_annotations(w, p);
  if (container_write_linux(w, p, s, err) < 0)
    return -1;
  json_end_object(w);
  return 0;
}

int
oci_spec_container(const struct oci_container_params *p, char **json, struct error *err)
{
  struct container_spec s = { 0 };
  struct json_writer *w = NULL;
  int ret;

  if (p->config == NULL || str_empty(p->rootfs) || str_empty(p->container_id))
    return error_set(err, EINVAL, "container spec: missing config, rootfs or id");
  if (p->config->linux && p->config->linux->resources
      && oci_check_resources(p->config->linux->resources, err) < 0)
    return error_wrap(err, "container spec");
  ret = container_compute(p, &s, err);
  if (ret == 0)
    {
      w = json_writer_new(true);
      ret = container_write(w, p, &s, err);
    }
  container_spec_clear(&s);
  if (ret < 0)
    {
      if (w)
        json_writer_free(w);
      return error_wrap(err, "container spec");
    }
  *json = json_writer_finish(w, NULL);
  return 0;
}
