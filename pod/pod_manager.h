/* pod/pod_manager: everything that runs, as one object crid/ holds: the
 * runtime settings it was given, the tables of sandboxes (by id and by
 * reserved name), and recovery of those tables from disk at start.
 *
 * Lock order: the table lock, then a sandbox's lock.  Objects found in a
 * table are returned with a reference the caller drops. */
#ifndef CRID_POD_POD_MANAGER_H
#define CRID_POD_POD_MANAGER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "pod/oci_runtime.h"

struct sandbox;
struct container;
struct exit_watch;
struct image_store;

struct pod_runtime_handler
{
  char *name;
  char *path; /* runtime binary */
  char *root; /* its --root */
  /* Give the runtime seccomp filters compiled by crid (crun's
   * run.oci.seccomp_bpf_data, pod/seccomp_bpf.h). */
  bool precompiled_seccomp;
  struct oci_runtime_features features; /* probed at start */
};

struct pod_manager_options
{
  char *root;      /* <root>: sandboxes/, containers/ */
  char *state_dir; /* <state>: ns/, exits/, conmon/ */
  char *conmon_path;
  char *pause_path;  /* the crid-pause binary for the built-in rootfs */
  char *pause_image; /* "" or NULL: the built-in pause (pod/pause_rootfs.h) */
  bool systemd_cgroup;
  /* No seccomp profile named: RuntimeDefault rather than Unconfined. */
  bool seccomp_use_default_when_empty;
  int64_t shm_size;
  char *default_handler;
  struct pod_runtime_handler *handlers;
  size_t n_handlers;
  char *cni_config_dir;
  char **cni_plugin_dirs; /* NULL-terminated */
  int cni_timeout_seconds;
  int64_t stats_period_seconds; /* the stats collector's period; 0: its default */
  char **cdi_spec_dirs;         /* NULL-terminated, lowest priority first (pod/cdi.h) */
  struct image_store *images;   /* not owned: images of containers */
  struct image_puller *puller;  /* not owned: pulls the pause image */
};

struct pod_events;
struct trash;
struct exit_release;
struct pause_rootfs;
struct image_puller;
struct cdi_registry;
struct stats_collector;

struct pod_manager
{
  struct pod_manager_options options;
  struct pause_rootfs *pause;
  pthread_mutex_t table_lock;
  struct sandbox **sandboxes;
  size_t n_sandboxes;
  struct container **containers;
  size_t n_containers;
  struct exit_watch *exit_watch;
  struct pod_events *events;     /* lifecycle events (pod/events.h) */
  struct stats_collector *stats; /* stats cache and collector (pod/stats.h); may be NULL */
  struct trash *trash;           /* removed directories, deleted in the background; may be NULL */
  struct exit_release *release;  /* ended containers released in the background; may be NULL */
  struct cdi_registry *cdi;      /* CDI spec files (pod/cdi.h) */
};

/* options is moved into the manager.  Assembles the built-in pause root
 * filesystem and recovers every sandbox found on disk. */
struct pod_manager *pod_manager_new(struct pod_manager_options *options, struct error *err);
void pod_manager_free(struct pod_manager *manager);

/* The OCI runtime of a handler ("" = the default), for pod/oci_runtime.h. */
void pod_manager_runtime(const struct pod_manager *manager, const char *handler,
                         struct oci_runtime *runtime);
/* seccomp_json compiled for the handler's runtime when it takes filters
 * ready-made (pod/seccomp_bpf.h); *bpf is NULL when it does not, or when
 * seccomp_json is NULL (unconfined). */
int pod_manager_seccomp_bpf(const struct pod_manager *manager, const char *handler,
                            const char *seccomp_json, char **bpf, struct error *err);
const struct pod_runtime_handler *pod_manager_handler(const struct pod_manager *manager,
                                                      const char *name);

/* By full id or unique prefix; NULL (ENOENT) when none. */
struct sandbox *pod_manager_find_sandbox(struct pod_manager *manager, const char *id,
                                         struct error *err);
/* A referenced snapshot of the table; free with pod_manager_release_list. */
struct sandbox **pod_manager_list_sandboxes(struct pod_manager *manager, size_t *n);
void pod_manager_release_list(struct sandbox **list, size_t n);

/* Table maintenance, for pod/sandbox.c. */
int pod_manager_reserve(struct pod_manager *manager, struct sandbox *sandbox, struct error *err);
void pod_manager_unreserve(struct pod_manager *manager, struct sandbox *sandbox);

/* Containers: the same, for pod/container.c and crid/.  Names are
 * reserved per (sandbox id, container name, attempt). */
struct container *pod_manager_find_container(struct pod_manager *manager, const char *id,
                                             struct error *err);
struct container **pod_manager_list_containers(struct pod_manager *manager, size_t *n);
void pod_manager_release_containers(struct container **list, size_t n);
int pod_manager_reserve_container(struct pod_manager *manager, struct container *container,
                                  struct error *err);
void pod_manager_unreserve_container(struct pod_manager *manager, struct container *container);
/* For image_store_set_in_use_check: whether a container uses image_id. */
bool pod_manager_image_in_use(void *manager, const char *image_id);
/* The image id the pause runs from (pinned: never garbage collected by
 * the kubelet); NULL for the built-in pause.  Caller frees. */
char *pod_manager_pause_image_id(struct pod_manager *manager);

#endif
