#include "netcni/cni_exec.h"
#include "netcni/cni_config.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/process.h"
#include "common/util.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#define CNI_MAX_OUTPUT (1024 * 1024)

static char *
find_plugin(const char *type, char *const *plugin_dirs)
{
  for (size_t i = 0; plugin_dirs && plugin_dirs[i]; i++)
    {
      char *path = xasprintf("%s/%s", plugin_dirs[i], type);
      if (access(path, X_OK) == 0)
        return path;
      free(path);
    }
  return NULL;
}

static char *
join_dirs(char *const *dirs)
{
  size_t len = 1;
  char *joined;

  for (size_t i = 0; dirs && dirs[i]; i++)
    len += strlen(dirs[i]) + 1;
  joined = xcalloc(1, len);
  for (size_t i = 0; dirs && dirs[i]; i++)
    {
      if (i)
        strcat(joined, ":");
      strcat(joined, dirs[i]);
    }
  return joined;
}

static bool
is_reserved_key(const char *key)
{
  return strcmp(key, "cniVersion") == 0 || strcmp(key, "name") == 0
         || strcmp(key, "runtimeConfig") == 0 || strcmp(key, "prevResult") == 0
         || strcmp(key, "args") == 0 || str_has_prefix(key, "cni.dev/");
}

static void
write_runtime_config(struct json_writer *writer, const struct json_value *plugin,
                     const struct json_value *capability_args)
{
  const struct json_value *capabilities = json_object_get(plugin, "capabilities");
  bool opened = false;

  for (size_t i = 0; i < json_object_size(capabilities); i++)
    {
      const char *name = json_object_key_at(capabilities, i);
      const struct json_value *value = json_object_get(capability_args, name);
      if (!json_bool(json_object_value_at(capabilities, i)) || value == NULL)
        continue;
      if (!opened)
        {
          json_write_key(writer, "runtimeConfig");
          json_begin_object(writer);
          opened = true;
        }
      json_write_key(writer, name);
      json_write_value(writer, value);
    }
  if (opened)
    json_end_object(writer);
}

/* The plugin's stdin: its own object plus what the runtime injects. */
static char *
plugin_input(const struct cni_network_list *network, const struct json_value *plugin,
             const struct cni_invocation *invocation, const struct json_value *prev_result,
             size_t *len)
{
  struct json_writer *writer = json_writer_new(false);

  json_begin_object(writer);
  json_write_key(writer, "cniVersion");
  json_write_string(writer, network->cni_version);
  json_write_key(writer, "name");
  json_write_string(writer, network->name);
  for (size_t i = 0; i < json_object_size(plugin); i++)
    {
      const char *key = json_object_key_at(plugin, i);
      if (is_reserved_key(key))
        continue;
      json_write_key(writer, key);
      json_write_value(writer, json_object_value_at(plugin, i));
    }
  write_runtime_config(writer, plugin, invocation->capability_args);
  if (prev_result)
    {
      json_write_key(writer, "prevResult");
      json_write_value(writer, prev_result);
    }
  json_end_object(writer);
  return json_writer_finish(writer, len);
}

static int
plugin_error(const char *type, const char *command, const struct process_result *result,
             struct error *err)
{
  struct error parse_err = ERROR_INIT;
  cleanup_json struct json_value *value
      = json_parse(result->stdout_text, result->stdout_len, &parse_err);
  int64_t code = 0;
  const char *message = json_object_get_string(value, "msg");
  const char *details = json_object_get_string(value, "details");

  error_clear(&parse_err);
  if (result->timed_out)
    return error_set(err, ETIMEDOUT, "CNI plugin %s %s timed out", type, command);
  json_integer(json_object_get(value, "code"), &code);
  if (message)
    return error_set(err, EIO, "CNI plugin %s %s failed (code %ld): %s%s%s", type, command,
                     (long)code, message, details && details[0] ? ": " : "",
                     details ? details : "");
  return error_set(err, EIO, "CNI plugin %s %s failed (exit %d): %.512s", type, command,
                   result->exit_code,
                   result->stderr_len ? result->stderr_text : result->stdout_text);
}

static int
run_plugin(const struct cni_network_list *network, const struct json_value *plugin,
           const char *command, const struct cni_invocation *invocation,
           const struct json_value *prev_result, char **output, struct error *err)
{
  const char *type = json_object_get_string(plugin, "type");
  cleanup_free char *path = find_plugin(type, invocation->plugin_dirs);
  cleanup_free char *cni_path = join_dirs(invocation->plugin_dirs);
  cleanup_free char *input = NULL;
  size_t input_len;
  char *env[10];
  char *argv[] = { (char *)type, NULL };
  struct process_spec spec = { 0 };
  struct process_result result;
  int ret;

  if (path == NULL)
    return error_set(err, ENOENT, "CNI plugin %s not found in %s", type, cni_path);
  input = plugin_input(network, plugin, invocation, prev_result, &input_len);
  env[0] = xasprintf("CNI_COMMAND=%s", command);
  env[1] = xasprintf("CNI_CONTAINERID=%s", invocation->container_id);
  env[2] = xasprintf("CNI_NETNS=%s", invocation->netns ? invocation->netns : "");
  env[3] = xasprintf("CNI_IFNAME=%s", invocation->ifname);
  env[4] = xasprintf("CNI_ARGS=%s", invocation->args ? invocation->args : "");
  env[5] = xasprintf("CNI_PATH=%s", cni_path);
  env[6] = xstrdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  env[7] = NULL;
  spec = (struct process_spec){ .path = path,
                                .argv = argv,
                                .envp = env,
                                .input = input,
                                .input_len = input_len,
                                .timeout_ms = invocation->timeout_seconds * 1000,
                                .max_output = CNI_MAX_OUTPUT };
  log_debug("CNI %s %s for %s", command, type, invocation->container_id);
  ret = process_run(&spec, &result, err);
  for (int i = 0; env[i]; i++)
    free(env[i]);
  if (ret < 0)
    return -1;
  if (result.exit_code != 0 || result.timed_out)
    ret = plugin_error(type, command, &result, err);
  else if (output)
    output[0] = xstrdup(result.stdout_text);
  process_result_free(&result);
  return ret;
}

int
cni_add(const struct cni_network_list *network, const struct cni_invocation *invocation,
        char **result, struct error *err)
{
  cleanup_json struct json_value *prev = NULL;
  cleanup_free char *output = NULL;

  for (size_t i = 0; i < json_array_size(network->plugins); i++)
    {
      free(output);
      output = NULL;
      if (run_plugin(network, json_array_at(network->plugins, i), "ADD", invocation, prev, &output,
                     err)
          < 0)
        return error_wrap(err, "network %s", network->name);
      json_free(prev);
      prev = json_parse(output, strlen(output), err);
      if (prev == NULL)
        return error_wrap(err, "network %s: result of plugin %zu", network->name, i);
    }
  *result = steal_pointer(&output);
  return 0;
}

static struct json_value *
parse_cached(const char *prev_result)
{
  struct error ignored = ERROR_INIT;
  struct json_value *value = NULL;
  if (prev_result && prev_result[0])
    value = json_parse(prev_result, strlen(prev_result), &ignored);
  error_clear(&ignored);
  return value;
}

int
cni_del(const struct cni_network_list *network, const struct cni_invocation *invocation,
        const char *prev_result, struct error *err)
{
  cleanup_json struct json_value *prev = parse_cached(prev_result);
  struct error first = ERROR_INIT;

  for (size_t i = json_array_size(network->plugins); i-- > 0;)
    {
      struct error plugin_err = ERROR_INIT;
      if (run_plugin(network, json_array_at(network->plugins, i), "DEL", invocation, prev, NULL,
                     &plugin_err)
          < 0)
        {
          log_warn("network %s: %s", network->name, error_message(&plugin_err));
          if (first.message == NULL)
            error_move(&first, &plugin_err);
          error_clear(&plugin_err);
        }
    }
  if (first.message)
    {
      error_move(err, &first);
      return error_wrap(err, "network %s", network->name);
    }
  return 0;
}

int
cni_check(const struct cni_network_list *network, const struct cni_invocation *invocation,
          const char *prev_result, struct error *err)
{
  cleanup_json struct json_value *prev = parse_cached(prev_result);

  if (json_bool(json_object_get(network->document, "disableCheck")))
    return 0;
  for (size_t i = 0; i < json_array_size(network->plugins); i++)
    if (run_plugin(network, json_array_at(network->plugins, i), "CHECK", invocation, prev, NULL,
                   err)
        < 0)
      return error_wrap(err, "network %s", network->name);
  return 0;
}

static char *
bare_address(const char *address)
{
  const char *slash = strchr(address, '/');
  return slash ? xstrndup(address, slash - address) : xstrdup(address);
}

/* Index of the sandbox interface named ifname in result's interfaces, or -1. */
static int64_t
sandbox_interface_index(const struct json_value *interfaces, const char *ifname)
{
  for (size_t i = 0; i < json_array_size(interfaces); i++)
    {
      const struct json_value *interface = json_array_at(interfaces, i);
      const char *name = json_object_get_string(interface, "name");
      const char *sandbox = json_object_get_string(interface, "sandbox");
      if (name && strcmp(name, ifname) == 0 && sandbox && sandbox[0])
        return (int64_t)i;
    }
  return -1;
}

int
cni_result_ips(const char *result, const char *ifname, char ***ips, struct error *err)
{
  cleanup_json struct json_value *value = json_parse(result, strlen(result), err);
  const struct json_value *list;
  int64_t wanted;
  size_t n = 0;
  char **out;

  if (value == NULL)
    return error_wrap(err, "CNI result");
  list = json_object_get(value, "ips");
  wanted = sandbox_interface_index(json_object_get(value, "interfaces"), ifname);
  out = xcalloc(json_array_size(list) + 1, sizeof *out);
  for (size_t i = 0; i < json_array_size(list); i++)
    {
      const struct json_value *entry = json_array_at(list, i);
      const char *address = json_object_get_string(entry, "address");
      int64_t interface;
      if (address == NULL)
        continue;
      /* Entries bound to another interface (the bridge, the host veth) are
       * not the pod's; entries without one are (IPAM-only results). */
      if (json_integer(json_object_get(entry, "interface"), &interface) && wanted >= 0
          && interface != wanted)
        continue;
      out[n++] = bare_address(address);
    }
  *ips = out;
  return 0;
}
