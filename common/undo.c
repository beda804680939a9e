#include "common/undo.h"
#include "common/log.h"

#include <stdlib.h>

void
undo_push(struct undo_list *list, const char *what, undo_function fn, void *object)
{
  /* A fixed bound keeps the list allocation-free; overflowing it is a
   * programming error, not a runtime condition. */
  if (list->n >= UNDO_MAX_STEPS)
    abort();
  list->steps[list->n].what = what;
  list->steps[list->n].fn = fn;
  list->steps[list->n].object = object;
  list->n++;
}

void
undo_run(struct undo_list *list)
{
  while (list->n > 0)
    {
      struct error err = ERROR_INIT;
      list->n--;
      if (list->steps[list->n].fn(list->steps[list->n].object, &err) < 0)
        log_warn("rollback: undo %s: %s", list->steps[list->n].what, error_message(&err));
      error_clear(&err);
    }
}

void
undo_forget(struct undo_list *list)
{
  list->n = 0;
}
