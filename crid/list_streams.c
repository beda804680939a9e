/* The streaming lists of CRI 1.36 (StreamPodSandboxes, StreamContainers,
 * StreamImages, StreamContainerStats, StreamPodSandboxStats,
 * StreamPodSandboxMetrics): what the matching List call answers, with the
 * same filter, sent as a stream of messages of at most LIST_CHUNK_BYTES
 * each, so a listing larger than a gRPC message (16 MiB) still reaches
 * the client. */
#include "crid/daemon.h"
#include "crid/rpc.h"
#include "crid/stats_service.h"
#include "common/util.h"

#include <errno.h>

#define LIST_CHUNK_BYTES (4 * 1024 * 1024)
/* A repeated field's tag and length prefix, at most. */
#define ITEM_OVERHEAD 16

/* Sends items[0..n) as chunks: each time the n and items fields of
 * response point at the next run of items that fits. */
static int
send_chunked(struct rpc_stream *stream, ProtobufCMessage *response, size_t *n_field,
             void **items_field, void *items_array, size_t n, struct error *err)
{
  ProtobufCMessage **items = items_array;
  size_t start = 0;

  while (start < n)
    {
      size_t end = start, bytes = 0;
      while (end < n)
        {
          size_t size = protobuf_c_message_get_packed_size(items[end]) + ITEM_OVERHEAD;
          if (end > start && bytes + size > LIST_CHUNK_BYTES)
            break;
          bytes += size;
          end++;
        }
      *n_field = end - start;
      *items_field = items + start;
      if (rpc_stream_send(stream, response, err) < 0)
        return -1;
      start = end;
    }
  return 0;
}

/* Sends items[0..n) in chunks, then the OK status. */
static int
stream_items(struct rpc_stream *stream, ProtobufCMessage *chunk, size_t *n_field,
             void **items_field, void *items, size_t n, struct error *err)
{
  if (send_chunked(stream, chunk, n_field, items_field, items, n, err) < 0)
    return -1;
  rpc_stream_finish(stream, NULL);
  return 0;
}

/* Runs a unary List handler and streams its answer. */
static int
stream_list(struct rpc_call *call, rpc_handler list, const ProtobufCMessage *list_request,
            struct rpc_stream *stream, ProtobufCMessage *chunk, size_t *n_field, void **items_field,
            void (*items_of)(const ProtobufCMessage *response, ProtobufCMessage ***items,
                             size_t *n),
            struct error *err)
{
  ProtobufCMessage *response = NULL;
  ProtobufCMessage **items;
  size_t n;

  if (list(call, list_request, &response, err) < 0)
    return -1;
  items_of(response, &items, &n);
  return stream_items(stream, chunk, n_field, items_field, items, n, err);
}

static void
sandboxes_of(const ProtobufCMessage *response, ProtobufCMessage ***items, size_t *n)
{
  const Runtime__V1__ListPodSandboxResponse *r
      = (const Runtime__V1__ListPodSandboxResponse *)response;
  *items = (ProtobufCMessage **)r->items;
  *n = r->n_items;
}

static void
containers_of(const ProtobufCMessage *response, ProtobufCMessage ***items, size_t *n)
{
  const Runtime__V1__ListContainersResponse *r
      = (const Runtime__V1__ListContainersResponse *)response;
  *items = (ProtobufCMessage **)r->containers;
  *n = r->n_containers;
}

static void
images_of(const ProtobufCMessage *response, ProtobufCMessage ***items, size_t *n)
{
  const Runtime__V1__ListImagesResponse *r = (const Runtime__V1__ListImagesResponse *)response;
  *items = (ProtobufCMessage **)r->images;
  *n = r->n_images;
}

RPC_STREAM_HANDLER(rpc_stream_pod_sandboxes)
{
  const Runtime__V1__StreamPodSandboxesRequest *r
      = (const Runtime__V1__StreamPodSandboxesRequest *)request;
  Runtime__V1__ListPodSandboxRequest list = RUNTIME__V1__LIST_POD_SANDBOX_REQUEST__INIT;
  Runtime__V1__StreamPodSandboxesResponse chunk = RUNTIME__V1__STREAM_POD_SANDBOXES_RESPONSE__INIT;

  list.filter = r->filter;
  return stream_list(call, rpc_list_pod_sandbox, &list.base, stream, &chunk.base,
                     &chunk.n_pod_sandboxes, (void **)&chunk.pod_sandboxes, sandboxes_of, err);
}

RPC_STREAM_HANDLER(rpc_stream_containers)
{
  const Runtime__V1__StreamContainersRequest *r
      = (const Runtime__V1__StreamContainersRequest *)request;
  Runtime__V1__ListContainersRequest list = RUNTIME__V1__LIST_CONTAINERS_REQUEST__INIT;
  Runtime__V1__StreamContainersResponse chunk = RUNTIME__V1__STREAM_CONTAINERS_RESPONSE__INIT;

  list.filter = r->filter;
  return stream_list(call, rpc_list_containers, &list.base, stream, &chunk.base,
                     &chunk.n_containers, (void **)&chunk.containers, containers_of, err);
}

RPC_STREAM_HANDLER(rpc_stream_images)
{
  const Runtime__V1__StreamImagesRequest *r = (const Runtime__V1__StreamImagesRequest *)request;
  Runtime__V1__ListImagesRequest list = RUNTIME__V1__LIST_IMAGES_REQUEST__INIT;
  Runtime__V1__StreamImagesResponse chunk = RUNTIME__V1__STREAM_IMAGES_RESPONSE__INIT;

  list.filter = r->filter;
  return stream_list(call, rpc_list_images, &list.base, stream, &chunk.base, &chunk.n_images,
                     (void **)&chunk.images, images_of, err);
}

RPC_STREAM_HANDLER(rpc_stream_container_stats)
{
  const Runtime__V1__StreamContainerStatsRequest *r
      = (const Runtime__V1__StreamContainerStatsRequest *)request;
  Runtime__V1__StreamContainerStatsResponse chunk
      = RUNTIME__V1__STREAM_CONTAINER_STATS_RESPONSE__INIT;
  size_t n;
  Runtime__V1__ContainerStats **items = rpc_container_stats_items(call, r->filter, &n);

  return stream_items(stream, &chunk.base, &chunk.n_container_stats,
                      (void **)&chunk.container_stats, items, n, err);
}

RPC_STREAM_HANDLER(rpc_stream_pod_sandbox_stats)
{
  const Runtime__V1__StreamPodSandboxStatsRequest *r
      = (const Runtime__V1__StreamPodSandboxStatsRequest *)request;
  Runtime__V1__StreamPodSandboxStatsResponse chunk
      = RUNTIME__V1__STREAM_POD_SANDBOX_STATS_RESPONSE__INIT;
  size_t n;
  Runtime__V1__PodSandboxStats **items = rpc_sandbox_stats_items(call, r->filter, &n);

  return stream_items(stream, &chunk.base, &chunk.n_pod_sandbox_stats,
                      (void **)&chunk.pod_sandbox_stats, items, n, err);
}

RPC_STREAM_HANDLER(rpc_stream_pod_sandbox_metrics)
{
  Runtime__V1__StreamPodSandboxMetricsResponse chunk
      = RUNTIME__V1__STREAM_POD_SANDBOX_METRICS_RESPONSE__INIT;
  size_t n;
  Runtime__V1__PodSandboxMetrics **items = rpc_sandbox_metrics_items(call, &n);

  return stream_items(stream, &chunk.base, &chunk.n_pod_sandbox_metrics,
                      (void **)&chunk.pod_sandbox_metrics, items, n, err);
}
