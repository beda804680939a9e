/* Exec, Attach and PortForward: check the request against the container
 * or pod, store it with the streaming server and answer its one-time URL
 * (crid/stream/stream_server.h); the streams themselves flow on the HTTP
 * connection the client makes to that URL. */
#include "crid/daemon.h"
#include "crid/rpc.h"
#include "crid/stream/stream_server.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "pod/container.h"
#include "pod/pod_manager.h"
#include "pod/sandbox.h"

#include <errno.h>
#include <string.h>

static int
check_streams(bool tty, bool in, bool out, bool errs, struct error *err)
{
  if (tty && errs)
    return error_set(err, EINVAL, "tty and stderr cannot both be true");
  if (!in && !out && !errs)
    return error_set(err, EINVAL, "one of stdin, stdout, or stderr must be set");
  return 0;
}

/* The container must exist and run.  EBUSY (FailedPrecondition) when it
 * does not run. */
static int
check_container_running(struct rpc_call *call, const char *id, struct error *err)
{
  struct container *container = pod_manager_find_container(call->daemon->pods, id, err);
  struct container_snapshot snapshot;
  int ret;

  if (container == NULL)
    return -1;
  ret = container_snapshot_take(call->daemon->pods, container, &snapshot, err);
  container_unref(container);
  if (ret == 0 && snapshot.state != CONTAINER_RUNNING)
    ret = error_set(err, EBUSY, "container %s is not running", id);
  container_snapshot_clear(&snapshot);
  return ret;
}

static char *
url_for(struct rpc_call *call, struct stream_request *request, struct error *err)
{
  struct stream_server *streams = call->daemon->streams;

  if (streams == NULL)
    {
      stream_request_free(request);
      error_set(err, EAGAIN, "the streaming server is not running");
      return NULL;
    }
  return stream_server_url(streams, request, err);
}

RPC_HANDLER(rpc_exec)
{
  const Runtime__V1__ExecRequest *exec = (const Runtime__V1__ExecRequest *)request;
  Runtime__V1__ExecResponse *reply = arena_new(&call->arena, Runtime__V1__ExecResponse);
  struct stream_request *stream;
  char *url;

  if (exec->n_cmd == 0 || exec->cmd[0][0] == '\0')
    return error_set(err, EINVAL, "cmd must not be empty");
  if (check_streams(exec->tty, exec->stdin, exec->stdout, exec->stderr, err) < 0
      || check_container_running(call, exec->container_id, err) < 0)
    return -1;
  stream = xcalloc(1, sizeof *stream);
  stream->kind = STREAM_EXEC;
  stream->container_id = xstrdup(exec->container_id);
  stream->cmd = xcalloc(exec->n_cmd + 1, sizeof *stream->cmd);
  for (size_t i = 0; i < exec->n_cmd; i++)
    stream->cmd[i] = xstrdup(exec->cmd[i]);
  stream->tty = exec->tty;
  stream->stdin = exec->stdin;
  stream->stdout = exec->stdout;
  stream->stderr = exec->stderr;
  url = url_for(call, stream, err);
  if (url == NULL)
    return -1;
  runtime__v1__exec_response__init(reply);
  reply->url = arena_adopt(&call->arena, url);
  *response = &reply->base;
  return 0;
}

RPC_HANDLER(rpc_attach)
{
  const Runtime__V1__AttachRequest *attach = (const Runtime__V1__AttachRequest *)request;
  Runtime__V1__AttachResponse *reply = arena_new(&call->arena, Runtime__V1__AttachResponse);
  struct stream_request *stream;
  char *url;

  if (check_streams(attach->tty, attach->stdin, attach->stdout, attach->stderr, err) < 0
      || check_container_running(call, attach->container_id, err) < 0)
    return -1;
  stream = xcalloc(1, sizeof *stream);
  stream->kind = STREAM_ATTACH;
  stream->container_id = xstrdup(attach->container_id);
  stream->tty = attach->tty;
  stream->stdin = attach->stdin;
  stream->stdout = attach->stdout;
  stream->stderr = attach->stderr;
  url = url_for(call, stream, err);
  if (url == NULL)
    return -1;
  runtime__v1__attach_response__init(reply);
  reply->url = arena_adopt(&call->arena, url);
  *response = &reply->base;
  return 0;
}

RPC_HANDLER(rpc_port_forward)
{
  const Runtime__V1__PortForwardRequest *forward = (const Runtime__V1__PortForwardRequest *)request;
  Runtime__V1__PortForwardResponse *reply
      = arena_new(&call->arena, Runtime__V1__PortForwardResponse);
  struct sandbox *sandbox;
  struct sandbox_snapshot snapshot;
  struct stream_request *stream;
  bool ready;
  char *url;

  for (size_t i = 0; i < forward->n_port; i++)
    if (forward->port[i] < 1 || forward->port[i] > 65535)
      return error_set(err, EINVAL, "port %d is out of range", (int)forward->port[i]);
  sandbox = pod_manager_find_sandbox(call->daemon->pods, forward->pod_sandbox_id, err);
  if (sandbox == NULL)
    return -1;
  ready = sandbox_snapshot_take(call->daemon->pods, sandbox, &snapshot, err) == 0
          && snapshot.state == SANDBOX_READY;
  sandbox_snapshot_clear(&snapshot);
  sandbox_unref(sandbox);
  error_clear(err);
  if (!ready)
    return error_set(err, EBUSY, "pod sandbox %s is not ready", forward->pod_sandbox_id);
  stream = xcalloc(1, sizeof *stream);
  stream->kind = STREAM_PORT_FORWARD;
  stream->sandbox_id = xstrdup(forward->pod_sandbox_id);
  stream->ports = xcalloc(forward->n_port ? forward->n_port : 1, sizeof *stream->ports);
  for (size_t i = 0; i < forward->n_port; i++)
    stream->ports[i] = (uint16_t)forward->port[i];
  stream->n_ports = forward->n_port;
  url = url_for(call, stream, err);
  if (url == NULL)
    return -1;
  runtime__v1__port_forward_response__init(reply);
  reply->url = arena_adopt(&call->arena, url);
  *response = &reply->base;
  return 0;
}
