/* common/children: reaping in a process that is a child subreaper.
 *
 * crid is a subreaper, so processes orphaned below it (a monitor whose
 * first fork exited, a runtime's helper) become its children and must be
 * reaped by it.  Code that waits for a child itself owns it: it spawns and
 * claims the pid under children_lock(), and releases it after its waitpid.
 * children_reap_orphans() reaps every exited child nobody owns. */
#ifndef CRID_COMMON_CHILDREN_H
#define CRID_COMMON_CHILDREN_H

#include <sys/types.h>

void children_lock(void);
void children_unlock(void);
/* With the lock held, right after the spawn. */
void children_claim(pid_t pid);
void children_release(pid_t pid);

/* While a hold is taken the reaper leaves every child alone.  For a
 * process that becomes crid's child only when its parent exits (the
 * process a runtime's `exec --detach` starts is left to crid, the
 * subreaper), whose pid its owner learns only after that: hold, run the
 * runtime, claim the pid it reports, release.  The release reaps what
 * was deferred. */
void children_hold_orphans(void);
void children_release_orphans(void);

/* On SIGCHLD: reaps exited children that no one claimed. */
void children_reap_orphans(void);

/* Called with each orphan's wait status as it is reaped (once, by the
 * reaper's thread, which must not be held up): a container whose monitor
 * died becomes crid's child, and its exit status is worth keeping. */
void children_set_orphan_hook(void (*hook)(void *data, pid_t pid, int status), void *data);

#endif
