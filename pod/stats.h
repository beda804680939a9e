/* pod/stats: the resource usage of containers and pod sandboxes as plain
 * C structs, for the CRI stats and metrics calls.
 *
 * This module owns:
 *   - the snapshot of one container (its cgroup's CPU, memory, swap,
 *     pids and pressure numbers, read when asked; the CPU rate; its
 *     writable layer's last measurement) and of one pod (the pod cgroup,
 *     the CPU rate, the network counters of its namespace);
 *   - which cgroup is "the pod's": the kubelet's pod cgroup (the sandbox's
 *     cgroup_parent) when there is one; without a parent (crictl, whose
 *     pods share crid's default parent) the sum of the pod's own cgroups,
 *     its pause and its running containers, without limits or pressure;
 *   - the per-object cache, keyed by id: the last CPU samples (for
 *     usage_nano_cores) and the writable layer's measurement;
 *   - the collector, a low-priority background thread started and stopped
 *     with the pod manager, that every period measures the upper directory
 *     of each running container (and once that of a created or exited
 *     one), samples the CPU of every running container and ready pod (so
 *     a rate exists at the first call), and drops the cache entries of
 *     removed objects.  A stats call never walks a file system.
 *
 * Numbers are served from the last reading of a cgroup while it is less
 * than a collection period old (at most STATS_READING_MAX_AGE_NS), and
 * read at the call otherwise.  The collector takes a fresh reading of
 * every running container and ready pod each period (it did so for the
 * CPU samples anyway), so a kubelet polling every 10-15 s gets numbers at
 * most a period old, as cAdvisor's housekeeping gives them, without a
 * call reading a hundred cgroups: the calls cost next to nothing and the
 * collector's passes are the only cgroup reads, however many clients
 * poll.  A reading is served only to a call that wants no more fields
 * than it was read for (the metrics want more than the stats calls).
 * Reads go through a handle per object that keeps the cgroup's
 * directories open and reads only the files the fields need
 * (pod/cgroup_stats.h); without swap on the host, the swap files are not
 * read at all.
 *
 * usage_nano_cores is the CPU time used between two samples of the same
 * cgroup divided by the wall time between them; the samples are the
 * collector's and the calls' own reads.  A sample less than
 * STATS_RATE_MIN_INTERVAL_NS after the newest one is not kept, and its
 * rate is taken over the interval from the older sample instead, so
 * close reads never give a rate over a few milliseconds.  With the
 * collector's samples, the rate is that of the last period, as cAdvisor
 * computes it.  Without an earlier sample there is no rate.
 *
 * Network counters are those of the pod's namespace, read from
 * /proc/<pause pid>/net/dev, loopback left out; hostNetwork pods have
 * none (containerd and CRI-O report none either: the node's interfaces
 * are not the pod's). */
#ifndef CRID_POD_STATS_H
#define CRID_POD_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "pod/cgroup_stats.h"
#include "pod/container.h"
#include "pod/net_dev.h"

struct pod_manager;
struct sandbox;
struct container_snapshot;
struct sandbox_snapshot;
struct stats_collector;

#define STATS_DEFAULT_PERIOD_S 10
#define STATS_RATE_MIN_INTERVAL_NS (1000LL * 1000 * 1000)
/* A reading is served for one collection period, never longer than this
 * (the kubelet's own housekeeping is 10-15 s). */
#define STATS_READING_MAX_AGE_NS (15LL * 1000 * 1000 * 1000)
/* One writable layer's walk stops after this many entries. */
#define STATS_LAYER_MAX_ENTRIES (1024 * 1024)

/* A file system measurement; timestamp_ns 0: none yet. */
struct stats_fs_usage
{
  int64_t timestamp_ns;
  uint64_t used_bytes;
  uint64_t inodes_used;
};

struct stats_container
{
  enum container_state state;
  /* The cgroup, read for a running container only (a created one holds
   * the runtime's waiting init, an exited one nothing). */
  bool has_cgroup;
  struct cgroup_stats cgroup;
  bool has_nano_cores;
  uint64_t nano_cores;
  struct stats_fs_usage writable_layer;
  char *cgroup_path; /* its directory under each hierarchy root, or NULL */
};

struct stats_network
{
  int64_t timestamp_ns;
  struct net_dev_interface *interfaces; /* NULL: no network numbers */
  size_t n_interfaces;
  size_t default_index; /* of the default interface (eth0) */
};

struct stats_sandbox
{
  bool has_cgroup;
  bool summed; /* no pod cgroup: the sum of the pod's own cgroups */
  struct cgroup_stats cgroup;
  bool has_nano_cores;
  uint64_t nano_cores;
  struct stats_network network;
  char *cgroup_path; /* the pod cgroup's directory, or NULL when summed */
};

void stats_container_clear(struct stats_container *stats);
void stats_sandbox_clear(struct stats_sandbox *stats);

/* What a snapshot reads of the cgroups (enum cgroup_want): the CRI stats
 * calls want CPU, memory, swap and pressure (a pod also its process
 * count); the metrics want every field.  Only those files are read. */
#define STATS_WANT_CONTAINER                                                                       \
  (CGROUP_WANT_CPU | CGROUP_WANT_MEMORY | CGROUP_WANT_SWAP | CGROUP_WANT_PSI)
#define STATS_WANT_SANDBOX (STATS_WANT_CONTAINER | CGROUP_WANT_PIDS)
#define STATS_WANT_METRICS CGROUP_WANT_ALL
/* With the fields wanted: read the cgroup now, even if a recent reading
 * exists (the collector's periodic pass). */
#define STATS_READ_FRESH (1u << 31)

/* The stats of a container (from its snapshot, pod/container.h), its
 * cgroup read for `wanted`; a cgroup that cannot be read (the container
 * is ending) only leaves has_cgroup off. */
void stats_read_container(struct pod_manager *manager, const struct container_snapshot *snapshot,
                          uint32_t wanted, struct stats_container *out);

/* The stats of a pod (from its snapshot, pod/sandbox.h), its cgroup read
 * for `wanted`.  EAGAIN when it is not ready (its pause is gone: nothing
 * to measure). */
int stats_read_sandbox(struct pod_manager *manager, const struct sandbox_snapshot *snapshot,
                       uint32_t wanted, struct stats_sandbox *out, struct error *err);

/* The writable layers of every container together (ImageFsInfo's
 * container file system), from the cached measurements; the timestamp
 * is that of the collector's last pass. */
void stats_writable_layers(struct pod_manager *manager, struct stats_fs_usage *out);

/* Where writable layers live: "<root>/containers".  Caller frees. */
char *stats_layers_dir(const struct pod_manager *manager);

/* The collector (pod/stats_collector.c): runs until stopped; period_s 0
 * means STATS_DEFAULT_PERIOD_S. */
struct stats_collector *stats_collector_start(struct pod_manager *manager, int64_t period_s,
                                              struct error *err);
/* Stops and joins the thread (a walk in progress ends at once) and frees
 * the cache.  NULL is fine. */
void stats_collector_stop(struct stats_collector *collector);

/* ---- Pure parts (unit-tested) ------------------------------------- */

/* The last two kept samples of a cumulative CPU counter. */
struct stats_cpu_window
{
  int kept; /* 0, 1 or 2 */
  int64_t older_ns, newer_ns;
  uint64_t older_usage, newer_usage;
};

/* Adds a sample (wall time, cumulative CPU ns) and sets *nano_cores to
 * the rate, as described above; false when there is none.  A counter
 * that went back restarts the window (a new cgroup, or a pod sum that
 * lost a member); a sample not later than the newest (readers racing) is
 * measured from the older one if it can be, and never kept. */
bool stats_cpu_window_add(struct stats_cpu_window *window, int64_t now_ns, uint64_t usage_ns,
                          uint64_t *nano_cores);

/* Adds the summable fields of part to sum (CPU and memory usage, faults,
 * swap usage, OOM kills, pids); a field stays present only while every
 * part has it.  Limits, available memory and pressure are dropped: they
 * do not add up. */
void stats_cgroup_add(struct cgroup_stats *sum, const struct cgroup_stats *part);

#endif
