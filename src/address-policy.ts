// Where the ACS may send connection requests. A ConnectionRequestURL (or UDP address) is
// whatever the device reported, and anyone who can send an Inform can report anything: without
// a policy the ACS could be made to send requests to itself, to the cloud's metadata service
// (169.254.169.254) or to the operator's internal networks. So the address is checked after
// name resolution, just before connecting (a name that resolves to a refused address is
// refused too).
//
// Always refused: unspecified, link-local (metadata services live there), multicast, reserved
// and broadcast addresses. Loopback only when allowed (development and tests, where simulated
// CPEs listen on 127.0.0.1). Plus the networks the operator denies (ACS_CR_DENY_NETS). Private
// and carrier-grade NAT ranges stay allowed: that is where CPEs live.
import dns from 'node:dns';
import net from 'node:net';
import { parseCidr, plainIp, type Cidr } from './net-address';

export interface AddressPolicyOptions {
  allowLoopback: boolean;
  /** CIDRs the operator denies, e.g. "10.20.0.0/16" or "fd00:1::/32". */
  deny: readonly string[];
}

/** Error code of a connection refused by the policy (see lookup). */
export const REFUSED_CODE = 'ERR_ADDRESS_REFUSED';

type LookupAll = (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void;
type LookupOne = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

const ALWAYS: [string, number, 'ipv4' | 'ipv6', string][] = [
  ['0.0.0.0', 8, 'ipv4', 'an unspecified address'],
  ['169.254.0.0', 16, 'ipv4', 'a link-local address (cloud metadata services live there)'],
  ['224.0.0.0', 4, 'ipv4', 'a multicast address'],
  ['240.0.0.0', 4, 'ipv4', 'a reserved or broadcast address'],
  ['::', 128, 'ipv6', 'an unspecified address'],
  ['fe80::', 10, 'ipv6', 'a link-local address'],
  ['ff00::', 8, 'ipv6', 'a multicast address'],
];
const LOOPBACK: [string, number, 'ipv4' | 'ipv6'][] = [
  ['127.0.0.0', 8, 'ipv4'],
  ['::1', 128, 'ipv6'],
];

/** A CIDR from a setting; throws with the setting's name when it is not one. */
export function settingCidr(text: string, setting: string): Cidr {
  const c = parseCidr(text);
  if (!c) throw new Error(`${setting}: "${text}" is not a network in CIDR notation (e.g. 10.20.0.0/16)`);
  return c;
}

export class AddressPolicy {
  private readonly rules: { list: net.BlockList; why: string }[] = [];

  constructor(opts: AddressPolicyOptions) {
    for (const [a, n, f, why] of ALWAYS) this.rule(why).addSubnet(a, n, f);
    if (!opts.allowLoopback) {
      const list = this.rule('a loopback address (the ACS itself; allowed only with ACS_CR_ALLOW_LOOPBACK=true)');
      for (const [a, n, f] of LOOPBACK) list.addSubnet(a, n, f);
    }
    if (opts.deny.length) {
      const list = this.rule('a network denied by ACS_CR_DENY_NETS');
      for (const c of opts.deny) {
        const { address, prefix, family } = settingCidr(c, 'ACS_CR_DENY_NETS');
        list.addSubnet(address, prefix, family);
      }
    }
  }

  private rule(why: string): net.BlockList {
    const list = new net.BlockList();
    this.rules.push({ list, why });
    return list;
  }

  /** Why requests to this IP address are refused, or null when they may go. Not an IP: null. */
  refusal(address: string): string | null {
    const a = plainIp(address);
    if (!a) return null;
    const hit = this.rules.find((r) => r.list.check(a.ip, a.family));
    return hit ? `${a.ip} is ${hit.why}` : null;
  }

  /** An allowed address of the host (an IP literal is checked as it is); rejects with REFUSED_CODE. */
  resolve(host: string): Promise<{ address: string; family: number }> {
    const why = this.refusal(host);
    if (why) return Promise.reject(Object.assign(new Error(why), { code: REFUSED_CODE }));
    return new Promise((done, fail) =>
      this.lookup(host, {}, ((err: NodeJS.ErrnoException | null, address: string, family: number) => (err ? fail(err) : done({ address, family }))) as LookupOne),
    );
  }

  /**
   * A dns.lookup for http.request that drops refused addresses, and fails with REFUSED_CODE when
   * none is left. IP literals never reach a lookup: check them with refusal().
   */
  readonly lookup = (hostname: string, options: dns.LookupOptions, callback: LookupAll | LookupOne): void => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      const fail = (e: NodeJS.ErrnoException) => (options.all ? (callback as LookupAll)(e, []) : (callback as LookupOne)(e, '', 0));
      if (err) return fail(err);
      const reasons: string[] = [];
      const ok = addresses.filter((a) => {
        const why = this.refusal(a.address);
        if (why) reasons.push(why);
        return !why;
      });
      if (!ok.length) {
        return fail(Object.assign(new Error(`${hostname} resolves only to refused addresses: ${reasons.join('; ')}`), { code: REFUSED_CODE }));
      }
      if (options.all) (callback as LookupAll)(null, ok);
      else (callback as LookupOne)(null, ok[0].address, ok[0].family);
    });
  };
}
