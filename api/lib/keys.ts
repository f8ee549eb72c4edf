import { randomToken, sha256Hex } from "./crypto";

// Secret format: `ss_<8-char lookup prefix>_<32-char secret>`. The prefix is stored in clear to find
// the row; only the SHA-256 of the whole string is stored, and compared in constant time.
export const KEY_PREFIX_LENGTH = 11; // "ss_" + 8

export async function generateApiKey(): Promise<{ secret: string; prefix: string; hash: string }> {
  const secret = `ss_${randomToken(8)}_${randomToken(32)}`;
  return { secret, prefix: secret.slice(0, KEY_PREFIX_LENGTH), hash: await sha256Hex(secret) };
}

export function parseBearer(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  const token = m?.[1];
  if (!token || !/^ss_[0-9A-Za-z]{8}_[0-9A-Za-z]{32}$/.test(token)) return null;
  return token;
}
