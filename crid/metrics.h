/* crid/metrics: crid's Prometheus metrics.
 *
 * Two layers.  The registry (crid/metrics.c) owns metric families
 * (counters, gauges, histograms with labels) and renders them in the
 * Prometheus text exposition format 0.0.4; it knows nothing of crid.
 * The crid layer (crid/metrics_server.c) owns crid's one registry, the
 * functions the rest of the daemon calls to record what happened (RPCs,
 * image pulls), the values read at scrape time (containers, sandboxes,
 * monitors, the process) and the /metrics endpoint: a listener of its
 * own (crid/http_server.h) on metrics_host:metrics_port, started only
 * when enable_metrics is set.
 *
 * Threads: every family has its own lock, held only to find or create a
 * series and update it, so recording from many RPC workers at once is
 * safe and cheap and a scrape sees each histogram consistent (its +Inf
 * bucket equals its count). */
#ifndef CRID_METRICS_H
#define CRID_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct daemon;

/* ---- Registry ----------------------------------------------------------------------------- */

enum metric_type
{
  METRIC_COUNTER,
  METRIC_GAUGE,
  METRIC_HISTOGRAM,
};

/* Label sets a family keeps at most when desc->max_series is 0. */
#define METRICS_DEFAULT_MAX_SERIES 256
/* The value every label of the overflow series has: once a family holds
 * max_series label sets, observations with a new set are added there, so
 * totals stay right while memory and the scrape stay bounded. */
#define METRICS_OVERFLOW_VALUE "other"

struct metric_desc
{
  const char *name; /* [a-zA-Z_:][a-zA-Z0-9_:]* */
  const char *help; /* any text: escaped on output */
  enum metric_type type;
  /* Label names, NULL-terminated; NULL: none.  Not "le" on a histogram,
   * none starting with "__". */
  const char *const *labels;
  /* Histograms: the buckets' upper bounds, ascending, finite; +Inf is
   * always added. */
  const double *buckets;
  size_t n_buckets;
  size_t max_series; /* 0: METRICS_DEFAULT_MAX_SERIES */
};

struct metrics_registry;
struct metric;

struct metrics_registry *metrics_registry_new(void);
void metrics_registry_free(struct metrics_registry *registry);

/* Adds a family; the strings of desc are copied.  A malformed desc (a
 * bad name, a duplicate name, unsorted buckets) is a programming error
 * and aborts. */
struct metric *metrics_register(struct metrics_registry *registry, const struct metric_desc *desc);

/* values: one per label name of the family, in the same order (NULL when
 * it has none; a NULL value is ""). */
/* Counter: delta >= 0 (a negative one is ignored); gauge: any delta. */
void metric_add(struct metric *metric, const char *const *values, double delta);
/* Gauge only. */
void metric_set(struct metric *metric, const char *const *values, double value);
/* Histogram only: counts value in every bucket whose bound is >= value. */
void metric_observe(struct metric *metric, const char *const *values, double value);
/* The current value of a counter or gauge series (0 when absent): for
 * tests and for values derived from others. */
double metric_value(struct metric *metric, const char *const *values);

/* The whole registry as text/plain; version=0.0.4: families in the
 * order they were registered, series in the order they first appeared.
 * A family without any series is left out.  *len is the text's length. */
char *metrics_registry_render(struct metrics_registry *registry, size_t *len);

/* The exposition format's escaping, for tests: label values escape
 * backslash, double quote and newline; help text backslash and newline.
 * Invalid UTF-8 bytes become U+FFFD (the format is UTF-8). */
char *metrics_escape_label_value(const char *value);
char *metrics_escape_help(const char *help);
/* A sample value or bucket bound: shortest text that reads back as the
 * same double; integers without exponent up to 1e15; "+Inf", "-Inf",
 * "NaN". */
void metrics_format_value(double value, char *out, size_t size);

/* ---- crid's metrics ----------------------------------------------------------------------- */

/* The content type /metrics answers with. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Records one finished unary or streaming RPC: method is its short name
 * ("Version"), code_name the gRPC status name crid logs ("OK",
 * "NOT_FOUND", ...), duration_ns from arrival to the reply (or, for a
 * server-streaming call, to its end).  Thread-safe and cheap; may be
 * called before or without a metrics server.  The gRPC wrapper calls it
 * once per call:
 *
 *   metrics_observe_rpc(call->method->name, status_name(status),
 *                       time_monotonic_ns() - call->started_ns);
 */
void metrics_observe_rpc(const char *method, const char *code_name, int64_t duration_ns);

/* Records one PullImage: whether it succeeded, the image's bytes (its
 * config and layer blobs as distributed, compressed; 0 on failure) and
 * how long it took.  Called by crid/image_service.c. */
void metrics_observe_pull(bool ok, uint64_t bytes, int64_t duration_ns);

/* The exposition text of every crid metric, values read now (daemon's
 * pods may be NULL: no container, sandbox and monitor counts then).
 * Caller frees. */
char *metrics_render(struct daemon *daemon, size_t *len);

struct metrics_server;

/* Listens on config.metrics_host:metrics_port (0: a free port, logged)
 * and serves GET /metrics.  A port in use fails with EADDRINUSE and a
 * message naming it. */
struct metrics_server *metrics_server_start(struct daemon *daemon, struct error *err);
/* The port listened on. */
int metrics_server_port(const struct metrics_server *server);
/* Stops listening; NULL is fine.  Before the pod manager goes. */
void metrics_server_stop(struct metrics_server *server);

#endif
