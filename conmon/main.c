/* crid-conmon: the per-container monitor (DESIGN.md, "Processes").
 *
 * One crid-conmon runs per container.  It asks the OCI runtime to create
 * the container, stays the container's parent (child subreaper), owns its
 * stdio, writes the CRI log, serves attach clients and a control fifo, and
 * records the exit status.  It is a small standalone program: no threads,
 * no glib, one poll loop, linked statically.
 *
 * PROTOCOL (what crid relies on)
 *
 * Command line (all options are long options; values are separate argv
 * entries or --opt=value):
 *   crid-conmon --cid ID --bundle DIR --runtime PATH [--runtime-arg ARG]...
 *               --exit-dir DIR --socket-dir DIR --container-pidfile FILE
 *               [--conmon-pidfile FILE] [--log-path FILE] [--log-size-max BYTES]
 *               [--terminal] [--stdin] [--stdin-once] [--systemd-cgroup]
 *               [--no-pivot] [--start] [--log-level error|warn|info|debug]
 *   crid-conmon --version
 * ID must be usable as a file name.  <socket-dir>/console must fit in a
 * sockaddr_un (socket-dir at most 99 bytes).  socket-dir is created
 * (0700) if missing; its parent must exist.  exit-dir must exist.
 *
 * Environment:
 *   _OCI_SYNCPIPE=<fd>   (optional) write end of a pipe; crid-conmon writes
 *                        exactly one JSON line to it and closes it:
 *                          {"pid": N}\n                       container created
 *                          {"pid": -1, "message": "TEXT"}\n   it was not
 *                        TEXT is the runtime's stderr (trimmed, last 4 KiB),
 *                        or crid-conmon's own error (bad option, pipe, ...).
 *                        EOF without a line means crid-conmon died.
 *   _OCI_STARTPIPE=<fd>  (optional) read end of a pipe; before anything
 *                        else crid-conmon blocks until it reads one byte or
 *                        EOF, so the parent can first move it into a cgroup.
 * Both variables are removed from the environment the runtime sees, and
 * every other inherited fd above 2 is closed.
 *
 * Process model:
 *   1. The process the parent started forks the monitor, writes the
 *      monitor's pid (decimal, no newline; temp file + rename) to
 *      --conmon-pidfile, and exits 0 at once; the monitor starts working
 *      only after that, so when the parent's waitpid() returns, the
 *      pidfile is there.  Exit 1 (with a sync message when possible) on
 *      a bad command line or a failed fork.
 *   2. The monitor calls setsid(), becomes a child subreaper (the
 *      container init becomes its child), points its stdio at /dev/null,
 *      ignores SIGPIPE and keeps the oom_score_adj it inherited.  Its own
 *      messages go to syslog (/dev/log) when one exists.
 *   3. It creates <socket-dir>/attach and <socket-dir>/ctl, opens the log,
 *      and runs, with PR_SET_PDEATHSIG(SIGKILL), oom_score_adj 0, the
 *      default signal mask and dispositions:
 *        <runtime> [--systemd-cgroup] [ARG...] create --bundle B
 *            --pid-file P [--no-pivot] [--console-socket S] ID
 *      or, with --start, `run --detach` in place of `create`: the
 *      container is created and started in one runtime call, for
 *      containers nothing has to happen to between the two (the pause).
 *      stdin = a pipe (--stdin, no --terminal) or /dev/null; stdout = a
 *      pipe (/dev/null with --terminal); stderr = a pipe.  With --terminal
 *      S is <socket-dir>/console, where the runtime sends the pty master
 *      (SCM_RIGHTS); it is removed afterwards.
 *   4. Runtime fails (or sends no pty) -> sync message pid -1, the socket
 *      files are removed, exit 1.  No exit file is written.  The parent
 *      should still run `<runtime> delete -f ID`: a runtime that succeeded
 *      without sending a pty leaves a created container behind.
 *      Success -> the container pid is read from P, the OOM watch is set
 *      up, then the sync message {"pid": N}.  Stderr of a successful
 *      create (warnings) goes to syslog, not to the container log.
 *   5. The poll loop runs (no threads, no timers while idle: the only
 *      wake-up not caused by an fd is one trim of memory 1 s after each
 *      burst of activity) until the container pid has exited and
 *      its output pipes reached EOF (or 2 s after the exit: what is
 *      readable then is still logged).  Then, in this order: every
 *      record is written to the log file (write(2) done: readers see it,
 *      the disk may not have it yet), the empty file <socket-dir>/oom if
 *      the kernel OOM-killed a process in the container's memory cgroup
 *      (v1: memory.oom_control, v2: memory.events oom_kill counter),
 *      attach clients are disconnected, attach and ctl are removed, and
 *      last of the files crid reads <exit-dir>/<ID> appears, atomically
 *      (written as <exit-dir>/.<ID>.tmp and renamed: watch for
 *      IN_MOVED_TO and ignore names starting with '.'), holding the
 *      status as decimal text without newline: the exit code, or 128 +
 *      signal number.  Its mtime is when the monitor reaped the container
 *      (CLOCK_REALTIME, nanoseconds): the container's finish time.  Only
 *      then is the log fsynced and closed, which takes long after a lot of
 *      output: the monitor lives on meanwhile, touching nothing but its
 *      open log fd (the log and the socket dir may already be removed).
 *      Wait for the monitor process to end, not for the exit file, to
 *      know the log is on the disk.  crid-conmon then exits 0 (1 if the
 *      exit file could not be written).
 *
 * Container log (--log-path), CRI format, one record per line:
 *   <YYYY-MM-DDTHH:MM:SS.nnnnnnnnn±hh:mm> <stdout|stderr> <F|P> <content>\n
 * Local time, one timestamp per read chunk.  F: content ends with the
 * line's newline.  P: a piece without newline (end of a read chunk, or
 * 64 KiB of a longer line), followed by '\n'.  The file is opened
 * O_APPEND|O_CREAT, mode 0640.  --log-size-max N: before a record would
 * take the file past N bytes, the file is replaced by an empty one
 * (<path>.tmp renamed over <path>; old content dropped).  The writeback
 * of the log is started every 4 MiB written (without waiting for it), so
 * little of it is still to sync when the container ends.
 *
 * Attach socket <socket-dir>/attach: AF_UNIX SOCK_SEQPACKET, mode 0700, up
 * to 64 clients.  Every chunk of output is sent to every client as
 * packets of at most 8192 payload bytes behind a one-byte prefix, 2 =
 * stdout, 3 = stderr (a terminal's output is stdout).  Packets a client
 * sends (at most 32 KiB each) are written to the container's stdin when
 * --stdin was given (else discarded).  A client that shuts down its
 * sending side (shutdown(SHUT_WR)) still receives output until it closes.
 * With --stdin-once the container's stdin is closed (after pending input
 * is written) when the first client shuts down or closes; not with a
 * terminal.  A client that cannot take output for 2 s is disconnected.
 * At exit all clients see EOF.
 *
 * Control fifo <socket-dir>/ctl (mode 0600), text lines:
 *   "1 <height> <width>\n"  resize the terminal (TIOCSWINSZ on the master)
 *   "2\n" (or "2 0 0\n")    reopen the log: close it and open --log-path
 *                           again, creating it (after a rename by kubelet)
 *
 * crid-conmon's own exit code is never the container's: read the exit
 * file. */
#include "conmon/conmon.h"
#include "version.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

/* Tail of the runtime's stderr kept for the error message. */
#define ERROR_TEXT_MAX 4096

static int sync_fd = -1;

/* Sends the one sync-pipe line, once. */
static void
sync_send(int pid, const char *message, size_t len)
{
  char *line;

  if (sync_fd < 0)
    return;
  line = cm_sync_message(pid, message, len);
  if (cm_write_all(sync_fd, line, strlen(line)) < 0)
    cm_msg(CM_WARN, "sync pipe: %s", strerror(errno));
  free(line);
  close(sync_fd);
  sync_fd = -1;
}

static int sync_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reports a failure before the container exists; returns -1. */
static int
sync_fail(const char *fmt, ...)
{
  char text[1024];
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(text, sizeof(text), fmt, ap);
  va_end(ap);
  if (n >= (int)sizeof(text))
    n = sizeof(text) - 1;
  cm_msg(CM_ERROR, "%s", text);
  sync_send(-1, text, n);
  return -1;
}

/* ---- command line ---- */

enum
{
  OPT_CID = 256,
  OPT_BUNDLE,
  OPT_RUNTIME,
  OPT_RUNTIME_ARG,
  OPT_EXIT_DIR,
  OPT_SOCKET_DIR,
  OPT_CONTAINER_PIDFILE,
  OPT_CONMON_PIDFILE,
  OPT_LOG_PATH,
  OPT_LOG_SIZE_MAX,
  OPT_TERMINAL,
  OPT_STDIN,
  OPT_STDIN_ONCE,
  OPT_SYSTEMD_CGROUP,
  OPT_NO_PIVOT,
  OPT_START,
  OPT_LOG_LEVEL,
  OPT_VERSION,
};

static const struct option long_options[] = {
  { "cid", required_argument, NULL, OPT_CID },
  { "bundle", required_argument, NULL, OPT_BUNDLE },
  { "runtime", required_argument, NULL, OPT_RUNTIME },
  { "runtime-arg", required_argument, NULL, OPT_RUNTIME_ARG },
  { "exit-dir", required_argument, NULL, OPT_EXIT_DIR },
  { "socket-dir", required_argument, NULL, OPT_SOCKET_DIR },
  { "container-pidfile", required_argument, NULL, OPT_CONTAINER_PIDFILE },
  { "conmon-pidfile", required_argument, NULL, OPT_CONMON_PIDFILE },
  { "log-path", required_argument, NULL, OPT_LOG_PATH },
  { "log-size-max", required_argument, NULL, OPT_LOG_SIZE_MAX },
  { "terminal", no_argument, NULL, OPT_TERMINAL },
  { "stdin", no_argument, NULL, OPT_STDIN },
  { "stdin-once", no_argument, NULL, OPT_STDIN_ONCE },
  { "systemd-cgroup", no_argument, NULL, OPT_SYSTEMD_CGROUP },
  { "no-pivot", no_argument, NULL, OPT_NO_PIVOT },
  { "start", no_argument, NULL, OPT_START },
  { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
  { "version", no_argument, NULL, OPT_VERSION },
  { NULL, 0, NULL, 0 },
};

static bool
valid_cid(const char *id)
{
  if (id == NULL || *id == '\0' || strlen(id) > 255 || strcmp(id, ".") == 0
      || strcmp(id, "..") == 0)
    return false;
  for (const char *p = id; *p; p++)
    if (*p == '/' || (unsigned char)*p < 0x20)
      return false;
  return true;
}

/* Fills o from argv; on error the message is sent and -1 returned. */
static int
parse_options(int argc, char **argv, struct cm_options *o)
{
  struct sockaddr_un addr;
  int c, level;

  memset(o, 0, sizeof(*o));
  o->runtime_args = cm_xmalloc(sizeof(char *) * argc);
  opterr = 0;
  while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1)
    {
      switch (c)
        {
        case OPT_CID:
          o->cid = optarg;
          break;
        case OPT_BUNDLE:
          o->bundle = optarg;
          break;
        case OPT_RUNTIME:
          o->runtime = optarg;
          break;
        case OPT_RUNTIME_ARG:
          o->runtime_args[o->n_runtime_args++] = optarg;
          break;
        case OPT_EXIT_DIR:
          o->exit_dir = optarg;
          break;
        case OPT_SOCKET_DIR:
          o->socket_dir = optarg;
          break;
        case OPT_CONTAINER_PIDFILE:
          o->container_pidfile = optarg;
          break;
        case OPT_CONMON_PIDFILE:
          o->conmon_pidfile = optarg;
          break;
        case OPT_LOG_PATH:
          o->log_path = optarg;
          break;
        case OPT_LOG_SIZE_MAX:
          if (!cm_parse_int64(optarg, &o->log_size_max) || o->log_size_max < 0)
            return sync_fail("--log-size-max: not a byte count: %s", optarg);
          break;
        case OPT_TERMINAL:
          o->terminal = true;
          break;
        case OPT_STDIN:
          o->stdin_pipe = true;
          break;
        case OPT_STDIN_ONCE:
          o->stdin_once = true;
          break;
        case OPT_SYSTEMD_CGROUP:
          o->systemd_cgroup = true;
          break;
        case OPT_NO_PIVOT:
          o->no_pivot = true;
          break;
        case OPT_START:
          o->start = true;
          break;
        case OPT_LOG_LEVEL:
          level = cm_msg_level_parse(optarg);
          if (level < 0)
            return sync_fail("--log-level: unknown level %s", optarg);
          cm_msg_set_level(level);
          break;
        case OPT_VERSION:
          break;
        default:
          return sync_fail("unknown or incomplete option %s", argv[optind - 1]);
        }
    }
  if (optind < argc)
    return sync_fail("unexpected argument %s", argv[optind]);
  if (!valid_cid(o->cid))
    return sync_fail("--cid: missing or not a valid file name");
  if (!o->bundle || !o->runtime || !o->exit_dir || !o->socket_dir || !o->container_pidfile)
    return sync_fail("--bundle, --runtime, --exit-dir, --socket-dir and --container-pidfile "
                     "are required"),
           false;
  if (strlen(o->socket_dir) + sizeof("/console") > sizeof(addr.sun_path))
    return sync_fail("--socket-dir %s: too long for a unix socket path", o->socket_dir);
  return 0;
}

/* ---- file descriptors ---- */

/* The fd named by an environment variable, or -1; moved above 2 so the
 * /dev/null redirection cannot clobber it. */
static int
env_fd(const char *name)
{
  const char *value = getenv(name);
  int64_t fd;

  if (value == NULL)
    return -1;
  unsetenv(name);
  if (!cm_parse_int64(value, &fd) || fd < 0 || fd > 65535 || fcntl(fd, F_GETFD) < 0)
    return -1;
  if (fd <= 2)
    fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  return fd;
}

/* Closes every inherited fd above 2 except keep[] (which become
 * close-on-exec): a leaked fd of the parent (its listening socket, say)
 * must not live as long as the container. */
static void
close_inherited_fds(int keep0, int keep1)
{
  int lo = keep0 < keep1 ? keep0 : keep1;
  int hi = keep0 < keep1 ? keep1 : keep0;
  int from = 3;

  for (int k = 0; k < 2; k++)
    {
      int fd = k == 0 ? lo : hi;
      if (fd < 0 || fd < from)
        continue;
      if (fd > from)
        close_range(from, fd - 1, 0);
      fcntl(fd, F_SETFD, FD_CLOEXEC);
      from = fd + 1;
    }
  close_range(from, ~0U, 0);
}

static void
wait_start_pipe(int fd)
{
  char byte;

  (void)cm_read(fd, &byte, 1);
  close(fd);
}

/* Pipe whose end `ours` (0 read, 1 write) is non-blocking and stays
 * here; the other end is for the runtime and the container, blocking. */
static int
make_pipe(int fds[2], int ours)
{
  if (pipe2(fds, O_CLOEXEC) < 0)
    return -1;
  return fcntl(fds[ours], F_SETFL, O_NONBLOCK);
}

/* ---- process model ---- */

/* Step 1 of the process model: returns in the monitor only. */
static void
detach_from_parent(const struct cm_options *o)
{
  int go[2];
  char byte;
  pid_t pid;

  if (pipe2(go, O_CLOEXEC) < 0 || (pid = fork()) < 0)
    {
      sync_fail("fork monitor: %s", strerror(errno));
      _exit(1);
    }
  if (pid > 0)
    {
      char text[16];
      close(go[0]);
      snprintf(text, sizeof(text), "%d", (int)pid);
      if (o->conmon_pidfile
          && cm_write_file_atomic(o->conmon_pidfile, text, strlen(text), 0644) < 0)
        {
          kill(pid, SIGKILL);
          sync_fail("write %s: %s", o->conmon_pidfile, strerror(errno));
          _exit(1);
        }
      _exit(0);
    }
  /* The go pipe reaches EOF when the first process has exited. */
  close(go[1]);
  (void)cm_read(go[0], &byte, 1);
  close(go[0]);
}

static int
become_monitor(const struct cm_options *o)
{
  sigset_t chld;
  int fd, null_fd;

  setsid();
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
    return sync_fail("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
  null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0)
    return sync_fail("open /dev/null: %s", strerror(errno));
  for (int i = 0; i < 3; i++)
    dup2(null_fd, i);
  if (null_fd > 2)
    close(null_fd);
  cm_msg_to_syslog(o->cid);
  signal(SIGPIPE, SIG_IGN);
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  fd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0)
    return sync_fail("signalfd: %s", strerror(errno));
  return fd;
}

static int
listen_unix(const char *path, int type, int backlog)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

  if (fd < 0)
    return -1;
  strcpy(addr.sun_path, path); /* length checked with the options */
  unlink(path);
  if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || chmod(path, 0700) < 0
      || listen(fd, backlog) < 0)
    {
      int saved = errno;
      close(fd);
      errno = saved;
      return -1;
    }
  return fd;
}

static int
setup_sockets(struct cm_monitor *m)
{
  const struct cm_options *o = m->opts;

  if (mkdir(o->socket_dir, 0700) < 0 && errno != EEXIST)
    return sync_fail("mkdir %s: %s", o->socket_dir, strerror(errno));
  m->attach_path = cm_xasprintf("%s/attach", o->socket_dir);
  m->ctl_path = cm_xasprintf("%s/ctl", o->socket_dir);
  m->attach_fd = listen_unix(m->attach_path, SOCK_SEQPACKET, 10);
  if (m->attach_fd < 0)
    return sync_fail("attach socket %s: %s", m->attach_path, strerror(errno));
  unlink(m->ctl_path);
  if (mkfifo(m->ctl_path, 0600) < 0)
    return sync_fail("mkfifo %s: %s", m->ctl_path, strerror(errno));
  /* Read-write, so the fifo always has a writer: no POLLHUP storm when a
   * client closes, and open() does not block. */
  m->ctl_fd = open(m->ctl_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (m->ctl_fd < 0)
    return sync_fail("open %s: %s", m->ctl_path, strerror(errno));
  return 0;
}

/* ---- the runtime ---- */

struct runtime
{
  pid_t pid;
  bool reaped;
  int status;
  int console_listen; /* --console-socket listener */
  int console_conn;
  char *console_path;
  int pty;
  char text[ERROR_TEXT_MAX]; /* tail of its stderr */
  size_t text_len;
};

static const char **
runtime_argv(const struct cm_options *o, const char *console_path)
{
  const char **argv = cm_xmalloc(sizeof(char *) * (o->n_runtime_args + 16));
  size_t n = 0;

  argv[n++] = o->runtime;
  if (o->systemd_cgroup)
    argv[n++] = "--systemd-cgroup";
  for (size_t i = 0; i < o->n_runtime_args; i++)
    argv[n++] = o->runtime_args[i];
  if (o->start)
    {
      argv[n++] = "run";
      argv[n++] = "--detach";
    }
  else
    argv[n++] = "create";
  argv[n++] = "--bundle";
  argv[n++] = o->bundle;
  argv[n++] = "--pid-file";
  argv[n++] = o->container_pidfile;
  if (o->no_pivot)
    argv[n++] = "--no-pivot";
  if (console_path)
    {
      argv[n++] = "--console-socket";
      argv[n++] = console_path;
    }
  argv[n++] = o->cid;
  argv[n] = NULL;
  return argv;
}

/* In the forked child: becomes the runtime, or reports on stderr (which
 * is the captured pipe) why not. */
static void __attribute__((noreturn))
exec_runtime(const char **argv, pid_t monitor, int in, int out, int err)
{
  sigset_t none;
  int fd;

  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  /* An ignored SIGPIPE would survive exec into the container. */
  signal(SIGPIPE, SIG_DFL);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != monitor)
    _exit(127);
  if ((in >= 0 && dup2(in, 0) < 0) || (out >= 0 && dup2(out, 1) < 0) || dup2(err, 2) < 0)
    _exit(127);
  /* The monitor may be protected from the OOM killer; the container must
   * not inherit that (the runtime applies process.oomScoreAdj itself). */
  fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd >= 0)
    {
      (void)cm_write_all(fd, "0", 1);
      close(fd);
    }
  execv(argv[0], (char **)argv);
  /* Straight to the captured pipe: it becomes the sync message. */
  (void)cm_write_all(2, "exec ", 5);
  (void)cm_write_all(2, argv[0], strlen(argv[0]));
  (void)cm_write_all(2, ": ", 2);
  (void)cm_write_all(2, strerror(errno), strlen(strerror(errno)));
  _exit(127);
}

static void
capture_text(struct runtime *rt, const char *data, size_t len)
{
  if (len >= sizeof(rt->text))
    {
      data += len - sizeof(rt->text);
      len = sizeof(rt->text);
    }
  if (rt->text_len + len > sizeof(rt->text))
    {
      size_t drop = rt->text_len + len - sizeof(rt->text);
      memmove(rt->text, rt->text + drop, rt->text_len - drop);
      rt->text_len -= drop;
    }
  memcpy(rt->text + rt->text_len, data, len);
  rt->text_len += len;
}

/* Reads what the runtime wrote on stderr so far; closes the pipe at EOF. */
static void
capture_stderr(struct cm_monitor *m, struct runtime *rt)
{
  char buf[4096];

  while (m->err_fd >= 0)
    {
      ssize_t n = cm_read(m->err_fd, buf, sizeof(buf));
      if (n < 0 && errno == EAGAIN)
        return;
      if (n <= 0)
        {
          close(m->err_fd);
          m->err_fd = -1;
          return;
        }
      capture_text(rt, buf, n);
    }
}

static void
close_console(struct runtime *rt)
{
  if (rt->console_conn >= 0)
    close(rt->console_conn);
  if (rt->console_listen >= 0)
    close(rt->console_listen);
  rt->console_conn = rt->console_listen = -1;
  if (rt->console_path)
    unlink(rt->console_path);
}

/* The runtime's one message on the console socket carries the pty master
 * as SCM_RIGHTS; the payload (the fd's name) does not matter. */
static void
receive_pty(struct runtime *rt)
{
  char name[4096];
  union
  {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  struct iovec iov = { name, sizeof(name) };
  struct msghdr msg = { .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = control.buf,
                        .msg_controllen = sizeof(control.buf) };
  struct cmsghdr *cmsg;

  if (rt->console_conn < 0)
    {
      rt->console_conn = accept4(rt->console_listen, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (rt->console_conn < 0)
        return;
    }
  if (recvmsg(rt->console_conn, &msg, MSG_CMSG_CLOEXEC) < 0)
    return;
  cmsg = CMSG_FIRSTHDR(&msg);
  if (cmsg && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS
      && cmsg->cmsg_len == CMSG_LEN(sizeof(int)))
    memcpy(&rt->pty, CMSG_DATA(cmsg), sizeof(int));
  close_console(rt);
}

/* Waits for the runtime to exit, capturing its stderr and taking the pty
 * master.  Only the runtime is reaped here: the container init is not
 * known yet and is reaped by the monitor loop. */
static void
wait_runtime(struct cm_monitor *m, struct runtime *rt)
{
  while (!rt->reaped)
    {
      struct pollfd p[3];
      int n = 0, st;
      struct signalfd_siginfo si[8];

      p[n++] = (struct pollfd){ .fd = m->signal_fd, .events = POLLIN };
      if (m->err_fd >= 0)
        p[n++] = (struct pollfd){ .fd = m->err_fd, .events = POLLIN };
      if (rt->console_conn >= 0 || rt->console_listen >= 0)
        p[n++]
            = (struct pollfd){ .fd = rt->console_conn >= 0 ? rt->console_conn : rt->console_listen,
                               .events = POLLIN };
      if (poll(p, n, -1) < 0 && errno != EINTR)
        return;
      while (cm_read(m->signal_fd, si, sizeof(si)) > 0)
        ;
      capture_stderr(m, rt);
      if (rt->console_listen >= 0)
        receive_pty(rt);
      if (waitpid(rt->pid, &st, WNOHANG) == rt->pid)
        {
          rt->reaped = true;
          rt->status = st;
        }
    }
  /* What the runtime wrote just before exiting. */
  capture_stderr(m, rt);
  if (rt->console_listen >= 0)
    receive_pty(rt);
  close_console(rt);
}

static void
trim(const char **text, size_t *len)
{
  while (*len > 0 && strchr(" \t\r\n", (*text)[*len - 1]))
    (*len)--;
  while (*len > 0 && strchr(" \t\r\n", **text))
    (*text)++, (*len)--;
}

/* The sync failure for a runtime that did not create the container. */
static int
report_runtime_failure(const struct runtime *rt)
{
  const char *text = rt->text;
  size_t len = rt->text_len;

  trim(&text, &len);
  cm_msg(CM_ERROR, "runtime create failed: %.*s", (int)len, text);
  if (len > 0)
    {
      sync_send(-1, text, len);
      return -1;
    }
  if (WIFSIGNALED(rt->status))
    return sync_fail("runtime killed by signal %d", WTERMSIG(rt->status));
  return sync_fail("runtime exited with status %d", WEXITSTATUS(rt->status));
}

static pid_t
read_container_pid(const char *path)
{
  char text[32];
  int64_t pid;
  ssize_t n;
  const char *p = text;
  size_t len;
  int fd = open(path, O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    return sync_fail("open pid file %s: %s", path, strerror(errno));
  n = cm_read(fd, text, sizeof(text) - 1);
  close(fd);
  len = n > 0 ? n : 0;
  trim(&p, &len);
  text[p - text + len] = '\0';
  if (!cm_parse_int64(p, &pid) || pid <= 0 || pid > 0x3fffffff)
    return sync_fail("pid file %s: no pid in \"%s\"", path, p);
  return pid;
}

/* Sets the pty master the way the monitor uses it: non-blocking, and
 * ONLCR so a program's "\n" reaches the log and clients as "\r\n" the way
 * a terminal shows it. */
static void
setup_pty(int fd)
{
  struct termios t;

  fcntl(fd, F_SETFL, O_NONBLOCK);
  if (tcgetattr(fd, &t) == 0)
    {
      t.c_oflag |= ONLCR | OPOST;
      tcsetattr(fd, TCSANOW, &t);
    }
}

/* Steps 3 and 4 of the process model; 0 when the container exists. */
static int
create_container(struct cm_monitor *m)
{
  const struct cm_options *o = m->opts;
  struct runtime rt = { .console_listen = -1, .console_conn = -1, .pty = -1 };
  int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2];
  const char **argv;
  pid_t pid;

  if (make_pipe(err, 0) < 0 || (!o->terminal && make_pipe(out, 0) < 0)
      || (!o->terminal && o->stdin_pipe && make_pipe(in, 1) < 0))
    return sync_fail("pipe: %s", strerror(errno));
  if (o->terminal)
    {
      rt.console_path = cm_xasprintf("%s/console", o->socket_dir);
      rt.console_listen = listen_unix(rt.console_path, SOCK_STREAM, 1);
      if (rt.console_listen < 0)
        return sync_fail("console socket %s: %s", rt.console_path, strerror(errno));
    }
  argv = runtime_argv(o, rt.console_path);
  pid = fork();
  if (pid < 0)
    return sync_fail("fork runtime: %s", strerror(errno));
  if (pid == 0)
    exec_runtime(argv, getppid(), in[0], out[1], err[1]);
  free(argv);
  rt.pid = pid;
  /* Only the runtime and the container hold the other ends now, so EOF
   * on a pipe means they are all gone. */
  close(err[1]);
  if (out[1] >= 0)
    close(out[1]);
  if (in[0] >= 0)
    close(in[0]);
  m->err_fd = err[0];
  m->out_fd = out[0];
  m->in_fd = in[1];

  wait_runtime(m, &rt);
  free(rt.console_path);
  if (!WIFEXITED(rt.status) || WEXITSTATUS(rt.status) != 0)
    return report_runtime_failure(&rt);
  if (rt.text_len > 0)
    cm_msg(CM_WARN, "runtime said: %.*s", (int)rt.text_len, rt.text);
  if (o->terminal && rt.pty < 0)
    return sync_fail("Runtime did not set up terminal");
  if (o->terminal)
    {
      setup_pty(rt.pty);
      m->out_fd = rt.pty;
      m->in_fd = o->stdin_pipe ? rt.pty : -1;
      m->in_is_pty = true;
    }
  m->container_pid = read_container_pid(o->container_pidfile);
  return m->container_pid > 0 ? 0 : -1;
}

int
main(int argc, char **argv)
{
  static struct cm_monitor monitor;
  struct cm_monitor *m = &monitor;
  struct cm_options o;
  int start_fd, ret;

  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--version") == 0)
      {
        const char text[] = "crid-conmon version " CRID_VERSION "\ncommit: " CRID_COMMIT "\n";
        return cm_write_all(STDOUT_FILENO, text, sizeof(text) - 1) < 0;
      }
  sync_fd = env_fd("_OCI_SYNCPIPE");
  start_fd = env_fd("_OCI_STARTPIPE");
  close_inherited_fds(sync_fd, start_fd);
  if (parse_options(argc, argv, &o) < 0)
    return 1;
  if (start_fd >= 0)
    wait_start_pipe(start_fd);

  detach_from_parent(&o);
  m->opts = &o;
  m->out_fd = m->err_fd = m->in_fd = m->attach_fd = m->ctl_fd = -1;
  m->oom.fd = m->oom.counter_fd = -1;
  m->signal_fd = become_monitor(&o);
  if (m->signal_fd < 0)
    return 1;
  if (cm_log_open(&m->log, o.log_path, o.log_size_max) < 0)
    {
      sync_fail("open log %s: %s", o.log_path, strerror(errno));
      return 1;
    }
  /* Found out now rather than when the exit status has nowhere to go. */
  if (access(o.exit_dir, W_OK | X_OK) < 0)
    {
      sync_fail("exit dir %s: %s", o.exit_dir, strerror(errno));
      return 1;
    }
  if (setup_sockets(m) < 0 || create_container(m) < 0)
    {
      cm_monitor_unlink(m);
      return 1;
    }
  /* Before the parent learns the pid (and can start the container), so no
   * OOM kill goes unseen. */
  cm_oom_watch(&m->oom, m->container_pid);
  sync_send(m->container_pid, NULL, 0);
  ret = cm_monitor_run(m);
  cm_msg(CM_INFO, "done");
  return ret;
}
