#!/usr/bin/env node
// Entry for `npx selfsup`: runs the TypeScript CLI through tsx's loader.
import { register } from "tsx/esm/api";

register();
const { main } = await import("./main.ts");
await main();
