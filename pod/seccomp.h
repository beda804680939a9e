/* pod/seccomp: the OCI linux.seccomp object of a container or pod.
 *
 * The result is JSON text for pod/oci_spec.h's seccomp_json hook, NULL
 * for no filter at all.  The rules (cri-api SecurityProfile comment,
 * containerd and CRI-O practice, docs/facts/oci-runtime.md §4):
 *   - RuntimeDefault: crid's built-in profile (pod/seccomp_default.c), the
 *     syscall list of Docker's default profile that containerd ships:
 *     everything not allowed fails with EPERM, rules that need a
 *     capability are in only when the container holds it (CAP_SYS_ADMIN
 *     brings mount, unshare, setns, ...; without it clone may not create
 *     namespaces and clone3 fails with ENOSYS so libcs fall back to clone);
 *   - Unconfined: no filter;
 *   - Localhost: localhost_ref is the absolute path of a profile file on
 *     the node ("localhost/" in front is tolerated, as containerd does), in
 *     Docker form (archMap, per-rule includes/excludes of caps, arches and
 *     minKernel) or OCI form (defaultAction, architectures, syscalls); it
 *     is converted to the OCI object for this host: archMap picks the
 *     host's entry, includes/excludes are decided here against the
 *     container's capabilities, the host arch and the running kernel;
 *   - privileged: no filter unless the profile is explicitly Localhost
 *     (an explicit file is the operator's deliberate choice);
 *   - no profile at all (no SecurityProfile message, no legacy path) is
 *     Unconfined, as the CRI defines it and containerd does; with
 *     default_when_empty (the seccomp_use_default_when_empty setting,
 *     CRI-O's) it is RuntimeDefault.
 *
 * Every syscall name is checked with libseccomp against the profile's
 * architectures (and the native one): a name libseccomp knows on none of
 * them is left out with a debug line, as runc does, so a profile written
 * for a newer kernel still loads.  A profile that is not JSON, or has an
 * unknown action, operator, architecture or flag, is EINVAL naming the
 * file; a missing file is EINVAL "seccomp profile X not found". */
#ifndef CRID_POD_SECCOMP_H
#define CRID_POD_SECCOMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "api.pb-c.h"

/* Largest profile file read (Docker's default is 20 KB). */
#define SECCOMP_PROFILE_MAX_SIZE (4 * 1024 * 1024)

/* The seccomp object for a container (or the pause container) whose
 * capability bounding set is `capabilities` (CAPABILITY_BIT numbering of
 * pod/capabilities.h; containerd and moby test the bounding set too).
 * *json is the caller's; NULL means unconfined.  EINVAL for a bad or
 * missing Localhost profile or an unknown profile type. */
int seccomp_profile_for(const Runtime__V1__SecurityProfile *profile, uint64_t capabilities,
                        bool privileged, bool default_when_empty, char **json, struct error *err);

/* The profile a security context asks for: its `seccomp` field, else the
 * deprecated seccomp_profile_path string that older kubelets and critest
 * v1.26 send (converted into *storage, which must outlive *out); NULL
 * when neither is set (Unconfined).  EINVAL for an unknown legacy path. */
int seccomp_profile_of_container(const Runtime__V1__LinuxContainerSecurityContext *sc,
                                 Runtime__V1__SecurityProfile *storage,
                                 const Runtime__V1__SecurityProfile **out, struct error *err);
int seccomp_profile_of_sandbox(const Runtime__V1__LinuxSandboxSecurityContext *sc,
                               Runtime__V1__SecurityProfile *storage,
                               const Runtime__V1__SecurityProfile **out, struct error *err);

/* The deprecated seccomp_profile_path string ("runtime/default",
 * "docker/default", "unconfined", "localhost/<path>") as a
 * SecurityProfile, for a client that sends only that field.  *out's
 * localhost_ref points into path.  Returns 1 and fills *out, 0 when path
 * is empty (nothing asked for), -1 (EINVAL) for anything else. */
int seccomp_profile_from_legacy_path(const char *path, Runtime__V1__SecurityProfile *out,
                                     struct error *err);

/* crid's built-in profile for this host and these capabilities. */
int seccomp_default_profile(uint64_t capabilities, char **json, struct error *err);

/* Converts a profile document (Docker or OCI form, len bytes) for this
 * host; `name` (the file) prefixes every error. */
int seccomp_profile_convert(const char *text, size_t len, const char *name, uint64_t capabilities,
                            char **json, struct error *err);

/* --- The built-in table (pod/seccomp_default.c) ------------------------ */

/* Docker's architecture names of includes/excludes "arches" (Go's
 * GOARCH spelling, "x86" for 386). */
enum seccomp_arch_bit
{
  SECCOMP_ARCH_AMD64 = 1 << 0,
  SECCOMP_ARCH_X86 = 1 << 1,
  SECCOMP_ARCH_X32 = 1 << 2,
  SECCOMP_ARCH_ARM = 1 << 3,
  SECCOMP_ARCH_ARM64 = 1 << 4,
  SECCOMP_ARCH_PPC64LE = 1 << 5,
  SECCOMP_ARCH_S390 = 1 << 6,
  SECCOMP_ARCH_S390X = 1 << 7,
  SECCOMP_ARCH_RISCV64 = 1 << 8,
};

enum seccomp_builtin_action
{
  SECCOMP_BUILTIN_ALLOW,
  SECCOMP_BUILTIN_ERRNO,
};

enum seccomp_builtin_op
{
  SECCOMP_BUILTIN_EQ,
  SECCOMP_BUILTIN_NE,
  SECCOMP_BUILTIN_MASKED_EQ,
};

struct seccomp_builtin_rule
{
  const char *names; /* space-separated */
  enum seccomp_builtin_action action;
  int errno_ret; /* SECCOMP_BUILTIN_ERRNO only */
  /* In only when the container holds every one of caps_all, none of
   * caps_none; when arches is non-zero the host's arch is one of them,
   * and never when it is one of not_arches; when min_kernel is non-zero
   * the kernel is at least that (major << 8 | minor). */
  uint64_t caps_all;
  uint64_t caps_none;
  unsigned arches;
  unsigned not_arches;
  unsigned min_kernel;
  /* One argument condition at most: Docker's profile needs no more. */
  bool has_arg;
  unsigned arg_index;
  uint64_t arg_value;
  uint64_t arg_value_two;
  enum seccomp_builtin_op arg_op;
};

extern const struct seccomp_builtin_rule seccomp_builtin_rules[];
extern const size_t seccomp_builtin_n_rules;

#endif
