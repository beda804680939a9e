/* conmon/util.c: the few helpers crid-conmon needs, written small so the
 * monitor links nothing but libc (no stdio streams). */
#include "conmon/conmon.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int msg_level = CM_INFO;
static int msg_syslog_fd = -1;
static bool msg_use_syslog;
static const char *msg_cid = "";

void
cm_msg_set_level(int level)
{
  msg_level = level;
}

int
cm_msg_level_parse(const char *name)
{
  static const char *const names[] = { "error", "warn", "info", "debug" };

  for (int i = 0; i < 4; i++)
    if (strcmp(name, names[i]) == 0)
      return i;
  if (strcmp(name, "fatal") == 0 || strcmp(name, "panic") == 0)
    return CM_ERROR;
  if (strcmp(name, "warning") == 0)
    return CM_WARN;
  if (strcmp(name, "trace") == 0)
    return CM_DEBUG;
  return -1;
}

/* The monitor's stdio is /dev/null; a syslog socket is the one place its
 * messages can still go without a log file of its own. */
void
cm_msg_to_syslog(const char *cid)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX, .sun_path = "/dev/log" };

  msg_use_syslog = true;
  msg_cid = cid;
  msg_syslog_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (msg_syslog_fd >= 0 && connect(msg_syslog_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
    {
      close(msg_syslog_fd);
      msg_syslog_fd = -1;
    }
}

void
cm_msg(int level, const char *fmt, ...)
{
  static const int severity[] = { 3, 4, 6, 7 };
  char line[1024];
  va_list ap;
  int saved = errno;
  int n;

  if (level > msg_level)
    return;
  if (msg_use_syslog)
    n = snprintf(line, sizeof(line), "<%d>crid-conmon[%d]: %.12s: ", 3 << 3 | severity[level],
                 (int)getpid(), msg_cid);
  else
    n = snprintf(line, sizeof(line), "crid-conmon: ");
  va_start(ap, fmt);
  n += vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof(line) - 2)
    n = sizeof(line) - 2;
  if (msg_use_syslog)
    {
      if (msg_syslog_fd >= 0)
        (void)send(msg_syslog_fd, line, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
  else
    {
      line[n++] = '\n';
      (void)cm_write_all(STDERR_FILENO, line, n);
    }
  errno = saved;
}

void *
cm_xmalloc(size_t size)
{
  void *p = malloc(size ? size : 1);

  if (p == NULL)
    abort();
  return p;
}

char *
cm_xasprintf(const char *fmt, ...)
{
  va_list ap;
  char *s;

  va_start(ap, fmt);
  if (vasprintf(&s, fmt, ap) < 0)
    abort();
  va_end(ap);
  return s;
}

int
cm_write_all(int fd, const void *buf, size_t len)
{
  const char *p = buf;

  while (len > 0)
    {
      ssize_t n = write(fd, p, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return -1;
      p += n;
      len -= n;
    }
  return 0;
}

ssize_t
cm_read(int fd, void *buf, size_t len)
{
  ssize_t n;

  do
    n = read(fd, buf, len);
  while (n < 0 && errno == EINTR);
  return n;
}

int
cm_write_file_atomic(const char *path, const char *data, size_t len, mode_t mode)
{
  return cm_write_file_atomic_at(path, data, len, mode, NULL);
}

int
cm_write_file_atomic_at(const char *path, const char *data, size_t len, mode_t mode,
                        const struct timespec *mtime)
{
  const char *slash = strrchr(path, '/');
  int dir_len = slash ? (int)(slash - path + 1) : 0;
  char *tmp = cm_xasprintf("%.*s.%s.tmp", dir_len, path, path + dir_len);
  int fd, ret = -1, saved;

  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd >= 0)
    {
      bool written = cm_write_all(fd, data, len) == 0;

      /* The rename keeps the mtime.  One that cannot be set is the time
       * of the write: later, never wrong the other way. */
      if (written && mtime)
        {
          struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, *mtime };
          if (futimens(fd, times) < 0)
            cm_msg(CM_WARN, "set the mtime of %s: %s", tmp, strerror(errno));
        }
      /* fsync first: the rename must never publish an empty file. */
      written = written && fsync(fd) == 0;
      if (close(fd) == 0 && written && rename(tmp, path) == 0)
        ret = 0;
      else
        {
          saved = errno;
          unlink(tmp);
          errno = saved;
        }
    }
  saved = errno;
  free(tmp);
  errno = saved;
  return ret;
}

bool
cm_parse_int64(const char *s, int64_t *out)
{
  char *end;
  long long v;

  if (s == NULL || *s == '\0')
    return false;
  errno = 0;
  v = strtoll(s, &end, 10);
  if (errno != 0 || *end != '\0')
    return false;
  *out = v;
  return true;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when invalid. */
static size_t
utf8_sequence(const unsigned char *p, size_t avail)
{
  size_t n;
  unsigned cp;

  if (p[0] < 0x80)
    return 1;
  if (p[0] >= 0xc2 && p[0] <= 0xdf)
    n = 2, cp = p[0] & 0x1f;
  else if (p[0] >= 0xe0 && p[0] <= 0xef)
    n = 3, cp = p[0] & 0x0f;
  else if (p[0] >= 0xf0 && p[0] <= 0xf4)
    n = 4, cp = p[0] & 0x07;
  else
    return 0;
  if (avail < n)
    return 0;
  for (size_t i = 1; i < n; i++)
    {
      if ((p[i] & 0xc0) != 0x80)
        return 0;
      cp = cp << 6 | (p[i] & 0x3f);
    }
  /* Overlong forms, surrogates and values past U+10FFFF are invalid. */
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff
      || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

size_t
cm_json_escape(char *out, const char *in, size_t len)
{
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)in;
  char *o = out;

  for (size_t i = 0; i < len;)
    {
      unsigned char c = p[i];
      size_t n;

      switch (c)
        {
        case '"':
        case '\\':
          *o++ = '\\';
          *o++ = c;
          i++;
          continue;
        case '\n':
          *o++ = '\\';
          *o++ = 'n';
          i++;
          continue;
        case '\r':
          *o++ = '\\';
          *o++ = 'r';
          i++;
          continue;
        case '\t':
          *o++ = '\\';
          *o++ = 't';
          i++;
          continue;
        }
      if (c < 0x20 || c == 0x7f)
        {
          memcpy(o, "\\u00", 4);
          o[4] = hex[c >> 4];
          o[5] = hex[c & 15];
          o += 6;
          i++;
          continue;
        }
      n = utf8_sequence(p + i, len - i);
      if (n == 0)
        {
          memcpy(o, "\\ufffd", 6);
          o += 6;
          i++;
          continue;
        }
      memcpy(o, p + i, n);
      o += n;
      i += n;
    }
  *o = '\0';
  return o - out;
}

char *
cm_sync_message(int pid, const char *message, size_t message_len)
{
  char *line, *o;

  if (message == NULL)
    return cm_xasprintf("{\"pid\": %d}\n", pid);
  line = cm_xmalloc(64 + 6 * message_len);
  o = line + sprintf(line, "{\"pid\": %d, \"message\": \"", pid);
  o += cm_json_escape(o, message, message_len);
  strcpy(o, "\"}\n");
  return line;
}

/* Reads an unsigned decimal at *p, at most max; advances *p. */
static bool
parse_uint(const char **p, unsigned max, unsigned *out)
{
  unsigned long v = 0;
  const char *s = *p;

  if (*s < '0' || *s > '9')
    return false;
  while (*s >= '0' && *s <= '9')
    {
      v = v * 10 + (*s++ - '0');
      if (v > max)
        return false;
    }
  *p = s;
  *out = v;
  return true;
}

int
cm_ctl_parse(const char *line, unsigned *height, unsigned *width)
{
  const char *p = line;
  unsigned type;

  while (*p == ' ')
    p++;
  if (!parse_uint(&p, 9, &type) || (*p != ' ' && *p != '\0'))
    return -1;
  if (type == 2)
    return 2; /* CRI-O sends "2 0 0": the sizes mean nothing here */
  if (type != 1)
    return -1;
  while (*p == ' ')
    p++;
  if (!parse_uint(&p, 65535, height))
    return -1;
  while (*p == ' ')
    p++;
  if (!parse_uint(&p, 65535, width))
    return -1;
  while (*p == ' ')
    p++;
  return *p == '\0' ? 1 : -1;
}

int64_t
cm_keyed_value(const char *text, const char *key)
{
  size_t key_len = strlen(key);
  const char *line = text;

  while (line && *line)
    {
      const char *next = strchr(line, '\n');
      int64_t v = 0;
      const char *d = line + key_len + 1;

      if (strncmp(line, key, key_len) == 0 && line[key_len] == ' ' && *d >= '0' && *d <= '9')
        {
          for (; *d >= '0' && *d <= '9' && v < INT64_MAX / 10 - 9; d++)
            v = v * 10 + (*d - '0');
          return v;
        }
      line = next ? next + 1 : NULL;
    }
  return -1;
}

void
cm_release_pages(void *addr, size_t len)
{
  uintptr_t page = getpagesize();
  uintptr_t lo = ((uintptr_t)addr + page - 1) & ~(page - 1);
  uintptr_t hi = ((uintptr_t)addr + len) & ~(page - 1);

  /* Whole pages only: a partial page may hold someone else's data. */
  if (addr && hi > lo)
    (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* Startup, the runtime create and every burst of output touch code all
 * over the static binary, and the kernel's fault-around maps up to 16
 * neighbouring pages per fault: most of the text ends up in our RSS
 * although an idle monitor runs a few pages of it.  Unmapping the
 * read-only, never-written segments drops only page-table entries (the
 * page cache keeps the pages, shared with every other monitor); the next
 * use faults them back in.  Writable segments (data, RELRO) stay. */
void
cm_release_text(void)
{
  const ElfW(Phdr) *phdr = (const ElfW(Phdr) *)getauxval(AT_PHDR);
  size_t phnum = getauxval(AT_PHNUM);
  uintptr_t base = 0;

  if (phdr == NULL)
    return;
  for (size_t i = 0; i < phnum; i++)
    if (phdr[i].p_type == PT_PHDR)
      base = (uintptr_t)phdr - phdr[i].p_vaddr;
  for (size_t i = 0; i < phnum; i++)
    if (phdr[i].p_type == PT_LOAD && !(phdr[i].p_flags & PF_W))
      cm_release_pages((void *)(base + phdr[i].p_vaddr), phdr[i].p_filesz);
}
