/* pod/exit_watch: a thread that learns of container exits as crid-conmon
 * reports them: inotify on <state>/exits for IN_MOVED_TO (the monitor
 * writes .<id>.tmp and renames it to <id>, last of all), names starting
 * with '.' ignored. */
#ifndef CRID_POD_EXIT_WATCH_H
#define CRID_POD_EXIT_WATCH_H

#include "common/error.h"

struct exit_watch;

typedef void (*exit_watch_fn)(void *arg, const char *id);

/* The watch exists on return, so an exit after it is never missed; the
 * caller then scans what is already there.  fn runs on the thread. */
struct exit_watch *exit_watch_start(const char *dir, exit_watch_fn fn, void *arg,
                                    struct error *err);
/* Stops and joins the thread. NULL is fine. */
void exit_watch_stop(struct exit_watch *watch);

#endif
