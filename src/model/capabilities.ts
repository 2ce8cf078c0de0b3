/**
 * Linux capabilities as App specs and `--allowed-capabilities` name them:
 * without the `CAP_` prefix, as Docker's `--cap-add` and a pod's
 * `securityContext.capabilities` spell them. Every container starts with all
 * of them dropped; an App adds back named ones the server allows.
 */

/** Every capability of Linux 5.9 (`include/uapi/linux/capability.h`). */
export const LINUX_CAPABILITIES = [
  'CHOWN',
  'DAC_OVERRIDE',
  'DAC_READ_SEARCH',
  'FOWNER',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
  'SETPCAP',
  'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE',
  'NET_BROADCAST',
  'NET_ADMIN',
  'NET_RAW',
  'IPC_LOCK',
  'IPC_OWNER',
  'SYS_MODULE',
  'SYS_RAWIO',
  'SYS_CHROOT',
  'SYS_PTRACE',
  'SYS_PACCT',
  'SYS_ADMIN',
  'SYS_BOOT',
  'SYS_NICE',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_TTY_CONFIG',
  'MKNOD',
  'LEASE',
  'AUDIT_WRITE',
  'AUDIT_CONTROL',
  'SETFCAP',
  'MAC_OVERRIDE',
  'MAC_ADMIN',
  'SYSLOG',
  'WAKE_ALARM',
  'BLOCK_SUSPEND',
  'AUDIT_READ',
  'PERFMON',
  'BPF',
  'CHECKPOINT_RESTORE',
] as const;
export type Capability = (typeof LINUX_CAPABILITIES)[number];

/**
 * What an App may add back unless the operator says otherwise: Docker's
 * default set without NET_RAW (raw sockets forge packets on the host's
 * network), which is the Kubernetes Pod Security Standards' "baseline".
 * NET_ADMIN, SYS_ADMIN and the rest reach into the host and need the
 * operator's `--allowed-capabilities`.
 */
export const BASELINE_CAPABILITIES: readonly Capability[] = [
  'AUDIT_WRITE',
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'MKNOD',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
];

export const isCapability = (name: string): name is Capability => (LINUX_CAPABILITIES as readonly string[]).includes(name);

/**
 * Reads `--allowed-capabilities`: comma-separated names, where `default`
 * stands for the baseline set and `none` (or nothing) for no capability at
 * all; `default,NET_ADMIN` allows the baseline and NET_ADMIN.
 *
 * @throws Error naming each word that is not a capability.
 */
export function parseCapabilityList(value: string): Capability[] {
  const words = value
    .split(',')
    .map((word) => word.trim().toUpperCase().replace(/^CAP_/, ''))
    .filter(Boolean);
  const unknown = words.filter((word) => word !== 'DEFAULT' && word !== 'NONE' && !isCapability(word));
  if (unknown.length) throw new Error(`${unknown.join(', ')}: not Linux capabilities (names such as NET_BIND_SERVICE, or "default" for the baseline set)`);
  const names = words.flatMap((word) => (word === 'DEFAULT' ? BASELINE_CAPABILITIES : word === 'NONE' ? [] : [word as Capability]));
  return [...new Set(names)].sort();
}
