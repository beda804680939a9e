/* common/log: leveled, one-line-per-event logging to stderr.
 *
 * A thread working for an RPC sets its context (method and short request
 * id) with log_context_set(); every line that thread writes then carries
 * them.  Never pass credentials to these functions. */
#ifndef CRID_COMMON_LOG_H
#define CRID_COMMON_LOG_H

#include <stdbool.h>

enum log_level
{
  LOG_LEVEL_FATAL = 0,
  LOG_LEVEL_ERROR,
  LOG_LEVEL_WARN,
  LOG_LEVEL_INFO,
  LOG_LEVEL_DEBUG,
  LOG_LEVEL_TRACE,
};

/* Parses "fatal|error|warn|warning|info|debug|trace"; -1 when unknown. */
int log_level_parse(const char *name);
const char *log_level_name(enum log_level level);

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
bool log_enabled(enum log_level level);

/* The calling thread's RPC context; NULLs clear it.  The strings must
 * outlive the context (they are not copied). */
void log_context_set(const char *method, const char *request_id);
/* The calling thread's context, to hand to a thread working for it. */
void log_context_get(const char **method, const char **request_id);

void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_write(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_write(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
  do                                                                                               \
    {                                                                                              \
      if (log_enabled(LOG_LEVEL_DEBUG))                                                            \
        log_write(LOG_LEVEL_DEBUG, __VA_ARGS__);                                                   \
    }                                                                                              \
  while (0)
#define log_trace(...)                                                                             \
  do                                                                                               \
    {                                                                                              \
      if (log_enabled(LOG_LEVEL_TRACE))                                                            \
        log_write(LOG_LEVEL_TRACE, __VA_ARGS__);                                                   \
    }                                                                                              \
  while (0)

#endif
