import type { Service, ServiceState } from "./index.ts";

/**
 * The Encoding Standard's legacy encodings (windows-1252, utf-16le/be, shift_jis, gbk, big5, the
 * iso-8859 family, ...) for the guest's TextDecoder, decoded by Node's own TextDecoder (ICU), so the
 * guest decodes exactly as Node does. UTF-8 never comes here: the runtime decodes it itself. Bytes in,
 * a string out; a decoder in streaming mode keeps its state here, named by the guest's number.
 */

const STATE = "encoding";
/** Streaming decoders kept per isolate; past this the least recently used one is dropped. */
const MAX_STREAMS = 64;

function streams(state: ServiceState): Map<number, TextDecoder> {
  let m = state.store.get(STATE) as Map<number, TextDecoder> | undefined;
  if (!m) state.store.set(STATE, (m = new Map()));
  return m;
}

export const encodingService: Service = {
  sync: {
    /** Encoding §4.2 "get an encoding": the canonical name, or a RangeError (Node's, as the spec's). */
    resolve(_state, label: string): string {
      return new TextDecoder(String(label)).encoding;
    },

    /** Encoding §8.1.3 decode(): `id` names the guest decoder whose stream state lives here. */
    decode(state, id: number, encoding: string, fatal: boolean, ignoreBOM: boolean, bytes: Uint8Array, stream: boolean): string {
      if (!(bytes instanceof Uint8Array)) throw new TypeError("decode() takes bytes.");
      const open = streams(state);
      let decoder = open.get(id);
      open.delete(id);
      decoder ??= new TextDecoder(String(encoding), { fatal: !!fatal, ignoreBOM: !!ignoreBOM });
      try {
        const text = decoder.decode(bytes, { stream: !!stream });
        if (stream) {
          open.set(id, decoder);
          if (open.size > MAX_STREAMS) open.delete(open.keys().next().value!);
        }
        return text;
      } catch (e) {
        // Node's "ERR_ENCODING_INVALID_ENCODED_DATA" is the spec's TypeError (§8.1.3 step 5.4).
        throw Object.assign(new TypeError(`Failed to execute 'decode' on 'TextDecoder': The encoded data was not valid ${encoding}.`), { cause: e });
      }
    },
  },
};
