/* pod/sweep: the last step of recovery.  Once every record on disk has
 * been loaded, rolled back or salvaged, whatever is left under crid's
 * directories, in its OCI runtimes' state, in its monitors, mounts, IP
 * leases and cgroups that belongs to no listed pod or container is
 * removed, each object logged once with what was found of it: nothing
 * crid can no longer see survives a start. */
#ifndef CRID_POD_SWEEP_H
#define CRID_POD_SWEEP_H

struct pod_manager;

void pod_sweep(struct pod_manager *manager);

#endif
