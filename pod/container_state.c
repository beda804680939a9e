/* A container on disk: <root>/containers/<id>/request.pb (the
 * CreateContainerRequest as received) and state.json (what crid made of
 * it), both written atomically.  state.json is versioned like the
 * sandbox's: version 2 added "user"; a version 1 record gets it from
 * its bundle's config.json. */
#include "pod/layout.h"
#include "pod/container.h"
#include "pod/container_resources.h"
#include "pod/events.h"
#include "pod/pod_manager.h"
#include "pod/state_file.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/process.h"
#include "common/util.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONTAINER_STATE_VERSION 2
/* What a config.json may weigh when an old record's user is read back. */
#define BUNDLE_CONFIG_MAX (4 * 1024 * 1024)

static const char *const state_names[] = { "created", "running", "exited", "unknown" };

struct container *
container_new(void)
{
  struct container *container = xcalloc(1, sizeof *container);
  atomic_init(&container->references, 1);
  pthread_mutex_init(&container->op_lock, NULL);
  pthread_mutex_init(&container->lock, NULL);
  container->state = CONTAINER_CREATED;
  /* Out of the API until CreateContainer records it CREATED. */
  container->creating = true;
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
  container_user_clear(&container->user);
  image_volumes_clear(&container->image_volumes);
  pthread_mutex_destroy(&container->op_lock);
  pthread_mutex_destroy(&container->lock);
  free(container);
}

void
container_user_set(struct container_user *user, uint32_t uid, uint32_t gid, const uint32_t *groups,
                   size_t n)
{
  container_user_clear(user);
  user->known = true;
  user->uid = uid;
  user->gid = gid;
  user->groups = xmalloc((n ? n : 1) * sizeof *user->groups);
  if (n)
    memcpy(user->groups, groups, n * sizeof *groups);
  user->n_groups = n;
}

void
container_user_clear(struct container_user *user)
{
  free(user->groups);
  memset(user, 0, sizeof *user);
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

/* The process identity by its CRI field names (LinuxContainerUser);
 * null until CreateContainer resolved it. */
static void
write_user(struct json_writer *writer, const struct container_user *user)
{
  json_write_key(writer, "user");
  if (!user->known)
    {
      json_write_null(writer);
      return;
    }
  json_begin_object(writer);
  state_write_int(writer, "uid", user->uid);
  state_write_int(writer, "gid", user->gid);
  json_write_key(writer, "supplemental_groups");
  json_begin_array(writer);
  for (size_t i = 0; i < user->n_groups; i++)
    json_write_int(writer, user->groups[i]);
  json_end_array(writer);
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
  write_user(writer, &c->user);
  image_volumes_write_json(writer, "image_volumes", &c->image_volumes);
  json_end_object(writer);
  return json_writer_finish(writer, len);
}

static int
save(const struct pod_manager *manager, const struct container *container, bool durable,
     struct error *err)
{
  cleanup_free char *dir = layout_container_dir(manager, container->id);
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

/* ---- State changes and snapshots ------------------------------------ */

static enum pod_event_kind
event_of(enum container_state state)
{
  switch (state)
    {
    case CONTAINER_RUNNING:
      return POD_EVENT_STARTED;
    case CONTAINER_EXITED:
      return POD_EVENT_STOPPED;
    default:
      return POD_EVENT_CREATED;
    }
}

/* CREATED ends a create; the others only move forward. */
static bool
is_step(const struct container *container, enum container_state to)
{
  if (to == CONTAINER_CREATED)
    return container->creating;
  return !container->creating && to > container->state && to != CONTAINER_UNKNOWN;
}

static void
assign(struct container *container, const struct container_change *change)
{
  switch (change->state)
    {
    case CONTAINER_CREATED:
      container->creating = false;
      break;
    case CONTAINER_RUNNING:
      container->started_at = change->at;
      if (change->pid > 0)
        container->pid = change->pid;
      break;
    case CONTAINER_EXITED:
      /* An exit-file mtime comes from the kernel's coarse clock, a tick
       * behind the start's clock: a finish is never before the start. */
      container->finished_at
          = change->at < container->started_at ? container->started_at : change->at;
      container->exit_code = change->exit_code;
      container->oom_killed = change->oom_killed;
      free(container->message);
      container->message = change->message ? xstrdup(change->message) : NULL;
      break;
    default:
      break;
    }
  container->state = change->state;
}

int
container_change_state(struct pod_manager *manager, struct container *container,
                       const struct container_change *change, struct error *err)
{
  int ret;

  if (container->removed || !is_step(container, change->state))
    return 0;
  assign(container, change);
  ret = container_save(manager, container, err);
  if (ret < 0 && change->state == CONTAINER_CREATED)
    {
      /* Not recorded: CreateContainer fails and undoes it, unseen. */
      container->creating = true;
      return ret;
    }
  pod_events_publish(manager->events, event_of(change->state), container->id, container->sandbox_id,
                     false);
  return ret;
}

void
container_change_removed(struct pod_manager *manager, struct container *container)
{
  if (container->removed)
    return;
  container->removed = true;
  pod_events_publish(manager->events, POD_EVENT_DELETED, container->id, container->sandbox_id,
                     false);
}

int
container_snapshot_take(struct pod_manager *manager, struct container *container,
                        struct container_snapshot *out, struct error *err)
{
  bool settled;
  int ret = 0;

  memset(out, 0, sizeof *out);
  /* The exit watcher marks exits as they happen: a running container
   * whose process is there (a zombie too, not yet reaped: no exit file
   * yet) is not looked up again.  One kill(pid, 0), not the exit file,
   * keeps a list call over a hundred containers cheap. */
  pthread_mutex_lock(&container->lock);
  settled = container->state == CONTAINER_EXITED
            || (container->state == CONTAINER_RUNNING && process_alive(container->pid));
  pthread_mutex_unlock(&container->lock);
  if (!settled)
    container_refresh(manager, container);
  pthread_mutex_lock(&container->lock);
  if (container->removed || container->creating)
    ret = error_set(err, ENOENT, "container %s not found", container->id);
  else
    {
      container_ref(container);
      out->container = container;
      out->state = container->state;
      out->created_at = container->created_at;
      out->started_at = container->started_at;
      out->finished_at = container->finished_at;
      out->exit_code = container->exit_code;
      out->oom_killed = container->oom_killed;
      out->message = container->message ? xstrdup(container->message) : NULL;
      out->pid = container->pid;
      if (container->resources)
        out->updated_resources = container_resources_merge(container->resources, NULL);
    }
  pthread_mutex_unlock(&container->lock);
  return ret;
}

void
container_snapshot_clear(struct container_snapshot *snapshot)
{
  free(snapshot->message);
  if (snapshot->updated_resources)
    runtime__v1__linux_container_resources__free_unpacked(snapshot->updated_resources, NULL);
  container_unref(snapshot->container);
  memset(snapshot, 0, sizeof *snapshot);
}

const Runtime__V1__LinuxContainerResources *
container_snapshot_resources(const struct container_snapshot *snapshot)
{
  const Runtime__V1__ContainerConfig *config = snapshot->container->config;

  if (snapshot->updated_resources)
    return snapshot->updated_resources;
  return config && config->linux ? config->linux->resources : NULL;
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

/* A uid or gid as the kernel takes it; false for anything else. */
static bool
read_id(const struct json_value *value, uint32_t *out)
{
  int64_t n;

  if (!json_integer(value, &n) || n < 0 || n >= (int64_t)UINT32_MAX)
    return false;
  *out = (uint32_t)n;
  return true;
}

/* {uid, gid, <groups_key>: [...]} into *user; left unknown when value is
 * not such an object (null, damaged): then status shows no user rather
 * than a wrong one. */
static void
read_user(const struct json_value *value, const char *groups_key, struct container_user *user)
{
  const struct json_value *groups = json_object_get(value, groups_key);
  size_t n = json_array_size(groups);
  cleanup_free uint32_t *gids = xcalloc(n + 1, sizeof *gids);
  uint32_t uid, gid;

  if (!json_is_object(value) || !read_id(json_object_get(value, "uid"), &uid)
      || !read_id(json_object_get(value, "gid"), &gid))
    return;
  for (size_t i = 0; i < n; i++)
    if (!read_id(json_array_at(groups, i), &gids[i]))
      return;
  container_user_set(user, uid, gid, gids, n);
}

/* A record of version 1 predates "user": what its container runs as is
 * in its bundle, process.user of config.json (absent when CreateContainer
 * did not get that far). */
static void
read_user_from_bundle(const char *dir, struct container_user *user)
{
  cleanup_free char *path = xasprintf("%s/config.json", dir);
  cleanup_free char *text = NULL;
  cleanup_json struct json_value *spec = NULL;
  struct error err = ERROR_INIT;
  size_t len;

  if (read_file(path, BUNDLE_CONFIG_MAX, &text, &len, &err) == 0)
    spec = json_parse(text, len, &err);
  error_clear(&err);
  if (spec)
    read_user(json_object_get(json_object_get(spec, "process"), "user"), "additionalGids", user);
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
  read_user(json_object_get(state, "user"), "supplemental_groups", &c->user);
  image_volumes_read_json(json_object_get(state, "image_volumes"), &c->image_volumes);
}

struct container *
container_load(const struct pod_manager *manager, const char *id, struct error *err)
{
  cleanup_free char *dir = layout_container_dir(manager, id);
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
  if (state_read_int(state, "version") < 2)
    read_user_from_bundle(dir, &container->user);
  container->reservation = container_reservation_key(container->sandbox_id, container->config);
  return container;

fail:
  container_unref(container);
  error_wrap(err, "load container %s", id);
  return NULL;
}

const char *
container_state_name(enum container_state state)
{
  switch (state)
    {
    case CONTAINER_CREATED:
      return "created";
    case CONTAINER_RUNNING:
      return "running";
    case CONTAINER_EXITED:
      return "exited";
    default:
      return "unknown";
    }
}
