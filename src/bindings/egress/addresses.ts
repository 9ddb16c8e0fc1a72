import ipaddr from "ipaddr.js";

/**
 * Whether an address is one a gateway must not connect to unless a rule allows it: everything that is
 * not global unicast (private, loopback, link-local incl. 169.254.169.254 metadata, unique-local,
 * carrier-grade NAT, multicast, reserved, unspecified...). IPv4-mapped and IPv4-compatible IPv6
 * addresses are judged as the IPv4 address they carry. Parsing is ipaddr.js's, which reads every
 * IPv4 notation (octal, hex, short forms) the way the WHATWG URL parser normalizes them.
 */
export function isPrivateAddress(address: string): boolean {
  let ip: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    ip = ipaddr.process(address.replace(/^\[|\]$/g, ""));
  } catch {
    return true; // not an address we understand: refuse
  }
  if (ip.kind() === "ipv6") {
    const v6 = ip as ipaddr.IPv6;
    // ::a.b.c.d (deprecated IPv4-compatible) and 64:ff9b::/96 (NAT64) carry an IPv4 address too.
    const parts = v6.parts;
    if (parts.slice(0, 6).every((p) => p === 0) || v6.range() === "rfc6052") {
      return isPrivateAddress(ipaddr.fromByteArray(v6.toByteArray().slice(12)).toString());
    }
  }
  return ip.range() !== "unicast";
}
