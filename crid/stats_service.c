/* ContainerStats, ListContainerStats, PodSandboxStats and
 * ListPodSandboxStats: pod/stats.h snapshots in, protobuf out; see
 * stats_service.h for what is listed.
 *
 * Every number is a UInt64Value set only when the host has it (a field
 * left out means "not available", not zero); every timestamp is the
 * reading's.  usage_nano_cores is left out until a second sample exists
 * (pod/stats.h), as containerd and cAdvisor do.  Pressure totals are the
 * kernel's microseconds times 1000: CRI's unit is the nanosecond. */
#include "crid/stats_service.h"
#include "crid/daemon.h"
#include "crid/rpc.h"
#include "crid/service_common.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "pod/container.h"
#include "pod/pod_manager.h"
#include "pod/sandbox.h"
#include "pod/stats.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

#define PSI_US_TO_NS 1000

Runtime__V1__UInt64Value *
rpc_uint64_value(struct rpc_call *call, uint64_t value)
{
  Runtime__V1__UInt64Value *v = arena_new(&call->arena, Runtime__V1__UInt64Value);

  runtime__v1__uint64_value__init(v);
  v->value = value;
  return v;
}

/* The field's value when bit is present, else NULL (left out). */
static Runtime__V1__UInt64Value *
stat_value(struct rpc_call *call, const struct cgroup_stats *stats, uint32_t bit, uint64_t value)
{
  return cgroup_stats_has(stats, bit) ? rpc_uint64_value(call, value) : NULL;
}

/* ---- cgroup numbers -------------------------------------------------- */

static Runtime__V1__PsiData *
psi_data(struct rpc_call *call, const struct cgroup_psi_data *data)
{
  Runtime__V1__PsiData *out = arena_new(&call->arena, Runtime__V1__PsiData);

  runtime__v1__psi_data__init(out);
  out->total = data->total_us * PSI_US_TO_NS;
  out->avg10 = data->avg10;
  out->avg60 = data->avg60;
  out->avg300 = data->avg300;
  return out;
}

static Runtime__V1__PsiStats *
psi_stats(struct rpc_call *call, const struct cgroup_psi *psi)
{
  Runtime__V1__PsiStats *out;

  if (!psi->present)
    return NULL;
  out = arena_new(&call->arena, Runtime__V1__PsiStats);
  runtime__v1__psi_stats__init(out);
  out->some = psi_data(call, &psi->some);
  if (psi->full_present)
    out->full = psi_data(call, &psi->full);
  return out;
}

static Runtime__V1__CpuUsage *
cpu_usage(struct rpc_call *call, const struct cgroup_stats *stats, bool has_rate,
          uint64_t nano_cores)
{
  Runtime__V1__CpuUsage *cpu;

  if (!cgroup_stats_has(stats, CGROUP_STAT_CPU_USAGE))
    return NULL;
  cpu = arena_new(&call->arena, Runtime__V1__CpuUsage);
  runtime__v1__cpu_usage__init(cpu);
  cpu->timestamp = stats->timestamp_ns;
  cpu->usage_core_nano_seconds = rpc_uint64_value(call, stats->cpu.usage_ns);
  if (has_rate)
    cpu->usage_nano_cores = rpc_uint64_value(call, nano_cores);
  cpu->psi = psi_stats(call, &stats->psi.cpu);
  return cpu;
}

static Runtime__V1__MemoryUsage *
memory_usage(struct rpc_call *call, const struct cgroup_stats *s)
{
  Runtime__V1__MemoryUsage *memory;

  if (!cgroup_stats_has(s, CGROUP_STAT_MEM_USAGE))
    return NULL;
  memory = arena_new(&call->arena, Runtime__V1__MemoryUsage);
  runtime__v1__memory_usage__init(memory);
  memory->timestamp = s->timestamp_ns;
  memory->working_set_bytes
      = stat_value(call, s, CGROUP_STAT_MEM_WORKING_SET, s->memory.working_set_bytes);
  memory->available_bytes
      = stat_value(call, s, CGROUP_STAT_MEM_AVAILABLE, s->memory.available_bytes);
  memory->usage_bytes = rpc_uint64_value(call, s->memory.usage_bytes);
  memory->rss_bytes = stat_value(call, s, CGROUP_STAT_MEM_RSS, s->memory.rss_bytes);
  memory->page_faults = stat_value(call, s, CGROUP_STAT_MEM_PAGE_FAULTS, s->memory.page_faults);
  memory->major_page_faults
      = stat_value(call, s, CGROUP_STAT_MEM_MAJOR_PAGE_FAULTS, s->memory.major_page_faults);
  memory->psi = psi_stats(call, &s->psi.memory);
  return memory;
}

/* Swap where the host accounts it; what is left of a swap limit, 0 when
 * the cgroup may not swap, left out without a limit. */
static Runtime__V1__SwapUsage *
swap_usage(struct rpc_call *call, const struct cgroup_stats *s)
{
  Runtime__V1__SwapUsage *swap;
  uint64_t used = s->memory.swap_usage_bytes, limit = s->memory.swap_limit_bytes;

  if (!cgroup_stats_has(s, CGROUP_STAT_MEM_SWAP_USAGE))
    return NULL;
  swap = arena_new(&call->arena, Runtime__V1__SwapUsage);
  runtime__v1__swap_usage__init(swap);
  swap->timestamp = s->timestamp_ns;
  swap->swap_usage_bytes = rpc_uint64_value(call, used);
  if (cgroup_stats_has(s, CGROUP_STAT_MEM_NO_SWAP))
    swap->swap_available_bytes = rpc_uint64_value(call, 0);
  else if (cgroup_stats_has(s, CGROUP_STAT_MEM_SWAP_LIMIT) && limit > 0)
    swap->swap_available_bytes = rpc_uint64_value(call, limit > used ? limit - used : 0);
  return swap;
}

static Runtime__V1__IoUsage *
io_usage(struct rpc_call *call, const struct cgroup_stats *s)
{
  Runtime__V1__IoUsage *io;

  if (!s->psi.io.present)
    return NULL;
  io = arena_new(&call->arena, Runtime__V1__IoUsage);
  runtime__v1__io_usage__init(io);
  io->timestamp = s->timestamp_ns;
  io->psi = psi_stats(call, &s->psi.io);
  return io;
}

static Runtime__V1__ProcessUsage *
process_usage(struct rpc_call *call, const struct cgroup_stats *s)
{
  Runtime__V1__ProcessUsage *process;

  if (!cgroup_stats_has(s, CGROUP_STAT_PIDS_CURRENT))
    return NULL;
  process = arena_new(&call->arena, Runtime__V1__ProcessUsage);
  runtime__v1__process_usage__init(process);
  process->timestamp = s->timestamp_ns;
  process->process_count = rpc_uint64_value(call, s->pids.current);
  return process;
}

/* ---- Containers ------------------------------------------------------ */

static Runtime__V1__FilesystemUsage *
writable_layer(struct rpc_call *call, const struct stats_fs_usage *usage)
{
  Runtime__V1__FilesystemUsage *fs;
  Runtime__V1__FilesystemIdentifier *fs_id;

  if (usage->timestamp_ns == 0)
    return NULL; /* not measured yet: the collector was woken */
  fs = arena_new(&call->arena, Runtime__V1__FilesystemUsage);
  fs_id = arena_new(&call->arena, Runtime__V1__FilesystemIdentifier);
  runtime__v1__filesystem_usage__init(fs);
  runtime__v1__filesystem_identifier__init(fs_id);
  fs_id->mountpoint = arena_adopt(&call->arena, stats_layers_dir(call->daemon->pods));
  fs->fs_id = fs_id;
  fs->timestamp = usage->timestamp_ns;
  fs->used_bytes = rpc_uint64_value(call, usage->used_bytes);
  fs->inodes_used = rpc_uint64_value(call, usage->inodes_used);
  return fs;
}

static Runtime__V1__ContainerAttributes *
container_attributes(struct rpc_call *call, const struct container *container)
{
  const Runtime__V1__ContainerConfig *config = container->config;
  Runtime__V1__ContainerAttributes *a = arena_new(&call->arena, Runtime__V1__ContainerAttributes);
  Runtime__V1__ContainerMetadata *m = arena_new(&call->arena, Runtime__V1__ContainerMetadata);

  runtime__v1__container_attributes__init(a);
  runtime__v1__container_metadata__init(m);
  m->name = arena_strdup(&call->arena, config->metadata->name);
  m->attempt = config->metadata->attempt;
  a->id = arena_strdup(&call->arena, container->id);
  a->metadata = m;
  a->n_labels = config->n_labels;
  a->labels = rpc_copy_map(call, &runtime__v1__container_attributes__labels_entry__descriptor,
                           config->labels, config->n_labels);
  a->n_annotations = config->n_annotations;
  a->annotations
      = rpc_copy_map(call, &runtime__v1__container_attributes__annotations_entry__descriptor,
                     config->annotations, config->n_annotations);
  return a;
}

Runtime__V1__ContainerStats *
rpc_container_stats_message(struct rpc_call *call, struct container *container)
{
  Runtime__V1__ContainerStats *out;
  struct container_snapshot snapshot;
  struct stats_container stats;
  struct error gone = ERROR_INIT;

  if (container_snapshot_take(call->daemon->pods, container, &snapshot, &gone) < 0)
    {
      error_clear(&gone);
      return NULL;
    }
  stats_read_container(call->daemon->pods, &snapshot, STATS_WANT_CONTAINER, &stats);
  container_snapshot_clear(&snapshot);
  out = arena_new(&call->arena, Runtime__V1__ContainerStats);
  runtime__v1__container_stats__init(out);
  out->attributes = container_attributes(call, container);
  out->writable_layer = writable_layer(call, &stats.writable_layer);
  if (stats.has_cgroup)
    {
      out->cpu = cpu_usage(call, &stats.cgroup, stats.has_nano_cores, stats.nano_cores);
      out->memory = memory_usage(call, &stats.cgroup);
      out->swap = swap_usage(call, &stats.cgroup);
      out->io = io_usage(call, &stats.cgroup);
    }
  stats_container_clear(&stats);
  return out;
}

static bool
container_matches(const struct container *container,
                  const Runtime__V1__ContainerStatsFilter *filter)
{
  /* What a filter reads never changes once the container exists. */
  if (filter == NULL)
    return true;
  return rpc_id_matches(container->id, filter->id)
         && rpc_id_matches(container->sandbox_id, filter->pod_sandbox_id)
         && rpc_labels_match(container->config->labels, container->config->n_labels,
                             filter->label_selector, filter->n_label_selector);
}

Runtime__V1__ContainerStats **
rpc_container_stats_items(struct rpc_call *call, const Runtime__V1__ContainerStatsFilter *filter,
                          size_t *n_out)
{
  struct pod_manager *pods = call->daemon->pods;
  size_t n;
  struct container **containers = pod_manager_list_containers(pods, &n);
  Runtime__V1__ContainerStats **items
      = arena_new_array(&call->arena, Runtime__V1__ContainerStats *, n + 1);

  *n_out = 0;
  for (size_t i = 0; i < n; i++)
    {
      Runtime__V1__ContainerStats *item;
      if (!container_matches(containers[i], filter))
        continue;
      item = rpc_container_stats_message(call, containers[i]);
      if (item)
        items[(*n_out)++] = item;
    }
  pod_manager_release_containers(containers, n);
  return items;
}

RPC_HANDLER(rpc_container_stats)
{
  const Runtime__V1__ContainerStatsRequest *stats_request
      = (const Runtime__V1__ContainerStatsRequest *)request;
  Runtime__V1__ContainerStatsResponse *reply
      = arena_new(&call->arena, Runtime__V1__ContainerStatsResponse);
  struct container *container
      = pod_manager_find_container(call->daemon->pods, stats_request->container_id, err);

  if (container == NULL)
    return -1;
  runtime__v1__container_stats_response__init(reply);
  reply->stats = rpc_container_stats_message(call, container);
  container_unref(container);
  if (reply->stats == NULL)
    return error_set(err, ENOENT, "container %.64s not found", stats_request->container_id);
  *response = &reply->base;
  return 0;
}

RPC_HANDLER(rpc_list_container_stats)
{
  const Runtime__V1__ListContainerStatsRequest *list_request
      = (const Runtime__V1__ListContainerStatsRequest *)request;
  Runtime__V1__ListContainerStatsResponse *reply
      = arena_new(&call->arena, Runtime__V1__ListContainerStatsResponse);

  runtime__v1__list_container_stats_response__init(reply);
  reply->stats = rpc_container_stats_items(call, list_request->filter, &reply->n_stats);
  *response = &reply->base;
  return 0;
}

/* ---- Pods ------------------------------------------------------------ */

static Runtime__V1__NetworkInterfaceUsage *
interface_usage(struct rpc_call *call, const struct net_dev_interface *interface)
{
  Runtime__V1__NetworkInterfaceUsage *out
      = arena_new(&call->arena, Runtime__V1__NetworkInterfaceUsage);

  runtime__v1__network_interface_usage__init(out);
  out->name = arena_strdup(&call->arena, interface->name);
  out->rx_bytes = rpc_uint64_value(call, interface->rx_bytes);
  out->rx_errors = rpc_uint64_value(call, interface->rx_errors);
  out->tx_bytes = rpc_uint64_value(call, interface->tx_bytes);
  out->tx_errors = rpc_uint64_value(call, interface->tx_errors);
  return out;
}

/* Every interface but lo, the default one (eth0) among them too, as
 * containerd lists them. */
static Runtime__V1__NetworkUsage *
network_usage(struct rpc_call *call, const struct stats_network *network)
{
  Runtime__V1__NetworkUsage *out;

  if (network->timestamp_ns == 0)
    return NULL;
  out = arena_new(&call->arena, Runtime__V1__NetworkUsage);
  runtime__v1__network_usage__init(out);
  out->timestamp = network->timestamp_ns;
  out->interfaces = arena_new_array(&call->arena, Runtime__V1__NetworkInterfaceUsage *,
                                    network->n_interfaces + 1);
  for (size_t i = 0; i < network->n_interfaces; i++)
    out->interfaces[out->n_interfaces++] = interface_usage(call, &network->interfaces[i]);
  if (network->n_interfaces > 0)
    out->default_interface = out->interfaces[network->default_index];
  return out;
}

/* The config never changes once the pod is listed, so no lock (the
 * sandbox lock is held through whole lifecycle operations). */
static Runtime__V1__PodSandboxAttributes *
sandbox_attributes(struct rpc_call *call, const struct sandbox *sandbox)
{
  const Runtime__V1__PodSandboxConfig *config = sandbox->config;
  Runtime__V1__PodSandboxAttributes *a = arena_new(&call->arena, Runtime__V1__PodSandboxAttributes);
  Runtime__V1__PodSandboxMetadata *m = arena_new(&call->arena, Runtime__V1__PodSandboxMetadata);

  runtime__v1__pod_sandbox_attributes__init(a);
  runtime__v1__pod_sandbox_metadata__init(m);
  m->name = arena_strdup(&call->arena, config->metadata->name);
  m->namespace_ = arena_strdup(&call->arena, config->metadata->namespace_);
  m->uid = arena_strdup(&call->arena, config->metadata->uid);
  m->attempt = config->metadata->attempt;
  a->id = arena_strdup(&call->arena, sandbox->id);
  a->metadata = m;
  a->n_labels = config->n_labels;
  a->labels = rpc_copy_map(call, &runtime__v1__pod_sandbox_attributes__labels_entry__descriptor,
                           config->labels, config->n_labels);
  a->n_annotations = config->n_annotations;
  a->annotations
      = rpc_copy_map(call, &runtime__v1__pod_sandbox_attributes__annotations_entry__descriptor,
                     config->annotations, config->n_annotations);
  return a;
}

static void
add_pod_containers(struct rpc_call *call, Runtime__V1__LinuxPodSandboxStats *linux_stats,
                   const char *sandbox_id, struct container *const *containers, size_t n)
{
  linux_stats->containers = arena_new_array(&call->arena, Runtime__V1__ContainerStats *, n + 1);
  for (size_t i = 0; i < n; i++)
    {
      Runtime__V1__ContainerStats *item;
      if (strcmp(containers[i]->sandbox_id, sandbox_id) != 0)
        continue;
      item = rpc_container_stats_message(call, containers[i]);
      if (item)
        linux_stats->containers[linux_stats->n_containers++] = item;
    }
}

Runtime__V1__PodSandboxStats *
rpc_sandbox_stats_message(struct rpc_call *call, struct sandbox *sandbox,
                          struct container *const *containers, size_t n_containers,
                          struct error *err)
{
  Runtime__V1__PodSandboxStats *out;
  Runtime__V1__LinuxPodSandboxStats *linux_stats;
  struct sandbox_snapshot snapshot;
  struct stats_sandbox stats;
  int ret = sandbox_snapshot_take(call->daemon->pods, sandbox, &snapshot, err);

  if (ret == 0)
    ret = stats_read_sandbox(call->daemon->pods, &snapshot, STATS_WANT_SANDBOX, &stats, err);
  sandbox_snapshot_clear(&snapshot);
  if (ret < 0)
    return NULL;
  out = arena_new(&call->arena, Runtime__V1__PodSandboxStats);
  linux_stats = arena_new(&call->arena, Runtime__V1__LinuxPodSandboxStats);
  runtime__v1__pod_sandbox_stats__init(out);
  runtime__v1__linux_pod_sandbox_stats__init(linux_stats);
  out->attributes = sandbox_attributes(call, sandbox);
  out->linux = linux_stats;
  if (stats.has_cgroup)
    {
      linux_stats->cpu = cpu_usage(call, &stats.cgroup, stats.has_nano_cores, stats.nano_cores);
      linux_stats->memory = memory_usage(call, &stats.cgroup);
      linux_stats->process = process_usage(call, &stats.cgroup);
      linux_stats->io = io_usage(call, &stats.cgroup);
    }
  linux_stats->network = network_usage(call, &stats.network);
  add_pod_containers(call, linux_stats, sandbox->id, containers, n_containers);
  stats_sandbox_clear(&stats);
  return out;
}

static bool
sandbox_matches(const struct sandbox *sandbox, const Runtime__V1__PodSandboxStatsFilter *filter)
{
  if (filter == NULL)
    return true;
  return rpc_id_matches(sandbox->id, filter->id)
         && rpc_labels_match(sandbox->config->labels, sandbox->config->n_labels,
                             filter->label_selector, filter->n_label_selector);
}

Runtime__V1__PodSandboxStats **
rpc_sandbox_stats_items(struct rpc_call *call, const Runtime__V1__PodSandboxStatsFilter *filter,
                        size_t *n_out)
{
  struct pod_manager *pods = call->daemon->pods;
  size_t n, n_containers;
  struct sandbox **sandboxes = pod_manager_list_sandboxes(pods, &n);
  struct container **containers = pod_manager_list_containers(pods, &n_containers);
  Runtime__V1__PodSandboxStats **items
      = arena_new_array(&call->arena, Runtime__V1__PodSandboxStats *, n + 1);

  *n_out = 0;
  for (size_t i = 0; i < n; i++)
    {
      struct error err = ERROR_INIT;
      Runtime__V1__PodSandboxStats *item = NULL;
      if (sandbox_matches(sandboxes[i], filter))
        item = rpc_sandbox_stats_message(call, sandboxes[i], containers, n_containers, &err);
      if (item)
        items[(*n_out)++] = item;
      error_clear(&err); /* not ready or gone: not listed */
    }
  pod_manager_release_containers(containers, n_containers);
  pod_manager_release_list(sandboxes, n);
  return items;
}

RPC_HANDLER(rpc_pod_sandbox_stats)
{
  const Runtime__V1__PodSandboxStatsRequest *stats_request
      = (const Runtime__V1__PodSandboxStatsRequest *)request;
  Runtime__V1__PodSandboxStatsResponse *reply
      = arena_new(&call->arena, Runtime__V1__PodSandboxStatsResponse);
  struct pod_manager *pods = call->daemon->pods;
  struct sandbox *sandbox = pod_manager_find_sandbox(pods, stats_request->pod_sandbox_id, err);
  struct container **containers;
  size_t n;

  if (sandbox == NULL)
    return -1;
  containers = pod_manager_list_containers(pods, &n);
  runtime__v1__pod_sandbox_stats_response__init(reply);
  reply->stats = rpc_sandbox_stats_message(call, sandbox, containers, n, err);
  pod_manager_release_containers(containers, n);
  sandbox_unref(sandbox);
  if (reply->stats == NULL)
    return -1;
  *response = &reply->base;
  return 0;
}

RPC_HANDLER(rpc_list_pod_sandbox_stats)
{
  const Runtime__V1__ListPodSandboxStatsRequest *list_request
      = (const Runtime__V1__ListPodSandboxStatsRequest *)request;
  Runtime__V1__ListPodSandboxStatsResponse *reply
      = arena_new(&call->arena, Runtime__V1__ListPodSandboxStatsResponse);

  runtime__v1__list_pod_sandbox_stats_response__init(reply);
  reply->stats = rpc_sandbox_stats_items(call, list_request->filter, &reply->n_stats);
  *response = &reply->base;
  return 0;
}
