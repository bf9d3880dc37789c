/** rlimit resource names (case-insensitive) and their Linux RLIMIT_* numbers (x86_64, aarch64). */
export const RLIMIT_RESOURCES: Readonly<Record<string, number>> = {
  cpu: 0,
  fsize: 1,
  data: 2,
  stack: 3,
  core: 4,
  rss: 5,
  nproc: 6,
  nofile: 7,
  memlock: 8,
  as: 9,
  locks: 10,
  sigpending: 11,
  msgqueue: 12,
  nice: 13,
  rtprio: 14,
  rttime: 15,
};

/** RLIM_INFINITY as the kernel's u64. */
export const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;

/** The resource number of a name (`'nofile'`, `'RLIMIT_NOFILE'`, `'NOFILE'`), or undefined. */
export function rlimitResource(name: string): number | undefined {
  const key = name.trim().toLowerCase().replace(/^rlimit_/, '');
  return Object.prototype.hasOwnProperty.call(RLIMIT_RESOURCES, key) ? RLIMIT_RESOURCES[key] : undefined;
}
