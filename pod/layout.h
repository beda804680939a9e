/* pod/layout: where pods and containers live on disk.  The one owner of
 * these paths; everything else asks for them here.
 *
 *   <root>/sandboxes/<id>/         a pod's record (request.pb, state.json),
 *                                  hostname, resolv.conf, bundle/ (the
 *                                  pause's OCI bundle)
 *   <root>/containers/<id>/        a container's record, its OCI bundle
 *                                  (config.json), rootfs/, upper/, work/,
 *                                  image-volumes/, idmapped/
 *   <state>/sandboxes/<id>/shm     a pod's /dev/shm
 *   <state>/ns/<id>/               a pod's pinned namespaces (pod/namespace.h)
 *   <state>/conmon/<id>/           a monitor's files, a container's or a
 *                                  pause's (pod/monitor.h)
 *   <state>/exits/<id>             the exit file a monitor writes
 *
 * <root> survives reboots, <state> does not.  Paths are allocated; the
 * caller frees them. */
#ifndef CRID_POD_LAYOUT_H
#define CRID_POD_LAYOUT_H

struct pod_manager;

/* The directories that hold one entry per object id. */
enum layout_area
{
  LAYOUT_SANDBOXES,  /* <root>/sandboxes */
  LAYOUT_CONTAINERS, /* <root>/containers */
  LAYOUT_POD_STATE,  /* <state>/sandboxes */
  LAYOUT_NAMESPACES, /* <state>/ns */
  LAYOUT_MONITORS,   /* <state>/conmon */
  LAYOUT_EXITS,      /* <state>/exits */
};

char *layout_area(const struct pod_manager *manager, enum layout_area area);
/* <area>/<id> */
char *layout_entry(const struct pod_manager *manager, enum layout_area area, const char *id);

char *layout_sandbox_dir(const struct pod_manager *manager, const char *id);
char *layout_pause_bundle(const struct pod_manager *manager, const char *id);
char *layout_shm_path(const struct pod_manager *manager, const char *id);
char *layout_namespace_dir(const struct pod_manager *manager, const char *id);
char *layout_container_dir(const struct pod_manager *manager, const char *id);
char *layout_monitor_dir(const struct pod_manager *manager, const char *id);

#endif
