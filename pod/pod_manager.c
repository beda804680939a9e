#include "pod/layout.h"
#include "pod/pod_manager.h"
#include "common/trash.h"
#include "pod/cdi.h"
#include "pod/namespace.h"
#include "pod/userns.h"
#include "pod/monitor.h"
#include "pod/events.h"
#include "pod/exec.h"
#include "pod/seccomp_bpf.h"
#include "pod/container.h"
#include "pod/exit_watch.h"
#include "pod/sandbox.h"
#include "pod/stats.h"
#include "pod/sweep.h"
#include "pod/exit_release.h"
#include "pod/rootfs.h"
#include "pod/pause_rootfs.h"
#include "common/atomic_file.h"
#include "common/children.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* An id from a request, as a lookup's error quotes it: a full id and a
 * little more, never a megabyte. */
#define ID_QUOTE_MAX 80

static void
options_free(struct pod_manager_options *o)
{
  free(o->root);
  free(o->state_dir);
  free(o->conmon_path);
  free(o->pause_path);
  free(o->pause_image);
  free(o->default_handler);
  for (size_t i = 0; i < o->n_handlers; i++)
    {
      free(o->handlers[i].name);
      free(o->handlers[i].path);
      free(o->handlers[i].root);
    }
  free(o->handlers);
  free(o->cni_config_dir);
  strv_free(o->cni_plugin_dirs);
  strv_free(o->cdi_spec_dirs);
}

/* The built-in pause root filesystem: the static crid-pause binary and the
 * mount points the runtime needs, so it can stay read-only and shared by
 * every sandbox. */
static int
open_pause_rootfs(struct pod_manager *manager, struct error *err)
{
  struct pause_rootfs_options options = {
    .root = manager->options.root,
    .binary = manager->options.pause_path,
    .image = manager->options.pause_image,
    .images = manager->options.images,
    .puller = manager->options.puller,
  };

  manager->pause = pause_rootfs_new(&options, err);
  return manager->pause ? 0 : -1;
}

/* Pods get a user namespace only where idmapped mounts of crid's root
 * work (kernel, file system): without them their files would show as
 * nobody's.  A handler keeps the feature only then. */
static int
make_searchable(const char *dir, struct error *err)
{
  struct stat st;

  if (mkdir_p(dir, 0711, err) < 0)
    return -1;
  if (stat(dir, &st) < 0 || chmod(dir, (st.st_mode & 07777) | 0111) < 0)
    return error_set_errno(err, errno, "make %s searchable", dir);
  return 0;
}

static void
probe_user_namespaces(struct pod_manager *manager)
{
  cleanup_free char *probe_dir = xasprintf("%s/ns/.userns-probe", manager->options.state_dir);
  /* The root of a pod with a user namespace, an unprivileged host user,
   * reaches its container's dir (its own, 0700) through these (`crid
   * image import` before the first start may have made them 0700). */
  cleanup_free char *containers = layout_area(manager, LAYOUT_CONTAINERS);
  struct error err = ERROR_INIT;

  /* A crid killed during the probe left its pin. */
  if (make_searchable(manager->options.root, &err) < 0 || make_searchable(containers, &err) < 0
      || pod_namespaces_remove(probe_dir, &err) < 0
      || pod_userns_probe(probe_dir, manager->options.root, &err) < 0)
    {
      log_warn("pods get no user namespaces (hostUsers: false): %s", error_message(&err));
      for (size_t i = 0; i < manager->options.n_handlers; i++)
        manager->options.handlers[i].features.user_namespaces = false;
    }
  error_clear(&err);
}

/* crid makes recursive read-only mounts itself (pod/volume_sources.h),
 * for every handler, where the kernel can: a read-only clone of crid's
 * root says. */
static void
probe_recursive_read_only(struct pod_manager *manager)
{
  struct rootfs_tree_attrs attrs = { .userns_fd = -1, .read_only = true };
  struct error err = ERROR_INIT;
  int tree = -1;
  bool works = rootfs_clone_tree(manager->options.root, &attrs, &tree, &err) == 0;

  if (tree >= 0)
    close(tree);
  if (!works)
    log_warn("no recursive read-only mounts: %s", error_message(&err));
  error_clear(&err);
  for (size_t i = 0; i < manager->options.n_handlers; i++)
    manager->options.handlers[i].features.recursive_read_only = works;
}

static void
table_add_locked(struct pod_manager *manager, struct sandbox *sandbox)
{
  manager->sandboxes
      = xrealloc(manager->sandboxes, (manager->n_sandboxes + 1) * sizeof *manager->sandboxes);
  sandbox_ref(sandbox);
  manager->sandboxes[manager->n_sandboxes++] = sandbox;
}

static bool
reservation_taken_locked(struct pod_manager *manager, const char *key, struct sandbox **holder)
{
  for (size_t i = 0; i < manager->n_sandboxes; i++)
    if (manager->sandboxes[i]->reservation && strcmp(manager->sandboxes[i]->reservation, key) == 0)
      {
        *holder = manager->sandboxes[i];
        return true;
      }
  return false;
}

int
pod_manager_reserve(struct pod_manager *manager, struct sandbox *sandbox, struct error *err)
{
  struct sandbox *holder = NULL;
  int ret = 0;

  pthread_mutex_lock(&manager->table_lock);
  if (reservation_taken_locked(manager, sandbox->reservation, &holder))
    ret = error_set(err, EEXIST, "the name %s is reserved for sandbox %s", sandbox->reservation,
                    holder->id);
  else
    table_add_locked(manager, sandbox);
  pthread_mutex_unlock(&manager->table_lock);
  return ret;
}

void
pod_manager_unreserve(struct pod_manager *manager, struct sandbox *sandbox)
{
  pthread_mutex_lock(&manager->table_lock);
  for (size_t i = 0; i < manager->n_sandboxes; i++)
    if (manager->sandboxes[i] == sandbox)
      {
        manager->sandboxes[i] = manager->sandboxes[--manager->n_sandboxes];
        sandbox_unref(sandbox);
        break;
      }
  pthread_mutex_unlock(&manager->table_lock);
}

struct sandbox *
pod_manager_find_sandbox(struct pod_manager *manager, const char *id, struct error *err)
{
  cleanup_free char *shown = NULL;
  struct sandbox *found = NULL;
  size_t matches = 0, len = strlen(id);

  if (len == 0)
    {
      error_set(err, EINVAL, "empty pod sandbox id");
      return NULL;
    }
  pthread_mutex_lock(&manager->table_lock);
  for (size_t i = 0; i < manager->n_sandboxes; i++)
    if (strncmp(manager->sandboxes[i]->id, id, len) == 0)
      {
        found = manager->sandboxes[i];
        matches++;
        if (len == 64)
          break;
      }
  if (matches == 1)
    sandbox_ref(found);
  pthread_mutex_unlock(&manager->table_lock);
  if (matches == 1)
    return found;
  shown = quote_untrusted(id, len, ID_QUOTE_MAX);
  if (matches > 1)
    error_set(err, EINVAL, "pod sandbox id prefix %s is ambiguous", shown);
  else
    error_set(err, ENOENT, "pod sandbox %s not found", shown);
  return NULL;
}

struct sandbox **
pod_manager_list_sandboxes(struct pod_manager *manager, size_t *n)
{
  struct sandbox **list;

  pthread_mutex_lock(&manager->table_lock);
  list = xcalloc(manager->n_sandboxes + 1, sizeof *list);
  for (size_t i = 0; i < manager->n_sandboxes; i++)
    {
      sandbox_ref(manager->sandboxes[i]);
      list[i] = manager->sandboxes[i];
    }
  *n = manager->n_sandboxes;
  pthread_mutex_unlock(&manager->table_lock);
  return list;
}

void
pod_manager_release_list(struct sandbox **list, size_t n)
{
  for (size_t i = 0; i < n; i++)
    sandbox_unref(list[i]);
  free(list);
}

const struct pod_runtime_handler *
pod_manager_handler(const struct pod_manager *manager, const char *name)
{
  if (name == NULL || name[0] == '\0')
    name = manager->options.default_handler;
  for (size_t i = 0; i < manager->options.n_handlers; i++)
    if (strcmp(manager->options.handlers[i].name, name) == 0)
      return &manager->options.handlers[i];
  return NULL;
}

void
pod_manager_runtime(const struct pod_manager *manager, const char *handler,
                    struct oci_runtime *runtime)
{
  const struct pod_runtime_handler *h = pod_manager_handler(manager, handler);

  runtime->name = h->name;
  runtime->path = h->path;
  runtime->root = h->root;
  runtime->systemd_cgroup = manager->options.systemd_cgroup;
}

int
pod_manager_seccomp_bpf(const struct pod_manager *manager, const char *handler,
                        const char *seccomp_json, char **bpf, struct error *err)
{
  *bpf = NULL;
  if (seccomp_json == NULL || !pod_manager_handler(manager, handler)->precompiled_seccomp)
    return 0;
  return seccomp_bpf_for(seccomp_json, bpf, err);
}

char *sandbox_reservation_key(const Runtime__V1__PodSandboxConfig *config);

/* ---- Containers ---------------------------------------------------- */

static void
container_add_locked(struct pod_manager *manager, struct container *container)
{
  manager->containers
      = xrealloc(manager->containers, (manager->n_containers + 1) * sizeof *manager->containers);
  container_ref(container);
  manager->containers[manager->n_containers++] = container;
}

int
pod_manager_reserve_container(struct pod_manager *manager, struct container *container,
                              struct error *err)
{
  int ret = 0;

  pthread_mutex_lock(&manager->table_lock);
  for (size_t i = 0; i < manager->n_containers; i++)
    if (strcmp(manager->containers[i]->reservation, container->reservation) == 0)
      {
        ret = error_set(err, EEXIST, "the name %s is reserved for container %s",
                        container->reservation, manager->containers[i]->id);
        break;
      }
  if (ret == 0)
    container_add_locked(manager, container);
  pthread_mutex_unlock(&manager->table_lock);
  return ret;
}

void
pod_manager_unreserve_container(struct pod_manager *manager, struct container *container)
{
  pthread_mutex_lock(&manager->table_lock);
  for (size_t i = 0; i < manager->n_containers; i++)
    if (manager->containers[i] == container)
      {
        manager->containers[i] = manager->containers[--manager->n_containers];
        container_unref(container);
        break;
      }
  pthread_mutex_unlock(&manager->table_lock);
}

struct container *
pod_manager_find_container(struct pod_manager *manager, const char *id, struct error *err)
{
  cleanup_free char *shown = NULL;
  struct container *found = NULL;
  size_t matches = 0, len = strlen(id);

  if (len == 0)
    {
      error_set(err, EINVAL, "empty container id");
      return NULL;
    }
  pthread_mutex_lock(&manager->table_lock);
  for (size_t i = 0; i < manager->n_containers; i++)
    if (strncmp(manager->containers[i]->id, id, len) == 0)
      {
        found = manager->containers[i];
        matches++;
        if (len == 64)
          break;
      }
  if (matches == 1)
    container_ref(found);
  pthread_mutex_unlock(&manager->table_lock);
  if (matches == 1)
    return found;
  shown = quote_untrusted(id, len, ID_QUOTE_MAX);
  if (matches > 1)
    error_set(err, EINVAL, "container id prefix %s is ambiguous", shown);
  else
    error_set(err, ENOENT, "container %s not found", shown);
  return NULL;
}

struct container **
pod_manager_list_containers(struct pod_manager *manager, size_t *n)
{
  struct container **list;

  pthread_mutex_lock(&manager->table_lock);
  list = xcalloc(manager->n_containers + 1, sizeof *list);
  for (size_t i = 0; i < manager->n_containers; i++)
    {
      container_ref(manager->containers[i]);
      list[i] = manager->containers[i];
    }
  *n = manager->n_containers;
  pthread_mutex_unlock(&manager->table_lock);
  return list;
}

void
pod_manager_release_containers(struct container **list, size_t n)
{
  for (size_t i = 0; i < n; i++)
    container_unref(list[i]);
  free(list);
}

bool
pod_manager_image_in_use(void *arg, const char *image_id)
{
  struct pod_manager *manager = arg;
  bool used = false;

  pthread_mutex_lock(&manager->table_lock);
  for (size_t i = 0; i < manager->n_containers && !used; i++)
    {
      struct container *c = manager->containers[i];
      used = c->image_id && strcmp(c->image_id, image_id) == 0;
      /* Its image volumes hold their images as long as it lives. */
      pthread_mutex_lock(&c->lock);
      used = used || image_volumes_use(&c->image_volumes, image_id);
      pthread_mutex_unlock(&c->lock);
    }
  pthread_mutex_unlock(&manager->table_lock);
  /* The pause image is in use while it is configured. */
  return used || pause_rootfs_uses_image(manager->pause, image_id);
}

char *
pod_manager_pause_image_id(struct pod_manager *manager)
{
  return pause_rootfs_image_id(manager->pause);
}

/* The exit watcher's callback: ids of sandboxes (pause exits) are not in
 * the container table and are skipped. */
static void
on_exit_file(void *arg, const char *id)
{
  struct pod_manager *manager = arg;
  struct container_snapshot snapshot;
  struct error err = ERROR_INIT;
  struct container *container = pod_manager_find_container(manager, id, &err);

  error_clear(&err);
  if (container == NULL || strcmp(container->id, id) != 0)
    {
      container_unref(container);
      return;
    }
  /* The snapshot reads the exit file; an ended container's runtime
   * state and mounts go in the background. */
  if (container_snapshot_take(manager, container, &snapshot, &err) == 0
      && snapshot.state == CONTAINER_EXITED)
    exit_release_queue(manager->release, container);
  container_snapshot_clear(&snapshot);
  error_clear(&err);
  container_unref(container);
}

/* Every container with a complete record comes back, and exits that
 * happened while crid was away are read from their exit files. */
/* <root>/trash; without it (logged), removals delete in the call. */
static struct trash *
open_trash(const char *root)
{
  cleanup_free char *dir = xasprintf("%s/trash", root);
  struct error err = ERROR_INIT;
  struct trash *trash = trash_open(dir, &err);

  if (trash == NULL)
    log_warn("%s", error_message(&err));
  error_clear(&err);
  return trash;
}

static void
on_orphan_reaped(void *data, pid_t pid, int status)
{
  container_orphan_reaped(data, pid, status);
}

static bool
sandbox_listed(struct pod_manager *manager, const char *id)
{
  struct error err = ERROR_INIT;
  struct sandbox *sandbox = pod_manager_find_sandbox(manager, id, &err);

  error_clear(&err);
  sandbox_unref(sandbox);
  return sandbox != NULL;
}

static void
recover_containers(struct pod_manager *manager)
{
  cleanup_free char *dir = layout_area(manager, LAYOUT_CONTAINERS);
  cleanup_dir DIR *d = opendir(dir);
  struct dirent *entry;

  while (d && (entry = readdir(d)))
    {
      struct error err = ERROR_INIT;
      struct container *container;
      if (!id_is_valid(entry->d_name))
        continue;
      container = container_load(manager, entry->d_name, &err);
      if (container == NULL)
        {
          log_warn("recovery: %s", error_message(&err));
          error_clear(&err);
          container_salvage(manager, entry->d_name);
          continue;
        }
      if (container->creating)
        {
          container_roll_back(manager, container);
          container_unref(container);
          continue;
        }
      if (!sandbox_listed(manager, container->sandbox_id))
        {
          log_warn("recovery: container %.12s belongs to sandbox %.12s, which is gone",
                   container->id, container->sandbox_id);
          container_salvage(manager, container->id);
          container_unref(container);
          continue;
        }
      container_reconcile(manager, container);
      pthread_mutex_lock(&manager->table_lock);
      container_add_locked(manager, container);
      pthread_mutex_unlock(&manager->table_lock);
      container_refresh(manager, container);
      log_info("recovered container %.12s (%s)", container->id,
               container_state_name(container->state));
      container_unref(container);
    }
}

/* Recovery: every sandbox with a complete record comes back; a directory
 * without one is the leftover of a RunPodSandbox that never finished. */
static void
recover_sandboxes(struct pod_manager *manager)
{
  cleanup_free char *dir = layout_area(manager, LAYOUT_SANDBOXES);
  cleanup_dir DIR *d = opendir(dir);
  struct dirent *entry;

  while (d && (entry = readdir(d)))
    {
      struct error err = ERROR_INIT;
      struct sandbox *sandbox;
      if (!id_is_valid(entry->d_name))
        continue;
      sandbox = sandbox_load(manager, entry->d_name, &err);
      if (sandbox == NULL)
        {
          log_warn("recovery: %s", error_message(&err));
          error_clear(&err);
          sandbox_salvage(manager, entry->d_name);
          continue;
        }
      if (sandbox->creating)
        {
          sandbox_roll_back(manager, sandbox);
          sandbox_unref(sandbox);
          continue;
        }
      sandbox->reservation = sandbox_reservation_key(sandbox->config);
      pthread_mutex_lock(&manager->table_lock);
      table_add_locked(manager, sandbox);
      pthread_mutex_unlock(&manager->table_lock);
      sandbox_refresh(manager, sandbox);
      log_info("recovered sandbox %.12s (%s)", sandbox->id,
               sandbox->state == SANDBOX_READY ? "ready" : "not ready");
      sandbox_unref(sandbox);
    }
}

struct pod_manager *
pod_manager_new(struct pod_manager_options *options, struct error *err)
{
  struct pod_manager *manager = xcalloc(1, sizeof *manager);
  cleanup_free char *exits = NULL;

  manager->options = *options;
  memset(options, 0, sizeof *options);
  pthread_mutex_init(&manager->table_lock, NULL);
  manager->events = pod_events_new();
  manager->trash = open_trash(manager->options.root);
  manager->cdi = cdi_registry_open(manager->options.cdi_spec_dirs);
  if (open_pause_rootfs(manager, err) < 0)
    {
      pod_manager_free(manager);
      return NULL;
    }
  probe_user_namespaces(manager);
  probe_recursive_read_only(manager);
  exec_remove_leftovers(manager->options.state_dir);
  recover_sandboxes(manager);
  /* The watch first, then the scan: an exit in between is seen twice,
   * which is harmless, rather than never. */
  exits = layout_area(manager, LAYOUT_EXITS);
  manager->exit_watch = exit_watch_start(exits, on_exit_file, manager, err);
  if (manager->exit_watch == NULL)
    {
      pod_manager_free(manager);
      return NULL;
    }
  recover_containers(manager);
  pod_sweep(manager);
  manager->release = exit_release_start(manager);
  children_set_orphan_hook(on_orphan_reaped, manager);
  manager->stats = stats_collector_start(manager, manager->options.stats_period_seconds, err);
  if (manager->stats == NULL)
    {
      log_warn("no container statistics in the background: %s", error_message(err));
      error_clear(err);
    }
  return manager;
}

void
pod_manager_free(struct pod_manager *manager)
{
  if (manager == NULL)
    return;
  exit_release_stop(manager->release);
  stats_collector_stop(manager->stats);
  children_set_orphan_hook(NULL, NULL);
  exit_watch_stop(manager->exit_watch);
  pod_events_free(manager->events);
  trash_close(manager->trash);
  cdi_registry_free(manager->cdi);
  pod_manager_release_containers(manager->containers, manager->n_containers);
  pod_manager_release_list(manager->sandboxes, manager->n_sandboxes);
  options_free(&manager->options);
  pause_rootfs_free(manager->pause);
  pthread_mutex_destroy(&manager->table_lock);
  free(manager);
}
