// One embedder per modality, picked by the manifest's `modality`: what /v1/embeddings and the
// probes call, so a new modality is one file and one line here.
import type { Modality } from "../../../db/schema";
import { imageEmbedder } from "./image";
import type { Embedder } from "./items";
import { seriesEmbedder } from "./series";
import { textEmbedder } from "./text";

// Each embedder's `embed` takes what its own `parse` returned; callers keep the two together.
const EMBEDDERS: Record<Modality, Embedder<unknown>> = {
  text: textEmbedder,
  image: imageEmbedder,
  timeseries: seriesEmbedder,
};

export const embedderFor = (modality: Modality): Embedder<unknown> => EMBEDDERS[modality];
