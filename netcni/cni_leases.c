/* Reading host-local's lease files; see cni_leases.h. */
#include "netcni/cni_leases.h"
#include "netcni/cni_config.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A lease file is "<container id>\n<ifname>" (the id alone before CNI
 * 0.4's host-local); the plugin's own files are "lock" and
 * "last_reserved_ip.<range>". */
#define LEASE_FILE_MAX 4096

static bool
contains(char *const *strv, size_t n, const char *s)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(strv[i], s) == 0)
      return true;
  return false;
}

static void
add_holders_in(const char *dir, char ***ids, size_t *n)
{
  cleanup_dir DIR *d = opendir(dir);
  struct dirent *entry;

  while (d && (entry = readdir(d)))
    {
      cleanup_free char *path = NULL;
      cleanup_free char *text = NULL;
      struct error err = ERROR_INIT;

      if (entry->d_name[0] == '.' || strcmp(entry->d_name, "lock") == 0
          || str_has_prefix(entry->d_name, "last_reserved_ip"))
        continue;
      path = xasprintf("%s/%s", dir, entry->d_name);
      if (read_file(path, LEASE_FILE_MAX, &text, NULL, &err) < 0)
        {
          log_debug("leases: %s", error_message(&err));
          error_clear(&err);
          continue;
        }
      text[strcspn(text, "\r\n")] = '\0';
      if (text[0] == '\0' || contains(*ids, *n, text))
        continue;
      *ids = xrealloc(*ids, (*n + 2) * sizeof(char *));
      (*ids)[(*n)++] = steal_pointer(&text);
      (*ids)[*n] = NULL;
    }
}

char **
cni_lease_holders(const struct cni_network_list *list)
{
  char **ids = xcalloc(1, sizeof(char *));
  size_t n = 0;

  for (size_t i = 0; i < json_array_size(list->plugins); i++)
    {
      const struct json_value *ipam = json_object_get(json_array_at(list->plugins, i), "ipam");
      const char *type = json_object_get_string(ipam, "type");
      const char *data_dir = json_object_get_string(ipam, "dataDir");
      cleanup_free char *dir = NULL;

      if (type == NULL || strcmp(type, "host-local") != 0)
        continue;
      dir = xasprintf("%s/%s", data_dir && data_dir[0] ? data_dir : CNI_HOST_LOCAL_DEFAULT_DIR,
                      list->name);
      add_holders_in(dir, &ids, &n);
    }
  return ids;
}
