/* CreateContainer, StartContainer, StopContainer, RemoveContainer,
 * ContainerStatus, ListContainers, ExecSync, ReopenContainerLog and
 * UpdateContainerResources: protobuf in, pod/container.c, protobuf out. */
#include "crid/daemon.h"
#include "crid/rpc.h"
#include "crid/service_common.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "pod/layout.h"
#include "pod/container.h"
#include "pod/exec_sync.h"
#include "pod/pod_manager.h"

#include <errno.h>
#include <string.h>

/* ---- Helpers ---------------------------------------------------------- */

static void *
arena_allocator_alloc(void *data, size_t size)
{
  return arena_alloc(data, size ? size : 1);
}

static void
arena_allocator_free(void *data, void *pointer)
{
  (void)data;
  (void)pointer; /* released with the arena */
}

/* A deep copy of a message into the call's arena: the container may be
 * removed and freed before the reply is packed. */
static void *
arena_copy_message(struct rpc_call *call, const ProtobufCMessage *message)
{
  ProtobufCAllocator allocator = { arena_allocator_alloc, arena_allocator_free, &call->arena };
  size_t len;
  cleanup_free uint8_t *bytes = NULL;

  if (message == NULL)
    return NULL;
  len = protobuf_c_message_get_packed_size(message);
  bytes = xmalloc(len ? len : 1);
  protobuf_c_message_pack(message, bytes);
  return protobuf_c_message_unpack(message->descriptor, &allocator, len, bytes);
}

static struct container *
find_container(struct rpc_call *call, const char *id, struct error *err)
{
  return pod_manager_find_container(call->daemon->pods, id, err);
}

static Runtime__V1__ContainerMetadata *
copy_metadata(struct rpc_call *call, const Runtime__V1__ContainerMetadata *source)
{
  Runtime__V1__ContainerMetadata *m = arena_new(&call->arena, Runtime__V1__ContainerMetadata);
  runtime__v1__container_metadata__init(m);
  m->name = arena_strdup(&call->arena, source->name);
  m->attempt = source->attempt;
  return m;
}

/* The image as the user named it, with the request's annotations. */
static Runtime__V1__ImageSpec *
image_spec(struct rpc_call *call, const struct container *container)
{
  Runtime__V1__ImageSpec *spec = arena_copy_message(call, &container->config->image->base);
  spec->image = arena_strdup(&call->arena, container->image_name ? container->image_name : "");
  return spec;
}

/* ---- Create, start, stop, remove -------------------------------------- */

RPC_HANDLER(rpc_create_container)
{
  Runtime__V1__CreateContainerResponse *reply
      = arena_new(&call->arena, Runtime__V1__CreateContainerResponse);
  size_t len;
  cleanup_free uint8_t *bytes = rpc_pack_request(request, &len);
  struct container *container;

  if (container_create(call->daemon->pods, bytes, len, &container, err) < 0)
    return -1;
  runtime__v1__create_container_response__init(reply);
  reply->container_id = arena_strdup(&call->arena, container->id);
  container_unref(container);
  *response = &reply->base;
  return 0;
}

RPC_HANDLER(rpc_start_container)
{
  const Runtime__V1__StartContainerRequest *start
      = (const Runtime__V1__StartContainerRequest *)request;
  struct container *container = find_container(call, start->container_id, err);
  int ret;

  if (container == NULL)
    return -1;
  ret = container_start(call->daemon->pods, container, err);
  container_unref(container);
  return rpc_reply_empty(call, ret, &runtime__v1__start_container_response__descriptor, response);
}

RPC_HANDLER(rpc_stop_container)
{
  const ProtobufCMessageDescriptor *reply_type = &runtime__v1__stop_container_response__descriptor;
  const Runtime__V1__StopContainerRequest *stop
      = (const Runtime__V1__StopContainerRequest *)request;
  struct container *container = find_container(call, stop->container_id, err);
  int ret;

  if (container == NULL)
    return rpc_reply_empty(call, rpc_gone_is_done(err), reply_type, response);
  ret = container_stop(call->daemon->pods, container, stop->timeout < 0 ? 0 : stop->timeout, err);
  container_unref(container);
  return rpc_reply_empty(call, ret, reply_type, response);
}

RPC_HANDLER(rpc_remove_container)
{
  const ProtobufCMessageDescriptor *reply_type
      = &runtime__v1__remove_container_response__descriptor;
  const Runtime__V1__RemoveContainerRequest *remove
      = (const Runtime__V1__RemoveContainerRequest *)request;
  struct container *container = find_container(call, remove->container_id, err);
  int ret;

  if (container == NULL)
    return rpc_reply_empty(call, rpc_gone_is_done(err), reply_type, response);
  ret = container_remove(call->daemon->pods, container, err);
  container_unref(container);
  return rpc_reply_empty(call, ret, reply_type, response);
}

/* ---- Status and list -------------------------------------------------- */

static const char *
reason_of(const struct container_snapshot *snapshot)
{
  if (snapshot->state != CONTAINER_EXITED)
    return "";
  if (snapshot->oom_killed)
    return "OOMKilled";
  return snapshot->exit_code == 0 ? "Completed" : "Error";
}

/* The request's mounts; an image volume also says which image it holds,
 * by id, in image.image_ref (what PullImage answered for it). */
static Runtime__V1__Mount **
copy_mounts(struct rpc_call *call, const struct container *container, size_t *n)
{
  const Runtime__V1__ContainerConfig *config = container->config;
  Runtime__V1__Mount **mounts
      = arena_new_array(&call->arena, Runtime__V1__Mount *, config->n_mounts + 1);

  for (size_t i = 0; i < config->n_mounts; i++)
    {
      const struct image_volume *volume = image_volumes_find(&container->image_volumes, i);

      mounts[i] = arena_copy_message(call, &config->mounts[i]->base);
      if (volume && mounts[i]->image)
        mounts[i]->image->image_ref = arena_strdup(&call->arena, volume->image_id);
    }
  *n = config->n_mounts;
  return mounts;
}

/* What is in force: an update's resources replace the request's. */
static Runtime__V1__ContainerResources *
copy_resources(struct rpc_call *call, const struct container_snapshot *snapshot)
{
  const Runtime__V1__LinuxContainerResources *linux_resources
      = container_snapshot_resources(snapshot);
  Runtime__V1__ContainerResources *resources;

  if (linux_resources == NULL)
    return NULL;
  resources = arena_new(&call->arena, Runtime__V1__ContainerResources);
  runtime__v1__container_resources__init(resources);
  resources->linux = arena_copy_message(call, &linux_resources->base);
  return resources;
}

/* The identity config.json gives the process (and every exec), as
 * containerd and CRI-O report it: the primary gid is among the groups.
 * None when crid does not know it (a record damaged or half made). */
static Runtime__V1__ContainerUser *
copy_user(struct rpc_call *call, const struct container *container)
{
  const struct container_user *known = &container->user;
  Runtime__V1__ContainerUser *user;
  Runtime__V1__LinuxContainerUser *linux_user;

  if (!known->known)
    return NULL;
  user = arena_new(&call->arena, Runtime__V1__ContainerUser);
  linux_user = arena_new(&call->arena, Runtime__V1__LinuxContainerUser);
  runtime__v1__container_user__init(user);
  runtime__v1__linux_container_user__init(linux_user);
  linux_user->uid = known->uid;
  linux_user->gid = known->gid;
  linux_user->n_supplemental_groups = known->n_groups;
  linux_user->supplemental_groups = arena_new_array(&call->arena, int64_t, known->n_groups + 1);
  for (size_t i = 0; i < known->n_groups; i++)
    linux_user->supplemental_groups[i] = known->groups[i];
  user->linux = linux_user;
  return user;
}

static char *
verbose_info(struct rpc_call *call, const struct container_snapshot *snapshot)
{
  const struct container *container = snapshot->container;
  struct pod_manager *pods = call->daemon->pods;
  struct json_writer *writer = json_writer_new(false);
  cleanup_free char *dir = layout_container_dir(pods, container->id);
  cleanup_free char *spec_path = xasprintf("%s/config.json", dir);

  json_begin_object(writer);
  json_write_key(writer, "pid");
  json_write_int(writer, snapshot->state == CONTAINER_RUNNING ? snapshot->pid : 0);
  json_write_key(writer, "sandboxID");
  json_write_string(writer, container->sandbox_id);
  json_write_key(writer, "runtimeHandler");
  json_write_string(writer, container->handler ? container->handler : "");
  json_write_key(writer, "cgroupsPath");
  json_write_string(writer, container->cgroups_path ? container->cgroups_path : "");
  json_write_key(writer, "bundle");
  json_write_string(writer, dir);
  return rpc_verbose_info_finish(call, writer, spec_path);
}

Runtime__V1__ContainerStatus *
rpc_container_status_message(struct rpc_call *call, const struct container_snapshot *snapshot)
{
  Runtime__V1__ContainerStatus *status = arena_new(&call->arena, Runtime__V1__ContainerStatus);
  const struct container *container = snapshot->container;
  const Runtime__V1__ContainerConfig *config = container->config;

  runtime__v1__container_status__init(status);
  status->id = arena_strdup(&call->arena, container->id);
  status->metadata = copy_metadata(call, config->metadata);
  status->state = (Runtime__V1__ContainerState)snapshot->state;
  status->created_at = snapshot->created_at;
  status->started_at = snapshot->started_at;
  status->finished_at = snapshot->state == CONTAINER_EXITED ? snapshot->finished_at : 0;
  status->exit_code = snapshot->state == CONTAINER_EXITED ? snapshot->exit_code : 0;
  status->image = image_spec(call, container);
  status->image_ref = arena_strdup(&call->arena, container->image_id ? container->image_id : "");
  status->image_id = status->image_ref;
  status->reason = (char *)reason_of(snapshot);
  if (snapshot->state == CONTAINER_EXITED && snapshot->message)
    status->message = arena_strdup(&call->arena, snapshot->message);
  status->n_labels = config->n_labels;
  status->labels = rpc_copy_map(call, &runtime__v1__container_status__labels_entry__descriptor,
                                config->labels, config->n_labels);
  status->n_annotations = config->n_annotations;
  status->annotations
      = rpc_copy_map(call, &runtime__v1__container_status__annotations_entry__descriptor,
                     config->annotations, config->n_annotations);
  status->mounts = copy_mounts(call, container, &status->n_mounts);
  status->log_path = arena_strdup(&call->arena, container->log_path ? container->log_path : "");
  status->resources = copy_resources(call, snapshot);
  status->stop_signal = config->stop_signal;
  status->user = copy_user(call, container);
  return status;
}

RPC_HANDLER(rpc_container_status)
{
  const Runtime__V1__ContainerStatusRequest *status_request
      = (const Runtime__V1__ContainerStatusRequest *)request;
  Runtime__V1__ContainerStatusResponse *reply
      = arena_new(&call->arena, Runtime__V1__ContainerStatusResponse);
  struct container *container = find_container(call, status_request->container_id, err);

  struct container_snapshot snapshot;
  int ret;

  if (container == NULL)
    return -1;
  ret = container_snapshot_take(call->daemon->pods, container, &snapshot, err);
  container_unref(container);
  if (ret < 0)
    return error_set(err, ENOENT, "container %s not found", status_request->container_id);
  runtime__v1__container_status_response__init(reply);
  reply->status = rpc_container_status_message(call, &snapshot);
  if (status_request->verbose)
    {
      reply->n_info = 1;
      reply->info
          = rpc_info_map(call, &runtime__v1__container_status_response__info_entry__descriptor,
                         verbose_info(call, &snapshot));
    }
  container_snapshot_clear(&snapshot);
  *response = &reply->base;
  return 0;
}

static bool
filter_matches(const struct container_snapshot *snapshot,
               const Runtime__V1__ContainerFilter *filter)
{
  const struct container *container = snapshot->container;

  if (filter == NULL)
    return true;
  if (!rpc_id_matches(container->id, filter->id)
      || !rpc_id_matches(container->sandbox_id, filter->pod_sandbox_id))
    return false;
  if (filter->state && (int)filter->state->state != (int)snapshot->state)
    return false;
  return rpc_labels_match(container->config->labels, container->config->n_labels,
                          filter->label_selector, filter->n_label_selector);
}

static Runtime__V1__Container *
list_item(struct rpc_call *call, const struct container_snapshot *snapshot)
{
  Runtime__V1__Container *item = arena_new(&call->arena, Runtime__V1__Container);
  const struct container *container = snapshot->container;
  const Runtime__V1__ContainerConfig *config = container->config;

  runtime__v1__container__init(item);
  item->id = arena_strdup(&call->arena, container->id);
  item->pod_sandbox_id = arena_strdup(&call->arena, container->sandbox_id);
  item->metadata = copy_metadata(call, config->metadata);
  item->image = image_spec(call, container);
  item->image_ref = arena_strdup(&call->arena, container->image_id ? container->image_id : "");
  item->image_id = item->image_ref;
  item->state = (Runtime__V1__ContainerState)snapshot->state;
  item->created_at = snapshot->created_at;
  item->n_labels = config->n_labels;
  item->labels = rpc_copy_map(call, &runtime__v1__container__labels_entry__descriptor,
                              config->labels, config->n_labels);
  item->n_annotations = config->n_annotations;
  item->annotations = rpc_copy_map(call, &runtime__v1__container__annotations_entry__descriptor,
                                   config->annotations, config->n_annotations);
  return item;
}

RPC_HANDLER(rpc_list_containers)
{
  const Runtime__V1__ListContainersRequest *list_request
      = (const Runtime__V1__ListContainersRequest *)request;
  Runtime__V1__ListContainersResponse *reply
      = arena_new(&call->arena, Runtime__V1__ListContainersResponse);
  size_t n;
  struct container **containers = pod_manager_list_containers(call->daemon->pods, &n);

  runtime__v1__list_containers_response__init(reply);
  reply->containers = arena_new_array(&call->arena, Runtime__V1__Container *, n + 1);
  for (size_t i = 0; i < n; i++)
    {
      struct container_snapshot snapshot;
      struct error gone = ERROR_INIT;
      if (container_snapshot_take(call->daemon->pods, containers[i], &snapshot, &gone) < 0)
        {
          error_clear(&gone);
          continue;
        }
      if (filter_matches(&snapshot, list_request->filter))
        reply->containers[reply->n_containers++] = list_item(call, &snapshot);
      container_snapshot_clear(&snapshot);
    }
  pod_manager_release_containers(containers, n);
  *response = &reply->base;
  return 0;
}

/* ---- Exec, logs, resources -------------------------------------------- */

/* Each stream is captured up to 16 MiB, but one gRPC message may not
 * exceed 16 MiB either (kubelet's limit too): the reply is trimmed to fit,
 * stdout's tail first, as more output would have been discarded anyway. */
#define EXEC_SYNC_MAX_REPLY (16 * 1024 * 1024 - 1024)

static void
fit_reply(struct exec_sync_result *result)
{
  if (result->stderr_len > EXEC_SYNC_MAX_REPLY)
    result->stderr_len = EXEC_SYNC_MAX_REPLY;
  if (result->stdout_len + result->stderr_len > EXEC_SYNC_MAX_REPLY)
    result->stdout_len = EXEC_SYNC_MAX_REPLY - result->stderr_len;
}

RPC_HANDLER(rpc_exec_sync)
{
  const Runtime__V1__ExecSyncRequest *exec = (const Runtime__V1__ExecSyncRequest *)request;
  Runtime__V1__ExecSyncResponse *reply = arena_new(&call->arena, Runtime__V1__ExecSyncResponse);
  struct container *container = find_container(call, exec->container_id, err);
  cleanup_free char **cmd = NULL;
  struct exec_sync_result result;
  int ret;

  if (container == NULL)
    return -1;
  cmd = xcalloc(exec->n_cmd + 1, sizeof *cmd);
  for (size_t i = 0; i < exec->n_cmd; i++)
    cmd[i] = exec->cmd[i];
  ret = container_exec_sync(call->daemon->pods, container, cmd,
                            exec->timeout < 0 ? 0 : exec->timeout, &result, err);
  container_unref(container);
  if (ret < 0)
    return -1;
  fit_reply(&result);
  runtime__v1__exec_sync_response__init(reply);
  reply->stdout.data = arena_adopt(&call->arena, result.stdout_data);
  reply->stdout.len = result.stdout_len;
  reply->stderr.data = arena_adopt(&call->arena, result.stderr_data);
  reply->stderr.len = result.stderr_len;
  reply->exit_code = result.exit_code;
  *response = &reply->base;
  return 0;
}

RPC_HANDLER(rpc_reopen_container_log)
{
  const Runtime__V1__ReopenContainerLogRequest *reopen
      = (const Runtime__V1__ReopenContainerLogRequest *)request;
  struct container *container = find_container(call, reopen->container_id, err);
  int ret;

  if (container == NULL)
    return -1;
  ret = container_reopen_log(call->daemon->pods, container, err);
  container_unref(container);
  return rpc_reply_empty(call, ret, &runtime__v1__reopen_container_log_response__descriptor,
                         response);
}

RPC_HANDLER(rpc_update_container_resources)
{
  const Runtime__V1__UpdateContainerResourcesRequest *update
      = (const Runtime__V1__UpdateContainerResourcesRequest *)request;
  struct container *container = find_container(call, update->container_id, err);
  int ret;

  if (container == NULL)
    return -1;
  ret = container_update_resources(call->daemon->pods, container, update->linux, err);
  container_unref(container);
  return rpc_reply_empty(call, ret, &runtime__v1__update_container_resources_response__descriptor,
                         response);
}
