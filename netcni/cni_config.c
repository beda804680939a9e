#include "netcni/cni_config.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CNI_CONFIG_MAX_SIZE (1024 * 1024)

void
cni_network_list_free(struct cni_network_list *list)
{
  if (list == NULL)
    return;
  free(list->file);
  free(list->name);
  free(list->cni_version);
  json_free(list->document);
  json_free(list->wrapped);
  free(list);
}

static bool
network_name_is_valid(const char *name)
{
  if (name == NULL || name[0] == '\0')
    return false;
  if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z')
        || (name[0] >= '0' && name[0] <= '9')))
    return false;
  for (const char *p = name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
          || *p == '_' || *p == '.' || *p == '-'))
      return false;
  return true;
}

static int
validate_plugins(const struct json_value *plugins, struct error *err)
{
  if (!json_is_array(plugins) || json_array_size(plugins) == 0)
    return error_set(err, EINVAL, "\"plugins\" must be a non-empty array");
  for (size_t i = 0; i < json_array_size(plugins); i++)
    {
      const char *type = json_object_get_string(json_array_at(plugins, i), "type");
      if (type == NULL || type[0] == '\0' || strchr(type, '/') || strcmp(type, "..") == 0)
        return error_set(err, EINVAL, "plugin %zu has no valid \"type\"", i);
    }
  return 0;
}

static int
parse_network_list(const char *path, const char *text, size_t len, bool single_plugin,
                   struct cni_network_list **out, struct error *err)
{
  struct cni_network_list *list;
  const struct json_value *plugins;

  list = xcalloc(1, sizeof *list);
  list->file = xstrdup(path);
  list->document = json_parse(text, len, err);
  if (list->document == NULL || !json_is_object(list->document))
    {
      if (list->document)
        error_set(err, EINVAL, "not a JSON object");
      goto fail;
    }
  if (single_plugin)
    {
      /* A single plugin: wrap it so everything downstream sees a list. */
      struct json_writer *writer = json_writer_new(false);
      size_t wrapped_len;
      cleanup_free char *wrapped = NULL;
      json_begin_array(writer);
      json_write_value(writer, list->document);
      json_end_array(writer);
      wrapped = json_writer_finish(writer, &wrapped_len);
      list->wrapped = json_parse(wrapped, wrapped_len, err);
      plugins = list->wrapped;
    }
  else
    plugins = json_object_get(list->document, "plugins");
  list->plugins = (struct json_value *)plugins;
  list->name = xstrdup(json_object_get_string(list->document, "name"));
  list->cni_version = xstrdup(json_object_get_string(list->document, "cniVersion"));
  if (!network_name_is_valid(list->name))
    {
      error_set(err, EINVAL, "missing or invalid network \"name\"");
      goto fail;
    }
  if (list->cni_version[0] == '\0')
    {
      error_set(err, EINVAL, "missing \"cniVersion\"");
      goto fail;
    }
  if (validate_plugins(plugins, err) < 0)
    goto fail;
  *out = list;
  return 0;

fail:
  cni_network_list_free(list);
  return error_wrap(err, "CNI config %s", path);
}

int
cni_network_list_load(const char *path, struct cni_network_list **out, struct error *err)
{
  cleanup_free char *text = NULL;
  size_t len;

  if (read_file(path, CNI_CONFIG_MAX_SIZE, &text, &len, err) < 0)
    return -1;
  return parse_network_list(path, text, len, str_has_suffix(path, ".conf"), out, err);
}

int
cni_network_list_parse(const char *name, const char *text, size_t len,
                       struct cni_network_list **out, struct error *err)
{
  return parse_network_list(name, text, len, false, out, err);
}

char *
cni_network_list_to_text(const struct cni_network_list *list)
{
  struct json_writer *writer = json_writer_new(false);

  json_begin_object(writer);
  if (list->wrapped == NULL)
    for (size_t i = 0; i < json_object_size(list->document); i++)
      {
        const char *key = json_object_key_at(list->document, i);
        if (strcmp(key, "plugins") == 0)
          continue;
        json_write_key(writer, key);
        json_write_value(writer, json_object_value_at(list->document, i));
      }
  else
    {
      json_write_key(writer, "cniVersion");
      json_write_string(writer, list->cni_version);
      json_write_key(writer, "name");
      json_write_string(writer, list->name);
    }
  json_write_key(writer, "plugins");
  json_write_value(writer, list->plugins);
  json_end_object(writer);
  return json_writer_finish(writer, NULL);
}

static int
compare_names(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
is_config_name(const char *name)
{
  return name[0] != '.'
         && (str_has_suffix(name, ".conf") || str_has_suffix(name, ".conflist")
             || str_has_suffix(name, ".json"));
}

/* Sorted config file names of dir; missing dir = none. */
static int
list_config_files(const char *dir, char ***out, size_t *count, struct error *err)
{
  cleanup_dir DIR *d = opendir(dir);
  char **names = NULL;
  size_t n = 0;
  struct dirent *entry;

  *out = NULL;
  *count = 0;
  if (d == NULL)
    return errno == ENOENT ? 0 : error_set_errno(err, errno, "open CNI config dir %s", dir);
  while ((entry = readdir(d)))
    if (is_config_name(entry->d_name))
      {
        names = xrealloc(names, (n + 2) * sizeof *names);
        names[n++] = xstrdup(entry->d_name);
        names[n] = NULL;
      }
  if (n)
    qsort(names, n, sizeof *names, compare_names);
  *out = names;
  *count = n;
  return 0;
}

int
cni_config_load_default(const char *dir, struct cni_network_list **out, struct error *err)
{
  cleanup_strv char **names = NULL;
  size_t count;

  *out = NULL;
  if (list_config_files(dir, &names, &count, err) < 0)
    return -1;
  for (size_t i = 0; i < count; i++)
    {
      cleanup_free char *path = xasprintf("%s/%s", dir, names[i]);
      struct error file_err = ERROR_INIT;
      if (cni_network_list_load(path, out, &file_err) == 0)
        return 0;
      log_debug("skipping %s", error_message(&file_err));
      error_clear(&file_err);
    }
  return 0;
}
