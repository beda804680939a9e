/* A sandbox on disk: <root>/sandboxes/<id>/request.pb (the request bytes as
 * received) and state.json (what crid made of it), both written atomically.
 * state.json carries a version so a later crid can read an older file. */
#include "pod/layout.h"
#include "pod/events.h"
#include "pod/pod_manager.h"
#include "pod/sandbox.h"
#include "pod/state_file.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define SANDBOX_STATE_VERSION 1

struct sandbox *
sandbox_new(void)
{
  struct sandbox *sandbox = xcalloc(1, sizeof *sandbox);
  atomic_init(&sandbox->references, 1);
  pthread_rwlock_init(&sandbox->op_lock, NULL);
  pthread_mutex_init(&sandbox->lock, NULL);
  sandbox->state = SANDBOX_NOTREADY;
  /* Out of the API until RunPodSandbox records it READY. */
  sandbox->creating = true;
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
  pthread_rwlock_destroy(&sandbox->op_lock);
  free(sandbox);
}

int
sandbox_change_state(struct pod_manager *manager, struct sandbox *sandbox, enum sandbox_state state,
                     struct error *err)
{
  bool was_ready = !sandbox->creating && sandbox->state == SANDBOX_READY;
  bool created = sandbox->creating && state == SANDBOX_READY;
  int ret;

  if (sandbox->removed)
    return 0;
  sandbox->state = state;
  if (created)
    sandbox->creating = false;
  ret = sandbox_save(manager, sandbox, err);
  if (created && ret < 0)
    {
      /* Not recorded: RunPodSandbox fails and undoes it, unseen. */
      sandbox->creating = true;
      sandbox->state = SANDBOX_NOTREADY;
    }
  else if (created)
    {
      pod_events_publish(manager->events, POD_EVENT_CREATED, sandbox->id, sandbox->id, true);
      pod_events_publish(manager->events, POD_EVENT_STARTED, sandbox->id, sandbox->id, true);
    }
  else if (was_ready && state == SANDBOX_NOTREADY)
    pod_events_publish(manager->events, POD_EVENT_STOPPED, sandbox->id, sandbox->id, true);
  return ret;
}

void
sandbox_change_removed(struct pod_manager *manager, struct sandbox *sandbox)
{
  if (sandbox->removed)
    return;
  sandbox->removed = true;
  pod_events_publish(manager->events, POD_EVENT_DELETED, sandbox->id, sandbox->id, true);
}

int
sandbox_snapshot_take(struct pod_manager *manager, struct sandbox *sandbox,
                      struct sandbox_snapshot *out, struct error *err)
{
  int ret = 0;

  memset(out, 0, sizeof *out);
  sandbox_refresh(manager, sandbox);
  pthread_mutex_lock(&sandbox->lock);
  if (sandbox->removed || sandbox->creating)
    ret = error_set(err, ENOENT, "pod sandbox %s not found", sandbox->id);
  else
    {
      sandbox_ref(sandbox);
      out->sandbox = sandbox;
      out->state = sandbox->state;
    }
  pthread_mutex_unlock(&sandbox->lock);
  return ret;
}

void
sandbox_snapshot_clear(struct sandbox_snapshot *snapshot)
{
  sandbox_unref(snapshot->sandbox);
  memset(snapshot, 0, sizeof *snapshot);
}

static char *
state_to_json(const struct sandbox *sandbox, size_t *len)
{
  struct json_writer *writer = json_writer_new(true);

  json_begin_object(writer);
  state_write_int(writer, "version", SANDBOX_STATE_VERSION);
  state_write_string(writer, "id", sandbox->id);
  state_write_string(writer, "state", sandbox->state == SANDBOX_READY ? "ready" : "notready");
  state_write_int(writer, "created_at", sandbox->created_at);
  state_write_string(writer, "handler", sandbox->handler);
  state_write_int(writer, "pause_pid", sandbox->pause_pid);
  json_write_key(writer, "ips");
  json_begin_array(writer);
  for (size_t i = 0; sandbox->ips && sandbox->ips[i]; i++)
    json_write_string(writer, sandbox->ips[i]);
  json_end_array(writer);
  state_write_string(writer, "network_name", sandbox->network_name);
  state_write_string(writer, "network_config", sandbox->network_config);
  state_write_string(writer, "network_result", sandbox->network_result);
  state_write_string(writer, "cgroup_parent", sandbox->cgroup_parent);
  state_write_string(writer, "cgroups_path", sandbox->cgroups_path);
  state_write_bool(writer, "creating", sandbox->creating);
  state_write_bool(writer, "namespaces_pinned", sandbox->namespaces_pinned);
  state_write_bool(writer, "shm_mounted", sandbox->shm_mounted);
  state_write_bool(writer, "network_attached", sandbox->network_attached);
  state_write_bool(writer, "pause_created", sandbox->pause_created);
  state_write_bool(writer, "pause_started", sandbox->pause_started);
  json_end_object(writer);
  return json_writer_finish(writer, len);
}

/* RunPodSandbox's network and pause steps run in two threads, and each
 * records its intent: one save at a time. */
static pthread_mutex_t save_lock = PTHREAD_MUTEX_INITIALIZER;

static int
save(const struct pod_manager *manager, const struct sandbox *sandbox, bool durable,
     struct error *err)
{
  cleanup_free char *dir = layout_sandbox_dir(manager, sandbox->id);
  size_t len;
  cleanup_free char *text = NULL;
  int ret;

  pthread_mutex_lock(&save_lock);
  text = state_to_json(sandbox, &len);
  ret = state_file_save(dir, sandbox->request_bytes, sandbox->request_len, text, len, durable, err);
  pthread_mutex_unlock(&save_lock);
  if (ret < 0)
    return error_wrap(err, "save sandbox %s", sandbox->id);
  return 0;
}

int
sandbox_save(const struct pod_manager *manager, const struct sandbox *sandbox, struct error *err)
{
  return save(manager, sandbox, true, err);
}

int
sandbox_save_intent(const struct pod_manager *manager, const struct sandbox *sandbox,
                    struct error *err)
{
  return save(manager, sandbox, false, err);
}

static void
apply_state(struct sandbox *sandbox, const struct json_value *state)
{
  const struct json_value *ips = json_object_get(state, "ips");
  const char *text = json_object_get_string(state, "state");

  sandbox->state = text && strcmp(text, "ready") == 0 ? SANDBOX_READY : SANDBOX_NOTREADY;
  sandbox->created_at = state_read_int(state, "created_at");
  sandbox->pause_pid = (pid_t)state_read_int(state, "pause_pid");
  sandbox->handler = state_read_string(state, "handler");
  sandbox->ips = xcalloc(json_array_size(ips) + 1, sizeof(char *));
  for (size_t i = 0, n = 0; i < json_array_size(ips); i++)
    if (json_string(json_array_at(ips, i)))
      sandbox->ips[n++] = xstrdup(json_string(json_array_at(ips, i)));
  sandbox->network_name = state_read_string(state, "network_name");
  sandbox->network_config = state_read_string(state, "network_config");
  sandbox->network_result = state_read_string(state, "network_result");
  sandbox->cgroup_parent = state_read_string(state, "cgroup_parent");
  sandbox->cgroups_path = state_read_string(state, "cgroups_path");
  sandbox->creating = state_read_bool(state, "creating");
  sandbox->namespaces_pinned = state_read_bool(state, "namespaces_pinned");
  sandbox->shm_mounted = state_read_bool(state, "shm_mounted");
  sandbox->network_attached = state_read_bool(state, "network_attached");
  sandbox->pause_created = state_read_bool(state, "pause_created");
  sandbox->pause_started = state_read_bool(state, "pause_started");
}

struct sandbox *
sandbox_load(const struct pod_manager *manager, const char *id, struct error *err)
{
  cleanup_free char *dir = layout_sandbox_dir(manager, id);
  cleanup_json struct json_value *state = NULL;
  struct sandbox *sandbox = sandbox_new();

  snprintf(sandbox->id, sizeof sandbox->id, "%s", id);
  if (state_file_read_request(dir, &sandbox->request_bytes, &sandbox->request_len, err) < 0)
    goto fail;
  sandbox->request = runtime__v1__run_pod_sandbox_request__unpack(NULL, sandbox->request_len,
                                                                  sandbox->request_bytes);
  if (sandbox->request == NULL || sandbox->request->config == NULL)
    {
      error_set(err, EINVAL, "%s/request.pb does not decode", dir);
      goto fail;
    }
  sandbox->config = sandbox->request->config;
  state = state_file_read_state(dir, err);
  if (state == NULL)
    goto fail;
  apply_state(sandbox, state);
  return sandbox;

fail:
  sandbox_unref(sandbox);
  error_wrap(err, "load sandbox %s", id);
  return NULL;
}
