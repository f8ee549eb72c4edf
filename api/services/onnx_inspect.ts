// Reads just enough of an ONNX ModelProto (protobuf) to check what a manifest claims — graph inputs,
// outputs, opset and which external-data files the initializers point at — without loading a
// runtime. Field numbers are from onnx/onnx.proto3.

/** A graph input or output: its element type (TensorProto.DataType) and dims (number, symbol or null). */
export type OnnxValue = { name: string; elemType: number; shape: (number | string | null)[] | null };

export type OnnxSummary = {
  irVersion: number;
  opset: number;
  inputs: string[];
  outputs: string[];
  inputInfo: OnnxValue[];
  outputInfo: OnnxValue[];
  externalDataFiles: string[];
  initializers: number;
  /**
   * Per external-data file: the end of the furthest initializer stored in it (offset + length), so
   * a caller can check the file holds every byte the graph will read.
   */
  externalDataEnd: Record<string, number>;
};

/** Bytes per element of the ONNX TensorProto.DataType values initializers use. */
const ELEM_BYTES: Record<number, number> = {
  1: 4,
  2: 1,
  3: 1,
  4: 2,
  5: 2,
  6: 4,
  7: 8,
  9: 1,
  10: 2,
  11: 8,
  12: 4,
  13: 8,
  16: 2,
};
export const ONNX_INT64 = 7;
export const ONNX_FLOAT = 1;

class Reader {
  pos = 0;
  constructor(
    private readonly buf: Uint8Array,
    private readonly end = buf.length,
  ) {}
  get done() {
    return this.pos >= this.end;
  }
  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end) throw new Error("truncated varint");
      const b = this.buf[this.pos++] as number;
      // Values above 2^53 never occur in the fields we read; multiplication keeps >32-bit lengths exact.
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 63) throw new Error("varint too long");
    }
  }
  /** Returns [fieldNumber, wireType]. */
  tag(): [number, number] {
    const t = this.varint();
    return [Math.floor(t / 8), t & 7];
  }
  bytes(): Uint8Array {
    const len = this.varint();
    if (this.pos + len > this.end) throw new Error("truncated field");
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
  skip(wire: number) {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
    if (this.pos > this.end) throw new Error("truncated field");
  }
}

const utf8 = new TextDecoder();

function fields(buf: Uint8Array, visit: (field: number, wire: number, r: Reader) => boolean) {
  const r = new Reader(buf);
  while (!r.done) {
    const [field, wire] = r.tag();
    if (!visit(field, wire, r)) r.skip(wire);
  }
}

// ValueInfoProto { name = 1; TypeProto type = 2 } → TypeProto { Tensor tensor_type = 1 } →
// Tensor { int32 elem_type = 1; TensorShapeProto shape = 2 } → { repeated Dimension dim = 1 } →
// Dimension { int64 dim_value = 1; string dim_param = 2 }.
function valueInfo(buf: Uint8Array): OnnxValue {
  const out: OnnxValue = { name: "", elemType: 0, shape: null };
  fields(buf, (f, w, r) => {
    if (f === 1 && w === 2) out.name = utf8.decode(r.bytes());
    else if (f === 2 && w === 2) {
      fields(r.bytes(), (tf, tw, tr) => {
        if (tf !== 1 || tw !== 2) return false;
        fields(tr.bytes(), (xf, xw, xr) => {
          if (xf === 1 && xw === 0) out.elemType = xr.varint();
          else if (xf === 2 && xw === 2) {
            const shape: (number | string | null)[] = [];
            fields(xr.bytes(), (sf, sw, sr) => {
              if (sf !== 1 || sw !== 2) return false;
              let dim: number | string | null = null;
              fields(sr.bytes(), (df, dw, dr) => {
                if (df === 1 && dw === 0) dim = dr.varint();
                else if (df === 2 && dw === 2) dim = utf8.decode(dr.bytes());
                else return false;
                return true;
              });
              shape.push(dim);
              return true;
            });
            out.shape = shape;
          } else return false;
          return true;
        });
        return true;
      });
    } else return false;
    return true;
  });
  return out;
}

type TensorInfo = { name: string; location: string | null; end: number | null };

// TensorProto { repeated int64 dims = 1; int32 data_type = 2; string name = 8;
// repeated StringStringEntryProto external_data = 13; DataLocation data_location = 14 }.
function tensorInfo(buf: Uint8Array): TensorInfo {
  let location: string | null = null;
  let external = false;
  let name = "";
  let dataType = 0;
  let offset = 0;
  let length: number | null = null;
  const dims: number[] = [];
  fields(buf, (f, w, r) => {
    if (f === 1 && w === 0) dims.push(r.varint());
    else if (f === 1 && w === 2) {
      const packed = new Reader(r.bytes());
      while (!packed.done) dims.push(packed.varint());
    } else if (f === 2 && w === 0) dataType = r.varint();
    else if (f === 8 && w === 2) name = utf8.decode(r.bytes());
    else if (f === 14 && w === 0) external = r.varint() === 1;
    else if (f === 13 && w === 2) {
      let key = "";
      let value = "";
      fields(r.bytes(), (f2, w2, r2) => {
        if (w2 !== 2) return false;
        if (f2 === 1) key = utf8.decode(r2.bytes());
        else if (f2 === 2) value = utf8.decode(r2.bytes());
        else return false;
        return true;
      });
      if (key === "location") location = value;
      else if (key === "offset") offset = Number(value);
      else if (key === "length") length = Number(value);
    } else return false;
    return true;
  });
  if (!external) return { name, location: null, end: null };
  const elem = ELEM_BYTES[dataType];
  const size = length ?? (elem === undefined ? null : dims.reduce((a, b) => a * b, 1) * elem);
  return { name, location, end: size === null || !Number.isFinite(offset) ? null : offset + size };
}

/** Parses an ONNX file's header and graph signature; throws with a reason when it is not ONNX. */
export function inspectOnnx(bytes: Uint8Array): OnnxSummary {
  const out: OnnxSummary = {
    irVersion: 0,
    opset: 0,
    inputs: [],
    outputs: [],
    inputInfo: [],
    outputInfo: [],
    externalDataFiles: [],
    initializers: 0,
    externalDataEnd: {},
  };
  let sawGraph = false;
  const external = new Set<string>();
  const initNames = new Set<string>();
  const inputs: OnnxValue[] = [];
  fields(bytes, (f, w, r) => {
    if (f === 1 && w === 0) {
      out.irVersion = r.varint();
      return true;
    }
    if (f === 8 && w === 2) {
      let domain = "";
      let version = 0;
      fields(r.bytes(), (f2, w2, r2) => {
        if (f2 === 1 && w2 === 2) domain = utf8.decode(r2.bytes());
        else if (f2 === 2 && w2 === 0) version = r2.varint();
        else return false;
        return true;
      });
      if (domain === "" || domain === "ai.onnx") out.opset = Math.max(out.opset, version);
      return true;
    }
    if (f === 7 && w === 2) {
      sawGraph = true;
      fields(r.bytes(), (g, gw, gr) => {
        if (gw !== 2) return false;
        if (g === 11) inputs.push(valueInfo(gr.bytes()));
        else if (g === 12) out.outputInfo.push(valueInfo(gr.bytes()));
        else if (g === 5) {
          const t = tensorInfo(gr.bytes());
          out.initializers++;
          initNames.add(t.name);
          if (t.location) {
            external.add(t.location);
            if (t.end !== null) out.externalDataEnd[t.location] = Math.max(out.externalDataEnd[t.location] ?? 0, t.end);
          }
        } else return false;
        return true;
      });
      return true;
    }
    return false;
  });
  if (!sawGraph || out.irVersion === 0) throw new Error("no ONNX graph found (is this an .onnx file?)");
  // Old exporters list initializers among the inputs; they are not inputs a caller feeds.
  out.inputInfo = inputs.filter((v) => !initNames.has(v.name));
  out.inputs = out.inputInfo.map((v) => v.name);
  out.outputs = out.outputInfo.map((v) => v.name);
  out.externalDataFiles = [...external];
  return out;
}
