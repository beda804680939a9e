/* pod/seccomp_bpf: seccomp filters compiled by crid for runtimes that
 * take them ready-made.
 *
 * crun turns linux.seccomp into a BPF program with libseccomp at every
 * `create`; for the default profile that costs about 10 ms, a third of
 * the whole create.  crun also accepts the program itself, base64, in the
 * annotation run.oci.seccomp_bpf_data, and then loads it as it is.  crid
 * compiles each distinct profile once with the same libseccomp calls crun
 * makes (same library, so the same program, byte for byte), and keeps the
 * results in a small cache shared by every pod and container.
 *
 * Profiles with a notify action or a listener are never compiled here:
 * the runtime has to set up the listener itself. */
#ifndef CRID_POD_SECCOMP_BPF_H
#define CRID_POD_SECCOMP_BPF_H

#include "common/error.h"

/* The annotation crun reads the compiled program from. */
#define SECCOMP_BPF_ANNOTATION "run.oci.seccomp_bpf_data"

/* Compiles an OCI linux.seccomp object (JSON text, as pod/seccomp.h makes
 * it) into *base64 (the caller's), without the cache.  Returns 0 with
 * *base64 NULL for a profile that must be left to the runtime; EINVAL for
 * an action, operator or architecture libseccomp does not know. */
int seccomp_bpf_compile(const char *oci_json, char **base64, struct error *err);

/* seccomp_bpf_compile through the cache. */
int seccomp_bpf_for(const char *oci_json, char **base64, struct error *err);

#endif
