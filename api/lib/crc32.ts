// The one CRC-32 (IEEE 802.3, as zip, gzip and PNG use it): the zip reader checks members with it,
// the PNG decoder its chunks, and the IDX-to-PNG writer stamps them. fflate has one inside but does
// not export it.

let TABLE: Uint32Array | null = null;

/** Running CRC-32: pass the previous value as `crc` to continue across chunks. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  if (!TABLE) {
    TABLE = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      TABLE[n] = c >>> 0;
    }
  }
  const t = TABLE;
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = (t[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return ~c >>> 0;
}
