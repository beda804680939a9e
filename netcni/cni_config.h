/* netcni/cni_config: finding the pod network.  Reads *.conf, *.conflist
 * and *.json from the CNI config directory in name order; the first valid
 * one is the default pod network (a .conf holds one plugin and is treated
 * as a list of one).  Until there is one, the node's network is not ready. */
#ifndef CRID_NETCNI_CNI_CONFIG_H
#define CRID_NETCNI_CNI_CONFIG_H

#include <stddef.h>

#include "common/error.h"

struct json_value;

struct cni_network_list
{
  char *file;                  /* the file it came from */
  char *name;                  /* the network's name */
  char *cni_version;           /* cniVersion of the list */
  struct json_value *plugins;  /* the "plugins" array (a one-element array for .conf) */
  struct json_value *document; /* owns the tree plugins points into */
  struct json_value *wrapped;  /* for .conf: the synthesized list, NULL otherwise */
};

/* Parses and validates one file. */
int cni_network_list_load(const char *path, struct cni_network_list **out, struct error *err);

/* *out = the default network of dir, or NULL when dir has no valid one
 * (each invalid file is logged once at debug level). */
int cni_config_load_default(const char *dir, struct cni_network_list **out, struct error *err);

/* The list as one conflist JSON text (a .conf comes back as a list of one),
 * kept with a sandbox so that DEL runs the configuration ADD ran. */
char *cni_network_list_to_text(const struct cni_network_list *list);
/* Parses conflist text as cni_network_list_to_text wrote it. */
int cni_network_list_parse(const char *name, const char *text, size_t len,
                           struct cni_network_list **out, struct error *err);

void cni_network_list_free(struct cni_network_list *list);

#endif
