#include "common/util.h"
#include "common/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void *
check_allocation(void *p)
{
  if (p == NULL)
    abort();
  return p;
}

void *
xmalloc(size_t size)
{
  return check_allocation(malloc(size ? size : 1));
}

void *
xcalloc(size_t count, size_t size)
{
  return check_allocation(calloc(count ? count : 1, size ? size : 1));
}

void *
xrealloc(void *p, size_t size)
{
  return check_allocation(realloc(p, size ? size : 1));
}

char *
xstrdup(const char *s)
{
  return check_allocation(strdup(s ? s : ""));
}

char *
xstrndup(const char *s, size_t n)
{
  return check_allocation(strndup(s, n));
}

char *
xvasprintf(const char *fmt, va_list ap)
{
  char *out;
  if (vasprintf(&out, fmt, ap) < 0)
    abort();
  return out;
}

char *
xasprintf(const char *fmt, ...)
{
  va_list ap;
  char *out;
  va_start(ap, fmt);
  out = xvasprintf(fmt, ap);
  va_end(ap);
  return out;
}

bool
str_has_prefix(const char *s, const char *prefix)
{
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool
str_has_suffix(const char *s, const char *suffix)
{
  size_t s_len = strlen(s), suffix_len = strlen(suffix);
  return s_len >= suffix_len && memcmp(s + s_len - suffix_len, suffix, suffix_len) == 0;
}

bool
str_in_list(const char *const *list, const char *s)
{
  for (size_t i = 0; s && list[i]; i++)
    if (strcmp(list[i], s) == 0)
      return true;
  return false;
}

size_t
strv_length(char *const *strv)
{
  size_t n = 0;
  while (strv && strv[n])
    n++;
  return n;
}

void
strv_free(char **strv)
{
  cleanup_strv_function(&strv);
}

char **
strv_copy(char *const *strv)
{
  size_t n = strv_length(strv);
  char **copy = xcalloc(n + 1, sizeof(char *));

  for (size_t i = 0; i < n; i++)
    copy[i] = xstrdup(strv[i]);
  return copy;
}

char *
strv_join(char *const *strv, const char *separator)
{
  size_t n = strv_length(strv);
  size_t sep_len = strlen(separator);
  size_t len = 0;
  char *out;
  char *p;

  for (size_t i = 0; i < n; i++)
    len += strlen(strv[i]) + (i ? sep_len : 0);
  out = p = xmalloc(len + 1);
  for (size_t i = 0; i < n; i++)
    {
      if (i)
        p = mempcpy(p, separator, sep_len);
      p = mempcpy(p, strv[i], strlen(strv[i]));
    }
  *p = '\0';
  return out;
}

static int64_t
clock_ns(clockid_t clock)
{
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The length of the well-formed sequence s starts with, 0 when it starts
 * with none.  The second byte's range is what excludes overlong forms
 * (E0, F0), surrogates (ED) and code points above U+10FFFF (F4), as in
 * RFC 3629's table. */
size_t
utf8_char_length(const char *text, size_t avail)
{
  const unsigned char *s = (const unsigned char *)text;
  unsigned char lo = 0x80, hi = 0xbf;
  size_t n;

  if (s[0] < 0x80)
    return 1;
  if (s[0] >= 0xc2 && s[0] <= 0xdf)
    n = 2;
  else if (s[0] >= 0xe0 && s[0] <= 0xef)
    {
      n = 3;
      lo = s[0] == 0xe0 ? 0xa0 : lo;
      hi = s[0] == 0xed ? 0x9f : hi;
    }
  else if (s[0] >= 0xf0 && s[0] <= 0xf4)
    {
      n = 4;
      lo = s[0] == 0xf0 ? 0x90 : lo;
      hi = s[0] == 0xf4 ? 0x8f : hi;
    }
  else
    return 0;
  if (avail < n || s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < n; i++)
    if ((s[i] & 0xc0) != 0x80)
      return 0;
  return n;
}

size_t
utf8_valid_prefix(const char *s, size_t len)
{
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, n;

  while (i < len)
    {
      if (u[i] < 0x80)
        {
          i++;
          continue;
        }
      n = utf8_char_length(s + i, len - i);
      if (n == 0)
        break;
      i += n;
    }
  return i;
}

char *
utf8_sanitize(const char *s, size_t len, size_t *out_len)
{
  /* At worst each byte becomes the three of U+FFFD. */
  char *out = xmalloc(len * 3 + 1);
  size_t i = 0, n = 0;

  while (i < len)
    {
      size_t valid = utf8_valid_prefix(s + i, len - i);
      memcpy(out + n, s + i, valid);
      n += valid;
      i += valid;
      if (i < len)
        {
          memcpy(out + n, "\xef\xbf\xbd", 3);
          n += 3;
          i++;
        }
    }
  out[n] = '\0';
  *out_len = n;
  return out;
}

int64_t
time_monotonic_ns(void)
{
  return clock_ns(CLOCK_MONOTONIC);
}

int64_t
time_realtime_ns(void)
{
  return clock_ns(CLOCK_REALTIME);
}

int
time_remaining_ms(int64_t deadline_ns)
{
  int64_t left;

  if (deadline_ns == 0)
    return -1;
  left = (deadline_ns - time_monotonic_ns()) / 1000000;
  if (left < 0)
    return 0;
  /* A narrowing cast of more would turn a far deadline into a wrapped,
   * possibly negative (endless) poll timeout. */
  return left > INT_MAX ? INT_MAX : (int)left;
}

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

int
openat2_resolve(int dir_fd, const char *path, int flags, uint64_t resolve)
{
  struct open_how how = { .flags = (uint64_t)flags, .resolve = resolve };

  return (int)syscall(SYS_openat2, dir_fd, path, &how, sizeof how);
}

int
mkdir_p(const char *path, mode_t mode, struct error *err)
{
  cleanup_free char *copy = xstrdup(path);
  for (char *p = copy + 1; *p; p++)
    {
      if (*p != '/')
        continue;
      *p = '\0';
      if (mkdir(copy, mode) < 0 && errno != EEXIST)
        return error_set_errno(err, errno, "mkdir %s", copy);
      *p = '/';
    }
  if (mkdir(copy, mode) < 0 && errno != EEXIST)
    return error_set_errno(err, errno, "mkdir %s", copy);
  return 0;
}

int
read_fd(int fd, size_t max_size, char **out, size_t *out_len, struct error *err)
{
  cleanup_free char *buffer = NULL;
  size_t used = 0, allocated = 0;
  struct stat st;

  /* Sized by the file (plus a page to see its end), so that a small
   * file never costs a buffer of max_size. */
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
    allocated = (size_t)st.st_size < max_size ? (size_t)st.st_size + 4096 : max_size + 1;
  else
    allocated = 8192;
  buffer = xmalloc(allocated + 1);
  for (;;)
    {
      ssize_t n;
      if (allocated - used < 4096 && allocated <= max_size)
        {
          allocated *= 2;
          buffer = xrealloc(buffer, allocated + 1);
        }
      n = read(fd, buffer + used, allocated - used);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return error_set(err, errno, "%s", strerror(errno));
      if (n == 0)
        break;
      used += n;
      if (used > max_size)
        return error_set(err, EFBIG, "larger than %zu bytes", max_size);
    }
  buffer[used] = '\0';
  *out = steal_pointer(&buffer);
  if (out_len)
    *out_len = used;
  return 0;
}

int
read_file(const char *path, size_t max_size, char **out, size_t *out_len, struct error *err)
{
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    return error_set_errno(err, errno, "open %s", path);
  if (read_fd(fd, max_size, out, out_len, err) < 0)
    return error_wrap(err, "read %s", path);
  return 0;
}

pid_t
read_pid_file(const char *path)
{
  cleanup_free char *text = NULL;
  struct error ignored = ERROR_INIT;
  pid_t pid = 0;

  if (read_file(path, 64, &text, NULL, &ignored) == 0)
    pid = (pid_t)atoi(text);
  error_clear(&ignored);
  return pid;
}

static void
pipe_capture_append(struct pipe_capture *capture, const char *data, size_t len)
{
  if (capture->len + len > capture->max)
    len = capture->max - capture->len;
  if (len == 0)
    return;
  if (capture->len + len + 1 > capture->cap)
    {
      /* Doubling, but never past what max can hold. */
      capture->cap = (capture->len + len + 1) * 2;
      if (capture->cap > capture->max + 1)
        capture->cap = capture->max + 1;
      capture->data = xrealloc(capture->data, capture->cap);
    }
  memcpy(capture->data + capture->len, data, len);
  capture->len += len;
  capture->data[capture->len] = '\0';
}

bool
pipe_capture_read(struct pipe_capture *capture, int fd)
{
  char chunk[65536];
  ssize_t got = read(fd, chunk, sizeof chunk);

  if (got > 0)
    pipe_capture_append(capture, chunk, got);
  return got > 0 || (got < 0 && errno == EINTR);
}

int
write_all(int fd, const void *data, size_t len)
{
  const char *p = data;

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

char *
str_printable(const char *s, size_t len, size_t max)
{
  size_t n = len < max ? len : max;
  char *out = xmalloc(n + 1);

  for (size_t i = 0; i < n; i++)
    out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
  out[n] = '\0';
  return out;
}

char *
quote_untrusted(const char *text, size_t len, size_t max_shown)
{
  size_t shown = len > max_shown ? max_shown : len;
  char *out = xmalloc(shown * 4 + 8);
  char *p = out;

  *p++ = '"';
  for (size_t i = 0; i < shown; i++)
    {
      unsigned char c = (unsigned char)text[i];
      if (c == '"' || c == '\\')
        {
          *p++ = '\\';
          *p++ = (char)c;
        }
      else if (c < 0x20 || c >= 0x7f)
        p += sprintf(p, "\\x%02x", c);
      else
        *p++ = (char)c;
    }
  *p++ = '"';
  if (shown < len)
    p = stpcpy(p, "...");
  *p = '\0';
  return out;
}

bool
id_is_valid(const char *id)
{
  size_t i;
  for (i = 0; id[i]; i++)
    if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
      return false;
  return i == 64;
}

bool
path_component_is_valid(const char *name)
{
  size_t len = strlen(name);
  if (len == 0 || len > 253 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
    return false;
  for (size_t i = 0; i < len; i++)
    if (name[i] == '/' || (unsigned char)name[i] < 0x20 || name[i] == 0x7f)
      return false;
  return true;
}

bool
path_has_dot_dot(const char *path)
{
  for (const char *p = path; *p;)
    {
      size_t len = strcspn(p, "/");
      if (len == 2 && p[0] == '.' && p[1] == '.')
        return true;
      p += len;
      if (*p == '/')
        p++;
    }
  return false;
}

int
id_generate(char out[65], struct error *err)
{
  unsigned char bytes[32];
  static const char hex[] = "0123456789abcdef";
  size_t got = 0;

  while (got < sizeof bytes)
    {
      ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return error_set_errno(err, errno, "getrandom");
      got += n;
    }
  for (size_t i = 0; i < sizeof bytes; i++)
    {
      out[2 * i] = hex[bytes[i] >> 4];
      out[2 * i + 1] = hex[bytes[i] & 0xf];
    }
  out[64] = '\0';
  return 0;
}

char *
exe_directory(struct error *err)
{
  char path[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  char *slash;

  if (n <= 0)
    {
      error_set_errno(err, errno, "find the program's directory: readlink /proc/self/exe");
      return NULL;
    }
  path[n] = '\0';
  slash = strrchr(path, '/');
  return xstrndup(path, slash && slash != path ? (size_t)(slash - path) : 1);
}
