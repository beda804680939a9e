/* Unit tests of crid/metrics: the registry and the Prometheus text
 * exposition format 0.0.4 (escaping, value formatting, histogram buckets,
 * bounded label sets), and crid's own metric set as rendered without a
 * daemon. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "crid/metrics.h"
#include "common/cleanup.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char *const method_code[] = { "method", "code", NULL };

static void
assert_contains(const char *text, const char *needle)
{
  if (strstr(text, needle) == NULL)
    fail_msg("expected\n%s\nin\n%s", needle, text);
}

static void
assert_lacks(const char *text, const char *needle)
{
  if (strstr(text, needle) != NULL)
    fail_msg("did not expect\n%s\nin\n%s", needle, text);
}

static char *
render(struct metrics_registry *registry)
{
  size_t len = 0;
  char *text = metrics_registry_render(registry, &len);

  assert_non_null(text);
  assert_int_equal(len, strlen(text));
  return text;
}

static void
test_counter_with_labels(void **state)
{
  struct metrics_registry *registry = metrics_registry_new();
  struct metric_desc desc = {
    .name = "t_requests_total", .help = "Requests.", .type = METRIC_COUNTER, .labels = method_code
  };
  struct metric *counter = metrics_register(registry, &desc);
  cleanup_free char *text = NULL;

  metric_add(counter, (const char *[]){ "Version", "OK" }, 1);
  metric_add(counter, (const char *[]){ "Version", "OK" }, 2);
  metric_add(counter, (const char *[]){ "Status", "UNKNOWN" }, 1);
  metric_add(counter, (const char *[]){ "Status", "UNKNOWN" },
             -5); /* ignored: counters only rise */
  text = render(registry);
  assert_string_equal(text, "# HELP t_requests_total Requests.\n"
                            "# TYPE t_requests_total counter\n"
                            "t_requests_total{method=\"Version\",code=\"OK\"} 3\n"
                            "t_requests_total{method=\"Status\",code=\"UNKNOWN\"} 1\n");
  assert_true(metric_value(counter, (const char *[]){ "Version", "OK" }) == 3);
  assert_true(metric_value(counter, (const char *[]){ "Version", "NOT_FOUND" }) == 0);
  metrics_registry_free(registry);
}

static void
test_gauge_without_labels_and_empty_family(void **state)
{
  struct metrics_registry *registry = metrics_registry_new();
  struct metric_desc unused = { .name = "t_unused", .help = "Never set.", .type = METRIC_GAUGE };
  struct metric_desc desc = { .name = "t_temperature", .help = "Degrees.", .type = METRIC_GAUGE };
  struct metric *gauge;
  cleanup_free char *text = NULL;

  metrics_register(registry, &unused);
  gauge = metrics_register(registry, &desc);
  metric_set(gauge, NULL, 20.5);
  metric_add(gauge, NULL, -30);
  text = render(registry);
  /* A family without any series is left out entirely. */
  assert_string_equal(text, "# HELP t_temperature Degrees.\n"
                            "# TYPE t_temperature gauge\n"
                            "t_temperature -9.5\n");
  metrics_registry_free(registry);
}

static void
test_label_values_and_help_are_escaped(void **state)
{
  struct metrics_registry *registry = metrics_registry_new();
  const char *const labels[] = { "path", NULL };
  struct metric_desc desc = { .name = "t_escaped",
                              .help = "Help with \\ backslash,\nnewline and \"quotes\".",
                              .type = METRIC_GAUGE,
                              .labels = labels };
  struct metric *gauge = metrics_register(registry, &desc);
  cleanup_free char *text = NULL;

  metric_set(gauge, (const char *[]){ "a\\b\"c\nd" }, 1);
  text = render(registry);
  /* Help: backslash and newline; quotes stay as they are. */
  assert_contains(text, "# HELP t_escaped Help with \\\\ backslash,\\nnewline and \"quotes\".\n");
  /* Label values: backslash, double quote and newline. */
  assert_contains(text, "t_escaped{path=\"a\\\\b\\\"c\\nd\"} 1\n");
  metrics_registry_free(registry);
}

static void
test_escape_functions(void **state)
{
  cleanup_free char *plain = metrics_escape_label_value("Version");
  cleanup_free char *value = metrics_escape_label_value("x\"y\\z\n");
  cleanup_free char *help = metrics_escape_help("x\"y\\z\n");
  cleanup_free char *utf8 = metrics_escape_label_value("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb3");
  cleanup_free char *bad = metrics_escape_label_value("a\xff"
                                                      "b\xc3"
                                                      "c\xed\xa0\x80");

  assert_string_equal(plain, "Version");
  assert_string_equal(value, "x\\\"y\\\\z\\n");
  assert_string_equal(help, "x\"y\\\\z\\n");
  /* Valid UTF-8 is kept as it is ... */
  assert_string_equal(utf8, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb3");
  /* ... invalid bytes (a stray 0xff, a cut sequence, a surrogate) become U+FFFD. */
  assert_string_equal(bad, "a\xef\xbf\xbd"
                           "b\xef\xbf\xbd"
                           "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

static void
assert_formats(double value, const char *expected)
{
  char text[64];

  metrics_format_value(value, text, sizeof text);
  assert_string_equal(text, expected);
}

static void
test_value_formatting(void **state)
{
  assert_formats(0, "0");
  assert_formats(-0.0, "0");
  assert_formats(1, "1");
  assert_formats(42, "42");
  assert_formats(-7, "-7");
  assert_formats(0.005, "0.005");
  assert_formats(2.5, "2.5");
  assert_formats(0.1, "0.1");
  assert_formats(1e-9, "1e-09");
  assert_formats(123456789012.0, "123456789012");
  assert_formats(1e20, "1e+20");
  assert_formats(1.0 / 3, "0.3333333333333333");
  assert_formats(INFINITY, "+Inf");
  assert_formats(-INFINITY, "-Inf");
  assert_formats(NAN, "NaN");
}

static const double buckets[] = { 0.1, 0.5, 1 };

static struct metric *
histogram(struct metrics_registry *registry, const char *const *labels)
{
  struct metric_desc desc = { .name = "t_latency_seconds",
                              .help = "Latency.",
                              .type = METRIC_HISTOGRAM,
                              .labels = labels,
                              .buckets = buckets,
                              .n_buckets = 3 };
  return metrics_register(registry, &desc);
}

static void
test_histogram_buckets_are_cumulative_with_inf(void **state)
{
  struct metrics_registry *registry = metrics_registry_new();
  struct metric *h = histogram(registry, NULL);
  cleanup_free char *text = NULL;

  metric_observe(h, NULL, 0.05);
  metric_observe(h, NULL, 0.1); /* a value on a bound goes into that bucket */
  metric_observe(h, NULL, 0.7);
  metric_observe(h, NULL, 3);
  text = render(registry);
  assert_string_equal(text, "# HELP t_latency_seconds Latency.\n"
                            "# TYPE t_latency_seconds histogram\n"
                            "t_latency_seconds_bucket{le=\"0.1\"} 2\n"
                            "t_latency_seconds_bucket{le=\"0.5\"} 2\n"
                            "t_latency_seconds_bucket{le=\"1\"} 3\n"
                            "t_latency_seconds_bucket{le=\"+Inf\"} 4\n"
                            "t_latency_seconds_sum 3.85\n"
                            "t_latency_seconds_count 4\n");
  assert_true(metric_value(h, NULL) == 4);
  metrics_registry_free(registry);
}

static void
test_histogram_labels_come_before_le(void **state)
{
  struct metrics_registry *registry = metrics_registry_new();
  struct metric *h = histogram(registry, method_code);
  cleanup_free char *text = NULL;

  metric_observe(h, (const char *[]){ "PullImage", "OK" }, 2);
  text = render(registry);
  assert_contains(text,
                  "t_latency_seconds_bucket{method=\"PullImage\",code=\"OK\",le=\"0.1\"} 0\n");
  assert_contains(text,
                  "t_latency_seconds_bucket{method=\"PullImage\",code=\"OK\",le=\"+Inf\"} 1\n");
  assert_contains(text, "t_latency_seconds_sum{method=\"PullImage\",code=\"OK\"} 2\n");
  assert_contains(text, "t_latency_seconds_count{method=\"PullImage\",code=\"OK\"} 1\n");
  metrics_registry_free(registry);
}

static void
test_label_sets_are_bounded(void **state)
{
  struct metrics_registry *registry = metrics_registry_new();
  const char *const labels[] = { "id", NULL };
  struct metric_desc desc = { .name = "t_bounded_total",
                              .help = "Bounded.",
                              .type = METRIC_COUNTER,
                              .labels = labels,
                              .max_series = 3 };
  struct metric *counter = metrics_register(registry, &desc);
  cleanup_free char *text = NULL;

  for (int i = 0; i < 10; i++)
    {
      char id[16];
      snprintf(id, sizeof id, "id%d", i);
      metric_add(counter, (const char *[]){ id }, 1);
    }
  text = render(registry);
  assert_contains(text, "t_bounded_total{id=\"id0\"} 1\n");
  assert_contains(text, "t_bounded_total{id=\"id2\"} 1\n");
  assert_lacks(text, "id3");
  /* Totals stay right: the rest went into the overflow series. */
  assert_contains(text, "t_bounded_total{id=\"" METRICS_OVERFLOW_VALUE "\"} 7\n");
  metrics_registry_free(registry);
}

struct worker_args
{
  struct metric *counter;
  struct metric *histogram;
};

static void *
worker(void *arg)
{
  struct worker_args *args = arg;

  for (int i = 0; i < 10000; i++)
    {
      metric_add(args->counter, (const char *[]){ "Version", i % 2 ? "OK" : "UNKNOWN" }, 1);
      metric_observe(args->histogram, NULL, 0.2);
    }
  return NULL;
}

static void
test_concurrent_updates_are_not_lost(void **state)
{
  struct metrics_registry *registry = metrics_registry_new();
  struct metric_desc desc = {
    .name = "t_calls_total", .help = "Calls.", .type = METRIC_COUNTER, .labels = method_code
  };
  struct worker_args args = { metrics_register(registry, &desc), histogram(registry, NULL) };
  pthread_t threads[4];

  for (int i = 0; i < 4; i++)
    pthread_create(&threads[i], NULL, worker, &args);
  for (int i = 0; i < 4; i++)
    pthread_join(threads[i], NULL);
  assert_true(metric_value(args.counter, (const char *[]){ "Version", "OK" }) == 20000);
  assert_true(metric_value(args.counter, (const char *[]){ "Version", "UNKNOWN" }) == 20000);
  assert_true(metric_value(args.histogram, NULL) == 40000);
  metrics_registry_free(registry);
}

/* crid's own set, without a daemon: build info, process metrics, and
 * what the RPC and pull hooks recorded. */
static void
test_crid_metrics_render(void **state)
{
  cleanup_free char *text = NULL;
  size_t len;

  metrics_observe_rpc("Version", "OK", 1500000);
  metrics_observe_rpc("Version", "OK", 500000);
  metrics_observe_rpc("ContainerStatus", "NOT_FOUND", 100000);
  metrics_observe_pull(true, 1000, 2000000000LL);
  metrics_observe_pull(false, 0, 1000000);
  text = metrics_render(NULL, &len);
  assert_int_equal(len, strlen(text));
  assert_contains(text, "# TYPE crid_build_info gauge\ncrid_build_info{version=\"");
  assert_contains(text, "crid_operations_total{operation=\"Version\",code=\"OK\"} 2\n");
  assert_contains(text,
                  "crid_operations_total{operation=\"ContainerStatus\",code=\"NOT_FOUND\"} 1\n");
  assert_contains(text, "crid_operations_errors_total{operation=\"ContainerStatus\"} 1\n");
  assert_lacks(text, "crid_operations_errors_total{operation=\"Version\"}");
  assert_contains(text, "crid_operations_latency_seconds_bucket{operation=\"Version\",code=\"OK\","
                        "le=\"0.001\"} 1\n");
  assert_contains(text, "crid_operations_latency_seconds_bucket{operation=\"Version\",code=\"OK\","
                        "le=\"0.0025\"} 2\n");
  assert_contains(text, "crid_operations_latency_seconds_sum{operation=\"Version\",code=\"OK\"} "
                        "0.002\n");
  assert_contains(text, "crid_image_pulls_success_total 1\n");
  assert_contains(text, "crid_image_pulls_failure_total 1\n");
  assert_contains(text, "crid_image_pulls_bytes_total 1000\n");
  assert_contains(text, "crid_image_pulls_duration_seconds_count{result=\"success\"} 1\n");
  assert_contains(text, "# TYPE process_cpu_seconds_total counter\n");
  assert_contains(text, "\nprocess_resident_memory_bytes ");
  assert_contains(text, "\nprocess_open_fds ");
  assert_contains(text, "\nprocess_threads ");
  assert_contains(text, "\nprocess_start_time_seconds ");
  /* Without a daemon there is nothing to count containers in. */
  assert_lacks(text, "crid_containers{");
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_counter_with_labels),
    cmocka_unit_test(test_gauge_without_labels_and_empty_family),
    cmocka_unit_test(test_label_values_and_help_are_escaped),
    cmocka_unit_test(test_escape_functions),
    cmocka_unit_test(test_value_formatting),
    cmocka_unit_test(test_histogram_buckets_are_cumulative_with_inf),
    cmocka_unit_test(test_histogram_labels_come_before_le),
    cmocka_unit_test(test_label_sets_are_bounded),
    cmocka_unit_test(test_concurrent_updates_are_not_lost),
    cmocka_unit_test(test_crid_metrics_render),
  };
  return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
