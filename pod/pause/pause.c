/* crid-pause: the infra process of every pod.  It holds the pod's
 * namespaces open by existing, reaps the zombies of a shared PID namespace,
 * and exits 0 on SIGTERM or SIGINT.
 *
 * One copy runs in every pod and its memory is charged to the pod's cgroup,
 * so it is built without a C library (-nostdlib -static): a few KB on disk,
 * a few pages resident.  It makes the system calls itself, which is why it
 * is written for x86_64 only; it uses the same calls the glibc build did
 * (rt_sigaction, pause, wait4, write, exit_group, plus rt_sigreturn when a
 * handler returns), so a pod's seccomp profile that allowed the old pause
 * allows this one. */
#include "version.h"

#if !defined(__x86_64__)
#error "crid-pause makes raw x86_64 system calls; port pod/pause/pause.c to this architecture"
#endif

#include <asm/unistd.h>
#include <linux/signal.h>
#include <linux/wait.h>
#include <stddef.h>

#define STDOUT_FD 1

/* The kernel's struct sigaction for rt_sigaction on x86_64 (not libc's). */
struct kernel_sigaction
{
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)(void);
  unsigned long mask;
};

#define KERNEL_SA_RESTORER 0x04000000UL

static long
syscall0(long number)
{
  long ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(number) : "rcx", "r11", "memory");
  return ret;
}

static long
syscall1(long number, long a)
{
  long ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(number), "D"(a) : "rcx", "r11", "memory");
  return ret;
}

static long
syscall3(long number, long a, long b, long c)
{
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(number), "D"(a), "S"(b), "d"(c)
                   : "rcx", "r11", "memory");
  return ret;
}

static long
syscall4(long number, long a, long b, long c, long d)
{
  long ret;
  register long r10 __asm__("r10") = d;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(number), "D"(a), "S"(b), "d"(c), "r"(r10)
                   : "rcx", "r11", "memory");
  return ret;
}

static __attribute__((noreturn)) void
exit_now(int code)
{
  for (;;)
    syscall1(__NR_exit_group, code);
}

/* Where a signal handler returns to: the kernel needs a trampoline that
 * calls rt_sigreturn, which a C library would otherwise provide. */
void pause_restore_signal(void);
_Static_assert(__NR_rt_sigreturn == 15, "the trampoline below calls rt_sigreturn as 15");
__asm__(".text\n"
        ".type pause_restore_signal,@function\n"
        "pause_restore_signal:\n"
        "  mov $15, %eax\n"
        "  syscall\n"
        "  hlt\n");

static void
on_stop(int signo)
{
  exit_now(0);
}

/* Every child that has ended, as the init of a shared PID namespace must;
 * a handler that runs on SIGCHLD only, so no errno needs saving. */
static void
on_child(int signo)
{
  while (syscall4(__NR_wait4, -1, 0, WNOHANG, 0) > 0)
    ;
}

static int
handle(int signo, void (*handler)(int), unsigned long flags)
{
  struct kernel_sigaction action = {
    .handler = handler,
    .flags = flags | KERNEL_SA_RESTORER,
    .restorer = pause_restore_signal,
    .mask = 0,
  };
  return (int)syscall4(__NR_rt_sigaction, signo, (long)&action, 0, sizeof action.mask);
}

static size_t
length(const char *text)
{
  size_t n = 0;
  while (text[n])
    n++;
  return n;
}

static int
same(const char *a, const char *b)
{
  while (*a && *a == *b)
    a++, b++;
  return *a == *b;
}

static void
say(const char *text)
{
  if (syscall3(__NR_write, STDOUT_FD, (long)text, (long)length(text)) < 0)
    exit_now(1);
}

/* Called by _start with the initial stack: argc, then argv. */
__attribute__((noreturn, used)) void
pause_main(long *stack)
{
  long argc = stack[0];
  char **argv = (char **)(stack + 1);

  if (argc > 1 && (same(argv[1], "--version") || same(argv[1], "-v")))
    {
      say("crid-pause " CRID_VERSION "\n");
      exit_now(0);
    }
  if (handle(SIGINT, on_stop, 0) < 0 || handle(SIGTERM, on_stop, 0) < 0
      || handle(SIGCHLD, on_child, SA_NOCLDSTOP | SA_RESTART) < 0)
    exit_now(1);
  for (;;)
    syscall0(__NR_pause);
}

/* The entry point: the stack pointer addresses argc; the ABI wants it
 * 16-byte aligned at a call. */
__asm__(".text\n"
        ".global _start\n"
        ".type _start,@function\n"
        "_start:\n"
        "  xor %ebp, %ebp\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call pause_main\n"
        "  hlt\n");
