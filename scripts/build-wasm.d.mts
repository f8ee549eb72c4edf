export const WAT_PATH: string;
export const WASM_PATH: string;
export const BUILD_COMMAND: string;
export function buildKernel(): Promise<Uint8Array>;
