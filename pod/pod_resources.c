/* A pod's pod-level resources: recorded, kept, reported; see
 * pod_resources.h for why they never reach a cgroup. */
#include "pod/layout.h"
#include "pod/pod_resources.h"
#include "pod/pod_manager.h"
#include "pod/sandbox.h"
#include "common/atomic_file.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

/* A record holds two small messages; this only bounds what a damaged
 * file can make crid read. */
#define POD_RESOURCES_MAX_SIZE (1024 * 1024)

static void
free_values_function(Runtime__V1__UpdatePodSandboxResourcesRequest **values)
{
  pod_resources_free(*values);
}
#define cleanup_values __attribute__((cleanup(free_values_function)))

void
pod_resources_free(Runtime__V1__UpdatePodSandboxResourcesRequest *values)
{
  if (values)
    runtime__v1__update_pod_sandbox_resources_request__free_unpacked(values, NULL);
}

/* The record of id holding overhead and resources (borrowed, only read),
 * packed into a new buffer of *len bytes. */
static uint8_t *
record_pack(const char *id, const Runtime__V1__LinuxContainerResources *overhead,
            const Runtime__V1__LinuxContainerResources *resources, size_t *len)
{
  Runtime__V1__UpdatePodSandboxResourcesRequest record
      = RUNTIME__V1__UPDATE_POD_SANDBOX_RESOURCES_REQUEST__INIT;
  uint8_t *bytes;

  /* protobuf-c's message fields are not const; packing only reads them. */
  record.pod_sandbox_id = (char *)(id ? id : "");
  record.overhead = (Runtime__V1__LinuxContainerResources *)overhead;
  record.resources = (Runtime__V1__LinuxContainerResources *)resources;
  *len = protobuf_c_message_get_packed_size(&record.base);
  bytes = xmalloc(*len + 1);
  protobuf_c_message_pack(&record.base, bytes);
  return bytes;
}

static int
record_unpack(const uint8_t *bytes, size_t len, const char *what,
              Runtime__V1__UpdatePodSandboxResourcesRequest **out, struct error *err)
{
  *out = runtime__v1__update_pod_sandbox_resources_request__unpack(NULL, len, bytes);
  if (*out == NULL)
    return error_set(err, EINVAL, "%s does not decode", what);
  return 0;
}

/* The values RunPodSandbox was given, as a record of their own: packing
 * and unpacking copies them out of the request they belong to. */
static int
values_from_config(const Runtime__V1__PodSandboxConfig *config,
                   Runtime__V1__UpdatePodSandboxResourcesRequest **out, struct error *err)
{
  const Runtime__V1__LinuxPodSandboxConfig *linux_config = config ? config->linux : NULL;
  size_t len;
  cleanup_free uint8_t *bytes = record_pack(NULL, linux_config ? linux_config->overhead : NULL,
                                            linux_config ? linux_config->resources : NULL, &len);

  return record_unpack(bytes, len, "the RunPodSandbox resources", out, err);
}

int
pod_resources_load(const char *dir, const Runtime__V1__PodSandboxConfig *config,
                   Runtime__V1__UpdatePodSandboxResourcesRequest **out, struct error *err)
{
  cleanup_free char *path = xasprintf("%s/" POD_RESOURCES_FILE, dir);
  cleanup_free char *bytes = NULL;
  size_t len = 0;

  if (read_file(path, POD_RESOURCES_MAX_SIZE, &bytes, &len, err) == 0)
    return record_unpack((const uint8_t *)bytes, len, path, out, err);
  if (err->code != ENOENT)
    return error_wrap(err, "pod resources");
  /* No update yet: RunPodSandbox's values are in force. */
  error_clear(err);
  return values_from_config(config, out, err);
}

int
pod_resources_update(const char *dir, const char *id, const Runtime__V1__PodSandboxConfig *config,
                     const Runtime__V1__UpdatePodSandboxResourcesRequest *update, struct error *err)
{
  cleanup_values Runtime__V1__UpdatePodSandboxResourcesRequest *current = NULL;
  cleanup_free char *path = xasprintf("%s/" POD_RESOURCES_FILE, dir);
  cleanup_free uint8_t *bytes = NULL;
  size_t len;

  if (pod_resources_load(dir, config, &current, err) < 0)
    return -1;
  bytes = record_pack(id, update->overhead ? update->overhead : current->overhead,
                      update->resources ? update->resources : current->resources, &len);
  if (atomic_write_file(path, bytes, len, 0600, err) < 0)
    return error_wrap(err, "save the pod resources");
  return 0;
}

/* Zero and empty members are left out, as Go's omitempty leaves them out
 * of containerd's JSON. */
static void
write_int_member(struct json_writer *writer, const char *key, int64_t value)
{
  if (value == 0)
    return;
  json_write_key(writer, key);
  json_write_int(writer, value);
}

static void
write_string_member(struct json_writer *writer, const char *key, const char *value)
{
  if (value == NULL || value[0] == '\0')
    return;
  json_write_key(writer, key);
  json_write_string(writer, value);
}

static void
write_hugepage_limits(struct json_writer *writer, const Runtime__V1__LinuxContainerResources *r)
{
  if (r->n_hugepage_limits == 0)
    return;
  json_write_key(writer, "hugepage_limits");
  json_begin_array(writer);
  for (size_t i = 0; i < r->n_hugepage_limits; i++)
    {
      const Runtime__V1__HugepageLimit *limit = r->hugepage_limits[i];
      json_begin_object(writer);
      write_string_member(writer, "page_size", limit->page_size);
      /* The writer has no unsigned numbers, and no byte count comes near
       * 2^63. */
      write_int_member(writer, "limit",
                       limit->limit > INT64_MAX ? INT64_MAX : (int64_t)limit->limit);
      json_end_object(writer);
    }
  json_end_array(writer);
}

static void
write_unified(struct json_writer *writer, const Runtime__V1__LinuxContainerResources *r)
{
  if (r->n_unified == 0)
    return;
  json_write_key(writer, "unified");
  json_begin_object(writer);
  for (size_t i = 0; i < r->n_unified; i++)
    {
      json_write_key(writer, r->unified[i]->key);
      json_write_string(writer, r->unified[i]->value);
    }
  json_end_object(writer);
}

/* key: {"linux": {...}}, ContainerResources' shape, fields in the proto's
 * order. */
static void
write_resources(struct json_writer *writer, const char *key,
                const Runtime__V1__LinuxContainerResources *r)
{
  if (r == NULL)
    return;
  json_write_key(writer, key);
  json_begin_object(writer);
  json_write_key(writer, "linux");
  json_begin_object(writer);
  write_int_member(writer, "cpu_period", r->cpu_period);
  write_int_member(writer, "cpu_quota", r->cpu_quota);
  write_int_member(writer, "cpu_shares", r->cpu_shares);
  write_int_member(writer, "memory_limit_in_bytes", r->memory_limit_in_bytes);
  write_int_member(writer, "oom_score_adj", r->oom_score_adj);
  write_string_member(writer, "cpuset_cpus", r->cpuset_cpus);
  write_string_member(writer, "cpuset_mems", r->cpuset_mems);
  write_hugepage_limits(writer, r);
  write_unified(writer, r);
  write_int_member(writer, "memory_swap_limit_in_bytes", r->memory_swap_limit_in_bytes);
  json_end_object(writer);
  json_end_object(writer);
}

void
pod_resources_write_json(struct json_writer *writer,
                         const Runtime__V1__UpdatePodSandboxResourcesRequest *values)
{
  write_resources(writer, "overhead", values->overhead);
  write_resources(writer, "resources", values->resources);
}

/* The update as one JSON line, for the log. */
static char *
update_text(const Runtime__V1__UpdatePodSandboxResourcesRequest *update)
{
  struct json_writer *writer = json_writer_new(false);

  json_begin_object(writer);
  pod_resources_write_json(writer, update);
  json_end_object(writer);
  return json_writer_finish(writer, NULL);
}

/* With the sandbox's op_lock held for reading: the pod is not stopped or
 * removed meanwhile. */
static int
update_locked(struct pod_manager *manager, struct sandbox *sandbox,
              const Runtime__V1__UpdatePodSandboxResourcesRequest *update, struct error *err)
{
  cleanup_free char *dir = NULL;
  struct sandbox_snapshot snapshot;
  bool ready;

  if (sandbox_snapshot_take(manager, sandbox, &snapshot, err) < 0)
    return -1;
  ready = snapshot.state == SANDBOX_READY;
  sandbox_snapshot_clear(&snapshot);
  if (!ready)
    return error_set(err, EBUSY, "pod sandbox %s is not ready", sandbox->id);
  dir = layout_sandbox_dir(manager, sandbox->id);
  if (pod_resources_update(dir, sandbox->id, sandbox->config, update, err) < 0)
    return error_wrap(err, "pod sandbox %s", sandbox->id);
  return 0;
}

int
pod_resources_update_sandbox(struct pod_manager *manager, struct sandbox *sandbox,
                             const Runtime__V1__UpdatePodSandboxResourcesRequest *update,
                             struct error *err)
{
  cleanup_free char *text = NULL;
  int ret;

  pthread_rwlock_rdlock(&sandbox->op_lock);
  ret = update_locked(manager, sandbox, update, err);
  pthread_rwlock_unlock(&sandbox->op_lock);
  if (ret < 0)
    return -1;
  text = update_text(update);
  log_info("sandbox %.12s: pod-level resources recorded: %s", sandbox->id, text);
  return 0;
}

void
pod_resources_write_info(struct json_writer *writer, const struct pod_manager *manager,
                         const struct sandbox *sandbox)
{
  cleanup_free char *dir = layout_sandbox_dir(manager, sandbox->id);
  cleanup_values Runtime__V1__UpdatePodSandboxResourcesRequest *values = NULL;
  struct error err = ERROR_INIT;

  if (pod_resources_load(dir, sandbox->config, &values, &err) < 0)
    {
      log_warn("sandbox %.12s: %s", sandbox->id, error_message(&err));
      error_clear(&err);
      return;
    }
  pod_resources_write_json(writer, values);
}
