/* crid/stream/remotecommand: the exec and attach backends of a streaming
 * session (Kubernetes' remote-command protocol, v1 to v5): which streams
 * the client must open, the exec'd process (pod/exec.c) or the
 * container's attach socket (crid-conmon) wired to them, terminal
 * resizes, and the status on the error stream (v4+: a JSON
 * metav1.Status carrying the exit code). */
#ifndef CRID_STREAM_REMOTECOMMAND_H
#define CRID_STREAM_REMOTECOMMAND_H

#include "crid/stream/session.h"
#include "crid/stream/token_cache.h"

struct pod_manager;

extern const struct session_backend remotecommand_backend;

/* The backend data for request (taken over); version is the negotiated
 * remote-command protocol version (1 = channel.k8s.io, ..., 5). */
void *remotecommand_new(struct pod_manager *pods, struct stream_request *request, int version,
                        enum session_transport transport, int64_t stream_creation_timeout_ns);

#endif
