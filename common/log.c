#include "common/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int current_level = LOG_LEVEL_INFO;
static __thread const char *context_method;
static __thread const char *context_request_id;

static const char *const level_names[] = { "fatal", "error", "warn", "info", "debug", "trace" };

int
log_level_parse(const char *name)
{
  if (strcasecmp(name, "warning") == 0)
    return LOG_LEVEL_WARN;
  for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
    if (strcasecmp(name, level_names[i]) == 0)
      return (int)i;
  return -1;
}

const char *
log_level_name(enum log_level level)
{
  if ((size_t)level >= sizeof level_names / sizeof level_names[0])
    return "unknown";
  return level_names[level];
}

void
log_set_level(enum log_level level)
{
  atomic_store(&current_level, level);
}

enum log_level
log_get_level(void)
{
  return atomic_load(&current_level);
}

bool
log_enabled(enum log_level level)
{
  return (int)level <= atomic_load(&current_level);
}

void
log_context_set(const char *method, const char *request_id)
{
  context_method = method;
  context_request_id = request_id;
}

void
log_context_get(const char **method, const char **request_id)
{
  *method = context_method;
  *request_id = context_request_id;
}

void
log_write(enum log_level level, const char *fmt, ...)
{
  char line[4096];
  struct timespec now;
  struct tm tm;
  size_t used;
  int n;
  va_list ap;

  if (!log_enabled(level))
    return;
  clock_gettime(CLOCK_REALTIME, &now);
  gmtime_r(&now.tv_sec, &tm);
  used = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
  n = snprintf(line + used, sizeof line - used, ".%06ldZ %-5s ", now.tv_nsec / 1000,
               log_level_name(level));
  used += n;
  if (context_method)
    {
      n = snprintf(line + used, sizeof line - used, "[%s %s] ", context_method,
                   context_request_id ? context_request_id : "-");
      used = used + n < sizeof line ? used + n : sizeof line - 1;
    }
  va_start(ap, fmt);
  n = vsnprintf(line + used, sizeof line - used, fmt, ap);
  va_end(ap);
  used = (n >= 0 && used + n < sizeof line - 1) ? used + n : sizeof line - 2;
  for (size_t i = 0; i < used; i++)
    if (line[i] == '\n')
      line[i] = ' ';
  line[used++] = '\n';
  /* One write per line keeps lines whole when threads log at once. */
  if (write(STDERR_FILENO, line, used) < 0)
    return;
}
