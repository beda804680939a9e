/* pod/user: the numeric user of a container's process.
 *
 * OCI wants numbers only (process.user), so crid resolves names itself,
 * from the /etc/passwd and /etc/group of the container's own root file
 * system, as containerd and CRI-O do.  Those files come from an image,
 * that is from anyone: they are opened with openat2(RESOLVE_IN_ROOT),
 * so a symlink or ".." in them resolves inside the rootfs as it would
 * for the container, never to a file of the host (a careful walk, one
 * component and one symlink at a time, does the same on kernels without
 * openat2); only regular files are read, and at most USER_FILE_MAX_SIZE.
 *
 * Rules (CRI comments, containerd/CRI-O practice):
 *   - the user comes from run_as_user, else run_as_username, else the
 *     image config's User ("name", "uid", "name:group", "uid:gid", and
 *     the mixed forms); nothing at all is root.  run_as_user wins over
 *     run_as_username when both are set (as CRI-O; kubelet sends one);
 *   - a uid needs no passwd entry (its gid is then 0, unless given);
 *     a name must have one, and a group name must be in /etc/group:
 *     EINVAL naming it otherwise;
 *   - the primary gid is run_as_group if set, else the image User's
 *     group part (only when the user came from the image), else the
 *     passwd entry's, else 0; run_as_group without run_as_user or
 *     run_as_username is EINVAL, as containerd and CRI-O refuse it;
 *   - additional gids: the primary gid first (kubelet reports it among
 *     the supplemental groups, ContainerStatus.user), then with
 *     SupplementalGroupsPolicy Merge the groups of /etc/group that list
 *     the user's passwd name, then supplemental_groups; duplicates
 *     dropped, order kept.  Strict leaves out /etc/group;
 *   - run_as_non_root (kubelet checks it itself; crid checks it too when
 *     a caller asks) refuses a resolved uid 0. */
#ifndef CRID_POD_USER_H
#define CRID_POD_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "pod/oci_spec.h"
#include "api.pb-c.h"

#define USER_FILE_MAX_SIZE (8 * 1024 * 1024)
/* The kernel's NGROUPS_MAX: setgroups(2) takes no more. */
#define USER_MAX_GROUPS 65536

/* What is asked for; every field may be NULL/0/empty. */
struct user_request
{
  const Runtime__V1__Int64Value *run_as_user;
  const char *run_as_username;
  const Runtime__V1__Int64Value *run_as_group;
  const int64_t *supplemental_groups;
  size_t n_supplemental_groups;
  bool strict_groups; /* SupplementalGroupsPolicy Strict */
  bool run_as_non_root;
  const char *image_user; /* the image config's User; NULL or "" = root */
};

struct user_resolved
{
  struct oci_user user; /* user.additional_gids points at gids */
  uint32_t *gids;
  char *name; /* the passwd name of the uid; NULL when it has none */
};

/* The request of a container (sc may be NULL) run from an image whose
 * config User is image_user.  Pointers into sc and image_user. */
void user_request_for_container(const Runtime__V1__LinuxContainerSecurityContext *sc,
                                const char *image_user, struct user_request *out);

/* The request of a pod's pause container (sc may be NULL). */
void user_request_for_sandbox(const Runtime__V1__LinuxSandboxSecurityContext *sc,
                              struct user_request *out);

/* Resolves req against the rootfs at `rootfs` (NULL: no files, numeric
 * ids only).  out is cleared first; release it with user_resolved_clear
 * (also after a failure). */
int user_resolve(const char *rootfs, const struct user_request *req, struct user_resolved *out,
                 struct error *err);

void user_resolved_clear(struct user_resolved *resolved);

/* ImageStatus's Image.uid / Image.username from a config User string:
 * the part before ':' is a uid when it is a number, else a user name
 * (as containerd reports it).  *username is the caller's, NULL when the
 * user is a uid or when user is empty (then *has_uid is false too). */
void user_image_split(const char *user, bool *has_uid, int64_t *uid, char **username);

/* Opens path (relative to root_fd, "/"s and ".." allowed) for reading as
 * if root_fd were "/": symlinks, absolute ones included, and ".."
 * never leave it.  openat2(RESOLVE_IN_ROOT) unless walk is true or the
 * kernel lacks it; walk exists for the tests of the fallback.  Returns
 * the fd, or -1 with errno set (ENOENT, ELOOP, ...) and err filled. */
int user_open_in_root(int root_fd, const char *path, bool walk, struct error *err);

#endif
