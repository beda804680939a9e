/* pod/cgroup: where a pod's and a container's cgroups live, for both
 * cgroup drivers, and their removal.
 *
 * crid never writes cgroup settings itself: the OCI runtime creates the
 * cgroup from linux.cgroupsPath and applies linux.resources.  crid only
 * names the cgroup, finds it again (stats, OOM, cleanup) and removes what
 * a runtime left behind.
 *
 * cgroupsPath per driver (docs/facts/oci-runtime.md §4):
 *   cgroupfs  "<parent>/crid-<id>", an absolute path under each hierarchy
 *             root; kubelet's parent is a cgroupfs path such as
 *             "/kubepods/burstable/pod<uid>"; an empty parent (crictl)
 *             means CGROUP_DEFAULT_PARENT, so crid's cgroups without a
 *             kubelet are grouped in one place instead of the root.
 *   systemd   "<slice>:crid:<id>": the runtime asks systemd for the unit
 *             "crid-<id>.scope" in <slice>; the parent must be a ".slice"
 *             name (kubelet's systemd driver sends
 *             "kubepods-burstable-pod<uid>.slice"); empty = system.slice. */
#ifndef CRID_POD_CGROUP_H
#define CRID_POD_CGROUP_H

#include <stdbool.h>

#include "common/error.h"

#define CGROUP_ROOT "/sys/fs/cgroup"
#define CGROUP_DEFAULT_PARENT "/crid"
#define CGROUP_DEFAULT_SLICE "system.slice"
#define CGROUP_SCOPE_PREFIX "crid"

enum cgroup_mode
{
  CGROUP_MODE_UNKNOWN = 0, /* also "detect" where a mode is an input */
  CGROUP_MODE_LEGACY,      /* v1 only: a tmpfs of v1 hierarchies */
  CGROUP_MODE_HYBRID,      /* v1 controllers plus cgroup2 at <root>/unified */
  CGROUP_MODE_UNIFIED,     /* cgroup2 mounted at the root */
};

/* The host's mode, from the file system type at CGROUP_ROOT (and at
 * CGROUP_ROOT/unified).  Detected once, then cached. */
enum cgroup_mode cgroup_host_mode(void);
/* The same for any root (tests); EIO when root is not a cgroup mount. */
int cgroup_mode_at(const char *root, enum cgroup_mode *out, struct error *err);
const char *cgroup_mode_name(enum cgroup_mode mode);

/* linux.cgroupsPath of a container (or of a pod's pause container, which
 * is the same rule) from kubelet's cgroup_parent and crid's id.  EINVAL
 * for a parent that does not fit the driver (a ".slice" with cgroupfs, a
 * path with systemd, "..") or an id that is not a plain name. */
int cgroup_container_path(const char *parent, const char *id, bool systemd, char **out,
                          struct error *err);
int cgroup_sandbox_path(const char *parent, const char *id, bool systemd, char **out,
                        struct error *err);

/* The cgroupfs path of a systemd slice: dashes are nesting, so
 * "kubepods-burstable-pod123.slice" is
 * "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod123.slice";
 * "-.slice" is the root "/".  EINVAL for a name systemd would refuse. */
int cgroup_slice_to_path(const char *slice, char **out, struct error *err);

/* The directory, relative to each hierarchy root, of a cgroupsPath made
 * by cgroup_container_path: the path itself for cgroupfs,
 * "<slice path>/<prefix>-<name>.scope" for systemd. */
int cgroup_path_to_fs(const char *cgroups_path, bool systemd, char **out, struct error *err);

/* The mount points of every cgroup and cgroup2 hierarchy, from
 * /proc/self/mountinfo.  NULL-terminated; caller frees with strv_free. */
int cgroup_hierarchies(char ***out, struct error *err);
/* The same from mountinfo text (tests). */
int cgroup_hierarchies_parse(const char *mountinfo, char ***out, struct error *err);

/* Removes fs_path (as from cgroup_path_to_fs) in every mounted hierarchy:
 * sub-cgroups first, rmdir only (a cgroup still holding processes stays
 * and is an error, EBUSY after a short retry); missing directories are
 * fine.  "/" and paths with ".." are refused (EINVAL). */
int cgroup_remove(const char *fs_path, struct error *err);
/* The same under explicit hierarchy roots (tests, or one hierarchy). */
int cgroup_remove_under(char *const *roots, const char *fs_path, struct error *err);

/* Recovery: removes, in every hierarchy, the cgroups named for one of ids
 * as crid names its objects' ("crid-<id>" with cgroupfs, "crid-<id>.scope"
 * with systemd), wherever they are (their parent was the kubelet's and is
 * not known any more), searching CGROUP_FIND_MAX_DEPTH levels deep.  Like
 * cgroup_remove: rmdir only; the first failure is reported, the others
 * are still tried. */
#define CGROUP_FIND_MAX_DEPTH 10
int cgroup_remove_named(char *const *ids, struct error *err);

/* Call when a container is about to be created.  Moving a task into a
 * cgroup waits for an RCU grace period (the kernel's threadgroup rwsem)
 * unless another move ended just before: 6-16 ms on the machines we
 * measured, the largest part of a `crun create`.  A short-lived thread
 * that moves itself into the v1 cgroup it is already in (no effect but
 * the lock) starts that grace period now, and the runtime's own move a
 * few milliseconds later finds it (nearly) passed.  Nothing on cgroup2
 * only hosts, where runtimes clone straight into the new cgroup; failures
 * are ignored (it only saves time). */
void cgroup_prepare_attach(void);

/* The "tasks" file of the calling process's cgroup in one v1 hierarchy,
 * from /proc/self/cgroup text; NULL when there is none (tests). */
char *cgroup_v1_tasks_file(const char *proc_cgroup, const char *root);

#endif
