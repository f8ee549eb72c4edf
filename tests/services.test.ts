import { describe, expect, it } from "vitest";
import { inspectOnnx } from "../api/services/onnx_inspect";
import { parseModelRef } from "../api/services/refs";
import { len, num, str } from "./protobuf";

function model(opts: { inputs: string[]; outputs: string[]; external?: string; initializerAsInput?: string }) {
  const graph: number[] = [];
  for (const i of opts.inputs) graph.push(...len(11, str(1, i)));
  if (opts.initializerAsInput) graph.push(...len(11, str(1, opts.initializerAsInput)));
  for (const o of opts.outputs) graph.push(...len(12, str(1, o)));
  const tensor = [...str(8, opts.initializerAsInput ?? "w"), ...num(2, 1)];
  if (opts.external) tensor.push(...len(13, [...str(1, "location"), ...str(2, opts.external)]), ...num(14, 1));
  graph.push(...len(5, tensor));
  return new Uint8Array([...num(1, 8), ...len(8, [...str(1, ""), ...num(2, 17)]), ...len(7, graph)]);
}

describe("inspectOnnx", () => {
  it("reads inputs, outputs, opset and external data locations", () => {
    const s = inspectOnnx(
      model({ inputs: ["input_ids", "attention_mask"], outputs: ["embeddings"], external: "model.onnx.data" }),
    );
    expect(s).toMatchObject({
      irVersion: 8,
      opset: 17,
      inputs: ["input_ids", "attention_mask"],
      outputs: ["embeddings"],
      externalDataFiles: ["model.onnx.data"],
      initializers: 1,
    });
  });

  it("does not count initializers listed among graph inputs as inputs", () => {
    const s = inspectOnnx(model({ inputs: ["input_ids"], outputs: ["y"], initializerAsInput: "weight" }));
    expect(s.inputs).toEqual(["input_ids"]);
    expect(s.externalDataFiles).toEqual([]);
  });

  it("rejects bytes that are not ONNX", () => {
    expect(() => inspectOnnx(new TextEncoder().encode("not a model at all"))).toThrow();
    expect(() => inspectOnnx(model({ inputs: ["a"], outputs: ["b"] }).subarray(0, 20))).toThrow();
  });
});

describe("parseModelRef", () => {
  it("accepts name, name@version and name@alias", () => {
    expect(parseModelRef("demo")).toEqual({ name: "demo", selector: { alias: "latest" } });
    expect(parseModelRef("demo@3")).toEqual({ name: "demo", selector: { version: 3 } });
    expect(parseModelRef("demo@production")).toEqual({ name: "demo", selector: { alias: "production" } });
  });
  it("rejects malformed refs", () => {
    for (const bad of ["", "Demo", "demo@", "demo@3x", "demo@@1", "a/b"]) expect(parseModelRef(bad), bad).toBeNull();
  });
});
