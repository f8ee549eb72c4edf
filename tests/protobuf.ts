// Minimal protobuf writer, enough to build ONNX ModelProto bytes field by field in tests.
export const varint = (n: number): number[] => {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
};
const utf8 = new TextEncoder();
/** A length-delimited field (wire type 2). */
export const len = (field: number, bytes: number[] | Uint8Array) => [
  ...varint(field * 8 + 2),
  ...varint(bytes.length),
  ...bytes,
];
/** A varint field (wire type 0). */
export const num = (field: number, v: number) => [...varint(field * 8), ...varint(v)];
export const str = (field: number, s: string) => len(field, utf8.encode(s));
