/* crid/rpc: what an RPC handler sees of its call, and the table that maps
 * every CRI method to its handler.  Handlers allocate their response in the
 * call's arena; the server packs it, sends it and releases the arena. */
#ifndef CRID_RPC_H
#define CRID_RPC_H

#include <protobuf-c/protobuf-c.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/error.h"
#include "api.pb-c.h"

struct daemon;

struct rpc_call
{
  struct daemon *daemon;
  const char *method; /* short name, "Version" */
  char request_id[9];
  struct arena arena;
  int64_t deadline_ns;   /* CLOCK_REALTIME of the client's deadline; 0 = none */
  atomic_bool cancelled; /* the client went away or its deadline passed */
};

typedef int (*rpc_handler)(struct rpc_call *call, const ProtobufCMessage *request,
                           ProtobufCMessage **response, struct error *err);

/* A server-streaming call (GetContainerEvents, the Stream* lists): the
 * handler starts it and returns at once; messages are then sent from any
 * thread with rpc_stream_send() and the call ends with
 * rpc_stream_finish().  No worker thread waits meanwhile. */
struct rpc_stream;

/* 0: the stream now belongs to the handler's producer, which finishes it
 * some day; -1: the call ends with err at once. */
typedef int (*rpc_stream_handler)(struct rpc_call *call, const ProtobufCMessage *request,
                                  struct rpc_stream *stream, struct error *err);

/* The call the stream belongs to (its daemon, method, request id). */
struct rpc_call *rpc_stream_call(struct rpc_stream *stream);
/* Queues message (packed at once: it may be freed on return).  ENOBUFS
 * when more than RPC_STREAM_MAX_QUEUED bytes wait for a slow client,
 * ECANCELED once the client is gone or the stream finished.  Any thread. */
int rpc_stream_send(struct rpc_stream *stream, const ProtobufCMessage *message, struct error *err);
/* Bounds the messages waiting for the client (besides the bytes): past
 * it, rpc_stream_send fails with ENOBUFS. */
void rpc_stream_set_max_queued(struct rpc_stream *stream, size_t messages);
/* Ends the call with err's status (NULL: OK) after what is queued.
 * Idempotent; any thread. */
void rpc_stream_finish(struct rpc_stream *stream, const struct error *err);
/* on_cancel(data) runs once if the client leaves (or crid stops) before
 * the finish: it must stop the producer and finish the stream, without
 * blocking.  on_done(data) runs once when the call is over, whatever the
 * reason, after which nothing may touch the stream: release there.
 * Both on the completion-queue thread (on_cancel on the caller's when the
 * client is already gone). */
void rpc_stream_set_callbacks(struct rpc_stream *stream, void (*on_cancel)(void *data),
                              void (*on_done)(void *data), void *data);

#define RPC_STREAM_MAX_QUEUED (64 * 1024 * 1024)

struct rpc_method
{
  char *path;       /* "/runtime.v1.RuntimeService/Version" */
  const char *name; /* "Version" */
  const ProtobufCMethodDescriptor *descriptor;
  rpc_handler handler; /* NULL (and no stream_handler): answers UNIMPLEMENTED */
  rpc_stream_handler stream_handler;
  bool needs_ready; /* answers UNAVAILABLE until recovery has finished */
  bool quiet;       /* polled all the time: logged at debug level */
};

/* Builds the table from the generated service descriptors, so every method
 * of the proto is routed; called once at start. */
void rpc_table_init(void);
const struct rpc_method *rpc_table_lookup(const char *path);
size_t rpc_table_size(void);
const struct rpc_method *rpc_table_at(size_t index);

/* True once the client cancelled or its deadline has passed. */
bool rpc_call_cancelled(struct rpc_call *call);

/* The gRPC status code for an error's errno-style code. */
int rpc_status_from_error_code(int code);

/* Handlers, one file per RPC family. */
int rpc_version(struct rpc_call *call, const ProtobufCMessage *request, ProtobufCMessage **response,
                struct error *err);
int rpc_status(struct rpc_call *call, const ProtobufCMessage *request, ProtobufCMessage **response,
               struct error *err);
int rpc_runtime_config(struct rpc_call *call, const ProtobufCMessage *request,
                       ProtobufCMessage **response, struct error *err);
int rpc_update_runtime_config(struct rpc_call *call, const ProtobufCMessage *request,
                              ProtobufCMessage **response, struct error *err);

/* Declares a handler with the rpc_handler signature. */
#define RPC_HANDLER(name)                                                                          \
  int name(struct rpc_call *call, const ProtobufCMessage *request, ProtobufCMessage **response,    \
           struct error *err)

RPC_HANDLER(rpc_run_pod_sandbox);
RPC_HANDLER(rpc_stop_pod_sandbox);
RPC_HANDLER(rpc_remove_pod_sandbox);
RPC_HANDLER(rpc_pod_sandbox_status);
RPC_HANDLER(rpc_list_pod_sandbox);

RPC_HANDLER(rpc_create_container);
RPC_HANDLER(rpc_start_container);
RPC_HANDLER(rpc_stop_container);
RPC_HANDLER(rpc_remove_container);
RPC_HANDLER(rpc_container_status);
RPC_HANDLER(rpc_list_containers);
RPC_HANDLER(rpc_exec_sync);
RPC_HANDLER(rpc_reopen_container_log);
RPC_HANDLER(rpc_update_container_resources);

RPC_HANDLER(rpc_container_stats);
RPC_HANDLER(rpc_list_container_stats);
RPC_HANDLER(rpc_pod_sandbox_stats);
RPC_HANDLER(rpc_list_pod_sandbox_stats);
RPC_HANDLER(rpc_list_metric_descriptors);
RPC_HANDLER(rpc_list_pod_sandbox_metrics);

RPC_HANDLER(rpc_exec);
RPC_HANDLER(rpc_attach);
RPC_HANDLER(rpc_port_forward);
RPC_HANDLER(rpc_update_pod_sandbox_resources);

RPC_HANDLER(rpc_list_images);
RPC_HANDLER(rpc_image_status);
RPC_HANDLER(rpc_pull_image);
RPC_HANDLER(rpc_remove_image);
RPC_HANDLER(rpc_image_fs_info);

/* Declares a server-streaming handler (rpc_stream_handler). */
#define RPC_STREAM_HANDLER(name)                                                                   \
  int name(struct rpc_call *call, const ProtobufCMessage *request, struct rpc_stream *stream,      \
           struct error *err)

RPC_STREAM_HANDLER(rpc_get_container_events);
RPC_STREAM_HANDLER(rpc_stream_pod_sandboxes);
RPC_STREAM_HANDLER(rpc_stream_containers);
RPC_STREAM_HANDLER(rpc_stream_images);
RPC_STREAM_HANDLER(rpc_stream_container_stats);
RPC_STREAM_HANDLER(rpc_stream_pod_sandbox_stats);
RPC_STREAM_HANDLER(rpc_stream_pod_sandbox_metrics);

#endif
