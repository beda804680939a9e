/* A container on disk: <root>/containers/<id>/request.pb (the
 * CreateContainerRequest as received) and state.json (what crid made of
 * it), both written atomically.  state.json is versioned like the
 * sandbox's. */
#include "pod/container.h"
#include "pod/pod_manager.h"
#include "pod/state_file.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONTAINER_STATE_VERSION 1

static const char *const state_names[] = { "created", "running", "exited", "unknown" };

struct container *
container_new(void)
{
  struct container *container = xcalloc(1, sizeof *container);
  atomic_init(&container->references, 1);
  pthread_mutex_init(&container->op_lock, NULL);
  pthread_mutex_init(&container->lock, NULL);
  container->state = CONTAINER_CREATED;
  return container;
}

void
container_ref(struct container *container)
{
  atomic_fetch_add(&container->references, 1);
}

void
container_unref(struct container *container)
{
  if (container == NULL || atomic_fetch_sub(&container->references, 1) != 1)
    return;
  if (container->request)
    runtime__v1__create_container_request__free_unpacked(container->request, NULL);
  free(container->request_bytes);
  free(container->handler);
  free(container->reservation);
  free(container->image_name);
  free(container->image_id);
  free(container->log_path);
  free(container->cgroups_path);
  free(container->message);
  if (container->resources)
    runtime__v1__linux_container_resources__free_unpacked(container->resources, NULL);
  pthread_mutex_destroy(&container->op_lock);
  pthread_mutex_destroy(&container->lock);
  free(container);
}

char *
container_reservation_key(const char *sandbox_id, const Runtime__V1__ContainerConfig *config)
{
  return xasprintf("%s_%s_%u", sandbox_id, config->metadata->name, config->metadata->attempt);
}

/* The resources an update put in force, by their CRI field names. */
static void
write_resources(struct json_writer *writer, const Runtime__V1__LinuxContainerResources *r)
{
  json_write_key(writer, "resources");
  if (r == NULL)
    {
      json_write_null(writer);
      return;
    }
  json_begin_object(writer);
  state_write_int(writer, "cpu_period", r->cpu_period);
  state_write_int(writer, "cpu_quota", r->cpu_quota);
  state_write_int(writer, "cpu_shares", r->cpu_shares);
  state_write_int(writer, "memory_limit_in_bytes", r->memory_limit_in_bytes);
  state_write_int(writer, "memory_swap_limit_in_bytes", r->memory_swap_limit_in_bytes);
  state_write_int(writer, "oom_score_adj", r->oom_score_adj);
  state_write_string(writer, "cpuset_cpus", r->cpuset_cpus);
  state_write_string(writer, "cpuset_mems", r->cpuset_mems);
  json_write_key(writer, "hugepage_limits");
  json_begin_array(writer);
  for (size_t i = 0; i < r->n_hugepage_limits; i++)
    {
      json_begin_object(writer);
      state_write_string(writer, "page_size", r->hugepage_limits[i]->page_size);
      /* uint64 in the message; limits beyond int64 mean nothing to a cgroup. */
      state_write_int(writer, "limit", (int64_t)r->hugepage_limits[i]->limit);
      json_end_object(writer);
    }
  json_end_array(writer);
  json_write_key(writer, "unified");
  json_begin_object(writer);
  for (size_t i = 0; i < r->n_unified; i++)
    {
      json_write_key(writer, r->unified[i]->key);
      json_write_string(writer, r->unified[i]->value ? r->unified[i]->value : "");
    }
  json_end_object(writer);
  json_end_object(writer);
}

static char *
state_to_json(const struct container *c, size_t *len)
{
  struct json_writer *writer = json_writer_new(true);

  json_begin_object(writer);
  state_write_int(writer, "version", CONTAINER_STATE_VERSION);
  state_write_string(writer, "id", c->id);
  state_write_string(writer, "sandbox_id", c->sandbox_id);
  state_write_string(writer, "state", state_names[c->state]);
  state_write_string(writer, "handler", c->handler);
  state_write_string(writer, "image_name", c->image_name);
  state_write_string(writer, "image_id", c->image_id);
  state_write_string(writer, "log_path", c->log_path);
  state_write_string(writer, "cgroups_path", c->cgroups_path);
  state_write_string(writer, "message", c->message);
  state_write_int(writer, "stop_signal", c->stop_signal);
  state_write_int(writer, "created_at", c->created_at);
  state_write_int(writer, "started_at", c->started_at);
  state_write_int(writer, "finished_at", c->finished_at);
  state_write_int(writer, "exit_code", c->exit_code);
  state_write_int(writer, "pid", c->pid);
  state_write_bool(writer, "oom_killed", c->oom_killed);
  state_write_bool(writer, "creating", c->creating);
  state_write_bool(writer, "rootfs_mounted", c->rootfs_mounted);
  state_write_bool(writer, "runtime_created", c->runtime_created);
  write_resources(writer, c->resources);
  json_end_object(writer);
  return json_writer_finish(writer, len);
}

static int
save(const struct pod_manager *manager, const struct container *container, bool durable,
     struct error *err)
{
  cleanup_free char *dir = container_dir(manager, container->id);
  size_t len;
  cleanup_free char *text = state_to_json(container, &len);

  if (state_file_save(dir, container->request_bytes, container->request_len, text, len, durable,
                      err)
      < 0)
    return error_wrap(err, "save container %s", container->id);
  return 0;
}

int
container_save(const struct pod_manager *manager, const struct container *container,
               struct error *err)
{
  return save(manager, container, true, err);
}

int
container_save_intent(const struct pod_manager *manager, const struct container *container,
                      struct error *err)
{
  return save(manager, container, false, err);
}

/* The message back from write_resources' object; NULL for null (no
 * update yet) or anything that is not an object. */
static Runtime__V1__LinuxContainerResources *
read_resources(const struct json_value *value)
{
  Runtime__V1__LinuxContainerResources r = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
  const struct json_value *hugepages = json_object_get(value, "hugepage_limits");
  const struct json_value *unified = json_object_get(value, "unified");
  size_t n_hugepages = json_array_size(hugepages);
  size_t n_unified = json_object_size(unified);
  cleanup_free Runtime__V1__HugepageLimit *hugepage_items
      = xcalloc(n_hugepages + 1, sizeof *hugepage_items);
  cleanup_free Runtime__V1__HugepageLimit **hugepage_list
      = xcalloc(n_hugepages + 1, sizeof *hugepage_list);
  cleanup_free Runtime__V1__LinuxContainerResources__UnifiedEntry *unified_items
      = xcalloc(n_unified + 1, sizeof *unified_items);
  cleanup_free Runtime__V1__LinuxContainerResources__UnifiedEntry **unified_list
      = xcalloc(n_unified + 1, sizeof *unified_list);
  const char *text;

  if (!json_is_object(value))
    return NULL;
  r.cpu_period = state_read_int(value, "cpu_period");
  r.cpu_quota = state_read_int(value, "cpu_quota");
  r.cpu_shares = state_read_int(value, "cpu_shares");
  r.memory_limit_in_bytes = state_read_int(value, "memory_limit_in_bytes");
  r.memory_swap_limit_in_bytes = state_read_int(value, "memory_swap_limit_in_bytes");
  r.oom_score_adj = state_read_int(value, "oom_score_adj");
  if ((text = json_object_get_string(value, "cpuset_cpus")))
    r.cpuset_cpus = (char *)text;
  if ((text = json_object_get_string(value, "cpuset_mems")))
    r.cpuset_mems = (char *)text;
  for (size_t i = 0; i < n_hugepages; i++)
    {
      const struct json_value *item = json_array_at(hugepages, i);
      text = json_object_get_string(item, "page_size");
      if (text == NULL)
        continue;
      runtime__v1__hugepage_limit__init(&hugepage_items[r.n_hugepage_limits]);
      hugepage_items[r.n_hugepage_limits].page_size = (char *)text;
      hugepage_items[r.n_hugepage_limits].limit = (uint64_t)state_read_int(item, "limit");
      hugepage_list[r.n_hugepage_limits] = &hugepage_items[r.n_hugepage_limits];
      r.n_hugepage_limits++;
    }
  r.hugepage_limits = hugepage_list;
  for (size_t i = 0; i < n_unified; i++)
    {
      text = json_string(json_object_value_at(unified, i));
      if (text == NULL)
        continue;
      runtime__v1__linux_container_resources__unified_entry__init(&unified_items[r.n_unified]);
      unified_items[r.n_unified].key = (char *)json_object_key_at(unified, i);
      unified_items[r.n_unified].value = (char *)text;
      unified_list[r.n_unified] = &unified_items[r.n_unified];
      r.n_unified++;
    }
  r.unified = unified_list;
  /* Merging over nothing copies r into memory of its own. */
  return container_resources_merge(&r, NULL);
}

static void
apply_state(struct container *c, const struct json_value *state)
{
  const char *text = json_object_get_string(state, "state");

  c->state = CONTAINER_UNKNOWN;
  for (size_t i = 0; text && i < sizeof state_names / sizeof state_names[0]; i++)
    if (strcmp(text, state_names[i]) == 0)
      c->state = (enum container_state)i;
  text = json_object_get_string(state, "sandbox_id");
  snprintf(c->sandbox_id, sizeof c->sandbox_id, "%s", text ? text : "");
  c->handler = state_read_string(state, "handler");
  c->image_name = state_read_string(state, "image_name");
  c->image_id = state_read_string(state, "image_id");
  c->log_path = state_read_string(state, "log_path");
  c->cgroups_path = state_read_string(state, "cgroups_path");
  c->message = state_read_string(state, "message");
  c->stop_signal = (int)state_read_int(state, "stop_signal");
  c->created_at = state_read_int(state, "created_at");
  c->started_at = state_read_int(state, "started_at");
  c->finished_at = state_read_int(state, "finished_at");
  c->exit_code = (int)state_read_int(state, "exit_code");
  c->pid = (pid_t)state_read_int(state, "pid");
  c->oom_killed = state_read_bool(state, "oom_killed");
  c->creating = state_read_bool(state, "creating");
  c->rootfs_mounted = state_read_bool(state, "rootfs_mounted");
  c->runtime_created = state_read_bool(state, "runtime_created");
  c->resources = read_resources(json_object_get(state, "resources"));
}

struct container *
container_load(const struct pod_manager *manager, const char *id, struct error *err)
{
  cleanup_free char *dir = container_dir(manager, id);
  cleanup_json struct json_value *state = NULL;
  struct container *container = container_new();

  snprintf(container->id, sizeof container->id, "%s", id);
  if (state_file_read_request(dir, &container->request_bytes, &container->request_len, err) < 0)
    goto fail;
  container->request = runtime__v1__create_container_request__unpack(NULL, container->request_len,
                                                                     container->request_bytes);
  if (container->request == NULL || container->request->config == NULL
      || container->request->config->metadata == NULL)
    {
      error_set(err, EINVAL, "%s/request.pb does not decode", dir);
      goto fail;
    }
  container->config = container->request->config;
  state = state_file_read_state(dir, err);
  if (state == NULL)
    goto fail;
  apply_state(container, state);
  container->reservation = container_reservation_key(container->sandbox_id, container->config);
  return container;

fail:
  container_unref(container);
  error_wrap(err, "load container %s", id);
  return NULL;
}
