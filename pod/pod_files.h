/* pod/pod_files: the files a sandbox owns for its containers: hostname,
 * resolv.conf built from the CRI DNSConfig, and the pod's /dev/shm tmpfs. */
#ifndef CRID_POD_POD_FILES_H
#define CRID_POD_POD_FILES_H

#include <stdint.h>

#include "common/error.h"
#include "api.pb-c.h"

int pod_write_hostname(const char *path, const char *hostname, struct error *err);

/* resolv.conf from dns (servers, searches, options); NULL or empty dns:
 * a copy of the host's /etc/resolv.conf. */
int pod_write_resolv_conf(const char *path, const Runtime__V1__DNSConfig *dns, struct error *err);

/* Mounts a tmpfs of size bytes at path (created). */
int pod_mount_shm(const char *path, int64_t size, struct error *err);
/* Unmounts and removes path; missing is fine. */
int pod_unmount_shm(const char *path, struct error *err);

#endif
