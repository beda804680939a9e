/* crid/validate: the checks every request passes once, where it enters.
 *
 * The gRPC wrapper (crid/server.c) calls validate_request() on each
 * unpacked request before its handler runs, so nothing is created, no
 * state file written and no name reserved for a request that fails it.
 * The rules are either generic, found by walking the message with its
 * protobuf-c descriptors (sub-messages, repeated fields and maps
 * included), or tied to a message type wherever it appears:
 *
 *   - every field the CRI declares `string` is valid UTF-8
 *     (utf8_is_valid() of common/util.h; protobuf-c does not check, Go's
 *     protobuf, kubelet's, does): invalid bytes
 *     written raw into state.json would make it unreadable after a
 *     restart.  `bytes` fields (KeyValue.value, the env values) are not;
 *   - the labels plus annotations of one message (a pod, a container, an
 *     image spec) total at most VALIDATE_METADATA_MAX bytes of keys and
 *     values, the Kubernetes limit, so that one pod cannot push a list
 *     reply over gRPC's 16 MiB;
 *   - Mount and LinuxContainerResources: pod/oci_spec.h's
 *     oci_check_mount() and oci_check_resources() (absolute host paths,
 *     oom_score_adj, cpu_shares, hugepage sizes, `unified` keys), so
 *     UpdateContainerResources gets the same checks as CreateContainer;
 *   - PortMapping: protocol TCP, UDP or SCTP, ports within 0..65535 (a
 *     container port from 1 when there is a host port), host_ip empty or
 *     an IPv4 or IPv6 address;
 *   - ContainerConfig.log_path: no ".." component ("a..b.log" is fine);
 *   - NamespaceOption: pod/userns.h's pod_userns_check_options() (user
 *     namespace modes and mappings).
 *
 * Failures are EINVAL (INVALID_ARGUMENT) naming the field by its path in
 * the request, e.g. `config.labels["app"]`, `config.mounts[2].host_path`,
 * with at most VALIDATE_QUOTE_MAX bytes of the offending text, escaped. */
#ifndef CRID_VALIDATE_H
#define CRID_VALIDATE_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

#define VALIDATE_METADATA_MAX (256 * 1024)
#define VALIDATE_QUOTE_MAX 64

/* 0 when request passes every rule above, else -1 with EINVAL. */
int validate_request(const ProtobufCMessage *request, struct error *err);

#endif
