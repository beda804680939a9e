/* A sandbox on disk: <root>/sandboxes/<id>/request.pb (the request bytes as
 * received) and state.json (what crid made of it), both written atomically.
 * state.json carries a version so a later crid can read an older file. */
#include "pod/pod_manager.h"
#include "pod/sandbox.h"
#include "common/atomic_file.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define SANDBOX_STATE_VERSION 1
#define SANDBOX_FILE_MAX (16 * 1024 * 1024)

struct sandbox *
sandbox_new(void)
{
  struct sandbox *sandbox = xcalloc(1, sizeof *sandbox);
  atomic_init(&sandbox->references, 1);
  pthread_mutex_init(&sandbox->lock, NULL);
  sandbox->state = SANDBOX_NOTREADY;
  return sandbox;
}

void
sandbox_ref(struct sandbox *sandbox)
{
  atomic_fetch_add(&sandbox->references, 1);
}

void
sandbox_unref(struct sandbox *sandbox)
{
  if (sandbox == NULL || atomic_fetch_sub(&sandbox->references, 1) != 1)
    return;
  if (sandbox->request)
    runtime__v1__run_pod_sandbox_request__free_unpacked(sandbox->request, NULL);
  free(sandbox->request_bytes);
  free(sandbox->handler);
  free(sandbox->reservation);
  strv_free(sandbox->ips);
  free(sandbox->network_name);
  free(sandbox->network_config);
  free(sandbox->network_result);
  free(sandbox->cgroup_parent);
  free(sandbox->cgroups_path);
  pthread_mutex_destroy(&sandbox->lock);
  free(sandbox);
}

static void
write_string_field(struct json_writer *writer, const char *key, const char *value)
{
  json_write_key(writer, key);
  if (value)
    json_write_string(writer, value);
  else
    json_write_null(writer);
}

static void
write_bool_field(struct json_writer *writer, const char *key, bool value)
{
  json_write_key(writer, key);
  json_write_bool(writer, value);
}

static char *
state_to_json(const struct sandbox *sandbox, size_t *len)
{
  struct json_writer *writer = json_writer_new(true);

  json_begin_object(writer);
  json_write_key(writer, "version");
  json_write_int(writer, SANDBOX_STATE_VERSION);
  write_string_field(writer, "id", sandbox->id);
  json_write_key(writer, "state");
  json_write_string(writer, sandbox->state == SANDBOX_READY ? "ready" : "notready");
  json_write_key(writer, "created_at");
  json_write_int(writer, sandbox->created_at);
  write_string_field(writer, "handler", sandbox->handler);
  json_write_key(writer, "pause_pid");
  json_write_int(writer, sandbox->pause_pid);
  json_write_key(writer, "ips");
  json_begin_array(writer);
  for (size_t i = 0; sandbox->ips && sandbox->ips[i]; i++)
    json_write_string(writer, sandbox->ips[i]);
  json_end_array(writer);
  write_string_field(writer, "network_name", sandbox->network_name);
  write_string_field(writer, "network_config", sandbox->network_config);
  write_string_field(writer, "network_result", sandbox->network_result);
  write_string_field(writer, "cgroup_parent", sandbox->cgroup_parent);
  write_string_field(writer, "cgroups_path", sandbox->cgroups_path);
  write_bool_field(writer, "namespaces_pinned", sandbox->namespaces_pinned);
  write_bool_field(writer, "shm_mounted", sandbox->shm_mounted);
  write_bool_field(writer, "network_attached", sandbox->network_attached);
  write_bool_field(writer, "pause_created", sandbox->pause_created);
  write_bool_field(writer, "pause_started", sandbox->pause_started);
  json_end_object(writer);
  return json_writer_finish(writer, len);
}

int
sandbox_save(const struct pod_manager *manager, const struct sandbox *sandbox, struct error *err)
{
  cleanup_free char *dir = sandbox_dir(manager, sandbox->id);
  cleanup_free char *request_path = xasprintf("%s/request.pb", dir);
  cleanup_free char *state_path = xasprintf("%s/state.json", dir);
  cleanup_free char *text = NULL;
  size_t len;
  struct stat st;

  if (mkdir_p(dir, 0700, err) < 0)
    return error_wrap(err, "save sandbox %s", sandbox->id);
  /* The request never changes: written once. */
  if (stat(request_path, &st) < 0
      && atomic_write_file(request_path, sandbox->request_bytes, sandbox->request_len, 0600, err)
             < 0)
    return error_wrap(err, "save sandbox %s", sandbox->id);
  text = state_to_json(sandbox, &len);
  if (atomic_write_file(state_path, text, len, 0600, err) < 0)
    return error_wrap(err, "save sandbox %s", sandbox->id);
  return 0;
}

static char *
dup_field(const struct json_value *state, const char *key)
{
  const char *value = json_object_get_string(state, key);
  return value ? xstrdup(value) : NULL;
}

static void
apply_state(struct sandbox *sandbox, const struct json_value *state)
{
  const struct json_value *ips = json_object_get(state, "ips");
  const char *text = json_object_get_string(state, "state");
  int64_t number;

  sandbox->state = text && strcmp(text, "ready") == 0 ? SANDBOX_READY : SANDBOX_NOTREADY;
  if (json_integer(json_object_get(state, "created_at"), &number))
    sandbox->created_at = number;
  if (json_integer(json_object_get(state, "pause_pid"), &number))
    sandbox->pause_pid = (pid_t)number;
  sandbox->handler = dup_field(state, "handler");
  sandbox->ips = xcalloc(json_array_size(ips) + 1, sizeof(char *));
  for (size_t i = 0, n = 0; i < json_array_size(ips); i++)
    if (json_string(json_array_at(ips, i)))
      sandbox->ips[n++] = xstrdup(json_string(json_array_at(ips, i)));
  sandbox->network_name = dup_field(state, "network_name");
  sandbox->network_config = dup_field(state, "network_config");
  sandbox->network_result = dup_field(state, "network_result");
  sandbox->cgroup_parent = dup_field(state, "cgroup_parent");
  sandbox->cgroups_path = dup_field(state, "cgroups_path");
  sandbox->namespaces_pinned = json_bool(json_object_get(state, "namespaces_pinned"));
  sandbox->shm_mounted = json_bool(json_object_get(state, "shm_mounted"));
  sandbox->network_attached = json_bool(json_object_get(state, "network_attached"));
  sandbox->pause_created = json_bool(json_object_get(state, "pause_created"));
  sandbox->pause_started = json_bool(json_object_get(state, "pause_started"));
}

struct sandbox *
sandbox_load(const struct pod_manager *manager, const char *id, struct error *err)
{
  cleanup_free char *dir = sandbox_dir(manager, id);
  cleanup_free char *request_path = xasprintf("%s/request.pb", dir);
  cleanup_free char *state_path = xasprintf("%s/state.json", dir);
  cleanup_free char *text = NULL;
  cleanup_json struct json_value *state = NULL;
  struct sandbox *sandbox = sandbox_new();
  char *bytes = NULL;
  size_t len;

  snprintf(sandbox->id, sizeof sandbox->id, "%s", id);
  if (read_file(request_path, SANDBOX_FILE_MAX, &bytes, &len, err) < 0)
    goto fail;
  sandbox->request_bytes = (uint8_t *)bytes;
  sandbox->request_len = len;
  sandbox->request
      = runtime__v1__run_pod_sandbox_request__unpack(NULL, len, sandbox->request_bytes);
  if (sandbox->request == NULL || sandbox->request->config == NULL)
    {
      error_set(err, EINVAL, "%s does not decode", request_path);
      goto fail;
    }
  sandbox->config = sandbox->request->config;
  if (read_file(state_path, SANDBOX_FILE_MAX, &text, &len, err) < 0)
    goto fail;
  state = json_parse(text, len, err);
  if (state == NULL)
    goto fail;
  apply_state(sandbox, state);
  return sandbox;

fail:
  sandbox_unref(sandbox);
  error_wrap(err, "load sandbox %s", id);
  return NULL;
}
