// IP address helpers shared by the places that match addresses against networks (connection
// request policy, storage regions): CIDR parsing and the plain form of an address.
import { isIP } from 'node:net';

export interface Cidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/** "a.b.c.d/n" or "x::/n" (surrounding spaces allowed); null for anything else. */
export function parseCidr(text: string): Cidr | null {
  const [address = '', bits, extra] = text.trim().split('/');
  const v = isIP(address);
  if (!v || extra !== undefined || bits === undefined || !/^\d{1,3}$/.test(bits)) return null;
  const prefix = Number(bits);
  if (prefix > (v === 4 ? 32 : 128)) return null;
  return { address, prefix, family: v === 4 ? 'ipv4' : 'ipv6' };
}

/**
 * The address to match: brackets and an IPv4-mapped IPv6 prefix (::ffff:1.2.3.4 is the IPv4
 * address) removed, with its family; null when it is not an IP address.
 */
export function plainIp(addr: string | undefined): { ip: string; family: 'ipv4' | 'ipv6' } | null {
  if (!addr) return null;
  let a = addr.trim().replace(/^\[(.*)\]$/, '$1');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped) a = mapped[1];
  const v = isIP(a);
  return v ? { ip: a, family: v === 4 ? 'ipv4' : 'ipv6' } : null;
}
