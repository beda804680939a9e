/* RunPodSandbox, StopPodSandbox, RemovePodSandbox, PodSandboxStatus and
 * ListPodSandbox: protobuf in, pod/sandbox.c, protobuf out. */
#include "crid/daemon.h"
#include "crid/rpc.h"
#include "crid/service_common.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "pod/layout.h"
#include "pod/pod_manager.h"
#include "pod/pod_resources.h"
#include "pod/sandbox.h"
#include "pod/userns.h"

#include <string.h>

int
rpc_run_pod_sandbox(struct rpc_call *call, const ProtobufCMessage *request,
                    ProtobufCMessage **response, struct error *err)
{
  Runtime__V1__RunPodSandboxResponse *reply
      = arena_new(&call->arena, Runtime__V1__RunPodSandboxResponse);
  size_t len;
  cleanup_free uint8_t *bytes = rpc_pack_request(request, &len);
  struct sandbox *sandbox;

  if (sandbox_run(call->daemon->pods, bytes, len, &sandbox, err) < 0)
    return -1;
  runtime__v1__run_pod_sandbox_response__init(reply);
  reply->pod_sandbox_id = arena_strdup(&call->arena, sandbox->id);
  sandbox_unref(sandbox);
  *response = &reply->base;
  return 0;
}

int
rpc_stop_pod_sandbox(struct rpc_call *call, const ProtobufCMessage *request,
                     ProtobufCMessage **response, struct error *err)
{
  const ProtobufCMessageDescriptor *reply_type
      = &runtime__v1__stop_pod_sandbox_response__descriptor;
  const Runtime__V1__StopPodSandboxRequest *stop
      = (const Runtime__V1__StopPodSandboxRequest *)request;
  struct sandbox *sandbox = pod_manager_find_sandbox(call->daemon->pods, stop->pod_sandbox_id, err);
  int ret;

  if (sandbox == NULL)
    return rpc_reply_empty(call, rpc_gone_is_done(err), reply_type, response);
  ret = sandbox_stop(call->daemon->pods, sandbox, err);
  sandbox_unref(sandbox);
  return rpc_reply_empty(call, ret, reply_type, response);
}

int
rpc_remove_pod_sandbox(struct rpc_call *call, const ProtobufCMessage *request,
                       ProtobufCMessage **response, struct error *err)
{
  const ProtobufCMessageDescriptor *reply_type
      = &runtime__v1__remove_pod_sandbox_response__descriptor;
  const Runtime__V1__RemovePodSandboxRequest *remove
      = (const Runtime__V1__RemovePodSandboxRequest *)request;
  struct sandbox *sandbox
      = pod_manager_find_sandbox(call->daemon->pods, remove->pod_sandbox_id, err);
  int ret;

  if (sandbox == NULL)
    return rpc_reply_empty(call, rpc_gone_is_done(err), reply_type, response);
  ret = sandbox_remove(call->daemon->pods, sandbox, err);
  sandbox_unref(sandbox);
  return rpc_reply_empty(call, ret, reply_type, response);
}

static Runtime__V1__PodSandboxMetadata *
copy_metadata(struct rpc_call *call, const Runtime__V1__PodSandboxMetadata *source)
{
  Runtime__V1__PodSandboxMetadata *m = arena_new(&call->arena, Runtime__V1__PodSandboxMetadata);
  runtime__v1__pod_sandbox_metadata__init(m);
  m->name = arena_strdup(&call->arena, source->name);
  m->namespace_ = arena_strdup(&call->arena, source->namespace_);
  m->uid = arena_strdup(&call->arena, source->uid);
  m->attempt = source->attempt;
  return m;
}

static Runtime__V1__PodSandboxNetworkStatus *
network_status(struct rpc_call *call, const struct sandbox_snapshot *snapshot)
{
  const struct sandbox *sandbox = snapshot->sandbox;
  Runtime__V1__PodSandboxNetworkStatus *network
      = arena_new(&call->arena, Runtime__V1__PodSandboxNetworkStatus);
  size_t n = strv_length(sandbox->ips);

  runtime__v1__pod_sandbox_network_status__init(network);
  if (n == 0 || snapshot->state != SANDBOX_READY)
    return network;
  network->ip = arena_strdup(&call->arena, sandbox->ips[0]);
  network->n_additional_ips = n - 1;
  network->additional_ips = arena_new_array(&call->arena, Runtime__V1__PodIP *, n);
  for (size_t i = 1; i < n; i++)
    {
      Runtime__V1__PodIP *ip = arena_new(&call->arena, Runtime__V1__PodIP);
      runtime__v1__pod_ip__init(ip);
      ip->ip = arena_strdup(&call->arena, sandbox->ips[i]);
      network->additional_ips[i - 1] = ip;
    }
  return network;
}

static Runtime__V1__IDMapping **
id_mappings(struct rpc_call *call, const struct pod_id_range *ranges, size_t n)
{
  Runtime__V1__IDMapping **out = arena_new_array(&call->arena, Runtime__V1__IDMapping *, n);

  for (size_t i = 0; i < n; i++)
    {
      out[i] = arena_new(&call->arena, Runtime__V1__IDMapping);
      runtime__v1__idmapping__init(out[i]);
      out[i]->container_id = ranges[i].container_id;
      out[i]->host_id = ranges[i].host_id;
      out[i]->length = ranges[i].length;
    }
  return out;
}

/* The pod's user namespace: POD with its mappings, or the host's. */
static Runtime__V1__UserNamespace *
userns_status(struct rpc_call *call, const struct sandbox *sandbox)
{
  Runtime__V1__UserNamespace *out = arena_new(&call->arena, Runtime__V1__UserNamespace);
  struct pod_userns userns;
  struct error err = ERROR_INIT;

  runtime__v1__user_namespace__init(out);
  out->mode = RUNTIME__V1__NAMESPACE_MODE__NODE;
  /* Checked when the pod was made. */
  if (pod_userns_of_sandbox(sandbox->config, &userns, &err) < 0 || !userns.enabled)
    {
      error_clear(&err);
      return out;
    }
  out->mode = RUNTIME__V1__NAMESPACE_MODE__POD;
  out->n_uids = userns.n_uids;
  out->uids = id_mappings(call, userns.uids, userns.n_uids);
  out->n_gids = userns.n_gids;
  out->gids = id_mappings(call, userns.gids, userns.n_gids);
  return out;
}

static Runtime__V1__LinuxPodSandboxStatus *
linux_status(struct rpc_call *call, const struct sandbox *sandbox)
{
  Runtime__V1__LinuxPodSandboxStatus *status
      = arena_new(&call->arena, Runtime__V1__LinuxPodSandboxStatus);
  Runtime__V1__Namespace *namespaces = arena_new(&call->arena, Runtime__V1__Namespace);
  Runtime__V1__NamespaceOption *options = arena_new(&call->arena, Runtime__V1__NamespaceOption);

  runtime__v1__linux_pod_sandbox_status__init(status);
  runtime__v1__namespace__init(namespaces);
  runtime__v1__namespace_option__init(options);
  options->network = sandbox->host_network ? RUNTIME__V1__NAMESPACE_MODE__NODE
                                           : RUNTIME__V1__NAMESPACE_MODE__POD;
  options->ipc
      = sandbox->host_ipc ? RUNTIME__V1__NAMESPACE_MODE__NODE : RUNTIME__V1__NAMESPACE_MODE__POD;
  options->pid = sandbox->pid_mode;
  options->userns_options = userns_status(call, sandbox);
  namespaces->options = options;
  status->namespaces = namespaces;
  return status;
}

static char *
verbose_info(struct rpc_call *call, const struct sandbox_snapshot *snapshot)
{
  const struct sandbox *sandbox = snapshot->sandbox;
  struct pod_manager *pods = call->daemon->pods;
  struct json_writer *writer = json_writer_new(false);
  cleanup_free char *dir = layout_sandbox_dir(pods, sandbox->id);
  cleanup_free char *ns_dir = layout_namespace_dir(pods, sandbox->id);
  cleanup_free char *spec_path = xasprintf("%s/bundle/config.json", dir);

  json_begin_object(writer);
  json_write_key(writer, "pid");
  json_write_int(writer, snapshot->state == SANDBOX_READY ? sandbox->pause_pid : 0);
  json_write_key(writer, "netns");
  if (sandbox->host_network)
    json_write_string(writer, "");
  else
    json_write_string(writer, arena_printf(&call->arena, "%s/net", ns_dir));
  json_write_key(writer, "cgroupsPath");
  json_write_string(writer, sandbox->cgroups_path ? sandbox->cgroups_path : "");
  json_write_key(writer, "runtimeHandler");
  json_write_string(writer, sandbox->handler);
  json_write_key(writer, "network");
  json_write_string(writer, sandbox->network_name ? sandbox->network_name : "");
  pod_resources_write_info(writer, call->daemon->pods, sandbox);
  return rpc_verbose_info_finish(call, writer, spec_path);
}

Runtime__V1__PodSandboxStatus *
rpc_sandbox_status_message(struct rpc_call *call, const struct sandbox_snapshot *snapshot)
{
  const struct sandbox *sandbox = snapshot->sandbox;
  Runtime__V1__PodSandboxStatus *status = arena_new(&call->arena, Runtime__V1__PodSandboxStatus);

  runtime__v1__pod_sandbox_status__init(status);
  status->id = arena_strdup(&call->arena, sandbox->id);
  status->metadata = copy_metadata(call, sandbox->config->metadata);
  status->state = snapshot->state == SANDBOX_READY
                      ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
                      : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
  status->created_at = sandbox->created_at;
  status->network = network_status(call, snapshot);
  status->linux = linux_status(call, sandbox);
  status->n_labels = sandbox->config->n_labels;
  status->labels = rpc_copy_map(call, &runtime__v1__pod_sandbox_status__labels_entry__descriptor,
                                sandbox->config->labels, status->n_labels);
  status->n_annotations = sandbox->config->n_annotations;
  status->annotations
      = rpc_copy_map(call, &runtime__v1__pod_sandbox_status__annotations_entry__descriptor,
                     sandbox->config->annotations, status->n_annotations);
  status->runtime_handler = arena_strdup(&call->arena, sandbox->request->runtime_handler);
  return status;
}

int
rpc_pod_sandbox_status(struct rpc_call *call, const ProtobufCMessage *request,
                       ProtobufCMessage **response, struct error *err)
{
  const Runtime__V1__PodSandboxStatusRequest *status_request
      = (const Runtime__V1__PodSandboxStatusRequest *)request;
  Runtime__V1__PodSandboxStatusResponse *reply
      = arena_new(&call->arena, Runtime__V1__PodSandboxStatusResponse);
  struct sandbox *sandbox
      = pod_manager_find_sandbox(call->daemon->pods, status_request->pod_sandbox_id, err);

  struct sandbox_snapshot snapshot;
  int ret;

  if (sandbox == NULL)
    return -1;
  ret = sandbox_snapshot_take(call->daemon->pods, sandbox, &snapshot, err);
  sandbox_unref(sandbox);
  if (ret < 0)
    return error_set(err, ENOENT, "pod sandbox %s not found", status_request->pod_sandbox_id);
  runtime__v1__pod_sandbox_status_response__init(reply);
  reply->status = rpc_sandbox_status_message(call, &snapshot);
  if (status_request->verbose)
    {
      reply->n_info = 1;
      reply->info
          = rpc_info_map(call, &runtime__v1__pod_sandbox_status_response__info_entry__descriptor,
                         verbose_info(call, &snapshot));
    }
  sandbox_snapshot_clear(&snapshot);
  reply->timestamp = time_realtime_ns();
  *response = &reply->base;
  return 0;
}

static bool
filter_matches(const struct sandbox_snapshot *snapshot, const Runtime__V1__PodSandboxFilter *filter)
{
  const struct sandbox *sandbox = snapshot->sandbox;

  if (filter == NULL)
    return true;
  if (!rpc_id_matches(sandbox->id, filter->id))
    return false;
  if (filter->state && (int)filter->state->state != (int)snapshot->state)
    return false;
  return rpc_labels_match(sandbox->config->labels, sandbox->config->n_labels,
                          filter->label_selector, filter->n_label_selector);
}

static Runtime__V1__PodSandbox *
list_item(struct rpc_call *call, const struct sandbox_snapshot *snapshot)
{
  Runtime__V1__PodSandbox *item = arena_new(&call->arena, Runtime__V1__PodSandbox);
  const struct sandbox *sandbox = snapshot->sandbox;

  runtime__v1__pod_sandbox__init(item);
  item->id = arena_strdup(&call->arena, sandbox->id);
  item->metadata = copy_metadata(call, sandbox->config->metadata);
  item->state = snapshot->state == SANDBOX_READY ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
                                                 : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
  item->created_at = sandbox->created_at;
  item->n_labels = sandbox->config->n_labels;
  item->labels = rpc_copy_map(call, &runtime__v1__pod_sandbox__labels_entry__descriptor,
                              sandbox->config->labels, item->n_labels);
  item->n_annotations = sandbox->config->n_annotations;
  item->annotations = rpc_copy_map(call, &runtime__v1__pod_sandbox__annotations_entry__descriptor,
                                   sandbox->config->annotations, item->n_annotations);
  item->runtime_handler = arena_strdup(&call->arena, sandbox->request->runtime_handler);
  return item;
}

int
rpc_list_pod_sandbox(struct rpc_call *call, const ProtobufCMessage *request,
                     ProtobufCMessage **response, struct error *err)
{
  const Runtime__V1__ListPodSandboxRequest *list_request
      = (const Runtime__V1__ListPodSandboxRequest *)request;
  Runtime__V1__ListPodSandboxResponse *reply
      = arena_new(&call->arena, Runtime__V1__ListPodSandboxResponse);
  size_t n;
  struct sandbox **sandboxes = pod_manager_list_sandboxes(call->daemon->pods, &n);

  runtime__v1__list_pod_sandbox_response__init(reply);
  reply->items = arena_new_array(&call->arena, Runtime__V1__PodSandbox *, n + 1);
  for (size_t i = 0; i < n; i++)
    {
      struct sandbox_snapshot snapshot;
      struct error gone = ERROR_INIT;
      if (sandbox_snapshot_take(call->daemon->pods, sandboxes[i], &snapshot, &gone) < 0)
        {
          error_clear(&gone);
          continue;
        }
      if (filter_matches(&snapshot, list_request->filter))
        reply->items[reply->n_items++] = list_item(call, &snapshot);
      sandbox_snapshot_clear(&snapshot);
    }
  pod_manager_release_list(sandboxes, n);
  *response = &reply->base;
  return 0;
}
