/* ListMetricDescriptors and ListPodSandboxMetrics: the kubelet's
 * PodAndContainerStatsFromCRI metrics, under cAdvisor's names, from the
 * same pod/stats.h snapshots as the stats calls.
 *
 * Labels are cAdvisor's: container (the container's name; "" for the
 * pod's own cgroup, as cAdvisor labels a pod cgroup), id (the cgroup
 * directory, as cAdvisor), image (as the user named it), name (the CRI
 * id, as cAdvisor names containerd's containers), namespace and pod, then
 * the metric's own (cpu, interface, failure_type and scope).  The kubelet
 * drops a metric whose label count differs from its descriptor's.
 *
 * CRI values are integers: "_seconds_total" counters are whole seconds,
 * rounded down, as CRI-O sends them.  Every metric carries the time of
 * the reading it comes from.  Listed: ready pods, with their pod cgroup
 * and network numbers at the pod level and the metrics of each running
 * container. */
#include "crid/daemon.h"
#include "crid/rpc.h"
#include "crid/stats_service.h"
#include "common/util.h"
#include "pod/container.h"
#include "pod/pod_manager.h"
#include "pod/sandbox.h"
#include "pod/stats.h"

#include <stdlib.h>
#include <string.h>

#define NS_PER_S 1000000000ULL
#define COUNTER RUNTIME__V1__METRIC_TYPE__COUNTER
#define GAUGE RUNTIME__V1__METRIC_TYPE__GAUGE

/* container, id, image, name, namespace, pod */
#define BASE_LABELS 6
static const char *const base_label_keys[BASE_LABELS]
    = { "container", "id", "image", "name", "namespace", "pod" };

struct descriptor
{
  const char *name;
  const char *help;
  const char *extra[2]; /* label keys after the base ones */
};

static const struct descriptor descriptors[] = {
  { "container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", { "cpu" } },
  { "container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", { 0 } },
  { "container_cpu_system_seconds_total",
    "Cumulative system cpu time consumed in seconds.",
    { 0 } },
  { "container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", { 0 } },
  { "container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", { 0 } },
  { "container_cpu_cfs_throttled_seconds_total",
    "Total time duration the container has been throttled.",
    { 0 } },
  { "container_memory_usage_bytes",
    "Current memory usage in bytes, including all memory regardless of when it was accessed",
    { 0 } },
  { "container_memory_working_set_bytes", "Current working set in bytes.", { 0 } },
  { "container_memory_rss", "Size of RSS in bytes.", { 0 } },
  { "container_memory_swap", "Container swap usage in bytes.", { 0 } },
  { "container_memory_failures_total",
    "Cumulative count of memory allocation failures.",
    { "failure_type", "scope" } },
  { "container_oom_events_total",
    "Count of out of memory events observed for the container",
    { 0 } },
  { "container_spec_memory_limit_bytes", "Memory limit for the container.", { 0 } },
  { "container_threads", "Number of threads running inside the container", { 0 } },
  { "container_threads_max",
    "Maximum number of threads allowed inside the container, infinity if value is zero",
    { 0 } },
  { "container_fs_usage_bytes",
    "Number of bytes that are consumed by the container on this "
    "filesystem.",
    { 0 } },
  { "container_network_receive_bytes_total",
    "Cumulative count of bytes received",
    { "interface" } },
  { "container_network_receive_packets_total",
    "Cumulative count of packets received",
    { "interface" } },
  { "container_network_receive_packets_dropped_total",
    "Cumulative count of packets dropped while receiving",
    { "interface" } },
  { "container_network_receive_errors_total",
    "Cumulative count of errors encountered while receiving",
    { "interface" } },
  { "container_network_transmit_bytes_total",
    "Cumulative count of bytes transmitted",
    { "interface" } },
  { "container_network_transmit_packets_total",
    "Cumulative count of packets transmitted",
    { "interface" } },
  { "container_network_transmit_packets_dropped_total",
    "Cumulative count of packets dropped while transmitting",
    { "interface" } },
  { "container_network_transmit_errors_total",
    "Cumulative count of errors encountered while transmitting",
    { "interface" } },
  { "container_last_seen", "Last time a container was seen by the exporter", { 0 } },
};

/* ---- Descriptors ----------------------------------------------------- */

static Runtime__V1__MetricDescriptor *
descriptor_message(struct rpc_call *call, const struct descriptor *d)
{
  Runtime__V1__MetricDescriptor *out = arena_new(&call->arena, Runtime__V1__MetricDescriptor);

  runtime__v1__metric_descriptor__init(out);
  out->name = (char *)d->name;
  out->help = (char *)d->help;
  out->label_keys = arena_new_array(&call->arena, char *, BASE_LABELS + 2);
  for (size_t i = 0; i < BASE_LABELS; i++)
    out->label_keys[out->n_label_keys++] = (char *)base_label_keys[i];
  for (size_t i = 0; i < 2 && d->extra[i]; i++)
    out->label_keys[out->n_label_keys++] = (char *)d->extra[i];
  return out;
}

RPC_HANDLER(rpc_list_metric_descriptors)
{
  size_t n = sizeof descriptors / sizeof descriptors[0];
  Runtime__V1__ListMetricDescriptorsResponse *reply
      = arena_new(&call->arena, Runtime__V1__ListMetricDescriptorsResponse);

  runtime__v1__list_metric_descriptors_response__init(reply);
  reply->descriptors = arena_new_array(&call->arena, Runtime__V1__MetricDescriptor *, n);
  for (size_t i = 0; i < n; i++)
    reply->descriptors[reply->n_descriptors++] = descriptor_message(call, &descriptors[i]);
  *response = &reply->base;
  return 0;
}

/* ---- Metrics --------------------------------------------------------- */

/* Metrics of one object as they are made: its base label values (shared
 * by its metrics without labels of their own) and the time of the
 * reading.  The array grows on the heap, then goes to the arena. */
struct sink
{
  struct rpc_call *call;
  char **base;
  int64_t timestamp;
  Runtime__V1__Metric **items;
  size_t n, cap;
};

static void
emit_labelled(struct sink *s, const char *name, Runtime__V1__MetricType type, uint64_t value,
              const char *extra1, const char *extra2)
{
  Runtime__V1__Metric *m = arena_new(&s->call->arena, Runtime__V1__Metric);
  size_t n_extra = extra2 ? 2 : extra1 ? 1 : 0;

  runtime__v1__metric__init(m);
  m->name = (char *)name;
  m->timestamp = s->timestamp;
  m->metric_type = type;
  m->value = rpc_uint64_value(s->call, value);
  m->n_label_values = BASE_LABELS + n_extra;
  m->label_values = s->base;
  if (n_extra)
    {
      m->label_values = arena_new_array(&s->call->arena, char *, BASE_LABELS + n_extra);
      memcpy(m->label_values, s->base, BASE_LABELS * sizeof *s->base);
      m->label_values[BASE_LABELS] = (char *)extra1;
      if (extra2)
        m->label_values[BASE_LABELS + 1] = (char *)extra2;
    }
  if (s->n == s->cap)
    {
      s->cap = s->cap ? 2 * s->cap : 32;
      s->items = xrealloc(s->items, s->cap * sizeof *s->items);
    }
  s->items[s->n++] = m;
}

static void
emit(struct sink *s, const char *name, Runtime__V1__MetricType type, uint64_t value)
{
  emit_labelled(s, name, type, value, NULL, NULL);
}

/* The items, moved into the arena. */
static Runtime__V1__Metric **
sink_finish(struct sink *s, size_t *n)
{
  *n = s->n;
  return s->items ? arena_adopt(&s->call->arena, s->items) : NULL;
}

static void
emit_cpu(struct sink *s, const struct cgroup_stats *c)
{
  if (cgroup_stats_has(c, CGROUP_STAT_CPU_USAGE))
    emit_labelled(s, "container_cpu_usage_seconds_total", COUNTER, c->cpu.usage_ns / NS_PER_S,
                  "total", NULL);
  if (cgroup_stats_has(c, CGROUP_STAT_CPU_USER))
    emit(s, "container_cpu_user_seconds_total", COUNTER, c->cpu.user_ns / NS_PER_S);
  if (cgroup_stats_has(c, CGROUP_STAT_CPU_SYSTEM))
    emit(s, "container_cpu_system_seconds_total", COUNTER, c->cpu.system_ns / NS_PER_S);
  if (cgroup_stats_has(c, CGROUP_STAT_CPU_NR_PERIODS))
    emit(s, "container_cpu_cfs_periods_total", COUNTER, c->cpu.nr_periods);
  if (cgroup_stats_has(c, CGROUP_STAT_CPU_NR_THROTTLED))
    emit(s, "container_cpu_cfs_throttled_periods_total", COUNTER, c->cpu.nr_throttled);
  if (cgroup_stats_has(c, CGROUP_STAT_CPU_THROTTLED))
    emit(s, "container_cpu_cfs_throttled_seconds_total", COUNTER, c->cpu.throttled_ns / NS_PER_S);
}

static void
emit_faults(struct sink *s, const char *type, uint64_t value)
{
  emit_labelled(s, "container_memory_failures_total", COUNTER, value, type, "container");
  emit_labelled(s, "container_memory_failures_total", COUNTER, value, type, "hierarchy");
}

static void
emit_memory(struct sink *s, const struct cgroup_stats *c)
{
  if (cgroup_stats_has(c, CGROUP_STAT_MEM_USAGE))
    emit(s, "container_memory_usage_bytes", GAUGE, c->memory.usage_bytes);
  if (cgroup_stats_has(c, CGROUP_STAT_MEM_WORKING_SET))
    emit(s, "container_memory_working_set_bytes", GAUGE, c->memory.working_set_bytes);
  if (cgroup_stats_has(c, CGROUP_STAT_MEM_RSS))
    emit(s, "container_memory_rss", GAUGE, c->memory.rss_bytes);
  if (cgroup_stats_has(c, CGROUP_STAT_MEM_SWAP_USAGE))
    emit(s, "container_memory_swap", GAUGE, c->memory.swap_usage_bytes);
  if (cgroup_stats_has(c, CGROUP_STAT_MEM_PAGE_FAULTS))
    emit_faults(s, "pgfault", c->memory.page_faults);
  if (cgroup_stats_has(c, CGROUP_STAT_MEM_MAJOR_PAGE_FAULTS))
    emit_faults(s, "pgmajfault", c->memory.major_page_faults);
  if (cgroup_stats_has(c, CGROUP_STAT_MEM_OOM_KILL))
    emit(s, "container_oom_events_total", COUNTER, c->memory.oom_kill);
  if (cgroup_stats_has(c, CGROUP_STAT_MEM_LIMIT))
    emit(s, "container_spec_memory_limit_bytes", GAUGE, c->memory.limit_bytes);
}

static void
emit_cgroup(struct sink *s, const struct cgroup_stats *c)
{
  s->timestamp = c->timestamp_ns;
  emit_cpu(s, c);
  emit_memory(s, c);
  if (cgroup_stats_has(c, CGROUP_STAT_PIDS_CURRENT))
    emit(s, "container_threads", GAUGE, c->pids.current);
  if (cgroup_stats_has(c, CGROUP_STAT_PIDS_MAX))
    emit(s, "container_threads_max", GAUGE, c->pids.max);
}

static void
emit_interface(struct sink *s, const struct net_dev_interface *i)
{
  const char *name = arena_strdup(&s->call->arena, i->name); /* i is freed before the reply */

  emit_labelled(s, "container_network_receive_bytes_total", COUNTER, i->rx_bytes, name, NULL);
  emit_labelled(s, "container_network_receive_packets_total", COUNTER, i->rx_packets, name, NULL);
  emit_labelled(s, "container_network_receive_packets_dropped_total", COUNTER, i->rx_dropped, name,
                NULL);
  emit_labelled(s, "container_network_receive_errors_total", COUNTER, i->rx_errors, name, NULL);
  emit_labelled(s, "container_network_transmit_bytes_total", COUNTER, i->tx_bytes, name, NULL);
  emit_labelled(s, "container_network_transmit_packets_total", COUNTER, i->tx_packets, name, NULL);
  emit_labelled(s, "container_network_transmit_packets_dropped_total", COUNTER, i->tx_dropped, name,
                NULL);
  emit_labelled(s, "container_network_transmit_errors_total", COUNTER, i->tx_errors, name, NULL);
}

static void
emit_last_seen(struct sink *s)
{
  s->timestamp = time_realtime_ns();
  emit(s, "container_last_seen", GAUGE, (uint64_t)s->timestamp / NS_PER_S);
}

/* The pod's names, copied into the arena: its containers' labels too. */
struct pod_names
{
  char *id, *name, *namespace_;
};

static char **
base_labels(struct rpc_call *call, const char *container, const char *cgroup_path,
            const char *image, const char *id, const struct pod_names *pod)
{
  char **base = arena_new_array(&call->arena, char *, BASE_LABELS);

  base[0] = arena_strdup(&call->arena, container);
  base[1] = arena_strdup(&call->arena, cgroup_path ? cgroup_path : "");
  base[2] = arena_strdup(&call->arena, image);
  base[3] = (char *)id;
  base[4] = pod->namespace_;
  base[5] = pod->name;
  return base;
}

/* A running container's metrics; NULL for any other (and a gone one). */
static Runtime__V1__ContainerMetrics *
container_metrics(struct rpc_call *call, struct container *container, const struct pod_names *pod)
{
  struct sink s = { .call = call };
  struct container_snapshot snapshot;
  struct stats_container stats;
  struct error err = ERROR_INIT;
  Runtime__V1__ContainerMetrics *out;
  char *id, *name, *image;

  if (container_snapshot_take(call->daemon->pods, container, &snapshot, &err) < 0)
    {
      error_clear(&err);
      return NULL;
    }
  id = arena_strdup(&call->arena, container->id);
  name = arena_strdup(&call->arena, container->config->metadata->name);
  image = arena_strdup(&call->arena, container->image_name ? container->image_name : "");
  stats_read_container(call->daemon->pods, &snapshot, STATS_WANT_METRICS, &stats);
  container_snapshot_clear(&snapshot);
  if (!stats.has_cgroup)
    {
      stats_container_clear(&stats);
      return NULL;
    }
  s.base = base_labels(call, name, stats.cgroup_path, image, id, pod);
  emit_cgroup(&s, &stats.cgroup);
  if (stats.writable_layer.timestamp_ns)
    {
      s.timestamp = stats.writable_layer.timestamp_ns;
      emit(&s, "container_fs_usage_bytes", GAUGE, stats.writable_layer.used_bytes);
    }
  emit_last_seen(&s);
  stats_container_clear(&stats);
  out = arena_new(&call->arena, Runtime__V1__ContainerMetrics);
  runtime__v1__container_metrics__init(out);
  out->container_id = id;
  out->metrics = sink_finish(&s, &out->n_metrics);
  return out;
}

static void
pod_level_metrics(struct rpc_call *call, Runtime__V1__PodSandboxMetrics *out,
                  const struct stats_sandbox *stats, const struct pod_names *pod)
{
  struct sink s = { .call = call };

  s.base = base_labels(call, "", stats->cgroup_path, "", pod->id, pod);
  if (stats->has_cgroup)
    emit_cgroup(&s, &stats->cgroup);
  s.timestamp = stats->network.timestamp_ns;
  for (size_t i = 0; i < stats->network.n_interfaces; i++)
    emit_interface(&s, &stats->network.interfaces[i]);
  emit_last_seen(&s);
  out->metrics = sink_finish(&s, &out->n_metrics);
}

/* A ready pod's metrics; NULL for any other. */
static Runtime__V1__PodSandboxMetrics *
sandbox_metrics(struct rpc_call *call, struct sandbox *sandbox, struct container *const *containers,
                size_t n)
{
  const Runtime__V1__PodSandboxMetadata *metadata = sandbox->config->metadata;
  struct pod_names pod
      = { arena_strdup(&call->arena, sandbox->id), arena_strdup(&call->arena, metadata->name),
          arena_strdup(&call->arena, metadata->namespace_) };
  struct sandbox_snapshot snapshot;
  struct stats_sandbox stats;
  struct error err = ERROR_INIT;
  Runtime__V1__PodSandboxMetrics *out;
  int ret = sandbox_snapshot_take(call->daemon->pods, sandbox, &snapshot, &err);

  if (ret == 0)
    ret = stats_read_sandbox(call->daemon->pods, &snapshot, STATS_WANT_METRICS, &stats, &err);
  sandbox_snapshot_clear(&snapshot);
  if (ret < 0)
    {
      error_clear(&err);
      return NULL;
    }
  out = arena_new(&call->arena, Runtime__V1__PodSandboxMetrics);
  runtime__v1__pod_sandbox_metrics__init(out);
  out->pod_sandbox_id = pod.id;
  pod_level_metrics(call, out, &stats, &pod);
  stats_sandbox_clear(&stats);
  out->container_metrics = arena_new_array(&call->arena, Runtime__V1__ContainerMetrics *, n + 1);
  for (size_t i = 0; i < n; i++)
    {
      Runtime__V1__ContainerMetrics *item;
      if (strcmp(containers[i]->sandbox_id, pod.id) != 0)
        continue;
      item = container_metrics(call, containers[i], &pod);
      if (item)
        out->container_metrics[out->n_container_metrics++] = item;
    }
  return out;
}

Runtime__V1__PodSandboxMetrics **
rpc_sandbox_metrics_items(struct rpc_call *call, size_t *n_out)
{
  struct pod_manager *pods = call->daemon->pods;
  size_t n, n_containers;
  struct sandbox **sandboxes = pod_manager_list_sandboxes(pods, &n);
  struct container **containers = pod_manager_list_containers(pods, &n_containers);
  Runtime__V1__PodSandboxMetrics **items
      = arena_new_array(&call->arena, Runtime__V1__PodSandboxMetrics *, n + 1);

  *n_out = 0;
  for (size_t i = 0; i < n; i++)
    {
      Runtime__V1__PodSandboxMetrics *item
          = sandbox_metrics(call, sandboxes[i], containers, n_containers);
      if (item)
        items[(*n_out)++] = item;
    }
  pod_manager_release_containers(containers, n_containers);
  pod_manager_release_list(sandboxes, n);
  return items;
}

RPC_HANDLER(rpc_list_pod_sandbox_metrics)
{
  Runtime__V1__ListPodSandboxMetricsResponse *reply
      = arena_new(&call->arena, Runtime__V1__ListPodSandboxMetricsResponse);

  runtime__v1__list_pod_sandbox_metrics_response__init(reply);
  reply->pod_metrics = rpc_sandbox_metrics_items(call, &reply->n_pod_metrics);
  *response = &reply->base;
  return 0;
}
