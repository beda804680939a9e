/* The resources of a container: merging an update into what is in force,
 * and the JSON `<runtime> update --resources` reads; see
 * container_resources.h. */
#include "pod/container_resources.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

static void
write_uint_field(struct json_writer *w, const char *key, int64_t value)
{
  if (value == 0)
    return;
  json_write_key(w, key);
  json_write_int(w, value);
}

char *
container_resources_json(const Runtime__V1__LinuxContainerResources *r)
{
  struct json_writer *w = json_writer_new(false);

  json_begin_object(w);
  json_write_key(w, "cpu");
  json_begin_object(w);
  write_uint_field(w, "shares", r->cpu_shares);
  write_uint_field(w, "quota", r->cpu_quota);
  write_uint_field(w, "period", r->cpu_period);
  if (r->cpuset_cpus[0])
    {
      json_write_key(w, "cpus");
      json_write_string(w, r->cpuset_cpus);
    }
  if (r->cpuset_mems[0])
    {
      json_write_key(w, "mems");
      json_write_string(w, r->cpuset_mems);
    }
  json_end_object(w);
  json_write_key(w, "memory");
  json_begin_object(w);
  write_uint_field(w, "limit", r->memory_limit_in_bytes);
  write_uint_field(w, "swap", r->memory_swap_limit_in_bytes);
  json_end_object(w);
  if (r->n_unified)
    {
      json_write_key(w, "unified");
      json_begin_object(w);
      for (size_t i = 0; i < r->n_unified; i++)
        {
          json_write_key(w, r->unified[i]->key);
          json_write_string(w, r->unified[i]->value);
        }
      json_end_object(w);
    }
  json_end_object(w);
  return json_writer_finish(w, NULL);
}

/* An owned deep copy: packed and unpacked again, so that every part of
 * it belongs to protobuf-c's free_unpacked. */
static Runtime__V1__LinuxContainerResources *
resources_copy(const Runtime__V1__LinuxContainerResources *r)
{
  size_t len = runtime__v1__linux_container_resources__get_packed_size(r);
  cleanup_free uint8_t *bytes = xmalloc(len ? len : 1);
  Runtime__V1__LinuxContainerResources *copy;

  runtime__v1__linux_container_resources__pack(r, bytes);
  copy = runtime__v1__linux_container_resources__unpack(NULL, len, bytes);
  /* Bytes just packed from a valid message only fail to unpack without
   * memory. */
  if (copy == NULL)
    abort();
  return copy;
}

Runtime__V1__LinuxContainerResources *
container_resources_merge(const Runtime__V1__LinuxContainerResources *current,
                          const Runtime__V1__LinuxContainerResources *update)
{
  Runtime__V1__LinuxContainerResources merged = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
  cleanup_free Runtime__V1__LinuxContainerResources__UnifiedEntry **unified = NULL;

  /* Shallow: merged only points into current and update until the copy. */
  if (current)
    merged = *current;
  if (update == NULL)
    return resources_copy(&merged);
  if (update->cpu_period != 0)
    merged.cpu_period = update->cpu_period;
  if (update->cpu_quota != 0)
    merged.cpu_quota = update->cpu_quota;
  if (update->cpu_shares != 0)
    merged.cpu_shares = update->cpu_shares;
  if (update->memory_limit_in_bytes != 0)
    merged.memory_limit_in_bytes = update->memory_limit_in_bytes;
  if (update->memory_swap_limit_in_bytes != 0)
    merged.memory_swap_limit_in_bytes = update->memory_swap_limit_in_bytes;
  if (update->cpuset_cpus && update->cpuset_cpus[0])
    merged.cpuset_cpus = update->cpuset_cpus;
  if (update->cpuset_mems && update->cpuset_mems[0])
    merged.cpuset_mems = update->cpuset_mems;
  unified = xcalloc(merged.n_unified + update->n_unified + 1, sizeof *unified);
  if (merged.n_unified)
    memcpy(unified, merged.unified, merged.n_unified * sizeof *unified);
  for (size_t i = 0; i < update->n_unified; i++)
    {
      size_t j = 0;
      while (j < merged.n_unified && strcmp(unified[j]->key, update->unified[i]->key) != 0)
        j++;
      unified[j] = update->unified[i];
      if (j == merged.n_unified)
        merged.n_unified++;
    }
  merged.unified = unified;
  return resources_copy(&merged);
}
