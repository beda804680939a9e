/* crid/metrics: the registry of metric families and the Prometheus text
 * exposition format 0.0.4 (see crid/metrics.h).  Generic: crid's own
 * metrics are defined in crid/metrics_server.c. */
#include "crid/metrics.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One label set of a family and its value(s). */
struct series
{
  char **values;           /* one per label name */
  double value;            /* counter, gauge */
  uint64_t *bucket_counts; /* histogram: per bucket, not cumulative; the last is +Inf's */
  double sum;
  uint64_t count;
};

struct metric
{
  char *name;
  char *help;
  enum metric_type type;
  char **labels;
  size_t n_labels;
  double *buckets;
  size_t n_buckets;
  size_t max_series;
  bool overflow_logged;

  pthread_mutex_t lock; /* guards the series and their values */
  struct series **series;
  size_t n_series, cap_series;
};

struct metrics_registry
{
  pthread_mutex_t lock; /* guards the family list, not the families */
  struct metric **families;
  size_t n_families, cap_families;
};

/* ---- Names -------------------------------------------------------------------------------- */

static bool
name_char_ok(char c, bool first, bool colon)
{
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
    return true;
  if (colon && c == ':')
    return true;
  return !first && c >= '0' && c <= '9';
}

/* colon: metric names may hold ':', label names may not. */
static bool
name_ok(const char *name, bool colon)
{
  if (name == NULL || *name == '\0')
    return false;
  for (const char *p = name; *p; p++)
    if (!name_char_ok(*p, p == name, colon))
      return false;
  return true;
}

static bool
label_name_ok(const char *name, enum metric_type type)
{
  if (!name_ok(name, false) || str_has_prefix(name, "__"))
    return false;
  return !(type == METRIC_HISTOGRAM && strcmp(name, "le") == 0);
}

static bool
buckets_ok(const double *buckets, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (!isfinite(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1]))
      return false;
  return true;
}

/* A broken description is a bug in crid, found at the first start. */
static void
check_desc(const struct metrics_registry *registry, const struct metric_desc *desc)
{
  bool ok = name_ok(desc->name, true) && desc->help != NULL;

  for (size_t i = 0; ok && desc->labels && desc->labels[i]; i++)
    ok = label_name_ok(desc->labels[i], desc->type);
  if (ok && desc->type == METRIC_HISTOGRAM)
    ok = buckets_ok(desc->buckets, desc->n_buckets);
  for (size_t i = 0; ok && i < registry->n_families; i++)
    ok = strcmp(registry->families[i]->name, desc->name) != 0;
  if (!ok)
    {
      log_error("metrics: malformed or duplicate metric %s", desc->name ? desc->name : "(null)");
      abort();
    }
}

/* ---- Registry ----------------------------------------------------------------------------- */

struct metrics_registry *
metrics_registry_new(void)
{
  struct metrics_registry *registry = xcalloc(1, sizeof *registry);

  pthread_mutex_init(&registry->lock, NULL);
  return registry;
}

static void
series_free(struct series *series, size_t n_labels)
{
  for (size_t i = 0; i < n_labels; i++)
    free(series->values[i]);
  free(series->values);
  free(series->bucket_counts);
  free(series);
}

static void
metric_free(struct metric *metric)
{
  for (size_t i = 0; i < metric->n_series; i++)
    series_free(metric->series[i], metric->n_labels);
  free(metric->series);
  for (size_t i = 0; i < metric->n_labels; i++)
    free(metric->labels[i]);
  free(metric->labels);
  free(metric->buckets);
  free(metric->name);
  free(metric->help);
  pthread_mutex_destroy(&metric->lock);
  free(metric);
}

void
metrics_registry_free(struct metrics_registry *registry)
{
  if (registry == NULL)
    return;
  for (size_t i = 0; i < registry->n_families; i++)
    metric_free(registry->families[i]);
  free(registry->families);
  pthread_mutex_destroy(&registry->lock);
  free(registry);
}

static struct metric *
metric_new(const struct metric_desc *desc)
{
  struct metric *metric = xcalloc(1, sizeof *metric);

  metric->name = xstrdup(desc->name);
  metric->help = xstrdup(desc->help);
  metric->type = desc->type;
  metric->n_labels = desc->labels ? strv_length((char *const *)desc->labels) : 0;
  metric->labels = xcalloc(metric->n_labels + 1, sizeof(char *));
  for (size_t i = 0; i < metric->n_labels; i++)
    metric->labels[i] = xstrdup(desc->labels[i]);
  if (desc->type == METRIC_HISTOGRAM)
    {
      metric->n_buckets = desc->n_buckets;
      metric->buckets = xcalloc(desc->n_buckets + 1, sizeof(double));
      memcpy(metric->buckets, desc->buckets, desc->n_buckets * sizeof(double));
    }
  metric->max_series = desc->max_series ? desc->max_series : METRICS_DEFAULT_MAX_SERIES;
  pthread_mutex_init(&metric->lock, NULL);
  return metric;
}

struct metric *
metrics_register(struct metrics_registry *registry, const struct metric_desc *desc)
{
  struct metric *metric;

  pthread_mutex_lock(&registry->lock);
  check_desc(registry, desc);
  metric = metric_new(desc);
  if (registry->n_families == registry->cap_families)
    {
      registry->cap_families = registry->cap_families ? 2 * registry->cap_families : 16;
      registry->families
          = xrealloc(registry->families, registry->cap_families * sizeof *registry->families);
    }
  registry->families[registry->n_families++] = metric;
  pthread_mutex_unlock(&registry->lock);
  return metric;
}

/* ---- Series ------------------------------------------------------------------------------- */

static const char *
value_at(const char *const *values, size_t i)
{
  return values && values[i] ? values[i] : "";
}

static bool
series_matches(const struct series *series, const char *const *values, size_t n_labels)
{
  for (size_t i = 0; i < n_labels; i++)
    if (strcmp(series->values[i], value_at(values, i)) != 0)
      return false;
  return true;
}

static struct series *
series_lookup(struct metric *metric, const char *const *values)
{
  for (size_t i = 0; i < metric->n_series; i++)
    if (series_matches(metric->series[i], values, metric->n_labels))
      return metric->series[i];
  return NULL;
}

static struct series *
series_add(struct metric *metric, const char *const *values)
{
  struct series *series = xcalloc(1, sizeof *series);

  series->values = xcalloc(metric->n_labels + 1, sizeof(char *));
  for (size_t i = 0; i < metric->n_labels; i++)
    series->values[i] = xstrdup(value_at(values, i));
  if (metric->type == METRIC_HISTOGRAM)
    series->bucket_counts = xcalloc(metric->n_buckets + 1, sizeof(uint64_t));
  if (metric->n_series == metric->cap_series)
    {
      metric->cap_series = metric->cap_series ? 2 * metric->cap_series : 8;
      metric->series = xrealloc(metric->series, metric->cap_series * sizeof *metric->series);
    }
  metric->series[metric->n_series++] = series;
  return series;
}

/* The series of values, created when new; with the family full, the
 * overflow series instead (METRICS_OVERFLOW_VALUE in every label).  With
 * metric->lock held. */
static struct series *
series_get(struct metric *metric, const char *const *values)
{
  const char *overflow[metric->n_labels + 1];
  struct series *series = series_lookup(metric, values);

  if (series)
    return series;
  if (metric->n_series < metric->max_series)
    return series_add(metric, values);
  for (size_t i = 0; i < metric->n_labels; i++)
    overflow[i] = METRICS_OVERFLOW_VALUE;
  overflow[metric->n_labels] = NULL;
  if (!metric->overflow_logged)
    {
      log_warn("metrics: %s has %zu label sets; further ones are counted as \"%s\"", metric->name,
               metric->max_series, METRICS_OVERFLOW_VALUE);
      metric->overflow_logged = true;
    }
  series = series_lookup(metric, overflow);
  return series ? series : series_add(metric, overflow);
}

void
metric_add(struct metric *metric, const char *const *values, double delta)
{
  if (metric->type == METRIC_HISTOGRAM || (metric->type == METRIC_COUNTER && !(delta >= 0)))
    return;
  pthread_mutex_lock(&metric->lock);
  series_get(metric, values)->value += delta;
  pthread_mutex_unlock(&metric->lock);
}

void
metric_set(struct metric *metric, const char *const *values, double value)
{
  if (metric->type != METRIC_GAUGE)
    return;
  pthread_mutex_lock(&metric->lock);
  series_get(metric, values)->value = value;
  pthread_mutex_unlock(&metric->lock);
}

/* The first bucket value fits in; n_buckets (the +Inf one) when none. */
static size_t
bucket_index(const struct metric *metric, double value)
{
  size_t i = 0;
  while (i < metric->n_buckets && !(value <= metric->buckets[i]))
    i++;
  return i;
}

void
metric_observe(struct metric *metric, const char *const *values, double value)
{
  struct series *series;

  if (metric->type != METRIC_HISTOGRAM)
    return;
  pthread_mutex_lock(&metric->lock);
  series = series_get(metric, values);
  series->bucket_counts[bucket_index(metric, value)]++;
  series->sum += value;
  series->count++;
  pthread_mutex_unlock(&metric->lock);
}

double
metric_value(struct metric *metric, const char *const *values)
{
  struct series *series;
  double value = 0;

  pthread_mutex_lock(&metric->lock);
  series = series_lookup(metric, values);
  if (series)
    value = metric->type == METRIC_HISTOGRAM ? (double)series->count : series->value;
  pthread_mutex_unlock(&metric->lock);
  return value;
}

/* ---- Text format -------------------------------------------------------------------------- */

/* quote: escape '"' too (label values, not help text). */
static void
write_escaped(FILE *out, const char *text, bool quote)
{
  const char *s = text;
  const char *end = text + strlen(text);

  while (*s)
    {
      size_t len = utf8_char_length(s, (size_t)(end - s));
      if (*s == '\\')
        fputs("\\\\", out);
      else if (*s == '\n')
        fputs("\\n", out);
      else if (*s == '"' && quote)
        fputs("\\\"", out);
      else if (len == 0)
        fputs("\xEF\xBF\xBD", out);
      else
        fwrite(s, 1, len, out);
      s += len ? len : 1;
    }
}

static char *
escaped(const char *text, bool quote)
{
  char *buffer = NULL;
  size_t size = 0;
  FILE *out = open_memstream(&buffer, &size);

  if (out == NULL)
    abort();
  write_escaped(out, text, quote);
  fclose(out);
  return buffer;
}

char *
metrics_escape_label_value(const char *value)
{
  return escaped(value, true);
}

char *
metrics_escape_help(const char *help)
{
  return escaped(help, false);
}

void
metrics_format_value(double value, char *out, size_t size)
{
  if (isnan(value))
    snprintf(out, size, "NaN");
  else if (isinf(value))
    snprintf(out, size, value > 0 ? "+Inf" : "-Inf");
  else if (value == floor(value) && fabs(value) < 1e15)
    snprintf(out, size, "%.0f", value == 0 ? 0.0 : value);
  else
    /* The shortest precision that reads back exactly. */
    for (int precision = 1; precision <= 17; precision++)
      {
        snprintf(out, size, "%.*g", precision, value);
        if (strtod(out, NULL) == value)
          break;
      }
}

static void
write_value(FILE *out, double value)
{
  char text[64];

  metrics_format_value(value, text, sizeof text);
  fputs(text, out);
}

/* {a="x",b="y"[,le="bound"]}; nothing without labels. */
static void
write_labels(FILE *out, const struct metric *metric, const struct series *series, const char *le)
{
  if (metric->n_labels == 0 && le == NULL)
    return;
  fputc('{', out);
  for (size_t i = 0; i < metric->n_labels; i++)
    {
      fprintf(out, "%s%s=\"", i ? "," : "", metric->labels[i]);
      write_escaped(out, series->values[i], true);
      fputc('"', out);
    }
  if (le)
    fprintf(out, "%sle=\"%s\"", metric->n_labels ? "," : "", le);
  fputc('}', out);
}

static void
write_histogram(FILE *out, const struct metric *metric, const struct series *series)
{
  uint64_t cumulative = 0;
  char le[64];

  for (size_t i = 0; i <= metric->n_buckets; i++)
    {
      cumulative += series->bucket_counts[i];
      metrics_format_value(i < metric->n_buckets ? metric->buckets[i] : INFINITY, le, sizeof le);
      fprintf(out, "%s_bucket", metric->name);
      write_labels(out, metric, series, le);
      fprintf(out, " %llu\n", (unsigned long long)cumulative);
    }
  fprintf(out, "%s_sum", metric->name);
  write_labels(out, metric, series, NULL);
  fputc(' ', out);
  write_value(out, series->sum);
  fprintf(out, "\n%s_count", metric->name);
  write_labels(out, metric, series, NULL);
  fprintf(out, " %llu\n", (unsigned long long)series->count);
}

static const char *
type_name(enum metric_type type)
{
  switch (type)
    {
    case METRIC_COUNTER:
      return "counter";
    case METRIC_GAUGE:
      return "gauge";
    case METRIC_HISTOGRAM:
      return "histogram";
    }
  return "untyped";
}

static void
write_family(FILE *out, struct metric *metric)
{
  pthread_mutex_lock(&metric->lock);
  if (metric->n_series > 0)
    {
      fprintf(out, "# HELP %s ", metric->name);
      write_escaped(out, metric->help, false);
      fprintf(out, "\n# TYPE %s %s\n", metric->name, type_name(metric->type));
    }
  for (size_t i = 0; i < metric->n_series; i++)
    {
      const struct series *series = metric->series[i];
      if (metric->type == METRIC_HISTOGRAM)
        {
          write_histogram(out, metric, series);
          continue;
        }
      fputs(metric->name, out);
      write_labels(out, metric, series, NULL);
      fputc(' ', out);
      write_value(out, series->value);
      fputc('\n', out);
    }
  pthread_mutex_unlock(&metric->lock);
}

char *
metrics_registry_render(struct metrics_registry *registry, size_t *len)
{
  char *buffer = NULL;
  size_t size = 0;
  FILE *out = open_memstream(&buffer, &size);

  if (out == NULL)
    abort();
  pthread_mutex_lock(&registry->lock);
  for (size_t i = 0; i < registry->n_families; i++)
    write_family(out, registry->families[i]);
  pthread_mutex_unlock(&registry->lock);
  fclose(out);
  if (len)
    *len = size;
  return buffer;
}
