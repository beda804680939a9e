#include "netcni/cni_watch.h"
#include "netcni/cni_config.h"

#include "common/dir_watch.h"
#include "common/log.h"
#include "common/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct cni_watch
{
  char *dir;
  struct dir_watch *watch;
  pthread_mutex_t lock;
  enum cni_watch_state state;
  char *name;    /* READY */
  char *message; /* NOT_READY */
};

static void
set_state(struct cni_watch *watch, enum cni_watch_state state, char *name, char *message)
{
  bool changed;

  pthread_mutex_lock(&watch->lock);
  changed
      = watch->state != state || (name && (watch->name == NULL || strcmp(name, watch->name) != 0));
  watch->state = state;
  free(watch->name);
  free(watch->message);
  watch->name = name;
  watch->message = message;
  pthread_mutex_unlock(&watch->lock);
  if (!changed)
    return;
  if (state == CNI_WATCH_READY)
    log_info("pod network ready: CNI network %s in %s", name, watch->dir);
  else if (state == CNI_WATCH_NOT_READY)
    log_info("pod network not ready: %s", message);
  else
    log_warn("CNI config directory %s is no longer watched; reading it on each Status", watch->dir);
}

static void
reload(struct cni_watch *watch)
{
  struct cni_network_list *network = NULL;
  struct error err = ERROR_INIT;

  if (cni_config_load_default(watch->dir, &network, &err) < 0)
    {
      set_state(watch, CNI_WATCH_NOT_READY, NULL, xstrdup(error_message(&err)));
      error_clear(&err);
      return;
    }
  if (network == NULL)
    {
      set_state(
          watch, CNI_WATCH_NOT_READY, NULL,
          xasprintf("Network plugin returns error: no CNI configuration file in %s", watch->dir));
      return;
    }
  set_state(watch, CNI_WATCH_READY, xstrdup(network->name), NULL);
  cni_network_list_free(network);
}

static void
on_change(void *object, bool lost)
{
  struct cni_watch *watch = object;

  if (lost)
    set_state(watch, CNI_WATCH_LOST, NULL, NULL);
  else
    reload(watch);
}

static void
watch_free(struct cni_watch *watch)
{
  pthread_mutex_destroy(&watch->lock);
  free(watch->dir);
  free(watch->name);
  free(watch->message);
  free(watch);
}

int
cni_watch_start(const char *dir, struct cni_watch **out, struct error *err)
{
  struct cni_watch *watch = xcalloc(1, sizeof *watch);
  char *dirs[] = { (char *)dir, NULL };

  watch->dir = xstrdup(dir);
  pthread_mutex_init(&watch->lock, NULL);
  if (dir_watch_start(dirs, "CNI config directory", on_change, watch, &watch->watch, err) < 0)
    {
      watch_free(watch);
      return -1;
    }
  *out = watch;
  return 0;
}

enum cni_watch_state
cni_watch_state(struct cni_watch *watch, char **name, char **message)
{
  enum cni_watch_state state;

  pthread_mutex_lock(&watch->lock);
  state = watch->state;
  *name = watch->name ? xstrdup(watch->name) : NULL;
  *message = watch->message ? xstrdup(watch->message) : NULL;
  pthread_mutex_unlock(&watch->lock);
  return state;
}

void
cni_watch_stop(struct cni_watch *watch)
{
  if (watch == NULL)
    return;
  dir_watch_stop(watch->watch);
  watch_free(watch);
}
