/* crid/stream/session: one upgraded streaming connection, run on a
 * thread of its own: the transport (SPDY/3.1 streams or WebSocket
 * channels) over the client socket, the poll loop, output buffering with
 * back-pressure, the idle and stream-creation timeouts, and the orderly
 * end (GOAWAY or a close frame).  What the streams carry is the
 * backend's: remote commands (exec, attach: remotecommand.c) or
 * port-forward (portforward.c).
 *
 * Memory stays bounded per session: the client socket is read only while
 * the backend has no input waiting to be delivered, and backends read
 * their sources only while the output queue is below
 * SESSION_OUTPUT_HIGH, so a client that stops reading stops the process,
 * not crid's memory. */
#ifndef CRID_STREAM_SESSION_H
#define CRID_STREAM_SESSION_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bytebuf.h"
#include "crid/stream/spdy.h"
#include "crid/stream/websocket.h"

#define SESSION_OUTPUT_HIGH (64 * 1024)
#define SESSION_CHUNK (16 * 1024)
#define SESSION_MAX_BACKEND_FDS 130

struct session;
struct http_upgraded;

enum session_transport
{
  TRANSPORT_SPDY,
  TRANSPORT_WEBSOCKET,
};

/* Kubernetes remote-command channels (WebSocket channel numbers). */
enum session_channel
{
  CHANNEL_STDIN = 0,
  CHANNEL_STDOUT = 1,
  CHANNEL_STDERR = 2,
  CHANNEL_ERROR = 3,
  CHANNEL_RESIZE = 4,
};

/* What a backend does with the session's events.  A "stream" is a SPDY
 * stream id, or a WebSocket channel number. */
struct session_backend
{
  /* SPDY: the client opened a stream; accept it with
   * session_accept_stream() or refuse it with session_reset(). */
  void (*on_stream)(struct session *s, const struct spdy_frame *syn);
  /* Data from the client on a stream. */
  void (*on_data)(struct session *s, uint32_t stream, const uint8_t *data, size_t len);
  /* The client half-closed a stream (SPDY FIN, v5 CLOSE message). */
  void (*on_fin)(struct session *s, uint32_t stream);
  /* The client reset a stream (SPDY only). */
  void (*on_reset)(struct session *s, uint32_t stream);
  /* The backend's fds for the next poll, at most max; returns the count. */
  size_t (*poll_fds)(struct session *s, struct pollfd *fds, size_t max);
  /* The results of that poll (the same array and count). */
  void (*on_poll)(struct session *s, const struct pollfd *fds, size_t n);
  /* True while the backend holds client input it could not deliver yet:
   * the client socket is not read meanwhile. */
  bool (*input_blocked)(struct session *s);
  /* The deadline (time_monotonic_ns) the backend wants to be woken at;
   * 0 = none. */
  int64_t (*deadline)(struct session *s);
  /* Called once the backend's deadline has passed. */
  void (*on_deadline)(struct session *s);
  /* The client went away (or the session is being torn down): stop and
   * release everything; no more output can be sent. */
  void (*on_client_gone)(struct session *s);
  /* Frees the backend's state. */
  void (*free)(struct session *s);
};

struct session_params
{
  enum session_transport transport;
  enum ws_channel_encoding ws_encoding; /* WebSocket */
  bool ws_close_messages;               /* WebSocket v5: [255, channel] half-closes */
  const struct session_backend *backend;
  void *backend_data;
  int64_t idle_timeout_ns;
  int stop_fd;             /* readable when crid stops: every session ends; -1 = none */
  const char *description; /* for log lines: "exec in 1234abcd" */
};

/* Runs the session to its end on the calling thread, then closes the
 * connection. */
void session_run(struct http_upgraded *upgraded, const struct session_params *params);

void *session_backend_data(struct session *s);
enum session_transport session_transport(const struct session *s);

/* Output.  May the backend produce more now? */
bool session_can_send(const struct session *s);
void session_accept_stream(struct session *s, uint32_t stream);
void session_send(struct session *s, uint32_t stream, const void *data, size_t len);
/* SPDY: FIN on the stream (an empty DATA frame).  WebSocket: nothing. */
void session_close_stream(struct session *s, uint32_t stream);
void session_reset(struct session *s, uint32_t stream, uint32_t status);
/* SPDY: the client will open no more streams (see
 * spdy_codec_close_inflater); a session keeps less memory. */
void session_no_more_streams(struct session *s);
/* Flushes what is queued and ends the session (GOAWAY / close frame). */
void session_finish(struct session *s);
/* True once the session is ending (finished or the client is gone). */
bool session_ending(const struct session *s);

#endif
