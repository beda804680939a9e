/* image/reference: image references as users and kubelets write them,
 * parsed and normalised (docker.io/library/NAME:latest for short names),
 * following the grammar of the distribution reference library. */
#ifndef CRID_IMAGE_REFERENCE_H
#define CRID_IMAGE_REFERENCE_H

#include <stdbool.h>

#include "common/error.h"

struct image_reference
{
  char *domain; /* "docker.io", "localhost:5000", "[::1]:5000" */
  char *path;   /* "library/busybox" */
  char *tag;    /* NULL when only a digest was given */
  char *digest; /* "sha256:<64 hex>" or NULL */
};

/* Parses and normalises text.  Invalid: -1, EINVAL, saying what is wrong. */
int image_reference_parse(const char *text, struct image_reference *out, struct error *err);
void image_reference_free(struct image_reference *ref);

/* "domain/path" */
char *image_reference_name(const struct image_reference *ref);
/* "domain/path:tag", or NULL without a tag */
char *image_reference_tagged(const struct image_reference *ref);
/* "domain/path@digest", or NULL without a digest */
char *image_reference_digested(const struct image_reference *ref);
/* The full normalised form: "domain/path[:tag][@digest]" */
char *image_reference_string(const struct image_reference *ref);

/* True for "sha256:<64 lower-case hex>". */
bool digest_is_valid(const char *digest);

#endif
