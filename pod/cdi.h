/* pod/cdi: CDI devices for containers.  Owns the registry of the spec
 * files found in the configured directories (cdi_spec_dirs), kept current
 * by a common/dir_watch so a driver that installs a spec needs no restart;
 * the device names a CreateContainer asks for (ContainerConfig.CDI_devices
 * and cdi.k8s.io/ annotations); and their resolution into one list of
 * container edits that pod/oci_spec.c writes into config.json.
 *
 * Choices, where the CDI spec leaves them to the runtime:
 *   - a later directory of cdi_spec_dirs wins over an earlier one for the
 *     same device name (as the reference implementation ranks /var/run/cdi
 *     over /etc/cdi); the same name in two files of one directory is a
 *     conflict: the device cannot be used, and both files are named;
 *   - files are read in name order; only *.json and *.yaml are specs;
 *   - a bad spec file is logged and listed in Status' verbose info (key
 *     "cdi"); the other files keep working;
 *   - names come from CDI_devices first, then the container's cdi.k8s.io/
 *     annotations, then the pod's, by key; each device is applied once;
 *   - edits apply per spec (its spec-level edits once, before its first
 *     device), then each device's, in request order.  Two devices that set
 *     the same environment variable, device path or mount point to
 *     different things are a conflict (EINVAL naming both devices and
 *     their files); identical ones are applied once;
 *   - device nodes without type or major/minor take them (and the file
 *     mode, when not given) from the host node at hostPath (stat, so a
 *     symlink such as /dev/disk/by-id/... works);
 *   - intelRdt and netDevices edits are refused (ENOSYS) when a requested
 *     device carries them: crid applies neither yet;
 *   - "=all" is not part of any released spec version: it names a device
 *     called "all" when a spec defines one, like any other name. */
#ifndef CRID_POD_CDI_H
#define CRID_POD_CDI_H

#include "common/error.h"
#include "pod/cdi_spec.h"
#include "api.pb-c.h"

#define CDI_ANNOTATION_PREFIX "cdi.k8s.io/"

struct cdi_registry;
struct json_writer;

/* Loads the spec files of dirs (NULL-terminated, lowest priority first)
 * and watches the directories.  Never fails for a bad spec file or an
 * unwatchable directory (logged; then each resolution reads the files). */
struct cdi_registry *cdi_registry_open(char *const *dirs);
void cdi_registry_free(struct cdi_registry *registry);

/* The fully qualified device names a container asks for, each once, in
 * the order above; *names is NULL when none (caller frees with strv_free).
 * EINVAL naming the annotation for a name that is not fully qualified. */
int cdi_requested_devices(const Runtime__V1__ContainerConfig *config,
                          const Runtime__V1__PodSandboxConfig *sandbox_config, char ***names,
                          struct error *err);

/* The edits of the named devices, merged into *out (empty on entry; the
 * caller clears it).  ENOENT for an unknown device (naming it and the
 * directories searched) or a missing host device node, EINVAL for a
 * conflict, ENOSYS for an edit crid does not apply. */
int cdi_resolve(struct cdi_registry *registry, char *const *names, struct cdi_edits *out,
                struct error *err);

/* {"specDirs": [...], "devices": ["vendor.com/class=name", ...],
 *  "errors": [{"file": ..., "error": ...}]} for Status' verbose info. */
void cdi_registry_write_json(struct cdi_registry *registry, struct json_writer *writer);

#endif
