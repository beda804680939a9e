/* conmon/conmon.h: the pieces of crid-conmon that are shared between its
 * files (and reached by tests/unit/test_conmon.c).  The program is
 * standalone on purpose: nothing here may pull in common/ (yajl, gRPC), so
 * the monitor stays a small static binary.  Every non-static symbol is
 * prefixed cm_ so the unit tests can link these files next to common/. */
#ifndef CRID_CONMON_H
#define CRID_CONMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* Bytes read from the container per read(2); also the longest content of
 * one log record, so a longer line becomes several P records. */
#define CM_READ_SIZE (64 * 1024)
/* Payload bytes of one packet sent to an attach client (plus 1 prefix). */
#define CM_ATTACH_PACKET 8192
/* Largest packet an attach client may send (stdin data). */
#define CM_STDIN_PACKET (32 * 1024)

enum cm_stream
{
  CM_STDOUT = 1,
  CM_STDERR = 2,
};

struct cm_options
{
  const char *cid;
  const char *bundle;
  const char *runtime;
  const char **runtime_args;
  size_t n_runtime_args;
  const char *exit_dir;
  const char *socket_dir;
  const char *container_pidfile;
  const char *conmon_pidfile;
  const char *log_path;
  int64_t log_size_max;
  bool terminal;
  bool stdin_pipe;
  bool stdin_once;
  bool systemd_cgroup;
  bool no_pivot;
  bool start; /* run --detach instead of create */
};

/* ---- util.c ---- */

enum cm_level
{
  CM_ERROR = 0,
  CM_WARN,
  CM_INFO,
  CM_DEBUG,
};

/* Messages go to stderr until cm_msg_to_syslog(), then to /dev/log (or
 * nowhere when there is no syslog socket). */
void cm_msg_set_level(int level);
int cm_msg_level_parse(const char *name);
void cm_msg_to_syslog(const char *cid);
void cm_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void *cm_xmalloc(size_t size);
char *cm_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* 0, or -1 with errno; retries EINTR and short writes. */
int cm_write_all(int fd, const void *buf, size_t len);
/* read(2) that retries EINTR. */
ssize_t cm_read(int fd, void *buf, size_t len);

/* Writes path through "<dir>/.<base>.tmp" + fsync + rename, so a reader
 * sees either nothing or the whole file. */
int cm_write_file_atomic(const char *path, const char *data, size_t len, mode_t mode);
/* The same, with the file's mtime set to *mtime (CLOCK_REALTIME) before
 * the fsync; NULL leaves it at the time of the write. */
int cm_write_file_atomic_at(const char *path, const char *data, size_t len, mode_t mode,
                            const struct timespec *mtime);

/* Gives back to the kernel the whole pages inside [addr, addr + len):
 * their content is lost (zero or the file's on next touch). */
void cm_release_pages(void *addr, size_t len);
/* Unmaps the pages of our read-only ELF segments (see util.c). */
void cm_release_text(void);

/* Parses a whole decimal string; false on junk, overflow or empty. */
bool cm_parse_int64(const char *s, int64_t *out);

/* Appends the JSON string escape of in[0..len) to out (without quotes);
 * invalid UTF-8 bytes become U+FFFD.  Returns the bytes written; out must
 * hold 6 * len + 1. */
size_t cm_json_escape(char *out, const char *in, size_t len);

/* The sync-pipe line: {"pid": N}\n or {"pid": -1, "message": "..."}\n. */
char *cm_sync_message(int pid, const char *message, size_t message_len);

/* A control fifo line ("1 <h> <w>" or "2", trailing fields ignored for
 * 2).  Returns the type (1 or 2) or -1 when malformed. */
int cm_ctl_parse(const char *line, unsigned *height, unsigned *width);

/* Finds "key <n>" at the start of a line of a cgroup "flat keyed" file;
 * -1 when absent. */
int64_t cm_keyed_value(const char *text, const char *key);

/* ---- crilog.c: the CRI (k8s-file) container log ---- */

struct cm_log
{
  int fd; /* -1: no log file */
  const char *path;
  int64_t size;         /* bytes in the current file */
  int64_t size_max;     /* 0: unlimited */
  int64_t written_back; /* writeback started for [0, written_back) */
  char *out;            /* records of the chunk being written */
  size_t out_len;
  size_t out_cap;
  time_t stamp_second;   /* the second stamp_prefix/stamp_zone were made for */
  char stamp_prefix[32]; /* "YYYY-MM-DDTHH:MM:SS." */
  char stamp_zone[8];    /* "+hh:mm" */
};

int cm_log_open(struct cm_log *log, const char *path, int64_t size_max);
/* Closes the file and opens path again, creating it (ctl "2"). */
int cm_log_reopen(struct cm_log *log);
/* Turns one chunk read from a stream into records and writes them with
 * (normally) one write(2). */
void cm_log_chunk(struct cm_log *log, enum cm_stream stream, const char *data, size_t len,
                  const struct timespec *now);
/* Formats now as RFC 3339 local time with nanoseconds and a numeric
 * offset into out (at least 40 bytes); returns the length. */
size_t cm_log_timestamp(struct cm_log *log, const struct timespec *now, char *out);
/* Writes what is buffered (normally nothing: every chunk is written at
 * once); the records are then in the file, if not yet on the disk. */
void cm_log_flush(struct cm_log *log);
void cm_log_close(struct cm_log *log, bool sync);

/* ---- oom.c: cgroup OOM-kill detection ---- */

struct cm_oom
{
  int fd;         /* eventfd (v1) or inotify (v2) to poll; -1 when none */
  int counter_fd; /* memory.oom_control (v1) or memory.events (v2) */
  int64_t base;   /* oom_kill count when the watch began; -1 unknown */
  bool v2;
  bool killed;
};

/* Watches the memory cgroup of pid; without one the watch is inert. */
void cm_oom_watch(struct cm_oom *oom, pid_t pid);
/* oom->fd is readable. */
void cm_oom_event(struct cm_oom *oom);
/* A last look at the counter; true when an OOM kill happened. */
bool cm_oom_happened(struct cm_oom *oom);
void cm_oom_close(struct cm_oom *oom);

/* For tests: the memory cgroup path (v1 "memory" line, else the v2
 * "0::" line) of a /proc/<pid>/cgroup text; malloc'd, NULL if none. */
char *cm_cgroup_memory_path(const char *proc_cgroup, bool *v2);

/* ---- monitor.c: the poll loop after a successful create ---- */

#define CM_MAX_CLIENTS 64

struct cm_client
{
  int fd;
  bool input_done; /* the client shut down its sending side */
};

struct cm_monitor
{
  const struct cm_options *opts;
  int signal_fd;
  int out_fd; /* container stdout pipe, or the pty master */
  int err_fd; /* container stderr pipe (with a pty: the runtime's stderr) */
  int in_fd;  /* container stdin: our end of its pipe, or the pty master */
  bool in_is_pty;
  int attach_fd; /* listening SOCK_SEQPACKET socket */
  int ctl_fd;    /* the control fifo, opened read-write */
  char *attach_path;
  char *ctl_path;
  struct cm_client clients[CM_MAX_CLIENTS];
  size_t n_clients;
  char ctl_line[128];
  size_t ctl_len;
  struct cm_oom oom;
  struct cm_log log;
  pid_t container_pid;
  bool exited;
  int status;                /* exit code, or 128 + signal */
  struct timespec exit_time; /* CLOCK_REALTIME when the container was reaped */
  int64_t drain_deadline;    /* monotonic ms: stop waiting for output EOF */
  bool stdin_closing;        /* --stdin-once: close when pending input is written */
  size_t in_off, in_len;     /* pending stdin bytes in the input buffer */
  bool busy;                 /* woke up since the last memory trim */
};

/* Runs until the container has exited and its output is drained, then
 * writes the oom and exit files and syncs the log; returns crid-conmon's
 * exit code. */
int cm_monitor_run(struct cm_monitor *m);
/* Removes the attach socket and control fifo. */
void cm_monitor_unlink(struct cm_monitor *m);

#endif
