import { defineConfig } from "drizzle-kit";

// One migrations folder, three users: drizzle-kit writes it, `wrangler d1 migrations apply` and the
// vitest setup (readD1Migrations/applyD1Migrations) apply it.
export default defineConfig({
  dialect: "sqlite",
  schema: "./db/schema.ts",
  out: "./migrations",
});
