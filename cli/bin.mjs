#!/usr/bin/env node
// Entry for `npx selfsup`: runs the TypeScript CLI through tsx's loader. tsx is a runtime
// dependency (package.json `dependencies`, not dev), so an install without dev packages runs it.
import { register } from "tsx/esm/api";

register();
const { main } = await import("./main.ts");
await main();
