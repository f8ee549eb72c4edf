// The local R2 S3 credentials live once, in wrangler.toml's `local_dev.experimental_s3_credentials`;
// `make dev` (.dev.vars) and the tests read them from there.
import { readFileSync } from "node:fs";

export function localS3Credentials(root = new URL("..", import.meta.url)) {
  const toml = readFileSync(new URL("wrangler.toml", root), "utf8");
  const id = /accessKeyId\s*=\s*"([^"]+)"/.exec(toml)?.[1];
  const secret = /secretAccessKey\s*=\s*"([^"]+)"/.exec(toml)?.[1];
  if (!id || !secret) throw new Error("wrangler.toml lacks local_dev.experimental_s3_credentials");
  return { S3_ACCESS_KEY_ID: id, S3_SECRET_ACCESS_KEY: secret };
}

if (process.argv[2] === "--dev-vars") {
  for (const [k, v] of Object.entries(localS3Credentials())) console.log(`${k}=${v}`);
}
