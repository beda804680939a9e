#include "crid/server.h"
#include "crid/daemon.h"
#include "crid/metrics.h"
#include "crid/rpc.h"
#include "crid/validate.h"
#include "crid/worker_pool.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_MESSAGE_SIZE (16 * 1024 * 1024)
#define MAX_WORKERS 256

enum tag_kind
{
  TAG_NEW_CALL,
  TAG_RECEIVED,
  TAG_SENT,
  TAG_CLOSED,
  TAG_STREAM_SENT,
  TAG_SHUTDOWN,
};

struct server_call;

struct call_tag
{
  enum tag_kind kind;
  struct server_call *call;
};

/* The sending side of a server-streaming call: a queue of packed
 * messages, one send in flight at a time (gRPC allows no more), then the
 * status. */
struct rpc_stream
{
  struct server_call *call;
  pthread_mutex_t lock;
  grpc_byte_buffer **queue; /* ring of cap entries from head */
  size_t head, n, cap;
  size_t queued_bytes;
  grpc_byte_buffer *in_flight;
  size_t messages_sent;
  size_t max_messages; /* queued, not yet sent; 0: bounded by bytes only */
  bool metadata_sent;
  bool sending;
  bool finishing;
  bool status_sent;
  bool cancelled;     /* the client is gone: nothing more is sent */
  bool closed;        /* the close notification came */
  bool cancel_called; /* on_cancel ran or will not */
  int status;
  grpc_slice details;
  void (*on_cancel)(void *data);
  void (*on_done)(void *data);
  void *data;
  struct server_call *next, *prev; /* the server's live streams */
};

struct server_call
{
  struct server *server;
  grpc_call *grpc;
  grpc_call_details details;
  grpc_metadata_array request_metadata;
  grpc_byte_buffer *request_payload;
  grpc_byte_buffer *response_payload;
  grpc_slice status_details;
  int cancelled_by_client;
  atomic_int references;
  struct call_tag tag_new, tag_received, tag_sent, tag_closed, tag_stream_sent;
  const struct rpc_method *method;
  int64_t started_ns;
  struct rpc_call rpc;
  bool streaming;
  struct rpc_stream stream;
};

struct server
{
  struct daemon *daemon;
  grpc_server *grpc;
  grpc_completion_queue *queue;
  struct worker_pool *workers;
  char *socket_path;
  atomic_bool shutting_down;
  atomic_uint request_counter;
  struct call_tag tag_shutdown;

  pthread_mutex_t lock;
  pthread_cond_t changed;
  bool shutdown_complete;
  size_t live_calls;
  struct server_call *streams; /* live server-streaming calls */

  /* crid accepts connections itself and hands them to gRPC, so running
   * out of descriptors never stops the listener (gRPC's own accept loop
   * gives up for good after an accept error). */
  int listen_fd;
  int wake_fd;    /* stops the accept thread */
  int reserve_fd; /* let go to accept-and-close a connection when out of fds */
  pthread_t accept_thread;
  bool accepting;
  grpc_server_credentials *credentials;
};

static void request_new_call(struct server *server);
static void stream_release(struct server_call *call);

static void
call_unref(struct server_call *call)
{
  struct server *server = call->server;

  if (atomic_fetch_sub(&call->references, 1) != 1)
    return;
  if (call->streaming)
    stream_release(call);
  if (call->grpc)
    grpc_call_unref(call->grpc);
  grpc_call_details_destroy(&call->details);
  grpc_metadata_array_destroy(&call->request_metadata);
  if (call->request_payload)
    grpc_byte_buffer_destroy(call->request_payload);
  if (call->response_payload)
    grpc_byte_buffer_destroy(call->response_payload);
  grpc_slice_unref(call->status_details);
  arena_release(&call->rpc.arena);
  free(call);

  pthread_mutex_lock(&server->lock);
  server->live_calls--;
  pthread_cond_broadcast(&server->changed);
  pthread_mutex_unlock(&server->lock);
}

static char *
slice_to_string(grpc_slice slice)
{
  return xstrndup((const char *)GRPC_SLICE_START_PTR(slice), GRPC_SLICE_LENGTH(slice));
}

/* Flattens the request into one slice; the caller unrefs it. */
static grpc_slice
request_bytes(struct server_call *call)
{
  grpc_byte_buffer_reader reader;
  grpc_slice flat;

  if (call->request_payload == NULL
      || !grpc_byte_buffer_reader_init(&reader, call->request_payload))
    return grpc_empty_slice();
  flat = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  return flat;
}

/* The status details of a failed call: at most STATUS_DETAILS_MAX bytes
 * (cut with "..."), whatever a message quoted.  Larger ones break the
 * client's metadata limit (8 KiB by default), which then reports
 * RESOURCE_EXHAUSTED in place of crid's code. */
#define STATUS_DETAILS_MAX 4096

static grpc_slice
status_details(const struct error *err)
{
  const char *message = error_message(err);
  cleanup_free char *cut = NULL;

  if (strlen(message) <= STATUS_DETAILS_MAX)
    return grpc_slice_from_copied_string(message);
  cut = xasprintf("%.*s...", STATUS_DETAILS_MAX - 3, message);
  return grpc_slice_from_copied_string(cut);
}

static grpc_byte_buffer *
pack_response(const ProtobufCMessage *message)
{
  size_t size = protobuf_c_message_get_packed_size(message);
  grpc_slice slice = grpc_slice_malloc(size);
  grpc_byte_buffer *buffer;

  protobuf_c_message_pack(message, GRPC_SLICE_START_PTR(slice));
  buffer = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
  return buffer;
}

/* The request message of the call, checked against the method's state. */
static ProtobufCMessage *
decode_request(struct server_call *call, struct error *err)
{
  const struct rpc_method *method = call->method;
  ProtobufCMessage *request;
  grpc_slice bytes;

  if (method->handler == NULL && method->stream_handler == NULL)
    {
      error_set(err, ENOSYS, "%s is not implemented by crid", method->name);
      return NULL;
    }
  if (method->needs_ready && !atomic_load(&call->server->daemon->ready))
    {
      error_set(err, EAGAIN, "crid is recovering its state; retry shortly");
      return NULL;
    }
  if (call->request_payload == NULL)
    {
      error_set(err, EINVAL, "%s: no request message", method->name);
      return NULL;
    }
  bytes = request_bytes(call);
  request = protobuf_c_message_unpack(method->descriptor->input, NULL, GRPC_SLICE_LENGTH(bytes),
                                      GRPC_SLICE_START_PTR(bytes));
  grpc_slice_unref(bytes);
  if (request == NULL)
    error_set(err, EINVAL, "%s: request does not decode as %s", method->name,
              method->descriptor->input->name);
  else if (validate_request(request, err) < 0)
    {
      /* Refused before any handler could create something. */
      protobuf_c_message_free_unpacked(request, NULL);
      request = NULL;
    }
  return request;
}

static int
dispatch(struct server_call *call, ProtobufCMessage **response, struct error *err)
{
  const struct rpc_method *method = call->method;
  ProtobufCMessage *request = decode_request(call, err);
  int ret;

  if (request == NULL)
    return -1;
  ret = method->handler(&call->rpc, request, response, err);
  protobuf_c_message_free_unpacked(request, NULL);
  if (ret == 0 && (*response == NULL || (*response)->descriptor != method->descriptor->output))
    abort();
  return ret;
}

static void
send_reply(struct server_call *call, int status)
{
  grpc_op ops[3];
  size_t n = 0;
  grpc_call_error rc;

  memset(ops, 0, sizeof ops);
  ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
  n++;
  if (call->response_payload)
    {
      ops[n].op = GRPC_OP_SEND_MESSAGE;
      ops[n].data.send_message.send_message = call->response_payload;
      n++;
    }
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.status = status;
  ops[n].data.send_status_from_server.status_details = &call->status_details;
  n++;
  rc = grpc_call_start_batch(call->grpc, ops, n, &call->tag_sent, NULL);
  if (rc != GRPC_CALL_OK)
    {
      log_error("%s: cannot send the reply (grpc error %d)", call->method->name, rc);
      call_unref(call);
    }
}

static const char *
status_name(int status)
{
  static const char *const names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
  };
  return status >= 0 && (size_t)status < sizeof names / sizeof names[0] ? names[status] : "?";
}

/* The wrapper every method runs through, on a worker thread. */
static void
handle_call(void *arg)
{
  struct server_call *call = arg;
  struct error err = ERROR_INIT;
  ProtobufCMessage *response = NULL;
  int status = GRPC_STATUS_OK;
  int64_t elapsed_us;

  log_context_set(call->method->name, call->rpc.request_id);
  log_debug("call");
  if (dispatch(call, &response, &err) < 0)
    {
      status = rpc_status_from_error_code(err.code);
      call->status_details = status_details(&err);
    }
  else
    call->response_payload = pack_response(response);
  elapsed_us = (time_monotonic_ns() - call->started_ns) / 1000;
  metrics_observe_rpc(call->method->name, status_name(status),
                      time_monotonic_ns() - call->started_ns);
  if (status == GRPC_STATUS_OK)
    log_write(call->method->quiet ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, "done in %ld.%03ld ms: OK",
              (long)(elapsed_us / 1000), (long)(elapsed_us % 1000));
  else
    log_write(status == GRPC_STATUS_NOT_FOUND || status == GRPC_STATUS_UNIMPLEMENTED
                  ? LOG_LEVEL_INFO
                  : LOG_LEVEL_WARN,
              "done in %ld.%03ld ms: %s: %s", (long)(elapsed_us / 1000), (long)(elapsed_us % 1000),
              status_name(status), error_message(&err));
  error_clear(&err);
  send_reply(call, status);
  log_context_set(NULL, NULL);
}

/* ---- Server-streaming calls ----------------------------------------------------------- */

static void
log_done(struct server_call *call, int status, const char *message, const char *suffix)
{
  int64_t elapsed_us = (time_monotonic_ns() - call->started_ns) / 1000;

  metrics_observe_rpc(call->method->name, status_name(status),
                      time_monotonic_ns() - call->started_ns);
  if (status == GRPC_STATUS_OK)
    log_write(call->method->quiet ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, "done in %ld.%03ld ms: OK%s",
              (long)(elapsed_us / 1000), (long)(elapsed_us % 1000), suffix);
  else
    log_write(status == GRPC_STATUS_NOT_FOUND || status == GRPC_STATUS_UNIMPLEMENTED
                      || status == GRPC_STATUS_CANCELLED
                  ? LOG_LEVEL_INFO
                  : LOG_LEVEL_WARN,
              "done in %ld.%03ld ms: %s: %s%s", (long)(elapsed_us / 1000),
              (long)(elapsed_us % 1000), status_name(status), message, suffix);
}

static void
stream_drop_queue(struct rpc_stream *stream)
{
  while (stream->n > 0)
    {
      grpc_byte_buffer_destroy(stream->queue[stream->head]);
      stream->head = (stream->head + 1) % stream->cap;
      stream->n--;
    }
  stream->queued_bytes = 0;
}

/* With the stream's lock: starts the next send (a message, or the status
 * once finishing) unless one is in flight.  The initial metadata goes with
 * the first batch.  The reply's reference is never dropped here, so no
 * caller ever sees the call end (and on_done run) under its feet. */
static void
stream_start_next(struct rpc_stream *stream)
{
  struct server_call *call = stream->call;
  grpc_op ops[2];
  size_t n = 0;

  if (stream->sending || stream->status_sent)
    return;
  if (stream->cancelled)
    stream_drop_queue(stream);
  if (stream->n == 0 && !stream->finishing)
    return;
  memset(ops, 0, sizeof ops);
  if (!stream->metadata_sent)
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
  stream->metadata_sent = true;
  if (stream->n > 0)
    {
      grpc_byte_buffer *message = stream->queue[stream->head];
      stream->head = (stream->head + 1) % stream->cap;
      stream->n--;
      stream->queued_bytes -= grpc_byte_buffer_length(message);
      stream->in_flight = message;
      stream->sending = true;
      ops[n].op = GRPC_OP_SEND_MESSAGE;
      ops[n++].data.send_message.send_message = message;
      if (grpc_call_start_batch(call->grpc, ops, n, &call->tag_stream_sent, NULL) != GRPC_CALL_OK)
        {
          stream->sending = false;
          stream->cancelled = true;
          grpc_byte_buffer_destroy(message);
          stream->in_flight = NULL;
        }
      return;
    }
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.status = stream->status;
  ops[n++].data.send_status_from_server.status_details = &stream->details;
  stream->status_sent = true;
  /* Fails only on a misuse of the API; the call is then left as it is. */
  if (grpc_call_start_batch(call->grpc, ops, n, &call->tag_sent, NULL) != GRPC_CALL_OK)
    log_error("%s: cannot send the status of a stream", call->method->name);
}

void
rpc_stream_set_max_queued(struct rpc_stream *stream, size_t messages)
{
  pthread_mutex_lock(&stream->lock);
  stream->max_messages = messages;
  pthread_mutex_unlock(&stream->lock);
}

struct rpc_call *
rpc_stream_call(struct rpc_stream *stream)
{
  return &stream->call->rpc;
}

int
rpc_stream_send(struct rpc_stream *stream, const ProtobufCMessage *message, struct error *err)
{
  grpc_byte_buffer *buffer = pack_response(message);
  size_t size = grpc_byte_buffer_length(buffer);
  int ret = 0;

  pthread_mutex_lock(&stream->lock);
  if (stream->cancelled || stream->finishing)
    ret = error_set(err, ECANCELED, "the client is gone");
  else if (stream->queued_bytes + size > RPC_STREAM_MAX_QUEUED)
    ret = error_set(err, ENOBUFS, "the client reads too slowly: %zu bytes wait",
                    stream->queued_bytes);
  else if (stream->max_messages && stream->n >= stream->max_messages)
    ret = error_set(err, ENOBUFS, "the client reads too slowly: %zu messages wait", stream->n);
  if (ret < 0)
    {
      pthread_mutex_unlock(&stream->lock);
      grpc_byte_buffer_destroy(buffer);
      return -1;
    }
  if (stream->n == stream->cap)
    {
      size_t cap = stream->cap ? stream->cap * 2 : 8;
      grpc_byte_buffer **queue = xcalloc(cap, sizeof *queue);
      for (size_t i = 0; i < stream->n; i++)
        queue[i] = stream->queue[(stream->head + i) % stream->cap];
      free(stream->queue);
      stream->queue = queue;
      stream->head = 0;
      stream->cap = cap;
    }
  stream->queue[(stream->head + stream->n) % stream->cap] = buffer;
  stream->n++;
  stream->queued_bytes += size;
  stream_start_next(stream);
  pthread_mutex_unlock(&stream->lock);
  return 0;
}

void
rpc_stream_finish(struct rpc_stream *stream, const struct error *err)
{
  struct server_call *call = stream->call;
  cleanup_free char *suffix = NULL;

  pthread_mutex_lock(&stream->lock);
  if (stream->finishing)
    {
      pthread_mutex_unlock(&stream->lock);
      return;
    }
  stream->finishing = true;
  stream->status = err ? rpc_status_from_error_code(err->code) : GRPC_STATUS_OK;
  if (err)
    stream->details = status_details(err);
  suffix
      = xasprintf(" (%zu messages)", stream->messages_sent + stream->n + (stream->sending ? 1 : 0));
  stream_start_next(stream);
  pthread_mutex_unlock(&stream->lock);
  log_context_set(call->method->name, call->rpc.request_id);
  log_done(call, err ? rpc_status_from_error_code(err->code) : GRPC_STATUS_OK,
           err ? error_message(err) : "", suffix);
  log_context_set(NULL, NULL);
}

void
rpc_stream_set_callbacks(struct rpc_stream *stream, void (*on_cancel)(void *data),
                         void (*on_done)(void *data), void *data)
{
  bool cancel_now;

  pthread_mutex_lock(&stream->lock);
  stream->on_cancel = on_cancel;
  stream->on_done = on_done;
  stream->data = data;
  cancel_now = stream->cancelled && !stream->cancel_called && !stream->finishing;
  if (cancel_now)
    stream->cancel_called = true;
  pthread_mutex_unlock(&stream->lock);
  if (cancel_now && on_cancel)
    on_cancel(data);
}

/* The client left, or crid stops: the producer is told once. */
static void
stream_cancel(struct rpc_stream *stream)
{
  void (*on_cancel)(void *) = NULL;
  void *data = NULL;

  pthread_mutex_lock(&stream->lock);
  stream->cancelled = true;
  if (!stream->cancel_called && stream->on_cancel && !stream->finishing)
    {
      stream->cancel_called = true;
      on_cancel = stream->on_cancel;
      data = stream->data;
    }
  stream_start_next(stream);
  pthread_mutex_unlock(&stream->lock);
  if (on_cancel)
    on_cancel(data);
}

static void
on_stream_sent(struct server_call *call, bool ok)
{
  struct rpc_stream *stream = &call->stream;

  pthread_mutex_lock(&stream->lock);
  grpc_byte_buffer_destroy(stream->in_flight);
  stream->in_flight = NULL;
  stream->sending = false;
  if (ok)
    stream->messages_sent++;
  else
    stream->cancelled = true;
  stream_start_next(stream);
  pthread_mutex_unlock(&stream->lock);
  if (!ok)
    stream_cancel(stream);
}

static void
stream_init(struct server_call *call)
{
  struct server *server = call->server;

  call->streaming = true;
  call->stream.call = call;
  call->stream.details = grpc_empty_slice();
  pthread_mutex_init(&call->stream.lock, NULL);
  pthread_mutex_lock(&server->lock);
  call->stream.next = server->streams;
  if (server->streams)
    server->streams->stream.prev = call;
  server->streams = call;
  pthread_mutex_unlock(&server->lock);
}

/* When the call is over (its last reference): the producer's release. */
static void
stream_release(struct server_call *call)
{
  struct server *server = call->server;
  struct rpc_stream *stream = &call->stream;

  pthread_mutex_lock(&server->lock);
  if (stream->prev)
    stream->prev->stream.next = stream->next;
  else
    server->streams = stream->next;
  if (stream->next)
    stream->next->stream.prev = stream->prev;
  pthread_mutex_unlock(&server->lock);
  if (stream->on_done)
    stream->on_done(stream->data);
  stream_drop_queue(stream);
  free(stream->queue);
  grpc_slice_unref(stream->details);
  pthread_mutex_destroy(&stream->lock);
}

/* On a worker thread: the handler starts the stream. */
static void
handle_stream_call(void *arg)
{
  struct server_call *call = arg;
  struct error err = ERROR_INIT;
  ProtobufCMessage *request;

  log_context_set(call->method->name, call->rpc.request_id);
  log_debug("call (stream)");
  request = decode_request(call, &err);
  if (request && call->method->stream_handler(&call->rpc, request, &call->stream, &err) == 0)
    error_clear(&err);
  else
    rpc_stream_finish(&call->stream, &err);
  if (request)
    protobuf_c_message_free_unpacked(request, NULL);
  error_clear(&err);
  log_context_set(NULL, NULL);
}

/* crid stops: every stream is ended as if its client had left. */
static void
cancel_streams(struct server *server)
{
  for (;;)
    {
      struct server_call *found = NULL;

      pthread_mutex_lock(&server->lock);
      for (struct server_call *c = server->streams; c; c = c->stream.next)
        {
          pthread_mutex_lock(&c->stream.lock);
          if (!c->stream.finishing && !c->stream.cancel_called)
            found = c;
          pthread_mutex_unlock(&c->stream.lock);
          if (found)
            {
              atomic_fetch_add(&found->references, 1);
              break;
            }
        }
      pthread_mutex_unlock(&server->lock);
      if (found == NULL)
        return;
      stream_cancel(&found->stream);
      pthread_mutex_lock(&found->stream.lock);
      found->stream.cancel_called = true; /* also when no producer was registered */
      pthread_mutex_unlock(&found->stream.lock);
      {
        struct error err = ERROR_INIT;
        error_set(&err, EAGAIN, "crid is shutting down");
        rpc_stream_finish(&found->stream, &err);
        error_clear(&err);
      }
      call_unref(found);
    }
}

static void
reply_unknown_method(struct server_call *call)
{
  cleanup_free char *path = slice_to_string(call->details.method);
  cleanup_free char *message = xasprintf("unknown method %s", path);
  static const struct rpc_method unknown = { .name = "unknown" };

  log_info("[%s] %s", call->rpc.request_id, message);
  call->method = &unknown;
  call->status_details = grpc_slice_from_copied_string(message);
  send_reply(call, GRPC_STATUS_UNIMPLEMENTED);
}

static void
start_receive(struct server_call *call)
{
  grpc_op close_op, receive_op;

  memset(&close_op, 0, sizeof close_op);
  close_op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  close_op.data.recv_close_on_server.cancelled = &call->cancelled_by_client;
  if (grpc_call_start_batch(call->grpc, &close_op, 1, &call->tag_closed, NULL) != GRPC_CALL_OK)
    call_unref(call);

  memset(&receive_op, 0, sizeof receive_op);
  receive_op.op = GRPC_OP_RECV_MESSAGE;
  receive_op.data.recv_message.recv_message = &call->request_payload;
  if (grpc_call_start_batch(call->grpc, &receive_op, 1, &call->tag_received, NULL) != GRPC_CALL_OK)
    call_unref(call);
}

static void
on_new_call(struct server_call *call, bool ok)
{
  struct server *server = call->server;
  cleanup_free char *path = NULL;
  gpr_timespec deadline;

  if (!ok)
    {
      call_unref(call);
      call_unref(call);
      return;
    }
  if (!atomic_load(&server->shutting_down))
    request_new_call(server);

  call->started_ns = time_monotonic_ns();
  snprintf(call->rpc.request_id, sizeof call->rpc.request_id, "%08x",
           atomic_fetch_add(&server->request_counter, 0x9e3779b1u));
  deadline = gpr_convert_clock_type(call->details.deadline, GPR_CLOCK_REALTIME);
  if (deadline.tv_sec < INT64_MAX / 2000000000)
    call->rpc.deadline_ns = deadline.tv_sec * 1000000000 + deadline.tv_nsec;
  path = slice_to_string(call->details.method);
  call->method = rpc_table_lookup(path);
  if (call->method)
    call->rpc.method = call->method->name;
  start_receive(call);
}

static void
request_new_call(struct server *server)
{
  struct server_call *call = xcalloc(1, sizeof *call);

  call->server = server;
  call->rpc.daemon = server->daemon;
  call->status_details = grpc_empty_slice();
  /* One reference for the reply path, one for the close notification. */
  atomic_init(&call->references, 2);
  call->tag_new = (struct call_tag){ TAG_NEW_CALL, call };
  call->tag_received = (struct call_tag){ TAG_RECEIVED, call };
  call->tag_sent = (struct call_tag){ TAG_SENT, call };
  call->tag_closed = (struct call_tag){ TAG_CLOSED, call };
  call->tag_stream_sent = (struct call_tag){ TAG_STREAM_SENT, call };
  grpc_call_details_init(&call->details);
  grpc_metadata_array_init(&call->request_metadata);

  pthread_mutex_lock(&server->lock);
  server->live_calls++;
  pthread_mutex_unlock(&server->lock);
  if (grpc_server_request_call(server->grpc, &call->grpc, &call->details, &call->request_metadata,
                               server->queue, server->queue, &call->tag_new)
      != GRPC_CALL_OK)
    {
      log_error("cannot request a new call");
      call_unref(call);
      call_unref(call);
    }
}

static void
on_received(struct server_call *call)
{
  if (call->method == NULL)
    reply_unknown_method(call);
  else if (call->method->stream_handler)
    {
      stream_init(call);
      worker_pool_submit(call->server->workers, handle_stream_call, call);
    }
  else
    worker_pool_submit(call->server->workers, handle_call, call);
}

static void
handle_event(struct server *server, grpc_event event)
{
  struct call_tag *tag = event.tag;

  switch (tag->kind)
    {
    case TAG_NEW_CALL:
      on_new_call(tag->call, event.success);
      break;
    case TAG_RECEIVED:
      on_received(tag->call);
      break;
    case TAG_SENT:
      call_unref(tag->call);
      break;
    case TAG_CLOSED:
      atomic_store(&tag->call->rpc.cancelled, tag->call->cancelled_by_client != 0);
      if (tag->call->streaming)
        {
          pthread_mutex_lock(&tag->call->stream.lock);
          tag->call->stream.closed = true;
          pthread_mutex_unlock(&tag->call->stream.lock);
          if (tag->call->cancelled_by_client)
            stream_cancel(&tag->call->stream);
        }
      call_unref(tag->call);
      break;
    case TAG_STREAM_SENT:
      on_stream_sent(tag->call, event.success);
      break;
    case TAG_SHUTDOWN:
      pthread_mutex_lock(&server->lock);
      server->shutdown_complete = true;
      pthread_cond_broadcast(&server->changed);
      pthread_mutex_unlock(&server->lock);
      break;
    }
}

bool
rpc_call_cancelled(struct rpc_call *call)
{
  if (atomic_load(&call->cancelled))
    return true;
  return call->deadline_ns > 0 && time_realtime_ns() >= call->deadline_ns;
}

static bool
socket_is_served(const char *path)
{
  struct sockaddr_un address = { .sun_family = AF_UNIX };
  cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0 || strlen(path) >= sizeof address.sun_path)
    return false;
  strcpy(address.sun_path, path);
  return connect(fd, (struct sockaddr *)&address, sizeof address) == 0;
}

static int
prepare_socket_path(const char *path, struct error *err)
{
  cleanup_free char *copy = xstrdup(path);
  struct stat st;

  if (mkdir_p(dirname(copy), 0755, err) < 0)
    return error_wrap(err, "create the socket directory");
  if (lstat(path, &st) == 0)
    {
      /* We hold the state-dir lock, so a socket here is a stale one. */
      if (!S_ISSOCK(st.st_mode))
        return error_set(err, EEXIST, "%s exists and is not a socket", path);
      if (socket_is_served(path))
        return error_set(err, EADDRINUSE, "%s is in use by another server", path);
      if (unlink(path) < 0)
        return error_set_errno(err, errno, "remove stale socket %s", path);
      log_info("replaced stale socket %s", path);
    }
  return 0;
}

static int
bind_socket(struct server *server, struct error *err)
{
  struct sockaddr_un address = { .sun_family = AF_UNIX };
  mode_t old_mask;
  int fd;

  if (strlen(server->socket_path) >= sizeof address.sun_path)
    return error_set(err, ENAMETOOLONG, "socket path %s is too long", server->socket_path);
  strcpy(address.sun_path, server->socket_path);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return error_set_errno(err, errno, "socket");
  old_mask = umask(0117);
  if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0 || listen(fd, 512) < 0)
    {
      int saved = errno;
      umask(old_mask);
      close(fd);
      return error_set_errno(err, saved, "cannot listen on %s", server->socket_path);
    }
  umask(old_mask);
  server->listen_fd = fd;
  return 0;
}

/* Out of descriptors: the spare one makes room to accept the waiting
 * connection and close it at once (the client sees it closed and
 * retries), instead of leaving it to spin the listener. */
static void
shed_connection(struct server *server, int code)
{
  static int64_t last_warning_ns;
  int64_t now = time_monotonic_ns();
  int fd;

  if (now - last_warning_ns > 10LL * 1000000000LL)
    {
      log_warn("accept: %s; refusing connections until descriptors free up", strerror(code));
      last_warning_ns = now;
    }
  if (server->reserve_fd >= 0)
    close(server->reserve_fd);
  fd = accept4(server->listen_fd, NULL, NULL, SOCK_CLOEXEC);
  if (fd >= 0)
    close(fd);
  server->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    usleep(10000); /* nothing could be done: do not spin */
}

static void *
accept_loop(void *arg)
{
  struct server *server = arg;

  for (;;)
    {
      struct pollfd fds[2] = { { server->listen_fd, POLLIN, 0 }, { server->wake_fd, POLLIN, 0 } };
      int fd;

      if (poll(fds, 2, -1) < 0 && errno != EINTR)
        break;
      if (fds[1].revents)
        break;
      if (!(fds[0].revents & POLLIN))
        continue;
      /* Non-blocking: gRPC's event engine reads it from its pollers. */
      fd = accept4(server->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd >= 0)
        {
          grpc_server_add_channel_from_fd(server->grpc, fd, server->credentials);
          continue;
        }
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
        shed_connection(server, errno);
    }
  return NULL;
}

static void
stop_accepting(struct server *server)
{
  if (!server->accepting)
    return;
  eventfd_write(server->wake_fd, 1);
  pthread_join(server->accept_thread, NULL);
  server->accepting = false;
}

struct server *
server_start(struct daemon *daemon, struct error *err)
{
  struct server *server = xcalloc(1, sizeof *server);
  grpc_arg args[2];
  grpc_channel_args channel_args = { 2, args };

  rpc_table_init();
  server->daemon = daemon;
  server->socket_path = xstrdup(daemon->config.listen);
  pthread_mutex_init(&server->lock, NULL);
  pthread_cond_init(&server->changed, NULL);
  server->tag_shutdown.kind = TAG_SHUTDOWN;
  server->listen_fd = server->wake_fd = server->reserve_fd = -1;
  atomic_init(&server->request_counter, (unsigned)getpid() * 2654435761u);

  if (prepare_socket_path(server->socket_path, err) < 0)
    goto fail;
  args[0] = (grpc_arg){ .type = GRPC_ARG_INTEGER,
                        .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                        .value.integer = MAX_MESSAGE_SIZE };
  args[1] = (grpc_arg){ .type = GRPC_ARG_INTEGER,
                        .key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
                        .value.integer = MAX_MESSAGE_SIZE };
  server->grpc = grpc_server_create(&channel_args, NULL);
  server->queue = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(server->grpc, server->queue, NULL);
  if (bind_socket(server, err) < 0)
    goto fail;
  if (chmod(server->socket_path, 0660) < 0)
    {
      error_set_errno(err, errno, "chmod %s", server->socket_path);
      goto fail;
    }
  server->wake_fd = eventfd(0, EFD_CLOEXEC);
  server->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  server->credentials = grpc_insecure_server_credentials_create();
  server->workers = worker_pool_new(1, MAX_WORKERS);
  grpc_server_start(server->grpc);
  if (server->wake_fd < 0 || pthread_create(&server->accept_thread, NULL, accept_loop, server) != 0)
    abort();
  server->accepting = true;
  /* A few outstanding requests so a burst of connections is not serialised
   * behind the completion-queue thread re-arming one request. */
  for (int i = 0; i < 8; i++)
    request_new_call(server);
  log_info("listening on %s", server->socket_path);
  return server;

fail:
  if (server->listen_fd >= 0)
    close(server->listen_fd);
  if (server->grpc)
    {
      grpc_server_shutdown_and_notify(server->grpc, server->queue, &server->tag_shutdown);
      grpc_server_cancel_all_calls(server->grpc);
      while (grpc_completion_queue_next(server->queue, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).tag
             != &server->tag_shutdown)
        ;
      grpc_server_destroy(server->grpc);
      grpc_completion_queue_shutdown(server->queue);
      while (
          grpc_completion_queue_next(server->queue, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type
          != GRPC_QUEUE_SHUTDOWN)
        ;
      grpc_completion_queue_destroy(server->queue);
    }
  free(server->socket_path);
  free(server);
  return NULL;
}

void
server_run(struct server *server)
{
  for (;;)
    {
      /* Once shutting down, wake up now and then: the last call may end on
       * a worker thread without an event on the queue. */
      gpr_timespec deadline = atomic_load(&server->shutting_down)
                                  ? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                                 gpr_time_from_millis(100, GPR_TIMESPAN))
                                  : gpr_inf_future(GPR_CLOCK_MONOTONIC);
      grpc_event event = grpc_completion_queue_next(server->queue, deadline, NULL);
      if (event.type == GRPC_QUEUE_SHUTDOWN)
        break;
      if (event.type == GRPC_OP_COMPLETE)
        handle_event(server, event);
      pthread_mutex_lock(&server->lock);
      if (server->shutdown_complete && server->live_calls == 0)
        {
          pthread_mutex_unlock(&server->lock);
          grpc_completion_queue_shutdown(server->queue);
          continue;
        }
      pthread_mutex_unlock(&server->lock);
    }
}

void
server_shutdown(struct server *server, int grace_seconds)
{
  struct timespec until;
  bool finished;

  if (atomic_exchange(&server->shutting_down, true))
    return;
  log_info("shutting down: no new calls, waiting up to %d s for calls in flight", grace_seconds);
  stop_accepting(server);
  grpc_server_shutdown_and_notify(server->grpc, server->queue, &server->tag_shutdown);
  /* Streams (events, lists) would otherwise run on to the grace's end. */
  cancel_streams(server);

  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += grace_seconds;
  pthread_mutex_lock(&server->lock);
  while (server->live_calls > 0)
    if (pthread_cond_timedwait(&server->changed, &server->lock, &until) == ETIMEDOUT)
      break;
  finished = server->live_calls == 0;
  pthread_mutex_unlock(&server->lock);
  if (!finished)
    log_warn("calls still in flight after %d s; cancelling them", grace_seconds);
  /* Cancels what is left and disconnects idle clients, which otherwise
   * keep the shutdown waiting for them to hang up. */
  grpc_server_cancel_all_calls(server->grpc);
}

void
server_free(struct server *server)
{
  stop_accepting(server);
  worker_pool_free(server->workers);
  grpc_server_destroy(server->grpc);
  grpc_server_credentials_release(server->credentials);
  close(server->listen_fd);
  close(server->wake_fd);
  if (server->reserve_fd >= 0)
    close(server->reserve_fd);
  grpc_completion_queue_destroy(server->queue);
  if (unlink(server->socket_path) < 0 && errno != ENOENT)
    log_warn("remove socket %s: %s", server->socket_path, strerror(errno));
  pthread_mutex_destroy(&server->lock);
  pthread_cond_destroy(&server->changed);
  free(server->socket_path);
  free(server);
}
