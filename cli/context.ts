// What every command handler gets: the typed client, where it points, output mode and flags.
import type { SelfsupClient } from "../client";
import { type ApiTarget, UsageError } from "./args";

export type Ctx = {
  client: SelfsupClient;
  baseUrl: string;
  target: ApiTarget;
  json: boolean;
  flags: Record<string, string | boolean | string[] | undefined>;
};

export const out = (ctx: Ctx, data: unknown, human: () => string) => {
  process.stdout.write(`${ctx.json ? JSON.stringify(data, null, 2) : human()}\n`);
};

export function need(ctx: Ctx, name: string): string {
  const v = ctx.flags[name];
  if (typeof v !== "string" || v === "") throw new UsageError(`--${name} is required`);
  return v;
}
