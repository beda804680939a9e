/* pod/oci_spec: the OCI runtime config.json of a pod's pause container
 * and of a CRI container.
 *
 * The builders are pure translations: they take the CRI messages and what
 * crid already decided (paths of the pod's namespaces, files and rootfs,
 * the cgroupsPath, the resolved user, the seccomp profile) and return the
 * JSON text.  They read the host only where the host decides the answer:
 * crid's capability bounding set and oom_score_adj, the device nodes of
 * CRI devices (and of all of /dev for a privileged container), whether a
 * bind source is a shared mount, AppArmor and the cgroup mode (the last
 * two overridable for tests).
 *
 * Choices, where CRI leaves them to the runtime:
 *   - capabilities: pod/capabilities.h (containerd's default 14 as base);
 *     the pause container gets the default set too (it needs none, but a
 *     set of its own would be one more thing to explain);
 *   - oom_score_adj: clamped to [crid's own oom_score_adj, 1000] like
 *     containerd's restrict_oom_score_adj (lowering below one's own needs
 *     CAP_SYS_RESOURCE); the pause container asks for -998 like CRI-O and
 *     containerd, unless the pod's resources carry another value;
 *   - RLIMIT_NOFILE: soft = hard = min(crid's hard limit, 1048576), the
 *     value CRI-O and containerd give containers through their systemd
 *     units (LimitNOFILE=1048576), never above what crid may grant; the
 *     pause container inherits;
 *   - masked/readonly paths: the CRI lists verbatim when non-empty, else
 *     containerd's defaults (protobuf cannot tell an empty list from an
 *     absent one; kubelet always fills them for procMount Default);
 *     privileged: none;
 *   - pod-level resources (LinuxPodSandboxConfig.resources/overhead) are
 *     not applied to the pause container: kubelet already enforces them on
 *     the pod cgroup, the parent of the pause's own cgroup;
 *   - a cgroup namespace per container on a unified (v2) host, not for
 *     privileged containers, as containerd does;
 *   - bidirectional / host-to-container mounts need a shared (or slave)
 *     host source, checked in mountinfo as containerd and CRI-O do; a
 *     missing bind source is created as a directory (both do that too);
 *   - AppArmor only when the host has it enabled: Localhost ->
 *     the profile name, Unconfined and privileged -> "unconfined",
 *     RuntimeDefault -> none (crid loads no profile of its own yet); a
 *     Localhost profile on a host without AppArmor is EINVAL;
 *   - image volumes (pod/image_volume.h) are bound from crid's read-only
 *     overlay of the image with "ro,nosuid,nodev" added, whatever the
 *     request's readonly says; not noexec: the CRI has no field to ask
 *     for it, and images often carry tools to run;
 *   - SELinux labels are ignored; sysctls stay out (pod ones are set in the
 *     pinned namespaces by pod/namespace.c).
 * Annotations use containerd's io.kubernetes.cri.* names, so tools that
 * know them (e.g. crun's and runc's hooks, NRI plugins) understand crid. */
#ifndef CRID_POD_OCI_SPEC_H
#define CRID_POD_OCI_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "image/manifest.h"
#include "pod/cdi_spec.h"
#include "pod/cgroup.h"
#include "api.pb-c.h"

struct image_volumes;

#define OCI_VERSION "1.0.2"
#define OCI_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define OCI_PAUSE_COMMAND "/pause"
#define OCI_SANDBOX_OOM_SCORE_ADJ (-998)
#define OCI_NOFILE_LIMIT 1048576
/* The kernel's ranges: /proc/<pid>/oom_score_adj, and cgroup v1
 * cpu.shares (MIN_SHARES is 2, but 0 is "unset" and 1 is raised to 2). */
#define OCI_OOM_SCORE_ADJ_MIN (-1000)
#define OCI_OOM_SCORE_ADJ_MAX 1000
#define OCI_CPU_SHARES_MAX 262144

#define OCI_ANNOTATION_CONTAINER_TYPE "io.kubernetes.cri.container-type"
#define OCI_CONTAINER_TYPE_SANDBOX "sandbox"
#define OCI_CONTAINER_TYPE_CONTAINER "container"
#define OCI_ANNOTATION_SANDBOX_ID "io.kubernetes.cri.sandbox-id"
#define OCI_ANNOTATION_SANDBOX_NAME "io.kubernetes.cri.sandbox-name"
#define OCI_ANNOTATION_SANDBOX_NAMESPACE "io.kubernetes.cri.sandbox-namespace"
#define OCI_ANNOTATION_SANDBOX_UID "io.kubernetes.cri.sandbox-uid"
#define OCI_ANNOTATION_CONTAINER_NAME "io.kubernetes.cri.container-name"
#define OCI_ANNOTATION_IMAGE_NAME "io.kubernetes.cri.image-name"

/* A resolved user: numbers only, as OCI wants them.  pod/user.c resolves
 * names and image groups (/etc/passwd, /etc/group of the rootfs) and the
 * SupplementalGroupsPolicy into this. */
struct oci_user
{
  uint32_t uid;
  uint32_t gid;
  const uint32_t *additional_gids;
  size_t n_additional_gids;
};

enum oci_apparmor
{
  OCI_APPARMOR_DETECT = 0, /* /sys/module/apparmor/parameters/enabled */
  OCI_APPARMOR_DISABLED,
  OCI_APPARMOR_ENABLED,
};

struct pod_userns;

struct oci_sandbox_params
{
  const char *sandbox_id;
  const Runtime__V1__PodSandboxConfig *config;
  const char *rootfs; /* the pause's root (pod/pause_rootfs.h); mounted read-only */
  char *const *args;  /* its command; NULL: /pause */
  /* The dir of the pinned namespace files ("net", "ipc", "uts"; see
   * pod/namespace.h); NULL when nothing is pinned: then the pause gets
   * new namespaces of the kinds the pod does not take from the host. */
  const char *namespace_dir;
  bool host_network; /* NamespaceOption.network == NODE (also UTS) */
  bool host_ipc;     /* NamespaceOption.ipc == NODE */
  int pid_mode;      /* Runtime__V1__NamespaceMode: NODE = host, else new */
  /* The pod's shm tmpfs, bound at /dev/shm; NULL: a tmpfs of the
   * pause's own.  With host IPC the host's /dev/shm, always. */
  const char *shm_path;
  const char *cgroups_path; /* from cgroup_sandbox_path */
  /* NULL: run_as_user / run_as_group / supplemental_groups of the
   * sandbox security context, 0 where unset. */
  const struct oci_user *user;
  /* The OCI linux.seccomp object as JSON text (pod/seccomp.c); NULL =
   * unconfined (no seccomp key). */
  const char *seccomp_json;
  /* The same filter compiled (pod/seccomp_bpf.h), for a runtime that
   * loads it from an annotation; NULL = the runtime compiles it. */
  const char *seccomp_bpf;
  enum cgroup_mode cgroup_mode; /* CGROUP_MODE_UNKNOWN = the host's */
  /* The pod's user namespace (pod/userns.h), joined at userns_path with
   * its mappings in uidMappings/gidMappings; NULL or disabled = the
   * host's. */
  const struct pod_userns *userns;
  const char *userns_path;
};

struct oci_container_params
{
  const char *container_id;
  const char *sandbox_id;
  const Runtime__V1__ContainerConfig *config;
  const Runtime__V1__PodSandboxConfig *sandbox_config;
  const struct image_config *image; /* NULL: the image adds nothing */
  const char *image_name;           /* for the annotation; NULL = config->image->image */
  const char *rootfs;               /* the container's mounted root file system */
  /* Namespaces of the pod to join, by path; NULL when the pod has none of
   * that kind (the container's mode then decides: NODE = the host's,
   * otherwise a new one). */
  const char *netns_path;
  const char *ipcns_path;
  const char *utsns_path;
  const char *pod_pidns_path;    /* PID POD: "/proc/<pause pid>/ns/pid" */
  const char *target_pidns_path; /* PID TARGET: the target container's */
  /* Sandbox files bound into the container; NULL = not bound. */
  const char *hostname_path;    /* /etc/hostname */
  const char *resolv_conf_path; /* /etc/resolv.conf */
  const char *shm_path;         /* /dev/shm, only with IPC POD */
  const char *cgroups_path;     /* from cgroup_container_path */
  /* NULL: run_as_user / run_as_group / supplemental_groups of the
   * container security context, 0 where unset (no name resolution). */
  const struct oci_user *user;
  const char *seccomp_json; /* as for the sandbox; callers pass NULL for privileged */
  const char *seccomp_bpf;  /* as for the sandbox */
  /* The mounted image volumes of config's image mounts (NULL: none). */
  const struct image_volumes *image_volumes;
  enum oci_apparmor apparmor;
  enum cgroup_mode cgroup_mode;
  /* Tests: /proc/self/mountinfo text for the propagation checks (NULL =
   * read it). */
  const char *mountinfo;
  /* The CDI devices' edits (pod/cdi.h resolved and merged them, device
   * nodes complete); NULL when none.  Applied after everything of CRI:
   * they replace a device, mount or variable of the same path or name. */
  const struct cdi_edits *cdi;
  /* As for the sandbox: the pod's user namespace and its pin. */
  const struct pod_userns *userns;
  const char *userns_path;
  /* Per config->mounts[i], the source to bind instead of its host_path
   * (the idmapped copy pod/rootfs.c made); NULL = host_path. */
  char *const *mount_sources;
};

/* config.json of the pause container.  *json is the caller's. */
int oci_spec_sandbox(const struct oci_sandbox_params *p, char **json, struct error *err);

/* config.json of a container.  EINVAL for a request that cannot run ("no
 * command specified", unknown capability, bad mount or device, ...). */
int oci_spec_container(const struct oci_container_params *p, char **json, struct error *err);

/* The checks of a CRI mount and of CRI resources that need no host
 * facts, EINVAL naming the part: mount destination and host path
 * absolute (a relative source would be created relative to crid's working
 * directory), an image mount's fields (image_volume_check_mount);
 * oom_score_adj in [-1000, 1000], cpu_shares in [0, 262144],
 * hugepage page sizes such as "2MB" (a power of two from 4KB to 16GB) and
 * limits below 2^63, `unified` keys that name a file of the container's
 * cgroup (no '/', no "..").  The spec builders run them before anything
 * else; crid/validate.c runs them on every request that carries a mount or
 * resources (CreateContainer, UpdateContainerResources, RunPodSandbox). */
int oci_check_mount(const Runtime__V1__Mount *m, struct error *err);
int oci_check_resources(const Runtime__V1__LinuxContainerResources *r, struct error *err);

/* The process args of a container: the CRI command/args merged with the
 * image Entrypoint/Cmd (image.md §5).  NULL-terminated, caller frees with
 * strv_free.  EINVAL "no command specified" when the result is empty. */
int oci_container_args(const Runtime__V1__ContainerConfig *config, const struct image_config *image,
                       char ***out, struct error *err);

/* crid's own /proc/self/oom_score_adj: the lowest value it may hand on. */
int oci_oom_score_adj_floor(int *out, struct error *err);
/* requested clamped to [floor, 1000]. */
int oci_oom_score_adj_clamp(int64_t requested, int floor);

/* Whether the host has AppArmor enabled. */
bool oci_apparmor_host_enabled(void);

#endif
