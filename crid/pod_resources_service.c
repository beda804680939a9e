/* UpdatePodSandboxResources (CRI 1.33): protobuf in, pod/pod_resources.c,
 * an empty reply out.  The kubelet has already applied the values to the
 * pod cgroup when it calls; crid records them (pod/pod_resources.h says
 * why it writes no cgroup). */
#include "crid/daemon.h"
#include "crid/rpc.h"
#include "crid/service_common.h"
#include "pod/pod_manager.h"
#include "pod/pod_resources.h"
#include "pod/sandbox.h"

RPC_HANDLER(rpc_update_pod_sandbox_resources)
{
  const Runtime__V1__UpdatePodSandboxResourcesRequest *update
      = (const Runtime__V1__UpdatePodSandboxResourcesRequest *)request;
  struct sandbox *sandbox
      = pod_manager_find_sandbox(call->daemon->pods, update->pod_sandbox_id, err);
  int ret;

  if (sandbox == NULL)
    return -1;
  ret = pod_resources_update_sandbox(call->daemon->pods, sandbox, update, err);
  sandbox_unref(sandbox);
  return rpc_reply_empty(call, ret, &runtime__v1__update_pod_sandbox_resources_response__descriptor,
                         response);
}
