#include "common/error.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
error_vset(struct error *err, int code, const char *suffix, const char *fmt, va_list ap)
{
  char *text = xvasprintf(fmt, ap);
  free(err->message);
  err->code = code ? code : EIO;
  if (suffix)
    {
      err->message = xasprintf("%s: %s", text, suffix);
      free(text);
    }
  else
    err->message = text;
  return -1;
}

int
error_set(struct error *err, int code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  error_vset(err, code, NULL, fmt, ap);
  va_end(ap);
  return -1;
}

int
error_set_errno(struct error *err, int code, const char *fmt, ...)
{
  char buffer[128];
  va_list ap;
  va_start(ap, fmt);
  error_vset(err, code, strerror_r(code, buffer, sizeof buffer), fmt, ap);
  va_end(ap);
  return -1;
}

int
error_wrap(struct error *err, const char *fmt, ...)
{
  va_list ap;
  char *context;
  char *joined;

  va_start(ap, fmt);
  context = xvasprintf(fmt, ap);
  va_end(ap);
  joined = xasprintf("%s: %s", context, error_message(err));
  free(context);
  free(err->message);
  err->message = joined;
  if (err->code == 0)
    err->code = EIO;
  return -1;
}

void
error_move(struct error *dst, struct error *src)
{
  free(dst->message);
  *dst = *src;
  src->code = 0;
  src->message = NULL;
}

void
error_clear(struct error *err)
{
  free(err->message);
  err->message = NULL;
  err->code = 0;
}
