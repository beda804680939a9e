/* crid/server: the gRPC endpoint.  Owns the gRPC C core server on the unix
 * socket, the completion-queue thread that hands each call to the worker
 * pool, the one wrapper every method runs through (log line with method,
 * request id, duration and status; errors to status codes; UNAVAILABLE
 * until ready; UNIMPLEMENTED for methods without a handler), and the
 * orderly shutdown. */
#ifndef CRID_SERVER_H
#define CRID_SERVER_H

#include "common/error.h"

struct daemon;
struct server;

/* Binds the socket (replacing a stale one, mode 0660) and starts serving. */
struct server *server_start(struct daemon *daemon, struct error *err);

/* Runs the completion-queue loop until server_shutdown() has completed. */
void server_run(struct server *server);

/* Stops accepting calls, lets in-flight calls finish for at most
 * grace_seconds, then cancels what is left.  Safe from any thread. */
void server_shutdown(struct server *server, int grace_seconds);

/* Removes the socket and frees everything; after server_run returned. */
void server_free(struct server *server);

#endif
