/* common/undo: rollback of a half-done operation as an ordered list of
 * undo steps.  Each step that succeeded pushes how to take it back; on
 * failure undo_run() takes them back newest first; on success the list is
 * simply dropped with undo_forget(). */
#ifndef CRID_COMMON_UNDO_H
#define CRID_COMMON_UNDO_H

#include <stddef.h>

#include "common/error.h"

#define UNDO_MAX_STEPS 24

typedef int (*undo_function)(void *object, struct error *err);

struct undo_list
{
  struct
  {
    const char *what;
    undo_function fn;
    void *object;
  } steps[UNDO_MAX_STEPS];
  size_t n;
};

#define UNDO_INIT                                                                                  \
  {                                                                                                \
    .n = 0                                                                                         \
  }

/* what names the step in the log line if its undo fails. */
void undo_push(struct undo_list *list, const char *what, undo_function fn, void *object);
/* Runs every step newest first; failures are logged and do not stop it. */
void undo_run(struct undo_list *list);
void undo_forget(struct undo_list *list);

#endif
