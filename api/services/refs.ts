export type ModelRef = { name: string; selector: { version: number } | { alias: string } };

/** Parses `name`, `name@3` or `name@production`; a bare name means alias `latest`. */
export function parseModelRef(ref: string): ModelRef | null {
  const m = /^([a-z0-9][a-z0-9._-]{0,63})(?:@([a-z0-9_-]{1,32}))?$/.exec(ref);
  if (!m) return null;
  const name = m[1] as string;
  const sel = m[2];
  if (sel === undefined) return { name, selector: { alias: "latest" } };
  if (/^[0-9]+$/.test(sel)) return { name, selector: { version: Number(sel) } };
  if (/^[a-z]/.test(sel)) return { name, selector: { alias: sel } };
  return null;
}

export const formatRef = (name: string, version: number) => `${name}@${version}`;
