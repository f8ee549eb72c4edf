// GET /docs: the Scalar API reference, served entirely by this Worker. The page's script is the
// @scalar/api-reference standalone bundle from npm, inlined into the Worker at build time, so the
// reference renders without internet access (a CDN script is a blank page offline).
import { Scalar } from "@scalar/hono-api-reference";
import scalarStandalone from "../../node_modules/@scalar/api-reference/dist/browser/standalone.js" with {
  type: "text",
};
import type { Router } from "../lib/openapi";

export const DOCS_SCRIPT_PATH = "/docs/scalar.js";

// The bundle changes only with the npm package; a per-deployment tag keeps caches honest.
const etag = `"scalar-${scalarStandalone.length.toString(36)}"`;

export function registerDocs(app: Router) {
  app.get(
    "/docs",
    Scalar((c) => ({
      url: "/openapi.json",
      pageTitle: "selfsup API",
      cdn: DOCS_SCRIPT_PATH,
      // The default fonts come from fonts.scalar.com; the system fonts need no network.
      withDefaultFonts: false,
      // Both call Scalar's hosted services, which an offline or private deployment cannot reach.
      showDeveloperTools: "never",
      agent: { disabled: true },
      // "Try it" calls the origin that served this page (`make dev` may run on any PORT).
      servers: [{ url: new URL(c.req.url).origin, description: "this server" }],
    })),
  );
  app.get(DOCS_SCRIPT_PATH, (c) => {
    if (c.req.header("if-none-match") === etag) return c.body(null, 304);
    return c.body(scalarStandalone, 200, {
      "content-type": "text/javascript; charset=utf-8",
      "cache-control": "public, max-age=3600",
      etag,
    });
  });
}
