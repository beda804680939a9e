/* pod/stats_collector: what pod/stats.c asks of the collector's cache
 * (internal to pod/stats*.c; the collector is started and stopped through
 * pod/stats.h).  The cache holds, per container or pod id, the CPU
 * samples, the last reading, the writable layer's last measurement and
 * the cgroup handle, and the cgroup v1 mount points (re-read every
 * period, not at every call).  Every
 * function takes collector NULL (no collector: nothing cached). */
#ifndef CRID_POD_STATS_COLLECTOR_H
#define CRID_POD_STATS_COLLECTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "pod/cgroup_stats.h"
#include "pod/stats.h"

/* The cgroup at fs_path, what `wanted` (enum cgroup_want) needs of it.
 * With an id (a container's or a pod's), through that object's cgroup
 * handle, kept in the cache until the object goes (its directories stay
 * open, the files missing on this host are remembered; a handle whose
 * directory was replaced is replaced); without one, through a handle
 * for this reading only.  v1 mount points are the cached ones. */
int stats_collector_read_cgroup(struct stats_collector *collector, const char *id,
                                const char *fs_path, uint32_t wanted, struct cgroup_stats *out,
                                struct error *err);

/* stats_cpu_window_add on id's window. */
bool stats_collector_cpu_rate(struct stats_collector *collector, const char *id, int64_t now_ns,
                              uint64_t usage_ns, uint64_t *nano_cores);

/* id's last writable-layer measurement (timestamp 0: none).  With
 * wake_if_new, an id never measured yet wakes the collector to measure
 * it now, so the next call has it. */
void stats_collector_layer(struct stats_collector *collector, const char *id, bool wake_if_new,
                           struct stats_fs_usage *out);

/* A reading of one cgroup with the CPU rate it gave. */
struct stats_reading
{
  struct cgroup_stats cgroup;
  uint32_t wanted; /* what it was read for (enum cgroup_want) */
  bool has_rate;
  uint64_t nano_cores;
};

/* id's last reading, when it is less than a collection period (at most
 * STATS_READING_MAX_AGE_NS) old and was read for at least what `wanted`
 * asks; one without a CPU rate only while it is too young for a new
 * reading to give one (STATS_RATE_MIN_INTERVAL_NS). */
bool stats_collector_recent(struct stats_collector *collector, const char *id, uint32_t wanted,
                            struct stats_reading *out);
/* Keeps reading as id's last one. */
void stats_collector_keep(struct stats_collector *collector, const char *id,
                          const struct stats_reading *reading);

/* Wall clock of the end of the last periodic pass; 0 before the first. */
int64_t stats_collector_last_pass(struct stats_collector *collector);

#endif
