/* conmon/monitor.c: crid-conmon's one poll loop, from the moment the
 * container exists until its exit file is written (and the log synced).
 *
 * Everything is an fd in one poll(2): SIGCHLD (signalfd), the container's
 * output (pipes or the pty master), stdin backpressure, the attach
 * listener and its clients, the control fifo and the OOM watch.  Besides
 * those fds only one timeout exists, armed by activity: after TRIM_MS of
 * quiet the monitor gives memory back, then sleeps without a timeout, so
 * an idle monitor uses no CPU. */
#include "conmon/conmon.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* After the container exits, how long its output may take to reach EOF
 * (a process that escaped the pid namespace can hold a pipe open). */
#define DRAIN_MS 2000
/* How long one attach client may block the broadcast before it is
 * dropped: slow readers slow the container down, dead ones do not. */
#define SLOW_CLIENT_MS 2000
/* Output read after the drain deadline, at most (bounded exit). */
#define FINAL_DRAIN_READS 64
/* Quiet time after which the monitor trims its memory (trim_memory). */
#define TRIM_MS 1000

enum
{
  T_SIGNAL,
  T_OUT,
  T_ERR,
  T_STDIN,
  T_ATTACH,
  T_CTL,
  T_OOM,
  T_CLIENT, /* T_CLIENT + i: client i */
};

#define MAX_POLL (T_CLIENT + CM_MAX_CLIENTS)

/* Page-aligned so that trim_memory() can give them back whole. */
static char read_buf[CM_READ_SIZE] __attribute__((aligned(4096)));
static char in_buf[CM_STDIN_PACKET] __attribute__((aligned(4096)));

static int64_t
monotonic_ms(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
reap_children(struct cm_monitor *m)
{
  for (;;)
    {
      int st;
      pid_t pid = waitpid(-1, &st, WNOHANG);

      if (pid <= 0)
        return;
      if (pid != m->container_pid || m->exited)
        continue;
      clock_gettime(CLOCK_REALTIME, &m->exit_time);
      m->exited = true;
      m->status = WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
      m->drain_deadline = monotonic_ms() + DRAIN_MS;
      cm_msg(CM_INFO, "container pid %d exited with status %d", (int)pid, m->status);
    }
}

static void
handle_signals(struct cm_monitor *m)
{
  struct signalfd_siginfo si[8];

  while (cm_read(m->signal_fd, si, sizeof(si)) > 0)
    ;
  reap_children(m);
}

static void
close_stdin(struct cm_monitor *m)
{
  /* The pty master is also the container's output: never close it here. */
  if (m->in_fd >= 0 && !m->in_is_pty)
    close(m->in_fd);
  m->in_fd = -1;
  m->in_off = m->in_len = 0;
}

/* A client stopped sending (or went away): with --stdin-once the first
 * such detach ends the container's stdin, after what is still pending. */
static void
client_detached(struct cm_monitor *m)
{
  if (!m->opts->stdin_once || m->in_fd < 0 || m->in_is_pty)
    return;
  m->stdin_closing = true;
  if (m->in_len == 0)
    close_stdin(m);
}

static void
flush_stdin(struct cm_monitor *m)
{
  while (m->in_off < m->in_len)
    {
      ssize_t n = write(m->in_fd, in_buf + m->in_off, m->in_len - m->in_off);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        return; /* poll for POLLOUT; clients are not read meanwhile */
      if (n < 0)
        {
          /* EPIPE: nobody reads the container's stdin any more. */
          close_stdin(m);
          return;
        }
      m->in_off += n;
    }
  m->in_off = m->in_len = 0;
  if (m->stdin_closing)
    close_stdin(m);
}

static void
client_input(struct cm_monitor *m, size_t i)
{
  struct cm_client *c = &m->clients[i];
  bool forward = m->in_fd >= 0 && m->opts->stdin_pipe;
  ssize_t n = recv(c->fd, in_buf, sizeof(in_buf), MSG_DONTWAIT);

  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0)
    {
      /* The client shut down its side; it may still read output. */
      c->input_done = true;
      client_detached(m);
      return;
    }
  if (!forward)
    return;
  m->in_off = 0;
  m->in_len = n;
  flush_stdin(m);
}

static void
drop_client(struct cm_monitor *m, size_t i)
{
  struct cm_client *c = &m->clients[i];

  if (c->fd < 0)
    return;
  close(c->fd);
  c->fd = -1;
  if (!c->input_done)
    {
      c->input_done = true;
      client_detached(m);
    }
}

static void
send_packet(struct cm_monitor *m, size_t i, char prefix, const char *data, size_t len)
{
  struct iovec iov[2] = { { &prefix, 1 }, { (void *)data, len } };
  struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };

  for (;;)
    {
      struct pollfd p = { .fd = m->clients[i].fd, .events = POLLOUT };

      if (sendmsg(p.fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
        return;
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN && poll(&p, 1, SLOW_CLIENT_MS) > 0 && !(p.revents & (POLLERR | POLLHUP)))
        continue;
      drop_client(m, i);
      return;
    }
}

/* Output goes to every client as packets of at most CM_ATTACH_PACKET
 * bytes behind a one-byte stream prefix: 2 stdout, 3 stderr. */
static void
broadcast(struct cm_monitor *m, enum cm_stream stream, const char *data, size_t len)
{
  char prefix = stream == CM_STDOUT ? 2 : 3;

  for (size_t off = 0; off < len; off += CM_ATTACH_PACKET)
    {
      size_t n = len - off < CM_ATTACH_PACKET ? len - off : CM_ATTACH_PACKET;
      for (size_t i = 0; i < m->n_clients; i++)
        if (m->clients[i].fd >= 0)
          send_packet(m, i, prefix, data + off, n);
    }
}

static void
close_output(struct cm_monitor *m, int *fd)
{
  if (*fd == m->in_fd && m->in_is_pty)
    m->in_fd = -1;
  close(*fd);
  *fd = -1;
}

/* One read from a container stream into the log and to the clients;
 * false when nothing was there (EAGAIN) or the stream ended. */
static bool
read_stream(struct cm_monitor *m, int *fd, enum cm_stream stream)
{
  struct timespec now;
  ssize_t n = cm_read(*fd, read_buf, sizeof(read_buf));

  if (n < 0 && errno == EAGAIN)
    return false;
  if (n <= 0)
    {
      /* EOF, or EIO from a pty master whose slave is gone. */
      close_output(m, fd);
      return false;
    }
  clock_gettime(CLOCK_REALTIME, &now);
  cm_log_chunk(&m->log, stream, read_buf, n, &now);
  broadcast(m, stream, read_buf, n);
  return true;
}

static void
accept_clients(struct cm_monitor *m)
{
  for (;;)
    {
      int fd = accept4(m->attach_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

      if (fd < 0)
        return;
      if (m->n_clients == CM_MAX_CLIENTS)
        {
          cm_msg(CM_WARN, "attach: more than %d clients, refusing one", CM_MAX_CLIENTS);
          close(fd);
          continue;
        }
      m->clients[m->n_clients++] = (struct cm_client){ .fd = fd };
    }
}

static void
ctl_command(struct cm_monitor *m, const char *line)
{
  unsigned height, width;
  int type = cm_ctl_parse(line, &height, &width);

  if (type == 1 && m->opts->terminal && m->out_fd >= 0)
    {
      struct winsize ws = { .ws_row = height, .ws_col = width };
      if (ioctl(m->out_fd, TIOCSWINSZ, &ws) < 0)
        cm_msg(CM_WARN, "resize terminal: %s", strerror(errno));
    }
  else if (type == 2)
    {
      if (cm_log_reopen(&m->log) < 0)
        cm_msg(CM_ERROR, "reopen log %s: %s", m->log.path, strerror(errno));
    }
  else if (type < 0)
    cm_msg(CM_WARN, "control fifo: ignoring \"%s\"", line);
}

static void
ctl_read(struct cm_monitor *m)
{
  char buf[256];
  ssize_t n = cm_read(m->ctl_fd, buf, sizeof(buf));

  for (ssize_t i = 0; i < n; i++)
    {
      if (buf[i] != '\n')
        {
          /* An over-long line is garbage: keep its tail out of the next. */
          if (m->ctl_len < sizeof(m->ctl_line) - 1)
            m->ctl_line[m->ctl_len++] = buf[i];
          else
            m->ctl_len = sizeof(m->ctl_line);
          continue;
        }
      if (m->ctl_len < sizeof(m->ctl_line))
        {
          m->ctl_line[m->ctl_len] = '\0';
          ctl_command(m, m->ctl_line);
        }
      m->ctl_len = 0;
    }
}

static void
compact_clients(struct cm_monitor *m)
{
  size_t j = 0;

  for (size_t i = 0; i < m->n_clients; i++)
    if (m->clients[i].fd >= 0)
      m->clients[j++] = m->clients[i];
  m->n_clients = j;
}

static void
add_poll(struct pollfd *pfd, int *tags, size_t *n, int fd, short events, int tag)
{
  pfd[*n] = (struct pollfd){ .fd = fd, .events = events };
  tags[*n] = tag;
  (*n)++;
}

static size_t
build_pollset(struct cm_monitor *m, struct pollfd *pfd, int *tags)
{
  bool pending = m->in_len > 0;
  size_t n = 0;

  add_poll(pfd, tags, &n, m->signal_fd, POLLIN, T_SIGNAL);
  if (m->out_fd >= 0)
    add_poll(pfd, tags, &n, m->out_fd, POLLIN | (m->in_is_pty && pending ? POLLOUT : 0), T_OUT);
  if (m->err_fd >= 0)
    add_poll(pfd, tags, &n, m->err_fd, POLLIN, T_ERR);
  if (m->in_fd >= 0 && !m->in_is_pty && pending)
    add_poll(pfd, tags, &n, m->in_fd, POLLOUT, T_STDIN);
  if (m->attach_fd >= 0 && !m->exited)
    add_poll(pfd, tags, &n, m->attach_fd, POLLIN, T_ATTACH);
  if (m->ctl_fd >= 0)
    add_poll(pfd, tags, &n, m->ctl_fd, POLLIN, T_CTL);
  if (m->oom.fd >= 0)
    add_poll(pfd, tags, &n, m->oom.fd, POLLIN, T_OOM);
  compact_clients(m);
  /* While stdin is backed up, clients are only watched for hang-ups. */
  for (size_t i = 0; i < m->n_clients; i++)
    add_poll(pfd, tags, &n, m->clients[i].fd, m->clients[i].input_done || pending ? 0 : POLLIN,
             T_CLIENT + (int)i);
  return n;
}

static void
dispatch(struct cm_monitor *m, int tag, short revents)
{
  bool readable = revents & (POLLIN | POLLHUP | POLLERR);

  switch (tag)
    {
    case T_SIGNAL:
      handle_signals(m);
      break;
    case T_OUT:
      if ((revents & POLLOUT) && m->in_fd >= 0)
        flush_stdin(m);
      if (readable && m->out_fd >= 0)
        read_stream(m, &m->out_fd, CM_STDOUT);
      break;
    case T_ERR:
      if (readable)
        read_stream(m, &m->err_fd, CM_STDERR);
      break;
    case T_STDIN:
      if (revents & POLLOUT)
        flush_stdin(m);
      else if (revents & (POLLERR | POLLHUP))
        close_stdin(m);
      break;
    case T_ATTACH:
      accept_clients(m);
      break;
    case T_CTL:
      ctl_read(m);
      break;
    case T_OOM:
      cm_oom_event(&m->oom);
      break;
    default:
      {
        size_t i = tag - T_CLIENT;
        if (m->clients[i].fd < 0)
          break;
        if (revents & POLLIN)
          client_input(m, i);
        else if (revents & (POLLHUP | POLLERR))
          drop_client(m, i);
      }
    }
}

/* Past the drain deadline: take what is readable now, boundedly. */
static void
final_drain(struct cm_monitor *m)
{
  for (int i = 0; i < FINAL_DRAIN_READS && m->out_fd >= 0; i++)
    if (!read_stream(m, &m->out_fd, CM_STDOUT))
      break;
  for (int i = 0; i < FINAL_DRAIN_READS && m->err_fd >= 0; i++)
    if (!read_stream(m, &m->err_fd, CM_STDERR))
      break;
}

void
cm_monitor_unlink(struct cm_monitor *m)
{
  if (m->attach_path)
    unlink(m->attach_path);
  if (m->ctl_path)
    unlink(m->ctl_path);
}

static void
write_oom_file(struct cm_monitor *m)
{
  char *path = cm_xasprintf("%s/oom", m->opts->socket_dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

  if (fd < 0)
    cm_msg(CM_ERROR, "create %s: %s", path, strerror(errno));
  else
    close(fd);
  free(path);
}

/* The exit file comes last of what a reader looks at: when it appears,
 * every record is written to the log file (in the page cache, where the
 * kubelet reads it), the oom file (if any) exists, attach clients have
 * seen EOF and the sockets are gone.  Its mtime is the time of the reap,
 * not of the write.  The log is synced only afterwards: the fsync of a
 * large log takes long, and the container's end must not wait for it. */
static int
finish(struct cm_monitor *m)
{
  char *path = cm_xasprintf("%s/%s", m->opts->exit_dir, m->opts->cid);
  char status[16];
  int ret = 0;

  final_drain(m);
  cm_log_flush(&m->log);
  if (cm_oom_happened(&m->oom))
    write_oom_file(m);
  cm_oom_close(&m->oom);
  for (size_t i = 0; i < m->n_clients; i++)
    if (m->clients[i].fd >= 0)
      close(m->clients[i].fd);
  m->n_clients = 0;
  close_stdin(m);
  cm_monitor_unlink(m);
  snprintf(status, sizeof(status), "%d", m->status);
  if (cm_write_file_atomic_at(path, status, strlen(status), 0644, &m->exit_time) < 0)
    {
      cm_msg(CM_ERROR, "write exit file %s: %s", path, strerror(errno));
      ret = 1;
    }
  free(path);
  cm_log_close(&m->log, true);
  return ret;
}

/* Back to the footprint of a fresh monitor once things are quiet: the
 * text pages a burst faulted in and the scratch buffers (whose content
 * means nothing between two reads) return to the kernel.  Runs once per
 * burst, after TRIM_MS without events, so a quiet monitor never wakes. */
static void
trim_memory(struct cm_monitor *m)
{
  cm_release_text();
  cm_release_pages(read_buf, sizeof(read_buf));
  if (m->in_len == 0)
    cm_release_pages(in_buf, sizeof(in_buf));
  if (m->log.out_len == 0)
    cm_release_pages(m->log.out, m->log.out_cap);
  m->busy = false;
}

int
cm_monitor_run(struct cm_monitor *m)
{
  struct pollfd pfd[MAX_POLL];
  int tags[MAX_POLL];

  /* The container may have died before the loop began (SIGCHLD pending
   * or already consumed during create). */
  reap_children(m);
  trim_memory(m);
  for (;;)
    {
      int timeout = m->busy ? TRIM_MS : -1;
      size_t n;
      int ready;

      if (m->exited && m->out_fd < 0 && m->err_fd < 0)
        return finish(m);
      if (m->exited)
        {
          int64_t left = m->drain_deadline - monotonic_ms();
          if (left <= 0)
            return finish(m);
          timeout = (int)left;
          if (m->in_fd >= 0)
            close_stdin(m);
        }
      n = build_pollset(m, pfd, tags);
      ready = poll(pfd, n, timeout);
      if (ready < 0 && errno != EINTR)
        {
          cm_msg(CM_ERROR, "poll: %s", strerror(errno));
          return 1;
        }
      if (ready == 0 && m->busy && !m->exited)
        trim_memory(m);
      else if (ready > 0)
        m->busy = true;
      for (size_t i = 0; ready > 0 && i < n; i++)
        if (pfd[i].revents)
          dispatch(m, tags[i], pfd[i].revents);
    }
}
