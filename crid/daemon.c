#include "crid/daemon.h"
#include "common/log.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

static void
replace_string(char **field, const char *value)
{
  if (value == NULL)
    return;
  free(*field);
  *field = xstrdup(value);
}

int
daemon_load_config(const struct daemon *daemon, struct crid_config *c, struct error *err)
{
  if (config_load(c, daemon->config_file, daemon->config_file_given, daemon->config_dir, err) < 0)
    return -1;
  replace_string(&c->listen, daemon->overrides.listen);
  replace_string(&c->root, daemon->overrides.root);
  replace_string(&c->state_dir, daemon->overrides.state_dir);
  replace_string(&c->log_level, daemon->overrides.log_level);
  return config_finalize(c, err);
}

void
daemon_reload_config(struct daemon *daemon)
{
  struct crid_config fresh;
  struct error err = ERROR_INIT;

  config_init(&fresh);
  if (daemon_load_config(daemon, &fresh, &err) < 0)
    {
      log_error("reload: keeping the running configuration: %s", error_message(&err));
      error_clear(&err);
      config_free(&fresh);
      return;
    }
  pthread_mutex_lock(&daemon->lock);
  if (strcmp(fresh.log_level, daemon->config.log_level) != 0)
    {
      log_set_level(log_level_parse(fresh.log_level));
      log_info("reload: log level %s -> %s", daemon->config.log_level, fresh.log_level);
      replace_string(&daemon->config.log_level, fresh.log_level);
    }
  else
    log_info("reload: configuration re-read; log level stays %s", fresh.log_level);
  pthread_mutex_unlock(&daemon->lock);
  config_free(&fresh);
}
