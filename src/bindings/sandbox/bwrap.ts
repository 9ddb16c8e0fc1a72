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
  /** The size of the private /tmp (a tmpfs, so memory: it is also charged to the memory cgroup). */
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
}

export function bwrapArgs(plan: BwrapPlan): string[] {
  const args = ["--unshare-all", "--die-with-parent", "--new-session", "--hostname", "sandbox"];
  if (plan.bridged) args.push("--info-fd", "3", "--block-fd", "4");
  if (plan.rootfs !== undefined) args.push("--ro-bind", plan.rootfs, "/");
  else args.push(...systemRoot());
  args.push(
    "--proc", "/proc",
    "--dev", "/dev",
    "--size", String(plan.tmpMb * 2 ** 20), "--tmpfs", "/tmp",
    plan.workspaceWritable ? "--bind" : "--ro-bind", plan.workspaceDir, "/workspace",
    // The root bwrap builds the mounts on is a tmpfs: read-only too, so nothing outside /tmp and /workspace is writable.
    "--remount-ro", "/",
    "--chdir", plan.cwd,
    "--", plan.command, ...plan.args,
  );
  return args;
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
