#include "crid/daemon.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/sd_notify.h"
#include "common/util.h"
#include "image/pull.h"
#include "image/registry.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void
replace_string(char **field, const char *value)
{
  if (value == NULL)
    return;
  free(*field);
  *field = xstrdup(value);
}

int
daemon_load_config(const struct daemon *daemon, struct crid_config *c, struct error *err)
{
  if (config_load(c, daemon->config_file, daemon->config_file_given, daemon->config_dir, err) < 0)
    return -1;
  replace_string(&c->listen, daemon->overrides.listen);
  replace_string(&c->root, daemon->overrides.root);
  replace_string(&c->state_dir, daemon->overrides.state_dir);
  replace_string(&c->log_level, daemon->overrides.log_level);
  return config_finalize(c, err);
}

/* A STATUS= value is one line. */
static char *
one_line(const char *text)
{
  char *line = xstrdup(text);

  for (char *p = line; *p; p++)
    if (*p == '\n' || *p == '\r')
      *p = ' ';
  return line;
}

void
daemon_notify_ready(const struct daemon *daemon, const char *note)
{
  cleanup_free char *line = note ? one_line(note) : NULL;

  sd_notifyf(&daemon->notifier, "READY=1\nSTATUS=serving on %s%s%s", daemon->config.listen,
             line ? "; " : "", line ? line : "");
}

/* ---- reload ---- */

/* What one reload found and applies. */
struct reload
{
  struct crid_config *fresh;
  bool log_level;
  bool registries;
  bool pull_limits;
  unsigned applied;
  unsigned need_restart;
};

static bool
table_is(const struct config_change *change, const char *table)
{
  return strcmp(change->table, table) == 0;
}

static bool
key_is(const struct config_change *change, const char *table, const char *key)
{
  return table_is(change, table) && change->key && strcmp(change->key, key) == 0;
}

/* "stream_port changed", "registry \"host\" added", "runtime handler
 * \"crun\": runtime_path changed". */
static char *
describe_change(const struct config_change *change)
{
  if (change->item == NULL)
    return xasprintf("%s changed", change->key);
  if (change->kind == CONFIG_ITEM_ADDED)
    return xasprintf("%s \"%s\" added", change->what, change->item);
  if (change->kind == CONFIG_ITEM_REMOVED)
    return xasprintf("%s \"%s\" removed", change->what, change->item);
  return xasprintf("%s \"%s\": %s changed", change->what, change->item, change->key);
}

/* Why a key waits for a restart, where the reason is not obvious from
 * the key (sockets, directories and threads made at start need none). */
static const char *
restart_reason(const struct config_change *change)
{
  if (table_is(change, "crid.runtime.runtimes"))
    return " (the pod manager's handler table is fixed while crid runs)";
  return "";
}

/* The keys a running crid applies: those read afresh by each pull, and
 * the log level.  Everything else is held by a socket, a thread, a
 * directory or a table made at start. */
static void
note_change(void *arg, const struct config_change *change)
{
  struct reload *reload = arg;
  cleanup_free char *what = describe_change(change);
  bool *applies = NULL;

  if (key_is(change, "crid", "log_level"))
    applies = &reload->log_level;
  else if (table_is(change, "crid.image.registries"))
    applies = &reload->registries;
  else if (key_is(change, "crid.image", "max_concurrent_downloads")
           || key_is(change, "crid.image", "pull_progress_timeout"))
    applies = &reload->pull_limits;

  if (applies == NULL)
    {
      log_warn("reload: %s; takes effect after a restart%s", what, restart_reason(change));
      reload->need_restart++;
      return;
    }
  *applies = true;
  reload->applied++;
  /* The other two are logged with their values as they are applied. */
  if (applies == &reload->registries)
    log_info("reload: %s; applies to pulls that start from now on", what);
}

/* With daemon->lock held: Status reads the configuration under it. */
static void
apply_changes(struct daemon *daemon, struct reload *reload)
{
  struct crid_config *running = &daemon->config;
  struct crid_config *fresh = reload->fresh;

  if (reload->log_level)
    {
      log_set_level(log_level_parse(fresh->log_level));
      log_info("reload: log level %s -> %s", running->log_level, fresh->log_level);
      replace_string(&running->log_level, fresh->log_level);
    }
  if (reload->registries)
    {
      if (daemon->registry)
        registry_client_configure(daemon->registry, fresh->registries, fresh->n_registries);
      config_move_registries(running, fresh);
    }
  if (reload->pull_limits)
    {
      log_info("reload: max_concurrent_downloads %" PRId64 " -> %" PRId64
               ", pull_progress_timeout %" PRId64 " -> %" PRId64,
               running->max_concurrent_downloads, fresh->max_concurrent_downloads,
               running->pull_progress_timeout, fresh->pull_progress_timeout);
      running->max_concurrent_downloads = fresh->max_concurrent_downloads;
      running->pull_progress_timeout = fresh->pull_progress_timeout;
      if (daemon->puller)
        image_puller_set_limits(daemon->puller, (int)running->max_concurrent_downloads,
                                running->pull_progress_timeout);
    }
}

/* Loads, compares and applies; the note for the STATUS= line, or -1 with
 * err when the files do not load. */
static int
reload(struct daemon *daemon, char **note, struct error *err)
{
  struct crid_config fresh;
  struct reload changes = { .fresh = &fresh };

  config_init(&fresh);
  if (daemon_load_config(daemon, &fresh, err) < 0)
    {
      config_free(&fresh);
      return -1;
    }
  pthread_mutex_lock(&daemon->lock);
  config_diff(&daemon->config, &fresh, note_change, &changes);
  apply_changes(daemon, &changes);
  pthread_mutex_unlock(&daemon->lock);
  config_free(&fresh);

  if (changes.applied == 0 && changes.need_restart == 0)
    log_info("reload: configuration re-read; nothing changed");
  *note = xasprintf("configuration reloaded: %u change(s) applied, %u after a restart",
                    changes.applied, changes.need_restart);
  return 0;
}

void
daemon_reload_config(struct daemon *daemon)
{
  struct error err = ERROR_INIT;
  cleanup_free char *note = NULL;
  /* A SIGHUP during recovery reloads too, but READY=1 must wait for the
   * end of recovery: the service manager hears nothing of it. */
  const struct sd_notifier *notifier = atomic_load(&daemon->ready) ? &daemon->notifier : NULL;

  sd_notifyf(notifier, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=reloading %s",
             sd_monotonic_usec(), daemon->config_file);
  if (reload(daemon, &note, &err) < 0)
    {
      log_error("reload: keeping the running configuration: %s", error_message(&err));
      note = xasprintf("reload failed, running configuration kept: %s", error_message(&err));
      error_clear(&err);
    }
  if (notifier)
    daemon_notify_ready(daemon, note);
}
