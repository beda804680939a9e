/* crid/stats_service: the CRI stats messages (ContainerStats,
 * PodSandboxStats and their parts) built from pod/stats.h snapshots in a
 * call's arena, and the list filters of the stats calls.  The unary
 * handlers (ContainerStats, ListContainerStats, PodSandboxStats,
 * ListPodSandboxStats) are in stats_service.c, ListMetricDescriptors and
 * ListPodSandboxMetrics in metric_service.c; the streaming lists build
 * their items with the functions below.
 *
 * What is listed:
 *   - containers in every state, as containerd lists them: a running one
 *     with its cgroup's CPU, memory, swap and pressure; a created or
 *     exited one with its attributes and writable layer only (its cgroup
 *     holds the runtime's waiting init, or nothing);
 *   - ready pods only (a pod whose pause is gone has nothing to measure;
 *     PodSandboxStats on one answers UNAVAILABLE, as containerd does),
 *     each with the stats of every container it has. */
#ifndef CRID_STATS_SERVICE_H
#define CRID_STATS_SERVICE_H

#include <stddef.h>

#include "crid/rpc.h"

struct container;
struct sandbox;

/* The stats of one container; NULL when it was removed meanwhile. */
Runtime__V1__ContainerStats *rpc_container_stats_message(struct rpc_call *call,
                                                         struct container *container);

/* The stats of every container that filter (NULL: all) matches: the
 * array (n + 1 slots) is in the call's arena. */
Runtime__V1__ContainerStats **
rpc_container_stats_items(struct rpc_call *call, const Runtime__V1__ContainerStatsFilter *filter,
                          size_t *n);

/* The stats of one pod and its containers (containers[0..n_containers)
 * is any list of containers, the pod's are picked from it).  EAGAIN when
 * the pod is not ready, ENOENT when it was removed. */
Runtime__V1__PodSandboxStats *rpc_sandbox_stats_message(struct rpc_call *call,
                                                        struct sandbox *sandbox,
                                                        struct container *const *containers,
                                                        size_t n_containers, struct error *err);

/* The stats of every ready pod that filter (NULL: all) matches. */
Runtime__V1__PodSandboxStats **
rpc_sandbox_stats_items(struct rpc_call *call, const Runtime__V1__PodSandboxStatsFilter *filter,
                        size_t *n);

/* The metrics of every ready pod and its running containers
 * (ListPodSandboxMetrics; metric_service.c). */
Runtime__V1__PodSandboxMetrics **rpc_sandbox_metrics_items(struct rpc_call *call, size_t *n);

/* A UInt64Value in the call's arena. */
Runtime__V1__UInt64Value *rpc_uint64_value(struct rpc_call *call, uint64_t value);

#endif
