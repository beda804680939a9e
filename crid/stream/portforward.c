#include "crid/stream/portforward.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "pod/pod_manager.h"
#include "pod/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Connections forwarded at once in one session (two fds of the poll set
 * are the session's own). */
#define MAX_FORWARDS 64

struct forward
{
  uint32_t request_id;
  uint32_t data_stream, error_stream; /* 0 until opened (SPDY) */
  uint16_t port;
  int fd; /* the connection in the pod; -1 before and after */
  struct bytebuf to_target;
  bool client_fin; /* the client half-closed its data stream */
  bool target_eof; /* the pod's side closed: data stream FIN sent */
  int64_t pair_deadline;
  int poll_index;
};

struct portforward
{
  struct pod_manager *pods;
  struct stream_request *request;
  enum session_transport transport;
  int64_t stream_creation_timeout_ns;
  struct forward forwards[MAX_FORWARDS];
  size_t n;
  bool started;
};

void *
portforward_new(struct pod_manager *pods, struct stream_request *request,
                enum session_transport transport, int64_t stream_creation_timeout_ns)
{
  struct portforward *pf = xcalloc(1, sizeof *pf);

  pf->pods = pods;
  pf->request = request;
  pf->transport = transport;
  pf->stream_creation_timeout_ns = stream_creation_timeout_ns;
  return pf;
}

static struct portforward *
pf_of(struct session *s)
{
  return session_backend_data(s);
}

static void
forward_remove(struct portforward *pf, struct forward *f)
{
  if (f->fd >= 0)
    close(f->fd);
  bytebuf_free(&f->to_target);
  *f = pf->forwards[--pf->n];
}

/* The connection in the pod failed: the text on the error stream, both
 * streams closed (what the kubelet does). */
static void
forward_fail(struct session *s, struct forward *f, const char *message)
{
  cleanup_free char *text = xasprintf("error forwarding port %u to pod %s: %s", (unsigned)f->port,
                                      pf_of(s)->request->sandbox_id, message);

  log_info("port-forward: %s", text);
  session_send(s, f->error_stream, text, strlen(text));
  session_close_stream(s, f->error_stream);
  session_close_stream(s, f->data_stream);
  if (f->fd >= 0)
    close(f->fd);
  f->fd = -1;
  f->target_eof = f->client_fin = true;
}

static void
forward_dial(struct session *s, struct forward *f)
{
  struct portforward *pf = pf_of(s);
  struct error err = ERROR_INIT;
  struct sandbox *sandbox = pod_manager_find_sandbox(pf->pods, pf->request->sandbox_id, &err);

  f->pair_deadline = 0;
  if (sandbox)
    {
      f->fd = sandbox_connect_port(pf->pods, sandbox, f->port, &err);
      sandbox_unref(sandbox);
    }
  if (f->fd < 0)
    forward_fail(s, f, error_message(&err));
  else
    fcntl(f->fd, F_SETFL, fcntl(f->fd, F_GETFL) | O_NONBLOCK);
  error_clear(&err);
}

static bool
parse_u32(const char *text, uint32_t max, uint32_t *out)
{
  char *end;
  unsigned long v;

  if (text == NULL || *text < '0' || *text > '9')
    return false;
  errno = 0;
  v = strtoul(text, &end, 10);
  if (errno || *end || v > max)
    return false;
  *out = (uint32_t)v;
  return true;
}

static struct forward *
forward_for_request(struct portforward *pf, uint32_t request_id)
{
  for (size_t i = 0; i < pf->n; i++)
    if (pf->forwards[i].request_id == request_id)
      return &pf->forwards[i];
  return NULL;
}

static void
pf_on_stream(struct session *s, const struct spdy_frame *syn)
{
  struct portforward *pf = pf_of(s);
  const char *type = spdy_frame_header(syn, "streamtype");
  const char *request_text = spdy_frame_header(syn, "requestid");
  bool is_data = type && strcmp(type, "data") == 0;
  bool is_error = type && strcmp(type, "error") == 0;
  uint32_t port, request_id;
  struct forward *f;

  if ((!is_data && !is_error) || !parse_u32(spdy_frame_header(syn, "port"), 65535, &port)
      || port == 0)
    {
      session_reset(s, syn->stream_id, SPDY_RST_PROTOCOL_ERROR);
      return;
    }
  /* Older clients send no requestid: the pair is error stream n, data
   * stream n + 2. */
  if (!parse_u32(request_text, UINT32_MAX, &request_id))
    request_id = is_error ? syn->stream_id : syn->stream_id - 2;
  f = forward_for_request(pf, request_id);
  if (f == NULL)
    {
      if (pf->n == MAX_FORWARDS)
        {
          session_reset(s, syn->stream_id, SPDY_RST_REFUSED_STREAM);
          return;
        }
      f = &pf->forwards[pf->n++];
      memset(f, 0, sizeof *f);
      f->fd = -1;
      f->request_id = request_id;
      f->port = (uint16_t)port;
      f->pair_deadline = time_monotonic_ns() + pf->stream_creation_timeout_ns;
    }
  if ((is_data && f->data_stream) || (is_error && f->error_stream) || f->port != port)
    {
      session_reset(s, syn->stream_id, SPDY_RST_PROTOCOL_ERROR);
      return;
    }
  if (is_data)
    f->data_stream = syn->stream_id;
  else
    f->error_stream = syn->stream_id;
  session_accept_stream(s, syn->stream_id);
  if (f->data_stream && f->error_stream)
    forward_dial(s, f);
}

static struct forward *
forward_of_stream(struct portforward *pf, uint32_t stream, bool *is_data)
{
  for (size_t i = 0; i < pf->n; i++)
    {
      struct forward *f = &pf->forwards[i];
      if (f->data_stream == stream || f->error_stream == stream)
        {
          *is_data = f->data_stream == stream;
          return f;
        }
    }
  return NULL;
}

static void
pf_on_data(struct session *s, uint32_t stream, const uint8_t *data, size_t len)
{
  bool is_data;
  struct forward *f = forward_of_stream(pf_of(s), stream, &is_data);

  if (f && is_data && f->fd >= 0 && !f->client_fin)
    bytebuf_append(&f->to_target, data, len);
}

static void
pf_on_fin(struct session *s, uint32_t stream)
{
  bool is_data;
  struct forward *f = forward_of_stream(pf_of(s), stream, &is_data);

  /* The client half-closes its error stream at once: nothing to do. */
  if (f && is_data)
    {
      f->client_fin = true;
      if (f->fd >= 0 && f->to_target.len == 0)
        shutdown(f->fd, SHUT_WR);
    }
}

static void
pf_on_reset(struct session *s, uint32_t stream)
{
  struct portforward *pf = pf_of(s);
  bool is_data;
  struct forward *f = forward_of_stream(pf, stream, &is_data);

  if (f && is_data)
    forward_remove(pf, f);
}

static bool
pf_input_blocked(struct session *s)
{
  struct portforward *pf = pf_of(s);

  for (size_t i = 0; i < pf->n; i++)
    if (pf->forwards[i].to_target.len > 0)
      return true;
  return false;
}

/* WebSocket: every port of the request, dialed at the start. */
static void
start_websocket(struct session *s)
{
  struct portforward *pf = pf_of(s);

  pf->started = true;
  for (size_t i = 0; i < pf->request->n_ports && pf->n < MAX_FORWARDS; i++)
    {
      struct forward *f = &pf->forwards[pf->n++];
      uint8_t port_le[2]
          = { (uint8_t)pf->request->ports[i], (uint8_t)(pf->request->ports[i] >> 8) };

      memset(f, 0, sizeof *f);
      f->fd = -1;
      f->port = pf->request->ports[i];
      f->data_stream = (uint32_t)(2 * i);
      f->error_stream = (uint32_t)(2 * i + 1);
      session_send(s, f->data_stream, port_le, 2);
      session_send(s, f->error_stream, port_le, 2);
      forward_dial(s, f);
    }
  if (pf->n == 0)
    session_finish(s);
}

/* Drops forwards that are done both ways; WebSocket sessions end with
 * their last one. */
static void
sweep(struct session *s)
{
  struct portforward *pf = pf_of(s);

  for (size_t i = 0; i < pf->n;)
    {
      struct forward *f = &pf->forwards[i];
      if (f->target_eof && f->client_fin && f->to_target.len == 0)
        {
          if (f->fd >= 0)
            session_close_stream(s, f->error_stream);
          forward_remove(pf, f);
        }
      else
        i++;
    }
  if (pf->transport == TRANSPORT_WEBSOCKET && pf->started)
    {
      bool open = false;
      for (size_t i = 0; i < pf->n; i++)
        open |= !pf->forwards[i].target_eof;
      if (!open)
        session_finish(s);
    }
}

static size_t
pf_poll_fds(struct session *s, struct pollfd *fds, size_t max)
{
  struct portforward *pf = pf_of(s);
  size_t n = 0;

  if (pf->transport == TRANSPORT_WEBSOCKET && !pf->started)
    start_websocket(s);
  for (size_t i = 0; i < pf->n; i++)
    {
      struct forward *f = &pf->forwards[i];
      short events = 0;
      f->poll_index = -1;
      if (f->fd < 0)
        continue;
      if (!f->target_eof && session_can_send(s))
        events |= POLLIN;
      if (f->to_target.len > 0)
        events |= POLLOUT;
      if (events && n < max)
        {
          f->poll_index = (int)n;
          fds[n++] = (struct pollfd){ f->fd, events, 0 };
        }
    }
  return n;
}

static void
target_write(struct forward *f)
{
  ssize_t w = send(f->fd, bytebuf_head(&f->to_target), f->to_target.len, MSG_NOSIGNAL);

  if (w > 0)
    bytebuf_consume(&f->to_target, (size_t)w);
  else if (w < 0 && errno != EAGAIN && errno != EINTR)
    bytebuf_free(&f->to_target); /* the pod's side is gone; its read shows it */
  if (f->to_target.len == 0)
    {
      bytebuf_free(&f->to_target);
      if (f->client_fin)
        shutdown(f->fd, SHUT_WR);
    }
}

static void
target_read(struct session *s, struct forward *f)
{
  uint8_t buffer[SESSION_CHUNK];
  ssize_t n = recv(f->fd, buffer, sizeof buffer, 0);

  if (n > 0)
    {
      session_send(s, f->data_stream, buffer, (size_t)n);
      return;
    }
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  /* The pod's side is done: so is the forwarded connection, whatever the
   * client still sends (as the kubelet's forwarder ends both copies when
   * one ends). */
  f->target_eof = f->client_fin = true;
  bytebuf_free(&f->to_target);
  session_close_stream(s, f->data_stream);
}

static void
pf_on_poll(struct session *s, const struct pollfd *fds, size_t n)
{
  struct portforward *pf = pf_of(s);

  for (size_t i = 0; i < pf->n; i++)
    {
      struct forward *f = &pf->forwards[i];
      if (f->poll_index < 0 || (size_t)f->poll_index >= n)
        continue;
      if (fds[f->poll_index].revents & POLLOUT)
        target_write(f);
      if ((fds[f->poll_index].revents & (POLLIN | POLLHUP | POLLERR)) && !f->target_eof)
        target_read(s, f);
    }
  sweep(s);
}

static int64_t
pf_deadline(struct session *s)
{
  struct portforward *pf = pf_of(s);
  int64_t deadline = 0;

  for (size_t i = 0; i < pf->n; i++)
    if (pf->forwards[i].pair_deadline
        && (deadline == 0 || pf->forwards[i].pair_deadline < deadline))
      deadline = pf->forwards[i].pair_deadline;
  return deadline;
}

/* A pair whose second stream never came. */
static void
pf_on_deadline(struct session *s)
{
  struct portforward *pf = pf_of(s);
  int64_t now = time_monotonic_ns();

  for (size_t i = 0; i < pf->n;)
    {
      struct forward *f = &pf->forwards[i];
      if (f->pair_deadline && f->pair_deadline <= now)
        {
          if (f->data_stream)
            session_reset(s, f->data_stream, SPDY_RST_CANCEL);
          if (f->error_stream)
            session_reset(s, f->error_stream, SPDY_RST_CANCEL);
          forward_remove(pf, f);
        }
      else
        i++;
    }
}

static void
pf_on_client_gone(struct session *s)
{
  struct portforward *pf = pf_of(s);

  while (pf->n > 0)
    forward_remove(pf, &pf->forwards[pf->n - 1]);
}

static void
pf_free(struct session *s)
{
  struct portforward *pf = pf_of(s);

  pf_on_client_gone(s);
  stream_request_free(pf->request);
  free(pf);
}

const struct session_backend portforward_backend = {
  .on_stream = pf_on_stream,
  .on_data = pf_on_data,
  .on_fin = pf_on_fin,
  .on_reset = pf_on_reset,
  .poll_fds = pf_poll_fds,
  .on_poll = pf_on_poll,
  .input_blocked = pf_input_blocked,
  .deadline = pf_deadline,
  .on_deadline = pf_on_deadline,
  .on_client_gone = pf_on_client_gone,
  .free = pf_free,
};
