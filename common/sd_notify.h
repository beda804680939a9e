/* common/sd_notify: systemd's service notification protocol, by hand.
 *
 * Owns the notify socket address and the watchdog interval taken from the
 * environment systemd gives a Type=notify service ($NOTIFY_SOCKET, a path
 * or an abstract "@name"; $WATCHDOG_USEC and $WATCHDOG_PID), sending the
 * newline-separated "KEY=value" datagrams (READY=1, RELOADING=1,
 * STOPPING=1, STATUS=..., WATCHDOG=1), and the thread that sends
 * WATCHDOG=1 at half the interval.  No libsystemd: the protocol is one
 * datagram per message on an AF_UNIX socket.  Without $NOTIFY_SOCKET
 * every call is a no-op, so crid behaves the same outside systemd. */
#ifndef CRID_COMMON_SD_NOTIFY_H
#define CRID_COMMON_SD_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "common/error.h"

struct sd_notifier
{
  bool enabled; /* a notify socket was given */
  struct sockaddr_un address;
  socklen_t address_len;
  uint64_t watchdog_usec; /* 0: no watchdog asked for (or not for us) */
};

/* Parses a $NOTIFY_SOCKET value ("/path" or "@abstract") into n.
 * EINVAL for anything else (relative paths, vsock: addresses, too long). */
int sd_notifier_init(struct sd_notifier *n, const char *socket_path, struct error *err);

/* Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID, then removes
 * them from the environment, so no child (conmon, an OCI runtime that
 * speaks the protocol itself, a CNI plugin) inherits them.  Call before
 * any thread exists.  A malformed value disables that part with -1 and
 * err saying why; n is usable either way. */
int sd_notifier_from_environment(struct sd_notifier *n, struct error *err);

/* Sends message (e.g. "READY=1\nSTATUS=serving") as one datagram.
 * 0 without a socket. */
int sd_notify_send(const struct sd_notifier *n, const char *message, struct error *err);

/* printf-style; failures are logged at debug level and otherwise ignored:
 * a service manager that went away must not stop the daemon. */
void sd_notifyf(const struct sd_notifier *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* CLOCK_MONOTONIC in microseconds, as RELOADING=1's MONOTONIC_USEC= wants. */
uint64_t sd_monotonic_usec(void);

struct sd_watchdog;

/* Starts a thread sending WATCHDOG=1 every watchdog_usec / 2; NULL when
 * n asks for no watchdog.  n must outlive it. */
struct sd_watchdog *sd_watchdog_start(const struct sd_notifier *n);
/* Stops and joins the thread; NULL is fine. */
void sd_watchdog_stop(struct sd_watchdog *watchdog);

#endif
