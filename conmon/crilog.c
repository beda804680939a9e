/* conmon/crilog.c: the CRI container log ("k8s-file" format).
 *
 *   2024-05-01T12:00:00.123456789+02:00 stdout F hello\n
 *   2024-05-01T12:00:00.123456789+02:00 stderr P no newline yet\n
 *
 * Every record of one chunk (one read from the container) shares one
 * timestamp; the records of a chunk are built in one buffer and written
 * with one write(2), which is what keeps the monitor fast.  A chunk's
 * tail without a newline is a P record (plus the '\n' kubelet strips).
 *
 * The log is not left to pile up in the page cache: every WRITEBACK_BYTES
 * the monitor starts the writeback of what it wrote (sync_file_range, no
 * wait), so little is dirty when the container ends.  The fsync after the
 * exit file is then short, and the fsyncs of others on the same file
 * system (crid saving the container as exited, a journal commit) do not
 * queue behind hundreds of MiB of log. */
#include "conmon/conmon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* "YYYY-MM-DDTHH:MM:SS.nnnnnnnnn+hh:mm stdout " */
#define HEADER_MAX 48
/* Room for the records of one chunk of 64-byte lines, so the common case
 * is one write; chunks of tiny lines flush more than once. */
#define OUT_CAP (2 * CM_READ_SIZE + 4096)
/* Dirty log bytes after which writeback is started. */
#define WRITEBACK_BYTES (4 << 20)
/* Writeback ranges end on this boundary (a multiple of any page size):
 * the page the next record goes to is not sent to the disk half full. */
#define WRITEBACK_ALIGN ((int64_t)64 << 10)

static int
open_append(const char *path)
{
  return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

static void
set_size_from_file(struct cm_log *log)
{
  struct stat st;

  log->size = fstat(log->fd, &st) == 0 ? st.st_size : 0;
  log->written_back = log->size;
}

int
cm_log_open(struct cm_log *log, const char *path, int64_t size_max)
{
  memset(log, 0, sizeof(*log));
  log->fd = -1;
  log->stamp_second = -1;
  log->size_max = size_max;
  log->path = path;
  if (path == NULL)
    return 0;
  log->fd = open_append(path);
  if (log->fd < 0)
    return -1;
  set_size_from_file(log);
  log->out_cap = OUT_CAP;
  log->out = cm_xmalloc(log->out_cap);
  return 0;
}

int
cm_log_reopen(struct cm_log *log)
{
  int fd;

  if (log->path == NULL)
    return 0;
  fd = open_append(log->path);
  if (fd < 0)
    return -1;
  if (log->fd >= 0)
    close(log->fd);
  log->fd = fd;
  set_size_from_file(log);
  return 0;
}

/* --log-size-max: start over in an empty file at the same path (written
 * as <path>.tmp and renamed over it, so a reader never sees it missing). */
static void
truncate_log(struct cm_log *log)
{
  char *tmp = cm_xasprintf("%s.tmp", log->path);
  int fd = open(tmp, O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);

  if (fd >= 0 && rename(tmp, log->path) == 0)
    {
      close(log->fd);
      log->fd = fd;
      log->size = log->written_back = 0;
    }
  else
    {
      cm_msg(CM_WARN, "truncate log %s: %s", log->path, strerror(errno));
      if (fd >= 0)
        {
          close(fd);
          unlink(tmp);
        }
    }
  free(tmp);
}

static void
start_writeback(struct cm_log *log)
{
  int64_t end = log->size & ~(WRITEBACK_ALIGN - 1);

  if (end - log->written_back < WRITEBACK_BYTES)
    return;
  /* Queues the pages for the disk and returns; an error shows at fsync. */
  (void)sync_file_range(log->fd, log->written_back, end - log->written_back, SYNC_FILE_RANGE_WRITE);
  log->written_back = end;
}

static void
flush(struct cm_log *log)
{
  if (log->out_len == 0)
    return;
  /* A full disk costs the records, never the monitor. */
  if (cm_write_all(log->fd, log->out, log->out_len) == 0)
    {
      log->size += log->out_len;
      start_writeback(log);
    }
  else
    cm_msg(CM_WARN, "write log %s: %s", log->path, strerror(errno));
  log->out_len = 0;
}

static void
append_record(struct cm_log *log, const char *header, size_t header_len, char tag, const char *data,
              size_t len)
{
  bool partial = tag == 'P';
  size_t need = header_len + 2 + len + partial;
  char *o;

  if (log->size_max > 0 && log->size + (int64_t)(log->out_len + need) > log->size_max)
    {
      flush(log);
      truncate_log(log);
    }
  if (log->out_cap - log->out_len < need)
    flush(log);
  o = log->out + log->out_len;
  memcpy(o, header, header_len);
  o += header_len;
  *o++ = tag;
  *o++ = ' ';
  memcpy(o, data, len);
  o += len;
  if (partial)
    *o++ = '\n';
  log->out_len = o - log->out;
}

/* Writes v as exactly width decimal digits (the top ones dropped). */
static char *
put_digits(char *o, unsigned long v, int width)
{
  for (int i = width - 1; i >= 0; i--, v /= 10)
    o[i] = '0' + v % 10;
  return o + width;
}

/* Recomputes the date/time and zone parts once per second: within a
 * second only the nanoseconds change, and localtime_r is not free. */
static void
refresh_stamp(struct cm_log *log, time_t second)
{
  struct tm tm;
  long off;
  char *o = log->stamp_prefix;

  localtime_r(&second, &tm);
  o = put_digits(o, tm.tm_year + 1900, 4);
  *o++ = '-';
  o = put_digits(o, tm.tm_mon + 1, 2);
  *o++ = '-';
  o = put_digits(o, tm.tm_mday, 2);
  *o++ = 'T';
  o = put_digits(o, tm.tm_hour, 2);
  *o++ = ':';
  o = put_digits(o, tm.tm_min, 2);
  *o++ = ':';
  o = put_digits(o, tm.tm_sec, 2);
  *o++ = '.';
  *o = '\0';

  off = tm.tm_gmtoff / 60;
  o = log->stamp_zone;
  *o++ = off < 0 ? '-' : '+';
  if (off < 0)
    off = -off;
  o = put_digits(o, off / 60, 2);
  *o++ = ':';
  o = put_digits(o, off % 60, 2);
  *o = '\0';
  log->stamp_second = second;
}

size_t
cm_log_timestamp(struct cm_log *log, const struct timespec *now, char *out)
{
  char *o = out;

  if (now->tv_sec != log->stamp_second)
    refresh_stamp(log, now->tv_sec);
  /* "YYYY-MM-DDTHH:MM:SS." is 20 bytes, the zone 6. */
  memcpy(o, log->stamp_prefix, 20);
  o = put_digits(o + 20, now->tv_nsec, 9);
  memcpy(o, log->stamp_zone, 6);
  o += 6;
  *o = '\0';
  return o - out;
}

void
cm_log_chunk(struct cm_log *log, enum cm_stream stream, const char *data, size_t len,
             const struct timespec *now)
{
  char header[HEADER_MAX];
  size_t header_len;
  const char *end = data + len;

  if (log->fd < 0 || len == 0)
    return;
  header_len = cm_log_timestamp(log, now, header);
  memcpy(header + header_len, stream == CM_STDOUT ? " stdout " : " stderr ", 8);
  header_len += 8;

  while (data < end)
    {
      size_t avail = end - data;
      size_t max = avail < CM_READ_SIZE ? avail : CM_READ_SIZE;
      const char *nl = memchr(data, '\n', max);

      if (nl)
        {
          append_record(log, header, header_len, 'F', data, nl + 1 - data);
          data = nl + 1;
        }
      else
        {
          append_record(log, header, header_len, 'P', data, max);
          data += max;
        }
    }
  flush(log);
}

void
cm_log_flush(struct cm_log *log)
{
  flush(log);
}

void
cm_log_close(struct cm_log *log, bool sync)
{
  if (log->fd >= 0)
    {
      flush(log);
      if (sync)
        (void)fsync(log->fd);
      close(log->fd);
      log->fd = -1;
    }
  free(log->out);
  log->out = NULL;
}
