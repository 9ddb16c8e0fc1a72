/**
 * The bubblewrap command line of one sandboxed command: new user, pid, network, mount, ipc, uts and
 * cgroup namespaces; a read-only system root; private /tmp, minimal /proc and /dev; the workspace's
 * copy at /workspace; nothing else of the host. bwrap is run by an unprivileged user (see limits.ts),
 * so even the files of the system root it can see are read with that user's rights.
 */
import { lstatSync, readlinkSync } from "node:fs";

/** What the default root shows of the host: the system's programs, libraries and configuration only. */
const SYSTEM_DIRS = ["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc"];

export interface BwrapPlan {
  /** A directory to show read-only as `/`; undefined: the host's system directories. */
  rootfs: string | undefined;
  /** The size of the private /tmp and /dev/shm (tmpfs, so memory: also charged to the memory cgroup). */
  tmpMb: number;
  /** The host directory shown at /workspace. */
  workspaceDir: string;
  workspaceWritable: boolean;
  /** The command's working directory inside the sandbox. */
  cwd: string;
  command: string;
  args: string[];
  /** Network through the host's proxy: bwrap reports its child's pid on fd 3 and waits on fd 4 (see run.ts). */
  bridged?: boolean;
  /** A seccomp program is passed on fd 5 (see seccomp.ts). */
  seccomp?: boolean;
}

export function bwrapArgs(plan: BwrapPlan): string[] {
  const args = ["--unshare-all", "--die-with-parent", "--new-session", "--hostname", "sandbox"];
  if (plan.bridged) args.push("--info-fd", "3", "--block-fd", "4");
  if (plan.seccomp) args.push("--seccomp", "5");
  if (plan.rootfs !== undefined) args.push("--ro-bind", plan.rootfs, "/");
  else args.push(...systemRoot());
  args.push(
    "--proc", "/proc",
    ...minimalDev(plan.tmpMb),
    "--size", String(plan.tmpMb * 2 ** 20), "--tmpfs", "/tmp",
    plan.workspaceWritable ? "--bind" : "--ro-bind", plan.workspaceDir, "/workspace",
    // The root bwrap builds the mounts on is a tmpfs: read-only too, so nothing outside /tmp and /workspace is writable.
    "--remount-ro", "/",
    "--chdir", plan.cwd,
    "--", plan.command, ...plan.args,
  );
  return args;
}

/**
 * A /dev with only the harmless devices (bound from the host, as bwrap's own --dev does), the fd links,
 * and a /dev/shm. Not `--dev`: it needs devpts, for which an unprivileged bwrap becomes root in a first
 * user namespace and nests a second one for the command, and the network namespace then belongs to
 * the first, out of the bridge's reach (see forwarder.ts). So there is no /dev/pts (no terminals).
 */
function minimalDev(shmMb: number): string[] {
  const out = ["--tmpfs", "/dev"];
  for (const d of ["null", "zero", "full", "random", "urandom"]) out.push("--dev-bind", `/dev/${d}`, `/dev/${d}`);
  out.push("--symlink", "/proc/self/fd", "/dev/fd", "--symlink", "/proc/self/fd/0", "/dev/stdin", "--symlink", "/proc/self/fd/1", "/dev/stdout", "--symlink", "/proc/self/fd/2", "/dev/stderr");
  out.push("--size", String(shmMb * 2 ** 20), "--tmpfs", "/dev/shm");
  return out;
}

/** The host's system directories, read-only; those that are symbolic links (merged /usr) stay links. */
function systemRoot(): string[] {
  const out: string[] = [];
  for (const name of SYSTEM_DIRS) {
    const path = `/${name}`;
    let st;
    try {
      st = lstatSync(path);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) out.push("--symlink", readlinkSync(path), path);
    else if (st.isDirectory()) out.push("--ro-bind", path, path);
  }
  return out;
}
