/* pod/exit_release: what an ended container no longer needs (its runtime
 * state, cgroup, root file system and volume mounts) is released in the
 * background as soon as its exit is known, as containerd's shim does at
 * exit, so that RemoveContainer is left with handing its directory to the
 * trash.  One worker thread takes the containers in the order they
 * ended; it never stands in a caller's way: RemoveContainer does
 * whatever is still left itself, and what a stop of crid leaves queued is
 * left to RemoveContainer too. */
#ifndef CRID_POD_EXIT_RELEASE_H
#define CRID_POD_EXIT_RELEASE_H

struct pod_manager;
struct container;
struct exit_release;

/* NULL (logged) when no thread can be made: removals then do it all. */
struct exit_release *exit_release_start(struct pod_manager *manager);
/* Waits for the container in hand, drops the rest. */
void exit_release_stop(struct exit_release *release);
/* Takes a reference to container until its turn. */
void exit_release_queue(struct exit_release *release, struct container *container);

#endif
