/**
 * A seccomp filter for the sandboxed command (bwrap --seccomp): a classic BPF program, written out
 * here since no library is needed for a deny list. It refuses (EPERM) the system calls a build or a
 * shell has no use for and that widen the kernel's attack surface from a user namespace: keyrings,
 * userfaultfd, perf, bpf, io_uring, module and kexec loading, mounts (old and new API), swap, reboot,
 * namespaces (setns, and clone/unshare with CLONE_NEWUSER: no nested user namespaces), handles to
 * files by inode, the kernel log. clone3 answers ENOSYS, so the C library falls back to clone, whose
 * flags the filter can see. Calls of another ABI (i386, x32) are killed: their numbers differ.
 * Undefined on an architecture we have no numbers for (the sandbox then runs without a filter).
 */
const ALLOW = 0x7fff0000;
const KILL_PROCESS = 0x80000000;
const errno = (n: number) => 0x00050000 | n;
const EPERM = 1;
const ENOSYS = 38;
const CLONE_NEWUSER = 0x10000000;

const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const JSET_K = 0x45;
const RET_K = 0x06;

/** seccomp_data: nr at 0, arch at 4, args[0] (its low half, little-endian) at 16. */
const NR = 0;
const ARCH = 4;
const ARG0 = 16;

interface Arch { audit: number; x32?: boolean; deny: number[]; clone: number; unshare: number; clone3: number }

const ARCHES: Partial<Record<NodeJS.Architecture, Arch>> = {
  x64: {
    audit: 0xc000003e, x32: true, clone: 56, unshare: 272, clone3: 435,
    // keyctl add_key request_key userfaultfd perf_event_open bpf kexec_load kexec_file_load init_module
    // finit_module delete_module acct swapon swapoff reboot mount umount2 pivot_root setns
    // open_by_handle_at name_to_handle_at io_uring_{setup,enter,register} open_tree move_mount fsopen
    // fsconfig fsmount fspick mount_setattr quotactl syslog lookup_dcookie vhangup iopl ioperm
    deny: [250, 248, 249, 323, 298, 321, 246, 320, 175, 313, 176, 163, 167, 168, 169, 165, 166, 155, 308, 304, 303, 425, 426, 427, 428, 429, 430, 431, 432, 433, 442, 179, 103, 212, 153, 172, 173],
  },
  arm64: {
    audit: 0xc00000b7, clone: 220, unshare: 97, clone3: 435,
    // the same calls, in the generic table's numbers (no iopl/ioperm there)
    deny: [219, 217, 218, 282, 241, 280, 104, 294, 105, 273, 106, 89, 224, 225, 142, 40, 39, 41, 268, 265, 264, 425, 426, 427, 428, 429, 430, 431, 432, 433, 442, 60, 116, 18, 58],
  },
};

/** The filter for this machine's architecture, as the bytes of a sock_filter array. */
export function seccompProgram(arch: NodeJS.Architecture = process.arch): Uint8Array | undefined {
  const a = ARCHES[arch];
  if (!a) return undefined;
  const p: [number, number, number, number][] = [];
  const op = (code: number, jt: number, jf: number, k: number) => void p.push([code, jt, jf, k]);
  op(LD_W_ABS, 0, 0, ARCH);
  op(JEQ_K, 1, 0, a.audit);
  op(RET_K, 0, 0, KILL_PROCESS);
  op(LD_W_ABS, 0, 0, NR);
  if (a.x32) {
    op(JGE_K, 0, 1, 0x40000000);
    op(RET_K, 0, 0, KILL_PROCESS);
  }
  for (const nr of a.deny) {
    op(JEQ_K, 0, 1, nr);
    op(RET_K, 0, 0, errno(EPERM));
  }
  op(JEQ_K, 0, 1, a.clone3);
  op(RET_K, 0, 0, errno(ENOSYS));
  for (const nr of [a.clone, a.unshare]) {
    // Not this call: skip its four instructions. Else allowed unless it asks for a user namespace.
    op(JEQ_K, 0, 4, nr);
    op(LD_W_ABS, 0, 0, ARG0);
    op(JSET_K, 0, 1, CLONE_NEWUSER);
    op(RET_K, 0, 0, errno(EPERM));
    op(RET_K, 0, 0, ALLOW);
  }
  op(RET_K, 0, 0, ALLOW);
  const bytes = new Uint8Array(p.length * 8);
  const view = new DataView(bytes.buffer);
  p.forEach(([code, jt, jf, k], i) => {
    view.setUint16(i * 8, code, true);
    view.setUint8(i * 8 + 2, jt);
    view.setUint8(i * 8 + 3, jf);
    view.setUint32(i * 8 + 4, k, true);
  });
  return bytes;
}
