// Who may talk to the server: the Host check (against DNS rebinding) and the bearer token (for anything but a
// loopback bind). Not a user system: one shared token, compared in constant time; no sessions beyond a cookie copy.

import { createHash, timingSafeEqual } from "node:crypto";
import { networkInterfaces } from "node:os";

export interface AccessOptions {
  /** The shared secret; when set, every route but /healthz needs it. */
  token?: string;
  /** Host names (no port) the server answers to; others get 421. */
  hosts: ReadonlySet<string>;
}

/** Cookie the page's first load (`/?token=…`) sets, so its fetches, event streams and images carry the token. */
export const TOKEN_COOKIE = "cogview2_token";

/** Shortest token accepted (a guessable secret is no secret): 16 characters, e.g. `openssl rand -hex 16`. */
export const MIN_TOKEN_CHARS = 16;

const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "::1", "[::1]"];

/** Whether binding `host` keeps the server on this machine (no token needed). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * The Host names a server bound to `bindHost` answers to: the bound name, localhost and its loopback addresses,
 * the `extra` names (--allow-host), and, for a wildcard bind (0.0.0.0, ::), this machine's interface addresses.
 */
export function allowedHosts(bindHost: string, extra: string[] = []): Set<string> {
  const out = new Set<string>(LOOPBACK_NAMES);
  const norm = (h: string) => h.trim().toLowerCase().replace(/^\[|\]$/g, "");
  out.add(norm(bindHost));
  for (const h of extra) if (h.trim()) out.add(norm(h));
  if (bindHost === "0.0.0.0" || bindHost === "::" || bindHost === "[::]") {
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) out.add(norm(a.address));
    }
  }
  return out;
}

/** The host part of a Host header ("name:port", "[v6]:port"), lower-cased, brackets dropped. */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith("[")) return h.slice(1, h.indexOf("]") >= 0 ? h.indexOf("]") : undefined);
  const colon = h.lastIndexOf(":");
  return colon >= 0 && h.indexOf(":") === colon ? h.slice(0, colon) : h;
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Constant-time token comparison (both sides hashed first, so neither length nor prefix leaks through timing). */
export function tokenMatches(given: string | null | undefined, token: string): boolean {
  return timingSafeEqual(digest(given ?? ""), digest(token)) && given !== null && given !== undefined;
}

/** The token a request carries: `Authorization: Bearer …`, the page's cookie, or `?token=` (the page's first load). */
export function requestToken(req: Request, url: URL): string | null {
  const auth = req.headers.get("authorization");
  if (auth?.toLowerCase().startsWith("bearer ")) return auth.slice(7).trim();
  for (const part of (req.headers.get("cookie") ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === TOKEN_COOKIE) return decodeURIComponent(v.join("="));
  }
  return url.searchParams.get("token");
}
