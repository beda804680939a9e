/* ListImages, ImageStatus, PullImage, RemoveImage and ImageFsInfo:
 * protobuf in, image/store.c and image/pull.c, protobuf out (ImageFsInfo's
 * container file system from pod/stats.h). */
#include "crid/daemon.h"
#include "crid/metrics.h"
#include "crid/rpc.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "image/pull.h"
#include "image/registry.h"
#include "image/store.h"
#include "pod/pod_manager.h"
#include "pod/stats.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_JSON_MAX_SIZE (16 * 1024 * 1024)

static const char *
spec_image(const Runtime__V1__ImageSpec *spec)
{
  return spec && spec->image ? spec->image : "";
}

static char **
arena_strv(struct rpc_call *call, char *const *strv, size_t *n)
{
  char **copy;

  *n = strv_length(strv);
  copy = arena_new_array(&call->arena, char *, *n ? *n : 1);
  for (size_t i = 0; i < *n; i++)
    copy[i] = arena_strdup(&call->arena, strv[i]);
  return copy;
}

/* Config User is "user", "uid", "user:group" or "uid:gid": a numeric user
 * part is the uid, anything else the user name; the group is not ours. */
static void
set_user(struct rpc_call *call, Runtime__V1__Image *image, const char *user)
{
  const char *colon = user ? strchr(user, ':') : NULL;
  size_t len = user ? (colon ? (size_t)(colon - user) : strlen(user)) : 0;
  bool numeric = len > 0;

  if (len == 0)
    return;
  for (size_t i = 0; i < len; i++)
    if (user[i] < '0' || user[i] > '9')
      numeric = false;
  if (!numeric)
    {
      image->username = arena_adopt(&call->arena, xstrndup(user, len));
      return;
    }
  image->uid = arena_new(&call->arena, Runtime__V1__Int64Value);
  runtime__v1__int64_value__init(image->uid);
  image->uid->value = strtoll(user, NULL, 10);
}

/* pause_id: the pause image's id (pinned: the kubelet never collects
 * it), or NULL. */
static Runtime__V1__Image *
image_message(struct rpc_call *call, const struct image_info *info, const char *pause_id)
{
  Runtime__V1__Image *image = arena_new(&call->arena, Runtime__V1__Image);
  Runtime__V1__ImageSpec *spec = arena_new(&call->arena, Runtime__V1__ImageSpec);

  runtime__v1__image__init(image);
  runtime__v1__image_spec__init(spec);
  image->id = arena_strdup(&call->arena, info->id);
  image->repo_tags = arena_strv(call, info->repo_tags, &image->n_repo_tags);
  image->repo_digests = arena_strv(call, info->repo_digests, &image->n_repo_digests);
  image->size = info->size > 0 ? (uint64_t)info->size : 1;
  set_user(call, image, info->user);
  image->pinned = pause_id && strcmp(pause_id, info->id) == 0;
  spec->image = image->id;
  image->spec = spec;
  return image;
}

int
rpc_list_images(struct rpc_call *call, const ProtobufCMessage *request, ProtobufCMessage **response,
                struct error *err)
{
  const Runtime__V1__ListImagesRequest *list = (const Runtime__V1__ListImagesRequest *)request;
  Runtime__V1__ListImagesResponse *reply = arena_new(&call->arena, Runtime__V1__ListImagesResponse);
  struct image_store *store = call->daemon->images;
  const char *filter = list->filter ? spec_image(list->filter->image) : "";
  struct image_info **images;
  cleanup_free char *pause_id = pod_manager_pause_image_id(call->daemon->pods);
  size_t n;

  runtime__v1__list_images_response__init(reply);
  if (filter[0])
    {
      /* A filter naming nothing (or nothing valid) matches no image. */
      struct image_info *info = NULL;
      struct error lookup_err = ERROR_INIT;
      n = image_store_lookup(store, filter, &info, &lookup_err) == 0;
      error_clear(&lookup_err);
      images = xcalloc(1, sizeof *images);
      images[0] = info;
    }
  else
    images = image_store_list(store, &n);
  reply->n_images = n;
  reply->images = arena_new_array(&call->arena, Runtime__V1__Image *, n ? n : 1);
  for (size_t i = 0; i < n; i++)
    reply->images[i] = image_message(call, images[i], pause_id);
  image_info_list_free(images, n);
  *response = &reply->base;
  return 0;
}

/* The verbose info, as containerd shapes it: {"info": "{...imageSpec...}"}. */
static int
add_verbose_info(struct rpc_call *call, Runtime__V1__ImageStatusResponse *reply,
                 const struct image_info *info, struct error *err)
{
  struct image_store *store = call->daemon->images;
  Runtime__V1__ImageStatusResponse__InfoEntry *entry
      = arena_new(&call->arena, Runtime__V1__ImageStatusResponse__InfoEntry);
  cleanup_json struct json_value *config = NULL;
  cleanup_free char *bytes = NULL;
  struct json_writer *w;
  size_t len;

  if (image_store_config_bytes(store, info->id, &bytes, &len, err) < 0)
    return -1;
  config = json_parse(bytes, len, err);
  if (config == NULL)
    return error_wrap(err, "config of image %s", info->id);
  w = json_writer_new(false);
  json_begin_object(w);
  json_write_key(w, "id");
  json_write_string(w, info->id);
  json_write_key(w, "manifestDigest");
  json_write_string(w, info->manifest_digest);
  json_write_key(w, "chainID");
  json_write_string(w, info->n_layers ? info->layers[info->n_layers - 1].chain_id : "");
  json_write_key(w, "imageSpec");
  json_write_value(w, config);
  json_end_object(w);
  runtime__v1__image_status_response__info_entry__init(entry);
  entry->key = (char *)"info";
  entry->value = arena_adopt(&call->arena, json_writer_finish(w, NULL));
  reply->n_info = 1;
  reply->info = arena_new_array(&call->arena, Runtime__V1__ImageStatusResponse__InfoEntry *, 1);
  reply->info[0] = entry;
  return 0;
}

int
rpc_image_status(struct rpc_call *call, const ProtobufCMessage *request,
                 ProtobufCMessage **response, struct error *err)
{
  const Runtime__V1__ImageStatusRequest *status = (const Runtime__V1__ImageStatusRequest *)request;
  Runtime__V1__ImageStatusResponse *reply
      = arena_new(&call->arena, Runtime__V1__ImageStatusResponse);
  struct image_info *info = NULL;
  cleanup_free char *pause_id = NULL;
  int ret = 0;

  runtime__v1__image_status_response__init(reply);
  if (image_store_lookup(call->daemon->images, spec_image(status->image), &info, err) < 0)
    {
      /* A missing image is an answer, not an error. */
      if (err->code != ENOENT)
        return -1;
      error_clear(err);
      *response = &reply->base;
      return 0;
    }
  pause_id = pod_manager_pause_image_id(call->daemon->pods);
  reply->image = image_message(call, info, pause_id);
  if (status->verbose)
    ret = add_verbose_info(call, reply, info, err);
  image_info_free(info);
  if (ret < 0)
    return -1;
  *response = &reply->base;
  return 0;
}

static bool
call_cancelled(void *arg)
{
  return rpc_call_cancelled(arg);
}

static bool
call_deadline_passed(void *arg)
{
  struct rpc_call *call = arg;
  return call->deadline_ns > 0 && time_realtime_ns() >= call->deadline_ns;
}

static const char *
nonempty(const char *s)
{
  return s && s[0] ? s : NULL;
}

/* AuthConfig to registry_auth; false when it carries no credential. */
static bool
auth_from_request(const Runtime__V1__AuthConfig *config, struct registry_auth *auth)
{
  if (config == NULL)
    return false;
  auth->username = nonempty(config->username);
  auth->password = nonempty(config->password);
  auth->auth = nonempty(config->auth);
  auth->identity_token = nonempty(config->identity_token);
  auth->registry_token = nonempty(config->registry_token);
  return auth->username || auth->password || auth->auth || auth->identity_token
         || auth->registry_token;
}

/* The pulled image's config and layer blobs, for crid_image_pulls_bytes_total. */
static uint64_t
image_bytes(struct image_store *store, const char *id)
{
  struct image_info *info = NULL;
  struct error err = ERROR_INIT;
  uint64_t bytes = 0;

  if (image_store_lookup(store, id, &info, &err) == 0)
    bytes = info->size > 0 ? (uint64_t)info->size : 0;
  error_clear(&err);
  image_info_free(info);
  return bytes;
}

int
rpc_pull_image(struct rpc_call *call, const ProtobufCMessage *request, ProtobufCMessage **response,
               struct error *err)
{
  const Runtime__V1__PullImageRequest *pull = (const Runtime__V1__PullImageRequest *)request;
  Runtime__V1__PullImageResponse *reply = arena_new(&call->arena, Runtime__V1__PullImageResponse);
  struct registry_auth auth = { 0 };
  struct image_pull_options options = {
    .cancelled = call_cancelled,
    .deadline_passed = call_deadline_passed,
    .cancel_arg = call,
  };
  char *id = NULL;
  int64_t started = time_monotonic_ns();

  if (auth_from_request(pull->auth, &auth))
    options.auth = &auth;
  if (image_pull(call->daemon->puller, spec_image(pull->image), &options, &id, err) < 0)
    {
      metrics_observe_pull(false, 0, time_monotonic_ns() - started);
      return -1;
    }
  metrics_observe_pull(true, image_bytes(call->daemon->images, id), time_monotonic_ns() - started);
  runtime__v1__pull_image_response__init(reply);
  reply->image_ref = arena_adopt(&call->arena, id);
  *response = &reply->base;
  return 0;
}

int
rpc_remove_image(struct rpc_call *call, const ProtobufCMessage *request,
                 ProtobufCMessage **response, struct error *err)
{
  const Runtime__V1__RemoveImageRequest *remove = (const Runtime__V1__RemoveImageRequest *)request;
  Runtime__V1__RemoveImageResponse *reply
      = arena_new(&call->arena, Runtime__V1__RemoveImageResponse);
  const char *name = spec_image(remove->image);
  bool removed;

  if (name[0] == '\0')
    return error_set(err, EINVAL, "no image given");
  if (image_store_remove(call->daemon->images, name, &removed, err) < 0)
    {
      cleanup_free char *shown = quote_untrusted(name, strlen(name), 256);
      return error_wrap(err, "remove image %s", shown);
    }
  if (!removed)
    log_info("image %.256s is not there: nothing to remove", name);
  runtime__v1__remove_image_response__init(reply);
  *response = &reply->base;
  return 0;
}

static Runtime__V1__UInt64Value *
uint64_value(struct rpc_call *call, uint64_t value)
{
  Runtime__V1__UInt64Value *v = arena_new(&call->arena, Runtime__V1__UInt64Value);

  runtime__v1__uint64_value__init(v);
  v->value = value;
  return v;
}

/* Where writable layers live, <root>/containers: what the containers'
 * upper directories hold, from the stats collector's last measurements
 * (pod/stats.h), never walked here. */
static Runtime__V1__FilesystemUsage *
container_filesystem(struct rpc_call *call)
{
  Runtime__V1__FilesystemUsage *usage = arena_new(&call->arena, Runtime__V1__FilesystemUsage);
  Runtime__V1__FilesystemIdentifier *fs_id
      = arena_new(&call->arena, Runtime__V1__FilesystemIdentifier);
  struct stats_fs_usage layers;

  stats_writable_layers(call->daemon->pods, &layers);
  runtime__v1__filesystem_usage__init(usage);
  runtime__v1__filesystem_identifier__init(fs_id);
  fs_id->mountpoint = arena_adopt(&call->arena, stats_layers_dir(call->daemon->pods));
  usage->timestamp = layers.timestamp_ns;
  usage->fs_id = fs_id;
  usage->used_bytes = uint64_value(call, layers.used_bytes);
  usage->inodes_used = uint64_value(call, layers.inodes_used);
  return usage;
}

int
rpc_image_fs_info(struct rpc_call *call, const ProtobufCMessage *request,
                  ProtobufCMessage **response, struct error *err)
{
  Runtime__V1__ImageFsInfoResponse *reply
      = arena_new(&call->arena, Runtime__V1__ImageFsInfoResponse);
  Runtime__V1__FilesystemUsage *usage = arena_new(&call->arena, Runtime__V1__FilesystemUsage);
  Runtime__V1__FilesystemIdentifier *fs_id
      = arena_new(&call->arena, Runtime__V1__FilesystemIdentifier);
  struct image_store_usage totals;

  image_store_usage(call->daemon->images, &totals);
  runtime__v1__image_fs_info_response__init(reply);
  runtime__v1__filesystem_usage__init(usage);
  runtime__v1__filesystem_identifier__init(fs_id);
  fs_id->mountpoint = arena_strdup(&call->arena, image_store_dir(call->daemon->images));
  usage->timestamp = totals.timestamp_ns;
  usage->fs_id = fs_id;
  usage->used_bytes = uint64_value(call, totals.used_bytes);
  usage->inodes_used = uint64_value(call, totals.inodes_used);
  reply->n_image_filesystems = 1;
  reply->image_filesystems = arena_new_array(&call->arena, Runtime__V1__FilesystemUsage *, 1);
  reply->image_filesystems[0] = usage;
  reply->n_container_filesystems = 1;
  reply->container_filesystems = arena_new_array(&call->arena, Runtime__V1__FilesystemUsage *, 1);
  reply->container_filesystems[0] = container_filesystem(call);
  *response = &reply->base;
  return 0;
}
