/* pod/container_resources: a container's LinuxContainerResources as
 * UpdateContainerResources changes them: an update merged into what is in
 * force, and the OCI resources JSON the runtime's update reads. */
#ifndef CRID_POD_CONTAINER_RESOURCES_H
#define CRID_POD_CONTAINER_RESOURCES_H

#include "api.pb-c.h"

/* A copy of current (NULL = none) with every field that update sets
 * (non-zero numbers, non-empty strings, unified keys) replacing its value,
 * as the runtime's update applies them: what update leaves unset stays in
 * force.  oom_score_adj and hugepage limits are kept: an update does not
 * change them (runc's update ignores hugetlb, so crid does not pass it).
 * update NULL: a plain deep copy.  Free with
 * runtime__v1__linux_container_resources__free_unpacked(r, NULL). */
Runtime__V1__LinuxContainerResources *
container_resources_merge(const Runtime__V1__LinuxContainerResources *current,
                          const Runtime__V1__LinuxContainerResources *update);

/* The linux.resources object of OCI (cpu, memory, unified) for
 * `<runtime> update --resources`.  Caller frees. */
char *container_resources_json(const Runtime__V1__LinuxContainerResources *r);

#endif
