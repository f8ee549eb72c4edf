// First-run seed for `make dev`: one tenant and an admin key in the local D1, the secret kept in
// .selfsup/dev-key (git-ignored). Runs before `wrangler dev`, so it writes through `wrangler d1 execute`.
import { execFileSync } from "node:child_process";
import { createHash, randomInt } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";

// `--remote` seeds the deployed D1 instead (once, after `wrangler d1 migrations apply DB --remote`).
const WHERE = process.argv.includes("--remote") ? "--remote" : "--local";
const KEY_FILE = WHERE === "--remote" ? ".selfsup/remote-key" : ".selfsup/dev-key";
const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const token = (n) => Array.from({ length: n }, () => ALPHABET[randomInt(62)]).join("");
const sha256 = (s) => createHash("sha256").update(s).digest("hex");

function d1(sql) {
  const out = execFileSync("wrangler", ["d1", "execute", "DB", WHERE, "--json", "--command", sql], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  return JSON.parse(out)[0]?.results ?? [];
}

if (existsSync(KEY_FILE)) {
  const secret = readFileSync(KEY_FILE, "utf8").trim();
  const found = d1(`select id from api_keys where hash = '${sha256(secret)}' and revoked_at is null`);
  if (found.length > 0) {
    console.log(secret);
    process.exit(0);
  }
  console.error(`${KEY_FILE} holds a key the local database does not know; creating a new one.`);
}

const tenantId = `tnt_${Date.now().toString(36)}${token(12)}`;
const keyId = `key_${Date.now().toString(36)}${token(12)}`;
const secret = `ss_${token(8)}_${token(32)}`;
d1(
  `insert into tenants (id, name) values ('${tenantId}', '${WHERE === "--remote" ? "default" : "local"}'); ` +
    `insert into api_keys (id, tenant_id, name, prefix, hash, scopes) values ('${keyId}', '${tenantId}', 'dev admin', '${secret.slice(0, 11)}', '${sha256(secret)}', '["admin"]');`,
);
mkdirSync(".selfsup", { recursive: true });
writeFileSync(KEY_FILE, `${secret}\n`, { mode: 0o600 });
console.log(secret);
