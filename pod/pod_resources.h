/* pod/pod_resources: a pod's pod-level resources, the CRI
 * LinuxPodSandboxConfig.overhead and .resources that RunPodSandbox brings
 * and UpdatePodSandboxResources (CRI 1.33) changes: which values are in
 * force, where they are kept across restarts, and how they are reported.
 *
 * crid records these values and never writes them to a cgroup.  The pod
 * cgroup (the sandbox's cgroup_parent) belongs to the kubelet: it creates
 * it with the pod's limits before RunPodSandbox, and it changes them
 * before it calls UpdatePodSandboxResources, a call it treats as best
 * effort (cri-api's comment on the RPC; KEP-1287 "CRI Changes").
 * containerd and CRI-O do the same: they record the values and hand them
 * to NRI plugins.  Writing them would also be wrong: `resources` is the
 * sum of the containers' values without the overhead, and it carries a
 * CPU quota or a memory limit even when one container has none, a case
 * where the kubelet leaves the pod cgroup unlimited.
 *
 * The values in force live in <sandbox dir>/resources.pb, a packed
 * UpdatePodSandboxResourcesRequest written atomically at each update.
 * Until the first update there is no such file and the values are those
 * of the RunPodSandbox request (request.pb), so RunPodSandbox needs no
 * step of its own.  RemovePodSandbox removes the file with the folder. */
#ifndef CRID_POD_POD_RESOURCES_H
#define CRID_POD_POD_RESOURCES_H

#include "common/error.h"
#include "api.pb-c.h"

struct json_writer;
struct pod_manager;
struct sandbox;

#define POD_RESOURCES_FILE "resources.pb"

/* The values in force for the sandbox whose folder is dir and whose
 * RunPodSandbox config is config (NULL: none): <dir>/resources.pb, else
 * config's.  overhead and resources are NULL where none was ever given.
 * The caller frees *out with pod_resources_free. */
int pod_resources_load(const char *dir, const Runtime__V1__PodSandboxConfig *config,
                       Runtime__V1__UpdatePodSandboxResourcesRequest **out, struct error *err);
void pod_resources_free(Runtime__V1__UpdatePodSandboxResourcesRequest *values);

/* Saves update over the values in force: each of update's overhead and
 * resources replaces the one in force, and one that update leaves unset
 * keeps it (both are optional in the CRI). */
int pod_resources_update(const char *dir, const char *id,
                         const Runtime__V1__PodSandboxConfig *config,
                         const Runtime__V1__UpdatePodSandboxResourcesRequest *update,
                         struct error *err);

/* Members "overhead" and "resources" of the object open in writer, each
 * {"linux": {...}} with the CRI's snake_case field names and only the
 * fields that are not zero or empty: the shape containerd gives them in
 * its verbose PodSandboxStatus info.  A value never given is left out. */
void pod_resources_write_json(struct json_writer *writer,
                              const Runtime__V1__UpdatePodSandboxResourcesRequest *values);

/* UpdatePodSandboxResources: records update for sandbox.  ENOENT when
 * the sandbox was removed, EBUSY (FAILED_PRECONDITION) when it is not
 * ready; takes the sandbox's lock. */
int pod_resources_update_sandbox(struct pod_manager *manager, struct sandbox *sandbox,
                                 const Runtime__V1__UpdatePodSandboxResourcesRequest *update,
                                 struct error *err);

/* For PodSandboxStatus's verbose info, with the sandbox's lock held: the
 * members of pod_resources_write_json for the values in force.  Nothing
 * when they cannot be read (the info is best effort; a warning is
 * logged). */
void pod_resources_write_info(struct json_writer *writer, const struct pod_manager *manager,
                              const struct sandbox *sandbox);

#endif
