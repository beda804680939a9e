/* Finding and removing what belongs to no listed object; see sweep.h.
 *
 * What names an object: its id as a directory of <state>/ns,
 * <state>/sandboxes, <state>/conmon or <root>/containers, as a mount
 * below those, as a container a runtime keeps, or as the holder of a
 * host-local lease of the pod network.  A pod's traces are removed with
 * the salvage of a pod of that id (runtime, monitor, network, shm,
 * namespaces, files, cgroups), a container's with a container's. */
#include "pod/layout.h"
#include "pod/sweep.h"
#include "pod/container.h"
#include "pod/oci_runtime.h"
#include "pod/pod_manager.h"
#include "pod/sandbox.h"
#include "netcni/cni_config.h"
#include "netcni/cni_leases.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/mountinfo.h"
#include "common/util.h"

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

/* Unknown ids and, for the log, where each was seen. */
struct unknown
{
  char **ids;
  char **seen_in;
  size_t n;
};

static bool
object_listed(struct pod_manager *manager, const char *id)
{
  bool found = false;

  pthread_mutex_lock(&manager->table_lock);
  for (size_t i = 0; i < manager->n_sandboxes && !found; i++)
    found = strcmp(manager->sandboxes[i]->id, id) == 0;
  for (size_t i = 0; i < manager->n_containers && !found; i++)
    found = strcmp(manager->containers[i]->id, id) == 0;
  pthread_mutex_unlock(&manager->table_lock);
  return found;
}

static ssize_t
index_of(const struct unknown *u, const char *id)
{
  for (size_t i = 0; i < u->n; i++)
    if (strcmp(u->ids[i], id) == 0)
      return (ssize_t)i;
  return -1;
}

/* Notes id as unknown (once), seen in where, unless it is listed. */
static void
note(struct pod_manager *manager, struct unknown *u, const char *id, const char *where)
{
  ssize_t i;

  if (!id_is_valid(id) || object_listed(manager, id))
    return;
  i = index_of(u, id);
  if (i >= 0)
    {
      if (strstr(u->seen_in[i], where) == NULL)
        {
          char *more = xasprintf("%s, %s", u->seen_in[i], where);
          free(u->seen_in[i]);
          u->seen_in[i] = more;
        }
      return;
    }
  u->ids = xrealloc(u->ids, (u->n + 2) * sizeof(char *));
  u->seen_in = xrealloc(u->seen_in, (u->n + 1) * sizeof(char *));
  u->ids[u->n] = xstrdup(id);
  u->seen_in[u->n] = xstrdup(where);
  u->ids[++u->n] = NULL;
}

static void
unknown_clear(struct unknown *u)
{
  for (size_t i = 0; i < u->n; i++)
    free(u->seen_in[i]);
  free(u->seen_in);
  strv_free(u->ids);
}

static void
note_entries_of(struct pod_manager *manager, struct unknown *u, const char *dir, const char *where)
{
  cleanup_dir DIR *d = opendir(dir);
  struct dirent *entry;

  while (d && (entry = readdir(d)))
    note(manager, u, entry->d_name, where);
}

/* The id component of path just below dir, in id (65 bytes), or false. */
static bool
id_below(const char *path, const char *dir, char id[65])
{
  size_t len = strlen(dir), id_len;

  if (strncmp(path, dir, len) != 0 || path[len] != '/')
    return false;
  path += len + 1;
  id_len = strcspn(path, "/");
  if (id_len != 64)
    return false;
  memcpy(id, path, 64);
  id[64] = '\0';
  return true;
}

static void
note_mounts(struct pod_manager *manager, const struct mount_table *table, const char *dir,
            struct unknown *u, const char *where)
{
  char id[65];

  for (size_t i = 0; i < table->n; i++)
    if (id_below(table->entries[i].mountpoint, dir, id))
      note(manager, u, id, where);
}

static void
note_runtime_state(struct pod_manager *manager, struct unknown *containers)
{
  for (size_t h = 0; h < manager->options.n_handlers; h++)
    {
      struct oci_runtime runtime;
      struct error err = ERROR_INIT;
      cleanup_strv char **ids = NULL;

      pod_manager_runtime(manager, manager->options.handlers[h].name, &runtime);
      if (oci_runtime_list(&runtime, &ids, &err) < 0)
        {
          log_warn("recovery: %s", error_message(&err));
          error_clear(&err);
          continue;
        }
      for (size_t i = 0; ids[i]; i++)
        note(manager, containers, ids[i], runtime.name);
    }
}

/* The id in a crid-conmon command line whose --socket-dir is below
 * monitor_dir, or false. */
static bool
monitor_of(pid_t pid, const char *monitor_dir, char id[65])
{
  cleanup_free char *path = xasprintf("/proc/%d/cmdline", (int)pid);
  cleanup_free char *text = NULL;
  struct error err = ERROR_INIT;
  size_t len;

  if (read_file(path, 64 * 1024, &text, &len, &err) < 0)
    {
      error_clear(&err);
      return false;
    }
  for (size_t i = 0; i < len;)
    {
      const char *arg = text + i;
      size_t arg_len = strnlen(arg, len - i);
      if (strcmp(arg, "--socket-dir") == 0 && i + arg_len + 1 < len)
        return id_below(arg + arg_len + 1, monitor_dir, id);
      i += arg_len + 1;
    }
  return false;
}

/* Monitors whose files are gone too: found by their command line. */
static void
note_monitor_processes(struct pod_manager *manager, const char *monitor_dir,
                       struct unknown *containers, pid_t **pids, size_t *n_pids)
{
  cleanup_dir DIR *d = opendir("/proc");
  struct dirent *entry;
  char id[65];

  while (d && (entry = readdir(d)))
    {
      pid_t pid = (pid_t)strtol(entry->d_name, NULL, 10);
      if (pid <= 0 || !monitor_of(pid, monitor_dir, id) || object_listed(manager, id))
        continue;
      note(manager, containers, id, "a monitor process");
      *pids = xrealloc(*pids, (*n_pids + 1) * sizeof **pids);
      (*pids)[(*n_pids)++] = pid;
    }
}

static void
note_leases(struct pod_manager *manager, struct unknown *pods)
{
  struct cni_network_list *network = NULL;
  struct error err = ERROR_INIT;
  cleanup_strv char **holders = NULL;

  if (cni_config_load_default(manager->options.cni_config_dir, &network, &err) < 0
      || network == NULL)
    {
      error_clear(&err);
      return;
    }
  holders = cni_lease_holders(network);
  for (size_t i = 0; holders[i]; i++)
    note(manager, pods, holders[i], "an IP lease");
  cni_network_list_free(network);
}

/* What the salvages did not take down (a mount of a kind they do not
 * know) goes last, innermost first. */
static void
unmount_left(const char *dir, char *const *ids)
{
  struct mount_table table;
  struct error err = ERROR_INIT;
  char id[65];

  if (mount_table_read(&table, &err) < 0)
    {
      log_warn("recovery: %s", error_message(&err));
      error_clear(&err);
      return;
    }
  for (size_t i = table.n; i-- > 0;)
    {
      const char *mountpoint = table.entries[i].mountpoint;
      bool unknown = false;
      if (!id_below(mountpoint, dir, id))
        continue;
      for (size_t j = 0; ids[j] && !unknown; j++)
        unknown = strcmp(ids[j], id) == 0;
      if (unknown && umount2(mountpoint, MNT_DETACH) < 0)
        log_warn("recovery: unmount %s: %m", mountpoint);
    }
  mount_table_clear(&table);
}

void
pod_sweep(struct pod_manager *manager)
{
  cleanup_free char *ns_dir = layout_area(manager, LAYOUT_NAMESPACES);
  cleanup_free char *shm_dir = layout_area(manager, LAYOUT_POD_STATE);
  cleanup_free char *monitor_dir = layout_area(manager, LAYOUT_MONITORS);
  cleanup_free char *exit_dir = layout_area(manager, LAYOUT_EXITS);
  cleanup_free char *container_dir = layout_area(manager, LAYOUT_CONTAINERS);
  struct unknown pods = { 0 }, containers = { 0 };
  cleanup_free pid_t *monitors = NULL;
  size_t n_monitors = 0;
  struct mount_table table;
  struct error err = ERROR_INIT;

  if (mount_table_read(&table, &err) < 0)
    {
      log_warn("recovery: %s", error_message(&err));
      error_clear(&err);
    }
  note_entries_of(manager, &pods, ns_dir, "pinned namespaces");
  note_entries_of(manager, &pods, shm_dir, "a pod state directory");
  note_mounts(manager, &table, ns_dir, &pods, "namespace mounts");
  note_mounts(manager, &table, shm_dir, &pods, "an shm mount");
  note_leases(manager, &pods);
  note_runtime_state(manager, &containers);
  note_entries_of(manager, &containers, container_dir, "a container directory");
  note_mounts(manager, &table, container_dir, &containers, "a root file system mount");
  note_entries_of(manager, &containers, monitor_dir, "monitor files");
  note_entries_of(manager, &containers, exit_dir, "an exit file");
  note_monitor_processes(manager, monitor_dir, &containers, &monitors, &n_monitors);
  mount_table_clear(&table);

  for (size_t i = 0; i < pods.n; i++)
    {
      log_warn("recovery: pod %.12s left %s and belongs to nothing crid knows: removing it",
               pods.ids[i], pods.seen_in[i]);
      sandbox_salvage(manager, pods.ids[i]);
    }
  for (size_t i = 0; i < containers.n; i++)
    {
      if (index_of(&pods, containers.ids[i]) >= 0)
        continue; /* a pod's pause, gone with the pod */
      log_warn("recovery: container %.12s left %s and belongs to nothing crid knows: removing it",
               containers.ids[i], containers.seen_in[i]);
      container_salvage(manager, containers.ids[i]);
    }
  /* A monitor the salvages could not find by its pid file; its command
   * line is read again, as its pid may have been reused meanwhile. */
  for (size_t i = 0; i < n_monitors; i++)
    {
      char id[65];
      if (monitor_of(monitors[i], monitor_dir, id) && !object_listed(manager, id))
        kill(monitors[i], SIGKILL);
    }
  if (pods.n)
    {
      unmount_left(ns_dir, pods.ids);
      unmount_left(shm_dir, pods.ids);
    }
  if (containers.n)
    unmount_left(container_dir, containers.ids);
  unknown_clear(&pods);
  unknown_clear(&containers);
}
