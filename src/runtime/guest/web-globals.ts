/**
 * Installs the small Web APIs every Worker expects on its global scope: DOMException, events,
 * abort signals, text encoding, base64, `navigator` and `self`. Like Web IDL's interface objects and
 * operations, each global is writable, configurable and not enumerable.
 */
import { AbortController, AbortSignal } from "./abort.ts";
import { atob, btoa } from "./base64.ts";
import { DOMException } from "./dom-exception.ts";
import { TextDecoder, TextEncoder } from "./encoding.ts";
import { CustomEvent, Event, EventTarget } from "./events.ts";

/** `navigator` as on Workers: what it reports is fixed (no fingerprinting, no host detail). */
class Navigator {
  get userAgent(): string {
    return "Cloudflare-Workers";
  }
  get hardwareConcurrency(): number {
    return 1;
  }
  get language(): string {
    return "en";
  }
}
Object.defineProperty(Navigator.prototype, Symbol.toStringTag, { value: "Navigator", configurable: true });

export function installWebGlobals(g: typeof globalThis): void {
  const globals: Record<string, unknown> = {
    DOMException,
    Event,
    EventTarget,
    CustomEvent,
    AbortController,
    AbortSignal,
    TextEncoder,
    TextDecoder,
    atob,
    btoa,
    navigator: new Navigator(),
    self: g,
  };
  for (const name of Object.keys(globals)) {
    Object.defineProperty(g, name, { value: globals[name], writable: true, enumerable: false, configurable: true });
  }
}
