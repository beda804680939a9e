/* image/digest: sha256 over streamed bytes, for verifying blobs while they
 * download and computing diff ids while layers unpack. */
#ifndef CRID_IMAGE_DIGEST_H
#define CRID_IMAGE_DIGEST_H

#include <stddef.h>

struct digester;

struct digester *digester_new(void);
void digester_update(struct digester *d, const void *data, size_t len);
/* Writes "sha256:<64 hex>" (72 bytes with NUL) and frees d. */
void digester_finish(struct digester *d, char out[72]);
void digester_free(struct digester *d);

/* "sha256:<hex>" of one buffer. */
void digest_buffer(const void *data, size_t len, char out[72]);

#endif
