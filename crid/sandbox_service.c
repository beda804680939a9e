/* RunPodSandbox, StopPodSandbox, RemovePodSandbox, PodSandboxStatus and
 * ListPodSandbox: protobuf in, pod/sandbox.c, protobuf out. */
#include "crid/daemon.h"
#include "crid/rpc.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "pod/pod_manager.h"
#include "pod/sandbox.h"

#include <errno.h>
#include <string.h>

#define SPEC_MAX_SIZE (4 * 1024 * 1024)

int
rpc_run_pod_sandbox(struct rpc_call *call, const ProtobufCMessage *request,
                    ProtobufCMessage **response, struct error *err)
{
  Runtime__V1__RunPodSandboxResponse *reply
      = arena_new(&call->arena, Runtime__V1__RunPodSandboxResponse);
  size_t len = protobuf_c_message_get_packed_size(request);
  cleanup_free uint8_t *bytes = xmalloc(len);
  struct sandbox *sandbox;

  /* Re-packed from the decoded request: the same fields, so labels and
   * annotations come back byte for byte. */
  protobuf_c_message_pack(request, bytes);
  if (sandbox_run(call->daemon->pods, bytes, len, &sandbox, err) < 0)
    return -1;
  runtime__v1__run_pod_sandbox_response__init(reply);
  reply->pod_sandbox_id = arena_strdup(&call->arena, sandbox->id);
  sandbox_unref(sandbox);
  *response = &reply->base;
  return 0;
}

/* A missing sandbox is fine for the idempotent calls. */
static struct sandbox *
find_or_absent(struct rpc_call *call, const char *id, bool *absent, struct error *err)
{
  struct sandbox *sandbox = pod_manager_find_sandbox(call->daemon->pods, id, err);
  *absent = sandbox == NULL && err->code == ENOENT;
  if (*absent)
    error_clear(err);
  return sandbox;
}

int
rpc_stop_pod_sandbox(struct rpc_call *call, const ProtobufCMessage *request,
                     ProtobufCMessage **response, struct error *err)
{
  const Runtime__V1__StopPodSandboxRequest *stop
      = (const Runtime__V1__StopPodSandboxRequest *)request;
  Runtime__V1__StopPodSandboxResponse *reply
      = arena_new(&call->arena, Runtime__V1__StopPodSandboxResponse);
  bool absent;
  struct sandbox *sandbox = find_or_absent(call, stop->pod_sandbox_id, &absent, err);
  int ret;

  if (sandbox == NULL && !absent)
    return -1;
  if (sandbox)
    {
      ret = sandbox_stop(call->daemon->pods, sandbox, err);
      sandbox_unref(sandbox);
      if (ret < 0)
        return -1;
    }
  runtime__v1__stop_pod_sandbox_response__init(reply);
  *response = &reply->base;
  return 0;
}

int
rpc_remove_pod_sandbox(struct rpc_call *call, const ProtobufCMessage *request,
                       ProtobufCMessage **response, struct error *err)
{
  const Runtime__V1__RemovePodSandboxRequest *remove
      = (const Runtime__V1__RemovePodSandboxRequest *)request;
  Runtime__V1__RemovePodSandboxResponse *reply
      = arena_new(&call->arena, Runtime__V1__RemovePodSandboxResponse);
  bool absent;
  struct sandbox *sandbox = find_or_absent(call, remove->pod_sandbox_id, &absent, err);
  int ret;

  if (sandbox == NULL && !absent)
    return -1;
  if (sandbox)
    {
      ret = sandbox_remove(call->daemon->pods, sandbox, err);
      sandbox_unref(sandbox);
      if (ret < 0)
        return -1;
    }
  runtime__v1__remove_pod_sandbox_response__init(reply);
  *response = &reply->base;
  return 0;
}

/* Map entries are retyped (each message has its own entry type with the
 * same layout) and copied into the arena: the sandbox may go away before
 * the reply is packed. */
#define COPY_MAP(call, source, n_source, entry_type, entry_init, out, n_out)                       \
  do                                                                                               \
    {                                                                                              \
      (n_out) = (n_source);                                                                        \
      (out) = arena_new_array(&(call)->arena, entry_type *, (n_source) + 1);                       \
      for (size_t i_ = 0; i_ < (n_source); i_++)                                                   \
        {                                                                                          \
          entry_type *entry_ = arena_new(&(call)->arena, entry_type);                              \
          entry_init(entry_);                                                                      \
          entry_->key = arena_strdup(&(call)->arena, (source)[i_]->key);                           \
          entry_->value = arena_strdup(&(call)->arena, (source)[i_]->value);                       \
          (out)[i_] = entry_;                                                                      \
        }                                                                                          \
    }                                                                                              \
  while (0)

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
network_status(struct rpc_call *call, const struct sandbox *sandbox)
{
  Runtime__V1__PodSandboxNetworkStatus *network
      = arena_new(&call->arena, Runtime__V1__PodSandboxNetworkStatus);
  size_t n = strv_length(sandbox->ips);

  runtime__v1__pod_sandbox_network_status__init(network);
  if (n == 0 || sandbox->state != SANDBOX_READY)
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
  namespaces->options = options;
  status->namespaces = namespaces;
  return status;
}

static char *
verbose_info(struct rpc_call *call, const struct sandbox *sandbox)
{
  struct pod_manager *pods = call->daemon->pods;
  struct json_writer *writer = json_writer_new(false);
  cleanup_free char *dir = sandbox_dir(pods, sandbox->id);
  cleanup_free char *ns_dir = sandbox_namespace_dir(pods, sandbox->id);
  cleanup_free char *spec_path = xasprintf("%s/bundle/config.json", dir);
  cleanup_free char *spec_text = NULL;
  struct error ignored = ERROR_INIT;
  size_t spec_len = 0;
  cleanup_json struct json_value *spec = NULL;

  if (read_file(spec_path, SPEC_MAX_SIZE, &spec_text, &spec_len, &ignored) == 0)
    spec = json_parse(spec_text, spec_len, &ignored);
  error_clear(&ignored);
  json_begin_object(writer);
  json_write_key(writer, "pid");
  json_write_int(writer, sandbox->state == SANDBOX_READY ? sandbox->pause_pid : 0);
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
  json_write_key(writer, "runtimeSpec");
  json_write_value(writer, spec);
  json_end_object(writer);
  return arena_adopt(&call->arena, json_writer_finish(writer, NULL));
}

int
rpc_pod_sandbox_status(struct rpc_call *call, const ProtobufCMessage *request,
                       ProtobufCMessage **response, struct error *err)
{
  const Runtime__V1__PodSandboxStatusRequest *status_request
      = (const Runtime__V1__PodSandboxStatusRequest *)request;
  Runtime__V1__PodSandboxStatusResponse *reply
      = arena_new(&call->arena, Runtime__V1__PodSandboxStatusResponse);
  Runtime__V1__PodSandboxStatus *status = arena_new(&call->arena, Runtime__V1__PodSandboxStatus);
  struct sandbox *sandbox
      = pod_manager_find_sandbox(call->daemon->pods, status_request->pod_sandbox_id, err);

  if (sandbox == NULL)
    return -1;
  sandbox_refresh(call->daemon->pods, sandbox);
  runtime__v1__pod_sandbox_status_response__init(reply);
  runtime__v1__pod_sandbox_status__init(status);
  pthread_mutex_lock(&sandbox->lock);
  status->id = arena_strdup(&call->arena, sandbox->id);
  status->metadata = copy_metadata(call, sandbox->config->metadata);
  status->state = sandbox->state == SANDBOX_READY
                      ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
                      : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
  status->created_at = sandbox->created_at;
  status->network = network_status(call, sandbox);
  status->linux = linux_status(call, sandbox);
  COPY_MAP(call, sandbox->config->labels, sandbox->config->n_labels,
           Runtime__V1__PodSandboxStatus__LabelsEntry,
           runtime__v1__pod_sandbox_status__labels_entry__init, status->labels, status->n_labels);
  COPY_MAP(call, sandbox->config->annotations, sandbox->config->n_annotations,
           Runtime__V1__PodSandboxStatus__AnnotationsEntry,
           runtime__v1__pod_sandbox_status__annotations_entry__init, status->annotations,
           status->n_annotations);
  status->runtime_handler = arena_strdup(&call->arena, sandbox->request->runtime_handler);
  if (status_request->verbose)
    {
      Runtime__V1__PodSandboxStatusResponse__InfoEntry *entry
          = arena_new(&call->arena, Runtime__V1__PodSandboxStatusResponse__InfoEntry);
      runtime__v1__pod_sandbox_status_response__info_entry__init(entry);
      entry->key = (char *)"info";
      entry->value = verbose_info(call, sandbox);
      reply->n_info = 1;
      reply->info
          = arena_new_array(&call->arena, Runtime__V1__PodSandboxStatusResponse__InfoEntry *, 1);
      reply->info[0] = entry;
    }
  pthread_mutex_unlock(&sandbox->lock);
  sandbox_unref(sandbox);
  reply->status = status;
  reply->timestamp = time_realtime_ns();
  *response = &reply->base;
  return 0;
}

static bool
labels_match(const struct sandbox *sandbox, const Runtime__V1__PodSandboxFilter *filter)
{
  for (size_t i = 0; i < filter->n_label_selector; i++)
    {
      bool found = false;
      for (size_t j = 0; j < sandbox->config->n_labels && !found; j++)
        found = strcmp(sandbox->config->labels[j]->key, filter->label_selector[i]->key) == 0
                && strcmp(sandbox->config->labels[j]->value, filter->label_selector[i]->value) == 0;
      if (!found)
        return false;
    }
  return true;
}

static bool
filter_matches(const struct sandbox *sandbox, const Runtime__V1__PodSandboxFilter *filter)
{
  if (filter == NULL)
    return true;
  if (filter->id[0] && strncmp(sandbox->id, filter->id, strlen(filter->id)) != 0)
    return false;
  if (filter->state && (int)filter->state->state != (int)sandbox->state)
    return false;
  return labels_match(sandbox, filter);
}

static Runtime__V1__PodSandbox *
list_item(struct rpc_call *call, const struct sandbox *sandbox)
{
  Runtime__V1__PodSandbox *item = arena_new(&call->arena, Runtime__V1__PodSandbox);

  runtime__v1__pod_sandbox__init(item);
  item->id = arena_strdup(&call->arena, sandbox->id);
  item->metadata = copy_metadata(call, sandbox->config->metadata);
  item->state = sandbox->state == SANDBOX_READY ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
                                                : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
  item->created_at = sandbox->created_at;
  COPY_MAP(call, sandbox->config->labels, sandbox->config->n_labels,
           Runtime__V1__PodSandbox__LabelsEntry, runtime__v1__pod_sandbox__labels_entry__init,
           item->labels, item->n_labels);
  COPY_MAP(call, sandbox->config->annotations, sandbox->config->n_annotations,
           Runtime__V1__PodSandbox__AnnotationsEntry,
           runtime__v1__pod_sandbox__annotations_entry__init, item->annotations,
           item->n_annotations);
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
      sandbox_refresh(call->daemon->pods, sandboxes[i]);
      pthread_mutex_lock(&sandboxes[i]->lock);
      if (!sandboxes[i]->removed && filter_matches(sandboxes[i], list_request->filter))
        reply->items[reply->n_items++] = list_item(call, sandboxes[i]);
      pthread_mutex_unlock(&sandboxes[i]->lock);
    }
  pod_manager_release_list(sandboxes, n);
  *response = &reply->base;
  return 0;
}
