/* netcni/cni_watch: whether the node has a pod network, kept current by
 * watching the CNI config directory with inotify, so the NetworkReady
 * condition of Status flips as soon as a configuration appears or goes,
 * and Status (polled by the kubelet every few seconds) reads no files.
 *
 * The directory is created when missing (as containerd does), so a
 * network installed later is seen.  When the directory cannot be watched
 * or goes away, the watch says so and callers read the directory
 * themselves. */
#ifndef CRID_NETCNI_CNI_WATCH_H
#define CRID_NETCNI_CNI_WATCH_H

#include <stdbool.h>

#include "common/error.h"

struct cni_watch;

/* Loads the directory once and starts the watching thread. */
int cni_watch_start(const char *dir, struct cni_watch **out, struct error *err);

enum cni_watch_state
{
  CNI_WATCH_READY,     /* a valid network: *name is its name */
  CNI_WATCH_NOT_READY, /* none: *message says why */
  CNI_WATCH_LOST,      /* the directory is no longer watched */
};

/* The state at the last change; *name or *message are the caller's (NULL
 * for LOST). */
enum cni_watch_state cni_watch_state(struct cni_watch *watch, char **name, char **message);

void cni_watch_stop(struct cni_watch *watch);

#endif
