// `make dev`: a trainer-scoped key for the local trainer, kept in .selfsup/trainer-key and reused
// while the API still lists it unrevoked. Prints the secret.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createSelfsupClient, unwrap } from "../client";

const FILE = ".selfsup/trainer-key";
const [baseUrl = "http://127.0.0.1:8787"] = process.argv.slice(2);
const client = createSelfsupClient({ baseUrl, apiKey: readFileSync(".selfsup/dev-key", "utf8").trim() });

if (existsSync(FILE)) {
  const secret = readFileSync(FILE, "utf8").trim();
  const keys = await unwrap(client.GET("/v1/keys"));
  if (keys.data.some((k) => secret.startsWith(k.prefix) && !k.revokedAt && k.scopes.includes("trainer"))) {
    console.log(secret);
    process.exit(0);
  }
}
const key = await unwrap(client.POST("/v1/keys", { body: { name: "local trainer", scopes: ["trainer"] } }));
writeFileSync(FILE, `${key.secret}\n`, { mode: 0o600 });
console.log(key.secret);
