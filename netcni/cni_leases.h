/* netcni/cni_leases: who holds the addresses of a network.  The
 * host-local IPAM plugin keeps one file per leased address in
 * <dataDir>/<network name>/ (dataDir from its ipam configuration, else
 * /var/lib/cni/networks), holding the container id and interface name
 * it was given at ADD.  Recovery reads them to find leases of pods crid
 * no longer knows, so that a CNI DEL gives them back. */
#ifndef CRID_NETCNI_CNI_LEASES_H
#define CRID_NETCNI_CNI_LEASES_H

#include "common/error.h"

struct cni_network_list;

#define CNI_HOST_LOCAL_DEFAULT_DIR "/var/lib/cni/networks"

/* The container ids holding host-local leases of list's network (each
 * once; NULL-terminated, strv_free).  A network without host-local IPAM
 * has none. */
char **cni_lease_holders(const struct cni_network_list *list);

#endif
