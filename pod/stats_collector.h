/* pod/stats_collector: what pod/stats.c asks of the collector's cache
 * (internal to pod/stats*.c; the collector is started and stopped through
 * pod/stats.h).  The cache holds, per container or pod id, the CPU
 * samples and the writable layer's last measurement, and the cgroup v1
 * mount points (re-read every period, not at every call).  Every
 * function takes collector NULL (no collector: nothing cached). */
#ifndef CRID_POD_STATS_COLLECTOR_H
#define CRID_POD_STATS_COLLECTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "pod/cgroup_stats.h"
#include "pod/stats.h"

/* cgroup_stats_read_fs with the cached v1 mount points. */
int stats_collector_read_cgroup(struct stats_collector *collector, const char *fs_path,
                                struct cgroup_stats *out, struct error *err);

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
  bool has_rate;
  uint64_t nano_cores;
};

/* id's last reading, when it is less than STATS_READING_REUSE_NS old. */
bool stats_collector_recent(struct stats_collector *collector, const char *id,
                            struct stats_reading *out);
/* Keeps reading as id's last one. */
void stats_collector_keep(struct stats_collector *collector, const char *id,
                          const struct stats_reading *reading);

/* Wall clock of the end of the last periodic pass; 0 before the first. */
int64_t stats_collector_last_pass(struct stats_collector *collector);

#endif
