/* pod/capabilities: the five capability sets of a container's process.
 *
 * A set is a bit mask, bit n standing for capability number n (the
 * kernel's numbering, CAP_CHOWN = 0), so set arithmetic is plain bit
 * arithmetic and a set is written as OCI names only at the end.
 *
 * Rules (cri-api Capability comment, containerd/CRI-O practice):
 *   - the base is containerd's (Docker's) default set of 14, in bounding,
 *     effective and permitted only: never in inheritable, since
 *     CVE-2022-24769 (an inheritable cap would reach a non-root program
 *     through file capabilities);
 *   - add_capabilities go to bounding, effective, permitted and
 *     inheritable (every set but ambient);
 *   - add_ambient_capabilities go to all five sets (ambient needs the cap
 *     in permitted and inheritable);
 *   - drop_capabilities remove from all five sets;
 *   - "ALL" is allowed in add and drop (and in ambient: every cap of
 *     the bounding set); applied in this order, as
 *     containerd does: add ALL, drop ALL, single adds, single drops,
 *     ambient adds; so drop ALL + add NET_BIND_SERVICE leaves one cap and
 *     add ALL + drop CHOWN leaves all but one;
 *   - names come with or without the CAP_ prefix, in any case; libcap
 *     validates them, an unknown name is EINVAL naming it;
 *   - every set is limited to the host's bounding set (CapBnd of crid
 *     itself): a runtime cannot grant what crid does not hold, so "all
 *     capabilities" means all in crid's bounding set;
 *   - privileged: all capabilities of the bounding set in bounding,
 *     effective and permitted (add/drop are ignored, as containerd does). */
#ifndef CRID_POD_CAPABILITIES_H
#define CRID_POD_CAPABILITIES_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/json.h"
#include "api.pb-c.h"

struct capability_sets
{
  uint64_t bounding;
  uint64_t effective;
  uint64_t permitted;
  uint64_t inheritable;
  uint64_t ambient;
};

#define CAPABILITY_BIT(cap) (UINT64_C(1) << (cap))

/* containerd's default set (docs/facts/oci-runtime.md §5). */
uint64_t capabilities_default(void);

/* Every capability number libcap knows a name for (0 .. cap_max_bits-1). */
uint64_t capabilities_known(void);

/* The bounding set of crid itself (CapBnd in /proc/self/status), limited
 * to the capabilities libcap can name. */
int capabilities_host_bounding(uint64_t *out, struct error *err);

/* Parses the CapBnd line's hex value out of /proc/<pid>/status text. */
int capabilities_parse_status(const char *status_text, uint64_t *out, struct error *err);

/* One CRI name ("NET_ADMIN", "cap_net_admin", "CAP_Kill") to its number.
 * "ALL" is not a capability: EINVAL here; callers handle it first. */
int capability_from_name(const char *name, int *cap, struct error *err);

/* The OCI name ("CAP_NET_ADMIN") of a capability number; caller frees.
 * NULL when libcap has no name for it. */
char *capability_oci_name(int cap);

/* The sets of a container from its CRI Capability message (NULL = none)
 * over host_bounding, as described above. */
int capabilities_compute(const Runtime__V1__Capability *cri, bool privileged,
                         uint64_t host_bounding, struct capability_sets *out, struct error *err);

/* Writes the OCI process.capabilities object (the key is the caller's). */
void capabilities_write_json(struct json_writer *writer, const struct capability_sets *sets);

#endif
