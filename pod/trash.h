/* pod/trash: directories that are gone from the API but still to be
 * deleted.  Removing a container's directory (its writable layer can hold
 * many files) is moved off the caller's path: the directory is renamed
 * into <root>/trash (atomic, same file system) and a background thread
 * deletes it.  What a crash leaves in the trash is deleted at the next
 * start. */
#ifndef CRID_POD_TRASH_H
#define CRID_POD_TRASH_H

#include "common/error.h"

struct trash;

/* Creates dir if needed and starts the thread, which first empties what
 * an earlier run left. */
struct trash *trash_open(const char *dir, struct error *err);
/* Deletes what is left and stops the thread. */
void trash_close(struct trash *trash);

/* Renames path into the trash (then deleted in the background); when it
 * cannot be renamed there (another file system), deletes it here.
 * A missing path is fine. */
int trash_discard(struct trash *trash, const char *path, struct error *err);

#endif
