/* pod/container: a CRI container from CreateContainer to RemoveContainer:
 * its root file system, OCI bundle, monitor, exit and persisted state.
 *
 * Locks: op_lock serialises the lifecycle operations of one container
 * (start, stop, remove, exec's checks) and may be held for long (a stop
 * waits up to its timeout); lock guards the fields and is only held for
 * short moments, so ContainerStatus and the exit watcher never wait for a
 * stop.  Order: table lock, the sandbox's op_lock, op_lock, lock. */
#ifndef CRID_POD_CONTAINER_H
#define CRID_POD_CONTAINER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "pod/image_volume.h"
#include "api.pb-c.h"

struct pod_manager;
struct sandbox;

/* The identity the container's process and its exec processes run as
 * (config.json's process.user), reported in ContainerStatus.user and
 * kept in state.json. */
struct container_user
{
  bool known; /* false while CreateContainer has not resolved it */
  uint32_t uid;
  uint32_t gid;
  uint32_t *groups; /* the additional gids, the primary gid first */
  size_t n_groups;
};

enum container_state
{
  CONTAINER_CREATED = 0, /* the values of Runtime__V1__ContainerState */
  CONTAINER_RUNNING = 1,
  CONTAINER_EXITED = 2,
  CONTAINER_UNKNOWN = 3,
};

struct container
{
  char id[65];
  char sandbox_id[65];
  atomic_int references;
  pthread_mutex_t op_lock;
  pthread_mutex_t lock;

  /* The request as received (labels and annotations byte for byte). */
  uint8_t *request_bytes;
  size_t request_len;
  Runtime__V1__CreateContainerRequest *request;
  const Runtime__V1__ContainerConfig *config; /* request->config */

  char *handler;     /* the sandbox's runtime handler */
  char *reservation; /* "<sandbox id>_<name>_<attempt>" */
  char *image_name;  /* what the user asked for */
  char *image_id;    /* "sha256:<hex>" */
  char *log_path;    /* absolute, or NULL */
  char *cgroups_path;
  int stop_signal;

  enum container_state state;
  int64_t created_at;
  int64_t started_at;
  int64_t finished_at;
  int exit_code;
  bool oom_killed;
  char *message; /* why it ended, when crid knows more than the code */
  pid_t pid;
  /* The resources in force once UpdateContainerResources changed them
   * (persisted in state.json); NULL: still those of the request. */
  Runtime__V1__LinuxContainerResources *resources;
  struct container_user user;
  /* The images of its image volumes: in use while it exists.  Set
   * before the first save of CreateContainer, under lock. */
  struct image_volumes image_volumes;

  /* CreateContainer has not finished: a record in this state found at
   * start is the trace of a crash mid-call, rolled back by recovery. */
  bool creating;
  /* What exists, so removal undoes exactly that; each is set and saved
   * before its step (intent before effect). */
  bool rootfs_mounted;
  bool runtime_created;
  /* StartContainer runs the runtime's start: an exit seen meanwhile waits
   * until the start is recorded, so that STARTED comes before STOPPED and
   * finishedAt after startedAt. */
  bool starting;
  bool removed;
};

/* "created", "running", "exited", "unknown": for log lines. */
const char *container_state_name(enum container_state state);

void container_ref(struct container *container);
void container_unref(struct container *container);
struct container *container_new(void);

/* CreateContainer: a CREATED container (referenced) or nothing left. */
int container_create(struct pod_manager *manager, const uint8_t *request_bytes, size_t request_len,
                     struct container **out, struct error *err);
int container_start(struct pod_manager *manager, struct container *container, struct error *err);
/* StopContainer: idempotent; timeout_s 0 kills at once. */
int container_stop(struct pod_manager *manager, struct container *container, int64_t timeout_s,
                   struct error *err);
/* RemoveContainer: kills, deletes, unmounts, forgets; idempotent. */
int container_remove(struct pod_manager *manager, struct container *container, struct error *err);
/* ReopenContainerLog. */
int container_reopen_log(struct pod_manager *manager, struct container *container,
                         struct error *err);
/* UpdateContainerResources: `<runtime> update --resources`. */
int container_update_resources(struct pod_manager *manager, struct container *container,
                               const Runtime__V1__LinuxContainerResources *resources,
                               struct error *err);

/* The resources in force: the last update's, else the request's; NULL
 * when there are none.  With lock (or op_lock) held. */
const Runtime__V1__LinuxContainerResources *container_resources(const struct container *container);

/* For pod/exit_release.h: an ended container's runtime state, cgroup and
 * mounts go (what RemoveContainer would otherwise do); nothing for a
 * container that has not ended or is removed.  Failures are logged: the
 * removal tries again. */
void container_release_ended(struct pod_manager *manager, struct container *container);

/* Learns of an exit from the exit file (also used by the exit watcher and
 * at recovery); cheap when nothing changed. */
void container_refresh(struct pod_manager *manager, struct container *container);

/* Recovery of a record found with creating set: the undo steps of a
 * failed CreateContainer.  Never fails; what cannot be undone is logged. */
void container_roll_back(struct pod_manager *manager, struct container *container);
/* crid reaped pid, an orphan, with status: if it was a container's init
 * (its monitor died first), its exit file is written so the status
 * shows. */
void container_orphan_reaped(struct pod_manager *manager, pid_t pid, int status);
/* Recovery of a record that cannot be read (damaged state.json or
 * request.pb): its id is all there is; the runtime's state (every
 * handler's), the monitor, the root file system mount and the files of
 * that id are removed, loudly. */
void container_salvage(struct pod_manager *manager, const char *id);
/* Recovery of a CREATED record whose runtime state says it runs (crid
 * died between the runtime's start and the record): RUNNING, as it is. */
void container_reconcile(struct pod_manager *manager, struct container *container);

/* For the sandbox: stop (timeout_s) or remove every container of a pod. */
int container_stop_pod(struct pod_manager *manager, const char *sandbox_id, int64_t timeout_s,
                       struct error *err);
int container_remove_pod(struct pod_manager *manager, const char *sandbox_id, struct error *err);

/* What crid-conmon leaves for a container or a pod's pause once it has
 * ended: its socket dir and its exit file. */
void container_remove_monitor_files(const struct pod_manager *manager, const char *id);

/* Sets *user to uid, gid and a copy of the n groups (known), replacing
 * what it held; container_user_clear frees and forgets it. */
void container_user_set(struct container_user *user, uint32_t uid, uint32_t gid,
                        const uint32_t *groups, size_t n);
void container_user_clear(struct container_user *user);

/* ---- State changes and snapshots (pod/container_state.c) --------------
 * A container's lifecycle state changes in one place,
 * container_change_state, which assigns the state with its facts,
 * persists the record and publishes the event, in that order and under
 * the container's lock.  Everything that reads a container's state (the
 * gRPC services, events, stats, metrics) takes a snapshot: a plain copy
 * made under the lock in one moment and read without any lock after. */

/* A lifecycle step and the facts that come with it. */
struct container_change
{
  enum container_state state;
  int64_t at;          /* RUNNING: started_at; EXITED: finished_at (clamped to the start) */
  pid_t pid;           /* RUNNING: the process, 0 to keep the one known */
  int exit_code;       /* EXITED */
  bool oom_killed;     /* EXITED */
  const char *message; /* EXITED: why, when crid knows more than the code */
};

/* With container->lock held.  CREATED ends a CreateContainer (the
 * container appears in the API); RUNNING and EXITED only move forward.  A
 * step to the state the container is in already changes nothing and
 * publishes nothing.  When the save fails the new state stays in memory
 * (it is what the process is) and the error is returned. */
int container_change_state(struct pod_manager *manager, struct container *container,
                           const struct container_change *change, struct error *err);
/* With container->lock held: RemoveContainer's end.  The container leaves
 * the API and DELETED is published. */
void container_change_removed(struct pod_manager *manager, struct container *container);

/* What a container's status shows, copied in one moment.  The fields
 * that never change once a container is created (id, sandbox_id, the
 * request and config, handler, image_name, image_id, log_path,
 * cgroups_path, stop_signal, user) are read from the referenced
 * container itself. */
struct container_snapshot
{
  struct container *container; /* referenced */
  enum container_state state;
  int64_t created_at;
  int64_t started_at;
  int64_t finished_at;
  int exit_code;
  bool oom_killed;
  char *message;
  pid_t pid;
  /* A copy of the resources an update put in force; NULL: the request's. */
  Runtime__V1__LinuxContainerResources *updated_resources;
};

/* Learns of an exit first (container_refresh), then copies.  ENOENT when
 * the container is removed or its CreateContainer has not finished. */
int container_snapshot_take(struct pod_manager *manager, struct container *container,
                            struct container_snapshot *out, struct error *err);
void container_snapshot_clear(struct container_snapshot *snapshot);
/* The resources in force in a snapshot: the update's, else the
 * request's; NULL when none. */
const Runtime__V1__LinuxContainerResources *
container_snapshot_resources(const struct container_snapshot *snapshot);

/* Persistence (pod/container_state.c). */
int container_save(const struct pod_manager *manager, const struct container *container,
                   struct error *err);
/* Not fsynced: the intent records of CreateContainer (what they name does
 * not outlive a reboot; a directory without a record is cleaned). */
int container_save_intent(const struct pod_manager *manager, const struct container *container,
                          struct error *err);
struct container *container_load(const struct pod_manager *manager, const char *id,
                                 struct error *err);
char *container_reservation_key(const char *sandbox_id, const Runtime__V1__ContainerConfig *config);

#endif
