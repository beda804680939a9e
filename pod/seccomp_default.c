/* pod/seccomp_default: the RuntimeDefault profile of crid as data.
 *
 * The syscall set is that of Docker's default seccomp profile, which
 * containerd's CRI plugin uses for RuntimeDefault too: a container may do
 * what an unprivileged process normally needs, and the calls that manage
 * the host (mounts, namespaces, modules, clocks, tracing other processes,
 * ...) only with the capability that would allow them anyway.  Keeping
 * the same set means a workload that runs under containerd or Docker with
 * RuntimeDefault runs under crid unchanged.  The default action (EPERM)
 * and the host's architectures are added by pod/seccomp.c. */
#include "pod/seccomp.h"
#include "pod/capabilities.h"

#include <errno.h>
#include <linux/capability.h>
#include <sched.h>

#define CAP(name) CAPABILITY_BIT(CAP_##name)

/* The namespace flags an unprivileged clone may not carry. */
#define CLONE_NAMESPACE_FLAGS                                                                      \
  (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET         \
   | CLONE_NEWCGROUP)

/* personality(2) values a program may set (or query with 0xffffffff):
 * PER_LINUX, PER_LINUX32, UNAME26 and their combination. */
#define PERSONALITY_RULE(value)                                                                    \
  {                                                                                                \
    .names = "personality", .action = SECCOMP_BUILTIN_ALLOW, .has_arg = true, .arg_index = 0,      \
    .arg_value = (value), .arg_op = SECCOMP_BUILTIN_EQ                                             \
  }

#define ALLOW(list) .names = (list), .action = SECCOMP_BUILTIN_ALLOW
#define WITH_CAP(list, caps)                                                                       \
  {                                                                                                \
    ALLOW(list), .caps_all = (caps)                                                                \
  }
#define ON_ARCH(list, archs)                                                                       \
  {                                                                                                \
    ALLOW(list), .arches = (archs)                                                                 \
  }

/* The kernel before 4.8 let ptrace change a syscall after seccomp
 * checked it. */
#define KERNEL_4_8 ((4u << 8) | 8u)

const struct seccomp_builtin_rule seccomp_builtin_rules[] = {
  { ALLOW("accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32 "
          "clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime "
          "clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect "
          "copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl "
          "epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 "
          "execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 "
          "fallocate fanotify_mark fchdir fchmod fchmodat fchown fchown32 fchownat fcntl "
          "fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat "
          "fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_time64 "
          "futex_waitv futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid "
          "geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid "
          "getpgrp getpid getppid getpriority getrandom getresgid getresgid32 getresuid "
          "getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt "
          "get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch "
          "inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy "
          "io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup "
          "io_submit io_uring_enter io_uring_register io_uring_setup ipc kill "
          "landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32 "
          "lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr lseek "
          "lsetxattr lstat lstat64 madvise membarrier memfd_create memfd_secret mincore mkdir "
          "mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr "
          "mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend "
          "mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock "
          "munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open openat "
          "openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free "
          "pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 "
          "process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead "
          "readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg "
          "remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq "
          "rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn "
          "rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo "
          "sched_getaffinity sched_getattr sched_getparam sched_get_priority_max "
          "sched_get_priority_min sched_getscheduler sched_rr_get_interval "
          "sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam "
          "sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop "
          "semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid "
          "setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer "
          "setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid "
          "setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt "
          "set_thread_area set_tid_address setuid setuid32 setxattr shmat shmctl shmdt shmget "
          "shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall "
          "socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync "
          "sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete "
          "timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64 "
          "timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 "
          "times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime "
          "utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write "
          "writev") },
  { ALLOW("process_vm_readv process_vm_writev ptrace"), .min_kernel = KERNEL_4_8 },
  /* Every socket but AF_VSOCK (40), which reaches the host or VM
   * outside the pod's network namespace. */
  { ALLOW("socket"), .has_arg = true, .arg_index = 0, .arg_value = 40,
    .arg_op = SECCOMP_BUILTIN_NE },
  PERSONALITY_RULE(0x0),
  PERSONALITY_RULE(0x8),
  PERSONALITY_RULE(0x20000),
  PERSONALITY_RULE(0x20008),
  PERSONALITY_RULE(0xffffffff),
  ON_ARCH("sync_file_range2 swapcontext", SECCOMP_ARCH_PPC64LE),
  ON_ARCH("arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls",
          SECCOMP_ARCH_ARM | SECCOMP_ARCH_ARM64),
  ON_ARCH("arch_prctl", SECCOMP_ARCH_AMD64 | SECCOMP_ARCH_X32),
  ON_ARCH("modify_ldt", SECCOMP_ARCH_AMD64 | SECCOMP_ARCH_X32 | SECCOMP_ARCH_X86),
  ON_ARCH("s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr",
          SECCOMP_ARCH_S390 | SECCOMP_ARCH_S390X),
  ON_ARCH("riscv_flush_icache", SECCOMP_ARCH_RISCV64),
  WITH_CAP("open_by_handle_at", CAP(DAC_READ_SEARCH)),
  WITH_CAP("bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount "
           "mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd "
           "setdomainname sethostname setns syslog umount umount2 unshare",
           CAP(SYS_ADMIN)),
  /* Without CAP_SYS_ADMIN: clone without namespace flags only (the flags
   * are the second argument on s390), and clone3, whose flags live in
   * memory seccomp cannot read, fails as if missing so libcs use clone. */
  { ALLOW("clone"), .caps_none = CAP(SYS_ADMIN),
    .not_arches = SECCOMP_ARCH_S390 | SECCOMP_ARCH_S390X, .has_arg = true, .arg_index = 0,
    .arg_value = CLONE_NAMESPACE_FLAGS, .arg_op = SECCOMP_BUILTIN_MASKED_EQ },
  { ALLOW("clone"), .caps_none = CAP(SYS_ADMIN), .arches = SECCOMP_ARCH_S390 | SECCOMP_ARCH_S390X,
    .has_arg = true, .arg_index = 1, .arg_value = CLONE_NAMESPACE_FLAGS,
    .arg_op = SECCOMP_BUILTIN_MASKED_EQ },
  { .names = "clone3",
    .action = SECCOMP_BUILTIN_ERRNO,
    .errno_ret = ENOSYS,
    .caps_none = CAP(SYS_ADMIN) },
  WITH_CAP("reboot", CAP(SYS_BOOT)),
  WITH_CAP("chroot", CAP(SYS_CHROOT)),
  WITH_CAP("delete_module init_module finit_module", CAP(SYS_MODULE)),
  WITH_CAP("acct", CAP(SYS_PACCT)),
  WITH_CAP("kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace",
           CAP(SYS_PTRACE)),
  WITH_CAP("iopl ioperm", CAP(SYS_RAWIO)),
  WITH_CAP("settimeofday stime clock_settime clock_settime64", CAP(SYS_TIME)),
  WITH_CAP("vhangup", CAP(SYS_TTY_CONFIG)),
  WITH_CAP("get_mempolicy mbind set_mempolicy set_mempolicy_home_node", CAP(SYS_NICE)),
  WITH_CAP("syslog", CAP(SYSLOG)),
  WITH_CAP("bpf", CAP(BPF)),
  WITH_CAP("perf_event_open", CAP(PERFMON)),
};

const size_t seccomp_builtin_n_rules
    = sizeof(seccomp_builtin_rules) / sizeof(seccomp_builtin_rules[0]);
