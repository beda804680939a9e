/* crid/service_common: what the sandbox, container and event handlers
 * (sandbox_service.c, container_service.c, events_service.c) share: the idempotent lookups,
 * replies without fields, the label and annotation maps copied into
 * replies and matched by list filters, and the verbose status info. */
#ifndef CRID_SERVICE_COMMON_H
#define CRID_SERVICE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crid/rpc.h"

struct json_writer;

/* protobuf-c gives every map<string, string> its own entry type, all
 * laid out like this one; code that serves any map takes its entries as
 * this type (crid builds with -fno-strict-aliasing). */
struct rpc_map_entry
{
  ProtobufCMessage base;
  char *key;
  char *value;
};

/* The request packed again into a new buffer of *len bytes: the same
 * fields as received, so labels and annotations are echoed byte for byte
 * after a restart. */
uint8_t *rpc_pack_request(const ProtobufCMessage *request, size_t *len);

/* For a failed lookup in the calls that are done when their object is
 * already gone (Stop, Remove): 0 with err cleared when it is gone, -1
 * (err kept) for any other failure. */
int rpc_gone_is_done(struct error *err);

/* Ends a handler whose reply has no fields: -1 when ret says the work
 * failed, else 0 with an empty reply of the type descriptor names,
 * allocated in the call's arena. */
int rpc_reply_empty(struct rpc_call *call, int ret, const ProtobufCMessageDescriptor *descriptor,
                    ProtobufCMessage **response);

/* A copy of the map source[0..n) in the call's arena (the object it came
 * from may go away before the reply is packed), as entries of the
 * reply's own type entry_descriptor: the array for the reply's field. */
void *rpc_copy_map(struct rpc_call *call, const ProtobufCMessageDescriptor *entry_descriptor,
                   const void *source, size_t n);

/* The info map of a verbose status reply: one entry, "info" -> value. */
void *rpc_info_map(struct rpc_call *call, const ProtobufCMessageDescriptor *entry_descriptor,
                   char *value);

/* True when every label of a list filter's selector is among labels,
 * with the same value. */
bool rpc_labels_match(const void *labels, size_t n_labels, const void *selector, size_t n_selector);

/* A list filter's id matches every id it is a prefix of; an empty one
 * matches all. */
bool rpc_id_matches(const char *id, const char *filter_id);

/* Ends the verbose info object in writer with "runtimeSpec", the OCI
 * spec at spec_path (null when it cannot be read: the info is best
 * effort), and returns its text, owned by the call's arena. */
char *rpc_verbose_info_finish(struct rpc_call *call, struct json_writer *writer,
                              const char *spec_path);

struct container_snapshot;
struct sandbox_snapshot;

/* The CRI status of a container and of a sandbox from their snapshots,
 * in the call's arena: ContainerStatus and PodSandboxStatus answer with
 * them, and so do container events. */
Runtime__V1__ContainerStatus *
rpc_container_status_message(struct rpc_call *call, const struct container_snapshot *snapshot);
Runtime__V1__PodSandboxStatus *rpc_sandbox_status_message(struct rpc_call *call,
                                                          const struct sandbox_snapshot *snapshot);

#endif
