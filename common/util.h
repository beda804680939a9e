/* common/util: allocation that aborts on out-of-memory, string and path
 * helpers, and the validation of ids and names that come from requests
 * before they are ever used in a path. */
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
size_t strv_length(char *const *strv);
void strv_free(char **strv);

/* Untrusted text as an error message shows it: in double quotes, with
 * quotes, backslashes, control and non-ASCII bytes escaped (it must not
 * break a log line), and cut after max_shown bytes with "...". */
char *quote_untrusted(const char *text, size_t len, size_t max_shown);

/* Monotonic and wall-clock time in nanoseconds. */
int64_t time_monotonic_ns(void);
int64_t time_realtime_ns(void);

/* Creates path and its missing parents with mode; existing dirs are fine. */
int mkdir_p(const char *path, mode_t mode, struct error *err);

/* Reads a whole file (at most max_size bytes, else EFBIG), NUL-terminated. */
int read_file(const char *path, size_t max_size, char **out, size_t *out_len, struct error *err);

/* A 64-character lower-case hexadecimal id, as crid generates them. */
bool id_is_valid(const char *id);

/* A name that is safe as one path component: non-empty, at most 253 bytes,
 * no '/', not "." or "..", no control characters. */
bool path_component_is_valid(const char *name);

/* Fills out with a new random 64-hex-character id (65 bytes). */
int id_generate(char out[65], struct error *err);

#endif
