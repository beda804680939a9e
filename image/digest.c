/* image/digest: sha256 through OpenSSL's EVP interface, rendered the way
 * registries and image configs write digests ("sha256:<64 lower hex>"). */
#include "image/digest.h"
#include "common/util.h"

#include <openssl/evp.h>
#include <stdlib.h>

struct digester
{
  EVP_MD_CTX *ctx;
};

/* OpenSSL fails here only when out of memory or when sha256 is missing
 * from the library, and neither leaves anything sensible to do. */
static void
check_openssl(int ok)
{
  if (ok != 1)
    abort();
}

struct digester *
digester_new(void)
{
  struct digester *d = xmalloc(sizeof *d);

  d->ctx = EVP_MD_CTX_new();
  if (d->ctx == NULL)
    abort();
  check_openssl(EVP_DigestInit_ex(d->ctx, EVP_sha256(), NULL));
  return d;
}

void
digester_update(struct digester *d, const void *data, size_t len)
{
  if (len > 0)
    check_openssl(EVP_DigestUpdate(d->ctx, data, len));
}

static void
format_digest(const unsigned char *hash, char out[72])
{
  static const char hex[] = "0123456789abcdef";
  char *p = out;

  for (const char *s = "sha256:"; *s; s++)
    *p++ = *s;
  for (int i = 0; i < 32; i++)
    {
      *p++ = hex[hash[i] >> 4];
      *p++ = hex[hash[i] & 0xf];
    }
  *p = '\0';
}

void
digester_finish(struct digester *d, char out[72])
{
  unsigned char hash[EVP_MAX_MD_SIZE];
  unsigned int len = 0;

  check_openssl(EVP_DigestFinal_ex(d->ctx, hash, &len));
  if (len != 32)
    abort();
  format_digest(hash, out);
  digester_free(d);
}

void
digester_free(struct digester *d)
{
  if (d == NULL)
    return;
  EVP_MD_CTX_free(d->ctx);
  free(d);
}

void
digest_buffer(const void *data, size_t len, char out[72])
{
  struct digester *d = digester_new();

  digester_update(d, data, len);
  digester_finish(d, out);
}
