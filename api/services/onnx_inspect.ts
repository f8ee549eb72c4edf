// Reads just enough of an ONNX ModelProto (protobuf) to check what a manifest claims — graph inputs,
// outputs, opset and which external-data files the initializers point at — without loading a
// runtime. Field numbers are from onnx/onnx.proto3.

export type OnnxSummary = {
  irVersion: number;
  opset: number;
  inputs: string[];
  outputs: string[];
  externalDataFiles: string[];
  initializers: number;
};

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

function valueInfoName(buf: Uint8Array): string {
  let name = "";
  fields(buf, (f, w, r) => {
    if (f === 1 && w === 2) {
      name = utf8.decode(r.bytes());
      return true;
    }
    return false;
  });
  return name;
}

function tensorExternalLocation(buf: Uint8Array): string | null {
  let location: string | null = null;
  let external = false;
  fields(buf, (f, w, r) => {
    if (f === 14 && w === 0) {
      external = r.varint() === 1;
      return true;
    }
    if (f === 13 && w === 2) {
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
      return true;
    }
    return false;
  });
  return external ? location : null;
}

/** Parses an ONNX file's header and graph signature; throws with a reason when it is not ONNX. */
export function inspectOnnx(bytes: Uint8Array): OnnxSummary {
  const out: OnnxSummary = { irVersion: 0, opset: 0, inputs: [], outputs: [], externalDataFiles: [], initializers: 0 };
  let sawGraph = false;
  const external = new Set<string>();
  const initNames = new Set<string>();
  const inputs: string[] = [];
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
        if (g === 11) inputs.push(valueInfoName(gr.bytes()));
        else if (g === 12) out.outputs.push(valueInfoName(gr.bytes()));
        else if (g === 5) {
          const t = gr.bytes();
          out.initializers++;
          const loc = tensorExternalLocation(t);
          if (loc) external.add(loc);
          fields(t, (tf, tw, tr) => {
            if (tf === 8 && tw === 2) {
              initNames.add(utf8.decode(tr.bytes()));
              return true;
            }
            return false;
          });
        } else return false;
        return true;
      });
      return true;
    }
    return false;
  });
  if (!sawGraph || out.irVersion === 0) throw new Error("no ONNX graph found (is this an .onnx file?)");
  // Old exporters list initializers among the inputs; they are not inputs a caller feeds.
  out.inputs = inputs.filter((n) => !initNames.has(n));
  out.externalDataFiles = [...external];
  return out;
}
