/* crid/daemon: the one daemon-wide context every RPC handler reaches
 * through its call: effective configuration, readiness, and the little
 * node state the runtime-info RPCs keep (pod CIDR). */
#ifndef CRID_DAEMON_H
#define CRID_DAEMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

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
};

/* Loads files and applies overrides into c (freshly initialised). */
int daemon_load_config(const struct daemon *daemon, struct crid_config *c, struct error *err);

/* SIGHUP: re-reads the configuration and applies what can change while
 * running (the log level); other changed keys are reported and ignored. */
void daemon_reload_config(struct daemon *daemon);

#endif
