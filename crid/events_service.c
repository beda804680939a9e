/* GetContainerEvents: a server-streaming call that sends every container
 * and pod sandbox lifecycle event (pod/events.h) from the subscription
 * on, each with the pod's status and the statuses of the containers it
 * concerns.  A subscriber whose client reads too slowly (more than
 * EVENTS_MAX_QUEUED events waiting, as containerd bounds its event
 * channel) is ended with RESOURCE_EXHAUSTED; it never slows the calls
 * that publish. */
#include "crid/daemon.h"
#include "crid/rpc.h"
#include "crid/service_common.h"
#include "common/log.h"
#include "common/util.h"
#include "pod/container.h"
#include "pod/events.h"
#include "pod/pod_manager.h"
#include "pod/sandbox.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define EVENTS_MAX_QUEUED 1000

/* Shared by the event bus (until it lets go: release) and the call (until
 * it is over: on_done). */
struct subscription
{
  struct daemon *daemon;
  struct rpc_stream *stream;
  pthread_mutex_t lock; /* held while the stream is used; dead set under it */
  bool dead;            /* the call is over or ending: no more sends */
  atomic_int references;
};

static void
subscription_unref(struct subscription *sub)
{
  if (atomic_fetch_sub(&sub->references, 1) != 1)
    return;
  pthread_mutex_destroy(&sub->lock);
  free(sub);
}

/* The statuses of the pod's containers; of one container when id is not
 * the pod's. */
static void
add_container_statuses(struct rpc_call *call, Runtime__V1__ContainerEventResponse *message,
                       const struct pod_event *event)
{
  size_t n;
  struct container **containers = pod_manager_list_containers(call->daemon->pods, &n);

  message->containers_statuses
      = arena_new_array(&call->arena, Runtime__V1__ContainerStatus *, n + 1);
  for (size_t i = 0; i < n; i++)
    {
      struct container *c = containers[i];
      bool wanted = event->is_sandbox ? strcmp(c->sandbox_id, event->sandbox_id) == 0
                                      : strcmp(c->id, event->id) == 0;
      if (!wanted)
        continue;
      struct container_snapshot snapshot;
      struct error gone = ERROR_INIT;
      if (container_snapshot_take(call->daemon->pods, c, &snapshot, &gone) < 0)
        {
          error_clear(&gone);
          continue;
        }
      message->containers_statuses[message->n_containers_statuses++]
          = rpc_container_status_message(call, &snapshot);
      container_snapshot_clear(&snapshot);
    }
  pod_manager_release_containers(containers, n);
}

static Runtime__V1__PodSandboxStatus *
sandbox_status(struct rpc_call *call, const char *sandbox_id)
{
  struct error err = ERROR_INIT;
  struct sandbox *sandbox = pod_manager_find_sandbox(call->daemon->pods, sandbox_id, &err);
  struct sandbox_snapshot snapshot;
  Runtime__V1__PodSandboxStatus *status = NULL;

  if (sandbox && sandbox_snapshot_take(call->daemon->pods, sandbox, &snapshot, &err) == 0)
    {
      status = rpc_sandbox_status_message(call, &snapshot);
      sandbox_snapshot_clear(&snapshot);
    }
  error_clear(&err);
  sandbox_unref(sandbox);
  return status; /* NULL when removed: the event says so */
}

/* The message is built before the subscription's lock is taken: building
 * may wait for a pod's lock, and the lock must stay short (the call's end
 * takes it on gRPC's completion-queue thread). */
static bool
on_event(void *data, const struct pod_event *event)
{
  struct subscription *sub = data;
  struct rpc_call call = { .daemon = sub->daemon, .arena = ARENA_INIT };
  Runtime__V1__ContainerEventResponse message;
  struct error err = ERROR_INIT;
  bool keep = true;

  pthread_mutex_lock(&sub->lock);
  keep = !sub->dead;
  pthread_mutex_unlock(&sub->lock);
  if (!keep)
    return false;
  runtime__v1__container_event_response__init(&message);
  message.container_id = (char *)event->id;
  message.container_event_type = (Runtime__V1__ContainerEventType)event->kind;
  message.created_at = event->at_ns;
  message.pod_sandbox_status = sandbox_status(&call, event->sandbox_id);
  add_container_statuses(&call, &message, event);
  pthread_mutex_lock(&sub->lock);
  if (sub->dead)
    keep = false;
  else if (rpc_stream_send(sub->stream, &message.base, &err) < 0)
    {
      keep = false;
      sub->dead = true;
      if (err.code == ENOBUFS)
        {
          error_wrap(&err, "events subscriber dropped");
          rpc_stream_finish(sub->stream, &err);
        }
    }
  pthread_mutex_unlock(&sub->lock);
  arena_release(&call.arena);
  error_clear(&err);
  return keep;
}

static void
on_bus_release(void *data)
{
  subscription_unref(data);
}

static void
on_cancel(void *data)
{
  struct subscription *sub = data;
  struct error err = ERROR_INIT;

  pthread_mutex_lock(&sub->lock);
  sub->dead = true;
  error_set(&err, ECANCELED, "the client went away");
  rpc_stream_finish(sub->stream, &err);
  pthread_mutex_unlock(&sub->lock);
  error_clear(&err);
}

static void
on_done(void *data)
{
  struct subscription *sub = data;

  pthread_mutex_lock(&sub->lock);
  sub->dead = true;
  pthread_mutex_unlock(&sub->lock);
  subscription_unref(sub);
}

RPC_STREAM_HANDLER(rpc_get_container_events)
{
  struct subscription *sub = xcalloc(1, sizeof *sub);

  sub->daemon = call->daemon;
  sub->stream = stream;
  pthread_mutex_init(&sub->lock, NULL);
  atomic_init(&sub->references, 2);
  rpc_stream_set_max_queued(stream, EVENTS_MAX_QUEUED);
  rpc_stream_set_callbacks(stream, on_cancel, on_done, sub);
  pod_events_subscribe(call->daemon->pods->events, on_event, on_bus_release, sub);
  log_debug("events subscriber added");
  return 0;
}
