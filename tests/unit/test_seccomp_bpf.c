/* Unit tests of pod/seccomp_bpf: a compiled profile is the program
 * libseccomp makes from the same rules (repeated argument indexes ORed,
 * rules with the default action left out), the program loads and filters
 * in a child process, the cache hands out copies, and profiles that need
 * the runtime (notify) or that libseccomp cannot express are refused or
 * passed over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/cleanup.h"
#include "common/error.h"
#include "pod/capabilities.h"
#include "pod/seccomp.h"
#include "pod/seccomp_bpf.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <openssl/evp.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* personality(0) and personality(8) allowed, any other value refused;
 * getppid allowed; everything else EPERM. */
static const char small_profile[]
    = "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"architectures\":[\"SCMP_ARCH_X86_64\"],"
      "\"syscalls\":["
      "{\"names\":[\"getppid\",\"exit_group\",\"exit\",\"write\"],\"action\":\"SCMP_ACT_ALLOW\"},"
      "{\"names\":[\"getpid\"],\"action\":\"SCMP_ACT_ERRNO\"},"
      "{\"names\":[\"personality\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":["
      "{\"index\":0,\"value\":0,\"op\":\"SCMP_CMP_EQ\"},"
      "{\"index\":0,\"value\":8,\"op\":\"SCMP_CMP_EQ\"}]}]}";

static unsigned char *
decode(const char *base64, size_t *len)
{
  size_t in = strlen(base64);
  unsigned char *out = malloc(in);
  int n = EVP_DecodeBlock(out, (const unsigned char *)base64, (int)in);

  assert_true(n >= 0);
  /* EVP_DecodeBlock counts the padding as zero bytes. */
  while (in > 0 && base64[--in] == '=')
    n--;
  *len = (size_t)n;
  return out;
}

static unsigned char *
expected_small_program(size_t *len)
{
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
  int fd = memfd_create("expected", 0);
  unsigned char *program;
  struct stat st;

  assert_non_null(ctx);
  seccomp_arch_add(ctx, SCMP_ARCH_X86_64);
  seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(getppid), 0);
  seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(exit_group), 0);
  seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(exit), 0);
  seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 0);
  seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(personality), 1, SCMP_A0(SCMP_CMP_EQ, 0));
  seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(personality), 1, SCMP_A0(SCMP_CMP_EQ, 8));
  assert_int_equal(seccomp_export_bpf(ctx, fd), 0);
  seccomp_release(ctx);
  assert_int_equal(fstat(fd, &st), 0);
  program = malloc((size_t)st.st_size);
  assert_int_equal(pread(fd, program, (size_t)st.st_size, 0), st.st_size);
  close(fd);
  *len = (size_t)st.st_size;
  return program;
}

static void
test_same_program_as_libseccomp(void **state)
{
  struct error err = ERROR_INIT;
  cleanup_free char *base64 = NULL;
  cleanup_free unsigned char *got = NULL;
  cleanup_free unsigned char *want = NULL;
  size_t got_len, want_len;

  (void)state;
  assert_int_equal(seccomp_bpf_compile(small_profile, &base64, &err), 0);
  assert_non_null(base64);
  got = decode(base64, &got_len);
  want = expected_small_program(&want_len);
  assert_int_equal(got_len, want_len);
  assert_memory_equal(got, want, want_len);
}

/* Loads the program in a child and reports what the syscalls answered. */
static void
test_program_filters(void **state)
{
  struct error err = ERROR_INIT;
  cleanup_free char *base64 = NULL;
  cleanup_free unsigned char *program = NULL;
  size_t len;
  int status;
  pid_t pid;

  (void)state;
  assert_int_equal(seccomp_bpf_compile(small_profile, &base64, &err), 0);
  program = decode(base64, &len);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    {
      struct sock_fprog prog = { .len = (unsigned short)(len / sizeof(struct sock_filter)),
                                 .filter = (struct sock_filter *)program };
      int code = 0;

      if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0
          || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
        _exit(10);
      if (syscall(SYS_getppid) < 0)
        code |= 1;
      if (syscall(SYS_getpid) != -1 || errno != EPERM)
        code |= 2;
      if (syscall(SYS_personality, 0xffffffffUL) != -1 || errno != EPERM)
        code |= 4;
      if (syscall(SYS_personality, 8UL) < 0)
        code |= 8;
      syscall(SYS_exit_group, code);
    }
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

static void
test_default_profile_compiles_and_is_cached(void **state)
{
  struct error err = ERROR_INIT;
  cleanup_free char *profile = NULL;
  cleanup_free char *first = NULL;
  cleanup_free char *second = NULL;
  cleanup_free char *uncached = NULL;

  (void)state;
  assert_int_equal(seccomp_default_profile(capabilities_default(), &profile, &err), 0);
  assert_int_equal(seccomp_bpf_for(profile, &first, &err), 0);
  assert_int_equal(seccomp_bpf_for(profile, &second, &err), 0);
  assert_int_equal(seccomp_bpf_compile(profile, &uncached, &err), 0);
  assert_non_null(first);
  assert_true(first != second);
  assert_string_equal(first, second);
  assert_string_equal(first, uncached);
  assert_int_equal(strlen(first) % 4, 0);
}

static void
test_notify_is_left_to_the_runtime(void **state)
{
  struct error err = ERROR_INIT;
  char *base64 = (char *)"unchanged";

  (void)state;
  assert_int_equal(seccomp_bpf_compile("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
                                       "{\"names\":[\"mount\"],\"action\":\"SCMP_ACT_NOTIFY\"}]}",
                                       &base64, &err),
                   0);
  assert_null(base64);
  base64 = (char *)"unchanged";
  assert_int_equal(seccomp_bpf_compile("{\"defaultAction\":\"SCMP_ACT_ALLOW\","
                                       "\"listenerPath\":\"/run/agent.sock\"}",
                                       &base64, &err),
                   0);
  assert_null(base64);
}

static void
test_bad_profiles_refused(void **state)
{
  static const char *const bad[] = {
    "{\"defaultAction\":\"SCMP_ACT_SOMETIMES\"}",
    "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"defaultErrnoRet\":1}",
    "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"architectures\":[\"SCMP_ARCH_VAX\"]}",
    "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"read\"],"
    "\"action\":\"SCMP_ACT_MAYBE\"}]}",
    "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"read\"],"
    "\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":9,\"value\":1,\"op\":\"SCMP_CMP_EQ\"}]}]}",
    "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"read\"],"
    "\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,\"value\":1,\"op\":\"SCMP_CMP_ISH\"}]}]}",
    "not json",
  };

  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      struct error err = ERROR_INIT;
      char *base64 = NULL;

      if (seccomp_bpf_compile(bad[i], &base64, &err) == 0)
        fail_msg("profile accepted: %s", bad[i]);
      assert_int_equal(err.code, EINVAL);
      assert_null(base64);
      error_clear(&err);
    }
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_same_program_as_libseccomp),
    cmocka_unit_test(test_program_filters),
    cmocka_unit_test(test_default_profile_compiles_and_is_cached),
    cmocka_unit_test(test_notify_is_left_to_the_runtime),
    cmocka_unit_test(test_bad_profiles_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
