import type { Scope } from "../db/schema";
import type { Services } from "./middleware/init";

export type AuthContext = { keyId: string; tenantId: string; scopes: Scope[] };

export type AppEnv = {
  Bindings: Env;
  Variables: { requestId: string; services: Services; auth: AuthContext };
};
