/* Version, Status, RuntimeConfig and UpdateRuntimeConfig: what the kubelet
 * asks about the runtime itself. */
#include "crid/daemon.h"
#include "crid/rpc.h"
#include "crid/stream/stream_server.h"
#include "version.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "netcni/cni_config.h"
#include "netcni/cni_watch.h"
#include "pod/cdi.h"
#include "pod/pod_manager.h"

#include <string.h>

#define CRI_VERSION "0.1.0"
#define CRI_API_VERSION "v1"

const char *
crid_runtime_version(void)
{
  return strcmp(CRID_COMMIT, "unknown") == 0 ? CRID_VERSION : CRID_VERSION "+" CRID_COMMIT;
}

int
rpc_version(struct rpc_call *call, const ProtobufCMessage *request, ProtobufCMessage **response,
            struct error *err)
{
  Runtime__V1__VersionResponse *reply = arena_new(&call->arena, Runtime__V1__VersionResponse);

  runtime__v1__version_response__init(reply);
  reply->version = (char *)CRI_VERSION;
  reply->runtime_name = (char *)"crid";
  reply->runtime_version = (char *)crid_runtime_version();
  reply->runtime_api_version = (char *)CRI_API_VERSION;
  *response = &reply->base;
  return 0;
}

static Runtime__V1__RuntimeCondition *
new_condition(struct rpc_call *call, const char *type, bool status, const char *reason,
              const char *message)
{
  Runtime__V1__RuntimeCondition *condition = arena_new(&call->arena, Runtime__V1__RuntimeCondition);
  runtime__v1__runtime_condition__init(condition);
  condition->type = (char *)type;
  condition->status = status;
  condition->reason = arena_strdup(&call->arena, reason);
  condition->message = arena_strdup(&call->arena, message);
  return condition;
}

static Runtime__V1__RuntimeCondition *
network_condition_from_dir(struct rpc_call *call, const struct crid_config *config)
{
  struct cni_network_list *network = NULL;
  struct error err = ERROR_INIT;
  Runtime__V1__RuntimeCondition *condition;

  if (cni_config_load_default(config->network_dir, &network, &err) < 0)
    {
      condition = new_condition(call, "NetworkReady", false, "NetworkPluginNotReady",
                                error_message(&err));
      error_clear(&err);
      return condition;
    }
  if (network == NULL)
    return new_condition(call, "NetworkReady", false, "NetworkPluginNotReady",
                         arena_printf(&call->arena,
                                      "Network plugin returns error: no CNI "
                                      "configuration file in %s",
                                      config->network_dir));
  cni_network_list_free(network);
  return new_condition(call, "NetworkReady", true, "", "");
}

/* From the watch of the config directory; read from the directory itself
 * only when it is not watched. */
static Runtime__V1__RuntimeCondition *
network_condition(struct rpc_call *call)
{
  struct crid_config *config = &call->daemon->config;
  cleanup_free char *name = NULL;
  cleanup_free char *message = NULL;
  enum cni_watch_state state = CNI_WATCH_LOST;

  if (call->daemon->network_watch)
    state = cni_watch_state(call->daemon->network_watch, &name, &message);
  if (state == CNI_WATCH_READY)
    return new_condition(call, "NetworkReady", true, "", "");
  if (state == CNI_WATCH_NOT_READY)
    return new_condition(call, "NetworkReady", false, "NetworkPluginNotReady", message);
  return network_condition_from_dir(call, config);
}

static Runtime__V1__RuntimeHandler *
new_handler(struct rpc_call *call, const char *name)
{
  const struct pod_runtime_handler *known
      = call->daemon->pods ? pod_manager_handler(call->daemon->pods, name) : NULL;
  Runtime__V1__RuntimeHandler *handler = arena_new(&call->arena, Runtime__V1__RuntimeHandler);
  Runtime__V1__RuntimeHandlerFeatures *features
      = arena_new(&call->arena, Runtime__V1__RuntimeHandlerFeatures);
  runtime__v1__runtime_handler__init(handler);
  runtime__v1__runtime_handler_features__init(features);
  handler->name = arena_strdup(&call->arena, name);
  handler->features = features;
  features->recursive_read_only_mounts = known && known->features.recursive_read_only;
  features->user_namespaces = known && known->features.user_namespaces;
  return handler;
}

static void
add_runtime_handlers(struct rpc_call *call, Runtime__V1__StatusResponse *reply)
{
  const struct crid_config *config = &call->daemon->config;

  /* "" stands for the default handler, as CRI-O lists it. */
  reply->n_runtime_handlers = config->n_runtimes + 1;
  reply->runtime_handlers
      = arena_new_array(&call->arena, Runtime__V1__RuntimeHandler *, config->n_runtimes + 1);
  reply->runtime_handlers[0] = new_handler(call, "");
  for (size_t i = 0; i < config->n_runtimes; i++)
    reply->runtime_handlers[i + 1] = new_handler(call, config->runtimes[i].name);
  reply->features = arena_new(&call->arena, Runtime__V1__RuntimeFeatures);
  runtime__v1__runtime_features__init(reply->features);
  /* pod/user.c honours Merge and Strict and ContainerStatus reports the
   * resulting groups: the kubelet admits Strict pods only then. */
  reply->features->supplemental_groups_policy = true;
}

static void
add_verbose_info(struct rpc_call *call, Runtime__V1__StatusResponse *reply)
{
  struct json_writer *writer = json_writer_new(false);
  Runtime__V1__StatusResponse__InfoEntry *entry
      = arena_new(&call->arena, Runtime__V1__StatusResponse__InfoEntry);

  pthread_mutex_lock(&call->daemon->lock);
  config_write_json(&call->daemon->config, writer);
  pthread_mutex_unlock(&call->daemon->lock);
  runtime__v1__status_response__info_entry__init(entry);
  entry->key = (char *)"config";
  entry->value = arena_adopt(&call->arena, json_writer_finish(writer, NULL));
  reply->info = arena_new_array(&call->arena, Runtime__V1__StatusResponse__InfoEntry *, 3);
  reply->info[reply->n_info++] = entry;
  /* CDI devices found, and the spec files that could not be read. */
  if (call->daemon->pods && call->daemon->pods->cdi)
    {
      Runtime__V1__StatusResponse__InfoEntry *cdi
          = arena_new(&call->arena, Runtime__V1__StatusResponse__InfoEntry);
      struct json_writer *cdi_writer = json_writer_new(false);
      runtime__v1__status_response__info_entry__init(cdi);
      cdi->key = (char *)"cdi";
      cdi_registry_write_json(call->daemon->pods->cdi, cdi_writer);
      cdi->value = arena_adopt(&call->arena, json_writer_finish(cdi_writer, NULL));
      reply->info[reply->n_info++] = cdi;
    }
  /* Where exec, attach and port-forward URLs point (with stream_port 0,
   * the port picked at start). */
  if (call->daemon->streams)
    {
      Runtime__V1__StatusResponse__InfoEntry *streaming
          = arena_new(&call->arena, Runtime__V1__StatusResponse__InfoEntry);
      runtime__v1__status_response__info_entry__init(streaming);
      streaming->key = (char *)"streamingServer";
      /* Info values are JSON: a string, which a URL needs no escapes in. */
      streaming->value = arena_adopt(
          &call->arena, xasprintf("\"%s\"", stream_server_base_url(call->daemon->streams)));
      reply->info[reply->n_info++] = streaming;
    }
}

int
rpc_status(struct rpc_call *call, const ProtobufCMessage *request, ProtobufCMessage **response,
           struct error *err)
{
  const Runtime__V1__StatusRequest *status_request = (const Runtime__V1__StatusRequest *)request;
  Runtime__V1__StatusResponse *reply = arena_new(&call->arena, Runtime__V1__StatusResponse);
  Runtime__V1__RuntimeStatus *status = arena_new(&call->arena, Runtime__V1__RuntimeStatus);

  runtime__v1__status_response__init(reply);
  runtime__v1__runtime_status__init(status);
  status->n_conditions = 2;
  status->conditions = arena_new_array(&call->arena, Runtime__V1__RuntimeCondition *, 2);
  status->conditions[0] = new_condition(call, "RuntimeReady", true, "", "");
  status->conditions[1] = network_condition(call);
  reply->status = status;
  add_runtime_handlers(call, reply);
  if (status_request->verbose)
    add_verbose_info(call, reply);
  *response = &reply->base;
  return 0;
}

int
rpc_runtime_config(struct rpc_call *call, const ProtobufCMessage *request,
                   ProtobufCMessage **response, struct error *err)
{
  Runtime__V1__RuntimeConfigResponse *reply
      = arena_new(&call->arena, Runtime__V1__RuntimeConfigResponse);
  Runtime__V1__LinuxRuntimeConfiguration *linux_config
      = arena_new(&call->arena, Runtime__V1__LinuxRuntimeConfiguration);

  runtime__v1__runtime_config_response__init(reply);
  runtime__v1__linux_runtime_configuration__init(linux_config);
  linux_config->cgroup_driver = strcmp(call->daemon->config.cgroup_manager, "systemd") == 0
                                    ? RUNTIME__V1__CGROUP_DRIVER__SYSTEMD
                                    : RUNTIME__V1__CGROUP_DRIVER__CGROUPFS;
  reply->linux = linux_config;
  *response = &reply->base;
  return 0;
}

int
rpc_update_runtime_config(struct rpc_call *call, const ProtobufCMessage *request,
                          ProtobufCMessage **response, struct error *err)
{
  const Runtime__V1__UpdateRuntimeConfigRequest *update
      = (const Runtime__V1__UpdateRuntimeConfigRequest *)request;
  Runtime__V1__UpdateRuntimeConfigResponse *reply
      = arena_new(&call->arena, Runtime__V1__UpdateRuntimeConfigResponse);
  const char *cidr = NULL;

  if (update->runtime_config && update->runtime_config->network_config)
    cidr = update->runtime_config->network_config->pod_cidr;
  if (cidr && cidr[0])
    {
      pthread_mutex_lock(&call->daemon->lock);
      if (call->daemon->pod_cidr == NULL || strcmp(call->daemon->pod_cidr, cidr) != 0)
        log_info("pod CIDR is now %s", cidr);
      free(call->daemon->pod_cidr);
      call->daemon->pod_cidr = xstrdup(cidr);
      pthread_mutex_unlock(&call->daemon->lock);
    }
  runtime__v1__update_runtime_config_response__init(reply);
  *response = &reply->base;
  return 0;
}
