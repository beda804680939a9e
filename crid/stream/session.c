#include "crid/stream/session.h"
#include "crid/http_server.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* How long the end of a session may take to reach a slow client. */
#define FINISH_TIMEOUT_NS (5LL * 1000000000LL)
/* After the last byte, how long to read (and drop) what the client still
 * sends before closing, so the close does not reset the connection
 * under the client's feet while it reads our last frames. */
#define LINGER_MS 1000
#define READ_CHUNK (16 * 1024)

struct session
{
  struct http_upgraded *upgraded;
  int fd;
  struct session_params params;
  struct spdy_codec *codec; /* SPDY */
  uint32_t last_client_stream;
  struct bytebuf in, out;
  bool client_gone;
  bool finishing;
  int64_t idle_deadline;
  int64_t finish_deadline;
};

void *
session_backend_data(struct session *s)
{
  return s->params.backend_data;
}

enum session_transport
session_transport(const struct session *s)
{
  return s->params.transport;
}

bool
session_can_send(const struct session *s)
{
  return !s->client_gone && !s->finishing && s->out.len < SESSION_OUTPUT_HIGH;
}

bool
session_ending(const struct session *s)
{
  return s->client_gone || s->finishing;
}

static void
touch(struct session *s)
{
  if (s->params.idle_timeout_ns > 0)
    s->idle_deadline = time_monotonic_ns() + s->params.idle_timeout_ns;
}

void
session_accept_stream(struct session *s, uint32_t stream)
{
  struct error err = ERROR_INIT;

  if (s->params.transport != TRANSPORT_SPDY || session_ending(s))
    return;
  if (spdy_write_syn_reply(s->codec, &s->out, stream, 0, NULL, 0, &err) < 0)
    {
      log_warn("%s: %s", s->params.description, error_message(&err));
      error_clear(&err);
      s->client_gone = true;
    }
}

void
session_send(struct session *s, uint32_t stream, const void *data, size_t len)
{
  const uint8_t *bytes = data;

  if (session_ending(s))
    return;
  touch(s);
  do
    {
      size_t n = len < SESSION_CHUNK ? len : SESSION_CHUNK;
      if (s->params.transport == TRANSPORT_SPDY)
        spdy_write_data(&s->out, stream, 0, bytes, n);
      else
        ws_write_channel(&s->out, s->params.ws_encoding, (uint8_t)stream, bytes, n);
      bytes += n;
      len -= n;
    }
  while (len > 0);
}

void
session_close_stream(struct session *s, uint32_t stream)
{
  if (!session_ending(s) && s->params.transport == TRANSPORT_SPDY)
    spdy_write_data(&s->out, stream, SPDY_FLAG_FIN, NULL, 0);
}

void
session_reset(struct session *s, uint32_t stream, uint32_t status)
{
  if (!session_ending(s) && s->params.transport == TRANSPORT_SPDY)
    spdy_write_rst_stream(&s->out, stream, status);
}

void
session_no_more_streams(struct session *s)
{
  if (s->codec)
    spdy_codec_close_inflater(s->codec);
}

void
session_finish(struct session *s)
{
  if (session_ending(s))
    return;
  if (s->params.transport == TRANSPORT_SPDY)
    spdy_write_goaway(&s->out, s->last_client_stream, SPDY_GOAWAY_OK);
  else
    ws_write_close(&s->out, WS_CLOSE_NORMAL, NULL);
  s->finishing = true;
  s->finish_deadline = time_monotonic_ns() + FINISH_TIMEOUT_NS;
}

/* The client broke the protocol: say so if possible and drop it. */
static void
protocol_error(struct session *s, struct error *err)
{
  log_info("%s: client protocol error: %s", s->params.description, error_message(err));
  if (!session_ending(s))
    {
      if (s->params.transport == TRANSPORT_SPDY)
        spdy_write_goaway(&s->out, s->last_client_stream, SPDY_GOAWAY_PROTOCOL_ERROR);
      else if (err->code == EMSGSIZE)
        ws_write_close(&s->out, WS_CLOSE_TOO_BIG, "message too big");
      else
        ws_write_close(&s->out, WS_CLOSE_PROTOCOL_ERROR, "protocol error");
      s->finishing = true;
      s->finish_deadline = time_monotonic_ns() + FINISH_TIMEOUT_NS;
    }
  error_clear(err);
  s->in.len = 0;
}

static void
client_went_away(struct session *s)
{
  s->client_gone = true;
}

static void
spdy_dispatch(struct session *s, const struct spdy_frame *frame)
{
  const struct session_backend *b = s->params.backend;

  switch (frame->type)
    {
    case SPDY_SYN_STREAM:
      if ((frame->stream_id & 1) == 0 || frame->stream_id <= s->last_client_stream)
        {
          spdy_write_rst_stream(&s->out, frame->stream_id, SPDY_RST_PROTOCOL_ERROR);
          return;
        }
      s->last_client_stream = frame->stream_id;
      b->on_stream(s, frame);
      if (frame->flags & SPDY_FLAG_FIN)
        b->on_fin(s, frame->stream_id);
      return;
    case SPDY_DATA:
      if (frame->data_len)
        b->on_data(s, frame->stream_id, frame->data, frame->data_len);
      if (frame->flags & SPDY_FLAG_FIN)
        b->on_fin(s, frame->stream_id);
      return;
    case SPDY_RST_STREAM:
      b->on_reset(s, frame->stream_id);
      return;
    case SPDY_PING:
      /* Ours are even; a client's (odd) is echoed back. */
      if (frame->ping_id & 1)
        spdy_write_ping(&s->out, frame->ping_id);
      return;
    case SPDY_GOAWAY:
      client_went_away(s);
      return;
    default: /* SYN_REPLY, SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do */
      return;
    }
}

static void
ws_dispatch(struct session *s, const struct ws_frame *frame)
{
  const struct session_backend *b = s->params.backend;
  struct error err = ERROR_INIT;
  uint8_t *decoded = NULL;
  const uint8_t *data;
  size_t len;
  uint8_t channel;

  switch (frame->opcode)
    {
    case WS_PING:
      ws_write_frame(&s->out, WS_PONG, frame->payload, frame->payload_len);
      return;
    case WS_CLOSE:
      if (!session_ending(s))
        ws_write_close(&s->out, WS_CLOSE_NORMAL, NULL);
      s->finishing = true;
      s->finish_deadline = time_monotonic_ns() + FINISH_TIMEOUT_NS;
      b->on_client_gone(s);
      return;
    case WS_TEXT:
    case WS_BINARY:
      if (!frame->fin)
        {
          error_set(&err, EPROTO, "fragmented messages are not supported");
          protocol_error(s, &err);
          return;
        }
      if (ws_read_channel(s->params.ws_encoding, frame->opcode, frame->payload, frame->payload_len,
                          &channel, &data, &len, &decoded, &err)
          < 0)
        {
          protocol_error(s, &err);
          return;
        }
      if (channel == 255 && s->params.ws_close_messages && len == 1)
        b->on_fin(s, data[0]);
      else if (len > 0)
        b->on_data(s, channel, data, len);
      free(decoded);
      return;
    default: /* PONG, a stray continuation */
      return;
    }
}

/* Parses and dispatches what the client sent, as far as the backend
 * takes input. */
static void
process_input(struct session *s)
{
  const struct session_backend *b = s->params.backend;
  struct error err = ERROR_INIT;

  while (s->in.len > 0 && !s->client_gone && !s->finishing && !b->input_blocked(s))
    {
      ssize_t used;
      if (s->params.transport == TRANSPORT_SPDY)
        {
          struct spdy_frame frame;
          used = spdy_parse_frame(s->codec, bytebuf_head(&s->in), s->in.len, &frame, &err);
          if (used > 0)
            {
              spdy_dispatch(s, &frame);
              spdy_frame_clear(&frame);
            }
        }
      else
        {
          struct ws_frame frame;
          used = ws_parse_frame((uint8_t *)bytebuf_head(&s->in), s->in.len, true, &frame, &err);
          if (used > 0)
            ws_dispatch(s, &frame);
        }
      if (used < 0)
        {
          protocol_error(s, &err);
          return;
        }
      if (used == 0)
        return;
      bytebuf_consume(&s->in, (size_t)used);
      touch(s);
    }
  /* Nothing half-read: an idle session keeps no input buffer. */
  if (s->in.len == 0)
    bytebuf_free(&s->in);
}

static void
read_client(struct session *s)
{
  uint8_t *space = bytebuf_reserve(&s->in, READ_CHUNK);
  ssize_t n = read(s->fd, space, READ_CHUNK);

  if (n > 0)
    bytebuf_commit(&s->in, (size_t)n);
  else if (n == 0 || (errno != EAGAIN && errno != EINTR))
    client_went_away(s);
}

static void
write_client(struct session *s)
{
  while (s->out.len > 0)
    {
      ssize_t n = send(s->fd, bytebuf_head(&s->out), s->out.len, MSG_NOSIGNAL);
      if (n > 0)
        bytebuf_consume(&s->out, (size_t)n);
      else if (n < 0 && errno == EINTR)
        continue;
      else
        {
          if (n < 0 && errno != EAGAIN)
            client_went_away(s);
          return;
        }
    }
  /* Drained: let the queue's storage go, an idle session keeps none. */
  bytebuf_free(&s->out);
}

static int64_t
earliest(int64_t a, int64_t b)
{
  return a == 0 ? b : b == 0 ? a : a < b ? a : b;
}

static void
linger(struct session *s)
{
  char drop[4096];
  int64_t deadline = time_monotonic_ns() + LINGER_MS * 1000000LL;

  shutdown(s->fd, SHUT_WR);
  for (;;)
    {
      struct pollfd pfd = { s->fd, POLLIN, 0 };
      int n = poll(&pfd, 1, time_remaining_ms(deadline));
      if (n <= 0 || read(s->fd, drop, sizeof drop) <= 0)
        return;
    }
}

static void
loop(struct session *s)
{
  const struct session_backend *b = s->params.backend;
  struct pollfd fds[2 + SESSION_MAX_BACKEND_FDS];

  for (;;)
    {
      int64_t now, deadline;
      size_t n_backend = 0;
      int ready;

      process_input(s);
      if (s->client_gone || (s->finishing && s->out.len == 0))
        return;
      /* The backend first: what it queues now (a start, a ready message)
       * must be written in this round. */
      if (!s->finishing)
        n_backend = b->poll_fds(s, fds + 2, SESSION_MAX_BACKEND_FDS);
      if (s->client_gone)
        return;
      fds[0] = (struct pollfd){ s->fd, 0, 0 };
      if (!s->finishing && !b->input_blocked(s))
        fds[0].events |= POLLIN;
      if (s->out.len > 0)
        fds[0].events |= POLLOUT;
      fds[1] = (struct pollfd){ s->params.stop_fd, POLLIN, 0 };
      deadline = s->finishing ? s->finish_deadline : earliest(s->idle_deadline, b->deadline(s));
      ready = poll(fds, 2 + n_backend, time_remaining_ms(deadline));
      if (ready < 0 && errno != EINTR)
        return;
      if (fds[1].revents)
        {
          log_info("%s: ended, crid is stopping", s->params.description);
          return;
        }
      if (fds[0].revents & POLLOUT)
        write_client(s);
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR))
        read_client(s);
      if (ready > 0 && n_backend > 0 && !s->client_gone)
        b->on_poll(s, fds + 2, n_backend);
      now = time_monotonic_ns();
      if (s->finishing && now >= s->finish_deadline)
        return;
      if (!s->finishing && s->idle_deadline && now >= s->idle_deadline)
        {
          log_info("%s: idle for too long, closing", s->params.description);
          return;
        }
      if (!s->finishing && b->deadline(s) && now >= b->deadline(s))
        b->on_deadline(s);
    }
}

void
session_run(struct http_upgraded *upgraded, const struct session_params *params)
{
  struct session s = { .upgraded = upgraded, .fd = http_upgraded_fd(upgraded) };
  const uint8_t *extra;
  size_t extra_len;

  s.params = *params;
  if (params->transport == TRANSPORT_SPDY)
    s.codec = spdy_codec_new();
  extra = http_upgraded_extra(upgraded, &extra_len);
  bytebuf_append(&s.in, extra, extra_len);
  fcntl(s.fd, F_SETFL, fcntl(s.fd, F_GETFL) | O_NONBLOCK);
  touch(&s);
  loop(&s);
  params->backend->on_client_gone(&s);
  if (!s.client_gone && s.out.len == 0)
    linger(&s);
  params->backend->free(&s);
  spdy_codec_free(s.codec);
  bytebuf_free(&s.in);
  bytebuf_free(&s.out);
  http_upgraded_close(upgraded);
}
