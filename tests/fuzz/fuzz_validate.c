/* libFuzzer harness for crid/validate: unpacked requests of every CRI
 * method, as the gRPC wrapper checks them.
 *
 *   clang -g -fsanitize=fuzzer,address -D_GNU_SOURCE -Ulinux -I. -Ibuild/gen \
 *         tests/fuzz/fuzz_validate.c crid/validate.c pod/oci_spec.c pod/capabilities.c \
 *         pod/seccomp_bpf.c pod/cgroup.c common/*.c build/gen/api.pb-c.c \
 *         -lprotobuf-c -lyajl -lseccomp -lcap -lcrypto -o fuzz_validate && ./fuzz_validate \
 *         -max_total_time=60
 *
 * The first byte picks the method, the rest is its request on the wire.
 * A request that decodes either passes, and then every string in it is
 * UTF-8, or fails with EINVAL and a short message of printable ASCII
 * (what it quotes is escaped and cut). */
#include "crid/validate.h"
#include "common/util.h"
#include "api.pb-c.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void
check(bool ok)
{
  if (!ok)
    abort();
}

/* Every string reachable from m is UTF-8 (the property validation gives). */
static void
check_strings(const ProtobufCMessage *m)
{
  const ProtobufCMessageDescriptor *d = m->descriptor;

  for (unsigned i = 0; i < d->n_fields; i++)
    {
      const ProtobufCFieldDescriptor *f = &d->fields[i];
      const char *member = (const char *)m + f->offset;
      size_t n = 1;
      void *const *items = (void *const *)member;

      if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
        continue;
      if (f->label == PROTOBUF_C_LABEL_REPEATED)
        {
          n = *(const size_t *)((const char *)m + f->quantifier_offset);
          items = *(void *const *const *)member;
        }
      for (size_t j = 0; j < n; j++)
        {
          if (items[j] == NULL)
            continue;
          if (f->type == PROTOBUF_C_TYPE_STRING)
            check(utf8_is_valid(items[j], strlen(items[j])));
          else
            check_strings(items[j]);
        }
    }
}

static const ProtobufCMessageDescriptor *
input_of(uint8_t pick)
{
  const ProtobufCServiceDescriptor *runtime = &runtime__v1__runtime_service__descriptor;
  const ProtobufCServiceDescriptor *image = &runtime__v1__image_service__descriptor;
  unsigned n = runtime->n_methods + image->n_methods;
  unsigned i = pick % n;

  return i < runtime->n_methods ? runtime->methods[i].input
                                : image->methods[i - runtime->n_methods].input;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const ProtobufCMessageDescriptor *type;
  ProtobufCMessage *request;
  struct error err = ERROR_INIT;

  if (size == 0)
    return 0;
  type = input_of(data[0]);
  request = protobuf_c_message_unpack(type, NULL, size - 1, data + 1);
  if (request == NULL)
    return 0;
  if (validate_request(request, &err) == 0)
    check_strings(request);
  else
    {
      check(err.code == EINVAL && err.message != NULL);
      check(strlen(err.message) < 1024);
      for (const char *p = err.message; *p; p++)
        check((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
      error_clear(&err);
    }
  protobuf_c_message_free_unpacked(request, NULL);
  return 0;
}
