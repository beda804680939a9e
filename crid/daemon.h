/* crid/daemon: the one daemon-wide context every RPC handler reaches
 * through its call: effective configuration, readiness, and the little
 * node state the runtime-info RPCs keep (pod CIDR).  Also owns the live
 * reload (SIGHUP): which keys apply while running, and what the service
 * manager is told around it. */
#ifndef CRID_DAEMON_H
#define CRID_DAEMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "common/sd_notify.h"
#include "crid/config.h"

struct pod_manager;
struct image_store;
struct image_puller;
struct registry_client;
struct cni_watch;
struct stream_server;
struct metrics_server;

/* Values given on the command line; they win over every config file and
 * are re-applied on reload. NULL = not given. */
struct config_overrides
{
  const char *listen;
  const char *root;
  const char *state_dir;
  const char *log_level;
};

struct daemon
{
  struct crid_config config;
  const char *config_file;
  bool config_file_given;
  const char *config_dir;
  struct config_overrides overrides;

  /* Until recovery of on-disk state has finished, calls that touch that
   * state answer UNAVAILABLE. */
  atomic_bool ready;

  pthread_mutex_t lock; /* guards pod_cidr and config reloads */
  char *pod_cidr;
  int lock_fd;

  struct pod_manager *pods; /* sandboxes and containers */
  struct image_store *images;
  struct registry_client *registry;
  struct image_puller *puller;
  struct cni_watch *network_watch; /* NULL: Status reads the CNI dir itself */
  struct stream_server *streams;   /* exec, attach, port-forward URLs */
  struct metrics_server *metrics;  /* /metrics; NULL unless enable_metrics */

  struct sd_notifier notifier; /* systemd's NOTIFY_SOCKET; disabled outside systemd */
};

/* Loads files and applies overrides into c (freshly initialised). */
int daemon_load_config(const struct daemon *daemon, struct crid_config *c, struct error *err);

/* SIGHUP: re-reads the configuration and applies what can change while
 * running: log_level, the registry tables ([crid.image.registries]),
 * max_concurrent_downloads and pull_progress_timeout.  Every other
 * changed key is named in the log as taking effect after a restart, and
 * the running configuration keeps its old value.  A file that does not
 * load keeps the whole running configuration (the log says file:line).
 * Tells the service manager RELOADING=1 before and READY=1 after. */
void daemon_reload_config(struct daemon *daemon);

/* READY=1 with a STATUS= line naming the socket, and note (may be NULL)
 * after it. */
void daemon_notify_ready(const struct daemon *daemon, const char *note);

#endif
