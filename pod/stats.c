/* Snapshots of a container's and a pod's resource usage; see stats.h. */
#include "pod/layout.h"
#include "pod/stats.h"
#include "pod/cgroup.h"
#include "pod/container.h"
#include "pod/pod_manager.h"
#include "pod/sandbox.h"
#include "pod/stats_collector.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* /proc/<pid>/net/dev is one line per interface, about 130 bytes each. */
#define NET_DEV_MAX_SIZE (1024 * 1024)

/* What adds up over the cgroups of a pod (see stats_cgroup_add). */
#define SUMMABLE                                                                                   \
  (CGROUP_STAT_CPU_USAGE | CGROUP_STAT_CPU_USER | CGROUP_STAT_CPU_SYSTEM | CGROUP_STAT_MEM_USAGE   \
   | CGROUP_STAT_MEM_WORKING_SET | CGROUP_STAT_MEM_RSS | CGROUP_STAT_MEM_PAGE_FAULTS               \
   | CGROUP_STAT_MEM_MAJOR_PAGE_FAULTS | CGROUP_STAT_MEM_SWAP_USAGE | CGROUP_STAT_MEM_OOM_KILL     \
   | CGROUP_STAT_PIDS_CURRENT)

/* ---- Pure parts ------------------------------------------------------ */

static uint64_t
rate(uint64_t from_usage, int64_t from_ns, uint64_t to_usage, int64_t to_ns)
{
  long double cores = (long double)(to_usage - from_usage) / (long double)(to_ns - from_ns);
  return (uint64_t)(cores * 1e9L + 0.5L);
}

static void
restart(struct stats_cpu_window *w, int64_t now_ns, uint64_t usage_ns)
{
  *w = (struct stats_cpu_window){ .kept = 1, .newer_ns = now_ns, .newer_usage = usage_ns };
}

/* The rate since the older kept sample, when that is far enough back:
 * for a sample too close to the newest one, or one that is not after it
 * (a reading that began before it: two readers at once). */
static bool
rate_from_older(const struct stats_cpu_window *w, int64_t now_ns, uint64_t usage_ns,
                uint64_t *nano_cores)
{
  if (w->kept < 2 || now_ns - w->older_ns < STATS_RATE_MIN_INTERVAL_NS || usage_ns < w->older_usage)
    return false;
  *nano_cores = rate(w->older_usage, w->older_ns, usage_ns, now_ns);
  return true;
}

bool
stats_cpu_window_add(struct stats_cpu_window *w, int64_t now_ns, uint64_t usage_ns,
                     uint64_t *nano_cores)
{
  /* The counter went back: a new cgroup, or a pod sum that lost one. */
  if (w->kept == 0 || (now_ns > w->newer_ns && usage_ns < w->newer_usage))
    {
      restart(w, now_ns, usage_ns);
      return false;
    }
  if (now_ns - w->newer_ns < STATS_RATE_MIN_INTERVAL_NS)
    return rate_from_older(w, now_ns, usage_ns, nano_cores); /* not kept */
  *nano_cores = rate(w->newer_usage, w->newer_ns, usage_ns, now_ns);
  w->older_ns = w->newer_ns;
  w->older_usage = w->newer_usage;
  w->newer_ns = now_ns;
  w->newer_usage = usage_ns;
  w->kept = 2;
  return true;
}

static void
add_field(struct cgroup_stats *sum, const struct cgroup_stats *part, uint32_t bit, uint64_t *field,
          uint64_t value)
{
  if ((sum->present & bit) && (part->present & bit))
    *field += value;
  else
    {
      sum->present &= ~bit;
      *field = 0;
    }
}

void
stats_cgroup_add(struct cgroup_stats *sum, const struct cgroup_stats *part)
{
  add_field(sum, part, CGROUP_STAT_CPU_USAGE, &sum->cpu.usage_ns, part->cpu.usage_ns);
  add_field(sum, part, CGROUP_STAT_CPU_USER, &sum->cpu.user_ns, part->cpu.user_ns);
  add_field(sum, part, CGROUP_STAT_CPU_SYSTEM, &sum->cpu.system_ns, part->cpu.system_ns);
  add_field(sum, part, CGROUP_STAT_MEM_USAGE, &sum->memory.usage_bytes, part->memory.usage_bytes);
  add_field(sum, part, CGROUP_STAT_MEM_WORKING_SET, &sum->memory.working_set_bytes,
            part->memory.working_set_bytes);
  add_field(sum, part, CGROUP_STAT_MEM_RSS, &sum->memory.rss_bytes, part->memory.rss_bytes);
  add_field(sum, part, CGROUP_STAT_MEM_PAGE_FAULTS, &sum->memory.page_faults,
            part->memory.page_faults);
  add_field(sum, part, CGROUP_STAT_MEM_MAJOR_PAGE_FAULTS, &sum->memory.major_page_faults,
            part->memory.major_page_faults);
  add_field(sum, part, CGROUP_STAT_MEM_SWAP_USAGE, &sum->memory.swap_usage_bytes,
            part->memory.swap_usage_bytes);
  add_field(sum, part, CGROUP_STAT_MEM_OOM_KILL, &sum->memory.oom_kill, part->memory.oom_kill);
  add_field(sum, part, CGROUP_STAT_PIDS_CURRENT, &sum->pids.current, part->pids.current);
  sum->present &= SUMMABLE;
  memset(&sum->psi, 0, sizeof sum->psi);
}

/* ---- Reading --------------------------------------------------------- */

void
stats_container_clear(struct stats_container *stats)
{
  free(stats->cgroup_path);
  memset(stats, 0, sizeof *stats);
}

void
stats_sandbox_clear(struct stats_sandbox *stats)
{
  free(stats->network.interfaces);
  free(stats->cgroup_path);
  memset(stats, 0, sizeof *stats);
}

char *
stats_layers_dir(const struct pod_manager *manager)
{
  return layout_area(manager, LAYOUT_CONTAINERS);
}

/* The cgroup at fs_path, and the CPU rate of id from it; false when the
 * cgroup cannot be read (gone, or the object is ending). */
static bool
read_sampled(struct pod_manager *manager, const char *id, const char *fs_path, uint32_t wanted,
             struct stats_reading *out)
{
  struct error err = ERROR_INIT;

  memset(out, 0, sizeof *out);
  out->wanted = wanted;
  if (stats_collector_read_cgroup(manager->stats, id, fs_path, wanted, &out->cgroup, &err) < 0)
    {
      log_debug("stats of %.12s: %s", id, error_message(&err));
      error_clear(&err);
      return false;
    }
  if (cgroup_stats_has(&out->cgroup, CGROUP_STAT_CPU_USAGE))
    out->has_rate = stats_collector_cpu_rate(manager->stats, id, out->cgroup.timestamp_ns,
                                             out->cgroup.cpu.usage_ns, &out->nano_cores);
  return true;
}

/* Hands a reading to a snapshot's fields. */
static void
take_reading(const struct stats_reading *reading, struct cgroup_stats *cgroup, bool *has_rate,
             uint64_t *nano_cores)
{
  *cgroup = reading->cgroup;
  *has_rate = reading->has_rate;
  *nano_cores = reading->nano_cores;
}

/* The directory of a runtime's cgroupsPath; NULL when it has none. */
static char *
container_fs_path(const struct pod_manager *manager, const char *cgroups_path)
{
  struct error err = ERROR_INIT;
  char *fs_path = NULL;

  if (cgroups_path == NULL
      || cgroup_path_to_fs(cgroups_path, manager->options.systemd_cgroup, &fs_path, &err) < 0)
    {
      error_clear(&err);
      return NULL;
    }
  return fs_path;
}

void
stats_read_container(struct pod_manager *manager, const struct container_snapshot *snapshot,
                     uint32_t wanted, struct stats_container *out)
{
  const char *id = snapshot->container->id;
  bool fresh = wanted & STATS_READ_FRESH;

  memset(out, 0, sizeof *out);
  out->state = snapshot->state;
  stats_collector_layer(manager->stats, id, true, &out->writable_layer);
  out->cgroup_path = container_fs_path(manager, snapshot->container->cgroups_path);
  if (out->state == CONTAINER_RUNNING && out->cgroup_path)
    {
      struct stats_reading reading;
      wanted &= ~STATS_READ_FRESH;
      out->has_cgroup = !fresh && stats_collector_recent(manager->stats, id, wanted, &reading);
      if (!out->has_cgroup && read_sampled(manager, id, out->cgroup_path, wanted, &reading))
        {
          stats_collector_keep(manager->stats, id, &reading);
          out->has_cgroup = true;
        }
      if (out->has_cgroup)
        take_reading(&reading, &out->cgroup, &out->has_nano_cores, &out->nano_cores);
    }
}

/* The kubelet's pod cgroup: a cgroupfs path (made absolute) or a systemd
 * slice's directory. */
static char *
pod_cgroup_path(const struct pod_manager *manager, const char *parent)
{
  struct error err = ERROR_INIT;
  char *path = NULL;

  if (!manager->options.systemd_cgroup)
    return parent[0] == '/' ? xstrdup(parent) : xasprintf("/%s", parent);
  if (cgroup_slice_to_path(parent, &path, &err) < 0)
    {
      log_debug("pod cgroup %s: %s", parent, error_message(&err));
      error_clear(&err);
    }
  return path;
}

/* Adds the cgroup at fs_path (of the container id; NULL for the pause,
 * read once) to sum; a missing one adds nothing. */
static void
add_cgroup(struct pod_manager *manager, const char *id, const char *fs_path, uint32_t wanted,
           struct cgroup_stats *sum, int *parts)
{
  struct cgroup_stats part;
  struct error err = ERROR_INIT;

  if (fs_path == NULL
      || stats_collector_read_cgroup(manager->stats, id, fs_path, wanted, &part, &err) < 0)
    {
      error_clear(&err);
      return;
    }
  stats_cgroup_add(sum, &part);
  (*parts)++;
}

/* A running container of the pod: its cgroup directory, else NULL. */
static char *
member_fs_path(struct pod_manager *manager, struct container *container, const char *sandbox_id)
{
  struct container_snapshot snapshot;
  struct error gone = ERROR_INIT;
  char *path = NULL;

  if (strcmp(container->sandbox_id, sandbox_id) != 0)
    return NULL;
  if (container_snapshot_take(manager, container, &snapshot, &gone) < 0)
    {
      error_clear(&gone);
      return NULL;
    }
  if (snapshot.state == CONTAINER_RUNNING)
    path = container_fs_path(manager, container->cgroups_path);
  container_snapshot_clear(&snapshot);
  return path;
}

/* Without a pod cgroup: the pause's cgroup and its running containers'. */
static bool
sum_pod_cgroups(struct pod_manager *manager, const struct sandbox *sandbox, uint32_t wanted,
                struct cgroup_stats *out)
{
  cleanup_free char *pause_path = container_fs_path(manager, sandbox->cgroups_path);
  size_t n;
  struct container **containers = pod_manager_list_containers(manager, &n);
  int parts = 0;

  memset(out, 0, sizeof *out);
  out->present = SUMMABLE;
  out->timestamp_ns = time_realtime_ns();
  add_cgroup(manager, NULL, pause_path, wanted, out, &parts);
  for (size_t i = 0; i < n; i++)
    {
      cleanup_free char *path = member_fs_path(manager, containers[i], sandbox->id);
      add_cgroup(manager, containers[i]->id, path, wanted, out, &parts);
    }
  pod_manager_release_containers(containers, n);
  return parts > 0;
}

/* The pod cgroup at fs_path, or the sum of the pod's cgroups (NULL), and
 * its CPU rate; a recent reading is reused. */
static bool
read_pod_cgroup(struct pod_manager *manager, const struct sandbox *sandbox, const char *fs_path,
                uint32_t wanted, struct stats_sandbox *out)
{
  struct stats_reading reading = { 0 };
  bool fresh = wanted & STATS_READ_FRESH;
  bool found;

  wanted &= ~STATS_READ_FRESH;
  found = !fresh && stats_collector_recent(manager->stats, sandbox->id, wanted, &reading);

  if (!found && fs_path)
    found = read_sampled(manager, sandbox->id, fs_path, wanted, &reading);
  else if (!found && sum_pod_cgroups(manager, sandbox, wanted, &reading.cgroup))
    {
      found = true;
      reading.wanted = wanted;
      if (cgroup_stats_has(&reading.cgroup, CGROUP_STAT_CPU_USAGE))
        reading.has_rate
            = stats_collector_cpu_rate(manager->stats, sandbox->id, reading.cgroup.timestamp_ns,
                                       reading.cgroup.cpu.usage_ns, &reading.nano_cores);
    }
  if (!found)
    return false;
  stats_collector_keep(manager->stats, sandbox->id, &reading);
  take_reading(&reading, &out->cgroup, &out->has_nano_cores, &out->nano_cores);
  return true;
}

static void
read_network(pid_t pause_pid, struct stats_network *out)
{
  cleanup_free char *path = xasprintf("/proc/%d/net/dev", (int)pause_pid);
  cleanup_free char *text = NULL;
  struct error err = ERROR_INIT;
  size_t len;

  if (read_file(path, NET_DEV_MAX_SIZE, &text, &len, &err) < 0
      || net_dev_parse(text, &out->interfaces, &out->n_interfaces, &err) < 0)
    {
      log_debug("network stats: %s", error_message(&err));
      error_clear(&err);
      return;
    }
  out->timestamp_ns = time_realtime_ns();
  out->default_index = net_dev_default_index(out->interfaces, out->n_interfaces);
}

int
stats_read_sandbox(struct pod_manager *manager, const struct sandbox_snapshot *snapshot,
                   uint32_t wanted, struct stats_sandbox *out, struct error *err)
{
  const struct sandbox *sandbox = snapshot->sandbox;

  memset(out, 0, sizeof *out);
  if (snapshot->state != SANDBOX_READY)
    return error_set(err, EAGAIN, "pod sandbox %s is not ready", sandbox->id);
  if (sandbox->cgroup_parent && sandbox->cgroup_parent[0] != '\0')
    out->cgroup_path = pod_cgroup_path(manager, sandbox->cgroup_parent);
  out->summed = out->cgroup_path == NULL;
  out->has_cgroup = read_pod_cgroup(manager, sandbox, out->cgroup_path, wanted, out);
  if (!sandbox->host_network && sandbox->pause_pid > 0)
    read_network(sandbox->pause_pid, &out->network);
  return 0;
}

void
stats_writable_layers(struct pod_manager *manager, struct stats_fs_usage *out)
{
  size_t n;
  struct container **containers = pod_manager_list_containers(manager, &n);

  memset(out, 0, sizeof *out);
  for (size_t i = 0; i < n; i++)
    {
      struct stats_fs_usage layer;
      stats_collector_layer(manager->stats, containers[i]->id, false, &layer);
      out->used_bytes += layer.used_bytes;
      out->inodes_used += layer.inodes_used;
    }
  pod_manager_release_containers(containers, n);
  out->timestamp_ns = stats_collector_last_pass(manager->stats);
  if (out->timestamp_ns == 0)
    out->timestamp_ns = time_realtime_ns();
}
