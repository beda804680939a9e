#include "crid/rpc.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

struct handler_entry
{
  const char *name;
  rpc_handler handler;
  bool needs_ready;
};

struct stream_handler_entry
{
  const char *name;
  rpc_stream_handler handler;
};

/* The server-streaming methods; all wait for recovery. */
static const struct stream_handler_entry stream_handlers[] = {
  { "GetContainerEvents", rpc_get_container_events },
  { "StreamPodSandboxes", rpc_stream_pod_sandboxes },
  { "StreamContainers", rpc_stream_containers },
  { "StreamImages", rpc_stream_images },
  { "StreamContainerStats", rpc_stream_container_stats },
  { "StreamPodSandboxStats", rpc_stream_pod_sandbox_stats },
  { "StreamPodSandboxMetrics", rpc_stream_pod_sandbox_metrics },
};

/* The implemented methods; every other method of the proto is routed too
 * and answers UNIMPLEMENTED naming itself. */
static const struct handler_entry handlers[] = {
  { "Version", rpc_version, false },
  { "Status", rpc_status, false },
  { "RuntimeConfig", rpc_runtime_config, false },
  { "UpdateRuntimeConfig", rpc_update_runtime_config, false },
  { "RunPodSandbox", rpc_run_pod_sandbox, true },
  { "StopPodSandbox", rpc_stop_pod_sandbox, true },
  { "RemovePodSandbox", rpc_remove_pod_sandbox, true },
  { "PodSandboxStatus", rpc_pod_sandbox_status, true },
  { "ListPodSandbox", rpc_list_pod_sandbox, true },
  { "CreateContainer", rpc_create_container, true },
  { "StartContainer", rpc_start_container, true },
  { "StopContainer", rpc_stop_container, true },
  { "RemoveContainer", rpc_remove_container, true },
  { "ContainerStatus", rpc_container_status, true },
  { "ListContainers", rpc_list_containers, true },
  { "ExecSync", rpc_exec_sync, true },
  { "ReopenContainerLog", rpc_reopen_container_log, true },
  { "UpdateContainerResources", rpc_update_container_resources, true },
  { "ContainerStats", rpc_container_stats, true },
  { "ListContainerStats", rpc_list_container_stats, true },
  { "PodSandboxStats", rpc_pod_sandbox_stats, true },
  { "ListPodSandboxStats", rpc_list_pod_sandbox_stats, true },
  { "ListMetricDescriptors", rpc_list_metric_descriptors, false },
  { "ListPodSandboxMetrics", rpc_list_pod_sandbox_metrics, true },
  { "ListImages", rpc_list_images, true },
  { "ImageStatus", rpc_image_status, true },
  { "PullImage", rpc_pull_image, true },
  { "RemoveImage", rpc_remove_image, true },
  { "ImageFsInfo", rpc_image_fs_info, true },
  { "Exec", rpc_exec, true },
  { "Attach", rpc_attach, true },
  { "PortForward", rpc_port_forward, true },
  { "UpdatePodSandboxResources", rpc_update_pod_sandbox_resources, true },
};

static struct rpc_method *methods;
static size_t n_methods;

static const struct handler_entry *
find_handler(const char *name)
{
  for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++)
    if (strcmp(handlers[i].name, name) == 0)
      return &handlers[i];
  return NULL;
}

/* Kubelet polls these every few seconds; at info level they would drown
 * the calls that change something. */
static bool
is_polled(const char *name)
{
  return strcmp(name, "Version") == 0 || strcmp(name, "Status") == 0
         || strcmp(name, "RuntimeConfig") == 0 || strcmp(name, "ImageFsInfo") == 0
         || str_has_prefix(name, "List") || str_has_suffix(name, "Status")
         || str_has_suffix(name, "Stats");
}

static rpc_stream_handler
find_stream_handler(const char *name)
{
  for (size_t i = 0; i < sizeof stream_handlers / sizeof stream_handlers[0]; i++)
    if (strcmp(stream_handlers[i].name, name) == 0)
      return stream_handlers[i].handler;
  return NULL;
}

static void
add_service(const ProtobufCServiceDescriptor *service)
{
  methods = xrealloc(methods, (n_methods + service->n_methods) * sizeof *methods);
  for (unsigned i = 0; i < service->n_methods; i++)
    {
      const ProtobufCMethodDescriptor *descriptor = &service->methods[i];
      const struct handler_entry *entry = find_handler(descriptor->name);
      struct rpc_method *method = &methods[n_methods++];

      method->path = xasprintf("/%s/%s", service->name, descriptor->name);
      method->name = descriptor->name;
      method->descriptor = descriptor;
      method->handler = entry ? entry->handler : NULL;
      method->stream_handler = find_stream_handler(descriptor->name);
      method->needs_ready = entry ? entry->needs_ready : method->stream_handler != NULL;
      method->quiet = is_polled(descriptor->name);
    }
}

void
rpc_table_init(void)
{
  if (methods)
    return;
  add_service(&runtime__v1__runtime_service__descriptor);
  add_service(&runtime__v1__image_service__descriptor);
}

const struct rpc_method *
rpc_table_lookup(const char *path)
{
  for (size_t i = 0; i < n_methods; i++)
    if (strcmp(methods[i].path, path) == 0)
      return &methods[i];
  return NULL;
}

size_t
rpc_table_size(void)
{
  return n_methods;
}

const struct rpc_method *
rpc_table_at(size_t index)
{
  return index < n_methods ? &methods[index] : NULL;
}
