import { drizzle } from "drizzle-orm/d1";
import * as schema from "../db/schema";

/** The typed drizzle handle every service takes; its own module so services never import middleware. */
export type Db = ReturnType<typeof makeDb>;
export const makeDb = (d1: D1Database) => drizzle(d1, { schema });
