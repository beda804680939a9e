/* The on-disk paths of pods and containers; see layout.h. */
#include "pod/layout.h"
#include "pod/pod_manager.h"
#include "common/util.h"

#include <stdlib.h>

char *
layout_area(const struct pod_manager *manager, enum layout_area area)
{
  const char *root = manager->options.root, *state = manager->options.state_dir;

  switch (area)
    {
    case LAYOUT_SANDBOXES:
      return xasprintf("%s/sandboxes", root);
    case LAYOUT_CONTAINERS:
      return xasprintf("%s/containers", root);
    case LAYOUT_POD_STATE:
      return xasprintf("%s/sandboxes", state);
    case LAYOUT_NAMESPACES:
      return xasprintf("%s/ns", state);
    case LAYOUT_MONITORS:
      return xasprintf("%s/conmon", state);
    case LAYOUT_EXITS:
      return xasprintf("%s/exits", state);
    }
  return xstrdup(state);
}

char *
layout_entry(const struct pod_manager *manager, enum layout_area area, const char *id)
{
  char *dir = layout_area(manager, area);
  char *path = xasprintf("%s/%s", dir, id);

  free(dir);
  return path;
}

char *
layout_sandbox_dir(const struct pod_manager *manager, const char *id)
{
  return layout_entry(manager, LAYOUT_SANDBOXES, id);
}

char *
layout_pause_bundle(const struct pod_manager *manager, const char *id)
{
  return xasprintf("%s/sandboxes/%s/bundle", manager->options.root, id);
}

char *
layout_shm_path(const struct pod_manager *manager, const char *id)
{
  return xasprintf("%s/sandboxes/%s/shm", manager->options.state_dir, id);
}

char *
layout_namespace_dir(const struct pod_manager *manager, const char *id)
{
  return layout_entry(manager, LAYOUT_NAMESPACES, id);
}

char *
layout_container_dir(const struct pod_manager *manager, const char *id)
{
  return layout_entry(manager, LAYOUT_CONTAINERS, id);
}

char *
layout_monitor_dir(const struct pod_manager *manager, const char *id)
{
  return layout_entry(manager, LAYOUT_MONITORS, id);
}
