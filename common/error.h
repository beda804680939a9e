/* common/error: the error value every fallible function fills.
 *
 * A fallible function returns a negative value (or NULL) and fills a
 * `struct error` with an errno-style code and a message.  Callers add
 * context as the error travels up with error_wrap(), so a message reads
 * from the outermost operation to the root cause.  Only crid/ turns an
 * error into a gRPC status (see error_to_grpc_code in crid/). */
#ifndef CRID_COMMON_ERROR_H
#define CRID_COMMON_ERROR_H

#include <stdarg.h>

struct error
{
  int code;      /* errno value: ENOENT, EINVAL, EEXIST, ... */
  char *message; /* owned; NULL when no error is set */
};

#define ERROR_INIT                                                                                 \
  {                                                                                                \
    0, NULL                                                                                        \
  }

/* Sets err (freeing any earlier message) and returns -1. */
int error_set(struct error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like error_set, with ": strerror(code)" appended. */
int error_set_errno(struct error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the message with "context: "; keeps the code.  Returns -1. */
int error_wrap(struct error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Moves src into dst (dst's old message is freed); src is left clear. */
void error_move(struct error *dst, struct error *src);

void error_clear(struct error *err);

static inline const char *
error_message(const struct error *err)
{
  return err->message ? err->message : "unknown error";
}

#endif
