/* The stats collector: a cache keyed by id (CPU samples, writable-layer
 * measurements) and the low-priority thread that fills it; see stats.h
 * and stats_collector.h.
 *
 * Every period the thread re-reads the cgroup mount points, measures the
 * upper directory of each running container (and, once per state, that
 * of a created or exited one: it cannot change then), samples the CPU of
 * every running container and ready pod (the readings the calls serve
 * until the next pass), and forgets the ids of objects that are gone,
 * closing their cgroup handles.  A stats call that finds a container
 * never measured wakes it early; such a pass only measures what is
 * missing.  Removed objects are also forgotten at once through their
 * DELETED event. */
#include "pod/stats.h"
#include "pod/cgroup.h"
#include "pod/disk_usage.h"
#include "pod/events.h"
#include "pod/pod_manager.h"
#include "pod/sandbox.h"
#include "pod/stats_collector.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ioprio_set(2): the idle I/O class, for this thread only. */
#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_CLASS_IDLE 3
#define IOPRIO_CLASS_SHIFT 13
#define COLLECTOR_NICE 19
/* /proc/meminfo is about 1.5 KiB. */
#define MEMINFO_MAX_SIZE (64 * 1024)

struct cache_entry
{
  char id[65];
  int64_t born_ns; /* monotonic: entries younger than a pass are kept */
  bool seen;       /* listed by the running periodic pass */
  struct stats_cpu_window cpu;
  struct stats_reading reading;
  int64_t reading_ns; /* monotonic; 0: none */
  struct stats_fs_usage layer;
  int64_t layer_tried_ns; /* monotonic; 0: never tried */
  int layer_state;        /* the container's state when measured; -1: failed */
  /* The object's cgroup held open (pod/cgroup_stats.h) and the path it
   * was made for; NULL until the first reading.  Closed when the entry
   * goes, so a removed object's descriptors last at most until the
   * DELETED event or the next pass. */
  struct cgroup_handle *cgroup;
  char *cgroup_path;
};

/* The events subscription outlives the collector (the bus releases it
 * when it is freed); the collector pointer is cleared at stop. */
struct events_link
{
  pthread_mutex_t lock;
  struct stats_collector *collector;
  atomic_int references;
};

struct stats_collector
{
  struct pod_manager *manager;
  int64_t period_ns;
  int64_t max_age_ns; /* of a reading served: the period, capped */
  char *layers_dir;
  pthread_t thread;
  atomic_bool stop;
  struct events_link *events;

  pthread_mutex_t lock; /* everything below */
  pthread_cond_t wake;
  bool woken;
  struct cache_entry *entries; /* sorted by id */
  size_t n_entries;
  char **hierarchies; /* cgroup v1 mount points; NULL on cgroup2 */
  int64_t last_pass_ns;
  /* Whether the host has swap (SwapTotal > 0), re-read every period:
   * without any there is no swap to report, so the swap files are not
   * read and the swap fields are left out. */
  atomic_bool host_swap;
};

/* ---- The cache ------------------------------------------------------- */

/* The index of id, or where it would go. */
static size_t
find_slot(const struct stats_collector *c, const char *id, bool *found)
{
  size_t low = 0, high = c->n_entries;

  while (low < high)
    {
      size_t mid = low + (high - low) / 2;
      int cmp = strcmp(c->entries[mid].id, id);
      if (cmp == 0)
        {
          *found = true;
          return mid;
        }
      if (cmp < 0)
        low = mid + 1;
      else
        high = mid;
    }
  *found = false;
  return low;
}

static struct cache_entry *
find_locked(struct stats_collector *c, const char *id)
{
  bool found;
  size_t i = find_slot(c, id, &found);
  return found ? &c->entries[i] : NULL;
}

static struct cache_entry *
get_locked(struct stats_collector *c, const char *id)
{
  bool found;
  size_t i = find_slot(c, id, &found);
  struct cache_entry *e;

  if (found)
    return &c->entries[i];
  c->entries = xrealloc(c->entries, (c->n_entries + 1) * sizeof *c->entries);
  memmove(&c->entries[i + 1], &c->entries[i], (c->n_entries - i) * sizeof *c->entries);
  c->n_entries++;
  e = &c->entries[i];
  memset(e, 0, sizeof *e);
  snprintf(e->id, sizeof e->id, "%s", id);
  e->born_ns = time_monotonic_ns();
  e->layer_state = -1;
  return e;
}

static void
drop_handle(struct cache_entry *e)
{
  cgroup_handle_unref(e->cgroup);
  free(e->cgroup_path);
  e->cgroup = NULL;
  e->cgroup_path = NULL;
}

static void
remove_at_locked(struct stats_collector *c, size_t i)
{
  drop_handle(&c->entries[i]);
  memmove(&c->entries[i], &c->entries[i + 1], (c->n_entries - i - 1) * sizeof *c->entries);
  c->n_entries--;
}

static void
forget(struct stats_collector *c, const char *id)
{
  bool found;
  size_t i;

  pthread_mutex_lock(&c->lock);
  i = find_slot(c, id, &found);
  if (found)
    remove_at_locked(c, i);
  pthread_mutex_unlock(&c->lock);
}

bool
stats_collector_cpu_rate(struct stats_collector *c, const char *id, int64_t now_ns,
                         uint64_t usage_ns, uint64_t *nano_cores)
{
  bool has_rate;

  if (c == NULL)
    return false;
  pthread_mutex_lock(&c->lock);
  has_rate = stats_cpu_window_add(&get_locked(c, id)->cpu, now_ns, usage_ns, nano_cores);
  pthread_mutex_unlock(&c->lock);
  return has_rate;
}

bool
stats_collector_recent(struct stats_collector *c, const char *id, uint32_t wanted,
                       struct stats_reading *out)
{
  struct cache_entry *e;
  bool recent = false;

  if (c == NULL)
    return false;
  pthread_mutex_lock(&c->lock);
  e = find_locked(c, id);
  if (e && e->reading_ns && (e->reading.wanted & wanted) == wanted)
    {
      int64_t age = time_monotonic_ns() - e->reading_ns;
      /* A reading without a CPU rate (the object's first) is served only
       * until a new one could give a rate: a new container has one from
       * the second call a second later, not from the next pass. */
      bool rate_due = !e->reading.has_rate
                      && cgroup_stats_has(&e->reading.cgroup, CGROUP_STAT_CPU_USAGE)
                      && age >= STATS_RATE_MIN_INTERVAL_NS;
      recent = age < c->max_age_ns && !rate_due;
    }
  if (recent)
    *out = e->reading;
  pthread_mutex_unlock(&c->lock);
  return recent;
}

void
stats_collector_keep(struct stats_collector *c, const char *id, const struct stats_reading *reading)
{
  struct cache_entry *e;

  if (c == NULL)
    return;
  pthread_mutex_lock(&c->lock);
  e = get_locked(c, id);
  e->reading = *reading;
  e->reading_ns = time_monotonic_ns();
  pthread_mutex_unlock(&c->lock);
}

void
stats_collector_layer(struct stats_collector *c, const char *id, bool wake_if_new,
                      struct stats_fs_usage *out)
{
  struct cache_entry *e;

  memset(out, 0, sizeof *out);
  if (c == NULL)
    return;
  pthread_mutex_lock(&c->lock);
  e = wake_if_new ? get_locked(c, id) : find_locked(c, id);
  if (e)
    *out = e->layer;
  if (e && wake_if_new && e->layer_tried_ns == 0 && !c->woken)
    {
      c->woken = true;
      pthread_cond_signal(&c->wake);
    }
  pthread_mutex_unlock(&c->lock);
}

int64_t
stats_collector_last_pass(struct stats_collector *c)
{
  int64_t t;

  if (c == NULL)
    return 0;
  pthread_mutex_lock(&c->lock);
  t = c->last_pass_ns;
  pthread_mutex_unlock(&c->lock);
  return t;
}

/* ---- cgroup mount points --------------------------------------------- */

/* A handle for one reading (an object without an entry: the pause of a
 * pod summed), with the cached v1 mount points (mountinfo read when
 * there are none). */
static int
temporary_handle(struct stats_collector *c, const char *fs_path, struct cgroup_handle **out,
                 struct error *err)
{
  int ret;

  if (c == NULL)
    return cgroup_handle_new_fs(fs_path, NULL, out, err);
  pthread_mutex_lock(&c->lock);
  ret = cgroup_handle_new_fs(fs_path, c->hierarchies, out, err);
  pthread_mutex_unlock(&c->lock);
  return ret;
}

/* id's handle for fs_path, made when it has none, or none for that path,
 * or a stale one (not `replace`, which a reading just found stale);
 * returns a reference. */
static int
entry_handle(struct stats_collector *c, const char *id, const char *fs_path,
             struct cgroup_handle *replace, struct cgroup_handle **out, struct error *err)
{
  struct cache_entry *e;
  int ret = 0;

  pthread_mutex_lock(&c->lock);
  e = get_locked(c, id);
  if (e->cgroup
      && (e->cgroup == replace || cgroup_handle_is_stale(e->cgroup)
          || strcmp(e->cgroup_path, fs_path) != 0))
    drop_handle(e);
  if (e->cgroup == NULL
      && (ret = cgroup_handle_new_fs(fs_path, c->hierarchies, &e->cgroup, err)) == 0)
    e->cgroup_path = xstrdup(fs_path);
  if (ret == 0)
    *out = cgroup_handle_ref(e->cgroup);
  pthread_mutex_unlock(&c->lock);
  return ret;
}

int
stats_collector_read_cgroup(struct stats_collector *c, const char *id, const char *fs_path,
                            uint32_t wanted, struct cgroup_stats *out, struct error *err)
{
  struct cgroup_handle *handle = NULL;
  int ret;

  if (c && !atomic_load(&c->host_swap))
    wanted &= ~(uint32_t)CGROUP_WANT_SWAP;
  if (c == NULL || id == NULL)
    {
      if (temporary_handle(c, fs_path, &handle, err) < 0)
        return -1;
      ret = cgroup_stats_read_handle(handle, wanted, out, err);
      cgroup_handle_unref(handle);
      return ret;
    }
  if (entry_handle(c, id, fs_path, NULL, &handle, err) < 0)
    return -1;
  ret = cgroup_stats_read_handle(handle, wanted, out, err);
  if (ret < 0 && err->code == ESTALE)
    {
      /* The directory was removed and made again: once more with a new
       * handle on what the path names now. */
      struct cgroup_handle *stale = handle;
      error_clear(err);
      ret = entry_handle(c, id, fs_path, stale, &handle, err);
      cgroup_handle_unref(stale);
      if (ret < 0)
        return -1;
      ret = cgroup_stats_read_handle(handle, wanted, out, err);
    }
  cgroup_handle_unref(handle);
  return ret;
}

/* SwapTotal of /proc/meminfo is above 0; true when it cannot be told (the
 * swap files are then read, and missing ones skipped). */
static bool
host_has_swap(void)
{
  cleanup_free char *text = NULL;
  struct error err = ERROR_INIT;
  const char *line;
  unsigned long long kib;

  if (read_file("/proc/meminfo", MEMINFO_MAX_SIZE, &text, NULL, &err) < 0)
    {
      log_debug("stats: %s", error_message(&err));
      error_clear(&err);
      return true;
    }
  line = strstr(text, "\nSwapTotal:");
  if (line == NULL || sscanf(line + strlen("\nSwapTotal:"), "%llu", &kib) != 1)
    return true;
  return kib > 0;
}

static void
refresh_hierarchies(struct stats_collector *c)
{
  struct error err = ERROR_INIT;
  char **list = NULL;

  if (cgroup_host_mode() == CGROUP_MODE_UNIFIED)
    return;
  if (cgroup_hierarchies(&list, &err) < 0)
    {
      log_warn("stats: %s", error_message(&err));
      error_clear(&err);
      return;
    }
  pthread_mutex_lock(&c->lock);
  strv_free(c->hierarchies);
  c->hierarchies = list;
  pthread_mutex_unlock(&c->lock);
}

/* ---- One pass -------------------------------------------------------- */

static bool
layer_due(struct stats_collector *c, const char *id, enum container_state state, int64_t now)
{
  struct cache_entry *e;
  bool due;

  pthread_mutex_lock(&c->lock);
  e = get_locked(c, id);
  e->seen = true;
  due = e->layer_tried_ns == 0 || e->layer_state != (int)state
        || (state == CONTAINER_RUNNING && now - e->layer_tried_ns >= c->period_ns);
  pthread_mutex_unlock(&c->lock);
  return due;
}

static void
measure_layer(struct stats_collector *c, const char *id, enum container_state state)
{
  cleanup_free char *upper = xasprintf("%s/%s/upper", c->layers_dir, id);
  struct disk_usage usage;
  struct error err = ERROR_INIT;
  int ret = disk_usage_measure(upper, STATS_LAYER_MAX_ENTRIES, &c->stop, &usage, &err);
  int64_t now = time_realtime_ns();
  struct cache_entry *e;

  if (ret < 0)
    log_debug("stats: writable layer of %.12s: %s", id, error_message(&err));
  else if (usage.partial)
    log_debug("stats: writable layer of %.12s measured in part", id);
  error_clear(&err);
  pthread_mutex_lock(&c->lock);
  e = get_locked(c, id);
  e->layer_tried_ns = time_monotonic_ns();
  e->layer_state = ret < 0 ? -1 : (int)state;
  if (ret == 0)
    e->layer = (struct stats_fs_usage){ now, usage.used_bytes, usage.inodes_used };
  pthread_mutex_unlock(&c->lock);
}

static void
visit_container(struct stats_collector *c, struct container *container, bool periodic)
{
  struct container_snapshot snapshot;
  struct stats_container stats;
  struct error gone = ERROR_INIT;

  if (container_snapshot_take(c->manager, container, &snapshot, &gone) < 0)
    {
      error_clear(&gone);
      return;
    }
  if (layer_due(c, container->id, snapshot.state, time_monotonic_ns()))
    measure_layer(c, container->id, snapshot.state);
  /* A fresh reading each period: the calls serve it until the next one,
   * and it samples the CPU, so the first call has a rate. */
  if (periodic && snapshot.state == CONTAINER_RUNNING)
    {
      stats_read_container(c->manager, &snapshot, STATS_WANT_CONTAINER | STATS_READ_FRESH, &stats);
      stats_container_clear(&stats);
    }
  container_snapshot_clear(&snapshot);
}

static void
visit_sandbox(struct stats_collector *c, struct sandbox *sandbox)
{
  struct sandbox_snapshot snapshot;
  struct stats_sandbox stats;
  struct error err = ERROR_INIT;

  pthread_mutex_lock(&c->lock);
  get_locked(c, sandbox->id)->seen = true;
  pthread_mutex_unlock(&c->lock);
  if (sandbox_snapshot_take(c->manager, sandbox, &snapshot, &err) == 0
      && stats_read_sandbox(c->manager, &snapshot, STATS_WANT_SANDBOX | STATS_READ_FRESH, &stats,
                            &err)
             == 0)
    stats_sandbox_clear(&stats);
  sandbox_snapshot_clear(&snapshot);
  error_clear(&err);
}

/* Drops the entries of objects no longer listed (and not newer than the
 * pass), and clears the marks for the next pass. */
static void
prune(struct stats_collector *c, int64_t pass_start)
{
  pthread_mutex_lock(&c->lock);
  for (size_t i = c->n_entries; i-- > 0;)
    {
      if (!c->entries[i].seen && c->entries[i].born_ns < pass_start)
        remove_at_locked(c, i);
      else
        {
          c->entries[i].seen = false;
          /* Files found missing are looked for again once a period. */
          if (c->entries[i].cgroup)
            cgroup_handle_recheck(c->entries[i].cgroup);
        }
    }
  c->last_pass_ns = time_realtime_ns();
  pthread_mutex_unlock(&c->lock);
}

static void
run_pass(struct stats_collector *c, bool periodic)
{
  int64_t start = time_monotonic_ns();
  size_t n;
  struct container **containers;
  struct sandbox **sandboxes;

  if (periodic)
    {
      refresh_hierarchies(c);
      atomic_store(&c->host_swap, host_has_swap());
    }
  containers = pod_manager_list_containers(c->manager, &n);
  for (size_t i = 0; i < n && !atomic_load(&c->stop); i++)
    visit_container(c, containers[i], periodic);
  pod_manager_release_containers(containers, n);
  if (!periodic || atomic_load(&c->stop))
    return;
  sandboxes = pod_manager_list_sandboxes(c->manager, &n);
  for (size_t i = 0; i < n && !atomic_load(&c->stop); i++)
    visit_sandbox(c, sandboxes[i]);
  pod_manager_release_list(sandboxes, n);
  prune(c, start);
}

/* ---- The thread ------------------------------------------------------ */

static void
lower_priority(void)
{
  pid_t tid = gettid();

  /* Both are per thread on Linux; failing only costs the node a bit. */
  if (setpriority(PRIO_PROCESS, (id_t)tid, COLLECTOR_NICE) < 0)
    log_debug("stats: setpriority: %s", strerror(errno));
  if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, tid, IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT) < 0)
    log_debug("stats: ioprio_set: %s", strerror(errno));
}

static struct timespec
monotonic_deadline(int64_t ns)
{
  return (struct timespec){ .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };
}

static void *
collector_thread(void *arg)
{
  struct stats_collector *c = arg;
  int64_t next_periodic = 0;

  lower_priority();
  pthread_mutex_lock(&c->lock);
  while (!atomic_load(&c->stop))
    {
      bool periodic = time_monotonic_ns() >= next_periodic;
      c->woken = false;
      pthread_mutex_unlock(&c->lock);
      run_pass(c, periodic);
      pthread_mutex_lock(&c->lock);
      /* Passes on a fixed grid, so each reading is replaced about a
       * period after it was taken (see stats_collector_recent). */
      if (periodic)
        {
          int64_t now = time_monotonic_ns();
          next_periodic += c->period_ns;
          if (next_periodic <= now)
            next_periodic = now + c->period_ns;
        }
      while (!atomic_load(&c->stop) && !c->woken && time_monotonic_ns() < next_periodic)
        {
          struct timespec deadline = monotonic_deadline(next_periodic);
          pthread_cond_timedwait(&c->wake, &c->lock, &deadline);
        }
    }
  pthread_mutex_unlock(&c->lock);
  return NULL;
}

/* ---- Events: forget removed objects at once -------------------------- */

static void
link_unref(struct events_link *link)
{
  if (atomic_fetch_sub(&link->references, 1) != 1)
    return;
  pthread_mutex_destroy(&link->lock);
  free(link);
}

static bool
on_event(void *data, const struct pod_event *event)
{
  struct events_link *link = data;
  bool alive;

  pthread_mutex_lock(&link->lock);
  alive = link->collector != NULL;
  if (alive && event->kind == POD_EVENT_DELETED)
    forget(link->collector, event->id);
  pthread_mutex_unlock(&link->lock);
  return alive;
}

static void
on_release(void *data)
{
  link_unref(data);
}

static void
subscribe(struct stats_collector *c)
{
  if (c->manager->events == NULL)
    return;
  c->events = xcalloc(1, sizeof *c->events);
  pthread_mutex_init(&c->events->lock, NULL);
  c->events->collector = c;
  atomic_init(&c->events->references, 2);
  pod_events_subscribe(c->manager->events, on_event, on_release, c->events);
}

static void
unsubscribe(struct stats_collector *c)
{
  if (c->events == NULL)
    return;
  pthread_mutex_lock(&c->events->lock);
  c->events->collector = NULL;
  pthread_mutex_unlock(&c->events->lock);
  link_unref(c->events);
}

/* ---- Start and stop -------------------------------------------------- */

static void
collector_free(struct stats_collector *c)
{
  for (size_t i = 0; i < c->n_entries; i++)
    drop_handle(&c->entries[i]);
  pthread_cond_destroy(&c->wake);
  pthread_mutex_destroy(&c->lock);
  strv_free(c->hierarchies);
  free(c->entries);
  free(c->layers_dir);
  free(c);
}

struct stats_collector *
stats_collector_start(struct pod_manager *manager, int64_t period_s, struct error *err)
{
  struct stats_collector *c = xcalloc(1, sizeof *c);
  pthread_condattr_t attr;

  c->manager = manager;
  c->period_ns = (period_s > 0 ? period_s : STATS_DEFAULT_PERIOD_S) * 1000000000LL;
  c->max_age_ns = c->period_ns < STATS_READING_MAX_AGE_NS ? c->period_ns : STATS_READING_MAX_AGE_NS;
  c->layers_dir = stats_layers_dir(manager);
  atomic_init(&c->stop, false);
  atomic_init(&c->host_swap, host_has_swap());
  pthread_mutex_init(&c->lock, NULL);
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&c->wake, &attr);
  pthread_condattr_destroy(&attr);
  if (pthread_create(&c->thread, NULL, collector_thread, c) != 0)
    {
      collector_free(c);
      error_set(err, EAGAIN, "stats collector thread");
      return NULL;
    }
  pthread_setname_np(c->thread, "crid-stats");
  subscribe(c);
  return c;
}

void
stats_collector_stop(struct stats_collector *c)
{
  if (c == NULL)
    return;
  unsubscribe(c);
  pthread_mutex_lock(&c->lock);
  atomic_store(&c->stop, true);
  pthread_cond_broadcast(&c->wake);
  pthread_mutex_unlock(&c->lock);
  pthread_join(c->thread, NULL);
  collector_free(c);
}
