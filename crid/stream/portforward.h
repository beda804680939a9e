/* crid/stream/portforward: the port-forward backend of a streaming
 * session.  SPDY: per forwarded connection the client opens an error and
 * a data stream sharing a requestid and naming the port; crid connects to
 * localhost:port inside the pod's network namespace and copies both ways.
 * WebSocket: the ports come from the PortForward request, port i on
 * channels 2i (data) and 2i+1 (error), each announced by a first message
 * holding the port (uint16, little-endian). */
#ifndef CRID_STREAM_PORTFORWARD_H
#define CRID_STREAM_PORTFORWARD_H

#include "crid/stream/session.h"
#include "crid/stream/token_cache.h"

struct pod_manager;

extern const struct session_backend portforward_backend;

/* The backend data for request (taken over). */
void *portforward_new(struct pod_manager *pods, struct stream_request *request,
                      enum session_transport transport, int64_t stream_creation_timeout_ns);

#endif
