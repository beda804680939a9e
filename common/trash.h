/* common/trash: deleting directory trees, at once or in the background.
 *
 * remove_tree deletes a tree without following symlinks and without
 * entering mount points.  A trash is a directory beside what it receives
 * (same file system) and one low-priority thread: a tree that is gone from
 * the API is renamed into it (atomic), so the caller returns at once, and
 * the thread deletes it.  What a crash leaves in a trash is deleted when it
 * is opened again.  The pods' directories (<root>/trash) and the image
 * store's layers (<root>/images/trash) each have one. */
#ifndef CRID_COMMON_TRASH_H
#define CRID_COMMON_TRASH_H

#include "common/error.h"

/* Removes path (a directory tree or a file) without following symlinks;
 * a mount point inside it is refused (EBUSY).  A missing path is fine. */
int remove_tree(const char *path, struct error *err);
/* Empties the directory dir_fd the same way; what names it in messages. */
int remove_dir_contents(int dir_fd, const char *what, struct error *err);

struct trash;

/* Creates dir if needed and starts the thread, which first empties what
 * an earlier run left. */
struct trash *trash_open(const char *dir, struct error *err);
/* Stops the thread, without waiting for the deletion under way: what is
 * left is deleted when the trash is opened again.  NULL is fine. */
void trash_close(struct trash *trash);

/* Renames path into the trash (then deleted in the background); without a
 * trash, or when path cannot be renamed there (another file system),
 * deletes it here.  A missing path is fine. */
int trash_discard(struct trash *trash, const char *path, struct error *err);

#endif
