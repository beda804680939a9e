/* pod/net_dev: the per-interface counters of a network namespace, as the
 * kernel prints them in /proc/<pid>/net/dev (the namespace of that
 * process: a pod's pause process shows the pod's).
 *
 * This module owns the file's format only: two header lines, then one
 * line per interface, "<name>: " and sixteen decimal counters (receive:
 * bytes packets errs drop fifo frame compressed multicast; transmit:
 * bytes packets errs drop fifo colls carrier compressed).  An interface
 * name never holds ':' or white space (the kernel refuses such names), so
 * the first ':' ends it even when a long name touches the first number. */
#ifndef CRID_POD_NET_DEV_H
#define CRID_POD_NET_DEV_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* IFNAMSIZ (16) with its NUL. */
#define NET_DEV_NAME_MAX 16
/* At most this many interfaces are kept; more is an error (E2BIG). */
#define NET_DEV_MAX_INTERFACES 1024

struct net_dev_interface
{
  char name[NET_DEV_NAME_MAX];
  uint64_t rx_bytes, rx_packets, rx_errors, rx_dropped;
  uint64_t tx_bytes, tx_packets, tx_errors, tx_dropped;
};

/* The interfaces of text in file order, without the loopback "lo".  *out
 * is a new array of *n entries (NULL when there are none); free it.
 * EINVAL, quoting the line, when a line is not in the kernel's format. */
int net_dev_parse(const char *text, struct net_dev_interface **out, size_t *n, struct error *err);

/* The index of the pod's default interface among n: "eth0" (what CNI
 * plugins name the pod's side, and what the kubelet expects), else the
 * first one.  0 when n is 0. */
size_t net_dev_default_index(const struct net_dev_interface *interfaces, size_t n);

#endif
