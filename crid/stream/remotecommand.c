#include "crid/stream/remotecommand.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "pod/layout.h"
#include "pod/container.h"
#include "pod/exec.h"
#include "pod/pod_manager.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#define N_CHANNELS 5
/* Once the command ended, how long its output may take to reach EOF. */
#define DRAIN_AFTER_EXIT_NS (1000LL * 1000000LL)
/* crid-conmon takes packets of at most this size on the attach socket. */
#define ATTACH_PACKET_MAX (32 * 1024)
#define RESIZE_BUFFER_MAX 4096

struct remotecommand
{
  struct pod_manager *pods;
  struct stream_request *request;
  int version;
  enum session_transport transport;

  uint32_t stream_of[N_CHANNELS]; /* SPDY stream id of each channel; 0 = none */
  unsigned expected, received;
  int64_t streams_deadline;
  bool started;
  bool finished;

  /* exec */
  struct exec_process process;
  bool process_running;
  bool process_ended;
  int64_t drain_deadline;
  /* attach */
  int attach_fd;

  int out_fd, err_fd; /* sources of output; -1 once at EOF */
  int in_fd;          /* where stdin goes; -1 once closed */
  struct bytebuf stdin_pending;
  bool stdin_fin;
  struct bytebuf resize;

  int poll_out, poll_err, poll_in, poll_pid; /* indices in the last poll set; -1 */
};

static bool
is_exec(const struct remotecommand *rc)
{
  return rc->request->kind == STREAM_EXEC;
}

void *
remotecommand_new(struct pod_manager *pods, struct stream_request *request, int version,
                  enum session_transport transport, int64_t stream_creation_timeout_ns)
{
  struct remotecommand *rc = xcalloc(1, sizeof *rc);

  rc->pods = pods;
  rc->request = request;
  rc->version = version;
  rc->transport = transport;
  rc->attach_fd = rc->out_fd = rc->err_fd = rc->in_fd = -1;
  rc->process.pidfd = rc->process.stdin_fd = rc->process.stdout_fd = rc->process.stderr_fd = -1;
  rc->expected = 1 + request->stdin + request->stdout + (request->stderr && !request->tty)
                 + (request->tty && version >= 3);
  rc->streams_deadline = time_monotonic_ns() + stream_creation_timeout_ns;
  if (transport == TRANSPORT_WEBSOCKET)
    for (int c = 0; c < N_CHANNELS; c++)
      rc->stream_of[c] = (uint32_t)c;
  return rc;
}

static struct remotecommand *
rc_of(struct session *s)
{
  return session_backend_data(s);
}

static bool
has_channel(const struct remotecommand *rc, enum session_channel channel)
{
  return rc->transport == TRANSPORT_WEBSOCKET ? true : rc->stream_of[channel] != 0;
}

/* ---- The status on the error stream ------------------------------------ */

static char *
status_json(int exit_code, const char *internal_error)
{
  struct json_writer *w = json_writer_new(false);
  cleanup_free char *code_text = xasprintf("%d", exit_code);

  json_begin_object(w);
  json_write_key(w, "metadata");
  json_begin_object(w);
  json_end_object(w);
  json_write_key(w, "status");
  if (internal_error == NULL && exit_code == 0)
    {
      json_write_string(w, "Success");
      json_end_object(w);
      return json_writer_finish(w, NULL);
    }
  json_write_string(w, "Failure");
  json_write_key(w, "message");
  if (internal_error)
    {
      cleanup_free char *message = xasprintf("Internal error occurred: %s", internal_error);
      json_write_string(w, message);
      json_write_key(w, "reason");
      json_write_string(w, "InternalError");
      json_write_key(w, "details");
      json_begin_object(w);
      json_write_key(w, "causes");
      json_begin_array(w);
      json_begin_object(w);
      json_write_key(w, "message");
      json_write_string(w, internal_error);
      json_end_object(w);
      json_end_array(w);
      json_end_object(w);
      json_write_key(w, "code");
      json_write_int(w, 500);
    }
  else
    {
      cleanup_free char *message
          = xasprintf("command terminated with non-zero exit code: exit status %d", exit_code);
      json_write_string(w, message);
      json_write_key(w, "reason");
      json_write_string(w, "NonZeroExitCode");
      json_write_key(w, "details");
      json_begin_object(w);
      json_write_key(w, "causes");
      json_begin_array(w);
      json_begin_object(w);
      json_write_key(w, "reason");
      json_write_string(w, "ExitCode");
      json_write_key(w, "message");
      json_write_string(w, code_text);
      json_end_object(w);
      json_end_array(w);
      json_end_object(w);
    }
  json_end_object(w);
  return json_writer_finish(w, NULL);
}

/* Ends the session: output streams closed, the status on the error
 * stream, then GOAWAY / close.  internal_error NULL: the command ran. */
static void
finish(struct session *s, int exit_code, const char *internal_error)
{
  struct remotecommand *rc = rc_of(s);
  cleanup_free char *status = NULL;

  if (rc->finished)
    return;
  rc->finished = true;
  if (rc->version >= 4)
    status = status_json(exit_code, internal_error);
  else if (internal_error)
    status = xstrdup(internal_error);
  else if (exit_code != 0)
    status = xasprintf("command terminated with non-zero exit code: exit status %d", exit_code);
  for (int c = CHANNEL_STDOUT; c <= CHANNEL_STDERR; c++)
    if (has_channel(rc, c))
      session_close_stream(s, rc->stream_of[c]);
  if (has_channel(rc, CHANNEL_ERROR))
    {
      if (status && *status)
        session_send(s, rc->stream_of[CHANNEL_ERROR], status, strlen(status));
      session_close_stream(s, rc->stream_of[CHANNEL_ERROR]);
    }
  session_finish(s);
}

/* ---- Starting: the process or the attach socket ------------------------- */

static int
attach_connect(struct remotecommand *rc, struct container *container, struct error *err)
{
  cleanup_free char *dir = layout_monitor_dir(rc->pods, container->id);
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd;

  if (snprintf(addr.sun_path, sizeof addr.sun_path, "%s/attach", dir) >= (int)sizeof addr.sun_path)
    return error_set(err, ENAMETOOLONG, "attach socket path of %s is too long", container->id);
  fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return error_set_errno(err, errno, "socket");
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
    {
      int saved = errno;
      close(fd);
      return error_set_errno(err, saved, "connect to the attach socket of container %s",
                             container->id);
    }
  rc->attach_fd = fd;
  rc->out_fd = fd;
  rc->in_fd = rc->request->stdin ? fd : -1;
  return 0;
}

static int
exec_start(struct remotecommand *rc, struct container *container, struct error *err)
{
  struct exec_request request
      = { .cmd = rc->request->cmd, .tty = rc->request->tty, .stdin = rc->request->stdin };

  if (container_exec_start(rc->pods, container, &request, &rc->process, err) < 0)
    return -1;
  rc->process_running = true;
  rc->out_fd = rc->process.stdout_fd;
  rc->err_fd = rc->process.stderr_fd;
  rc->in_fd = rc->process.stdin_fd;
  for (int *fd = &rc->out_fd; fd; fd = fd == &rc->out_fd ? &rc->err_fd : NULL)
    if (*fd >= 0)
      fcntl(*fd, F_SETFL, fcntl(*fd, F_GETFL) | O_NONBLOCK);
  if (rc->in_fd >= 0)
    fcntl(rc->in_fd, F_SETFL, fcntl(rc->in_fd, F_GETFL) | O_NONBLOCK);
  return 0;
}

static void
start(struct session *s)
{
  struct remotecommand *rc = rc_of(s);
  struct error err = ERROR_INIT;
  struct container *container;
  int ret;

  rc->started = true;
  session_no_more_streams(s);
  if (rc->transport == TRANSPORT_WEBSOCKET)
    {
      /* The ready signal WebSocket clients wait for: one empty message. */
      enum session_channel ready = rc->request->stdout   ? CHANNEL_STDOUT
                                   : rc->request->stderr ? CHANNEL_STDERR
                                                         : CHANNEL_ERROR;
      session_send(s, ready, "", 0);
    }
  container = pod_manager_find_container(rc->pods, rc->request->container_id, &err);
  if (container == NULL)
    ret = -1;
  else
    {
      ret = is_exec(rc) ? exec_start(rc, container, &err) : attach_connect(rc, container, &err);
      container_unref(container);
    }
  if (ret < 0)
    {
      log_info("%s %.12s: %s", is_exec(rc) ? "exec" : "attach", rc->request->container_id,
               error_message(&err));
      finish(s, 0, error_message(&err));
    }
  error_clear(&err);
}

/* ---- Client events --------------------------------------------------------- */

static int
channel_of_type(const char *type)
{
  static const char *const names[N_CHANNELS] = { "stdin", "stdout", "stderr", "error", "resize" };
  for (int c = 0; type && c < N_CHANNELS; c++)
    if (strcmp(type, names[c]) == 0)
      return c;
  return -1;
}

static bool
channel_wanted(const struct remotecommand *rc, int channel)
{
  const struct stream_request *r = rc->request;
  switch (channel)
    {
    case CHANNEL_STDIN:
      return r->stdin;
    case CHANNEL_STDOUT:
      return r->stdout;
    case CHANNEL_STDERR:
      return r->stderr && !r->tty;
    case CHANNEL_ERROR:
      return true;
    case CHANNEL_RESIZE:
      return r->tty && rc->version >= 3;
    default:
      return false;
    }
}

static void
rc_on_stream(struct session *s, const struct spdy_frame *syn)
{
  struct remotecommand *rc = rc_of(s);
  int channel = channel_of_type(spdy_frame_header(syn, "streamtype"));

  if (channel < 0 || !channel_wanted(rc, channel) || rc->stream_of[channel] != 0 || rc->started)
    {
      session_reset(s, syn->stream_id, SPDY_RST_REFUSED_STREAM);
      return;
    }
  rc->stream_of[channel] = syn->stream_id;
  rc->received++;
  session_accept_stream(s, syn->stream_id);
}

static int
channel_of_stream(const struct remotecommand *rc, uint32_t stream)
{
  for (int c = 0; c < N_CHANNELS; c++)
    if (rc->stream_of[c] == stream && (rc->transport == TRANSPORT_WEBSOCKET || stream != 0))
      return c;
  return -1;
}

static void
apply_resize(struct remotecommand *rc, unsigned width, unsigned height)
{
  if (width > 65535 || height > 65535)
    return;
  if (is_exec(rc))
    {
      struct winsize size = { .ws_row = (unsigned short)height, .ws_col = (unsigned short)width };
      if (rc->process.tty && rc->out_fd >= 0 && ioctl(rc->out_fd, TIOCSWINSZ, &size) < 0)
        log_debug("exec resize: %s", strerror(errno));
      return;
    }
  {
    cleanup_free char *dir = layout_monitor_dir(rc->pods, rc->request->container_id);
    cleanup_free char *ctl = xasprintf("%s/ctl", dir);
    cleanup_free char *line = xasprintf("1 %u %u\n", height, width);
    cleanup_close int fd = open(ctl, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 || write_all(fd, line, strlen(line)) < 0)
      log_debug("attach resize: %s: %s", ctl, strerror(errno));
  }
}

static bool
number_field(const struct json_value *object, const char *name, unsigned *out)
{
  /* Go's decoder matches keys case-insensitively. */
  for (size_t i = 0; i < json_object_size(object); i++)
    if (strcasecmp(json_object_key_at(object, i), name) == 0)
      {
        int64_t v;
        if (!json_integer(json_object_value_at(object, i), &v) || v < 0 || v > 65535)
          return false;
        *out = (unsigned)v;
        return true;
      }
  return false;
}

/* The resize stream is a sequence of JSON objects; each complete one is
 * applied. */
static void
resize_input(struct remotecommand *rc, const uint8_t *data, size_t len)
{
  size_t start = 0;

  bytebuf_append(&rc->resize, data, len);
  for (size_t i = 0; i < rc->resize.len; i++)
    if (bytebuf_head(&rc->resize)[i] == '}')
      {
        const char *text = (const char *)bytebuf_head(&rc->resize) + start;
        struct error err = ERROR_INIT;
        cleanup_json struct json_value *size = json_parse(text, i + 1 - start, &err);
        unsigned width, height;
        if (size && number_field(size, "Width", &width) && number_field(size, "Height", &height))
          apply_resize(rc, width, height);
        error_clear(&err);
        start = i + 1;
      }
  bytebuf_consume(&rc->resize, start);
  if (rc->resize.len > RESIZE_BUFFER_MAX)
    bytebuf_free(&rc->resize);
}

static void
close_stdin(struct remotecommand *rc)
{
  if (rc->in_fd < 0)
    return;
  if (rc->attach_fd >= 0)
    shutdown(rc->attach_fd, SHUT_WR); /* crid-conmon's cue for stdin_once */
  else
    {
      close(rc->in_fd);
      if (rc->process.stdin_fd == rc->in_fd)
        rc->process.stdin_fd = -1;
    }
  rc->in_fd = -1;
}

static void
rc_on_data(struct session *s, uint32_t stream, const uint8_t *data, size_t len)
{
  struct remotecommand *rc = rc_of(s);
  int channel = channel_of_stream(rc, stream);

  if (channel == CHANNEL_STDIN && rc->request->stdin && !rc->stdin_fin && rc->in_fd >= 0)
    bytebuf_append(&rc->stdin_pending, data, len);
  else if (channel == CHANNEL_RESIZE && rc->request->tty)
    resize_input(rc, data, len);
}

static void
rc_on_fin(struct session *s, uint32_t stream)
{
  struct remotecommand *rc = rc_of(s);

  if (channel_of_stream(rc, stream) != CHANNEL_STDIN || !rc->request->stdin)
    return;
  rc->stdin_fin = true;
  if (rc->stdin_pending.len == 0 && rc->started)
    close_stdin(rc);
}

static void
rc_on_reset(struct session *s, uint32_t stream)
{
  rc_on_fin(s, stream);
}

static bool
rc_input_blocked(struct session *s)
{
  return rc_of(s)->stdin_pending.len > 0;
}

/* ---- The poll loop's part ---------------------------------------------------- */

static size_t
add(struct pollfd *fds, size_t *n, size_t max, int fd, short events)
{
  if (*n == max)
    return (size_t)-1;
  fds[*n] = (struct pollfd){ fd, events, 0 };
  return (*n)++;
}

static size_t
rc_poll_fds(struct session *s, struct pollfd *fds, size_t max)
{
  struct remotecommand *rc = rc_of(s);
  size_t n = 0;

  rc->poll_out = rc->poll_err = rc->poll_in = rc->poll_pid = -1;
  if (!rc->started && (rc->transport == TRANSPORT_WEBSOCKET || rc->received == rc->expected))
    start(s);
  if (!rc->started || rc->finished)
    return 0;
  if (rc->stdin_fin && rc->stdin_pending.len == 0)
    close_stdin(rc);
  if (session_can_send(s))
    {
      if (rc->out_fd >= 0)
        rc->poll_out = (int)add(fds, &n, max, rc->out_fd, POLLIN);
      if (rc->err_fd >= 0)
        rc->poll_err = (int)add(fds, &n, max, rc->err_fd, POLLIN);
    }
  if (rc->stdin_pending.len > 0 && rc->in_fd >= 0)
    {
      if (rc->in_fd == rc->attach_fd && rc->poll_out >= 0)
        fds[rc->poll_out].events |= POLLOUT;
      else
        rc->poll_in = (int)add(fds, &n, max, rc->in_fd, POLLOUT);
    }
  if (rc->process_running && !rc->process_ended && rc->process.pidfd >= 0)
    rc->poll_pid = (int)add(fds, &n, max, rc->process.pidfd, POLLIN);
  return n;
}

/* Reads one chunk of output; false at EOF (or EIO, a terminal whose
 * other side is gone). */
static bool
relay_output(struct session *s, int fd, enum session_channel channel)
{
  struct remotecommand *rc = rc_of(s);
  uint8_t buffer[SESSION_CHUNK + 1];
  ssize_t n = read(fd, buffer, sizeof buffer - (fd == rc->attach_fd ? 0 : 1));

  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return true;
  if (n <= 0)
    return false;
  if (fd == rc->attach_fd)
    {
      /* crid-conmon's packets: one byte of stream (2 stdout, 3 stderr). */
      channel = buffer[0] == 3 ? CHANNEL_STDERR : CHANNEL_STDOUT;
      if (rc->request->tty)
        channel = CHANNEL_STDOUT;
      if (n > 1 && has_channel(rc, channel) && channel_wanted(rc, channel))
        session_send(s, rc->stream_of[channel], buffer + 1, (size_t)n - 1);
      return true;
    }
  if (has_channel(rc, channel) && channel_wanted(rc, channel))
    session_send(s, rc->stream_of[channel], buffer, (size_t)n);
  return true;
}

static void
write_stdin(struct remotecommand *rc)
{
  size_t len = rc->stdin_pending.len;
  ssize_t n;

  if (rc->in_fd == rc->attach_fd && len > ATTACH_PACKET_MAX)
    len = ATTACH_PACKET_MAX;
  n = rc->in_fd == rc->attach_fd
          ? send(rc->in_fd, bytebuf_head(&rc->stdin_pending), len, MSG_NOSIGNAL | MSG_DONTWAIT)
          : write(rc->in_fd, bytebuf_head(&rc->stdin_pending), len);
  if (n > 0)
    bytebuf_consume(&rc->stdin_pending, (size_t)n);
  else if (n < 0 && errno != EAGAIN && errno != EINTR)
    {
      /* The reader is gone: what is pending can never be delivered. */
      bytebuf_free(&rc->stdin_pending);
      close_stdin(rc);
      return;
    }
  if (rc->stdin_pending.len == 0)
    bytebuf_free(&rc->stdin_pending);
}

static void
end_of_output(struct remotecommand *rc, int *fd)
{
  if (*fd != rc->attach_fd)
    {
      close(*fd);
      if (rc->process.stdout_fd == *fd)
        rc->process.stdout_fd = -1;
      if (rc->process.stderr_fd == *fd)
        rc->process.stderr_fd = -1;
      if (rc->process.stdin_fd == *fd)
        rc->process.stdin_fd = -1;
      if (rc->in_fd == *fd)
        rc->in_fd = -1;
    }
  *fd = -1;
}

/* The command ended and its output is in (or waited for long enough):
 * reap it and report. */
static void
exec_complete(struct session *s)
{
  struct remotecommand *rc = rc_of(s);
  struct error err = ERROR_INIT;
  int exit_code = 0;

  rc->process_running = false;
  if (exec_process_wait(&rc->process, &exit_code, &err) < 0)
    {
      finish(s, 0, error_message(&err));
      error_clear(&err);
      return;
    }
  log_debug("exec in %.12s: exit code %d", rc->request->container_id, exit_code);
  finish(s, exit_code, NULL);
}

static void
check_done(struct session *s)
{
  struct remotecommand *rc = rc_of(s);

  if (rc->finished)
    return;
  if (!is_exec(rc))
    {
      if (rc->out_fd < 0) /* crid-conmon closed: the container ended */
        {
          rc->attach_fd = -1;
          finish(s, 0, NULL);
        }
      return;
    }
  if (rc->process_running && rc->out_fd < 0 && rc->err_fd < 0
      && (rc->process_ended || rc->process.pidfd < 0))
    exec_complete(s);
}

static void
rc_on_poll(struct session *s, const struct pollfd *fds, size_t n)
{
  struct remotecommand *rc = rc_of(s);

  if (rc->poll_in >= 0 && fds[rc->poll_in].revents)
    write_stdin(rc);
  if (rc->poll_out >= 0 && (fds[rc->poll_out].revents & POLLOUT) && rc->in_fd == rc->attach_fd)
    write_stdin(rc);
  if (rc->poll_out >= 0 && (fds[rc->poll_out].revents & (POLLIN | POLLHUP | POLLERR))
      && !relay_output(s, rc->out_fd, CHANNEL_STDOUT))
    {
      if (rc->out_fd == rc->attach_fd)
        {
          close(rc->attach_fd);
          rc->in_fd = -1;
        }
      end_of_output(rc, &rc->out_fd);
    }
  if (rc->poll_err >= 0 && (fds[rc->poll_err].revents & (POLLIN | POLLHUP | POLLERR))
      && !relay_output(s, rc->err_fd, CHANNEL_STDERR))
    end_of_output(rc, &rc->err_fd);
  if (rc->poll_pid >= 0 && fds[rc->poll_pid].revents)
    {
      rc->process_ended = true;
      rc->drain_deadline = time_monotonic_ns() + DRAIN_AFTER_EXIT_NS;
    }
  check_done(s);
}

static int64_t
rc_deadline(struct session *s)
{
  struct remotecommand *rc = rc_of(s);

  if (!rc->started)
    return rc->streams_deadline;
  if (rc->process_running && rc->process_ended)
    return rc->drain_deadline;
  return 0;
}

static void
rc_on_deadline(struct session *s)
{
  struct remotecommand *rc = rc_of(s);

  if (!rc->started)
    {
      log_info("%s %.12s: the client opened %u of %u streams in time",
               is_exec(rc) ? "exec" : "attach", rc->request->container_id, rc->received,
               rc->expected);
      rc->started = true;
      finish(s, 0, "timed out waiting for the client to create streams");
      return;
    }
  /* Output still open after the command ended (a background child holds
   * it): report what we have. */
  if (rc->out_fd >= 0)
    end_of_output(rc, &rc->out_fd);
  if (rc->err_fd >= 0)
    end_of_output(rc, &rc->err_fd);
  check_done(s);
}

static void
rc_on_client_gone(struct session *s)
{
  struct remotecommand *rc = rc_of(s);

  if (rc->process_running)
    {
      struct error err = ERROR_INIT;
      int exit_code;
      exec_process_kill(&rc->process);
      if (exec_process_wait(&rc->process, &exit_code, &err) < 0)
        log_warn("exec in %.12s: %s", rc->request->container_id, error_message(&err));
      error_clear(&err);
      rc->process_running = false;
    }
  exec_process_close(&rc->process);
  if (rc->attach_fd >= 0)
    close(rc->attach_fd);
  rc->attach_fd = rc->out_fd = rc->err_fd = rc->in_fd = -1;
}

static void
rc_free(struct session *s)
{
  struct remotecommand *rc = rc_of(s);

  bytebuf_free(&rc->stdin_pending);
  bytebuf_free(&rc->resize);
  stream_request_free(rc->request);
  free(rc);
}

const struct session_backend remotecommand_backend = {
  .on_stream = rc_on_stream,
  .on_data = rc_on_data,
  .on_fin = rc_on_fin,
  .on_reset = rc_on_reset,
  .poll_fds = rc_poll_fds,
  .on_poll = rc_on_poll,
  .input_blocked = rc_input_blocked,
  .deadline = rc_deadline,
  .on_deadline = rc_on_deadline,
  .on_client_gone = rc_on_client_gone,
  .free = rc_free,
};
