/* common/util: allocation that aborts on out-of-memory, string, path,
 * time and file helpers, and the validation of ids and names that come
 * from requests before they are ever used in a path. */
#ifndef CRID_COMMON_UTIL_H
#define CRID_COMMON_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap);

bool str_has_prefix(const char *s, const char *prefix);
bool str_has_suffix(const char *s, const char *suffix);
/* Whether s (NULL: false) is one of list (NULL-terminated). */
bool str_in_list(const char *const *list, const char *s);
size_t strv_length(char *const *strv);
void strv_free(char **strv);
/* A copy (an empty list for NULL), and the items joined by separator ("" for
 * none). */
char **strv_copy(char *const *strv);
char *strv_join(char *const *strv, const char *separator);

/* At most max bytes of s (len long), each byte outside printable ASCII
 * replaced by '?': text from a peer made safe for an error message. */
char *str_printable(const char *s, size_t len, size_t max);
/* Untrusted text as an error message shows it: in double quotes, with
 * quotes, backslashes, control and non-ASCII bytes escaped (it must not
 * break a log line), and cut after max_shown bytes with "...". */
char *quote_untrusted(const char *text, size_t len, size_t max_shown);

/* The length of the well-formed UTF-8 sequence s starts with (s holds
 * avail > 0 bytes), 0 when it starts with none (RFC 3629: shortest forms
 * only, no surrogates, nothing above U+10FFFF). */
size_t utf8_char_length(const char *s, size_t avail);

/* The length of the longest prefix of s[0..len) that is well-formed
 * UTF-8 (RFC 3629: shortest forms only, no surrogates, nothing above
 * U+10FFFF): len when all of it is. */
size_t utf8_valid_prefix(const char *s, size_t len);

static inline bool
utf8_is_valid(const char *s, size_t len)
{
  return utf8_valid_prefix(s, len) == len;
}

/* A copy of s[0..len) in which every byte that is not part of a
 * well-formed sequence became U+FFFD, as Go's encoding/json writes it;
 * NUL-terminated, *out_len bytes long.  The caller frees. */
char *utf8_sanitize(const char *s, size_t len, size_t *out_len);

/* Monotonic and wall-clock time in nanoseconds. */
int64_t time_monotonic_ns(void);
int64_t time_realtime_ns(void);
/* The time left until a time_monotonic_ns() deadline, in milliseconds
 * as poll() takes them: -1 (no limit) when deadline_ns is 0, 0 once it
 * has passed, at most INT_MAX (24.8 days): a poll() that returns after a
 * farther deadline's INT_MAX must check the deadline before it gives up. */
int time_remaining_ms(int64_t deadline_ns);

/* Creates path and its missing parents with mode; existing dirs are fine. */
int mkdir_p(const char *path, mode_t mode, struct error *err);

/* openat2(2): path below dir_fd, opened with flags, resolved as resolve
 * (RESOLVE_* of <linux/openat2.h>) says.  -1 with errno; ENOSYS on a
 * kernel without it, EPERM under a seccomp filter that does not know it. */
int openat2_resolve(int dir_fd, const char *path, int flags, uint64_t resolve);

/* Reads a whole file (at most max_size bytes, else EFBIG), NUL-terminated. */
int read_file(const char *path, size_t max_size, char **out, size_t *out_len, struct error *err);
/* The same from an open fd (read to its end); the buffer is sized by the
 * file, not by max_size. */
int read_fd(int fd, size_t max_size, char **out, size_t *out_len, struct error *err);

/* The pid in a pid file (a runtime's --pid-file, conmon.pid); 0 when the
 * file is missing or unreadable: a process that may not have written it
 * yet, or may be gone, is not an error. */
pid_t read_pid_file(const char *path);

/* The directory of the running program (from /proc/self/exe), where
 * crid's helpers are looked for. */
char *exe_directory(struct error *err);

/* What a program writes to a pipe, as far as it is kept: at most max
 * bytes, NUL-terminated once anything is; what comes beyond max is read
 * and dropped, so the program never blocks on a full pipe. */
struct pipe_capture
{
  char *data; /* NULL until something is kept */
  size_t len, cap, max;
};

/* Reads what fd has ready into capture; false once fd has reached its
 * end or failed, when it is no longer worth polling. */
bool pipe_capture_read(struct pipe_capture *capture, int fd);

/* Writes all len bytes, retrying short writes and EINTR; -1 with errno
 * set on failure. */
int write_all(int fd, const void *data, size_t len);

/* A 64-character lower-case hexadecimal id, as crid generates them. */
bool id_is_valid(const char *id);

/* A name that is safe as one path component: non-empty, at most 253 bytes,
 * no '/', not "." or "..", no control characters. */
bool path_component_is_valid(const char *name);

/* True when one of path's '/'-separated components is "..": such a path
 * can climb out of the directory it is joined to ("a..b.log" cannot). */
bool path_has_dot_dot(const char *path);

/* Fills out with a new random 64-hex-character id (65 bytes). */
int id_generate(char out[65], struct error *err);

#endif
