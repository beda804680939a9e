/* crid/metrics_server: crid's own metrics and the /metrics endpoint (see
 * crid/metrics.h).  One process-wide registry, created at the first use,
 * holds what is recorded as it happens (RPCs, pulls); what is a state
 * (containers, sandboxes, monitors, the process) is read at each scrape
 * instead, so there is nothing to keep in step with the pod code. */
#include "crid/metrics.h"
#include "crid/daemon.h"
#include "crid/http_server.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "pod/layout.h"
#include "pod/container.h"
#include "pod/monitor.h"
#include "pod/pod_manager.h"
#include "pod/sandbox.h"
#include "version.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNECTIONS 64
#define PROC_FILE_MAX (64 * 1024)

static const double rpc_buckets[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                      0.5,    1,     2.5,    5,     10,   30,    60,   120, 300 };
static const double pull_buckets[] = { 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200 };

static const char *const operation_code_labels[] = { "operation", "code", NULL };
static const char *const operation_labels[] = { "operation", NULL };
static const char *const state_labels[] = { "state", NULL };
static const char *const result_labels[] = { "result", NULL };
static const char *const build_labels[] = { "version", "commit", NULL };

static const char *const container_states[] = { "created", "running", "exited", "unknown" };
static const char *const sandbox_states[] = { "ready", "notready" };

struct crid_metrics
{
  struct metrics_registry *registry;
  struct metric *build_info;
  struct metric *operations, *operation_errors, *operation_latency;
  struct metric *pull_success, *pull_failure, *pull_bytes, *pull_duration;
  struct metric *containers, *sandboxes, *oom, *monitors;
  struct metric *cpu_seconds, *resident_bytes, *virtual_bytes, *open_fds, *max_fds, *threads,
      *start_time;

  /* Scrapes one at a time: the values read at scrape time and oom_ids. */
  pthread_mutex_t scrape_lock;
  /* Containers seen OOM-killed at the last scrape: each is counted once
   * in crid_containers_oom_total, at the first scrape that sees it. */
  char **oom_ids;
};

static struct crid_metrics metrics;
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

struct metrics_server
{
  struct daemon *daemon;
  struct http_server *http;
};

/* ---- The registry ------------------------------------------------------------------------- */

static struct metric *
add(const char *name, enum metric_type type, const char *const *labels, const char *help)
{
  struct metric_desc desc = { .name = name, .help = help, .type = type, .labels = labels };
  return metrics_register(metrics.registry, &desc);
}

static struct metric *
add_histogram(const char *name, const char *const *labels, const double *buckets, size_t n_buckets,
              size_t max_series, const char *help)
{
  struct metric_desc desc = { .name = name,
                              .help = help,
                              .type = METRIC_HISTOGRAM,
                              .labels = labels,
                              .buckets = buckets,
                              .n_buckets = n_buckets,
                              .max_series = max_series };
  return metrics_register(metrics.registry, &desc);
}

/* Names follow CRI-O's (crio_operations_total, crio_image_pulls_*,
 * crio_containers_oom_total) in crid's namespace, and the process_*
 * names every Prometheus client library exports. */
static void
define_rpc_metrics(void)
{
  struct metric_desc operations = { .name = "crid_operations_total",
                                    .help = "CRI calls served, by method and gRPC status code.",
                                    .type = METRIC_COUNTER,
                                    .labels = operation_code_labels,
                                    .max_series = 512 };

  metrics.operations = metrics_register(metrics.registry, &operations);
  metrics.operation_errors = add("crid_operations_errors_total", METRIC_COUNTER, operation_labels,
                                 "CRI calls that ended with a status other than OK, by method.");
  metrics.operation_latency = add_histogram(
      "crid_operations_latency_seconds", operation_code_labels, rpc_buckets,
      sizeof rpc_buckets / sizeof rpc_buckets[0], 512,
      "Time from the arrival of a CRI call to its reply, by method and gRPC status code.");
}

static void
define_pull_metrics(void)
{
  metrics.pull_success
      = add("crid_image_pulls_success_total", METRIC_COUNTER, NULL, "Image pulls that succeeded.");
  metrics.pull_failure
      = add("crid_image_pulls_failure_total", METRIC_COUNTER, NULL, "Image pulls that failed.");
  metrics.pull_bytes = add("crid_image_pulls_bytes_total", METRIC_COUNTER, NULL,
                           "Bytes of the images pulled successfully: config and layer blobs as "
                           "distributed (compressed), also those already stored.");
  metrics.pull_duration
      = add_histogram("crid_image_pulls_duration_seconds", result_labels, pull_buckets,
                      sizeof pull_buckets / sizeof pull_buckets[0], 0,
                      "Time a PullImage call took, by result (success or failure).");
  /* Shown as 0 before the first pull, so rate() has a start. */
  metric_add(metrics.pull_success, NULL, 0);
  metric_add(metrics.pull_failure, NULL, 0);
  metric_add(metrics.pull_bytes, NULL, 0);
}

static void
define_pod_metrics(void)
{
  metrics.containers
      = add("crid_containers", METRIC_GAUGE, state_labels, "Containers by CRI state.");
  metrics.sandboxes
      = add("crid_pod_sandboxes", METRIC_GAUGE, state_labels, "Pod sandboxes by CRI state.");
  metrics.oom = add("crid_containers_oom_total", METRIC_COUNTER, NULL,
                    "Containers seen killed because they ran out of memory.");
  metrics.monitors = add("crid_monitors_running", METRIC_GAUGE, NULL,
                         "Live crid-conmon monitors (one per created or running container and "
                         "one per pod's pause process).");
}

static void
define_process_metrics(void)
{
  metrics.cpu_seconds = add("process_cpu_seconds_total", METRIC_COUNTER, NULL,
                            "User and system CPU time spent by crid, in seconds.");
  metrics.resident_bytes = add("process_resident_memory_bytes", METRIC_GAUGE, NULL,
                               "Resident memory of crid (VmRSS), in bytes.");
  metrics.virtual_bytes = add("process_virtual_memory_bytes", METRIC_GAUGE, NULL,
                              "Virtual memory of crid (VmSize), in bytes.");
  metrics.open_fds = add("process_open_fds", METRIC_GAUGE, NULL, "File descriptors crid has open.");
  metrics.max_fds
      = add("process_max_fds", METRIC_GAUGE, NULL, "crid's limit of open file descriptors.");
  metrics.threads = add("process_threads", METRIC_GAUGE, NULL, "Threads of crid.");
  metrics.start_time = add("process_start_time_seconds", METRIC_GAUGE, NULL,
                           "When crid started, in seconds since the Unix epoch.");
}

static void
metrics_init(void)
{
  const char *build[] = { CRID_VERSION, CRID_COMMIT, NULL };

  metrics.registry = metrics_registry_new();
  pthread_mutex_init(&metrics.scrape_lock, NULL);
  metrics.build_info = add("crid_build_info", METRIC_GAUGE, build_labels,
                           "crid's version and commit; the value is always 1.");
  metric_set(metrics.build_info, build, 1);
  define_rpc_metrics();
  define_pull_metrics();
  define_pod_metrics();
  define_process_metrics();
}

static void
ensure_init(void)
{
  pthread_once(&metrics_once, metrics_init);
}

/* ---- Recording ---------------------------------------------------------------------------- */

void
metrics_observe_rpc(const char *method, const char *code_name, int64_t duration_ns)
{
  const char *labels[] = { method, code_name, NULL };
  const char *method_only[] = { method, NULL };

  ensure_init();
  metric_add(metrics.operations, labels, 1);
  if (code_name && strcmp(code_name, "OK") != 0)
    metric_add(metrics.operation_errors, method_only, 1);
  metric_observe(metrics.operation_latency, labels, (double)duration_ns / 1e9);
}

void
metrics_observe_pull(bool ok, uint64_t bytes, int64_t duration_ns)
{
  const char *result[] = { ok ? "success" : "failure", NULL };

  ensure_init();
  metric_add(ok ? metrics.pull_success : metrics.pull_failure, NULL, 1);
  if (ok)
    metric_add(metrics.pull_bytes, NULL, (double)bytes);
  metric_observe(metrics.pull_duration, result, (double)duration_ns / 1e9);
}

/* ---- The process -------------------------------------------------------------------------- */

/* "VmRSS:\t  1234 kB" -> 1234 (the number after key in /proc status text). */
static bool
status_field(const char *text, const char *key, double *value)
{
  size_t key_len = strlen(key);

  for (const char *line = text; line && *line;
       line = strchr(line, '\n'), line = line ? line + 1 : 0)
    if (strncmp(line, key, key_len) == 0 && line[key_len] == ':')
      {
        *value = strtod(line + key_len + 1, NULL);
        return true;
      }
  return false;
}

static void
read_proc_status(void)
{
  cleanup_free char *text = NULL;
  struct error err = ERROR_INIT;
  double value;

  if (read_file("/proc/self/status", PROC_FILE_MAX, &text, NULL, &err) < 0)
    {
      error_clear(&err);
      return;
    }
  if (status_field(text, "VmRSS", &value))
    metric_set(metrics.resident_bytes, NULL, value * 1024);
  if (status_field(text, "VmSize", &value))
    metric_set(metrics.virtual_bytes, NULL, value * 1024);
  if (status_field(text, "Threads", &value))
    metric_set(metrics.threads, NULL, value);
}

/* Field 22 of /proc/self/stat (clock ticks after boot) plus /proc/stat's
 * btime.  The fields are counted after the last ')': the command name
 * before it may hold spaces and parentheses. */
static double
process_start_time(void)
{
  cleanup_free char *stat = NULL, *system = NULL;
  struct error err = ERROR_INIT;
  const char *p, *btime;
  unsigned long long ticks;
  double boot;

  if (read_file("/proc/self/stat", PROC_FILE_MAX, &stat, NULL, &err) < 0
      || read_file("/proc/stat", 1024 * 1024, &system, NULL, &err) < 0)
    {
      error_clear(&err);
      return 0;
    }
  p = strrchr(stat, ')');
  btime = strstr(system, "\nbtime ");
  if (p == NULL || btime == NULL)
    return 0;
  /* After ')': field 3 (state) is the first; starttime is field 22. */
  for (int field = 2; field < 22 && p; field++)
    p = strchr(p + 1, ' ');
  if (p == NULL || sscanf(p, " %llu", &ticks) != 1)
    return 0;
  boot = strtod(btime + strlen("\nbtime "), NULL);
  return boot + (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

static double
count_open_fds(void)
{
  cleanup_dir DIR *dir = opendir("/proc/self/fd");
  struct dirent *entry;
  double n = 0;

  if (dir == NULL)
    return 0;
  while ((entry = readdir(dir)) != NULL)
    if (entry->d_name[0] != '.')
      n++;
  return n > 0 ? n - 1 : 0; /* not the directory's own fd */
}

static double
cpu_seconds(const struct rusage *usage)
{
  return (double)usage->ru_utime.tv_sec + (double)usage->ru_utime.tv_usec / 1e6
         + (double)usage->ru_stime.tv_sec + (double)usage->ru_stime.tv_usec / 1e6;
}

static void
read_process(void)
{
  struct rusage usage;
  struct rlimit limit;

  /* A counter only moves up: it gets what was spent since the last scrape. */
  if (getrusage(RUSAGE_SELF, &usage) == 0)
    {
      double spent = cpu_seconds(&usage) - metric_value(metrics.cpu_seconds, NULL);
      metric_add(metrics.cpu_seconds, NULL, spent > 0 ? spent : 0);
    }
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0)
    metric_set(metrics.max_fds, NULL,
               limit.rlim_cur == RLIM_INFINITY ? INFINITY : (double)limit.rlim_cur);
  metric_set(metrics.open_fds, NULL, count_open_fds());
  read_proc_status();
  if (metric_value(metrics.start_time, NULL) == 0)
    metric_set(metrics.start_time, NULL, process_start_time());
}

/* ---- Pods --------------------------------------------------------------------------------- */

struct pod_counts
{
  double containers[4]; /* by enum container_state */
  double sandboxes[2];  /* by enum sandbox_state */
  double monitors;
  char **oom_ids; /* NULL-terminated */
  size_t n_oom;
};

/* The conmon.pid of a container or sandbox names a live crid-conmon: the
 * pid of a monitor that ended may belong to another program since, so
 * the program's name (comm, cut to 15 bytes) must be the monitor's. */
static bool
monitor_alive(struct pod_manager *pods, const char *id)
{
  cleanup_free char *dir = layout_monitor_dir(pods, id);
  cleanup_free char *comm_path = NULL, *comm = NULL;
  const char *name = strrchr(pods->options.conmon_path, '/');
  struct error err = ERROR_INIT;
  pid_t pid = monitor_read_pid(dir);
  size_t name_len;

  if (pid <= 0)
    return false;
  comm_path = xasprintf("/proc/%d/comm", (int)pid);
  if (read_file(comm_path, 64, &comm, NULL, &err) < 0)
    {
      error_clear(&err);
      return false;
    }
  name = name ? name + 1 : pods->options.conmon_path;
  name_len = strlen(name) < 15 ? strlen(name) : 15;
  return strcspn(comm, "\n") == name_len && strncmp(comm, name, name_len) == 0;
}

static void
count_containers(struct pod_manager *pods, struct pod_counts *counts)
{
  size_t n;
  struct container **list = pod_manager_list_containers(pods, &n);

  counts->oom_ids = xcalloc(n + 1, sizeof(char *));
  for (size_t i = 0; i < n; i++)
    {
      struct container *container = list[i];
      struct container_snapshot snapshot;
      struct error gone = ERROR_INIT;
      enum container_state state;
      bool oom_killed;

      if (container_snapshot_take(pods, container, &snapshot, &gone) < 0)
        {
          error_clear(&gone);
          continue;
        }
      state = snapshot.state;
      oom_killed = snapshot.oom_killed;
      container_snapshot_clear(&snapshot);
      if ((unsigned)state > CONTAINER_UNKNOWN)
        continue;
      counts->containers[state]++;
      if (oom_killed)
        counts->oom_ids[counts->n_oom++] = xstrdup(container->id);
      /* Only these have a monitor: it ends once the container has. */
      if ((state == CONTAINER_CREATED || state == CONTAINER_RUNNING)
          && monitor_alive(pods, container->id))
        counts->monitors++;
    }
  pod_manager_release_containers(list, n);
}

static void
count_sandboxes(struct pod_manager *pods, struct pod_counts *counts)
{
  size_t n;
  struct sandbox **list = pod_manager_list_sandboxes(pods, &n);

  for (size_t i = 0; i < n; i++)
    {
      struct sandbox_snapshot snapshot;
      struct error gone = ERROR_INIT;
      enum sandbox_state state;

      if (sandbox_snapshot_take(pods, list[i], &snapshot, &gone) < 0)
        {
          error_clear(&gone);
          continue;
        }
      state = snapshot.state;
      sandbox_snapshot_clear(&snapshot);
      if ((unsigned)state > SANDBOX_NOTREADY)
        continue;
      counts->sandboxes[state]++;
      if (state == SANDBOX_READY && monitor_alive(pods, list[i]->id))
        counts->monitors++;
    }
  pod_manager_release_list(list, n);
}

static bool
strv_contains(char *const *strv, const char *s)
{
  for (size_t i = 0; strv && strv[i]; i++)
    if (strcmp(strv[i], s) == 0)
      return true;
  return false;
}

/* OOM kills become a counter: a container counts once, at the first
 * scrape that sees it OOM-killed (a removed one never comes back, so only
 * the last scrape's set is kept).  One killed and removed between two
 * scrapes is missed. */
static void
count_new_ooms(char **oom_ids)
{
  double new_ones = 0;

  for (size_t i = 0; oom_ids[i]; i++)
    if (!strv_contains(metrics.oom_ids, oom_ids[i]))
      new_ones++;
  metric_add(metrics.oom, NULL, new_ones);
  strv_free(metrics.oom_ids);
  metrics.oom_ids = oom_ids;
}

static void
read_pods(struct pod_manager *pods)
{
  struct pod_counts counts = { 0 };

  count_containers(pods, &counts);
  count_sandboxes(pods, &counts);
  for (size_t i = 0; i < sizeof container_states / sizeof container_states[0]; i++)
    metric_set(metrics.containers, (const char *[]){ container_states[i], NULL },
               counts.containers[i]);
  for (size_t i = 0; i < sizeof sandbox_states / sizeof sandbox_states[0]; i++)
    metric_set(metrics.sandboxes, (const char *[]){ sandbox_states[i], NULL }, counts.sandboxes[i]);
  metric_set(metrics.monitors, NULL, counts.monitors);
  count_new_ooms(counts.oom_ids);
}

char *
metrics_render(struct daemon *daemon, size_t *len)
{
  char *text;

  ensure_init();
  pthread_mutex_lock(&metrics.scrape_lock);
  if (daemon && daemon->pods)
    read_pods(daemon->pods);
  read_process();
  text = metrics_registry_render(metrics.registry, len);
  pthread_mutex_unlock(&metrics.scrape_lock);
  return text;
}

/* ---- Serving ------------------------------------------------------------------------------ */

static void
serve_metrics(void *cls, struct http_request *request)
{
  static const char *const allow[] = { "Allow", "GET, HEAD", NULL };
  struct metrics_server *server = cls;
  const char *method = http_request_method(request);
  const char *rest = http_request_rest(request);
  cleanup_free char *text = NULL;
  size_t len = 0;

  if (*rest != '\0' && strcmp(rest, "/") != 0)
    {
      http_respond(request, 404, "text/plain", "404 page not found\n", 19, NULL);
      return;
    }
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
    {
      http_respond(request, 405, "text/plain", "only GET and HEAD\n", 18, allow);
      return;
    }
  text = metrics_render(server->daemon, &len);
  http_respond(request, 200, METRICS_CONTENT_TYPE, text, len, NULL);
}

/* The listener's own error says which address failed and why; a port
 * taken by another server (the common case) also names the keys. */
static int
explain_listen_failure(const char *host, int port, struct error *err)
{
  if (err->code == EADDRINUSE)
    return error_set(err, EADDRINUSE,
                     "metrics server: %s port %d is already in use (see metrics_host and "
                     "metrics_port in [crid.metrics])",
                     host, port);
  return error_wrap(err, "metrics server");
}

struct metrics_server *
metrics_server_start(struct daemon *daemon, struct error *err)
{
  const struct crid_config *c = &daemon->config;
  struct http_server_options options = { .address = c->metrics_host,
                                         .port = (int)c->metrics_port,
                                         .max_connections = MAX_CONNECTIONS };
  struct metrics_server *server = xcalloc(1, sizeof *server);

  ensure_init();
  server->daemon = daemon;
  server->http = http_server_new(&options);
  http_server_route(server->http, "/metrics", serve_metrics, server);
  if (http_server_start(server->http, err) < 0 || http_server_serve(server->http, err) < 0)
    {
      explain_listen_failure(c->metrics_host, (int)c->metrics_port, err);
      metrics_server_stop(server);
      return NULL;
    }
  log_info(strchr(c->metrics_host, ':') ? "metrics server listening on http://[%s]:%d/metrics"
                                        : "metrics server listening on http://%s:%d/metrics",
           c->metrics_host, http_server_port(server->http));
  return server;
}

int
metrics_server_port(const struct metrics_server *server)
{
  return http_server_port(server->http);
}

void
metrics_server_stop(struct metrics_server *server)
{
  if (server == NULL)
    return;
  http_server_free(server->http);
  free(server);
}
