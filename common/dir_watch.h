/* common/dir_watch: a thread that watches directories with inotify and
 * calls back after each batch of changes, so configuration that drivers
 * or network plugins drop into a directory (CNI config lists, CDI spec
 * files) is picked up without a restart and without reading the files on
 * every request.
 *
 * Owns the inotify descriptor, the thread and its stop signal.  Missing
 * directories are created (as containerd does for the CNI dir), so what
 * is installed later is seen.  The callback runs once before
 * dir_watch_start returns (after the watches exist: nothing written in
 * between is missed), then on the watch thread after each batch of
 * events.  When a watched directory itself goes away the callback is told
 * the watch is lost and the thread ends: callers then read the
 * directories themselves. */
#ifndef CRID_COMMON_DIR_WATCH_H
#define CRID_COMMON_DIR_WATCH_H

#include <stdbool.h>

#include "common/error.h"

struct dir_watch;

/* lost: a watched directory was removed or moved; no call follows. */
typedef void (*dir_watch_fn)(void *arg, bool lost);

/* Watches every directory of dirs (NULL-terminated); what names the
 * watched thing in error messages ("CNI config directory"). */
int dir_watch_start(char *const *dirs, const char *what, dir_watch_fn changed, void *arg,
                    struct dir_watch **out, struct error *err);

/* Ends the thread (waiting for a callback in progress); NULL is fine. */
void dir_watch_stop(struct dir_watch *watch);

#endif
