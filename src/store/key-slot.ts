/**
 * The Redis Cluster hash slot of a key: CRC16 (XMODEM) of the key, or of its
 * hash tag (the text between the first `{` and the next `}`, when not empty),
 * modulo 16384. The gateway needs it to know which master holds a key, so
 * that it can wait for that master's replicas; Redis's own `CLUSTER KEYSLOT`
 * agrees with it (checked by the cluster tests).
 */

const SLOTS = 16384;

const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc;
}

/** The part of `key` that decides its slot: its hash tag, if it has a non-empty one. */
export function hashedPart(key: string): string {
  const open = key.indexOf("{");
  if (open === -1) return key;
  const close = key.indexOf("}", open + 1);
  if (close === -1 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

export function keySlot(key: string): number {
  return crc16(Buffer.from(hashedPart(key), "utf8")) % SLOTS;
}
