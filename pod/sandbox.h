/* pod/sandbox: a pod sandbox from RunPodSandbox to RemovePodSandbox: its
 * namespaces, files, network, pause process and persisted state. */
#ifndef CRID_POD_SANDBOX_H
#define CRID_POD_SANDBOX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "api.pb-c.h"

struct pod_manager;

enum sandbox_state
{
  SANDBOX_READY = 0,
  SANDBOX_NOTREADY = 1,
};

struct sandbox
{
  char id[65];
  atomic_int references;
  /* Lifecycle operations: RunPodSandbox, StopPodSandbox and
   * RemovePodSandbox hold it for writing (one at a time, for as long as
   * CNI and the runtime take); CreateContainer holds it for reading, so
   * the pod is not stopped under a create while creates run side by
   * side. */
  pthread_rwlock_t op_lock;
  /* Guards state, creating and removed: held for moments only (a change
   * of state and its save), never across CNI or the runtime, so status
   * and list calls never wait for a lifecycle operation.  Order: op_lock,
   * then lock. */
  pthread_mutex_t lock;

  /* The request as received, kept to echo labels and annotations byte for
   * byte, also after a restart. */
  uint8_t *request_bytes;
  size_t request_len;
  Runtime__V1__RunPodSandboxRequest *request;
  const Runtime__V1__PodSandboxConfig *config; /* request->config */

  char *handler; /* resolved runtime handler name */
  char *reservation;
  int64_t created_at;
  enum sandbox_state state;
  bool removed;

  bool host_network;
  bool host_ipc;
  int pid_mode; /* Runtime__V1__NamespaceMode */

  pid_t pause_pid;
  char **ips; /* NULL-terminated bare addresses */
  char *network_name;
  char *network_config; /* the conflist text ADD used, for DEL */
  char *network_result; /* the cached ADD result */
  char *cgroup_parent;
  char *cgroups_path;

  /* RunPodSandbox has not finished: a record in this state found at start
   * is the trace of a crash mid-call, rolled back by recovery. */
  bool creating;
  /* What exists, so stop and remove undo exactly that.  Each is set and
   * saved before its step (intent before effect). */
  bool namespaces_pinned;
  bool shm_mounted;
  bool network_attached;
  bool pause_created;
  bool pause_started;
};

void sandbox_ref(struct sandbox *sandbox);
void sandbox_unref(struct sandbox *sandbox);

/* RunPodSandbox: returns a READY sandbox (referenced) or leaves nothing. */
int sandbox_run(struct pod_manager *manager, const uint8_t *request_bytes, size_t request_len,
                struct sandbox **out, struct error *err);
/* StopPodSandbox: idempotent, also on a half-created sandbox. */
int sandbox_stop(struct pod_manager *manager, struct sandbox *sandbox, struct error *err);
/* RemovePodSandbox: stops first; removes everything and the name. */
int sandbox_remove(struct pod_manager *manager, struct sandbox *sandbox, struct error *err);

/* Refreshes state from the pause process (it may have died). */
void sandbox_refresh(struct pod_manager *manager, struct sandbox *sandbox);

/* Recovery of a record found with creating set (crid died during its
 * RunPodSandbox): the undo steps of a failed call, from what the record
 * says may exist.  Never fails; what cannot be undone is logged. */
void sandbox_roll_back(struct pod_manager *manager, struct sandbox *sandbox);

/* Recovery of a record that cannot be read: what a pod of that id may
 * have left is removed, loudly (pause in every handler's runtime, monitor,
 * network with the configuration in force, namespaces, shm, files). */
void sandbox_salvage(struct pod_manager *manager, const char *id);

/* PortForward: a TCP connection to localhost:port in the pod's network
 * namespace (the host's for a hostNetwork pod).  EINVAL when the pod is
 * not ready; the fd on success. */
int sandbox_connect_port(struct pod_manager *manager, struct sandbox *sandbox, uint16_t port,
                         struct error *err);

/* ---- State changes and snapshots (pod/sandbox_state.c) ----------------
 * A sandbox's state changes in one place, sandbox_change_state, which
 * assigns it, persists the record and publishes the events, under the
 * sandbox's lock; readers take a snapshot. */

/* With lock held (and op_lock, but for the pause's death found by
 * sandbox_refresh).  READY ends a RunPodSandbox (the pod appears in the
 * API: CREATED and STARTED are published); NOTREADY from READY publishes
 * STOPPED.  The record is saved in any case (it also holds the steps a
 * stop has undone). */
int sandbox_change_state(struct pod_manager *manager, struct sandbox *sandbox,
                         enum sandbox_state state, struct error *err);
/* With lock held: RemovePodSandbox's end; DELETED is published. */
void sandbox_change_removed(struct pod_manager *manager, struct sandbox *sandbox);

/* What a pod's status shows, copied in one moment.  What never changes
 * once RunPodSandbox returned (id, request and config, handler,
 * namespace modes, pause_pid, ips, network_name, cgroup paths) is read
 * from the referenced sandbox itself. */
struct sandbox_snapshot
{
  struct sandbox *sandbox; /* referenced */
  enum sandbox_state state;
};

/* Learns of the pause's death first (sandbox_refresh), then copies.
 * ENOENT when the pod is removed or its RunPodSandbox has not finished. */
int sandbox_snapshot_take(struct pod_manager *manager, struct sandbox *sandbox,
                          struct sandbox_snapshot *out, struct error *err);
void sandbox_snapshot_clear(struct sandbox_snapshot *snapshot);

/* Persistence (pod/sandbox_state.c). */
/* Not fsynced: for intent records of what does not outlive a reboot. */
int sandbox_save_intent(const struct pod_manager *manager, const struct sandbox *sandbox,
                        struct error *err);
int sandbox_save(const struct pod_manager *manager, const struct sandbox *sandbox,
                 struct error *err);
/* Loads <dir>/{request.pb,state.json}; NULL + ENOENT when incomplete. */
struct sandbox *sandbox_load(const struct pod_manager *manager, const char *id, struct error *err);
struct sandbox *sandbox_new(void);

#endif
