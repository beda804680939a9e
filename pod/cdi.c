/* CDI devices: the spec registry, the requested names and their
 * resolution into container edits; see cdi.h for the choices. */
#include "pod/cdi.h"
#include "common/cleanup.h"
#include "common/dir_watch.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#define QUOTE_MAX 128

struct loaded_spec
{
  char *path;
  int priority; /* index of its directory in the configured list */
  struct cdi_spec *spec;
};

struct spec_problem
{
  char *path;
  char *message;
};

/* What the directories held at one reading. */
struct spec_index
{
  struct loaded_spec *specs;
  size_t n_specs;
  struct spec_problem *problems;
  size_t n_problems;
};

struct cdi_registry
{
  char **dirs;
  struct dir_watch *watch; /* NULL: each resolution reads the directories */
  pthread_mutex_t lock;    /* guards index and watching */
  struct spec_index index;
  bool watching;
};

/* ---- reading the directories -------------------------------------------- */

static void
index_clear(struct spec_index *index)
{
  for (size_t i = 0; i < index->n_specs; i++)
    {
      free(index->specs[i].path);
      cdi_spec_free(index->specs[i].spec);
    }
  free(index->specs);
  for (size_t i = 0; i < index->n_problems; i++)
    {
      free(index->problems[i].path);
      free(index->problems[i].message);
    }
  free(index->problems);
  *index = (struct spec_index){ 0 };
}

static void
add_problem(struct spec_index *index, const char *path, char *message)
{
  log_warn("CDI spec %s: %s", path, message);
  index->problems = xrealloc(index->problems, (index->n_problems + 1) * sizeof *index->problems);
  index->problems[index->n_problems++]
      = (struct spec_problem){ .path = xstrdup(path), .message = message };
}

static int
load_spec(const char *path, enum cdi_format format, struct cdi_spec **spec, struct error *err)
{
  cleanup_free char *text = NULL;
  size_t len;

  if (read_file(path, CDI_SPEC_MAX_SIZE, &text, &len, err) < 0)
    return -1;
  return cdi_spec_parse(text, len, format, spec, err);
}

static void
load_dir(struct spec_index *index, const char *dir, int priority)
{
  struct dirent **entries = NULL;
  int n = scandir(dir, &entries, NULL, alphasort);

  if (n < 0)
    {
      if (errno != ENOENT)
        add_problem(index, dir, xasprintf("read directory: %s", strerror(errno)));
      return;
    }
  for (int i = 0; i < n; i++)
    {
      cleanup_free char *path = xasprintf("%s/%s", dir, entries[i]->d_name);
      struct error err = ERROR_INIT;
      struct cdi_spec *spec = NULL;
      enum cdi_format format;
      struct stat st;

      if (entries[i]->d_name[0] != '.' && cdi_spec_format_of(entries[i]->d_name, &format)
          && stat(path, &st) == 0 && S_ISREG(st.st_mode))
        {
          if (load_spec(path, format, &spec, &err) < 0)
            {
              add_problem(index, path, xstrdup(error_message(&err)));
              error_clear(&err);
            }
          else
            {
              index->specs = xrealloc(index->specs, (index->n_specs + 1) * sizeof *index->specs);
              index->specs[index->n_specs++] = (struct loaded_spec){ .path = steal_pointer(&path),
                                                                     .priority = priority,
                                                                     .spec = spec };
            }
        }
      free(entries[i]);
    }
  free(entries);
}

/* A device name defined by two files of one directory: reported with both
 * files (resolving it fails the same way). */
static void
find_conflicts(struct spec_index *index)
{
  size_t n = index->n_specs;

  for (size_t a = 0; a < n; a++)
    for (size_t b = a + 1; b < n; b++)
      {
        const struct cdi_spec *x = index->specs[a].spec;
        const struct cdi_spec *y = index->specs[b].spec;
        if (index->specs[a].priority != index->specs[b].priority
            || strcmp(x->vendor, y->vendor) != 0 || strcmp(x->class_name, y->class_name) != 0)
          continue;
        for (size_t i = 0; i < x->n_devices; i++)
          for (size_t j = 0; j < y->n_devices; j++)
            if (strcmp(x->devices[i].name, y->devices[j].name) == 0)
              add_problem(index, index->specs[b].path,
                          xasprintf("device %s/%s=%s is also defined by %s: neither can be used",
                                    x->vendor, x->class_name, x->devices[i].name,
                                    index->specs[a].path));
      }
}

static void
index_load(struct spec_index *index, char *const *dirs)
{
  for (size_t i = 0; dirs && dirs[i]; i++)
    load_dir(index, dirs[i], (int)i);
  find_conflicts(index);
}

static size_t
count_devices(const struct spec_index *index)
{
  size_t n = 0;

  for (size_t i = 0; i < index->n_specs; i++)
    n += index->specs[i].spec->n_devices;
  return n;
}

static void
reload(struct cdi_registry *registry)
{
  struct spec_index fresh = { 0 };

  index_load(&fresh, registry->dirs);
  log_info("CDI: %zu spec file(s), %zu device(s), %zu bad file(s)", fresh.n_specs,
           count_devices(&fresh), fresh.n_problems);
  pthread_mutex_lock(&registry->lock);
  index_clear(&registry->index);
  registry->index = fresh;
  pthread_mutex_unlock(&registry->lock);
}

static void
on_change(void *object, bool lost)
{
  struct cdi_registry *registry = object;

  if (lost)
    {
      log_warn("CDI spec directories are no longer watched; reading them at each use");
      pthread_mutex_lock(&registry->lock);
      registry->watching = false;
      pthread_mutex_unlock(&registry->lock);
      return;
    }
  reload(registry);
}

struct cdi_registry *
cdi_registry_open(char *const *dirs)
{
  struct cdi_registry *registry = xcalloc(1, sizeof *registry);
  struct error err = ERROR_INIT;
  size_t n = strv_length(dirs);

  registry->dirs = xcalloc(n + 1, sizeof(char *));
  for (size_t i = 0; i < n; i++)
    registry->dirs[i] = xstrdup(dirs[i]);
  pthread_mutex_init(&registry->lock, NULL);
  registry->watching = true;
  if (n == 0)
    return registry;
  if (dir_watch_start(registry->dirs, "CDI spec directory", on_change, registry, &registry->watch,
                      &err)
      < 0)
    {
      log_warn("%s; reading the CDI spec directories at each use", error_message(&err));
      error_clear(&err);
      registry->watching = false;
      reload(registry);
    }
  return registry;
}

void
cdi_registry_free(struct cdi_registry *registry)
{
  if (registry == NULL)
    return;
  dir_watch_stop(registry->watch);
  index_clear(&registry->index);
  strv_free(registry->dirs);
  pthread_mutex_destroy(&registry->lock);
  free(registry);
}

/* ---- the names a container asks for ------------------------------------- */

static void
add_name(char ***names, size_t *n, const char *name)
{
  for (size_t i = 0; i < *n; i++)
    if (strcmp((*names)[i], name) == 0)
      return;
  *names = xrealloc(*names, (*n + 2) * sizeof(char *));
  (*names)[(*n)++] = xstrdup(name);
  (*names)[*n] = NULL;
}

/* One annotation of a container or pod config (their protobuf map entry
 * types differ). */
struct annotation
{
  const char *key;
  const char *value;
};

static int
compare_keys(const void *a, const void *b)
{
  return strcmp(((const struct annotation *)a)->key, ((const struct annotation *)b)->key);
}

static int
add_annotated(char ***names, size_t *n, struct annotation *annotations, size_t count,
              const char *whose, struct error *err)
{
  qsort(annotations, count, sizeof *annotations, compare_keys);
  for (size_t i = 0; i < count; i++)
    {
      cleanup_free char *value = NULL;
      char *save = NULL;

      if (!str_has_prefix(annotations[i].key, CDI_ANNOTATION_PREFIX))
        continue;
      value = xstrdup(annotations[i].value);
      for (char *name = strtok_r(value, ",", &save); name; name = strtok_r(NULL, ",", &save))
        {
          cleanup_free char *vendor = NULL;
          cleanup_free char *class_name = NULL;
          cleanup_free char *device = NULL;
          if (cdi_parse_qualified_name(name, &vendor, &class_name, &device, err) < 0)
            {
              cleanup_free char *key
                  = quote_untrusted(annotations[i].key, strlen(annotations[i].key), QUOTE_MAX);
              return error_wrap(err, "%s annotation %s", whose, key);
            }
          add_name(names, n, name);
        }
    }
  return 0;
}

#define ANNOTATIONS_OF(message)                                                                    \
  ({                                                                                               \
    struct annotation *list_ = xcalloc((message)->n_annotations + 1, sizeof *list_);               \
    for (size_t i_ = 0; i_ < (message)->n_annotations; i_++)                                       \
      list_[i_] = (struct annotation){ (message)->annotations[i_]->key,                            \
                                       (message)->annotations[i_]->value };                        \
    list_;                                                                                         \
  })

int
cdi_requested_devices(const Runtime__V1__ContainerConfig *config,
                      const Runtime__V1__PodSandboxConfig *sandbox_config, char ***names,
                      struct error *err)
{
  cleanup_strv char **list = NULL;
  cleanup_free struct annotation *container_annotations = ANNOTATIONS_OF(config);
  cleanup_free struct annotation *pod_annotations = NULL;
  size_t n = 0;

  for (size_t i = 0; i < config->n_cdi_devices; i++)
    {
      const char *name = config->cdi_devices[i]->name;
      cleanup_free char *vendor = NULL;
      cleanup_free char *class_name = NULL;
      cleanup_free char *device = NULL;
      if (cdi_parse_qualified_name(name, &vendor, &class_name, &device, err) < 0)
        return error_wrap(err, "CDI_devices[%zu]", i);
      add_name(&list, &n, name);
    }
  if (add_annotated(&list, &n, container_annotations, config->n_annotations, "container", err) < 0)
    return -1;
  if (sandbox_config)
    {
      pod_annotations = ANNOTATIONS_OF(sandbox_config);
      if (add_annotated(&list, &n, pod_annotations, sandbox_config->n_annotations, "pod", err) < 0)
        return -1;
    }
  *names = steal_pointer(&list);
  return 0;
}

/* ---- resolution --------------------------------------------------------- */

/* Where an edit came from, for conflict messages. */
struct origin
{
  const char *device; /* qualified name */
  const char *path;   /* its spec file */
};

/* The merge in progress: out's items, each with its origin. */
struct merge
{
  struct cdi_edits *out;
  struct origin *env_origins;
  struct origin *node_origins;
  struct origin *mount_origins;
  size_t n_env;
};

static void
merge_clear(struct merge *m)
{
  free(m->env_origins);
  free(m->node_origins);
  free(m->mount_origins);
}

static int
conflict(const struct origin *a, const struct origin *b, const char *what, const char *name,
         struct error *err)
{
  cleanup_free char *shown = quote_untrusted(name, strlen(name), QUOTE_MAX);

  return error_set(err, EINVAL, "CDI devices %s (spec %s) and %s (spec %s) set %s %s differently",
                   a->device, a->path, b->device, b->path, what, shown);
}

static bool
strv_equal(char *const *a, char *const *b)
{
  size_t n = strv_length(a);

  if (n != strv_length(b))
    return false;
  for (size_t i = 0; i < n; i++)
    if (strcmp(a[i], b[i]) != 0)
      return false;
  return true;
}

static bool
str_equal(const char *a, const char *b)
{
  return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static int
merge_env(struct merge *m, char *const *env, const struct origin *origin, struct error *err)
{
  for (size_t i = 0; env && env[i]; i++)
    {
      size_t key_len = strcspn(env[i], "=") + 1;
      bool seen = false;

      for (size_t j = 0; j < m->n_env && !seen; j++)
        if (strncmp(m->out->env[j], env[i], key_len) == 0)
          {
            cleanup_free char *key = xstrndup(env[i], key_len - 1);
            if (strcmp(m->out->env[j], env[i]) != 0)
              return conflict(&m->env_origins[j], origin, "environment variable", key, err);
            seen = true;
          }
      if (seen)
        continue;
      m->out->env = xrealloc(m->out->env, (m->n_env + 2) * sizeof(char *));
      m->env_origins = xrealloc(m->env_origins, (m->n_env + 1) * sizeof *m->env_origins);
      m->out->env[m->n_env] = xstrdup(env[i]);
      m->env_origins[m->n_env++] = *origin;
      m->out->env[m->n_env] = NULL;
    }
  return 0;
}

/* type, major, minor (and mode) of the host node where the spec leaves
 * them out. */
static int
complete_node(struct cdi_device_node *node, const struct origin *origin, struct error *err)
{
  const char *host = node->host_path ? node->host_path : node->path;
  bool complete = node->type && (node->major != 0 || node->type == 'p');
  char host_type;
  struct stat st;

  if (stat(host, &st) < 0)
    {
      if (complete)
        return 0;
      return error_set_errno(err, errno, "CDI device %s (spec %s): device node %s", origin->device,
                             origin->path, host);
    }
  if (!node->has_file_mode)
    {
      node->has_file_mode = true;
      node->file_mode = st.st_mode & 07777;
    }
  if (complete)
    return 0;
  host_type = S_ISBLK(st.st_mode)    ? 'b'
              : S_ISCHR(st.st_mode)  ? 'c'
              : S_ISFIFO(st.st_mode) ? 'p'
                                     : 0;
  if (host_type == 0)
    return error_set(err, EINVAL, "CDI device %s (spec %s): %s is not a device node",
                     origin->device, origin->path, host);
  if (node->type == 0)
    node->type = host_type;
  if (node->type != host_type && !(node->type == 'u' && host_type == 'c'))
    return error_set(err, EINVAL, "CDI device %s (spec %s): %s is of type %c on the host, not %c",
                     origin->device, origin->path, host, host_type, node->type);
  if (node->type != 'p' && node->major == 0)
    {
      node->major = major(st.st_rdev);
      node->minor = minor(st.st_rdev);
    }
  return 0;
}

static int
merge_nodes(struct merge *m, const struct cdi_edits *e, const struct origin *origin,
            struct error *err)
{
  struct cdi_edits *out = m->out;

  for (size_t i = 0; i < e->n_device_nodes; i++)
    {
      const struct cdi_device_node *given = &e->device_nodes[i];
      struct cdi_device_node node = *given;
      bool seen = false;

      if (complete_node(&node, origin, err) < 0)
        return -1;
      for (size_t j = 0; j < out->n_device_nodes && !seen; j++)
        {
          const struct cdi_device_node *other = &out->device_nodes[j];
          if (strcmp(other->path, node.path) != 0)
            continue;
          if (other->type != node.type || other->major != node.major || other->minor != node.minor)
            return conflict(&m->node_origins[j], origin, "device node", node.path, err);
          seen = true;
        }
      if (seen)
        continue;
      out->device_nodes
          = xrealloc(out->device_nodes, (out->n_device_nodes + 1) * sizeof *out->device_nodes);
      m->node_origins
          = xrealloc(m->node_origins, (out->n_device_nodes + 1) * sizeof *m->node_origins);
      node.path = xstrdup(given->path);
      node.host_path = given->host_path ? xstrdup(given->host_path) : NULL;
      node.permissions = given->permissions ? xstrdup(given->permissions) : NULL;
      m->node_origins[out->n_device_nodes] = *origin;
      out->device_nodes[out->n_device_nodes++] = node;
    }
  return 0;
}

static int
merge_mounts(struct merge *m, const struct cdi_edits *e, const struct origin *origin,
             struct error *err)
{
  struct cdi_edits *out = m->out;

  for (size_t i = 0; i < e->n_mounts; i++)
    {
      const struct cdi_mount *mount = &e->mounts[i];
      bool seen = false;

      for (size_t j = 0; j < out->n_mounts && !seen; j++)
        {
          const struct cdi_mount *other = &out->mounts[j];
          if (strcmp(other->container_path, mount->container_path) != 0)
            continue;
          if (strcmp(other->host_path, mount->host_path) != 0
              || !str_equal(other->type, mount->type)
              || !strv_equal(other->options, mount->options))
            return conflict(&m->mount_origins[j], origin, "mount point", mount->container_path,
                            err);
          seen = true;
        }
      if (seen)
        continue;
      out->mounts = xrealloc(out->mounts, (out->n_mounts + 1) * sizeof *out->mounts);
      m->mount_origins = xrealloc(m->mount_origins, (out->n_mounts + 1) * sizeof *m->mount_origins);
      m->mount_origins[out->n_mounts] = *origin;
      out->mounts[out->n_mounts++] = (struct cdi_mount){
        .host_path = xstrdup(mount->host_path),
        .container_path = xstrdup(mount->container_path),
        .type = mount->type ? xstrdup(mount->type) : NULL,
        .options = mount->options ? strv_copy(mount->options) : NULL,
      };
    }
  return 0;
}

static void
merge_hooks_and_gids(struct merge *m, const struct cdi_edits *e)
{
  struct cdi_edits *out = m->out;

  for (size_t i = 0; i < e->n_hooks; i++)
    {
      const struct cdi_hook *hook = &e->hooks[i];
      out->hooks = xrealloc(out->hooks, (out->n_hooks + 1) * sizeof *out->hooks);
      out->hooks[out->n_hooks++]
          = (struct cdi_hook){ .hook_name = xstrdup(hook->hook_name),
                               .path = xstrdup(hook->path),
                               .args = hook->args ? strv_copy(hook->args) : NULL,
                               .env = hook->env ? strv_copy(hook->env) : NULL,
                               .has_timeout = hook->has_timeout,
                               .timeout = hook->timeout };
    }
  for (size_t i = 0; i < e->n_additional_gids; i++)
    {
      uint32_t gid = e->additional_gids[i];
      bool seen = gid == 0; /* 0 is ignored, as the spec says */

      for (size_t j = 0; j < out->n_additional_gids && !seen; j++)
        seen = out->additional_gids[j] == gid;
      if (seen)
        continue;
      out->additional_gids
          = xrealloc(out->additional_gids, (out->n_additional_gids + 1) * sizeof(uint32_t));
      out->additional_gids[out->n_additional_gids++] = gid;
    }
}

static int
merge_edits(struct merge *m, const struct cdi_edits *e, const struct origin *origin,
            struct error *err)
{
  if (e->has_intel_rdt)
    return error_set(err, ENOSYS, "CDI device %s (spec %s): intelRdt edits are not supported",
                     origin->device, origin->path);
  if (e->n_net_devices)
    return error_set(err, ENOSYS, "CDI device %s (spec %s): netDevices edits are not supported",
                     origin->device, origin->path);
  if (merge_env(m, e->env, origin, err) < 0 || merge_nodes(m, e, origin, err) < 0
      || merge_mounts(m, e, origin, err) < 0)
    return -1;
  merge_hooks_and_gids(m, e);
  return 0;
}

/* The spec and device a name resolves to, by directory priority. */
static int
find_device(const struct spec_index *index, char *const *dirs, const char *qualified,
            const struct loaded_spec **spec, const struct cdi_device **device, struct error *err)
{
  cleanup_free char *vendor = NULL;
  cleanup_free char *class_name = NULL;
  cleanup_free char *name = NULL;
  const struct loaded_spec *tie = NULL;

  if (cdi_parse_qualified_name(qualified, &vendor, &class_name, &name, err) < 0)
    return -1;
  *spec = NULL;
  for (size_t i = 0; i < index->n_specs; i++)
    {
      const struct loaded_spec *s = &index->specs[i];
      if (strcmp(s->spec->vendor, vendor) != 0 || strcmp(s->spec->class_name, class_name) != 0)
        continue;
      for (size_t j = 0; j < s->spec->n_devices; j++)
        {
          if (strcmp(s->spec->devices[j].name, name) != 0)
            continue;
          if (*spec && (*spec)->priority == s->priority)
            tie = s;
          else if (*spec == NULL || s->priority > (*spec)->priority)
            {
              *spec = s;
              *device = &s->spec->devices[j];
              tie = NULL;
            }
        }
    }
  if (*spec == NULL)
    {
      cleanup_free char *searched = strv_join(dirs, ", ");
      return error_set(err, ENOENT, "unknown CDI device %s (no spec file in %s defines it)",
                       qualified, searched);
    }
  if (tie)
    return error_set(err, EINVAL, "CDI device %s is defined by both %s and %s", qualified,
                     (*spec)->path, tie->path);
  return 0;
}

int
cdi_resolve(struct cdi_registry *registry, char *const *names, struct cdi_edits *out,
            struct error *err)
{
  const struct loaded_spec **applied = xcalloc(strv_length(names) + 1, sizeof *applied);
  struct merge m = { .out = out };
  size_t n_applied = 0;
  int ret = 0;

  pthread_mutex_lock(&registry->lock);
  if (!registry->watching)
    {
      index_clear(&registry->index);
      index_load(&registry->index, registry->dirs);
    }
  for (size_t i = 0; names && names[i] && ret == 0; i++)
    {
      const struct loaded_spec *spec = NULL;
      const struct cdi_device *device = NULL;
      struct origin origin = { .device = names[i] };
      bool spec_applied = false;

      if (find_device(&registry->index, registry->dirs, names[i], &spec, &device, err) < 0)
        {
          ret = -1;
          break;
        }
      origin.path = spec->path;
      for (size_t j = 0; j < n_applied; j++)
        spec_applied = spec_applied || applied[j] == spec;
      if (!spec_applied)
        {
          applied[n_applied++] = spec;
          ret = merge_edits(&m, &spec->spec->edits, &origin, err);
        }
      if (ret == 0)
        ret = merge_edits(&m, &device->edits, &origin, err);
    }
  pthread_mutex_unlock(&registry->lock);
  merge_clear(&m);
  free(applied);
  return ret;
}

/* ---- Status ------------------------------------------------------------- */

void
cdi_registry_write_json(struct cdi_registry *registry, struct json_writer *w)
{
  pthread_mutex_lock(&registry->lock);
  if (!registry->watching)
    {
      index_clear(&registry->index);
      index_load(&registry->index, registry->dirs);
    }
  json_begin_object(w);
  json_write_key(w, "specDirs");
  json_begin_array(w);
  for (size_t i = 0; registry->dirs[i]; i++)
    json_write_string(w, registry->dirs[i]);
  json_end_array(w);
  json_write_key(w, "devices");
  json_begin_array(w);
  for (size_t i = 0; i < registry->index.n_specs; i++)
    {
      const struct cdi_spec *spec = registry->index.specs[i].spec;
      for (size_t j = 0; j < spec->n_devices; j++)
        {
          cleanup_free char *name
              = xasprintf("%s/%s=%s", spec->vendor, spec->class_name, spec->devices[j].name);
          json_write_string(w, name);
        }
    }
  json_end_array(w);
  json_write_key(w, "errors");
  json_begin_array(w);
  for (size_t i = 0; i < registry->index.n_problems; i++)
    {
      json_begin_object(w);
      json_write_key(w, "file");
      json_write_string(w, registry->index.problems[i].path);
      json_write_key(w, "error");
      json_write_string(w, registry->index.problems[i].message);
      json_end_object(w);
    }
  json_end_array(w);
  json_end_object(w);
  pthread_mutex_unlock(&registry->lock);
}
